"""Unit test of the generated component `coldstart_candidates`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.coldstart_candidates import coldstart_candidates


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "coldstart-candidates"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = coldstart_candidates.python_func(run_uri="RUN", config_yaml="CFG")
    assert result == '{"step": "coldstart-candidates"}'
    run.assert_called_once_with("coldstart-candidates", "RUN", "CFG")
    publish.assert_called_once_with("coldstart-candidates", "RUN", "CFG", {})

"""Unit test of the generated component `distill`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.distill import distill


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "distill"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = distill.python_func(run_uri="RUN", config_yaml="CFG", report=report, targets="v-targets", student="v-student")
    assert result == '{"step": "distill"}'
    run.assert_called_once_with("distill", "RUN", "CFG", targets="v-targets", student="v-student")
    publish.assert_called_once_with("distill", "RUN", "CFG", {"report": report})

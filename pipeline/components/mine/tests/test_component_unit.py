"""Unit test of the generated component `mine`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.mine import mine


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "mine"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = mine.python_func(run_uri="RUN", config_yaml="CFG", report=report)
    assert result == '{"step": "mine"}'
    run.assert_called_once_with("mine", "RUN", "CFG")
    publish.assert_called_once_with("mine", "RUN", "CFG", {"report": report})

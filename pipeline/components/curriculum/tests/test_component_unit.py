"""Unit test of the generated component `curriculum`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.curriculum import curriculum


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    metrics = mock.MagicMock(path=str(tmp_path / 'metrics'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "curriculum"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = curriculum.python_func(run_uri="RUN", config_yaml="CFG", report=report, metrics=metrics)
    assert result == '{"step": "curriculum"}'
    run.assert_called_once_with("curriculum", "RUN", "CFG")
    publish.assert_called_once_with("curriculum", "RUN", "CFG", {"report": report, "metrics": metrics})

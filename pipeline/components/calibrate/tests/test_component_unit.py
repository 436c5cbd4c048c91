"""Unit test of the generated component `calibrate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.calibrate import calibrate


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    report_html = mock.MagicMock(path=str(tmp_path / 'report_html'))
    metrics = mock.MagicMock(path=str(tmp_path / 'metrics'))
    confusion = mock.MagicMock(path=str(tmp_path / 'confusion'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "calibrate"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = calibrate.python_func(run_uri="RUN", config_yaml="CFG", report=report, report_html=report_html, metrics=metrics, confusion=confusion, target_accuracy="v-target-accuracy", decision="v-decision", routing="v-routing", budget="v-budget", guarantee="v-guarantee", gate="v-gate")
    assert result == '{"step": "calibrate"}'
    run.assert_called_once_with("calibrate", "RUN", "CFG", target_accuracy="v-target-accuracy", decision="v-decision", routing="v-routing", budget="v-budget", guarantee="v-guarantee", gate="v-gate")
    publish.assert_called_once_with("calibrate", "RUN", "CFG", {"report": report, "report_html": report_html, "metrics": metrics, "confusion": confusion})

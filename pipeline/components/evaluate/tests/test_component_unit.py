"""Unit test of the generated component `evaluate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.evaluate import evaluate


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    report_html = mock.MagicMock(path=str(tmp_path / 'report_html'))
    metrics = mock.MagicMock(path=str(tmp_path / 'metrics'))
    ablation = mock.MagicMock(path=str(tmp_path / 'ablation'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "evaluate"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = evaluate.python_func(run_uri="RUN", config_yaml="CFG", report=report, report_html=report_html, metrics=metrics, ablation=ablation)
    assert result == '{"step": "evaluate"}'
    run.assert_called_once_with("evaluate", "RUN", "CFG")
    publish.assert_called_once_with("evaluate", "RUN", "CFG", {"report": report, "report_html": report_html, "metrics": metrics, "ablation": ablation})

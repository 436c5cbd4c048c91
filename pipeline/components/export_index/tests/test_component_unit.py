"""Unit test of the generated component `export_index`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.export_index import export_index


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    index = mock.MagicMock(path=str(tmp_path / 'index'))
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    metrics = mock.MagicMock(path=str(tmp_path / 'metrics'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "export-index"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = export_index.python_func(run_uri="RUN", config_yaml="CFG", index=index, report=report, metrics=metrics)
    assert result == '{"step": "export-index"}'
    run.assert_called_once_with("export-index", "RUN", "CFG")
    publish.assert_called_once_with("export-index", "RUN", "CFG", {"index": index, "report": report, "metrics": metrics})

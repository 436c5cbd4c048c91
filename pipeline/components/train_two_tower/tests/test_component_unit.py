"""Unit test of the generated component `train_two_tower`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.train_two_tower import train_two_tower


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    model = mock.MagicMock(path=str(tmp_path / 'model'))
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "train-two-tower"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = train_two_tower.python_func(run_uri="RUN", config_yaml="CFG", model=model, report=report)
    assert result == '{"step": "train-two-tower"}'
    run.assert_called_once_with("train-two-tower", "RUN", "CFG")
    publish.assert_called_once_with("train-two-tower", "RUN", "CFG", {"model": model, "report": report})

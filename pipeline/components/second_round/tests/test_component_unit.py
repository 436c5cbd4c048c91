"""Unit test of the generated component `second_round`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.second_round import second_round


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "second-round"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = second_round.python_func(run_uri="RUN", config_yaml="CFG", report=report, second_round="v-second-round")
    assert result == '{"step": "second-round"}'
    run.assert_called_once_with("second-round", "RUN", "CFG", second_round="v-second-round")
    publish.assert_called_once_with("second-round", "RUN", "CFG", {"report": report})

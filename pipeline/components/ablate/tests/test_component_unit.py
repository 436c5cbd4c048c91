"""Unit test of the generated component `ablate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.ablate import ablate


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    runs = mock.MagicMock(path=str(tmp_path / 'runs'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "ablate"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = ablate.python_func(run_uri="RUN", config_yaml="CFG", runs=runs, ablate="v-ablate")
    assert result == '{"step": "ablate"}'
    run.assert_called_once_with("ablate", "RUN", "CFG", ablate="v-ablate")
    publish.assert_called_once_with("ablate", "RUN", "CFG", {"runs": runs})

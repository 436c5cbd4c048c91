"""Unit test of the generated component `pull_models`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.pull_models import pull_models


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "pull-models"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = pull_models.python_func(run_uri="RUN", config_yaml="CFG")
    assert result == '{"step": "pull-models"}'
    run.assert_called_once_with("pull-models", "RUN", "CFG")
    publish.assert_called_once_with("pull-models", "RUN", "CFG", {})

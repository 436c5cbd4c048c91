"""Unit test of the generated component `finetune_tiers`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.finetune_tiers import finetune_tiers


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "finetune-tiers"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = finetune_tiers.python_func(run_uri="RUN", config_yaml="CFG", report=report, mode="v-mode", head="v-head", balance="v-balance", tier="v-tier", max_train_pairs="v-max-train-pairs")
    assert result == '{"step": "finetune-tiers"}'
    run.assert_called_once_with("finetune-tiers", "RUN", "CFG", mode="v-mode", head="v-head", balance="v-balance", tier="v-tier", max_train_pairs="v-max-train-pairs")
    publish.assert_called_once_with("finetune-tiers", "RUN", "CFG", {"report": report})

"""Unit test of the generated component `annotate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.annotate import annotate


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    metrics = mock.MagicMock(path=str(tmp_path / 'metrics'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "annotate"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = annotate.python_func(run_uri="RUN", config_yaml="CFG", report=report, metrics=metrics, max_budget="v-max-budget", shard_rows="v-shard-rows", splits="v-splits", max_queries="v-max-queries", review_budget="v-review-budget", blind="v-blind")
    assert result == '{"step": "annotate"}'
    run.assert_called_once_with("annotate", "RUN", "CFG", max_budget="v-max-budget", shard_rows="v-shard-rows", splits="v-splits", max_queries="v-max-queries", review_budget="v-review-budget", blind="v-blind")
    publish.assert_called_once_with("annotate", "RUN", "CFG", {"report": report, "metrics": metrics})

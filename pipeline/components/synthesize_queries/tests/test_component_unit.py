"""Unit test of the generated component `synthesize_queries`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.synthesize_queries import synthesize_queries


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    report = mock.MagicMock(path=str(tmp_path / 'report'))
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "synthesize-queries"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = synthesize_queries.python_func(run_uri="RUN", config_yaml="CFG", report=report, synthetic_items="v-synthetic-items", queries_per_item="v-queries-per-item", generator="v-generator")
    assert result == '{"step": "synthesize-queries"}'
    run.assert_called_once_with("synthesize-queries", "RUN", "CFG", synthetic_items="v-synthetic-items", queries_per_item="v-queries-per-item", generator="v-generator")
    publish.assert_called_once_with("synthesize-queries", "RUN", "CFG", {"report": report})

"""Unit test of the generated component `ingest`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.ingest import ingest


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "ingest"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = ingest.python_func(run_uri="RUN", config_yaml="CFG", source="v-source", catalog="v-catalog", queries="v-queries", judgments="v-judgments", map="v-map", grades="v-grades", score_bins="v-score-bins", gains="v-gains", replace="v-replace")
    assert result == '{"step": "ingest"}'
    run.assert_called_once_with("ingest", "RUN", "CFG", source="v-source", catalog="v-catalog", queries="v-queries", judgments="v-judgments", map="v-map", grades="v-grades", score_bins="v-score-bins", gains="v-gains", replace="v-replace")
    publish.assert_called_once_with("ingest", "RUN", "CFG", {})

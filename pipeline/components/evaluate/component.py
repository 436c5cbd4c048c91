"""KFP component `evaluate`: Score the exported retriever, BM25, the ablations and the second round on the test split's human judgments (NDCG@10, rating-0@10, Recall@100, both unjudged conventions, bootstrap CIs, paired tests, the prediction-powered NDCG) and write the report with its plots.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def evaluate(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], report_html: dsl.Output[dsl.HTML], metrics: dsl.Output[dsl.Metrics], ablation: dsl.Output[dsl.Markdown]) -> str:
    """Run step `evaluate` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        report: Markdown, from `reports/evaluate.md` on the bus.
        report_html: HTML, from `reports/evaluate.html` on the bus.
        metrics: Metrics, from `reports/evaluate-metrics.json` on the bus.
        ablation: Markdown, from `reports/ablation.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("evaluate", run_uri, config_yaml)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("evaluate", run_uri, config_yaml, {"report": report, "report_html": report_html, "metrics": metrics, "ablation": ablation})
    return record

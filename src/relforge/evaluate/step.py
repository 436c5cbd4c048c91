"""The declaration of step ``evaluate`` (see :mod:`relforge.steps`), re-exported as
``relforge.evaluate.STEP``."""

from relforge.step_spec import Output, Resources, StepSpec

#: Step ``evaluate``.
STEP = StepSpec(
    name="evaluate",
    run="relforge.evaluate._step:run_evaluate",
    summary="Score the exported retriever, BM25, the ablations and the second round on the test split's human "
    "judgments (NDCG@10, rating-0@10, Recall@100, both unjudged conventions, bootstrap CIs, paired tests, the "
    "prediction-powered NDCG) and write the report with its plots.",
    reads=("retrieval", "queries", "judgments", "catalog", "labels", "calibrators", "ablation", "second-round"),
    writes=("evaluation",),
    section="evaluate",
    outputs=(
        Output("report", "Markdown", "reports/evaluate.md"),
        Output("report_html", "HTML", "reports/evaluate.html"),
        Output("metrics", "Metrics", "reports/evaluate-metrics.json"),
        Output("ablation", "Markdown", "reports/ablation.md"),
    ),
    resources=Resources(cpu="4", memory="16Gi"),
)

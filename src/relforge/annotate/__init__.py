"""Step ``annotate``: every candidate through the calibrated cascade, and the review queue.

- :mod:`~relforge.annotate._candidates`: the chosen candidates as a stream of fixed-size shards;
- :mod:`~relforge.annotate._cascade`: tier k scores only the pairs the tiers below did not
  accept; calibrators checked against the tier models' versions; failed pairs never labelled;
- :mod:`~relforge.annotate._ledger`: the cost estimate before the run and the actual spend;
- :mod:`~relforge.annotate._review`: the pairs humans should judge next, and their exports
  (Label Studio, Argilla, TREC qrels, CSV, JSONL);
- :mod:`~relforge.annotate._step`: the step (sharded, resumable, budgeted).

Example:
    >>> from relforge.annotate import run_annotate
    >>> run_annotate(DataBus("runs/demo"), load_config())      # doctest: +SKIP
"""

from relforge._lazy import lazy_exports

# name -> the private module that defines it, imported on first use (torch is heavy)
_EXPORTS = {
    "Cascade": "relforge.annotate._cascade",
    "CandidateShards": "relforge.annotate._candidates",
    "LEDGER": "relforge.annotate._ledger",
    "Labelled": "relforge.annotate._cascade",
    "Ledger": "relforge.annotate._ledger",
    "allocate": "relforge.annotate._review",
    "build_queue": "relforge.annotate._review",
    "chosen_queries": "relforge.annotate._candidates",
    "count_shards": "relforge.annotate._candidates",
    "estimate_cost": "relforge.annotate._ledger",
    "export_queue": "relforge.annotate._review",
    "iter_shards": "relforge.annotate._candidates",
    "label_studio_config": "relforge.annotate._review",
    "review_priority": "relforge.annotate._review",
    "run_annotate": "relforge.annotate._step",
}
__all__ = list(_EXPORTS)  # and STEP, below
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Param, Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="annotate",
    run="relforge.annotate._step:run_annotate",
    summary="Label every candidate with the calibrated cascade (tier k scores only the pairs the tiers below "
    "did not accept), in committed shards with a cost ledger, and write the review queue for human annotators.",
    reads=("catalog", "queries", "candidates", "models", "calibrators", "packaged-models"),
    writes=("labels", "review_queue"),
    section="annotate",
    params=(
        Param("max-budget", "annotate.max_budget"),
        Param("shard-rows", "annotate.shard_rows"),
        Param("splits", "annotate.splits", "only the candidates of queries in these splits, as YAML, e.g. '[train]'"),
        Param("max-queries", "annotate.max_queries"),
        Param("review-budget", "review.budget", "pairs in the review queue"),
        Param("blind", "review.blind", "hide the cascade's grade from annotators: true or false"),
    ),
    outputs=(
        Output("report", "Markdown", "reports/annotate.md"),
        Output("metrics", "Metrics", "reports/annotate-metrics.json"),
    ),
    resources=Resources(cpu="8", memory="16Gi"),
)

"""Cold start: synthetic queries from the catalog, hard negatives, teacher labels, a distilled labeler.

For a domain with documents but few queries and almost no judgments (DESIGN.md "Cold start"),
four steps, each declared below and resumable:

- ``synthesize-queries`` (:func:`run_synthesize_queries`): a generator tier writes queries for
  sampled catalog items; filtered (length, title copies, the BM25 round trip, exact and near
  duplicates); the kept ones become the sub-run ``<run>/coldstart`` (:mod:`~relforge.coldstart._subrun`);
- ``coldstart-candidates`` (:func:`run_coldstart_candidates`): per synthetic query its source
  item, hard negatives from the mining channel and random items;
- ``teacher-label`` (:func:`run_teacher_label`): the teacher (a tier, or the calibrated
  cascade) grades every pair; failed pairs stay failed;
- ``distill`` (:func:`run_distill`): a student trained on the teacher's hard or soft labels,
  calibrated on the run's human judgments where there are any, written as the tier folder
  ``models/<coldstart.name>``.

The ``cold-start`` pipeline (:data:`relforge.steps.PIPELINES`) runs them after ``pull-models``
and ``ingest`` on a catalog alone.

Example:
    >>> from relforge.coldstart import run_synthesize_queries
    >>> run_synthesize_queries(DataBus("runs/shop"), load_config())          # doctest: +SKIP
"""

from relforge._lazy import lazy_exports

# name -> the private module that defines it, imported on first use (torch, bm25s are heavy)
_EXPORTS = {
    "FILTERS": "relforge.coldstart._filters",
    "FilterSettings": "relforge.coldstart._filters",
    "duplicate_filters": "relforge.coldstart._filters",
    "filter_counts": "relforge.coldstart._filters",
    "is_copy": "relforge.coldstart._filters",
    "jaccard": "relforge.coldstart._filters",
    "round_trip_ranks": "relforge.coldstart._filters",
    "stems": "relforge.coldstart._filters",
    "text_filters": "relforge.coldstart._filters",
    "words": "relforge.coldstart._filters",
    "few_shot_examples": "relforge.coldstart._sample",
    "sample_items": "relforge.coldstart._sample",
    "stable_hash": "relforge.coldstart._sample",
    "SUBRUN": "relforge.coldstart._subrun",
    "coldstart_bus": "relforge.coldstart._subrun",
    "query_id_for": "relforge.coldstart._synthesize",
    "run_synthesize_queries": "relforge.coldstart._synthesize",
    "synthetic_splits": "relforge.coldstart._synthesize",
    "BUCKETS": "relforge.coldstart._candidates",
    "candidate_rows": "relforge.coldstart._candidates",
    "run_coldstart_candidates": "relforge.coldstart._candidates",
    "CascadeTeacher": "relforge.coldstart._teacher",
    "TierTeacher": "relforge.coldstart._teacher",
    "make_teacher": "relforge.coldstart._teacher",
    "run_teacher_label": "relforge.coldstart._teacher",
    "calibrate_distilled": "relforge.coldstart._distill",
    "distilled_tier_config": "relforge.coldstart._distill",
    "run_distill": "relforge.coldstart._distill",
    "student_backend": "relforge.coldstart._distill",
    "teacher_pairs": "relforge.coldstart._distill",
}
__all__ = list(_EXPORTS)  # and the step declarations, below
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Param, Resources, StepSpec

#: Step ``synthesize-queries`` (see relforge.steps).
SYNTHESIZE_STEP = StepSpec(
    name="synthesize-queries",
    run="relforge.coldstart._synthesize:run_synthesize_queries",
    summary="Have a generator tier write search queries for a stratified sample of catalog items, filter them "
    "(length, title copies, the BM25 round trip, exact and near duplicates) and make the kept ones the queries of "
    "the cold-start sub-run.",
    reads=("catalog", "queries", "judgments", "packaged-models"),
    writes=("coldstart/generated_queries", "coldstart/synthetic_queries", "coldstart/catalog", "coldstart/queries"),
    section="coldstart",
    params=(
        Param("synthetic-items", "coldstart.items", "catalog items to write queries for"),
        Param("queries-per-item", "coldstart.queries_per_item"),
        Param("generator", "coldstart.generator", "the tier whose model writes the queries (causal-lm, tgi, openai)"),
    ),
    outputs=(Output("report", "Markdown", "reports/coldstart-queries.md"),),
    resources=Resources(cpu="4", memory="16Gi"),
)

#: Step ``coldstart-candidates``.
CANDIDATES_STEP = StepSpec(
    name="coldstart-candidates",
    run="relforge.coldstart._candidates:run_coldstart_candidates",
    summary="For every synthetic query, its source item, hard negatives from the mining channel (BM25) and random "
    "items: the cold-start sub-run's candidates.",
    reads=("coldstart/catalog", "coldstart/queries"),
    writes=("coldstart/candidates",),
    section="coldstart",
    resources=Resources(cpu="2", memory="8Gi"),
)

#: Step ``teacher-label``.
TEACHER_STEP = StepSpec(
    name="teacher-label",
    run="relforge.coldstart._teacher:run_teacher_label",
    summary="Grade every synthetic candidate with the teacher (the top tier, a named tier, or the calibrated "
    "cascade), in committed shards; pairs it failed to score are never labelled.",
    reads=("coldstart/candidates", "coldstart/queries", "coldstart/catalog", "packaged-models"),
    writes=("coldstart/labels", "coldstart/judgments"),
    section="coldstart",
    params=(Param("teacher", "coldstart.teacher", "top, a tier name, or cascade"),),
    resources=Resources(cpu="8", memory="16Gi"),
)

#: Step ``distill``.
DISTILL_STEP = StepSpec(
    name="distill",
    run="relforge.coldstart._distill:run_distill",
    summary="Train the student (the tier-1 cross-encoder by default) on the teacher's hard or soft labels, calibrate "
    "it on the run's human judgments where there are any, and write it as the tier folder models/<name>.",
    reads=("coldstart/labels", "coldstart/judgments", "coldstart/queries", "coldstart/catalog", "judgments",
           "packaged-models"),
    writes=("models", "calibrators"),
    section="coldstart",
    params=(
        Param("targets", "coldstart.targets", "soft (the teacher's probabilities) or hard (its grades)"),
        Param("student", "coldstart.student", "the tier the student is made like (cross-encoder or causal-lm)"),
    ),
    outputs=(Output("report", "Markdown", "reports/coldstart-distill.md"),),
    image="gpu",
    resources=Resources(cpu="8", memory="32Gi", gpu=1),
)

#: The cold-start steps, in order.
STEPS = (SYNTHESIZE_STEP, CANDIDATES_STEP, TEACHER_STEP, DISTILL_STEP)

"""Step ``curriculum``: a difficulty level (1-5) and a training stage (1-3) per labelled candidate.

DESIGN.md's levels (defaults of ``curriculum.rules``; the rules are configuration, not code):
1 easy positive (all channels, top grade); 2 easy negative (sampled, never retrieved, grade 0);
3 hard positive (lexical channels only, top grade); 4 hard negative (exactly one channel,
grade 0); 5 graded middle (intermediate grades or low confidence). Stages: 1 = levels 1-2;
2 = levels 1-4; 3 = all levels, with a graded loss. Test-split queries never enter.

- :mod:`~relforge.curriculum._rules`: the rules applied (levels, stages);
- :mod:`~relforge.curriculum._build`: the ``curriculum`` table from ``labels`` (or ``judgments``);
- :mod:`~relforge.curriculum._report`: counts per level and stage, each level's grade mix;
- :mod:`~relforge.curriculum._step`: the step.

Example:
    >>> from relforge.curriculum import run_curriculum
    >>> run_curriculum(bus, config)                                   # doctest: +SKIP
"""

from relforge._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_RULE": "relforge.curriculum._rules",
    "LEFT_OUT": "relforge.curriculum._rules",
    "REPORT_MD": "relforge.curriculum._report",
    "UNMINED": "relforge.curriculum._build",
    "assign_levels": "relforge.curriculum._rules",
    "build_curriculum": "relforge.curriculum._build",
    "curriculum_report": "relforge.curriculum._report",
    "render_markdown": "relforge.curriculum._report",
    "resolve_grade": "relforge.curriculum._rules",
    "run_curriculum": "relforge.curriculum._step",
    "stages_of": "relforge.curriculum._rules",
    "training_queries": "relforge.curriculum._build",
}
__all__ = list(_EXPORTS)  # and STEP, below
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="curriculum",
    run="relforge.curriculum._step:run_curriculum",
    summary="Give every labelled candidate of the training queries a difficulty level (1-5) and a training "
    "stage (1-3) by the configured rules, and report the counts and each level's grade mix.",
    reads=("candidates", "labels", "queries", "judgments"),
    writes=("curriculum",),
    section="curriculum",
    outputs=(
        Output("report", "Markdown", "reports/curriculum.md"),
        Output("metrics", "Metrics", "reports/curriculum-metrics.json"),
    ),
    resources=Resources(cpu="2", memory="8Gi"),
)

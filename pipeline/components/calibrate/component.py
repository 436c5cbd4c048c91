"""KFP component `calibrate`: Score the calib split's judged pairs (and human reviews) with every tier, fit per-class isotonic calibrators beside the tier models, choose the cascade's routing thresholds with a cross-fitted estimate, and stop the run when the calibration gate fails.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def calibrate(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], report_html: dsl.Output[dsl.HTML], metrics: dsl.Output[dsl.Metrics], confusion: dsl.Output[dsl.ClassificationMetrics], target_accuracy: str = "", decision: str = "", routing: str = "", budget: str = "", guarantee: str = "", gate: str = "") -> str:
    """Run step `calibrate` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        target_accuracy: sets `calibrate.target_accuracy` (YAML; empty: unchanged).
        decision: sets `calibrate.decision` (YAML; empty: unchanged).
        routing: sets `calibrate.routing` (YAML; empty: unchanged).
        budget: sets `calibrate.budget` (YAML; empty: unchanged).
        guarantee: sets `calibrate.guarantee` (YAML; empty: unchanged).
        gate: sets `calibrate.gate` (YAML; empty: unchanged).
        report: Markdown, from `reports/calibration.md` on the bus.
        report_html: HTML, from `reports/calibration.html` on the bus.
        metrics: Metrics, from `reports/calibration-metrics.json` on the bus.
        confusion: ClassificationMetrics, from `reports/calibration-confusion.json` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("calibrate", run_uri, config_yaml, target_accuracy=target_accuracy, decision=decision, routing=routing, budget=budget, guarantee=guarantee, gate=gate)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("calibrate", run_uri, config_yaml, {"report": report, "report_html": report_html, "metrics": metrics, "confusion": confusion})
    return record

"""KFP component `ingest`: Read the catalog, queries and human judgments (ESCI-150, or your own Parquet / JSONL / CSV files) into the tables catalog, queries (with the train / calib / test split) and judgments.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def ingest(run_uri: str, config_yaml: str, source: str = "", catalog: str = "", queries: str = "", judgments: str = "", map: str = "", grades: str = "", score_bins: str = "", gains: str = "", replace: str = "") -> str:
    """Run step `ingest` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        source: sets `ingest.source` (YAML; empty: unchanged).
        catalog: sets `ingest.catalog` (YAML; empty: unchanged).
        queries: sets `ingest.queries` (YAML; empty: unchanged).
        judgments: sets `ingest.judgments` (YAML; empty: unchanged).
        map: sets `ingest.map` (YAML; empty: unchanged).
        grades: sets `ingest.grades` (YAML; empty: unchanged).
        score_bins: sets `ingest.score_bins` (YAML; empty: unchanged).
        gains: sets `ingest.gains` (YAML; empty: unchanged).
        replace: sets `ingest.replace` (YAML; empty: unchanged).
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("ingest", run_uri, config_yaml, source=source, catalog=catalog, queries=queries, judgments=judgments, map=map, grades=grades, score_bins=score_bins, gains=gains, replace=replace)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("ingest", run_uri, config_yaml, {})
    return record

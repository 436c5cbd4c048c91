"""Step ``ingest``: a catalog, queries and human judgments into the bus's first three tables.

``ingest_esci`` reads the shipped ESCI-150 data; ``ingest_files`` reads any Parquet, JSON
Lines or CSV files with a column mapping. Both validate everything before writing anything,
split the judged queries into train / calib / test by a seeded hash of their ids, and record
the grade scale as each table's ``grade_scale`` metadata (read back by ``relforge.grades.read_grade_scale``).
"""

from relforge.ingest._commit import sha256_file
from relforge.ingest._esci import RATINGS, find_esci_dir, ingest_esci, load_esci
from relforge.ingest._files import ingest_files, load_files, parse_mapping, parse_score_bins
from relforge.ingest._grades import GradeMapper
from relforge.ingest._readers import file_format, read_file
from relforge.ingest._reviews import ingest_reviews, read_reviews
from relforge.ingest._source import Source
from relforge.ingest._split import SPLITS, UNLABELED, normalize_query, query_id_for, split_queries
from relforge.ingest._step import run_ingest
from relforge.ingest._tables import IngestedTables, build_tables

__all__ = [
    "RATINGS",
    "SPLITS",
    "UNLABELED",
    "GradeMapper",
    "IngestedTables",
    "Source",
    "build_tables",
    "file_format",
    "find_esci_dir",
    "ingest_esci",
    "ingest_files",
    "ingest_reviews",
    "load_esci",
    "load_files",
    "normalize_query",
    "parse_mapping",
    "parse_score_bins",
    "query_id_for",
    "read_file",
    "read_reviews",
    "run_ingest",
    "sha256_file",
    "split_queries",
]

from relforge.step_spec import Param, Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="ingest",
    run="relforge.ingest._step:run_ingest",
    summary="Read the catalog, queries and human judgments (ESCI-150, or your own Parquet / JSONL / CSV "
    "files) into the tables catalog, queries (with the train / calib / test split) and judgments.",
    writes=("catalog", "queries", "judgments"),
    section="ingest",
    params=(
        Param("source", "ingest.source"),
        Param("catalog", "ingest.catalog"),
        Param("queries", "ingest.queries"),
        Param("judgments", "ingest.judgments"),
        Param("map", "ingest.map", "field -> column mapping as YAML, e.g. '{item_id: sku}'"),
        Param("grades", "ingest.grades", "grade names, worst first, as YAML, e.g. '[bad, ok, good]'"),
        Param("score-bins", "ingest.score_bins"),
        Param("gains", "ingest.gains"),
        Param("replace", "ingest.replace"),
    ),
    resources=Resources(cpu="1", memory="4Gi"),
    cli=False,  # `relforge ingest esci|files` are its commands
    stability="beta",
)

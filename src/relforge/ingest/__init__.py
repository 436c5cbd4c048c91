"""Step ``ingest``: a catalog, queries and human judgments into the bus's first three tables.

``ingest_esci`` reads the shipped ESCI-150 data; ``ingest_files`` reads any Parquet, JSON
Lines or CSV files with a column mapping. Both validate everything before writing anything,
split the judged queries into train / calib / test by a seeded hash of their ids, and record
the grade scale as each table's ``grade_scale`` metadata (read back by ``read_grade_scale``).
"""

from relforge.ingest._commit import sha256_file
from relforge.ingest._esci import RATINGS, find_esci_dir, ingest_esci, load_esci
from relforge.ingest._files import ingest_files, load_files, parse_mapping, parse_score_bins
from relforge.ingest._grades import GRADE_SCALE_KEY, GradeMapper, read_grade_scale
from relforge.ingest._readers import file_format, read_file
from relforge.ingest._source import Source
from relforge.ingest._split import SPLITS, UNLABELED, normalize_query, query_id_for, split_queries
from relforge.ingest._tables import IngestedTables, build_tables

__all__ = [
    "GRADE_SCALE_KEY",
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
    "load_esci",
    "load_files",
    "normalize_query",
    "parse_mapping",
    "parse_score_bins",
    "query_id_for",
    "read_file",
    "read_grade_scale",
    "sha256_file",
    "split_queries",
]

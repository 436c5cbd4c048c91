"""The errors relforge raises on purpose.

Every error about input names the file, the row and the field at fault, so that a user can
open the file and fix it without reading a traceback.
"""

from __future__ import annotations


class RelforgeError(Exception):
    """Base class of every error relforge raises on purpose."""


class InputError(RelforgeError):
    """Bad input: names the file, the row (1-based data row, or ``None`` for the whole file) and the field.

    Example:
        >>> str(InputError("queries.csv", 4, "query", "is empty"))
        'queries.csv, row 4, field "query": is empty'
    """

    def __init__(self, file: str, row: int | None, field: str | None, message: str):
        self.file, self.row, self.field, self.message = str(file), row, field, message
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f'field "{field}"')
        super().__init__(f"{', '.join(where)}: {message}")


class SchemaError(RelforgeError):
    """A table does not match its contract (on write or on read)."""


class StorageError(RelforgeError):
    """The storage behind the bus refuses access, cannot be reached, or has no such bucket."""


class NotCommittedError(RelforgeError):
    """A table was asked for that has no committed manifest."""


class StaleTableError(RelforgeError):
    """A committed table exists but was made from other inputs or another configuration."""


class ReplaceRefusedError(RelforgeError):
    """A step would replace tables that came from other inputs, and was not told to replace them."""


class ModelError(RelforgeError):
    """A model reference cannot be resolved, or the model on disk is missing or corrupt."""


class ConfigError(RelforgeError):
    """The configuration (file or override) is invalid."""


class RecallGateError(RelforgeError):
    """An ANN index's recall, measured against exact search at build time, is missing or
    under the configured minimum; the index is not published."""


class CalibrationGateError(RelforgeError):
    """The calibrated cascade misses the calibration gate (quality target, ECE, QWK or guarantee):
    the run stops before any label is made; the calibration report says why."""


class AnnotationIncompleteError(RelforgeError):
    """``annotate`` stopped with shards left to do: pairs a tier failed to score (retried on the
    next run) or the run's budget reached. Committed shards are kept; a rerun resumes."""


class PoolError(RelforgeError):
    """A tier's server pool could not be operated: the Kubernetes API refused a call, or no pod
    became ready in time (the message says what the Deployment, ScaledObject and pods showed)."""

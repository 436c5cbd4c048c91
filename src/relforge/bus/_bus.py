"""The data bus: committed Parquet tables, JSON documents and artifact folders at a URI."""

from __future__ import annotations

import io
import json
import posixpath
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import ValidationError

from relforge.bus import _fs
from relforge.bus._contracts import contract_for
from relforge.bus._manifest import (
    MANIFEST,
    FileEntry,
    Manifest,
    code_version,
    fingerprint,
    now,
)
from relforge.config import BusConfig
from relforge.errors import NotCommittedError, SchemaError, StorageError
from relforge.logs import get_logger, log_event

log = get_logger("bus")
_META_KEY = b"relforge"


class DataBus:
    """Tables and documents under one root URI (a local folder or ``s3://bucket/prefix``).

    A table is a folder of Parquet files plus a ``manifest.json`` written last. Readers only
    see committed tables, and only the files the manifest lists.

    Args:
        root: the run's root URI.
        config: S3 endpoint and credentials (unset: the AWS variables).

    Example:
        >>> bus = DataBus("/tmp/run")                         # doctest: +SKIP
        >>> bus.write_table("catalog", table)                 # doctest: +SKIP
        >>> bus.read_table("catalog").num_rows                # doctest: +SKIP
    """

    def __init__(self, root: str | Path, config: BusConfig | None = None):
        self.root = str(root)
        self.config = config or BusConfig()
        self.fs, self.base = _fs.filesystem_for(self.root, self.config)

    # -- paths -----------------------------------------------------------------------------
    def uri(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

    # -- tables ----------------------------------------------------------------------------
    @_fs.storage_errors
    def is_committed(self, name: str) -> bool:
        return _fs.exists(self.fs, self._path(name, MANIFEST))

    @_fs.storage_errors
    def manifest(self, name: str) -> Manifest:
        """The committed manifest of table ``name``.

        Raises:
            NotCommittedError: when the table has no manifest (never written, or unfinished).
        """
        path = self._path(name, MANIFEST)
        try:
            raw = _fs.read_bytes(self.fs, path)
        except (FileNotFoundError, OSError) as exc:
            if _fs.exists(self.fs, path):
                raise
            raise NotCommittedError(f"{self.uri(name)}: table is not committed (no {MANIFEST})") from exc
        try:
            return Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise SchemaError(f"{self.uri(name)}/{MANIFEST}: not a valid manifest: {exc}") from None

    def input_digests(self, *names: str) -> dict[str, str]:
        """The digests of committed input tables, to record in a new table's manifest."""
        return {n: self.manifest(n).digest() for n in names}

    @_fs.storage_errors
    def committed_with(self, name: str, fp: str) -> Manifest | None:
        """The manifest of ``name`` if it is committed with fingerprint ``fp``, else ``None``."""
        if not self.is_committed(name):
            return None
        manifest = self.manifest(name)
        return manifest if manifest.fingerprint == fp else None

    @_fs.storage_errors
    def write_table(
        self,
        name: str,
        table: pa.Table,
        *,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, str] | None = None,
        config_hash: str = "",
        rows_per_file: int | None = None,
    ) -> Manifest:
        """Check ``table`` against its contract and commit it as table ``name``.

        New files get fresh names; the manifest is written last, replacing any earlier one in
        one step, so a crash leaves the previous committed table intact.

        Returns:
            The new manifest.
        """
        table = self._conform(name, table, f"writing {self.uri(name)}")
        rows_per_file = rows_per_file or self.config.rows_per_file
        run = uuid.uuid4().hex[:8]
        files = []
        for i, start in enumerate(range(0, max(table.num_rows, 1), rows_per_file)):
            part = table.slice(start, rows_per_file)
            rel = f"part-{run}-{i:05d}.parquet"
            files.append(self._write_parquet(name, rel, part))
        fp = fingerprint(inputs or {}, config_hash)
        return self._commit(name, table.schema, files, metadata, inputs, config_hash, fp)

    @_fs.storage_errors
    def read_table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The committed table ``name``, checked against its contract and its manifest.

        Only the files the manifest lists are read; each must have the rows the manifest
        says and the manifest's columns. With ``columns``, only those are read and checked.
        The manifest's ``metadata`` is attached to the schema under the key ``relforge``.

        Raises:
            NotCommittedError: the table has no manifest.
            SchemaError: a file is unreadable, has other rows or columns than the manifest
                says, or breaks the table's contract.
        """
        manifest = self.manifest(name)
        if columns is not None:
            unknown = [c for c in columns if c not in manifest.columns]
            if unknown:
                raise SchemaError(
                    f"{self.uri(name)}: no column(s) {unknown}; it has {list(manifest.columns)}"
                )
        expected = list(columns) if columns is not None else list(manifest.columns)
        parts = []
        for entry in manifest.files:
            path = self._path(name, entry.path)
            where = f"{self.uri(name)}/{entry.path}"
            try:
                part = pq.read_table(path, filesystem=self.fs, columns=columns)
            except (OSError, pa.ArrowInvalid) as exc:
                if isinstance(exc, FileNotFoundError) or not _fs.is_storage_failure(exc):
                    raise SchemaError(f"{where}: unreadable Parquet file: {exc}") from None
                raise
            if part.num_rows != entry.rows:
                raise SchemaError(f"{where}: has {part.num_rows} rows, manifest says {entry.rows}")
            missing = [c for c in expected if c not in part.column_names]
            if missing:
                raise SchemaError(f"{where}: lacks column(s) {missing} that the manifest lists")
            parts.append(part)
        if parts:
            table = pa.concat_tables(parts, promote_options="permissive")
        else:
            schema = pa.schema([(c, pa.type_for_alias(t)) for c, t in manifest.columns.items()])
            table = schema.empty_table()
        table = self._conform(name, table, f"reading {self.uri(name)}", partial=columns is not None)
        if columns is not None:
            table = table.select(columns)
        meta = {_META_KEY: json.dumps(manifest.metadata).encode()}
        return table.replace_schema_metadata(meta)

    @_fs.storage_errors
    def scan(self, name: str, columns: list[str] | None = None, batch_rows: int = 65_536) -> Iterator[pa.Table]:
        """The committed table ``name`` as a stream of tables of at most ``batch_rows`` rows.

        Memory stays bounded by ``batch_rows`` whatever the table's size: the files the manifest
        lists are read in order with ``pyarrow.parquet.ParquetFile.iter_batches``. Each batch is
        checked against the contract (the columns read); each file's rows are checked against the
        manifest once the file is read. The manifest is read when ``scan`` is called, so a table
        that is not committed fails at once, before the first batch.

        Raises:
            NotCommittedError: the table has no manifest.
            SchemaError: an unknown column, an unreadable file, or a file with other rows than the
                manifest says.
            StorageError: the storage cannot be reached while reading.

        Example:
            >>> for batch in bus.scan("candidates", ["query_id", "item_id"], batch_rows=10_000):   # doctest: +SKIP
            ...     label(batch)
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        manifest = self.manifest(name)
        if columns is not None:
            unknown = [c for c in columns if c not in manifest.columns]
            if unknown:
                raise SchemaError(f"{self.uri(name)}: no column(s) {unknown}; it has {list(manifest.columns)}")
        return self._scan_files(name, manifest, columns, batch_rows)

    def _scan_files(
        self, name: str, manifest: Manifest, columns: list[str] | None, batch_rows: int
    ) -> Iterator[pa.Table]:
        for entry in manifest.files:
            where = f"{self.uri(name)}/{entry.path}"
            rows = 0
            try:
                with self.fs.open_input_file(self._path(name, entry.path)) as handle:
                    reader = pq.ParquetFile(handle)
                    for batch in reader.iter_batches(batch_size=batch_rows, columns=columns):
                        rows += batch.num_rows
                        table = pa.Table.from_batches([batch])
                        yield self._conform(name, table, f"reading {where}", partial=columns is not None)
            except (OSError, pa.ArrowInvalid) as exc:
                if isinstance(exc, FileNotFoundError) or not _fs.is_storage_failure(exc):
                    raise SchemaError(f"{where}: unreadable Parquet file: {exc}") from None
                raise StorageError(_fs.describe_failure(self.root, self.config, exc)) from exc
            if rows != entry.rows:
                raise SchemaError(f"{where}: has {rows} rows, manifest says {entry.rows}")

    def _conform(self, name: str, table: pa.Table, where: str, partial: bool = False) -> pa.Table:
        contract = contract_for(name.split("/")[-1])
        return contract.conform(table, where, partial=partial) if contract else table

    def _write_parquet(self, name: str, rel: str, table: pa.Table) -> FileEntry:
        buf = io.BytesIO()
        pq.write_table(table.replace_schema_metadata(None), buf, compression="zstd")
        data = buf.getvalue()
        _fs.write_bytes_atomic(self.fs, self._path(name, rel), data)
        return FileEntry(path=rel, rows=table.num_rows, bytes=len(data))

    def _commit(
        self,
        name: str,
        schema: pa.Schema,
        files: list[FileEntry],
        metadata: dict[str, Any] | None,
        inputs: dict[str, str] | None,
        config_hash: str,
        fp: str,
    ) -> Manifest:
        contract = contract_for(name.split("/")[-1])
        manifest = Manifest(
            table=name,
            contract=contract.name if contract else None,
            rows=sum(f.rows for f in files),
            files=files,
            columns={f.name: str(f.type) for f in schema},
            metadata=metadata or {},
            inputs=inputs or {},
            config_hash=config_hash,
            code_version=code_version(),
            fingerprint=fp,
            created_at=now(),
        )
        _fs.write_bytes_atomic(
            self.fs, self._path(name, MANIFEST), manifest.model_dump_json(indent=2).encode()
        )
        self._remove_unlisted(name, {f.path for f in files})
        log_event(log, "committed", table=self.uri(name), rows=manifest.rows, files=len(files))
        return manifest

    def _remove_unlisted(self, name: str, keep: set[str]) -> None:
        """Delete files of earlier commits and unfinished writes (after the new manifest is in place)."""
        selector = pafs.FileSelector(self._path(name), recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            rel = posixpath.relpath(info.path, self._path(name))
            if info.type == pafs.FileType.File and rel != MANIFEST and rel not in keep:
                _fs.delete_quietly(self.fs, info.path)
        _fs.delete_quietly(self.fs, self._path(name, "_shards"))  # emptied shard-marker folders

    # -- sharded tables --------------------------------------------------------------------
    @contextmanager
    def sharded_writer(
        self,
        name: str,
        n_shards: int,
        *,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, str] | None = None,
        config_hash: str = "",
    ) -> Iterator[ShardedWriter]:
        """Write table ``name`` shard by shard; committed shards survive a crash and are skipped.

        Use ``writer.pending()`` for the shards still to do and ``writer.write(i, table)`` for
        each; the table is committed when the block ends with every shard written.

        Example:
            >>> with bus.sharded_writer("candidates", 4) as w:     # doctest: +SKIP
            ...     for i in w.pending():
            ...         w.write(i, mine_shard(i))
        """
        writer = ShardedWriter(self, name, n_shards, metadata, inputs or {}, config_hash)
        yield writer
        writer.commit()

    # -- documents and artifacts -----------------------------------------------------------
    @_fs.storage_errors
    def write_json(self, name: str, obj: Any) -> str:
        """Write a JSON document atomically; returns its URI."""
        _fs.write_bytes_atomic(
            self.fs, self._path(name), json.dumps(obj, indent=2, default=str).encode()
        )
        return self.uri(name)

    @_fs.storage_errors
    def read_json(self, name: str) -> Any:
        return json.loads(_fs.read_bytes(self.fs, self._path(name)))

    @_fs.storage_errors
    def write_text(self, name: str, text: str) -> str:
        _fs.write_bytes_atomic(self.fs, self._path(name), text.encode("utf-8"))
        return self.uri(name)

    @_fs.storage_errors
    def read_text(self, name: str) -> str:
        return _fs.read_bytes(self.fs, self._path(name)).decode("utf-8")

    @_fs.storage_errors
    def exists(self, name: str) -> bool:
        return _fs.exists(self.fs, self._path(name))

    @_fs.storage_errors
    def put_dir(self, local_dir: str | Path, name: str) -> str:
        """Copy a local folder (a model, an index) to ``name`` on the bus; a ``manifest.json``
        listing its files is written last. Returns its URI."""
        local_dir = Path(local_dir)
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
        entries = []
        for p in files:
            rel = p.relative_to(local_dir).as_posix()
            if rel == MANIFEST:
                continue
            _fs.write_bytes_atomic(self.fs, self._path(name, rel), p.read_bytes())
            entries.append({"path": rel, "bytes": p.stat().st_size})
        doc = {"artifact": name, "files": entries, "created_at": now()}
        _fs.write_bytes_atomic(self.fs, self._path(name, MANIFEST), json.dumps(doc, indent=2).encode())
        return self.uri(name)

    @_fs.storage_errors
    def get_dir(self, name: str, local_dir: str | Path) -> Path:
        """Copy a committed artifact folder from the bus to ``local_dir``."""
        try:
            doc = json.loads(_fs.read_bytes(self.fs, self._path(name, MANIFEST)))
        except (FileNotFoundError, OSError):
            raise NotCommittedError(f"{self.uri(name)}: artifact is not committed (no {MANIFEST})") from None
        local_dir = Path(local_dir)
        for entry in doc["files"]:
            target = local_dir / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_fs.read_bytes(self.fs, self._path(name, entry["path"])))
        return local_dir


class ShardedWriter:
    """Writes one table in shards; see :meth:`DataBus.sharded_writer`.

    Each shard is one Parquet file named after the shard and the table's fingerprint, followed
    by a small marker that commits it. A rerun with the same fingerprint skips committed
    shards; a shard half-written by a killed process has no marker and is written again.
    """

    def __init__(
        self,
        bus: DataBus,
        name: str,
        n_shards: int,
        metadata: dict[str, Any] | None,
        inputs: dict[str, str],
        config_hash: str,
    ):
        if n_shards < 1:
            raise ValueError("n_shards must be at least 1")
        self.bus, self.name, self.n_shards = bus, name, n_shards
        self.metadata, self.inputs, self.config_hash = metadata, inputs, config_hash
        self.fingerprint = fingerprint(inputs, config_hash, extra=f"shards={n_shards}")
        self._schema: pa.Schema | None = None

    def _marker(self, i: int) -> str:
        return self.bus._path(self.name, "_shards", self.fingerprint, f"shard-{i:05d}.json")

    def _rel(self, i: int) -> str:
        return f"shard-{self.fingerprint}-{i:05d}.parquet"

    @property
    def already_committed(self) -> bool:
        """True when the whole table is already committed with this fingerprint."""
        return self.bus.committed_with(self.name, self.fingerprint) is not None

    @_fs.storage_errors
    def done(self) -> list[int]:
        return [i for i in range(self.n_shards) if _fs.exists(self.bus.fs, self._marker(i))]

    @_fs.storage_errors
    def pending(self) -> list[int]:
        """The shards still to write (none when the table is already committed)."""
        if self.already_committed:
            return []
        finished = set(self.done())
        return [i for i in range(self.n_shards) if i not in finished]

    @_fs.storage_errors
    def write(self, i: int, table: pa.Table) -> None:
        """Write and commit shard ``i``."""
        if not 0 <= i < self.n_shards:
            raise ValueError(f"shard {i} outside 0..{self.n_shards - 1}")
        table = self.bus._conform(self.name, table, f"writing {self.bus.uri(self.name)} shard {i}")
        entry = self.bus._write_parquet(self.name, self._rel(i), table)
        _fs.write_bytes_atomic(self.bus.fs, self._marker(i), entry.model_dump_json().encode())

    @_fs.storage_errors
    def commit(self) -> Manifest:
        """Commit the table from its shards; raises if any shard is missing."""
        existing = self.bus.committed_with(self.name, self.fingerprint)
        if existing is not None:
            return existing
        missing = self.pending()
        if missing:
            raise NotCommittedError(
                f"{self.bus.uri(self.name)}: {len(missing)} shard(s) not written, e.g. {missing[:5]}"
            )
        entries = [
            FileEntry.model_validate_json(_fs.read_bytes(self.bus.fs, self._marker(i)))
            for i in range(self.n_shards)
        ]
        schema = self._shard_schema(entries)
        return self.bus._commit(
            self.name, schema, entries, self.metadata, self.inputs, self.config_hash, self.fingerprint
        )

    def _shard_schema(self, entries: list[FileEntry]) -> pa.Schema:
        """The schema every shard shares; shards with other columns are a :class:`SchemaError`."""
        schemas = [
            pq.read_schema(self.bus._path(self.name, e.path), filesystem=self.bus.fs) for e in entries
        ]
        for i, schema in enumerate(schemas[1:], start=1):
            if schema.names != schemas[0].names:
                raise SchemaError(
                    f"{self.bus.uri(self.name)}: shard {i} has columns {schema.names}, "
                    f"shard 0 has {schemas[0].names}"
                )
        try:
            return pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"{self.bus.uri(self.name)}: shards disagree on column types: {exc}") from None


def iter_batches(table: pa.Table, size: int) -> Iterable[pa.Table]:
    """Slices of ``size`` rows."""
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)

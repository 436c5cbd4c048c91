"""Step ``ingest``: the source the configuration names (ESCI-150 or the user's own files) into the bus.

``ingest.source: esci`` reads the shipped ESCI-150 data; ``ingest.source: files`` reads
``ingest.catalog``, ``ingest.queries`` and ``ingest.judgments`` (local paths or ``s3://``
URIs) with ``ingest.map``, ``ingest.grades``, ``ingest.score_bins`` and ``ingest.gains``, as
``relforge ingest files`` does. Tables from other inputs already at the run are refused unless
``ingest.replace`` is true.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from relforge.bus import DataBus, filesystem_for, is_s3
from relforge.config import RelforgeConfig
from relforge.errors import ConfigError, InputError
from relforge.ingest._esci import ingest_esci
from relforge.ingest._files import ingest_files


def _local_copy(uri: str, folder: Path, config: RelforgeConfig) -> Path:
    """A local copy of an ``s3://`` file (same file name), or the local path itself."""
    if not is_s3(uri):
        return Path(uri)
    fs, path = filesystem_for(uri, config.bus)
    target = folder / uri.rstrip("/").rsplit("/", 1)[-1]
    try:
        with fs.open_input_stream(path) as src, open(target, "wb") as dst:
            while block := src.read(1 << 24):
                dst.write(block)
    except OSError as exc:
        raise InputError(uri, None, None, f"cannot be read: {exc}") from None
    return target


def run_ingest(bus: DataBus, config: RelforgeConfig) -> dict:
    """Ingest the configured source into ``bus`` (see the module docstring).

    Returns:
        The rows per table and a one-line ``decided``.

    Raises:
        ConfigError: ``source: files`` without a catalog, queries or grades.
        InputError: the first problem in the files (naming the file as given: path or URI).
        ReplaceRefusedError: the run holds tables from other inputs and ``replace`` is off.
    """
    cfg = config.ingest
    if cfg.source == "esci":
        manifests = ingest_esci(bus, config)
        origin = "ESCI-150"
    else:
        missing = [k for k in ("catalog", "queries", "grades") if not getattr(cfg, k)]
        if missing:
            raise ConfigError(f"ingest.source=files needs ingest.{', ingest.'.join(missing)}")
        uris = {"catalog": cfg.catalog, "queries": cfg.queries, "judgments": cfg.judgments}
        with tempfile.TemporaryDirectory(prefix="relforge-ingest-") as tmp:
            local = {role: _local_copy(uri, Path(tmp), config) if uri else None for role, uri in uris.items()}
            try:
                manifests = ingest_files(
                    bus, config, catalog=local["catalog"], queries=local["queries"], judgments=local["judgments"],
                    grades=cfg.grades, gains=cfg.gains, mapping=cfg.map, score_bins=cfg.score_bins,
                )
            except InputError as exc:
                by_local = {str(p): uris[r] for r, p in local.items() if p is not None}
                if exc.file in by_local and by_local[exc.file] != exc.file:
                    raise InputError(by_local[exc.file], exc.row, exc.field, exc.message) from None
                raise
        origin = ", ".join(Path(str(u)).name for u in uris.values() if u)
    rows = {name: m.rows for name, m in manifests.items()}
    return {"tables": rows, "decided": f"from {origin}: {rows['catalog']:,} items, {rows['queries']:,} queries, "
                                       f"{rows['judgments']:,} judgments"}

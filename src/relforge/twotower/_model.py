"""The trained two-tower model on the bus (``models/two-tower``): its descriptor, a local copy
made once per version, and loading it."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from relforge.bus import DataBus
from relforge.errors import ModelError, NotCommittedError

MODEL = "models/two-tower"
DESCRIPTOR = "relforge_two_tower.json"


def read_descriptor(bus: DataBus, name: str = MODEL) -> dict[str, Any] | None:
    """The descriptor of the model at ``name`` on the bus, if it is committed."""
    if not (bus.exists(f"{name}/manifest.json") and bus.exists(f"{name}/{DESCRIPTOR}")):
        return None
    return bus.read_json(f"{name}/{DESCRIPTOR}")


def write_descriptor(folder: Path, descriptor: dict[str, Any]) -> None:
    (Path(folder) / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2, default=str), encoding="utf-8")


def local_copy(bus: DataBus, cache_dir: Path, name: str = MODEL) -> tuple[Path, dict[str, Any]]:
    """A local copy of the model at ``name`` (made once per version, atomically), and its descriptor.

    Raises:
        NotCommittedError: no trained model there (run ``relforge train-two-tower``).
    """
    descriptor = read_descriptor(bus, name)
    if descriptor is None:
        raise NotCommittedError(f"{bus.uri(name)}: no trained two-tower model; run `relforge train-two-tower` first")
    target = Path(cache_dir) / "two-tower" / descriptor["version"]
    if not (target / DESCRIPTOR).exists():
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        bus.get_dir(name, tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(target)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return target, descriptor


def load_sentence_transformer(folder: str | Path, max_seq_length: int | None = None, device: str | None = None):
    """A ``SentenceTransformer`` from a local folder, on the run's compute device.

    Raises:
        ModelError: the folder does not hold a loadable sentence-transformers model.
    """
    from sentence_transformers import SentenceTransformer

    from relforge import compute

    settings = compute.current()
    try:
        model = SentenceTransformer(str(folder), device=device or settings.device, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{folder}: not a loadable sentence-transformers model: {exc}") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def encoder_of(model, batch_size: int = 64):
    """texts -> L2-normalised float32 vectors with ``model``."""
    import numpy as np

    def encode(texts):
        if len(texts) == 0:
            return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
        vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    return encode

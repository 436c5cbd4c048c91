"""A cache of probe features on disk: an interrupted feature extraction resumes, and a rerun
with the same encoder reads the features instead of running the LLM again (never the clock:
callers measure their own time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.logs import get_logger, log_event
from relforge.tiers import Pair, PromptEncoder

log = get_logger("finetune.features")


def pair_key(pair: Pair) -> str:
    return hashlib.sha1(f"{pair.query}\x00{pair.text}".encode()).hexdigest()


class FeatureCache:
    """Features of pairs on disk, one ``.npz`` per encoder identity; only missing pairs are encoded.

    Args:
        folder: where the files live (created).

    Example:
        >>> feats = FeatureCache("~/.cache/relforge/features").get(encoder, pairs)   # doctest: +SKIP
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(
        self, encoder: PromptEncoder, pairs: Sequence[Pair], description: str | None = None, chunk: int = 64
    ) -> dict[str, np.ndarray]:
        """The encoder's features for ``pairs``, in order, computing and storing those not cached.

        Missing pairs are encoded ``chunk`` at a time and each chunk is saved at once, so an
        interrupted run keeps what it computed. The features are cached, never the time they
        took: the result has no ``seconds`` (measure a scorer's speed on its own run).
        """
        path = self.folder / f"{encoder.folder.name}-{encoder.identity()}.npz"
        stored: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                stored = {k: data[k] for k in data.files}
        keys = np.asarray([pair_key(p) for p in pairs])
        have = {k: i for i, k in enumerate(stored.get("keys", np.asarray([], dtype=str)).tolist())}
        first = {k: i for i, k in reversed(list(enumerate(keys.tolist())))}
        unique = [k for k in dict.fromkeys(keys.tolist()) if k not in have]
        for start in range(0, len(unique), chunk):
            part = unique[start : start + chunk]
            label = f"{description or encoder.folder.name} [{start + len(part)}/{len(unique)}]"
            fresh = encoder.encode([pairs[first[k]] for k in part], label)
            fresh.pop("seconds")
            fresh["keys"] = np.asarray(part)
            stored = {k: np.concatenate([stored[k], fresh[k]]) for k in fresh} if stored else fresh
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez(tmp, **stored)
            tmp.replace(path)
            log_event(log, "features cached", done=start + len(part), missing=len(unique), file=path.name)
        have = {k: i for i, k in enumerate(stored["keys"].tolist())} if stored else {}
        rows = np.asarray([have[k] for k in keys.tolist()], dtype=np.int64)
        return {k: v[rows] for k, v in stored.items() if k != "keys"}

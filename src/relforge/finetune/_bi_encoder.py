"""Fitting a bi-encoder tier: the ordered-logit map from an embedding model's cosine to grades.

The embedding model is not trained (it is the dense mining channel's, whose item vectors are
cached): each train pair's cosine similarity is computed once and an ordinal head
(:func:`~relforge.finetune.fit_probe_head` with ``head="ordinal"``: one slope and ``K - 1``
ordered cut points on the standardised cosine, CORAL loss) is fitted on the train split, its
L2 strength chosen on the calib split by ``finetune.select_metric``, with the class balance of
``finetune.balance``. The folder written is scored by :class:`relforge.tiers.BiEncoderScorer`;
the ``calibrate`` step calibrates its probabilities on calib like any tier's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.finetune._data import GradedPairs
from relforge.finetune._probe import select_probe_head
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.tiers import DEFAULT_BI_MAX_LENGTH, BiEncoder, ProbeHead, TierDescriptor

log = get_logger("finetune.bi_encoder")


def save_bi_encoder(folder: str | Path, head: ProbeHead, scale: GradeScale, base_ref: str, max_length: int) -> Path:
    """Write a bi-encoder tier folder: the descriptor (embedding model reference, token limit) and the head."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head.save(folder)
    TierDescriptor(backend="bi-encoder", head=head.head, grade_scale=scale, base_model=base_ref,
                   max_length=max_length).save(folder)
    return folder


def cut_points(head: ProbeHead) -> list[float]:
    """The cosines at which ``P(grade > k) = 1/2``, one per grade boundary (where the map's odds turn).

    Example:
        >>> h = ProbeHead("ordinal", np.array([0.5]), np.array([0.1]), np.array([[2.0]]), np.array([1.0, 0.0, -1.0]))
        >>> [round(c, 2) for c in cut_points(h)]
        [0.45, 0.5, 0.55]
    """
    w = float(head.weight[0, 0])
    if abs(w) < 1e-12:
        return [float("nan")] * len(head.bias)
    return (head.mean[0] - np.asarray(head.bias, dtype=np.float64) / w * head.std[0]).tolist()


def train_bi_encoder(
    base: str | Path,
    train: GradedPairs,
    calib: GradedPairs,
    out: str | Path,
    scale: GradeScale,
    cfg,
    cache_dir: str | Path | None,
    base_ref: str = "",
    max_length: int | None = None,
    batch_size: int = 64,
    catalog_texts: Sequence[str] | None = None,
) -> dict:
    """Compute the cosines, select the ordinal map on calib, save the tier folder.

    Args:
        base: the embedding model's folder (sentence-transformers).
        train, calib: judged pairs of the train and calib splits.
        out: the tier folder to write.
        scale: the grade scale.
        cfg: the ``finetune`` configuration (L2 grid, balance, select metric, seed).
        cache_dir: the item-vector cache folder (``<models.cache_dir>/embeddings``).
        base_ref: the model's reference, written into the descriptor (default: ``base``).
        max_length: tokens per text (default :data:`~relforge.tiers.DEFAULT_BI_MAX_LENGTH`).
        batch_size: texts per forward pass.
        catalog_texts: the catalog's item texts, to load the dense channel's cached vectors.

    Returns:
        A report: head, L2, calib metrics, the cosine cut points, seconds for cosines and fit.
    """
    started = time.perf_counter()
    length = max_length or DEFAULT_BI_MAX_LENGTH
    encoder = BiEncoder(base, max_length=length, batch_size=batch_size, cache_dir=cache_dir)
    cached = encoder.prepare_items(catalog_texts) if catalog_texts is not None else False
    train_cos = encoder.cosines(train.pairs())
    calib_cos = encoder.cosines(calib.pairs())
    cosine_seconds = time.perf_counter() - started
    fit_start = time.perf_counter()
    best, report = select_probe_head(
        train_cos[:, None], train.grade, calib_cos[:, None], calib.grade, scale.n, "ordinal", cfg.probe_l2,
        cfg.balance, cfg.select_metric, cfg.seed,
    )
    fit_seconds = time.perf_counter() - fit_start
    save_bi_encoder(out, best, scale, base_ref or str(base), length)
    means = [float(train_cos[train.grade == g].mean()) if (train.grade == g).any() else None for g in range(scale.n)]
    result = {
        "mode": "bi-encoder", "head": "ordinal", "max_length": length,
        "train_pairs": len(train), "calib_pairs": len(calib), **report,
        "cut_points": cut_points(best), "train_mean_cosine_per_grade": means,
        "item_vectors_cached": bool(cached),
        "cosine_seconds": round(cosine_seconds, 1), "fit_seconds": round(fit_seconds, 2),
    }
    log_event(log, "bi-encoder map fitted", l2=report["l2"], calib=round(report["calib_best"][cfg.select_metric], 4),
              cut_points=[round(c, 3) for c in result["cut_points"]], cosine_s=result["cosine_seconds"])
    return result

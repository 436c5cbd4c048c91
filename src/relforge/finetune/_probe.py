"""Fitting a probe tier: a linear head on a frozen causal LM's hidden state (CPU fine-tuning).

The LLM's weights do not change; its hidden state at one layer (the prompt's mean, or its
last token's) is computed once per pair by :class:`relforge.tiers.PromptEncoder` (cached on
disk by :class:`~relforge.finetune.FeatureCache`), and a linear head is trained on it in
seconds:

- ``softmax``: multinomial logistic regression (scikit-learn), one logit per grade;
- ``ordinal``: a CORAL layer (``coral_pytorch.layers.CoralLayer``: one shared weight vector
  and ``K - 1`` ordered biases), trained with the CORAL loss.

Both read standardised features and have one L2 strength, chosen on the calib split. The
folder written (:func:`save_probe`) is scored by :class:`relforge.tiers.ProbeScorer`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.finetune._data import balanced_class_weights
from relforge.finetune._feature_cache import FeatureCache
from relforge.finetune._metrics import grade_metrics
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.tiers import (
    PROBE_FILE,
    Pair,
    ProbeHead,
    PromptEncoder,
    TierDescriptor,
    count_layers,
    feature_key,
    layer_index,
)

log = get_logger("finetune.probe")



def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-6, std, 1.0)


def fit_probe_head(
    features: np.ndarray,
    grades: np.ndarray,
    n_grades: int,
    head: str = "softmax",
    l2: float = 1.0,
    class_weights: np.ndarray | None = None,
    seed: int = 13,
) -> ProbeHead:
    """Fit one head with L2 strength ``l2`` (objective: mean weighted loss + ``l2/2 * |w|^2``).

    Args:
        features: ``(n, H)``.
        grades: ``(n,)`` integer grades.
        n_grades: ``K``.
        head: ``softmax`` or ``ordinal``.
        l2: the L2 strength on standardised features.
        class_weights: optional weight per grade.
        seed: for the solver's initialisation.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(grades, dtype=np.int64)
    mean, std = _standardise(x)
    z = (x - mean) / std
    if head == "softmax":
        from sklearn.linear_model import LogisticRegression

        cw = None if class_weights is None else {g: float(w) for g, w in enumerate(class_weights)}
        model = LogisticRegression(C=1.0 / (l2 * len(y)), class_weight=cw, max_iter=3000, random_state=seed)
        model.fit(z, y)
        weight = np.zeros((n_grades, x.shape[1]))
        bias = np.full(n_grades, -1e4)  # a grade never seen in training gets no probability
        weight[model.classes_] = model.coef_ if len(model.classes_) > 2 else np.vstack([-model.coef_, model.coef_]) / 2
        bias[model.classes_] = model.intercept_ if len(model.classes_) > 2 else np.array([-1, 1]) * model.intercept_ / 2
        return ProbeHead("softmax", mean, std, weight, bias)
    if head == "ordinal":
        import torch
        from coral_pytorch.layers import CoralLayer

        from relforge.finetune.losses import coral_pair_loss

        torch.manual_seed(seed)
        zt = torch.tensor(z, dtype=torch.float32)
        yt = torch.tensor(y)
        cw = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        layer = CoralLayer(x.shape[1], n_grades)
        optimizer = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=500, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = coral_pair_loss(layer(zt), yt, cw) + 0.5 * l2 * layer.coral_weights.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return ProbeHead(
            "ordinal", mean, std,
            layer.coral_weights.weight.detach().numpy().astype(np.float64),
            layer.coral_bias.detach().numpy().astype(np.float64),
        )
    raise ValueError(f"unknown head {head!r}; use softmax or ordinal")


def select_probe_head(
    train_x: np.ndarray,
    train_y: np.ndarray,
    calib_x: np.ndarray,
    calib_y: np.ndarray,
    n_grades: int,
    head: str,
    l2_grid: Sequence[float],
    balance: str = "class-weights",
    metric: str = "qwk",
    seed: int = 13,
) -> tuple[ProbeHead, dict]:
    """Fit a head per L2 strength on train, keep the best on calib by ``metric``.

    ``balance`` ``class-weights`` and ``sampler`` both weight the loss by balanced class
    weights (a full-batch fit has no batches to sample).

    Returns:
        The best head and a report (``l2``, calib metrics per L2).
    """
    weights = balanced_class_weights(train_y, n_grades) if balance != "none" else None
    best, best_score, tried = None, -np.inf, []
    for l2 in l2_grid:
        candidate = fit_probe_head(train_x, train_y, n_grades, head, l2, weights, seed)
        m = grade_metrics(calib_y, candidate.probs(calib_x).argmax(axis=1), n_grades)
        tried.append({"l2": l2, **m})
        if m[metric] > best_score:
            best, best_score = candidate, m[metric]
    assert best is not None
    chosen = max(tried, key=lambda t: t[metric])
    return best, {"l2": chosen["l2"], "calib_best": {k: chosen[k] for k in ("accuracy", "macro_f1", "qwk")}, "tried": tried}


def save_probe(
    folder: str | Path,
    head: ProbeHead,
    scale: GradeScale,
    base_ref: str,
    layer: int,
    n_layers: int,
    pooling: str,
    max_length: int,
    batch_size: int = 16,
    extra: dict | None = None,
) -> Path:
    """Write a probe tier folder: descriptor (with the prompt length it was trained at),
    ``probe.json`` and the head's weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head.save(folder)
    spec = {"layer": layer, "n_layers": n_layers, "pooling": pooling, "max_length": max_length,
            "batch_size": batch_size, **(extra or {})}
    (folder / PROBE_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    TierDescriptor(backend="probe", head=head.head, grade_scale=scale, base_model=base_ref,
                   max_length=max_length).save(folder)
    return folder


def train_probe(
    base: str | Path,
    train_pairs: Sequence[Pair],
    train_grades: np.ndarray,
    calib_pairs: Sequence[Pair],
    calib_grades: np.ndarray,
    out: str | Path,
    scale: GradeScale,
    cfg,
    cache_dir: str | Path,
    head: str | None = None,
    base_ref: str = "",
) -> dict:
    """Extract (or read cached) features, select the head on calib, save the probe folder.

    Args:
        base: the LLM folder.
        train_pairs, train_grades: training pairs and grades.
        calib_pairs, calib_grades: pairs choosing the L2 strength.
        out: the probe folder to write.
        scale: the grade scale.
        cfg: the ``finetune`` configuration (layer, pooling, lengths, L2 grid, balance).
        cache_dir: where features are cached.
        head: ``softmax`` or ``ordinal`` (default ``cfg.head``).
        base_ref: the LLM's reference, written into the descriptor (default: ``base``).

    Returns:
        A report: head, layer, pooling, L2, calib metrics, seconds for features and fit.
    """
    head = head or cfg.head
    started = time.perf_counter()
    layer = layer_index(cfg.probe_layer, count_layers(base))
    settings = {"layers": [layer], "poolings": [cfg.probe_pooling], "max_length": cfg.llm_max_length,
                "batch_size": cfg.llm_batch_size}
    # train: the features only (the forward stops at the probe's layer); calib: also the
    # zero-shot grade logits (every layer), the starting point the probe must beat
    train_encoder = PromptEncoder(base, scale, logits=False, **settings)
    calib_encoder = PromptEncoder(base, scale, logits=True, **settings)
    cache = FeatureCache(cache_dir)
    key = feature_key(cfg.probe_pooling, layer)
    train_f = cache.get(train_encoder, train_pairs, "probe features (train)")
    calib_f = cache.get(calib_encoder, calib_pairs, "probe features (calib)")
    encoder = calib_encoder
    feature_seconds = time.perf_counter() - started
    ok_t, ok_c = ~train_f["failed"], ~calib_f["failed"]
    fit_start = time.perf_counter()
    best, report = select_probe_head(
        train_f[key][ok_t], np.asarray(train_grades)[ok_t], calib_f[key][ok_c], np.asarray(calib_grades)[ok_c],
        scale.n, head, cfg.probe_l2, cfg.balance, cfg.select_metric, cfg.seed,
    )
    fit_seconds = time.perf_counter() - fit_start
    zero_shot = grade_metrics(np.asarray(calib_grades)[ok_c], calib_f["grade_logits"][ok_c].argmax(axis=1), scale.n)
    save_probe(out, best, scale, base_ref or str(base), layer, encoder.n_layers, cfg.probe_pooling,
               cfg.llm_max_length, cfg.llm_batch_size)
    result = {
        "mode": "probe", "head": head, "layer": layer, "n_layers": encoder.n_layers, "pooling": cfg.probe_pooling,
        "train_pairs": int(ok_t.sum()), "calib_pairs": int(ok_c.sum()), "calib_zero_shot": zero_shot,
        **report, "feature_seconds": round(feature_seconds, 1), "fit_seconds": round(fit_seconds, 2),
    }
    log_event(log, "probe trained", head=head, layer=layer, l2=report["l2"],
              calib=round(report["calib_best"][cfg.select_metric], 4), fit_s=result["fit_seconds"])
    return result

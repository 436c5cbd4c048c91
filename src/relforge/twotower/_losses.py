"""The stage losses by name: sentence-transformers' own loss classes, and the batches each needs.

=============== ================================================ ==========================
name            sentence-transformers loss                       batches
=============== ================================================ ==========================
``mnrl``        ``MultipleNegativesRankingLoss``                 ``NO_DUPLICATES``
``cached-mnrl`` ``CachedMultipleNegativesRankingLoss`` (GradCache ``NO_DUPLICATES``
                mini-batches: large batches in little memory)
``triplet``     ``TripletLoss``                                  ``NO_DUPLICATES``
``cosent``      ``CoSENTLoss`` (graded targets)                   random
``margin-mse``  ``MarginMSELoss`` (target margins)                random
=============== ================================================ ==========================

In-batch negatives make a batch that holds one query twice (or one item twice) teach the model
that a relevant item is irrelevant; ``NO_DUPLICATES`` batches never repeat a text.

Example:
    >>> loss = build_loss("cosent", model, TwoTowerConfig())       # doctest: +SKIP
"""

from __future__ import annotations

from relforge.config import TwoTowerConfig

#: Losses whose batches must not repeat a text (in-batch negatives).
NO_DUPLICATE_LOSSES = ("mnrl", "cached-mnrl", "triplet")


def build_loss(name: str, model, cfg: TwoTowerConfig):
    """The sentence-transformers loss ``name`` on ``model`` (see the module docstring)."""
    from sentence_transformers.sentence_transformer import losses

    if name == "mnrl":
        return losses.MultipleNegativesRankingLoss(model, scale=20.0)
    if name == "cached-mnrl":
        return losses.CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=cfg.mini_batch_size)
    if name == "triplet":
        return losses.TripletLoss(model)
    if name == "cosent":
        return losses.CoSENTLoss(model)
    if name == "margin-mse":
        return losses.MarginMSELoss(model)
    raise ValueError(f"unknown two-tower loss {name!r}")


def stage_batch_sampler(dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
    """The batch sampler of one dataset: ``NO_DUPLICATES`` for the contrastive layouts (a
    ``positive`` or ``anchor`` column without a label), random batches for the graded ones.

    Given to ``SentenceTransformerTrainingArguments(batch_sampler=...)``, so that one trainer with
    several datasets (the no-curriculum run) gives each the batches its loss needs.
    """
    from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler
    from torch.utils.data import RandomSampler

    columns = set(dataset.column_names)
    graded = bool(columns & {"label", "score"})
    kwargs = {"batch_size": batch_size, "drop_last": drop_last, "valid_label_columns": valid_label_columns,
              "generator": generator, "seed": seed}
    if not graded:
        return NoDuplicatesBatchSampler(dataset, **kwargs)
    return DefaultBatchSampler(RandomSampler(dataset, generator=generator), **kwargs)

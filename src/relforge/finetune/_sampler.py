"""Class-balanced batches for ``CrossEncoderTrainer``: every grade drawn equally often."""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler
from torch.utils.data import WeightedRandomSampler


class BalancedBatchSampler(DefaultBatchSampler):
    """Batches drawn with replacement, each pair weighted by ``1 / count(its grade)``.

    An epoch has as many pairs as the data set; rare grades are seen more often, common ones
    less. Pass the class (not an instance) as ``CrossEncoderTrainingArguments(batch_sampler=...)``.

    Args:
        dataset: a ``datasets.Dataset`` with a ``label`` column (or another of
            ``valid_label_columns``).
        batch_size, drop_last, valid_label_columns, generator, seed: as the trainer passes them.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        column = next((c for c in (valid_label_columns or ["label"]) if c in dataset.column_names), None)
        if column is None:
            raise ValueError(f"BalancedBatchSampler needs a label column, the data set has {dataset.column_names}")
        labels = np.asarray(dataset[column], dtype=np.int64)
        counts = np.bincount(labels)
        weights = 1.0 / counts[labels]
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        sampler = WeightedRandomSampler(weights.tolist(), num_samples=len(labels), replacement=True, generator=generator)
        super().__init__(sampler, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)

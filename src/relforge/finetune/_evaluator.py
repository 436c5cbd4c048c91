"""A sentence-transformers evaluator that scores a grade head on held-out pairs (early stopping)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from relforge.finetune._metrics import grade_metrics
from relforge.tiers import head_probs


class GradeEvaluator(BaseEvaluator):
    """Accuracy, macro-F1 and quadratic-weighted kappa of a cross-encoder grade head.

    The trainer calls it every ``eval_steps``; with ``metric_for_best_model`` set to
    ``eval_<name>_<primary>`` the best checkpoint on these pairs is kept (early stopping).

    Args:
        pairs: (query, item text) pairs.
        grades: their human grades.
        head: ``softmax`` or ``ordinal``.
        n_grades: grades on the scale.
        name: metric prefix, e.g. ``calib``.
        primary: ``accuracy``, ``macro_f1`` or ``qwk``.
        batch_size: pairs per forward pass.

    Example:
        >>> ev = GradeEvaluator(pairs, grades, "ordinal", 4, name="calib")    # doctest: +SKIP
        >>> ev(model)["calib_qwk"]                                             # doctest: +SKIP
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        grades: Sequence[int],
        head: str,
        n_grades: int,
        name: str = "calib",
        primary: str = "qwk",
        batch_size: int = 32,
    ):
        super().__init__()
        if len(pairs) != len(grades):
            raise ValueError("pairs and grades must have the same length")
        self.pairs = [(str(q), str(t)) for q, t in pairs]
        self.grades = np.asarray(grades, dtype=np.int64)
        self.head = head
        self.n_grades = n_grades
        self.name = name
        self.primary_metric = primary
        self.batch_size = batch_size

    def predict(self, model) -> np.ndarray:
        """The grade probabilities the model gives these pairs."""
        outputs = model.predict(
            self.pairs,
            batch_size=self.batch_size,
            activation_fn=torch.nn.Identity(),
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return head_probs(outputs, self.head)

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        predicted = self.predict(model).argmax(axis=1)
        metrics = self.prefix_name_to_metrics(grade_metrics(self.grades, predicted, self.n_grades), self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def evaluation_cadence(n_train: int, batch_size: int, epochs: float, eval_steps: int | None, evals_per_epoch: int,
                       grad_accum: int = 1) -> tuple[int, int]:
    """``(eval_steps, total_steps)``: calib evaluations every ``eval_steps`` optimizer steps (given,
    else ``evals_per_epoch`` per epoch), and the run's optimizer steps."""
    per_epoch = max(1, -(-n_train // (batch_size * grad_accum)))
    total = max(1, round(per_epoch * epochs))
    return eval_steps or max(1, per_epoch // evals_per_epoch), total


def early_stopping(patience: int, min_steps: int):
    """An ``EarlyStoppingCallback`` that never stops before ``min_steps`` optimizer steps."""
    from transformers import EarlyStoppingCallback

    class _EarlyStoppingAfter(EarlyStoppingCallback):
        def on_evaluate(self, args, state, control, metrics, **kwargs):
            super().on_evaluate(args, state, control, metrics, **kwargs)
            if state.global_step < min_steps:
                control.should_training_stop = False

    return _EarlyStoppingAfter(early_stopping_patience=patience)

"""Proposed configuration section of step ``calibrate`` (to move into ``relforge/config.py``).

Kept here until it moves, so that it can be reviewed beside the code that reads it; the
``_Section`` base is a copy of ``relforge.config._Section`` (extra keys are errors).

Example:
    >>> CalibrateConfig(routing="budget", budget=2.0).folds
    5
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CalibrationMethod = Literal["none", "temperature", "top-label-isotonic", "per-class-isotonic"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CalibrateConfig(_Section):
    """Step `calibrate`: per-tier calibrators, routing thresholds and the calibration gate, on the calib split.

    Thresholds are chosen on all calib pairs; their accuracy and cost are estimated by
    cross-fitting over query folds (calibrators refitted in each fold), with bootstrap CIs
    over queries. The gate fails the run when the estimate misses the target accuracy (or,
    in ``budget`` mode, the budget), when the calibrated top-label ECE exceeds ``gate_max_ece``,
    or, with ``gate_qwk_above_zero``, when the QWK's CI does not lie above 0.
    """

    method: CalibrationMethod = Field(
        default="per-class-isotonic",
        description="the calibration the product uses: one isotonic map per grade (one-vs-rest), renormalised",
    )
    baselines: list[CalibrationMethod] = Field(
        default_factory=lambda: ["none", "temperature", "top-label-isotonic"],
        description="methods measured beside `method` on the same out-of-fold pairs; the best is compared with "
        "`method` by a paired bootstrap over queries and McNemar's test",
    )
    ece_bins: int = Field(
        default=15, ge=2,
        description="equal-mass bins of the ECEs and reliability diagrams; with ~1,300 calib pairs, 15 bins of ~87 "
        "pairs give even perfectly calibrated probabilities an ECE near 0.04 from sampling noise",
    )
    min_positives: int = Field(
        default=20, ge=1,
        description="a grade with fewer positive (or negative) calib pairs keeps the identity map in the isotonic "
        "methods (its probability passes through, then the row is renormalised)",
    )
    floor: float = Field(
        default=1e-4, gt=0, lt=0.5,
        description="least calibrated probability (then renormalised): no all-zero rows, no infinite NLL",
    )
    routing: Literal["target-accuracy", "budget"] = Field(
        default="target-accuracy",
        description="target-accuracy: least mean cost per pair with accuracy >= target_accuracy; "
        "budget: best accuracy with mean cost per pair <= budget",
    )
    target_accuracy: float = Field(
        default=0.6, ge=0, le=1,
        description="accuracy against the human grades the cascade must reach (target-accuracy mode)",
    )
    budget: float | None = Field(
        default=None, ge=0,
        description="mean cost per pair allowed, in the tiers' cost units (budget mode; required there)",
    )
    grid: int = Field(default=50, ge=2, description="quantiles of each tier's confidence tried as thresholds")
    folds: int = Field(default=5, ge=2, description="query folds for cross-fitting the thresholds and calibrators")
    bootstrap_reps: int = Field(default=1000, ge=100, description="bootstrap replicates (queries resampled)")
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 13
    guarantee: bool = Field(
        default=False,
        description="guaranteed mode: fixed-sequence thresholds (Jung et al. 2024) so that, with probability "
        ">= 1 - delta over calib draws, accepted pairs agree with humans at >= guarantee_agreement; pairs no "
        "tier accepts go to human review",
    )
    guarantee_agreement: float | None = Field(
        default=None, gt=0, lt=1,
        description="the agreement guaranteed mode certifies (unset: target_accuracy)",
    )
    delta: float = Field(default=0.1, gt=0, lt=1, description="error level of the guarantee")
    gate_max_ece: float | None = Field(
        default=0.1, gt=0, le=1,
        description="largest calibrated top-label ECE (cross-fitted, per tier) the gate accepts; unset: not gated",
    )
    gate_qwk_above_zero: bool = Field(
        default=True,
        description="the gate requires the cross-fitted QWK's bootstrap CI lower bound to be above 0",
    )

    @model_validator(mode="after")
    def _mode_has_its_setting(self) -> CalibrateConfig:
        if self.routing == "budget" and self.budget is None:
            raise ValueError("routing `budget` needs `budget` (mean cost per pair)")
        if self.method in self.baselines:
            raise ValueError(f"`{self.method}` is the method; it cannot also be a baseline")
        if len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"baselines must be distinct, got {self.baselines}")
        if self.guarantee and not 0 < self.agreement_to_guarantee < 1:
            raise ValueError("guaranteed mode needs an agreement in (0, 1): set guarantee_agreement")
        return self

    @property
    def agreement_to_guarantee(self) -> float:
        """The agreement guaranteed mode certifies."""
        return self.guarantee_agreement if self.guarantee_agreement is not None else self.target_accuracy

"""The calibration gate: whether the calibrated cascade's labels are good enough to make.

Every check reads the **cross-fitted** estimate (each calib pair routed by thresholds and
calibrators fitted without its query), never the calib pairs' own fit:

- ``accuracy`` (mode ``target-accuracy``): the expected accuracy reaches ``target_accuracy``;
  ``budget`` (mode ``budget``): the expected mean cost per pair stays within ``budget``;
- ``ece``: the cascade's calibrated top-label ECE (equal-mass bins) is at most ``gate_max_ece``:
  the confidences the routing thresholds act on mean what they say;
- ``qwk``: the lower end of the QWK's bootstrap CI (queries resampled) is above 0, the QWK of
  the majority class: the labels carry ordinal signal beyond a constant answer. Accuracy alone
  cannot be the gate: on ESCI-150's unseen queries no tier beats the majority class's accuracy;
- ``guarantee`` (guaranteed mode): some tier has a threshold meeting the guarantee asked for.

Example:
    >>> result = check_gate(estimate, ece=0.04, config=CalibrateConfig())     # doctest: +SKIP
    >>> result.passed, result.reasons                                        # doctest: +SKIP
    (False, ['cross-fitted QWK 0.02, CI [-0.08, 0.12]: does not beat the majority class (0) beyond its CI'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from relforge.calibrate._crossfit import CascadeEstimate
from relforge.calibrate._guarantee import GuaranteedCascade
from relforge.config import CalibrateConfig


@dataclass(frozen=True)
class GateCheck:
    """One check: its name, the value measured, the limit, whether it passed, and a sentence."""

    name: str
    passed: bool
    value: float
    limit: float
    detail: str


@dataclass
class GateResult:
    """The gate's verdict. ``enabled`` False: nothing was enforced (the checks are still reported)."""

    enabled: bool
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.enabled or all(c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        """The failed checks' sentences (empty when every check passed)."""
        return [c.detail for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, object]:
        return {"enabled": self.enabled, "passed": self.passed, "reasons": self.reasons,
                "checks": [asdict(c) for c in self.checks]}


def _ci(pair: tuple[float, float]) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def check_gate(
    estimate: CascadeEstimate,
    ece: float,
    config: CalibrateConfig,
    guaranteed: GuaranteedCascade | None = None,
) -> GateResult:
    """The gate's checks on a cross-fitted cascade estimate (see the module docstring).

    Args:
        estimate: from :func:`~relforge.calibrate.crossfit_cascade`.
        ece: the cascade's cross-fitted top-label ECE.
        config: the ``calibrate`` section (targets and limits).
        guaranteed: the guaranteed-mode result, when ``config.guarantee``.
    """
    cf, ci = estimate.crossfit, estimate.ci
    checks: list[GateCheck] = []
    if estimate.mode == "target-accuracy":
        target = float(config.target_accuracy)
        ok = cf.accuracy >= target
        checks.append(GateCheck(
            "accuracy", ok, cf.accuracy, target,
            f"cross-fitted accuracy {cf.accuracy:.3f} {_ci(ci['accuracy'])} "
            + ("reaches" if ok else "is below") + f" the target {target:.3f} (calibrate.target_accuracy)",
        ))
    else:
        budget = float(config.budget or 0.0)
        ok = cf.mean_cost <= budget
        checks.append(GateCheck(
            "budget", ok, cf.mean_cost, budget,
            f"cross-fitted mean cost per pair {cf.mean_cost:.4g} {_ci(ci['mean_cost'])} "
            + ("is within" if ok else "exceeds") + f" the budget {budget:.4g} (calibrate.budget)",
        ))
    if config.gate_max_ece is not None:
        ok = ece <= config.gate_max_ece
        checks.append(GateCheck(
            "ece", ok, float(ece), float(config.gate_max_ece),
            f"cross-fitted top-label ECE of the cascade {ece:.3f} "
            + ("is within" if ok else "is above") + f" the limit {config.gate_max_ece:.3f} (calibrate.gate_max_ece)",
        ))
    if config.gate_qwk_above_zero:
        low = ci["qwk"][0]
        ok = low > 0.0
        checks.append(GateCheck(
            "qwk", ok, float(cf.qwk), 0.0,
            f"cross-fitted QWK {cf.qwk:.3f}, CI {_ci(ci['qwk'])}: "
            + ("beats" if ok else "does not beat") + " the majority class's QWK (0) beyond its CI",
        ))
    if config.guarantee:
        ok = guaranteed is not None and guaranteed.guaranteed
        coverage = guaranteed.coverage if guaranteed is not None else 0.0
        checks.append(GateCheck(
            "guarantee", ok, float(coverage), float(config.agreement_to_guarantee),
            (f"guaranteed mode: tiers accept {coverage:.1%} of calib pairs with agreement >= "
             f"{config.agreement_to_guarantee:.2f} at probability >= {1 - config.delta:.2f}") if ok else
            (f"guaranteed mode: no tier has a threshold whose accepted pairs agree with humans at >= "
             f"{config.agreement_to_guarantee:.2f} with probability >= {1 - config.delta:.2f} "
             "(calibrate.guarantee_agreement, calibrate.delta)"),
        ))
    return GateResult(enabled=config.gate, checks=checks)

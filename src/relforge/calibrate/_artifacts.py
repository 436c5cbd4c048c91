"""Calibrators as versioned artifacts on the bus, and the cascade document ``annotate`` reads.

- ``calibrators/<tier>/``: an artifact folder (its ``manifest.json`` written last) beside the
  tier models (``models/<tier>/``), holding ``calibrator.json`` (the calibrator's state,
  :func:`~relforge.calibrate.save_calibrator`) and ``model.json``: which tier, which model
  (``model``, ``model_fingerprint``), the method, what it was fitted on, when. Loading one for
  another model version is refused (:func:`load_tier_calibrator`).
- ``calibrators/cascade.json``: the cascade as calibrated: its tiers with their model
  fingerprints and measured costs, the thresholds, the cross-fitted estimate, the gate's
  verdict. ``annotate`` refuses to run on a cascade whose gate failed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from relforge.bus import DataBus
from relforge.calibrate._calibrators import Calibrator, load_calibrator, save_calibrator
from relforge.calibrate._tiers import TierModel
from relforge.errors import ModelError, NotCommittedError

CASCADE = "calibrators/cascade.json"
MODEL_FILE = "model.json"
#: the version of ``cascade.json``'s layout
CASCADE_VERSION = 1


def calibrator_path(tier: str) -> str:
    return f"calibrators/{tier}"


def save_tier_calibrator(bus: DataBus, tier: TierModel, calibrator: Calibrator, fitted_on: dict[str, Any]) -> str:
    """Save ``calibrator`` for ``tier`` as ``calibrators/<tier>/``; returns its URI."""
    from relforge.bus._manifest import now

    with tempfile.TemporaryDirectory(prefix="relforge-calibrator-") as tmp:
        save_calibrator(calibrator, Path(tmp) / "calibrator.json")
        doc = {
            "tier": tier.name, "position": tier.position, "model": tier.ref, "model_fingerprint": tier.fingerprint,
            "backend": tier.backend, "method": calibrator.method, "fitted_on": fitted_on, "created_at": now(),
        }
        (Path(tmp) / MODEL_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return bus.put_dir(tmp, calibrator_path(tier.name))


def load_tier_calibrator(bus: DataBus, tier: str, fingerprint: str) -> tuple[Calibrator, dict[str, Any]]:
    """The calibrator saved for ``tier`` and its ``model.json``, if it was fitted for model version ``fingerprint``.

    Raises:
        NotCommittedError: no calibrator for ``tier`` (run ``calibrate`` first).
        ModelError: it was fitted for another model version (the tier was fine-tuned again, or
            its model or scoring settings changed), or its files are not a usable calibrator.
    """
    with tempfile.TemporaryDirectory(prefix="relforge-calibrator-") as tmp:
        try:
            bus.get_dir(calibrator_path(tier), tmp)
        except NotCommittedError:
            raise NotCommittedError(f"{bus.uri(calibrator_path(tier))}: no calibrator for tier `{tier}`; "
                                    "run `relforge calibrate` first") from None
        doc = json.loads((Path(tmp) / MODEL_FILE).read_text(encoding="utf-8"))
        if doc.get("model_fingerprint") != fingerprint:
            raise ModelError(
                f"{bus.uri(calibrator_path(tier))}: fitted for tier `{tier}` model version "
                f"{doc.get('model_fingerprint')} ({doc.get('model')}), but the tier is now version {fingerprint}; "
                "a calibrator never applies to another model version: rerun `relforge calibrate`"
            )
        return load_calibrator(Path(tmp) / "calibrator.json"), doc


def write_cascade(bus: DataBus, doc: dict[str, Any]) -> str:
    return bus.write_json(CASCADE, {"version": CASCADE_VERSION, **doc})


def read_cascade(bus: DataBus) -> dict[str, Any]:
    """``calibrators/cascade.json``.

    Raises:
        NotCommittedError: ``calibrate`` has not run on this bus.
        ModelError: a layout this relforge does not read.
    """
    if not bus.exists(CASCADE):
        raise NotCommittedError(f"{bus.uri(CASCADE)}: no calibrated cascade; run `relforge calibrate` first")
    doc = bus.read_json(CASCADE)
    if doc.get("version") != CASCADE_VERSION:
        raise ModelError(f"{bus.uri(CASCADE)}: layout version {doc.get('version')}, this relforge reads {CASCADE_VERSION}")
    return doc

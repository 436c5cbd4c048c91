"""The cold-start sub-run: the synthetic queries as a run of their own, beside the real one.

``<run>/coldstart`` is an ordinary run: ``catalog`` (a copy of the run's), ``queries`` (the kept
synthetic queries, split ``train`` / ``calib``, each with its ``source_item_id``), then
``candidates``, ``labels`` (the teacher's) and ``judgments`` (the teacher's grades, ``source``
``teacher:<model>``), with the run's grade scale in their metadata. The steps that read a run
read it unchanged (``relforge mine --run R/coldstart``, ``relforge finetune-tiers --run
R/coldstart``), and the real run's ``queries`` and human ``judgments`` are never mixed with
synthetic ones: the test split stays human, and human judgments calibrate and evaluate only.
The sub-run also holds ``generated_queries`` (everything the generator wrote) and
``synthetic_queries`` (each generated query with the filter that removed it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from relforge.bus import DataBus

#: The sub-run's folder under the run, and the prefix of its tables' names on the run's bus.
SUBRUN = "coldstart"


def coldstart_bus(bus: DataBus) -> DataBus:
    """The cold-start sub-run of the run on ``bus`` (same storage settings)."""
    return DataBus(bus.uri(SUBRUN), bus.config)


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable hash of a step's settings (the ones that change what it writes)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

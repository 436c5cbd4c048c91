"""The cascade's tiers as the steps ``calibrate`` and ``annotate`` see them: which model each tier
is, its version (fingerprint), a local copy of it, and its scorer.

A tier's model: its configured reference (``tiers.specs.<tier>.model``, else ``models.<tier>``;
a folder, ``s3://``, ``packaged:``; for a remote backend the folder that gives the tokenizer and
prompt, the server serving the model) is the base ``finetune-tiers`` starts from. When the bus
holds ``models/<tier>`` fine-tuned **from that reference** (its ``finetune.json`` says so), the
tier is that fine-tuned folder, copied once into ``<models.cache_dir>/bus-models/<tier>-<version>``;
otherwise it is the reference itself (a model used as it is, or zero-shot).

Its **fingerprint** identifies what the tier computes: the model version (``finetune-tiers``'
own fingerprint for a bus folder, else a hash of the folder's files) and the settings that
change its scores (backend, token limit, prompt, served model name). Scores cached on the bus
and calibrators are keyed by it: a calibrator never applies to another model version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, TierSpec
from relforge.errors import ConfigError
from relforge.finetune import served_model_uri
from relforge.grades import GradeScale
from relforge.tiers import (
    PooledScorer,
    TierScorer,
    load_scorer,
    model_fingerprint,
    pool_for,
    resolve_model_ref,
)

#: the report ``finetune-tiers`` writes into each tier folder (its ``fingerprint`` is the model version)
TIER_REPORT = "finetune.json"


@dataclass(frozen=True)
class TierModel:
    """One tier of the cascade, resolved.

    Attributes:
        name: the tier's key in ``tiers.specs`` (``tier0``).
        position: its place in the cascade (0 = cheapest).
        spec: its spec, with ``model`` set to the local folder.
        ref: where the model came from, as the ``labels`` table's ``model`` column records it
            (a bus URI, a configured reference).
        source: ``bus`` (fine-tuned by ``finetune-tiers`` from the configured reference), ``config``
            (``tiers.specs.<tier>.model`` used as it is) or ``base`` (``models.<tier>``, zero-shot).
        fingerprint: the model version and its scoring settings (see the module docstring).
        served_uri: for a tier served by a pool (``tiers.specs.<tier>.pool``), the model version the
            pool must load (:func:`relforge.finetune.served_model_uri`).
    """

    name: str
    position: int
    spec: TierSpec
    ref: str
    source: str
    fingerprint: str
    served_uri: str | None = None

    @property
    def backend(self) -> str:
        return self.spec.backend

    @property
    def remote(self) -> bool:
        return self.spec.backend in ("tgi", "openai")

    def scorer(self, scale: GradeScale, config: RelforgeConfig) -> TierScorer:
        """Build the tier's scorer (loads the model; call only when there is something to score)."""
        def make() -> TierScorer:
            return load_scorer(self.spec, scale, config.models, bus=config.bus)

        pool = pool_for(self.spec, config.cluster)  # raised and ready before the scorer; closing it lowers the pool
        scorer = make() if pool is None else PooledScorer(pool, self.served_uri, make)
        scorer.name = self.name
        return scorer


def _settings_hash(model_version: str, spec: TierSpec) -> str:
    settings = spec.model_dump(mode="json", include={"backend", "max_length", "prompt", "served_model"})
    payload = json.dumps({"model": model_version, "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _bus_copy(bus: DataBus, name: str, version: str, config: RelforgeConfig) -> Path:
    """A local copy of ``models/<name>`` from the bus, made once per model version."""
    root = Path(config.models.cache_dir).expanduser() / "bus-models"
    target = root / f"{name}-{version}"
    if (target / TIER_REPORT).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        bus.get_dir(f"models/{name}", tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process made it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_tier(bus: DataBus, config: RelforgeConfig, name: str) -> TierModel:
    """The model, version and local folder of tier ``name`` (see the module docstring).

    Raises:
        ConfigError: ``name`` is not in ``tiers.names``, or has no model at all.
        ModelError: the model cannot be resolved.
    """
    names = config.tiers.names
    if name not in names:
        raise ConfigError(f"tier `{name}` is not in tiers.names {names}")
    spec = config.tiers.spec(name)
    configured = spec.model or getattr(config.models, name, None)
    report = None
    if bus.exists(f"models/{name}/manifest.json") and bus.exists(f"models/{name}/{TIER_REPORT}"):
        report = bus.read_json(f"models/{name}/{TIER_REPORT}")
        if configured and str(report.get("base_model")) != str(configured):
            report = None  # fine-tuned from another base: not this tier's model any more
    if report is not None:
        version = str(report.get("fingerprint") or "")
        if not version:
            raise ConfigError(f"{bus.uri(f'models/{name}/{TIER_REPORT}')}: no fingerprint; rerun finetune-tiers")
        folder = _bus_copy(bus, name, version, config)
        ref, source = bus.uri(f"models/{name}"), "bus"
    elif configured:
        folder = resolve_model_ref(configured, config.models, config.bus)
        ref, source, version = str(configured), "config" if spec.model else "base", model_fingerprint(folder)
    else:
        raise ConfigError(f"tier `{name}` has no model: set tiers.specs.{name}.model or models.{name}")
    local = spec.model_copy(update={"model": str(folder), "name": name})
    served = served_model_uri(bus, config, name) if spec.pool is not None else None
    return TierModel(name=name, position=names.index(name), spec=local, ref=ref, source=source,
                     fingerprint=_settings_hash(version, local), served_uri=served)


def resolve_tiers(bus: DataBus, config: RelforgeConfig) -> list[TierModel]:
    """Every tier of ``tiers.names``, cheapest first."""
    return [resolve_tier(bus, config, name) for name in config.tiers.names]

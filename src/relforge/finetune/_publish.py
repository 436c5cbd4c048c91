"""The models the tier pools serve: immutable, versioned folders on the bus.

``finetune-tiers`` writes each tier to ``models/<tier>``, in place: a server loading that folder
while a later fine-tuning rewrites it would load a half-replaced model. So for a tier served by a
pool (backend ``tgi`` or ``openai``, fine-tuned with LoRA) the step also publishes the merged
folder to ``models/<tier>/versions/<version>/``, where the version is the tier's fine-tuning
fingerprint (the model version ``calibrate`` keys its calibrators by). The version's
``manifest.json`` is written last; a version whose manifest exists is never written again. The
version's URI (:func:`served_model_uri`) is what the scoring step hands to
:meth:`relforge.tiers.TierPool.serving`, and the pool's init container copies it.

Only a folder a server can load is published: a causal LM's config and weights. A probe folder
(a classifier head over a frozen model's hidden states, without the model's weights) is refused
with a clear error, as is a remote tier whose model is one.

Example:
    >>> served_model_uri(DataBus("s3://bucket/run"), config, "tier2")   # doctest: +SKIP
    's3://bucket/run/models/tier2/versions/3f2a9c0d1e2b4a5c'
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.errors import ConfigError, ModelError
from relforge.logs import get_logger, log_event
from relforge.tiers import DESCRIPTOR, TierDescriptor

log = get_logger("finetune.publish")

#: Backends whose model a server pool serves (the merged LoRA folder).
SERVED_BACKENDS = ("tgi", "openai")
#: The tier report beside each tier's model (its ``fingerprint`` is the model version).
TIER_REPORT = "finetune.json"
MANIFEST = "manifest.json"


def version_path(tier: str, version: str) -> str:
    """Where version ``version`` of tier ``tier`` is published, relative to the run."""
    return f"models/{tier}/versions/{version}"


def check_servable(folder: Path, tier: str, where: str | None = None) -> None:
    """Raise unless ``folder`` is a causal LM a server can load (config and weights; not a probe).

    Raises:
        ModelError: naming the folder and what it is instead.
    """
    where = where or str(folder)
    descriptor = TierDescriptor.load(folder)
    if descriptor is not None and descriptor.backend != "causal-lm":
        raise ModelError(_not_servable(where, tier, descriptor.backend))
    if not (folder / "config.json").is_file():
        raise ModelError(f"{where}: tier `{tier}` has no config.json: not a model folder a server can load")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ModelError(f"{where}: tier `{tier}` holds no model weights (*.safetensors, *.bin): a server cannot load it")


def _not_servable(where: str, tier: str, backend: str) -> str:
    if backend == "probe":
        return (f"{where}: tier `{tier}` is a probe (a classifier head on a frozen model's hidden states, without "
                "model weights): a TGI or vLLM server cannot serve it. A tier served by a pool is fine-tuned with "
                f"LoRA: run finetune-tiers with tiers.specs.{tier}.backend tgi or openai")
    return f"{where}: tier `{tier}` is a `{backend}` model, not a causal LM a TGI or vLLM server can serve"


def publish_version(bus: DataBus, tier: str, folder: str | Path, version: str) -> str:
    """Publish ``folder`` as version ``version`` of ``tier`` (unless that version exists); returns its URI.

    The files are written first, ``manifest.json`` last; an existing version is never rewritten.

    Raises:
        ModelError: the folder is not servable (see :func:`check_servable`).
    """
    name = version_path(tier, version)
    if bus.exists(f"{name}/{MANIFEST}"):
        return bus.uri(name)
    check_servable(Path(folder), tier)
    uri = bus.put_dir(folder, name)
    log_event(log, "published a served model version", tier=tier, uri=uri)
    return uri


def ensure_published(bus: DataBus, tier: str, version: str) -> str:
    """The URI of ``tier``'s version ``version``, publishing it from ``models/<tier>`` if it is missing
    (a run fine-tuned before versions existed, or killed between the two copies)."""
    name = version_path(tier, version)
    if bus.exists(f"{name}/{MANIFEST}"):
        return bus.uri(name)
    with tempfile.TemporaryDirectory(prefix=f"relforge-publish-{tier}-") as tmp:
        local = bus.get_dir(f"models/{tier}", Path(tmp) / tier)
        return publish_version(bus, tier, local, version)


def served_model_uri(bus: DataBus, config: RelforgeConfig, tier: str) -> str:
    """The model folder a pool serving ``tier`` must load.

    When ``models/<tier>`` on the bus was fine-tuned from the tier's configured model (the same
    rule as ``calibrate``'s), its published version; otherwise the configured model itself,
    which must then be an ``s3://`` folder holding a servable model.

    Raises:
        ModelError: the tier's model is a probe or another non-servable folder, or its version
            was never published (rerun ``finetune-tiers``).
        ConfigError: the tier's model is not an ``s3://`` folder (a pool reads only those).
    """
    spec = config.tiers.spec(tier)
    configured = spec.model or getattr(config.models, tier, None)
    report_path = f"models/{tier}/{TIER_REPORT}"
    if bus.exists(f"models/{tier}/{MANIFEST}") and bus.exists(report_path):
        report = bus.read_json(report_path)
        if not configured or str(report.get("base_model")) == str(configured):
            where = bus.uri(f"models/{tier}")
            if report.get("mode") != "lora":
                backend = "probe" if report.get("mode") == "probe" else str(report.get("mode"))
                raise ModelError(_not_servable(where, tier, backend))
            name = version_path(tier, str(report.get("fingerprint")))
            if not bus.exists(f"{name}/{MANIFEST}"):
                raise ModelError(f"{bus.uri(name)}: tier `{tier}`'s served version is not published; rerun "
                                 "finetune-tiers (it publishes the version without training again)")
            return bus.uri(name)
    if not configured or not str(configured).startswith("s3://"):
        raise ConfigError(
            f"tier `{tier}` is served by a pool, which loads s3:// folders only; its model is {configured!r}. Run "
            f"finetune-tiers (it publishes {version_path(tier, '<version>')}) or set tiers.specs.{tier}.model to an "
            "s3:// folder")
    folder = DataBus(str(configured), config.bus)
    if folder.exists(DESCRIPTOR):
        backend = TierDescriptor.model_validate(folder.read_json(DESCRIPTOR)).backend
        if backend != "causal-lm":
            raise ModelError(_not_servable(str(configured), tier, backend))
    if not folder.exists("config.json"):
        raise ModelError(f"{configured}: tier `{tier}` has no config.json there: not a model folder a server can load")
    return str(configured).rstrip("/")

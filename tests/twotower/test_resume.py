"""A training killed (SIGKILL, mid-stage) resumes from its last checkpoint on the bus: the finished
stage is not trained again, the killed one continues from the checkpoint's step."""

import subprocess
import sys
import textwrap

from relforge.bus import DataBus
from relforge.curriculum import run_curriculum
from relforge.twotower import read_descriptor, run_train_two_tower
from tests.twotower.conftest import small_config
from tests.twotower.synthetic import write_run

KILLER = textwrap.dedent("""
    import os, signal, sys
    from transformers import TrainerCallback
    from relforge.bus import DataBus
    from relforge.config import load_config
    from relforge.twotower import run_train_two_tower

    class KillAtSave(TrainerCallback):  # after the checkpoint is on the bus: the callbacks before it ran
        def on_save(self, args, state, control, **kwargs):
            if "stage-2" in args.output_dir and state.global_step == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    config = load_config(sys.argv[2])
    run_train_two_tower(DataBus(sys.argv[1]), config, callbacks=[KillAtSave()])
""")


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path, bi_encoder):
    bus = DataBus(tmp_path / "run")
    write_run(bus)
    config = small_config(bi_encoder, tmp_path / "cache")
    run_curriculum(bus, config)
    cfg_file = tmp_path / "config.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(bus.root), str(cfg_file)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed, not finished
    assert read_descriptor(bus) is None  # nothing published
    result = run_train_two_tower(bus, config)
    stages = {s["stage"]: s for s in result["stages"]}
    assert stages["stage-1"].get("reused")  # finished before the kill: its model came from the bus
    assert stages["stage-2"]["resumed_from_step"] == 3
    assert stages["stage-2"]["steps"] == stages["stage-2"]["max_steps"] > 3
    assert stages["stage-3"]["resumed_from_step"] is None
    assert read_descriptor(bus)["version"] == result["version"]

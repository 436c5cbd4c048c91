"""The command line lists the steps; the step registry runs built steps and refuses the rest."""

import subprocess
import sys

import pytest

from relforge.config import load_config
from relforge.errors import ConfigError
from relforge.steps import PLANNED, STEPS, config_from_yaml, config_to_yaml, get_step, upstream


def test_help_lists_the_steps():
    out = subprocess.run(
        [sys.executable, "-m", "relforge", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("ingest", "models", "run-step", "status", *(s.name for s in STEPS if s.cli)):
        assert command in out


def test_unknown_and_unbuilt_steps_are_refused():
    with pytest.raises(ConfigError, match="unknown step"):
        get_step("label-everything")
    for name in PLANNED:
        with pytest.raises(ConfigError, match="not built yet"):
            get_step(name)


def test_edges_come_from_what_a_step_reads():
    by_name = {s.name: s for s in STEPS}
    assert [u.name for u in upstream(by_name["mine"])] == ["pull-models", "ingest"]
    assert upstream(by_name["ingest"]) == []


def test_config_travels_as_yaml_without_secrets():
    cfg = load_config(overrides=["bus.access_key=AKIA", "bus.secret_key=s3cr3t", "split.seed=9"])
    text = config_to_yaml(cfg)
    assert "s3cr3t" not in text and "AKIA" not in text
    assert config_from_yaml(text).split.seed == 9


def test_bad_config_is_one_clear_error(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("mine:\n  top_k: -1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "relforge", "--config", str(bad), "status", "--run", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "mine.top_k" in proc.stderr and "Traceback" not in proc.stderr


def _relforge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "relforge", *args], capture_output=True, text=True, check=False, cwd=cwd)


def test_version_is_printed():
    from importlib.metadata import version

    proc = _relforge("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"relforge {version('relforge')}"


def test_status_of_a_run_that_does_not_exist_says_so(tmp_path):
    proc = _relforge("status", "--run", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert f"{tmp_path / 'nowhere'}: no relforge run there" in proc.stderr


def test_a_bad_set_names_set_as_its_source(tmp_path):
    proc = _relforge("--set", "mine.top_k=-3", "status", "--run", str(tmp_path))
    assert proc.returncode == 2
    assert '--set mine.top_k=-3: field "mine.top_k"' in proc.stderr and "defaults" not in proc.stderr


def test_an_error_line_is_never_hard_wrapped(tmp_path):
    long_dir = tmp_path / ("a-rather-long-folder-name-" * 4)
    proc = _relforge("--config", str(long_dir / "config.yaml"), "status", "--run", str(tmp_path))
    assert proc.returncode == 2
    assert f"error: {long_dir / 'config.yaml'}: no such configuration file\n" == proc.stderr

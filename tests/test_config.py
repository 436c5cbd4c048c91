"""Configuration: defaults in one place, YAML and --set overrides, clear errors."""

import pytest

from relforge.config import RelforgeConfig, load_config
from relforge.errors import ConfigError
from relforge.grades import ESCI, GradeScale


def test_defaults_and_yaml_and_set_override(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("split:\n  seed: 5\nmine:\n  top_k: 20\n")
    cfg = load_config(path, ["mine.top_k=30", "bus.endpoint_url=http://127.0.0.1:9"])
    assert cfg.split.seed == 5 and cfg.split.train == RelforgeConfig().split.train
    assert cfg.mine.top_k == 30  # --set wins over the file
    assert cfg.bus.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("split:\n  train: 0.9\n", "sum to 1"),
        ("mine:\n  top_kk: 3\n", "mine.top_kk"),
        ("- a\n- b\n", "mapping"),
        ("split: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_file_names_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_section_hash_changes_only_with_its_section():
    a, b = load_config(), load_config(overrides=["mine.top_k=7"])
    assert a.section_hash("split") == b.section_hash("split")
    assert a.section_hash("mine") != b.section_hash("mine")


def test_bus_config_falls_back_to_aws_variables(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1234")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    resolved = load_config().bus.resolved()
    assert resolved.endpoint_url == "http://127.0.0.1:1234" and resolved.access_key == "k"


def test_grade_scale_validation_and_lookup():
    assert ESCI.grade_of("exact") == 3 and ESCI.n == 4
    assert GradeScale.from_json(ESCI.to_json()) == ESCI
    with pytest.raises(ValueError):
        GradeScale(name="x", names=["a", "A"], gains=[0, 1])
    with pytest.raises(ValueError):
        GradeScale(name="x", names=["a", "b"], gains=[1, 0])
    with pytest.raises(KeyError):
        ESCI.grade_of("great")

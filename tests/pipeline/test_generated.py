"""Every component folder is what its step declaration generates, in the kubeflow/pipelines-components layout."""

import yaml
from pipeline.generate import COMPONENTS, KFP_VERIFIED, expected_files

from relforge.steps import STEPS

LAYOUT = {"__init__.py", "component.py", "README.md", "metadata.yaml", "OWNERS", "tests"}


def test_component_folders_are_generated_from_the_declarations():
    stale = [str(p.relative_to(COMPONENTS)) for p, text in expected_files().items()
             if not p.is_file() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"regenerate with `python -m pipeline generate`: {stale}"
    folders = {p.name for p in COMPONENTS.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == {s.component_name for s in STEPS}


def test_each_folder_has_the_layout_and_metadata_of_a_kubeflow_component():
    for step in STEPS:
        folder = COMPONENTS / step.component_name
        assert LAYOUT <= {p.name for p in folder.iterdir()}, step.name
        meta = yaml.safe_load((folder / "metadata.yaml").read_text())
        assert meta["name"] == step.component_name and meta["stability"] in ("alpha", "beta", "stable")
        assert meta["dependencies"]["kubeflow"] == [{"name": "Pipelines", "version": f">={KFP_VERIFIED}"}]
        assert [s["name"] for s in meta["dependencies"]["external_services"]] == list(step.services)
        readme = (folder / "README.md").read_text()
        assert step.summary in readme and all(f"`{p.name}`" in readme for p in step.params)

"""Write every KFP component folder from its step declaration (``python -m pipeline generate``).

For each step of :data:`relforge.steps.STEPS`, ``pipeline/components/<component>/`` gets, in
the kubeflow/pipelines-components layout:

- ``component.py``: the lightweight Python component (inputs ``run_uri``, ``config_yaml`` and
  the step's parameters; its KFP outputs; the body calls ``relforge.steps.run_step_json`` and
  copies the declared outputs from the bus);
- ``__init__.py``, ``README.md`` (what the step reads, writes, its parameters, outputs and
  resources), ``metadata.yaml`` (name, stability, the Pipelines version verified with,
  external services), ``OWNERS``;
- ``tests/test_component_unit.py``: the component's function calls the step by name with its
  parameters and publishes its outputs (library calls mocked);
- ``tests/test_component_local.py``: the component under KFP's real local runner
  (``kfp.local.SubprocessRunner``) on a tiny run on which every declared step before it has
  run (the ``tiny_run`` fixture of ``pipeline/components/conftest.py``), checking what it
  committed on the bus and its KFP outputs.

The files are generated, not edited: ``tests/pipeline/test_generated.py`` fails when a
folder differs from what its declaration generates.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import yaml

from relforge.step_spec import StepSpec

COMPONENTS = Path(__file__).resolve().parent / "components"
#: The Kubeflow Pipelines SDK version the components are verified with (the pinned kfp).
KFP_VERIFIED = "2.17.0"
HEADER = "Generated from the step declaration by `python -m pipeline generate`; do not edit."


def _component_py(step: StepSpec) -> str:
    image = "GPU_STEP_IMAGE" if step.image == "gpu" else "STEP_IMAGE"
    args = ["run_uri: str", "config_yaml: str"]
    args += [f"{o.name}: dsl.Output[dsl.{o.kind}]" for o in step.outputs]
    args += [f'{p.identifier}: str = ""' for p in step.params]
    params = "".join(f", {p.identifier}={p.identifier}" for p in step.params)
    outputs = ", ".join(f'"{o.name}": {o.name}' for o in step.outputs)
    doc_params = "".join(f"\n        {p.identifier}: sets `{p.key}` (YAML; empty: unchanged)." for p in step.params)
    doc_outputs = "".join(f"\n        {o.name}: {o.kind}, from `{o.path}` on the bus." for o in step.outputs)
    return f'''"""KFP component `{step.component_name}`: {step.summary}

{HEADER}
"""

from kfp import dsl

from pipeline.components import {image}


@dsl.component(base_image={image})
def {step.component_name}({", ".join(args)}) -> str:
    """Run step `{step.name}` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.{doc_params}{doc_outputs}
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("{step.name}", run_uri, config_yaml{params})
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("{step.name}", run_uri, config_yaml, {{{outputs}}})
    return record
'''


def _readme(step: StepSpec) -> str:
    rows = "\n".join(f"| `{p.name}` | `{p.key}` | {p.help or 'see the configuration'} |" for p in step.params)
    outputs = "\n".join(f"| `{o.name}` | {o.kind} | `{o.path}` |" for o in step.outputs)
    r = step.resources
    lines = [
        f"# `{step.component_name}`",
        "",
        f"<!-- {HEADER} -->",
        "",
        step.summary,
        "",
        f"- **Step**: `{step.name}` (`{step.run}`), configuration section `{step.section or '-'}`.",
        f"- **Reads** from the bus: {', '.join(f'`{n}`' for n in step.reads) or 'nothing'}.",
        f"- **Writes** to the bus: {', '.join(f'`{n}`' for n in step.writes) or 'nothing'}.",
        ("- **Inputs**: `run_uri` (the run's root: a folder, or `s3://bucket/prefix` with credentials from the "
         "`AWS_*` variables), `config_yaml` (the relforge configuration, without secrets)."),
        f"- **Image and resources** (cluster): `{step.image}` image, {r.cpu} CPU, {r.memory} memory"
        + (f", {r.gpu} GPU" if r.gpu else "") + ".",
        f"- **Run alone**: `relforge run-step {step.name} --run RUN_URI`"
        + (f" or `relforge {step.name} --run RUN_URI`." if step.cli else "."),
        "",
    ]
    if step.params:
        lines += ["## Parameters", "", ("Each sets one configuration key (its value is read as YAML); empty leaves it "
                                        "as the configuration says."), "", "| parameter | sets | meaning |", "|---|---|---|",
                  rows, ""]
    if step.outputs:
        lines += ["## Outputs (KFP artifacts)", "", "| output | type | from the bus |", "|---|---|---|", outputs, ""]
    return "\n".join(lines)


def _metadata(step: StepSpec, verified: str) -> str:
    doc = {
        "name": step.component_name,
        "tier": "third_party",
        "stability": step.stability,
        "dependencies": {
            "kubeflow": [{"name": "Pipelines", "version": f">={KFP_VERIFIED}"}],
            "external_services": [{"name": s} for s in step.services],
        },
        "tags": ["relevance-labels", step.section or step.name],
        "lastVerified": verified,
        "verifiedWith": {"kfp": KFP_VERIFIED},
    }
    return f"# {HEADER}\n" + yaml.safe_dump(doc, sort_keys=False)


def _unit_test(step: StepSpec) -> str:
    values = ", ".join(f'{p.identifier}="v-{p.name}"' for p in step.params)
    expected = ", ".join(f'{p.identifier}="v-{p.name}"' for p in step.params)
    outputs = "".join(f"\n    {o.name} = mock.MagicMock(path=str(tmp_path / '{o.name}'))" for o in step.outputs)
    out_args = "".join(f", {o.name}={o.name}" for o in step.outputs)
    out_dict = ", ".join(f'"{o.name}": {o.name}' for o in step.outputs)
    return f'''"""Unit test of the generated component `{step.component_name}`. {HEADER}"""

from unittest import mock

from pipeline.components.{step.component_name} import {step.component_name}


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):{outputs}
    with mock.patch("relforge.steps.run_step_json", return_value='{{"step": "{step.name}"}}') as run, \\
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = {step.component_name}.python_func(run_uri="RUN", config_yaml="CFG"{out_args}{", " + values if values else ""})
    assert result == '{{"step": "{step.name}"}}'
    run.assert_called_once_with("{step.name}", "RUN", "CFG"{", " + expected if expected else ""})
    publish.assert_called_once_with("{step.name}", "RUN", "CFG", {{{out_dict}}})
'''


def _local_test(step: StepSpec) -> str:
    return f'''"""Local-runner test of the generated component `{step.component_name}`: KFP's real local runner
runs it on a tiny run prepared by `pipeline/components/conftest.py` (every declared step before
`{step.name}` run through the library), and the test checks what it committed. {HEADER}"""

from kfp import local

from pipeline.components.{step.component_name} import {step.component_name}


def test_component_commits_what_its_step_writes_under_the_kfp_local_runner(tiny_run):
    run = tiny_run.before("{step.name}")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run.parent / "_kfp"),
               raise_on_error=True)
    task = {step.component_name}(run_uri=str(run), config_yaml=tiny_run.config_yaml)
    tiny_run.check("{step.name}", run, task)
'''


def render(step: StepSpec, verified: str) -> dict[str, str]:
    """The files of a step's component folder, by relative path."""
    return {
        "__init__.py": f'"""KFP component `{step.component_name}`. {HEADER}"""\n\n'
        f"from pipeline.components.{step.component_name}.component import {step.component_name}\n\n"
        f'__all__ = ["{step.component_name}"]\n',
        "component.py": _component_py(step),
        "README.md": _readme(step),
        "metadata.yaml": _metadata(step, verified),
        "OWNERS": f"# {HEADER}\napprovers:\n  - relforge-maintainers\nreviewers:\n  - relforge-maintainers\n",
        "tests/__init__.py": "",
        "tests/test_component_unit.py": _unit_test(step),
        "tests/test_component_local.py": _local_test(step),
    }


def _verified(folder: Path, step: StepSpec) -> str:
    """The folder's ``lastVerified`` when its other files are unchanged, else today."""
    meta = folder / "metadata.yaml"
    if meta.is_file():
        old = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        stamp = str(old.get("lastVerified", ""))
        if stamp and all(
            (folder / rel).is_file() and (folder / rel).read_text(encoding="utf-8") == text
            for rel, text in render(step, stamp).items()
        ):
            return stamp
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT00:00:00Z")


def expected_files(steps: tuple[StepSpec, ...] | None = None) -> dict[Path, str]:
    """Every generated file with its content (``lastVerified`` kept where nothing else changed)."""
    from relforge.steps import STEPS

    out: dict[Path, str] = {}
    for step in steps or STEPS:
        folder = COMPONENTS / step.component_name
        for rel, text in render(step, _verified(folder, step)).items():
            out[folder / rel] = text
    return out


def generate() -> list[Path]:
    """Write the component folders; remove folders of steps that no longer exist. Returns changed files."""
    from relforge.steps import STEPS

    files = expected_files()
    changed = []
    for path, text in files.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    keep = {s.component_name for s in STEPS}
    for folder in COMPONENTS.iterdir():
        if folder.is_dir() and folder.name not in keep and not folder.name.startswith("__"):
            shutil.rmtree(folder)
            changed.append(folder)
    return changed

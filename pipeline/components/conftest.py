"""The fixture of every generated local-runner test (``<component>/tests/test_component_local.py``).

``tiny_run`` is one small run for the whole session: a catalog, queries and judgments written as
files (ingested through ``ingest.source: files``), the tiny models of ``tests/tiny_models.py``
(a bi-encoder for tier0, the embedder, mining's dense channel and the two-tower's base; a BERT
base for the tier1 cross-encoder; a Llama for tier2, outside the cascade, which writes the cold
start's queries) set by configuration overrides, and settings that keep every step to seconds
(a step added later adds its own to ``FAST``).

``tiny_run.before(step)`` prepares a run on which only ``step`` is left to do: every declared step
before it (:data:`relforge.steps.STEPS`, in order) runs through the library, once per session,
and the run is copied after each, so each test gets a fresh copy of the state right before its
step. A step added to the registry later (curriculum, train-two-tower, ...) gets its inputs the
same way, whatever it reads. ``tiny_run.check(step, run, task)`` checks what the step committed:
its record, every name it declares in ``writes``, and its declared KFP outputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from relforge.bus import DataBus, contract_for
from relforge.config import RelforgeConfig, load_config
from relforge.steps import STEPS, config_to_yaml, get_step, run_step

COLOURS = ["black", "green", "blue", "red"]  # an item's grade is its colour (ESCI: 0..3)
KINDS = ["shoes", "phone case", "coffee maker", "lamp", "jacket", "book", "mug", "chair", "bottle", "camera"]
QUERIES, ITEMS_PER_QUERY = 20, 6  # split 12 / 4 / 4 by the default fractions

FAST = [
    "compute.threads=1",
    "mine.top_k=8", "mine.random_negatives=2", "mine.dense_max_seq_length=32", "mine.batch_size=32",
    "tiers.names=[tier0, tier1]",
    "tiers.specs.tier0.max_length=32", "tiers.specs.tier1.max_length=32",
    "finetune.ce_epochs=1", "finetune.ce_max_length=32", "finetune.ce_eval_steps=4", "finetune.ce_batch_size=16",
    "finetune.calib_max_pairs=24",
    "calibrate.gate=false", "calibrate.folds=2", "calibrate.bootstrap_reps=100", "calibrate.grid=8",
    "review.budget=8",
    "twotower.max_seq_length=32",
    "coldstart.items=12", "coldstart.max_new_tokens=8", "coldstart.item_max_tokens=32",
    "coldstart.channel=dense", "coldstart.round_trip_k=200",  # a random tiny LLM's queries pass the round trip
    "second_round.enabled=true", "ablate.enabled=true", "ablate.only=[minilm]",  # on in the pipeline: tested
]


def write_inputs(folder: Path, seed: int = 0) -> dict[str, Path]:
    """A catalog, queries and graded judgments as JSON Lines files (the user's own files)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    catalog, queries, judgments = [], [], []
    for q in range(QUERIES):
        kind = KINDS[q % len(KINDS)]
        queries.append({"query_id": f"q{q:02d}", "query": f"{kind} {COLOURS[q % 4]}"})
        for j in range(ITEMS_PER_QUERY):
            grade = int(rng.integers(0, 4))
            item = f"i{q:02d}-{j}"
            catalog.append({"item_id": item, "title": f"{COLOURS[grade]} {kind}", "brand": "acme",
                            "description": f"a {COLOURS[grade]} {kind} with cotton"})
            judgments.append({"query_id": f"q{q:02d}", "item_id": item, "grade": grade})
    files = {}
    for name, rows in (("catalog", catalog), ("queries", queries), ("judgments", judgments)):
        files[name] = folder / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return files


class TinyRun:
    """The session's tiny run: its configuration, and the run's state before each declared step."""

    def __init__(self, root: Path):
        from tests.tiny_models import tiny_bert_cross_encoder, tiny_bi_encoder, tiny_llama

        self.root = root
        bi = tiny_bi_encoder(root / "models" / "bi-encoder")
        bert = tiny_bert_cross_encoder(root / "models" / "bert-base", head=None)
        llm = tiny_llama(root / "models" / "llama")  # tier2: not in the cascade; cold start's query writer
        files = write_inputs(root / "inputs")
        self.config: RelforgeConfig = load_config(overrides=[
            f"models.cache_dir={root / 'cache'}",
            f"models.embedder={bi}", f"models.tier0={bi}", f"models.tier1={bert}", f"mine.dense_model={bi}",
            f"models.tier2={llm}", f"models.tier3={llm}", f"twotower.base_model={bi}",
            "ingest.source=files", "ingest.grades=[irrelevant, complement, substitute, exact]",
            *(f"ingest.{name}={path}" for name, path in files.items()),
            *FAST,
        ])
        self.config_yaml = config_to_yaml(self.config)
        self._after: list[Path] = [self._empty()]  # _after[i]: the run once STEPS[:i] ran
        self._missing: dict[str, str] = {}  # a name an earlier step should have written -> why it did not

    def _empty(self) -> Path:
        folder = self.root / "states" / "00-empty"
        folder.mkdir(parents=True)
        return folder

    def before(self, step: str) -> Path:
        """A fresh copy of the run with every declared step before ``step`` done (through the library).

        A step that fails while the run is prepared is not retried: the tests of the steps that
        read what it writes fail at once, saying which step failed and why; the others go on
        from the state before it.
        """
        spec = get_step(step)
        index = STEPS.index(spec)
        while len(self._after) <= index:
            done = STEPS[len(self._after) - 1]
            state = self.root / "states" / f"{len(self._after):02d}-{done.name}"
            shutil.copytree(self._after[-1], state)
            blocked = sorted(set(done.reads) & set(self._missing))
            if blocked:
                why = f"step `{done.name}` was not run: {self._missing[blocked[0]]}"
                self._missing.update({name: why for name in done.writes})
            else:
                try:
                    run_step(done.name, str(state), self.config)
                except Exception as exc:  # noqa: BLE001 - the tests that need its output say so
                    shutil.rmtree(state)
                    shutil.copytree(self._after[-1], state)
                    why = f"step `{done.name}` failed through the library: {type(exc).__name__}: {exc}"
                    self._missing.update({name: why for name in done.writes})
            self._after.append(state)
        blocked = sorted(set(spec.reads) & set(self._missing))
        if blocked:
            pytest.fail(f"cannot prepare the tiny run for `{step}`, which reads {blocked}: "
                        f"{self._missing[blocked[0]]}", pytrace=False)
        target = self.root / "tests" / step / "run"
        if target.parent.exists():
            shutil.rmtree(target.parent)
        shutil.copytree(self._after[index], target)
        return target

    def check(self, step: str, run: Path, task) -> dict:
        """What ``step`` committed on ``run`` under the runner (``task``: the local runner's task)."""
        spec = get_step(step)
        record = json.loads(task.outputs["Output"])  # the component's return value: the step's record
        bus = DataBus(run)
        assert record["step"] == step and bus.read_json(f"steps/{step}.json")["finished_at"] == record["finished_at"]
        for name in spec.writes:
            assert committed(bus, self.config, name), f"step {step} did not commit `{name}` on {run}"
        for table, rows in record["tables"].items():
            if contract_for(table) is not None:
                assert rows == bus.manifest(table).rows
        for out in spec.outputs:
            marker = f"{out.path}/manifest.json" if out.kind == "Model" else out.path
            if bus.exists(marker):
                assert task.outputs[out.name].metadata["bus_uri"] == bus.uri(out.path), out.name
        return record


def committed(bus: DataBus, config: RelforgeConfig, name: str) -> bool:
    """Whether ``name`` (a name in some step's ``writes``) is committed on ``bus``.

    A table (with a contract) or an artifact folder has its ``manifest.json``; ``models`` is one
    folder per tier; ``calibrators`` is the cascade document; ``packaged-models`` live in the
    model cache, not on the bus (the step's record is all there is); ``two-tower`` is the model
    folder ``models/two-tower``; ``second-round`` and ``ablation`` are sub-runs, finished when
    their last step's record is there. A new kind of output adds its rule here.
    """
    if contract_for(name) is not None:
        return bus.is_committed(name)
    if name == "models":
        return all(bus.exists(f"models/{t}/manifest.json") for t in config.tiers.names)
    if name == "calibrators":
        return bus.exists("calibrators/cascade.json")
    if name == "packaged-models":
        return True
    if name == "two-tower":
        return bus.exists("models/two-tower/manifest.json")
    if name == "index":  # the export folder: index, item ids, query encoder, export.json
        return bus.exists("export/manifest.json") and bus.exists("export/export.json")
    if name == "second-round":  # a sub-run: its last step's record
        return bus.exists(f"{config.second_round.name}/steps/{config.second_round.steps[-1]}.json")
    if name == "ablation":  # one sub-run per variant: each one's last step's record
        variants = config.ablate.only or list(config.ablate.variants)
        return all(bus.exists(f"{config.ablate.prefix}/{v}/steps/{config.ablate.variants[v].steps[-1]}.json")
                   for v in variants)
    if bus.is_committed(name):
        return True
    raise AssertionError(f"no check for `{name}`: say in pipeline/components/conftest.py:committed how it is committed")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared machine: one thread, no oversubscription
    try:
        yield TinyRun(tmp_path_factory.mktemp("tiny-run"))
    finally:
        torch.set_num_threads(threads)



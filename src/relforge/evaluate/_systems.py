"""The systems step ``evaluate`` scores, each as a ranked run over the test queries.

- the run's own retriever: the ``retrieval`` table that ``export-index`` searched from the
  published index (``two-tower``);
- ``bm25``: the mining channel's BM25 over the catalog, searched here;
- each ablation variant: the ``retrieval`` table of its sub-run (``ablation.json``, written by
  step ``ablate``);
- the second round's retriever (``second-round.json``, written by step ``second-round``).

A system trained on the cascade's labels is marked ``circular``: the prediction-powered
estimate, which grades unjudged items with the same cascade, is not an independent judge of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.errors import NotCommittedError
from relforge.evaluate._inputs import Run, read_run
from relforge.logs import get_logger, log_event

log = get_logger("evaluate.systems")

ABLATION_DOC = "ablation.json"
SECOND_ROUND_DOC = "second-round.json"
REFERENCE = "two-tower"


@dataclass
class System:
    """One evaluated system.

    Attributes:
        name: its key (``two-tower``, ``bm25``, an ablation variant's name, ``round-2``).
        label: its name in the tables.
        trained_on: what it learnt from.
        run: its ranking of the test queries.
        circular: trained on the cascade's labels (the cascade-based estimate grades its own pupil).
        uri: the run it comes from.
    """

    name: str
    label: str
    trained_on: str
    run: Run
    circular: bool = False
    uri: str = ""
    notes: list[str] = field(default_factory=list)


def _curriculum_source(bus: DataBus) -> str | None:
    if not bus.is_committed("curriculum"):
        return None
    return bus.manifest("curriculum").metadata.get("source")


def retrieval_run(bus: DataBus, queries: set[str]) -> Run:
    """The ``retrieval`` table of ``bus`` as a :class:`Run` over ``queries``.

    Raises:
        NotCommittedError: no ``retrieval`` table (run ``export-index``).
    """
    table = bus.read_table("retrieval", columns=["query_id", "item_id", "rank"])
    run = read_run(table, bus.uri("retrieval"))
    return Run({q: items for q, items in run.ranking.items() if q in queries})


def trained_system(bus: DataBus, name: str, label: str, trained_on: str, queries: set[str]) -> System:
    """The exported retriever of the run at ``bus`` as a system."""
    source = _curriculum_source(bus)
    descriptor = bus.read_json("models/two-tower/relforge_two_tower.json") \
        if bus.exists("models/two-tower/relforge_two_tower.json") else {}
    untrained = not descriptor.get("stages")
    circular = source == "labels" and not untrained
    if not trained_on:
        trained_on = "-" if untrained else ("human judgments" if source == "judgments" else "cascade labels")
    return System(name, label, trained_on, retrieval_run(bus, queries), circular, bus.root)


def bm25_system(bus: DataBus, config: RelforgeConfig, query_text: dict[str, str], depth: int) -> System:
    """BM25 (the mining channel, the run's settings) over the catalog's ``text``."""
    from relforge.mine.channels import build_channel

    catalog = bus.read_table("catalog", columns=["item_id", "text"])
    ids = catalog.column("item_id").to_pylist()
    channel = build_channel("bm25", config)
    channel.index(["" if t is None else t for t in catalog.column("text").to_pylist()], ids)
    qids = sorted(query_text)
    positions, _ = channel.search([query_text[q] for q in qids], depth)
    ranking = {q: [ids[p] for p in row if p >= 0] for q, row in zip(qids, positions)}
    return System("bm25", "BM25", "-", Run(ranking), False, bus.root)


def gather_systems(bus: DataBus, config: RelforgeConfig, query_text: dict[str, str], depth: int) -> list[System]:
    """Every system there is to evaluate on ``bus`` (see the module docstring), the reference first."""
    queries = set(query_text)
    systems: list[System] = []
    try:
        systems.append(trained_system(bus, REFERENCE, "two-tower", "", queries))
        source = _curriculum_source(bus)
        systems[0].label = "two-tower, " + ("human labels" if source == "judgments" else "cascade labels")
    except NotCommittedError as exc:
        log_event(log, "no exported retriever in this run", level=30, reason=str(exc))
    if config.evaluate.bm25:
        systems.append(bm25_system(bus, config, query_text, depth))
    if bus.exists(ABLATION_DOC):
        for variant in bus.read_json(ABLATION_DOC).get("variants", []):
            sub = DataBus(variant["uri"], bus.config)
            if variant.get("status") != "done" or not sub.is_committed("retrieval"):
                log_event(log, "ablation variant without results", level=30, variant=variant["name"],
                          status=variant.get("status"))
                continue
            systems.append(trained_system(sub, variant["name"], variant["label"], variant.get("trained_on", ""),
                                          queries))
    if bus.exists(SECOND_ROUND_DOC):
        doc = bus.read_json(SECOND_ROUND_DOC)
        sub = DataBus(doc["uri"], bus.config)
        if doc.get("status") == "done" and sub.is_committed("retrieval"):
            systems.append(trained_system(sub, "round-2", "two-tower, second round", "", queries))
    return systems


def run_table(run: Run) -> pa.Table:
    """A :class:`Run` as a ``query_id``, ``item_id``, ``rank`` table."""
    q, i, r = [], [], []
    for qid, items in run.ranking.items():
        q += [qid] * len(items)
        i += items
        r += list(range(1, len(items) + 1))
    return pa.table({"query_id": pa.array(q, pa.string()), "item_id": pa.array(i, pa.string()),
                     "rank": pa.array(np.asarray(r, dtype=np.int32))})

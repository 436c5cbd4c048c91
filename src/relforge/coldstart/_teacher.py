"""Step ``teacher-label``: the teacher grades every synthetic candidate, on the run's grade scale.

The teacher (``coldstart.teacher``):

- ``top`` (default) or a tier's name: that tier of ``tiers.names`` as ``calibrate`` and
  ``annotate`` see it (:func:`relforge.calibrate.resolve_tier`: the model fine-tuned on the run
  when there is one, else its configured model, zero-shot); its probabilities go through the
  calibrator ``calibrate`` fitted for that very model version when there is one, and are used
  as they are otherwise (the labels' metadata says which);
- ``cascade``: the calibrated cascade ``calibrate`` left on the run
  (:class:`relforge.annotate.Cascade`); a cascade whose gate failed labels nothing.

Labels go to the sub-run's ``labels`` (the ``labels`` contract: grade, calibrated or raw
probabilities, confidence, deciding tier, cost, model and model fingerprint, bucket) in
committed shards of ``teacher_shard_rows`` candidates. A pair the teacher failed to score is
**never labelled**: its shard stays uncommitted, the pairs of it that were labelled are kept aside
(``cache/teacher/<fingerprint>/shard-NNNNN`` in the sub-run), the other shards go on, and the
step ends with :class:`~relforge.errors.AnnotationIncompleteError` naming how many failed and
why; a rerun scores only what is missing. Once every shard is committed, the teacher's grades
are also written as the sub-run's ``judgments`` (``source`` ``teacher:<tier>``), so the steps
that train on judgments read them unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from relforge.annotate import Cascade, Labelled
from relforge.bus import DataBus, fingerprint
from relforge.calibrate import Calibrator, load_tier_calibrator, read_cascade, resolve_tier
from relforge.coldstart._subrun import SUBRUN, coldstart_bus, settings_hash
from relforge.config import RelforgeConfig
from relforge.errors import (
    AnnotationIncompleteError,
    CalibrationGateError,
    ConfigError,
    ModelError,
    NotCommittedError,
)
from relforge.grades import GRADE_SCALE_KEY, GradeScale, read_grade_scale
from relforge.logs import get_logger, log_event, track
from relforge.tiers import Pair, TierScorer

log = get_logger("coldstart.teacher")

LABELS = "labels"
PARTIAL = "cache/teacher"


class TierTeacher:
    """One tier as the teacher: its scores, through its calibrator where ``calibrate`` fitted one.

    Args:
        bus: the run's bus (its tier models and calibrators).
        config: the run's configuration.
        name: the tier, one of ``tiers.names``.
        scale: the grade scale.
        catalog_texts: handed to the scorer's ``prepare_items`` (the bi-encoder tier's item vectors).
    """

    def __init__(self, bus: DataBus, config: RelforgeConfig, name: str, scale: GradeScale,
                 catalog_texts: Sequence[str] | None = None):
        self.tier = resolve_tier(bus, config, name)
        self.config, self.scale, self.catalog_texts = config, scale, catalog_texts
        self.calibrator: Calibrator | None = None
        self.calibration = "none: no calibrator on the run (run `relforge calibrate` to have one)"
        try:
            self.calibrator, doc = load_tier_calibrator(bus, name, self.tier.fingerprint)
            self.calibration = f"{doc.get('method')} (fitted by calibrate on {doc.get('fitted_on', {})})"
        except NotCommittedError:
            pass
        except ModelError as exc:
            self.calibration = f"none: {exc}"
            log_event(log, "the teacher's calibrator is for another model version; raw probabilities are used",
                      level=30, tier=name)
        self._scorer: TierScorer | None = None

    @property
    def fingerprint(self) -> str:
        state = None if self.calibrator is None else self.calibrator.to_state()
        return settings_hash({"tier": self.tier.fingerprint, "calibrator": state})

    def describe(self) -> dict[str, Any]:
        return {"kind": "tier", "tier": self.tier.name, "backend": self.tier.backend, "model": self.tier.ref,
                "source": self.tier.source, "model_fingerprint": self.tier.fingerprint, "calibration": self.calibration}

    @property
    def tiers(self):
        return [self.tier]

    def label(self, pairs: Sequence[Pair]) -> Labelled:
        if self._scorer is None:
            self._scorer = self.tier.scorer(self.scale, self.config)
            if self.catalog_texts is not None:
                self._scorer.prepare_items(self.catalog_texts)
        scores = self._scorer.score(pairs)
        n, ok = len(pairs), ~scores.failed
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        if ok.any():
            raw = scores.probs[ok].astype(np.float64)
            probs[ok] = self.calibrator.transform(raw) if self.calibrator is not None else raw
        grade = np.full(n, -1, dtype=np.int8)
        grade[ok] = probs[ok].argmax(axis=1)
        confidence = np.full(n, np.nan, dtype=np.float32)
        confidence[ok] = probs[ok].max(axis=1)
        tokens = scores.tokens if scores.tokens is not None else np.zeros(n, dtype=np.int32)
        return Labelled(
            grade=grade, probs=probs, confidence=confidence,
            tier=np.where(ok, self.tier.position, -1).astype(np.int8), cost=scores.cost.astype(np.float32),
            tokens=tokens.astype(np.int32), accepted=ok.copy(), failed=scores.failed.copy(),
            errors=[f"{self.tier.name}: {e}" if e else None for e in scores.errors],
        )

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None


class CascadeTeacher:
    """The calibrated cascade as the teacher (:class:`relforge.annotate.Cascade`).

    Raises:
        NotCommittedError: ``calibrate`` has not run on the run.
        CalibrationGateError: the cascade failed its gate.
    """

    def __init__(self, bus: DataBus, config: RelforgeConfig, scale: GradeScale,
                 catalog_texts: Sequence[str] | None = None):
        self.doc = read_cascade(bus)
        gate = self.doc.get("gate") or {}
        if gate.get("enabled", True) and not gate.get("passed", False):
            raise CalibrationGateError(
                f"the calibrated cascade failed its gate ({'; '.join(gate.get('reasons') or ['no verdict'])}); it "
                f"teaches nothing. See {bus.uri('reports/calibration.md')}, or set coldstart.teacher to a tier")
        self.cascade = Cascade(bus, config, self.doc, scale, catalog_texts=catalog_texts)

    @property
    def tiers(self):
        return self.cascade.tiers

    @property
    def fingerprint(self) -> str:
        return settings_hash({k: self.doc.get(k) for k in ("tiers", "thresholds", "guaranteed_thresholds", "mode",
                                                          "method")})

    def describe(self) -> dict[str, Any]:
        return {"kind": "cascade", "tiers": [t.name for t in self.cascade.tiers], "mode": self.doc.get("mode"),
                "method": self.doc.get("method"), "thresholds": self.doc.get("thresholds")}

    def label(self, pairs: Sequence[Pair]) -> Labelled:
        return self.cascade.label(pairs)

    def close(self) -> None:
        self.cascade.close()


def make_teacher(bus: DataBus, config: RelforgeConfig, scale: GradeScale, catalog_texts: Sequence[str] | None = None):
    """The teacher ``coldstart.teacher`` names (see the module docstring).

    Raises:
        ConfigError: a tier that is not in ``tiers.names``.
    """
    choice = config.coldstart.teacher
    if choice == "cascade":
        return CascadeTeacher(bus, config, scale, catalog_texts)
    name = config.tiers.names[-1] if choice == "top" else choice
    if name not in config.tiers.names:
        raise ConfigError(f"coldstart.teacher: tier `{name}` is not in tiers.names {config.tiers.names} "
                          "(or use `top` or `cascade`)")
    return TierTeacher(bus, config, name, scale, catalog_texts)


def _labels_table(candidates: pa.Table, out: Labelled, rows: np.ndarray, teacher) -> pa.Table:
    tiers = teacher.tiers
    by_position = {t.position: t for t in tiers}
    tier = out.tier[rows].astype(np.int64)
    return pa.table({
        "query_id": candidates.column("query_id").take(pa.array(rows, pa.int64())),
        "item_id": candidates.column("item_id").take(pa.array(rows, pa.int64())),
        "grade": pa.array(out.grade[rows], pa.int8()),
        "probs": pa.array([p.tolist() for p in out.probs[rows]], pa.list_(pa.float32())),
        "confidence": pa.array(out.confidence[rows], pa.float32()),
        "tier": pa.array(tier, pa.int8()),
        "cost": pa.array(out.cost[rows], pa.float32()),
        "model": pa.array([by_position[t].ref for t in tier], pa.string()),
        "model_fingerprint": pa.array([by_position[t].fingerprint for t in tier], pa.string()),
        "tier_name": pa.array([by_position[t].name for t in tier], pa.string()),
        "accepted": pa.array(out.accepted[rows], pa.bool_()),
        "bucket": candidates.column("bucket").take(pa.array(rows, pa.int64())),
        "tokens": pa.array(out.tokens[rows], pa.int32()),
    })


def run_teacher_label(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Grade the sub-run's candidates with the teacher (see the module docstring).

    Args:
        bus: the run's bus (tier models, calibrators, the cascade); the sub-run holds
            ``candidates``, ``queries`` and ``catalog`` (``relforge coldstart-candidates``).
        config: the run's configuration (sections ``coldstart``, ``tiers``, ``models``).

    Returns:
        A summary (labels, grades, cost, seconds, the teacher) with a ``decided`` line.

    Raises:
        AnnotationIncompleteError: pairs the teacher failed to score; the committed shards are
            kept and a rerun resumes.
        CalibrationGateError: ``teacher: cascade`` and the cascade failed its gate.
    """
    started = time.perf_counter()
    cs = config.coldstart
    scale = read_grade_scale(bus)
    sub = coldstart_bus(bus)
    candidates = sub.read_table("candidates", columns=["query_id", "item_id", "bucket"])
    queries = sub.read_table("queries", columns=["query_id", "query"])
    field = config.finetune.item_field
    catalog = sub.read_table("catalog", columns=["item_id", field])
    texts = ["" if t is None else str(t) for t in catalog.column(field).to_pylist()]
    item_text = dict(zip(catalog.column("item_id").to_pylist(), texts))
    query_text = dict(zip(queries.column("query_id").to_pylist(), queries.column("query").to_pylist()))
    teacher = make_teacher(bus, config, scale, catalog_texts=texts if _needs_items(config) else None)
    n_shards = max(1, -(-candidates.num_rows // cs.teacher_shard_rows))
    inputs = {**sub.input_digests("candidates", "queries", "catalog"), "teacher": teacher.fingerprint}
    config_hash = settings_hash({"shard_rows": cs.teacher_shard_rows, "item_field": field, "scale": scale.names})
    metadata = {GRADE_SCALE_KEY: scale.model_dump(), "teacher": teacher.describe()}
    failures: dict[str, int] = {}
    first_errors: dict[str, str] = {}
    spent = {"cost": 0.0, "pairs": 0}
    try:
        with sub.sharded_writer(LABELS, n_shards, metadata=metadata, inputs=inputs, config_hash=config_hash) as writer:
            pending = writer.pending()
            if pending:
                log_event(log, "teacher labelling", pairs=candidates.num_rows, shards=n_shards, pending=len(pending),
                          teacher=json.dumps(teacher.describe(), default=str)[:200])
            for shard in track(pending, f"teacher-label: {len(pending)} shard(s)"):
                rows = candidates.slice(shard * cs.teacher_shard_rows, cs.teacher_shard_rows)
                _label_shard(sub, writer, teacher, shard, rows, query_text, item_text, failures, first_errors, spent)
            left = writer.pending()
            if left:
                detail = "; ".join(f"{n} at tier {t} (first: {first_errors[t][:300]})" for t, n in failures.items())
                raise AnnotationIncompleteError(
                    f"{sub.uri(LABELS)}: {n_shards - len(left)} of {n_shards} shard(s) committed, {len(left)} left; "
                    f"{sum(failures.values())} pair(s) the teacher could not score were not labelled: {detail}. The "
                    "committed shards are kept; rerun `relforge teacher-label` to retry and resume")
    finally:
        teacher.close()
    labels = sub.read_table(LABELS, columns=["query_id", "item_id", "grade", "model", "cost"])
    _write_judgments(sub, labels, scale, teacher)
    grades = np.bincount(labels.column("grade").to_numpy().astype(np.int64), minlength=scale.n)
    summary = {"labels": labels.num_rows, "grades": dict(zip(scale.names, grades.tolist())),
               "teacher": teacher.describe(), "cost_this_run": round(spent["cost"], 4), "pairs_this_run": spent["pairs"],
               "seconds": round(time.perf_counter() - started, 1)}
    share = ", ".join(f"{n} {c / max(labels.num_rows, 1):.0%}" for n, c in summary["grades"].items())
    who = teacher.describe().get("tier") or "the cascade"
    summary["decided"] = f"{labels.num_rows:,} teacher labels by {who} in {SUBRUN}/labels ({share})"
    return summary


def _needs_items(config: RelforgeConfig) -> bool:
    return any(config.tiers.spec(n).backend == "bi-encoder" for n in config.tiers.names)


def _label_shard(sub: DataBus, writer, teacher, shard: int, candidates: pa.Table, query_text, item_text,
                 failures: dict[str, int], first_errors: dict[str, str], spent: dict) -> None:
    """Label one shard; commit it, or keep its labelled pairs aside when some pair failed."""
    partial = f"{PARTIAL}/{writer.fingerprint}/shard-{shard:05d}"
    done = sub.read_table(partial) if sub.is_committed(partial) else None
    keys = list(zip(candidates.column("query_id").to_pylist(), candidates.column("item_id").to_pylist()))
    todo = np.arange(candidates.num_rows)
    if done is not None:
        have = set(zip(done.column("query_id").to_pylist(), done.column("item_id").to_pylist()))
        todo = np.array([i for i, k in enumerate(keys) if k not in have], dtype=np.int64)
    subset = candidates.take(pa.array(todo, pa.int64()))
    pairs = [Pair(query_text[q], item_text.get(i, "")) for q, i in
             zip(subset.column("query_id").to_pylist(), subset.column("item_id").to_pylist())]
    out = teacher.label(pairs)
    spent["cost"] += float(out.cost.sum())
    spent["pairs"] += len(pairs)
    table = _labels_table(subset, out, np.flatnonzero(~out.failed), teacher)
    if done is not None:
        table = pa.concat_tables([done.select(table.column_names).cast(table.schema), table])
        order = {k: i for i, k in enumerate(keys)}
        ranks = [order[k] for k in zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist())]
        table = table.take(pa.array(np.argsort(ranks, kind="stable"), pa.int64()))
    n_failed = int(out.failed.sum())
    if n_failed:
        for i in np.flatnonzero(out.failed):
            tier = (out.errors[i] or "?").split(":", 1)[0]
            failures[tier] = failures.get(tier, 0) + 1
            first_errors.setdefault(tier, out.errors[i] or "")
        sub.write_table(partial, table)
        log_event(log, "shard kept open: pairs failed", level=30, shard=shard, failed=n_failed, labelled=table.num_rows)
        return
    writer.write(shard, table)
    log_event(log, "shard committed", shard=shard, pairs=table.num_rows)


def _write_judgments(sub: DataBus, labels: pa.Table, scale: GradeScale, teacher) -> None:
    """The teacher's grades as the sub-run's ``judgments`` (``source``: ``teacher:<tier or model>``)."""
    inputs = {"labels": sub.manifest(LABELS).digest()}
    if sub.committed_with("judgments", fingerprint(inputs, "teacher")) is not None:
        return
    who = teacher.describe().get("tier") or "cascade"
    table = pa.table({
        "query_id": labels.column("query_id"), "item_id": labels.column("item_id"),
        "grade": labels.column("grade"), "source": pa.array([f"teacher:{who}"] * labels.num_rows, pa.string()),
    })
    sub.write_table("judgments", table, metadata={GRADE_SCALE_KEY: scale.model_dump(), "teacher": teacher.describe()},
                    inputs=inputs, config_hash="teacher")


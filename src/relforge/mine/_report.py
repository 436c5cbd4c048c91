"""The mining report: channel overlap, bucket sizes and, where humans judged, grades per bucket.

Statistics are accumulated over the committed ``candidates`` table file by file (one file
per shard), so the report's memory does not grow with the number of queries beyond the
judgments it joins against.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relforge.bus import DataBus
from relforge.errors import NotCommittedError
from relforge.grades import GradeScale
from relforge.mine._buckets import BUCKET_RULES, BUCKETS

REPORT_JSON = "reports/mining.json"
REPORT_MD = "reports/mining.md"


def iter_table_parts(bus: DataBus, name: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The committed files of table ``name``, one at a time (as the manifest lists them)."""
    manifest = bus.manifest(name)
    for entry in manifest.files:
        path = posixpath.join(bus.base, name, entry.path)
        with bus.fs.open_input_file(path) as src:
            yield pq.read_table(src, columns=columns)


def grade_scale_of(bus: DataBus, judgments: pa.Table) -> GradeScale:
    """The grade scale ingest recorded with the tables, else grades named by their number."""
    from relforge.grades import read_grade_scale

    try:
        return read_grade_scale(bus)
    except NotCommittedError:
        top = max(int(judgments.column("grade").to_numpy().max(initial=0)), 1)
        return GradeScale.from_names([str(g) for g in range(top + 1)])


class _GradeCounts:
    def __init__(self, n_grades: int):
        self.n = n_grades
        self.rows: dict[str, int] = {}
        self.counts: dict[str, np.ndarray] = {}

    def add(self, key: str, rows: int, grades: np.ndarray) -> None:
        self.rows[key] = self.rows.get(key, 0) + rows
        counts = np.bincount(grades.astype(np.int64), minlength=self.n)[: self.n]
        self.counts[key] = self.counts.get(key, np.zeros(self.n, np.int64)) + counts

    def to_dict(self, keys: Sequence[str]) -> dict[str, Any]:
        out = {}
        for key in keys:
            if key not in self.rows:
                continue
            counts = self.counts[key]
            judged = int(counts.sum())
            out[key] = {
                "rows": self.rows[key],
                "judged": judged,
                "judged_share": judged / self.rows[key] if self.rows[key] else None,
                "counts": counts.tolist(),
                "shares": (counts / judged).round(4).tolist() if judged else None,
            }
        return out


def mining_report(bus: DataBus) -> dict[str, Any]:
    """Statistics of the committed ``candidates`` table (and ``judgments``, when committed).

    Returns:
        A JSON-ready dict: channels, bucket sizes, channel sets, per-channel counts, mean
        per-query Jaccard overlap of the channels' top-k sets per pair, and, with judgments,
        the grade distribution per bucket, per channel and among judged pairs no channel
        retrieved.
    """
    manifest = bus.manifest("candidates")
    meta = manifest.metadata
    channels = [c["name"] for c in meta.get("channels", [])]
    rank_cols = [f"rank_{c}" for c in channels]

    judged: pd.DataFrame | None = None
    scale: GradeScale | None = None
    if bus.is_committed("judgments"):
        jt = bus.read_table("judgments", columns=["query_id", "item_id", "grade"])
        scale = grade_scale_of(bus, jt)
        judged = jt.replace_schema_metadata(None).to_pandas()
        judged = judged.drop_duplicates(["query_id", "item_id"], keep="last")
    grades_by_bucket = _GradeCounts(scale.n) if scale else None
    grades_by_channel = _GradeCounts(scale.n) if scale else None
    found_judged_counts = np.zeros(scale.n if scale else 0, np.int64)

    bucket_rows = {b: 0 for b in BUCKETS}
    channel_sets: dict[str, int] = {}
    retrieved = {c: 0 for c in channels}
    queries_with = {c: 0 for c in channels}
    jaccard_sum = {pair: 0.0 for pair in combinations(channels, 2)}
    jaccard_n = {pair: 0 for pair in combinations(channels, 2)}
    query_ids: set[str] = set()
    queries_without = 0

    columns = ["query_id", "item_id", "n_channels", "bucket", *rank_cols]
    for part in iter_table_parts(bus, "candidates", columns):
        df = part.to_pandas()
        found = pd.DataFrame({c: df[f"rank_{c}"].notna() for c in channels}, index=df.index)
        found["query_id"] = df["query_id"]
        per_query = found.groupby("query_id", sort=False)[channels].sum()
        query_ids.update(per_query.index)
        queries_without += int((per_query.sum(axis=1) == 0).sum()) if channels else len(per_query)
        for bucket, n in df["bucket"].value_counts().items():
            bucket_rows[bucket] = bucket_rows.get(bucket, 0) + int(n)
        mined = df["n_channels"] > 0
        if channels and mined.any():
            code = sum(found.loc[mined, c].to_numpy().astype(np.int64) << j for j, c in enumerate(channels))
            for value, n in zip(*np.unique(code, return_counts=True)):
                key = "+".join(c for j, c in enumerate(channels) if int(value) >> j & 1)
                channel_sets[key] = channel_sets.get(key, 0) + int(n)
        for c in channels:
            retrieved[c] += int(found[c].sum())
            queries_with[c] += int((per_query[c] > 0).sum())
        for a, b in jaccard_sum:
            both = (found[a] & found[b]).groupby(found["query_id"], sort=False).sum()
            either = (found[a] | found[b]).groupby(found["query_id"], sort=False).sum()
            ok = either > 0
            jaccard_sum[(a, b)] += float((both[ok] / either[ok]).sum())
            jaccard_n[(a, b)] += int(ok.sum())
        if judged is not None:
            merged = df.merge(judged, on=["query_id", "item_id"], how="left")
            has = merged["grade"].notna()
            for bucket, group in merged.groupby("bucket", sort=False):
                g = group["grade"].dropna().to_numpy()
                grades_by_bucket.add(bucket, len(group), g)
            for c in channels:
                sel = merged[f"rank_{c}"].notna()
                grades_by_channel.add(c, int(sel.sum()), merged.loc[sel & has, "grade"].to_numpy())
            hit = has & (merged["n_channels"] > 0)
            found_judged_counts += np.bincount(
                merged.loc[hit, "grade"].to_numpy().astype(np.int64), minlength=scale.n
            )[: scale.n]

    n_queries = len(query_ids)
    total = sum(bucket_rows.values())
    report: dict[str, Any] = {
        "table": bus.uri("candidates"),
        "channels": meta.get("channels", []),
        "top_k": meta.get("top_k"),
        "random_negatives": meta.get("random_negatives"),
        "queries": n_queries,
        "queries_without_candidates": queries_without,
        "rows": total,
        "bucket_rules": BUCKET_RULES,
        "buckets": {
            b: {"rows": n, "share": round(n / total, 4) if total else None}
            for b, n in bucket_rows.items()
        },
        "channel_sets": dict(sorted(channel_sets.items(), key=lambda kv: -kv[1])),
        "per_channel": {
            c: {
                "retrieved": retrieved[c],
                "queries_with_results": queries_with[c],
                "mean_per_query": round(retrieved[c] / n_queries, 2) if n_queries else None,
            }
            for c in channels
        },
        "overlap": [
            {
                "a": a,
                "b": b,
                "mean_jaccard": round(jaccard_sum[(a, b)] / jaccard_n[(a, b)], 4) if jaccard_n[(a, b)] else None,
                "queries": jaccard_n[(a, b)],
            }
            for a, b in jaccard_sum
        ],
        "grades": None,
    }
    if judged is not None and scale is not None:
        in_run = judged[judged["query_id"].isin(query_ids)]
        all_counts = np.bincount(in_run["grade"].to_numpy().astype(np.int64), minlength=scale.n)[: scale.n]
        missed = all_counts - found_judged_counts
        missed_total = int(missed.sum())
        report["grades"] = {
            "scale": scale.names,
            "judged_pairs": len(in_run),
            "judged_queries": int(in_run["query_id"].nunique()),
            "by_bucket": grades_by_bucket.to_dict(BUCKETS),
            "by_channel": grades_by_channel.to_dict(channels),
            "not_retrieved": {
                "judged": missed_total,
                "counts": missed.tolist(),
                "shares": (missed / missed_total).round(4).tolist() if missed_total else None,
            },
            "found_share_by_grade": [
                round(float(f / a), 4) if a else None for f, a in zip(found_judged_counts, all_counts)
            ],
        }
    return report


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (the same numbers as the JSON)."""
    chans = ", ".join(
        f"`{c['name']}` ({'lexical' if c.get('lexical') else 'not lexical'})" for c in report["channels"]
    )
    lines = [
        "# Mining report",
        "",
        (f"Table `{report['table']}`: {report['rows']:,} rows for {report['queries']:,} queries "
        f"({report['queries_without_candidates']:,} with no candidate from any channel); "
        f"top-{report['top_k']} per channel; {report['random_negatives']} random negatives per query."),
        "",
        f"Channels: {chans}.",
        "",
        f"Buckets: {report['bucket_rules']}",
        "",
        "## Buckets",
        "",
        "| bucket | rows | share |",
        "|---|---:|---:|",
    ]
    for b, v in report["buckets"].items():
        lines.append(f"| {b} | {v['rows']:,} | {_pct(v['share'])} |")
    lines += ["", "## Channel overlap (mean per-query Jaccard of top-k sets)", ""]
    lines += ["| channels | Jaccard | queries |", "|---|---:|---:|"]
    for o in report["overlap"]:
        j = "" if o["mean_jaccard"] is None else f"{o['mean_jaccard']:.3f}"
        lines.append(f"| {o['a']} / {o['b']} | {j} | {o['queries']:,} |")
    lines += ["", "## Which channels retrieved each candidate", "", "| channels | rows |", "|---|---:|"]
    for key, n in report["channel_sets"].items():
        lines.append(f"| {key} | {n:,} |")
    lines += ["", "| channel | retrieved | queries with results | mean per query |", "|---|---:|---:|---:|"]
    for c, v in report["per_channel"].items():
        lines.append(f"| {c} | {v['retrieved']:,} | {v['queries_with_results']:,} | {v['mean_per_query']} |")
    grades = report.get("grades")
    if grades:
        names = grades["scale"]
        head = " | ".join(names)
        lines += [
            "",
            "## Human grades per bucket",
            "",
            (f"{grades['judged_pairs']:,} judged pairs over {grades['judged_queries']:,} queries. "
            "Counts of judged candidates per grade, then the shares within the row (judged pairs only); "
            "`judged` is the share of the bucket's rows that a human judged."),
            "",
            f"| bucket | rows | judged | {head} | " + " | ".join(f"{n} %" for n in names) + " |",
            "|---|---:|---:|" + "---:|" * (2 * len(names)),
        ]

        def row(label: str, v: dict[str, Any]) -> str:
            shares = v["shares"] or [None] * len(names)
            judged = f"{v['judged']:,} ({_pct(v.get('judged_share'))})" if "rows" in v else f"{v['judged']:,}"
            rows = f"{v['rows']:,}" if "rows" in v else ""
            return (
                f"| {label} | {rows} | {judged} | "
                + " | ".join(f"{c:,}" for c in v["counts"])
                + " | "
                + " | ".join(_pct(s) for s in shares)
                + " |"
            )

        for b, v in grades["by_bucket"].items():
            lines.append(row(b, v))
        lines.append(row("*no channel*", grades["not_retrieved"]))
        lines += [
            "",
            "Per channel (every candidate the channel retrieved, whatever its bucket):",
            "",
            f"| channel | rows | judged | {head} | " + " | ".join(f"{n} %" for n in names) + " |",
            "|---|---:|---:|" + "---:|" * (2 * len(names)),
        ]
        for c, v in grades["by_channel"].items():
            lines.append(row(c, v))
        found = ", ".join(f"{n} {_pct(s)}" for n, s in zip(names, grades["found_share_by_grade"]))
        lines += [
            "",
            ("`*no channel*`: judged pairs of these queries that no channel retrieved (some of them "
            f"may be sampled as random negatives). Share of judged pairs retrieved by some channel, per grade: {found}."),
        ]
    else:
        lines += ["", "No committed `judgments` table: no grade distribution."]
    return "\n".join(lines) + "\n"


def write_report(bus: DataBus) -> dict[str, Any]:
    """Compute the report and write ``reports/mining.json`` and ``reports/mining.md``."""
    report = mining_report(bus)
    bus.write_json(REPORT_JSON, report)
    bus.write_text(REPORT_MD, render_markdown(report))
    return report


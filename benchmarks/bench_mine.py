"""Mining benchmark: relforge's channels against direct bm25s / scikit-learn / faiss calls.

Builds a deterministic catalog of generated product titles (default 100,000) and queries
(default 10,000), then measures, each in its own subprocess (so that peak memory is that
measurement's alone): index build time, query throughput and peak resident memory of

- ``bm25``: relforge's BM25 channel (queries in shards of ``queries_per_shard``) vs bm25s
  called as its README does (``bm25s.tokenize`` + ``BM25.index`` + ``retrieve``). The
  channel scores with bm25s too but takes the top k among the items scoring above 0 only,
  which is where it gains on ``retrieve``'s partition of the whole catalog;
- ``ngram``: relforge's character n-gram channel (hashed n-grams, top k from the sparse
  product's nonzero entries) vs scikit-learn's ``TfidfVectorizer`` (``char_wb``, same
  n-grams) with a sparse product, ``toarray`` and ``argpartition``;
- ``dense``: relforge's faiss channel vs ``faiss.IndexFlatIP`` on the same vectors. The
  vectors are random unit vectors of the encoder's width (384): encoding 100k titles with
  MiniLM on 2 CPU cores takes far longer than the search, so the encoder's throughput is
  measured apart, on a sample of titles (``encoder``);
- ``total``: ``relforge.mine.run_mine`` end to end on a local bus (reading the tables,
  the three channels, assembling and committing the candidate shards, the report), its
  dense channel reading the same precomputed vectors, vs the sum of the direct calls.

Times are wall seconds and the process's CPU seconds (all threads); other processes on the
machine distort wall times more than CPU times, so the verdict on the 20% goal uses CPU time.

Usage:
    python benchmarks/bench_mine.py                       # 100k items, 10k queries
    python benchmarks/bench_mine.py --items 20000 --queries 2000 --skip encoder
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _memory import own_peak_mib, rss_mib

K = 50
DIM = 384
SEED = 7

BRANDS = ["acme", "zento", "norvik", "kaltra", "brisa", "lumio", "vexa", "orbis", "tandem", "solace", "hartwell", "pinecrest", "ravel", "quorra", "atlas", "meridian", "fjord", "cobalt", "ember", "nimbus", "sable", "kestrel", "juniper", "halcyon", "vireo", "calder", "brio", "tessel", "lark", "marlow", "oxbow", "quill", "rook", "sedge", "thistle", "umber", "wren", "yarrow", "zephyr"]
ADJECTIVES = ["portable", "wireless", "compact", "heavy", "duty", "lightweight", "waterproof", "foldable", "adjustable", "rechargeable", "ergonomic", "premium", "classic", "slim", "extra", "large", "mini", "professional", "outdoor", "indoor", "organic", "stainless", "insulated", "non", "slip", "quick", "dry", "breathable", "durable", "vintage", "modern", "smart", "magnetic", "cordless", "ultra", "soft", "reusable"]
MATERIALS = ["cotton", "leather", "steel", "bamboo", "glass", "ceramic", "silicone", "wool", "nylon", "plastic", "oak", "aluminium", "linen"]
NOUNS = ["shoes", "sneakers", "boots", "sandals", "socks", "shirt", "tshirt", "hoodie", "jacket", "jeans", "dress", "skirt", "scarf", "hat", "gloves", "backpack", "wallet", "belt", "watch", "bracelet", "necklace", "earrings", "sunglasses", "umbrella", "bottle", "mug", "kettle", "blender", "toaster", "skillet", "pan", "pot", "knife", "cutting", "board", "spatula", "whisk", "bowl", "plate", "glass", "towel", "pillow", "blanket", "sheet", "mattress", "lamp", "bulb", "chair", "desk", "shelf", "rug", "curtain", "mirror", "clock", "vase", "candle", "speaker", "headphones", "earbuds", "charger", "cable", "adapter", "keyboard", "mouse", "monitor", "stand", "tripod", "camera", "lens", "case", "cover", "screen", "protector", "battery", "drill", "hammer", "wrench", "screwdriver", "saw", "tape", "glue", "paint", "brush", "notebook", "pen", "pencil", "marker", "stapler", "puzzle", "doll", "blocks", "ball", "racket", "helmet", "bicycle", "tent", "sleeping", "bag", "cooler", "lantern", "leash", "collar", "harness", "bed", "bowl", "feeder", "toy"]
COLORS = ["black", "white", "red", "blue", "green", "grey", "navy", "pink", "beige", "brown", "purple", "orange", "yellow", "silver", "gold"]
AUDIENCE = ["men", "women", "kids", "boys", "girls", "baby", "toddler", "adults", "dogs", "cats"]
SIZES = ["small", "medium", "large", "xl", "xxl", "8oz", "12oz", "16oz", "32oz", "1l", "2l", "10in", "12in", "15in"]


def generate(n_items: int, n_queries: int, seed: int = SEED) -> tuple[list[str], list[str]]:
    """Product titles and queries drawn from a fixed vocabulary (deterministic for a seed).

    Titles mix brand, adjectives, material, noun, audience, colour, size and a model code (so
    that the vocabulary grows with the catalog, as real catalogs' does). Queries take 1 to 4
    words of a random title, sometimes with a typo, a plural or a word from another title.
    """
    rng = np.random.default_rng(seed)

    def pick(words):
        return words[int(rng.integers(len(words)))]

    titles = []
    for _ in range(n_items):
        words = [pick(BRANDS)]
        words += [pick(ADJECTIVES) for _ in range(int(rng.integers(0, 3)))]
        if rng.random() < 0.6:
            words.append(pick(MATERIALS))
        words.append(pick(NOUNS))
        if rng.random() < 0.5:
            words += ["for", pick(AUDIENCE)]
        if rng.random() < 0.7:
            words.append(pick(COLORS))
        if rng.random() < 0.5:
            words.append(pick(SIZES))
        if rng.random() < 0.3:
            words += ["pack", "of", str(int(rng.integers(2, 13)))]
        words.append(f"{chr(97 + int(rng.integers(26)))}{int(rng.integers(100, 99999))}")
        titles.append(" ".join(words))
    queries = []
    for _ in range(n_queries):
        words = [w for w in pick(titles).split()[:-1] if w not in {"for", "of", "pack"}]
        take = sorted(rng.choice(len(words), size=min(len(words), int(rng.integers(1, 5))), replace=False))
        q = [words[i] for i in take]
        if rng.random() < 0.1:
            j = int(rng.integers(len(q)))
            w = q[j]
            if len(w) > 4:
                cut = int(rng.integers(1, len(w) - 1))
                q[j] = w[:cut] + w[cut + 1 :]
        if rng.random() < 0.1:
            q[-1] = q[-1] + "s"
        if rng.random() < 0.1:
            q.append(pick(NOUNS))
        queries.append(" ".join(q))
    return titles, queries


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


# -- measurements (each runs in a child process) ---------------------------------------------
def _timed(fn):
    """``fn()``, and its (wall, CPU) seconds; CPU time is this process's, all threads."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def _in_shards(search, queries, shard):
    parts = [search(queries[s : s + shard]) for s in range(0, len(queries), shard)]
    return np.concatenate([p[0] for p in parts])


def measure_bm25_pipeline(titles, queries, args):
    from relforge.mine.channels import BM25Channel

    ch = BM25Channel()
    _, build = _timed(lambda: ch.index(titles, [str(i) for i in range(len(titles))]))
    idx, search = _timed(lambda: _in_shards(lambda q: ch.search(q, K), queries, args.shard))
    return build, search, idx


def measure_bm25_direct(titles, queries, args):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()

    def build():
        retriever.index(bm25s.tokenize(titles, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)

    def search():
        tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
        return retriever.retrieve(tokens, k=K, show_progress=False)[0]

    _, b = _timed(build)
    idx, s = _timed(search)
    return b, s, idx


def measure_ngram_pipeline(titles, queries, args):
    from relforge.mine.channels import NgramChannel

    ch = NgramChannel()
    _, build = _timed(lambda: ch.index(titles, [str(i) for i in range(len(titles))]))
    idx, search = _timed(lambda: _in_shards(lambda q: ch.search(q, K), queries, args.shard))
    return build, search, idx


def measure_ngram_direct(titles, queries, args):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
    holder = {}

    def build():
        holder["items_t"] = vec.fit_transform(titles).T.tocsr()

    def search():
        out = []
        for s in range(0, len(queries), 256):
            sims = (vec.transform(queries[s : s + 256]) @ holder["items_t"]).toarray()
            part = np.argpartition(-sims, K - 1, axis=1)[:, :K]
            order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
            out.append(np.take_along_axis(part, order, axis=1))
        return np.concatenate(out)

    _, b = _timed(build)
    idx, s = _timed(search)
    return b, s, idx


def measure_dense_pipeline(titles, queries, args):
    from relforge.config import MineConfig
    from relforge.mine.channels import DenseChannel, VectorIndex

    items, qv = unit_vectors(len(titles), 1), unit_vectors(len(queries), 2)
    cfg = MineConfig()
    ch = DenseChannel(encoder=None, index=VectorIndex(hnsw_m=cfg.hnsw_m, ef_search=cfg.hnsw_ef_search))
    _, build = _timed(lambda: ch.index_vectors(items))
    idx, search = _timed(lambda: _in_shards(lambda v: ch.search_vectors(v, K), qv, args.shard))
    return build, search, idx


def measure_dense_direct(titles, queries, args):
    import faiss

    items, qv = unit_vectors(len(titles), 1), unit_vectors(len(queries), 2)
    index = faiss.IndexFlatIP(DIM)
    _, build = _timed(lambda: index.add(items))
    (_scores, idx), search = _timed(lambda: index.search(qv, K))
    return build, search, idx


def measure_encoder(titles, queries, args):
    from relforge.config import load_config
    from relforge.mine.channels import load_encoder, resolve_model_dir

    cfg = load_config()
    encode, load = _timed(
        lambda: load_encoder(resolve_model_dir(cfg.mine.dense_model, cfg), cfg.mine.batch_size, cfg.mine.dense_max_seq_length)
    )
    sample = titles[: args.encoder_sample]
    _, s = _timed(lambda: encode(sample))
    return load, s, {"model": cfg.mine.dense_model, "max_seq_length": cfg.mine.dense_max_seq_length}


def measure_total(titles, queries, args):
    import pyarrow as pa

    from relforge.bus import DataBus
    from relforge.config import RelforgeConfig
    from relforge.mine import run_mine
    from relforge.mine.channels import DenseChannel, VectorIndex, register_channel

    item_vecs, query_vecs = unit_vectors(len(titles), 1), unit_vectors(len(queries), 2)
    lookup = {t: i for i, t in enumerate(titles)}
    qlookup = {q: i for i, q in enumerate(queries)}

    def encode(texts):  # the precomputed vectors of these texts (MiniLM is measured apart)
        if texts and texts[0] in lookup:
            return item_vecs[[lookup[t] for t in texts]]
        return query_vecs[[qlookup[t] for t in texts]]

    def factory(cfg):
        m = cfg.mine
        return DenseChannel(encode, VectorIndex(hnsw_m=m.hnsw_m, ef_search=m.hnsw_ef_search))

    register_channel("dense", factory, replace=True)
    root = Path(tempfile.mkdtemp(prefix="bus-", dir=args.workdir))
    bus = DataBus(root)
    ids = [f"i{i}" for i in range(len(titles))]
    bus.write_table("catalog", pa.table({"item_id": ids, "title": titles, "text": titles}))
    qids = [f"q{i}" for i in range(len(queries))]
    bus.write_table("queries", pa.table({"query_id": qids, "query": queries, "split": ["unlabeled"] * len(qids)}))
    config = RelforgeConfig()
    config.mine.queries_per_shard = args.shard
    _, total = _timed(lambda: run_mine(bus, config))
    report = bus.read_json("reports/mining.json")
    return None, total, {"rows": report["rows"], "buckets": {b: v["rows"] for b, v in report["buckets"].items()}}


MEASURES = {
    "bm25": measure_bm25_pipeline,
    "bm25-direct": measure_bm25_direct,
    "ngram": measure_ngram_pipeline,
    "ngram-direct": measure_ngram_direct,
    "dense": measure_dense_pipeline,
    "dense-direct": measure_dense_direct,
    "encoder": measure_encoder,
    "total": measure_total,
}


#: What each measurement imports before its baseline memory is read, so that "+ over inputs"
#: is the index and the search alone, not the libraries.
IMPORTS = {
    "bm25": ("relforge.mine",),
    "ngram": ("relforge.mine",),
    "dense": ("relforge.mine",),
    "total": ("relforge.mine",),
    "encoder": ("relforge.mine", "sentence_transformers"),
    "bm25-direct": ("bm25s", "Stemmer"),
    "ngram-direct": ("sklearn.feature_extraction.text",),
    "dense-direct": ("faiss",),
}


def child(args) -> None:
    import importlib

    for module in IMPORTS[args.measure]:
        importlib.import_module(module)
    titles, queries = generate(args.items, args.queries)
    base = rss_mib()
    build, search, out = MEASURES[args.measure](titles, queries, args)
    build = build or (0.0, 0.0)
    result = {
        "build_s": build[0], "build_cpu_s": build[1], "search_s": search[0], "search_cpu_s": search[1],
        "peak_mb": own_peak_mib(), "base_mb": base,
    }
    if isinstance(out, np.ndarray):
        result["found_per_query"] = float((out >= 0).sum() / max(len(queries), 1))
    elif isinstance(out, dict):
        result.update(out)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(name: str, args, workdir: str) -> dict:
    cmd = [
        sys.executable, __file__, "--measure", name, "--items", str(args.items), "--queries", str(args.queries),
        "--shard", str(args.shard), "--encoder-sample", str(args.encoder_sample), "--workdir", workdir,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"measurement {name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def _best(runs: list[dict]) -> dict:
    """Per figure, the best of the repetitions (least time, least memory)."""
    out = dict(runs[0])
    for key in ("build_s", "build_cpu_s", "search_s", "search_cpu_s", "peak_mb", "base_mb"):
        out[key] = min(r[key] for r in runs)
    return out


def _pct(pipe: float, direct: float) -> str:
    return f"{100 * (pipe - direct) / direct:+.1f}%" if direct > 0 else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--shard", type=int, default=1000, help="queries per shard (mine.queries_per_shard)")
    parser.add_argument("--encoder-sample", type=int, default=500, help="titles encoded to time the encoder")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions (pipeline and direct alternate); best kept")
    parser.add_argument("--skip", nargs="*", default=[], help=f"measurements to skip: {' '.join(MEASURES)}")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        child(args)
        return

    load = os.getloadavg()[0]
    print(f"mining benchmark: {args.items:,} generated titles, {args.queries:,} queries, top-{K}, "
          f"shards of {args.shard:,} queries; {os.cpu_count()} CPU(s), load average {load:.1f} at the start")
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as workdir:
        for rep in range(args.repeat):
            for name in MEASURES:
                if name in args.skip:
                    continue
                start = time.perf_counter()
                runs.setdefault(name, []).append(run_child(name, args, workdir))
                print(f"  [{rep + 1}/{args.repeat}] {name:13s} {time.perf_counter() - start:6.1f} s", flush=True)
    results = {name: _best(r) for name, r in runs.items()}

    n = args.queries
    print()
    print("Per channel (wall seconds, with CPU seconds of the process in brackets; memory in MiB):")
    print(f"{'':25s} {'index build':>17s} {'search':>17s} {'queries/s':>9s} {'peak':>6s} {'index+search':>12s}")
    labels = (("bm25", "bm25s"), ("ngram", "sklearn TfidfVectorizer"), ("dense", "faiss IndexFlatIP"))
    for ch, direct_name in labels:
        for key, label in ((ch, f"relforge {ch}"), (f"{ch}-direct", f"  {direct_name}")):
            if key in results:
                r = results[key]
                print(f"{label:25s} {r['build_s']:8.2f} ({r['build_cpu_s']:6.2f}) {r['search_s']:8.2f} "
                      f"({r['search_cpu_s']:6.2f}) {n / r['search_s']:9.0f} {r['peak_mb']:6.0f} "
                      f"{r['peak_mb'] - r['base_mb']:12.0f}")
    print("('peak' is the process's peak resident memory, generated inputs and libraries included; "
          "'index+search' is the part above what the process held before building the index.)")

    print()
    print("Overhead of relforge over the direct calls, index build + search:")
    print(f"{'':8s} {'relforge':>9s} {'direct':>9s} {'wall':>8s} {'CPU':>8s}   results per query")
    direct_wall = direct_cpu = 0.0
    met: bool | None = None
    for ch, _ in labels:
        if ch in results and f"{ch}-direct" in results:
            p, d = results[ch], results[f"{ch}-direct"]
            pw, dw = p["build_s"] + p["search_s"], d["build_s"] + d["search_s"]
            pc, dc = p["build_cpu_s"] + p["search_cpu_s"], d["build_cpu_s"] + d["search_cpu_s"]
            direct_wall, direct_cpu = direct_wall + dw, direct_cpu + dc
            met = (met is not False) and pc <= 1.2 * dc
            print(f"{ch:8s} {pw:8.2f}s {dw:8.2f}s {_pct(pw, dw):>8s} {_pct(pc, dc):>8s}   "
                  f"{p['found_per_query']:.1f} vs {d['found_per_query']:.1f}")
    if "total" in results:
        t = results["total"]
        if direct_cpu > 0:
            met = (met is not False) and t["search_cpu_s"] <= 1.2 * direct_cpu
        print(f"{'total':8s} {t['search_s']:8.2f}s {direct_wall:8.2f}s {_pct(t['search_s'], direct_wall):>8s} "
              f"{_pct(t['search_cpu_s'], direct_cpu):>8s}   run_mine end to end (read tables, 3 channels, "
              f"{t['rows']:,} rows in {-(-n // args.shard)} committed shards, report) vs the sum of the direct calls")
        print(f"         run_mine peak memory {t['peak_mb']:.0f} MiB ({t['peak_mb'] / 1024:.2f} GiB), "
              f"{t['base_mb']:.0f} MiB of it held before (inputs, precomputed vectors, libraries)")
        print(f"         buckets {t['buckets']} (the dense vectors are random here: few consensus rows)")
    if "encoder" in results:
        e = results["encoder"]
        rate = args.encoder_sample / e["search_s"]
        print()
        print(f"Encoder ({e['model']}, at most {e['max_seq_length']} tokens), not in the times above: "
              f"{rate:.0f} titles/s on {args.encoder_sample:,} titles; the {args.items + args.queries:,} texts "
              f"here would take about {(args.items + args.queries) / rate / 60:.1f} min (cached after the first run)")
    mem_ok = all(r["peak_mb"] < 6 * 1024 for r in results.values())
    print()
    verdict = "not measured" if met is None else ("met" if met else "NOT met")
    print(f"Goal, overhead <= 20% (CPU time): {verdict}; "
          f"peak memory < 6 GiB: {'met' if mem_ok else 'NOT met'}. "
          f"Load average now {os.getloadavg()[0]:.1f} (other processes distort wall times).")


if __name__ == "__main__":
    main()

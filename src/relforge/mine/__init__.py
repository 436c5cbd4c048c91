"""Step ``mine``: candidates from the disagreement of several retrieval channels.

Every (query, item) that some channel retrieves keeps each channel's rank and score and
falls into a bucket (``consensus``, ``lexical_only``, ``partial``, ``single``; sampled
``random`` negatives besides); the mining report shows the channels' overlap, the bucket
sizes and, where humans judged, the grades per bucket.

Example:
    >>> from relforge.mine import run_mine
    >>> manifest = run_mine(bus, config)             # doctest: +SKIP
"""

from relforge._lazy import lazy_exports

# name -> the private module that defines it, imported on first use (faiss, torch are heavy)
_EXPORTS = {
    "BUCKETS": "relforge.mine._buckets",
    "BUCKET_RULES": "relforge.mine._buckets",
    "Channel": "relforge.mine.channels",
    "ChannelResult": "relforge.mine._candidates",
    "REPORT_JSON": "relforge.mine._report",
    "REPORT_MD": "relforge.mine._report",
    "assign_buckets": "relforge.mine._buckets",
    "available_channels": "relforge.mine.channels",
    "build_candidates": "relforge.mine._candidates",
    "build_channel": "relforge.mine.channels",
    "mining_report": "relforge.mine._report",
    "register_channel": "relforge.mine.channels",
    "render_markdown": "relforge.mine._report",
    "mine_step": "relforge.mine._run",
    "run_mine": "relforge.mine._run",
    "sample_negatives": "relforge.mine._candidates",
    "write_report": "relforge.mine._report",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="mine",
    run="relforge.mine._run:mine_step",
    summary="Retrieve candidates with every configured channel (BM25, character n-grams, dense) and write "
    "candidates: per (query, item) each channel's rank and score, and a bucket from their agreement.",
    reads=("catalog", "queries", "packaged-models"),
    writes=("candidates",),
    section="mine",
    outputs=(Output("report", "Markdown", "reports/mining.md"),),
    resources=Resources(cpu="4", memory="16Gi"),
    stability="beta",
)

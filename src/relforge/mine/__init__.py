"""Step ``mine``: candidates from the disagreement of several retrieval channels.

Every (query, item) that some channel retrieves keeps each channel's rank and score and
falls into a bucket (``consensus``, ``lexical_only``, ``partial``, ``single``; sampled
``random`` negatives besides); the mining report shows the channels' overlap, the bucket
sizes and, where humans judged, the grades per bucket.

Example:
    >>> from relforge.mine import run_mine
    >>> manifest = run_mine(bus, config)             # doctest: +SKIP
"""

from relforge.mine._buckets import BUCKET_RULES, BUCKETS, assign_buckets
from relforge.mine._candidates import ChannelResult, build_candidates, sample_negatives
from relforge.mine._report import (
    REPORT_JSON,
    REPORT_MD,
    mining_report,
    render_markdown,
    write_report,
)
from relforge.mine._run import run_mine
from relforge.mine.channels import Channel, available_channels, build_channel, register_channel

__all__ = [
    "BUCKETS",
    "BUCKET_RULES",
    "REPORT_JSON",
    "REPORT_MD",
    "Channel",
    "ChannelResult",
    "assign_buckets",
    "available_channels",
    "build_candidates",
    "build_channel",
    "mining_report",
    "register_channel",
    "render_markdown",
    "run_mine",
    "sample_negatives",
    "write_report",
]

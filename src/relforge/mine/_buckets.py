"""The buckets of the ``candidates`` table: how many channels, and which kinds, retrieved an item.

Precedence, first match wins (``n`` = channels that retrieved the item for the query,
``N`` = channels in the run):

1. ``consensus``: ``n == N``, every channel retrieved it (mostly easy positives);
2. ``single``: ``n == 1``, exactly one channel retrieved it, lexical or not (the items that
   fool one system: hard negatives);
3. ``lexical_only``: ``n >= 2`` and every channel that retrieved it is lexical (hard
   positives: the words match, the meaning model disagrees);
4. ``partial``: the rest (two or more channels, at least one of them not lexical).

An item found by exactly one lexical channel is therefore ``single``, not ``lexical_only``:
"fooled exactly one channel" is the more specific statement. With one channel configured,
everything retrieved is ``consensus``. Sampled negatives that no channel retrieved are
``random`` (``n_channels`` 0, every rank null).

Example:
    >>> import numpy as np
    >>> found = np.array([[True, True, True], [True, True, False], [False, False, True]])
    >>> assign_buckets(found, lexical=[True, True, False]).tolist()
    ['consensus', 'lexical_only', 'single']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONSENSUS, LEXICAL_ONLY, SINGLE, PARTIAL, RANDOM = "consensus", "lexical_only", "single", "partial", "random"
#: Every bucket, in the order reports list them.
BUCKETS: tuple[str, ...] = (CONSENSUS, LEXICAL_ONLY, PARTIAL, SINGLE, RANDOM)

BUCKET_RULES = (
    "consensus: all channels; single: exactly one channel (of any kind); lexical_only: two or "
    "more channels, all lexical, not all channels; partial: the rest; random: sampled, no "
    "channel retrieved it. First match wins in the order consensus, single, lexical_only, partial."
)


def assign_buckets(found: np.ndarray, lexical: Sequence[bool]) -> np.ndarray:
    """The bucket of each row.

    Args:
        found: ``(n_rows, n_channels)`` bool, True where the channel retrieved the row's item.
        lexical: per channel, whether it is lexical.

    Returns:
        ``(n_rows,)`` array of bucket names (``object`` dtype); rows no channel retrieved
        are ``random``.
    """
    found = np.asarray(found, dtype=bool)
    lexical = np.asarray(lexical, dtype=bool)
    if found.ndim != 2 or found.shape[1] != len(lexical):
        raise ValueError(f"found has shape {found.shape}, expected (rows, {len(lexical)})")
    n = found.sum(axis=1)
    all_lexical = ~(found & ~lexical).any(axis=1)
    conditions = [n == found.shape[1], n == 1, (n >= 2) & all_lexical, n >= 2]
    choices = [CONSENSUS, SINGLE, LEXICAL_ONLY, PARTIAL]
    return np.select(conditions, choices, default=RANDOM).astype(object)

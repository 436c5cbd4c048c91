"""The pairs the calibrators are fitted on: the calib split's human judgments, plus human reviews.

- every judged pair of a **calib**-split query (the tiers never trained on these queries);
- with ``calibrate.use_reviews``, every human review (``relforge ingest reviews``) of a pair
  that no judgment covers, of a query outside the **test** split: test-split queries' human
  grades are for evaluation only, whatever table they are in. A review of a train-split query's
  candidate is a pair the tiers never trained on (reviews are not in ``judgments``, which is
  what ``finetune-tiers`` reads), from a query they saw: the held-out-pairs view.

``calibrate.max_pairs`` caps the pairs, sampled per query (the demo's time budget); unset, all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.finetune import GradedPairs, load_graded_pairs, sample_per_query
from relforge.grades import GradeScale

#: where ``relforge ingest reviews`` puts human answers to the review queue
REVIEWS = "reviews"
#: the split whose human grades no calibration ever uses
EVALUATION_SPLIT = "test"


@dataclass
class CalibrationPairs:
    """Judged pairs with their origin.

    Attributes:
        pairs: the pairs (query id, item id, texts, human grade), ordered by query then item.
        source: per pair, ``judgment`` or ``review``.
        split: per pair, its query's split.
    """

    pairs: GradedPairs
    source: np.ndarray
    split: np.ndarray

    def counts(self) -> dict[str, int]:
        """Pairs per origin, e.g. ``{"judgment/calib": 1300, "review/train": 40}``."""
        keys, counts = np.unique(np.char.add(np.char.add(self.source.astype(str), "/"), self.split.astype(str)),
                                 return_counts=True)
        return {str(k): int(c) for k, c in zip(keys, counts)}


def _reviews(bus: DataBus, config: RelforgeConfig, scale: GradeScale) -> tuple[GradedPairs | None, np.ndarray]:
    if not bus.is_committed(REVIEWS):
        return None, np.array([], dtype=object)
    reviews = bus.read_table(REVIEWS, columns=["query_id", "item_id", "grade"]).to_pydict()
    judged = bus.read_table("judgments", columns=["query_id", "item_id"]).to_pydict()
    taken = set(zip(judged["query_id"], judged["item_id"]))
    queries = bus.read_table("queries", columns=["query_id", "query", "split"]).to_pydict()
    split_of = dict(zip(queries["query_id"], queries["split"]))
    text_of_query = dict(zip(queries["query_id"], queries["query"]))
    field = config.finetune.item_field
    catalog = bus.read_table("catalog", columns=["item_id", field]).to_pydict()
    text_of_item = dict(zip(catalog["item_id"], catalog[field]))
    rows = [
        (q, i, g) for q, i, g in zip(reviews["query_id"], reviews["item_id"], reviews["grade"])
        if (q, i) not in taken and split_of.get(q) not in (None, EVALUATION_SPLIT) and i in text_of_item
        and 0 <= g < scale.n
    ]
    if not rows:
        return None, np.array([], dtype=object)
    rows.sort()
    q, i, g = (list(c) for c in zip(*rows))
    pairs = GradedPairs(
        query_id=np.asarray(q, dtype=object), item_id=np.asarray(i, dtype=object),
        query=np.asarray([text_of_query[x] for x in q], dtype=object),
        text=np.asarray(["" if text_of_item[x] is None else str(text_of_item[x]) for x in i], dtype=object),
        grade=np.asarray(g, dtype=np.int8),
    )
    return pairs, np.asarray([split_of[x] for x in q], dtype=object)


def calibration_pairs(bus: DataBus, config: RelforgeConfig, scale: GradeScale) -> CalibrationPairs:
    """The calib split's judged pairs and (``use_reviews``) the usable human reviews; see the module docstring.

    Raises:
        InputError: the calib split has no judged pair.
    """
    cfg = config.calibrate
    calib = load_graded_pairs(bus, "calib", config.finetune.item_field, scale.n)
    calib = sample_per_query(calib, cfg.max_pairs, cfg.seed)
    parts, sources, splits = [calib], [np.full(len(calib), "judgment", dtype=object)], [
        np.full(len(calib), "calib", dtype=object)]
    if cfg.use_reviews:
        reviewed, review_split = _reviews(bus, config, scale)
        if reviewed is not None:
            parts.append(reviewed)
            sources.append(np.full(len(reviewed), "review", dtype=object))
            splits.append(review_split)
    return CalibrationPairs(GradedPairs.concat(parts), np.concatenate(sources), np.concatenate(splits))

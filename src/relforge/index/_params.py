"""The index kinds and every parameter of building, choosing and checking an index, in one place."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal, get_args

from relforge.errors import ConfigError

#: ``exact``: ``IndexFlatIP``; ``hnsw``: ``IndexHNSWFlat``; ``ivfpq``: ``IndexIVFPQ``, refined.
IndexKind = Literal["exact", "hnsw", "ivfpq"]
INDEX_KINDS: tuple[str, ...] = get_args(IndexKind)
ANN_KINDS: tuple[str, ...] = ("hnsw", "ivfpq")
Refine = Literal["flat", "sq8", "none"]


@dataclass(frozen=True)
class IndexParams:
    """How indexes are built, searched, chosen and checked (all over inner product of
    L2-normalised float32 vectors).

    Args:
        hnsw_m: HNSW graph degree (``IndexHNSWFlat``'s ``M``).
        hnsw_ef_construction: HNSW build breadth.
        hnsw_ef_search: HNSW search breadth (raised to ``k`` when smaller).
        ivf_nlist: IVF inverted lists; ``None``: ``ivf_nlist_per_sqrt * sqrt(n)``, kept
            between 1 and ``n / ivf_train_per_list``.
        ivf_nlist_per_sqrt: the factor of the automatic ``ivf_nlist``.
        ivf_nprobe: lists visited per query.
        ivf_train_per_list: training vectors per list for the coarse k-means (faiss warns
            under 39); the training sample is ``min(n, ivf_nlist * ivf_train_per_list)``.
        pq_m: PQ sub-quantizers (bytes per vector at 8 bits); ``None``: the largest
            divisor of the dimension not above ``dim / 8``.
        pq_nbits: bits per sub-quantizer code.
        refine: re-rank IVF-PQ's shortlist with the full vectors (``flat``: exact,
            ``IndexRefineFlat``), 8-bit scalar-quantized vectors (``sq8``: a quarter of
            the memory) or not at all (``none``).
        refine_k_factor: the shortlist is ``refine_k_factor * k`` long.
        blas_database_block: catalog vectors per BLAS block in exact search (faiss's
            default is 1,024; larger blocks are markedly faster for batches).
        blas_min_queries: batches of at least this many queries take faiss's BLAS path in
            exact search (faiss 1.15 takes it only from ``128,000 / dim`` queries, and its
            other path is 5-15x slower per pair for batches of 20 to 300 queries).
        served_exact_max_items: a served index is exact up to this many items, ANN above.
        served_ann_kind: the ANN kind of a served index above that size.
        batch_ann_kinds: the ANN kinds a one-shot batch search considers.
        batch_ann_margin: a one-shot batch search uses an ANN index only when its estimated
            cost times this margin is still below exact search's (the estimates are rough,
            and ANN gives up recall).
        batch_probe_min_exact_s: ANN costs are probed (built on a sample) only when the
            exact search is estimated at least this long; below, exact is chosen outright.
        batch_probe_items: items in the sample an ANN kind is probed on.
        rate_probe_items: catalog vectors in the exact-rate measurement.
        rate_probe_queries: query vectors in the exact-rate measurement.
        recall_k: the ``k`` of the recall measured at build time (10: recall@10).
        recall_sample: queries in the recall sample (drawn from the item vectors when no
            queries are given).
        min_recall: the least recall@``recall_k`` that :func:`publish` accepts.
        seed: seeds every sample (training, probes, recall).
        threads: faiss (OpenMP) threads while building and searching; ``None``: faiss's
            default (all cores). On a shared, loaded machine 1 thread measured 3-5x faster
            than 2 for IVF-PQ training (no OpenMP spinning on busy cores).

    Example:
        >>> p = IndexParams(hnsw_m=16, served_exact_max_items=50_000)
        >>> p.nlist_for(1_000_000), p.pq_m_for(384)
        (2000, 48)
    """

    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None
    ivf_nlist_per_sqrt: float = 2.0
    ivf_nprobe: int = 64
    ivf_train_per_list: int = 50
    pq_m: int | None = None
    pq_nbits: int = 8
    refine: Refine = "flat"
    refine_k_factor: float = 10.0
    blas_database_block: int = 16_384
    blas_min_queries: int = 16
    served_exact_max_items: int = 100_000
    served_ann_kind: IndexKind = "hnsw"
    batch_ann_kinds: tuple[str, ...] = field(default=ANN_KINDS)
    batch_ann_margin: float = 1.5
    batch_probe_min_exact_s: float = 60.0
    batch_probe_items: int = 10_000
    rate_probe_items: int = 16_384
    rate_probe_queries: int = 512
    recall_k: int = 10
    recall_sample: int = 1_000
    min_recall: float = 0.95
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        positive = (
            "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nprobe", "ivf_train_per_list",
            "pq_nbits", "blas_database_block", "blas_min_queries", "batch_probe_items",
            "rate_probe_items", "rate_probe_queries", "recall_k", "recall_sample",
        )
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"IndexParams.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("ivf_nlist", "pq_m", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"IndexParams.{name} must be a positive integer or None, got {value!r}")
        if self.served_exact_max_items < 0:
            raise ConfigError("IndexParams.served_exact_max_items must be >= 0")
        if self.refine not in get_args(Refine):
            raise ConfigError(f"IndexParams.refine must be one of {get_args(Refine)}, got {self.refine!r}")
        if self.refine_k_factor < 1:
            raise ConfigError(f"IndexParams.refine_k_factor must be >= 1, got {self.refine_k_factor}")
        if self.served_ann_kind not in ANN_KINDS:
            raise ConfigError(f"IndexParams.served_ann_kind must be one of {ANN_KINDS}, got {self.served_ann_kind!r}")
        unknown = [k for k in self.batch_ann_kinds if k not in ANN_KINDS]
        if unknown:
            raise ConfigError(f"IndexParams.batch_ann_kinds: unknown kinds {unknown} (known: {ANN_KINDS})")
        if self.batch_ann_margin < 1:
            raise ConfigError(f"IndexParams.batch_ann_margin must be >= 1, got {self.batch_ann_margin}")
        if not 0 <= self.min_recall <= 1:
            raise ConfigError(f"IndexParams.min_recall must be in [0, 1], got {self.min_recall}")
        if self.ivf_nlist_per_sqrt <= 0 or self.batch_probe_min_exact_s < 0:
            raise ConfigError("IndexParams.ivf_nlist_per_sqrt must be > 0 and batch_probe_min_exact_s >= 0")
        object.__setattr__(self, "batch_ann_kinds", tuple(self.batch_ann_kinds))

    def with_(self, **changes: object) -> IndexParams:
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def nlist_for(self, n_items: int) -> int:
        """The IVF list count for ``n_items`` vectors."""
        if self.ivf_nlist is not None:
            wanted = self.ivf_nlist
        else:
            wanted = round(self.ivf_nlist_per_sqrt * math.sqrt(max(n_items, 1)))
        return max(1, min(wanted, n_items // self.ivf_train_per_list or 1))

    def pq_m_for(self, dim: int) -> int:
        """The PQ sub-quantizer count for ``dim`` (it must divide ``dim``)."""
        if self.pq_m is not None:
            if dim % self.pq_m:
                raise ConfigError(f"IndexParams.pq_m={self.pq_m} does not divide the dimension {dim}")
            return self.pq_m
        return max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)

    def kind_params(self, kind: str, dim: int | None = None, n_items: int | None = None) -> dict[str, object]:
        """The parameters that define an index of ``kind`` (what a manifest records)."""
        if kind == "exact":
            return {}
        if kind == "hnsw":
            return {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction, "ef_search": self.hnsw_ef_search}
        out: dict[str, object] = {
            "nlist": self.nlist_for(n_items) if n_items is not None else self.ivf_nlist,
            "nprobe": self.ivf_nprobe,
            "pq_m": self.pq_m_for(dim) if dim is not None else self.pq_m,
            "pq_nbits": self.pq_nbits,
            "refine": self.refine,
            "refine_k_factor": self.refine_k_factor,
            "train_per_list": self.ivf_train_per_list,
        }
        return out

    def to_dict(self) -> dict[str, object]:
        """Every field, JSON-ready."""
        data = asdict(self)
        data["batch_ann_kinds"] = list(self.batch_ann_kinds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> IndexParams:
        """The inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"IndexParams: unknown fields {unknown}")
        data = dict(data)
        if "batch_ann_kinds" in data:
            data["batch_ann_kinds"] = tuple(data["batch_ann_kinds"])  # type: ignore[arg-type]
        return cls(**data)  # type: ignore[arg-type]

"""Confidence intervals over queries and paired tests between systems (scipy.stats)."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
from scipy import stats

from relforge.errors import InputError


@dataclass(frozen=True)
class MetricSummary:
    """A metric's mean over queries and its bootstrap confidence interval.

    Args:
        metric: the metric's name.
        mean: the mean over the queries where it is defined.
        low: the interval's lower end.
        high: the interval's upper end.
        n: queries averaged.
        confidence: the interval's level.
    """

    metric: str
    mean: float
    low: float
    high: float
    n: int
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """System A against system B on the same queries.

    Args:
        metric: the metric compared.
        n: queries where both systems have a value.
        mean_a: A's mean on them.
        mean_b: B's mean on them.
        diff: ``mean_a - mean_b``.
        low: the paired bootstrap interval of ``diff``, lower end.
        high: its upper end.
        p_value: two-sided p-value of a paired randomization test (A and B swapped per query).
        confidence: the interval's level.
    """

    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def bootstrap_mean(
    values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
    method: str = "BCa",
) -> tuple[float, float, float]:
    """The mean of ``values`` (NaN left out) and its bootstrap interval over them.

    ``scipy.stats.bootstrap`` (BCa by default); the interval of constant values is that
    value, of fewer than two values NaN.

    Returns:
        ``(mean, low, high)``.

    Example:
        >>> m, lo, hi = bootstrap_mean(np.array([0.2, 0.4, 0.6, 0.8]))
        >>> round(m, 2), lo < m < hi
        (0.5, True)
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    if np.ptp(x) == 0:
        return mean, mean, mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                              method=method, vectorized=True, rng=np.random.default_rng(seed))
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(
    per_query: pa.Table,
    metrics: list[str] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, MetricSummary]:
    """Mean and bootstrap interval over queries of each metric column.

    Args:
        per_query: a table from :func:`per_query_metrics` (or any with float columns).
        metrics: the columns (default: every float column).
        confidence: the intervals' level.
        n_resamples: bootstrap resamples.
        seed: the resampling seed.

    Returns:
        ``{metric: MetricSummary}``.
    """
    names = metrics or [f.name for f in per_query.schema if pa.types.is_floating(f.type)]
    out = {}
    for name in names:
        if name not in per_query.column_names:
            raise InputError("per_query", None, name, f"no such column (columns: {per_query.column_names})")
        values = per_query.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        mean, low, high = bootstrap_mean(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out[name] = MetricSummary(name, mean, low, high, int(np.isfinite(values).sum()), confidence)
    return out


def compare_systems(
    a: pa.Table,
    b: pa.Table,
    metric: str,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Compare two systems' per-query values of ``metric`` on the queries both have.

    The difference's interval is a paired bootstrap (``scipy.stats.bootstrap`` with
    ``paired=True``, BCa); the p-value a paired randomization test
    (``scipy.stats.permutation_test`` with ``permutation_type="samples"``: A's and B's
    values swapped within queries), two-sided, of the mean difference.

    Args:
        a: per-query table of system A (``query_id`` and ``metric``).
        b: the same for system B.
        metric: the column compared.
        confidence: the interval's level.
        n_resamples: resamples of both the bootstrap and the randomization test.
        seed: the seed of both.

    Returns:
        The comparison.

    Raises:
        InputError: ``metric`` or ``query_id`` missing, or no query with values in both.
    """
    values = []
    for name, table in (("a", a), ("b", b)):
        for column in ("query_id", metric):
            if column not in table.column_names:
                raise InputError(f"per_query[{name}]", None, column, f"no such column (columns: {table.column_names})")
        values.append(dict(zip(table.column("query_id").to_pylist(), table.column(metric).to_pylist())))
    shared = [q for q in values[0] if q in values[1]
              and _finite(values[0][q]) and _finite(values[1][q])]
    if not shared:
        raise InputError("per_query", None, metric, "no query has a value in both systems")
    x = np.array([values[0][q] for q in shared], dtype=np.float64)
    y = np.array([values[1][q] for q in shared], dtype=np.float64)
    d = x - y
    diff = float(d.mean())

    def mean_diff(u, v, axis=-1):
        return np.mean(u - v, axis=axis)

    if len(d) < 2:
        low = high = p_value = math.nan
    elif np.ptp(d) == 0:
        low = high = diff
        p_value = 1.0 if diff == 0 else math.nan
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            ci = stats.bootstrap((x, y), mean_diff, paired=True, vectorized=True, confidence_level=confidence,
                                 n_resamples=n_resamples, rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
        test = stats.permutation_test((x, y), mean_diff, permutation_type="samples", vectorized=True,
                                      n_resamples=n_resamples, alternative="two-sided",
                                      rng=np.random.default_rng(seed + 1))
        p_value = float(test.pvalue)
    return PairedComparison(metric, len(d), float(x.mean()), float(y.mean()), diff, low, high, p_value, confidence)


def _finite(value: object) -> bool:
    return value is not None and math.isfinite(float(value))

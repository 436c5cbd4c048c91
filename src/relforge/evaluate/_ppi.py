"""A prediction-powered estimate of nDCG@k: human labels where they exist, the cascade's
labels elsewhere, the cascade's bias corrected with the items that have both.

The estimand. For each evaluated query ``q`` (a judged query whose judged items include one
of positive gain), let ``i_1 .. i_m`` (``m <= k``) be the run's top ``k``, ``D_r = 1 /
log2(r + 1)`` the discount of rank ``r``, and ``Z_q`` the ideal DCG@k of the query's human
judgments (the normaliser of the human-only nDCG, :func:`per_query_metrics`). With ``g*``
the gain a human would give each retrieved item,

    theta = E_q [ sum_r D_r g*(q, i_r) / Z_q ],

the nDCG@k the run would score if every retrieved top-k item were judged (normalised by the
judged pool's ideal, so a query may exceed 1 when unjudged items beat the judged ones).

The estimator. A slot ``(q, r)`` has weight ``w = D_r / Z_q``. On the judged slots ``J`` the
human gain ``h`` is used; on the unjudged slots ``U`` the model's gain ``f`` (the expected
gain under the calibrated class probabilities, or the gain of the predicted grade). What is
rectified is the model's per-item gain bias, ``Delta = E[g* - f]``, estimated, weighted
by ``w``, on the slots ``B`` (a subset of ``J``) that have both a human and a model label:

    Delta_hat = sum_B w (h - f) / sum_B w
    theta_hat = mean_q [ sum_J w h + sum_U w f ] + mean_q [ sum_U w ] * Delta_hat

``naive`` is the first term alone (model labels taken at face value); ``human_only`` is
``mean_q sum_J w h`` (unjudged items counted as irrelevant, the library's nDCG).

The interval. ``theta_hat`` is a smooth function of means of i.i.d. per-query vectors
``(a_q, u_q, b_q, c_q) = (sum_J w h + sum_U w f, sum_U w, sum_B w (h - f), sum_B w)``, so
resampling queries with replacement (``scipy.stats.bootstrap``, ``paired=True``) and
recomputing it gives a valid interval; this is the prediction-powered bootstrap (PPBoot,
Zrnic 2024) of prediction-powered inference (Angelopoulos, Bates, Fannjiang, Jordan and
Zrnic, Science 2023) with the query as the resampling unit, which carries both the query
sampling and the rectifier's own error (and their correlation).

Validity needs what PPI needs: the labelled slots ``B`` must be like the unlabelled ones
``U`` as far as the model's error goes, i.e. whether a retrieved item was judged must be
unrelated to ``g* - f`` (judged items a random sample of the retrieved ones). Where humans
judged items chosen by another engine (ESCI), this holds only approximately; the naive and
human-only figures beside the estimate show how far the correction moves it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
from scipy import stats

from relforge.errors import InputError
from relforge.evaluate._inputs import Run, read_grades, read_model_gains, read_run
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event

log = get_logger("evaluate")


@dataclass(frozen=True)
class PPIEstimate:
    """A prediction-powered nDCG@k and the figures beside it.

    Args:
        metric: ``ndcg@<k>``.
        estimate: the prediction-powered estimate ``theta_hat``.
        low: its interval's lower end.
        high: its upper end.
        naive: model labels for unjudged items, uncorrected.
        naive_low: the naive figure's interval (query bootstrap), lower end.
        naive_high: its upper end.
        human_only: unjudged items counted as irrelevant.
        rectifier: ``Delta_hat``, the weighted mean of ``human gain - model gain`` on the
            slots with both labels.
        n_queries: queries evaluated.
        n_slots: top-k slots.
        n_judged_slots: slots with a human label.
        n_rectifier_slots: slots with both labels.
        confidence: the intervals' level.
    """

    metric: str
    estimate: float
    low: float
    high: float
    naive: float
    naive_low: float
    naive_high: float
    human_only: float
    rectifier: float
    n_queries: int
    n_slots: int
    n_judged_slots: int
    n_rectifier_slots: int
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _ppi_statistic(a, u, b, c, axis=-1):
    cs = np.sum(c, axis=axis)
    rect = np.divide(np.sum(b, axis=axis), cs, out=np.zeros_like(cs, dtype=np.float64), where=cs > 0)
    return np.mean(a, axis=axis) + np.mean(u, axis=axis) * rect


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def ppi_ndcg(
    run: pa.Table | Run,
    judgments: pa.Table,
    model_labels: pa.Table,
    scale: GradeScale,
    *,
    k: int = 10,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    use_probs: bool = True,
    method: str = "percentile",
) -> PPIEstimate:
    """The prediction-powered estimate of nDCG@``k`` and its interval (see the module
    docstring for the estimand, the estimator and when it is valid).

    Args:
        run: ``query_id``, ``item_id``, ``rank`` or ``score``; or a :class:`Run`.
        judgments: human ``query_id``, ``item_id``, ``grade`` (the evaluated queries).
        model_labels: the cascade's ``labels`` (``query_id``, ``item_id``, ``grade``,
            optionally ``probs``), covering at least every unjudged top-``k`` item; labels of
            judged items feed the rectifier.
        scale: the grade scale (its gains).
        k: the cutoff.
        confidence: the intervals' level.
        n_resamples: bootstrap resamples (of queries).
        seed: the resampling seed.
        use_probs: the model's gain is the expected gain under ``probs`` (else the gain of
            its ``grade``).
        method: ``scipy.stats.bootstrap``'s interval method (``percentile``, as PPBoot;
            ``BCa``; ``basic``).

    Returns:
        The estimate.

    Raises:
        InputError: an unjudged top-``k`` item without a model label, or no top-``k`` item
            with both labels (nothing to estimate the bias from).

    Example:
        >>> est = ppi_ndcg(run, test_judgments, labels, ESCI)            # doctest: +SKIP
        >>> est.estimate, (est.low, est.high), est.naive, est.human_only  # doctest: +SKIP
    """
    run = run if isinstance(run, Run) else read_run(run)
    human = read_grades(judgments, scale, "judgments")
    model = read_model_gains(model_labels, scale, use_probs)
    gains = np.asarray(scale.gains, dtype=np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    a, u, b, c, h_only = [], [], [], [], []
    n_slots = n_judged = n_both = 0
    missing: list[tuple[str, str]] = []
    for q, judged in human.items():
        ideal = np.sort(gains[list(judged.values())])[::-1][:k]
        z = float(ideal @ discount[: len(ideal)])
        if z <= 0:
            continue
        labels = model.get(q, {})
        aq = uq = bq = cq = hq = 0.0
        for r, item in enumerate(run.ranking.get(q, [])[:k]):
            w = discount[r] / z
            n_slots += 1
            if item in judged:
                h = gains[judged[item]]
                n_judged += 1
                aq += w * h
                hq += w * h
                if item in labels:
                    n_both += 1
                    bq += w * (h - labels[item])
                    cq += w
            elif item in labels:
                aq += w * labels[item]
                uq += w
            else:
                missing.append((q, item))
        a.append(aq), u.append(uq), b.append(bq), c.append(cq), h_only.append(hq)
    if missing:
        q, item = missing[0]
        raise InputError("model_labels", None, "item_id",
                         f"{len(missing):,} unjudged top-{k} items have no model label, e.g. {item!r} of query {q!r}")
    if n_both == 0:
        raise InputError("model_labels", None, "item_id",
                         f"no top-{k} item has both a human and a model label: the model's bias cannot be estimated")
    data = tuple(np.asarray(x, dtype=np.float64) for x in (a, u, b, c))
    estimate = float(_ppi_statistic(*data))
    naive = float(data[0].mean())
    rectifier = float(data[2].sum() / data[3].sum())
    if len(a) >= 2:
        ci = stats.bootstrap(data, _ppi_statistic, paired=True, vectorized=True, confidence_level=confidence,
                             n_resamples=n_resamples, method=method, rng=np.random.default_rng(seed)).confidence_interval
        naive_ci = stats.bootstrap(data[:1], _mean, vectorized=True, confidence_level=confidence,
                                   n_resamples=n_resamples, method=method,
                                   rng=np.random.default_rng(seed)).confidence_interval
        low, high, naive_low, naive_high = float(ci.low), float(ci.high), float(naive_ci.low), float(naive_ci.high)
    else:
        low = high = naive_low = naive_high = math.nan
    result = PPIEstimate(f"ndcg@{k}", estimate, low, high, naive, naive_low, naive_high,
                         float(np.mean(h_only)), rectifier, len(a), n_slots, n_judged, n_both, confidence)
    log_event(log, "prediction-powered nDCG", k=k, estimate=round(estimate, 4), low=round(low, 4),
              high=round(high, 4), naive=round(naive, 4), rectifier=round(rectifier, 4), queries=len(a),
              slots=n_slots, judged=n_judged, both=n_both)
    return result

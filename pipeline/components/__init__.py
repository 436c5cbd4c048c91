"""One folder per KFP component; each is a one-line wrapper around ``relforge.steps.run_step``."""

from relforge.config import ClusterConfig

_DEFAULTS = ClusterConfig()
#: The step images the components name (containers/Dockerfile.cpu and .gpu): the defaults of
#: ``cluster.step_image`` / ``cluster.gpu_step_image`` (what ``make images`` builds; the variables
#: RELFORGE_STEP_IMAGE / RELFORGE_GPU_STEP_IMAGE override them). A cluster pipeline takes its
#: images from the configuration's ``cluster`` section instead (pipeline/pipeline.py).
STEP_IMAGE = _DEFAULTS.step_image
GPU_STEP_IMAGE = _DEFAULTS.gpu_step_image

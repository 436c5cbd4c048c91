"""One folder per KFP component; each is a one-line wrapper around ``relforge.steps.run_step``."""

import os

#: The step image (containers/Dockerfile.cpu or .gpu); override with RELFORGE_STEP_IMAGE.
STEP_IMAGE = os.environ.get("RELFORGE_STEP_IMAGE", "ghcr.io/relforge/relforge-step:0.1.0")
GPU_STEP_IMAGE = os.environ.get("RELFORGE_GPU_STEP_IMAGE", "ghcr.io/relforge/relforge-step-gpu:0.1.0")

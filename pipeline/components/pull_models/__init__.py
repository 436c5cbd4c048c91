from pipeline.components.pull_models.component import pull_models

__all__ = ["pull_models"]

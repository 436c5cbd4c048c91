from pipeline.components.mine.component import mine

__all__ = ["mine"]

from pipeline.components.ingest_esci.component import ingest_esci

__all__ = ["ingest_esci"]

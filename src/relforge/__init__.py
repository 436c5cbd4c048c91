"""relforge: relevance labels from a calibrated cascade, and a dense retriever trained on them."""

__version__ = "0.1.0"

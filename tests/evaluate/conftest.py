"""Fixtures of the evaluation step's tests: the retriever tests' synthetic run and tiny model."""

from tests.twotower.conftest import bi_encoder, config, run_bus  # noqa: F401 - fixtures

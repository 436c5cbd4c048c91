"""Lazy re-exports for subpackages whose modules import heavy libraries (torch, transformers).

A subpackage's ``__init__`` names where each public name lives; the module is imported on
first use. ``relforge --help`` and light steps then start without loading torch.

Example:
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"run_mine": "relforge.mine._run"})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package that re-exports ``name -> module`` lazily."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__

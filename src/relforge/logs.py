"""Structured, quiet-by-default logging and progress bars for long work."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
_LOGGER_NAME = "relforge"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, default=str)


def setup_logging(level: str = "WARNING", json_lines: bool = False) -> None:
    """Configure the ``relforge`` logger: quiet (warnings) unless asked, JSON lines if asked."""
    logger = logging.getLogger(_LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    quiet_libraries()


#: Third-party loggers kept at ERROR unless relforge logs at INFO or DEBUG.
_CHATTY = ("transformers", "sentence_transformers", "datasets", "huggingface_hub", "accelerate", "peft",
           "kfp", "bm25s", "faiss", "httpx", "urllib3")


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, load reports, info lines) off the screen.

    Applies while the ``relforge`` logger is at its default level (WARNING or above); at
    ``--log-level info`` or ``debug`` the libraries speak as usual. Environment variables
    are set too, for libraries imported later and for child processes.
    """
    if logging.getLogger(_LOGGER_NAME).getEffectiveLevel() <= logging.INFO:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def get_logger(name: str) -> logging.Logger:
    """A child of the ``relforge`` logger."""
    return logging.getLogger(f"{_LOGGER_NAME}.{name}" if not name.startswith(_LOGGER_NAME) else name)


def log_event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: object) -> None:
    """Log ``msg`` with structured fields (shown as JSON keys with ``--log-json``)."""
    suffix = " ".join(f"{k}={v}" for k, v in fields.items())
    logger.log(level, f"{msg} {suffix}".strip(), extra={"fields": fields})


_progress_enabled = sys.stderr.isatty()


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off (default: on when stderr is a terminal)."""
    global _progress_enabled
    _progress_enabled = enabled


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr (when enabled), else with a log line per 10%."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if _progress_enabled:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)
        return
    logger = get_logger("progress")
    start, step = time.monotonic(), max(1, (total or 10) // 10)
    for done, item in enumerate(items, start=1):
        yield item
        if done % step == 0 or done == total:
            log_event(logger, description, done=done, total=total, s=round(time.monotonic() - start, 1))


def print_error(exc: BaseException) -> None:
    """``error: <message>`` on stderr, one unwrapped line per line of the message.

    Never hard-wrapped: users copy paths out of error messages.
    """
    prefix = "\x1b[1;31merror:\x1b[0m" if sys.stderr.isatty() else "error:"
    sys.stderr.write(f"{prefix} {exc}\n")
    sys.stderr.flush()

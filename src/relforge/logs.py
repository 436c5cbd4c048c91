"""Structured, quiet-by-default logging and progress bars for long work."""

from __future__ import annotations

import json
import logging
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

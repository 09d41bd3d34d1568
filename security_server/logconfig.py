"""structlog's set-up: the one place that holds logging's global state.

Events are key-value dicts; on a terminal they render for people, elsewhere as JSON lines for machines.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from security_server.core.config import LoggingConfig

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(config: LoggingConfig, stream: TextIO | None = None) -> None:
    """Configure structlog once at start-up from ``config``."""
    out = stream if stream is not None else sys.stderr
    use_json = config.format == "json" or (config.format == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[config.level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )

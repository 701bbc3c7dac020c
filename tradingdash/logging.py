"""Structured logging: structlog JSON lines in production, readable console lines in development.

Django's LOGGING dictConfig builds the formatter through `make_formatter`, so stdlib loggers (Django, Celery)
and structlog loggers share one output format and the request-scoped context (request id, user id)."""

from __future__ import annotations

import logging
import sys

import structlog

SHARED_PROCESSORS: list = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def make_formatter(fmt: str = "json") -> logging.Formatter:
    """Configure structlog once and return the stdlib formatter that renders every record."""
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if fmt == "console":
        # Colours only for a person at a terminal: piped to a file or a log collector they are noise.
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )

"""structlog configured once per process: JSON lines carrying service, correlation_id,
case_id and event_id from context variables."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from asgi_correlation_id.context import correlation_id


def _add_correlation_id(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if "correlation_id" not in event_dict:
        cid = correlation_id.get()
        if cid:
            event_dict["correlation_id"] = cid
    return event_dict


class StreamLogger:
    """structlog's PrintLogger, writing to whatever ``sys.stdout`` (or ``sys.stderr``) is at
    each call rather than the stream it was when logging was configured: a command that keeps
    stdout for its output, or a test capturing a stream and closing it afterwards, never leaves
    the process logging into a closed file."""

    def __init__(self, stream: str = "stdout") -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        print(message, file=getattr(sys, self._stream), flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = msg


def stream_logger_factory(stream: str = "stdout") -> Callable[..., StreamLogger]:
    return lambda *args: StreamLogger(stream)


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    shared_processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=stream_logger_factory("stdout"),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (uvicorn, aiokafka, faststream) log through the standard library.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[*shared_processors, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faststream", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


log = structlog.get_logger

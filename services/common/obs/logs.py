"""Process logging: one JSON object per line on stderr (or plain text for people), every
line carrying the service and whatever the code running it has bound (job, event, stage,
tenant, trace), every line scrubbed of credentials.

``configure_logging`` is called once by each entry point. Code binds fields for a block
with ``with bind(job_id=...):`` (context variables: they follow the task and the tasks it
starts, never another request or event); the current trace context is added by itself.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Literal

from pydantic import BaseModel, SecretStr

from schemas import Event
from schemas.names import parent_job_id
from services.common.context import subject_id
from services.common.obs import trace
from services.common.redact import redact, redact_literals

LogFormat = Literal["json", "text"]
FORMATS: tuple[LogFormat, ...] = ("json", "text")
# The fields a line may carry besides its own; in this order in text lines.
FIELDS = ("job_id", "event_id", "stage", "tenant", "trace_id", "span_id")
_RESERVED = frozenset({"time", "level", "logger", "message", "service", "exc", "stack"})
# Shorter configured "secrets" (an empty or default value) would mask ordinary words.
_MIN_SECRET = 8
_ATTR = "tapedeck_fields"

_bound: ContextVar[dict[str, str] | None] = ContextVar("log_fields", default=None)


def _clean(fields: Mapping[str, object]) -> dict[str, str]:
    reserved = _RESERVED.intersection(fields)
    if reserved:
        raise ValueError(f"cannot bind reserved log fields: {sorted(reserved)}")
    return {k: str(v) for k, v in fields.items() if v is not None and v != ""}


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Add ``fields`` (None values skipped) to every line logged in the block."""
    token = _bound.set({**(_bound.get() or {}), **_clean(fields)})
    try:
        yield
    finally:
        _bound.reset(token)


def annotate(**fields: object) -> None:
    """Add ``fields`` to the innermost ``bind`` block for the rest of it: for what is learnt
    half-way (the tenant once the key is checked, the job once it is decoded) where a
    ``with`` would not span the rest of the work. Outside any block, they stay bound for
    the rest of the current context."""
    current = _bound.get()
    if current is None:
        _bound.set(_clean(fields))
    else:
        current.update(_clean(fields))


def bound() -> dict[str, str]:
    """The fields a line logged here would carry (the trace's included)."""
    fields = dict(_bound.get() or {})
    ctx = trace.current()
    if ctx is not None:
        fields.setdefault("trace_id", ctx.trace_id)
        fields.setdefault("span_id", ctx.span_id)
    return fields


def event_fields(event: Event) -> dict[str, str | None]:
    """What a stage binds for the event it handles. ``job_id`` is the job the event
    belongs to (a voiceover's own audio job logs under its production job)."""
    subject = subject_id(event)
    return {
        "job_id": parent_job_id(subject) if subject else None,
        "event_id": str(event.event_id),
        "tenant": event.tenant_id,
    }


def secrets_of(settings: BaseModel) -> list[str]:
    """The values of a settings object's secret fields, for :func:`configure_logging`."""
    out = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            out.append(value.get_secret_value())
    return out


class ContextFilter(logging.Filter):
    """Stamps each record with the fields bound where it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, _ATTR, bound())
        return True


class RedactingFilter(logging.Filter):
    """Scrubs the formatted message, the exception and the stack of each record: the
    known secret values first, then anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= _MIN_SECRET},
                                     key=len, reverse=True))  # fmt: skip

    def scrub(self, text: str) -> str:
        return redact(redact_literals(text, self._secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(_message(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXC.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


_EXC = logging.Formatter()


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not lose the line
        return f"{record.msg!s} {record.args!r}"


def _time(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, str]:
    fields = getattr(record, _ATTR, None)
    return fields if isinstance(fields, dict) else {}


def _exc(record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = _EXC.formatException(record.exc_info)
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
            "service": self._service,
            **_fields(record),
        }
        exc = _exc(record)
        if exc:
            doc["exc"] = exc
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        ordered = [k for k in FIELDS if k in fields] + sorted(set(fields) - set(FIELDS))
        extra = " ".join(f"{k}={fields[k]}" for k in ordered if k != "span_id")
        line = f"{_time(record)} {record.levelname} {self._service} {record.name}: "
        line += _message(record) + (f" [{extra}]" if extra else "")
        exc = _exc(record)
        if exc:
            line += "\n" + exc
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


def configure_logging(
    service: str,
    level: str = "INFO",
    fmt: str = "json",
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's records through one handler on stderr (``stream``), as JSON
    lines or text, with bound fields and credentials (``secrets``: values to mask
    wherever they appear) scrubbed. Replaces any handler the root logger had."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter(service) if fmt == "json" else TextFormatter(service)
    handler.setFormatter(formatter)
    # Context first: the redactor must see what the line will say, nothing else changes it.
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    _route_uncaught()
    return handler


def _route_uncaught() -> None:
    """Exceptions nothing caught (the process's, a thread's, one ignored in a finaliser)
    become log lines too: Python would print them as bare text among the JSON lines."""
    uncaught = logging.getLogger("uncaught")

    def process_hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None,
                     ) -> None:  # fmt: skip
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        uncaught.critical("uncaught exception", exc_info=(kind, exc, tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        uncaught.error("uncaught exception in thread %s", name, exc_info=args.exc_value)

    def unraisable_hook(args: sys.UnraisableHookArgs) -> None:
        uncaught.warning("%s: %r", args.err_msg or "Exception ignored in", args.object,
                         exc_info=args.exc_value)  # fmt: skip

    sys.excepthook = process_hook
    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook

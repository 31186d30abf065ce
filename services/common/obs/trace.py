"""W3C Trace Context (https://www.w3.org/TR/trace-context/): one trace id follows a job
from the HTTP request that submitted it through every event, stage and webhook call.

The ``traceparent`` value is ``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``. A
header that is not exactly that (another version, upper case, all-zero ids, extra
fields) is ignored and a new trace starts, as the spec asks of a receiver that cannot
trust what it got. Each hop continues the trace with a span of its own
(:meth:`TraceContext.child`), and the current one lives in a context variable, so
whatever runs inside :func:`use` (log lines, produced events, HTTP calls) carries it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

TRACEPARENT = "traceparent"

_VERSION = "00"
_HEADER = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# Only "sampled" is defined for version 00; the other bits must go out as zero.
_SAMPLED = 0x01

_current: ContextVar[TraceContext | None] = ContextVar("trace", default=None)


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    def header(self) -> str:
        return f"{_VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, this one its parent."""
        return TraceContext(self.trace_id, new_span_id(), self.flags)


def new_trace_id() -> str:
    while True:
        value = secrets.token_hex(16)
        if value != _ZERO_TRACE:
            return value


def new_span_id() -> str:
    while True:
        value = secrets.token_hex(8)
        if value != _ZERO_SPAN:
            return value


def parse(header: str | bytes | None) -> TraceContext | None:
    """The context a ``traceparent`` value names, or None when it is missing or invalid."""
    if header is None:
        return None
    if isinstance(header, bytes):
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            return None
    # Surrounding spaces and tabs are the header's framing, not its value.
    match = _HEADER.fullmatch(header.strip(" \t"))
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, f"{int(flags, 16) & _SAMPLED:02x}")


def start(from_header: str | bytes | None = None) -> TraceContext:
    """This hop's span: a child of the valid ``traceparent`` it was given, else the root
    of a new trace."""
    parent = parse(from_header)
    if parent is None:
        return TraceContext(new_trace_id(), new_span_id())
    return parent.child()


def resume(trace_id: str | None) -> TraceContext:
    """A new span in the trace ``trace_id`` (one recorded earlier, e.g. on a job, whose
    parent span is gone), or a new trace when it is not a valid trace id."""
    if trace_id is None or not _TRACE_ID.fullmatch(trace_id) or trace_id == _ZERO_TRACE:
        return start(None)
    return TraceContext(trace_id, new_span_id())


def current() -> TraceContext | None:
    return _current.get()


def current_trace_id() -> str | None:
    """The current trace's id: what a job records to be found by later (``trace_id``)."""
    ctx = _current.get()
    return None if ctx is None else ctx.trace_id


@contextmanager
def use(ctx: TraceContext) -> Iterator[TraceContext]:
    """Make ``ctx`` the current context for the block (and tasks it starts)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def http_headers() -> dict[str, str]:
    """The current ``traceparent`` as an HTTP header; none outside a trace."""
    ctx = current()
    return {} if ctx is None else {TRACEPARENT: ctx.header()}


def kafka_headers() -> list[tuple[str, bytes]]:
    """The current ``traceparent`` as a Kafka record header; none outside a trace."""
    ctx = current()
    return [] if ctx is None else [(TRACEPARENT, ctx.header().encode())]

"""W3C traceparent: strict parsing (anything else starts a new trace), child spans, and
the current context following the code that runs inside ``use``."""

from __future__ import annotations

import asyncio
import re

import pytest

from services.common.obs import trace
from services.common.obs.trace import TraceContext

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


def test_a_valid_header_parses() -> None:
    assert trace.parse(VALID) == TraceContext(TRACE, SPAN, "01")
    assert trace.parse(VALID.encode()) == TraceContext(TRACE, SPAN, "01")
    assert trace.parse(f"00-{TRACE}-{SPAN}-00") == TraceContext(TRACE, SPAN, "00")
    # Optional whitespace around a header value is its framing.
    assert trace.parse(f" \t{VALID} ") == TraceContext(TRACE, SPAN, "01")


def test_flags_keep_only_the_sampled_bit() -> None:
    ctx = trace.parse(f"00-{TRACE}-{SPAN}-ff")
    assert ctx is not None and ctx.flags == "01"
    ctx = trace.parse(f"00-{TRACE}-{SPAN}-02")
    assert ctx is not None and ctx.flags == "00"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"01-{TRACE}-{SPAN}-01",  # another version
        f"ff-{TRACE}-{SPAN}-01",  # the forbidden version
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper case
        f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
        f"00-{TRACE}0-{SPAN}-01",  # long trace id
        f"00-{TRACE}-{SPAN[:-1]}-01",  # short span id
        f"00-{TRACE}-{SPAN}-1",  # short flags
        f"00-{TRACE}-{SPAN}-0g",  # flags not hex
        f"00-{TRACE}-{SPAN}",  # no flags
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00_{TRACE}_{SPAN}_01",  # wrong separators
        f"00-{TRACE[:-1]}z-{SPAN}-01",  # not hex
        f"00-{TRACE}-{SPAN}-01\n",  # a line break is no framing
    ],
)
def test_an_invalid_header_is_refused_and_starts_a_new_trace(header: str) -> None:
    assert trace.parse(header) is None
    ctx = trace.start(header)
    assert ctx.trace_id != TRACE and HEX32.fullmatch(ctx.trace_id)
    assert ctx.trace_id != "0" * 32 and HEX16.fullmatch(ctx.span_id)


def test_undecodable_bytes_and_none_are_no_header() -> None:
    assert trace.parse(b"\xff\xfe" + VALID.encode()) is None
    assert trace.parse(None) is None


def test_start_continues_a_valid_trace_with_a_span_of_its_own() -> None:
    ctx = trace.start(VALID)
    assert ctx.trace_id == TRACE and ctx.flags == "01"
    assert ctx.span_id != SPAN and HEX16.fullmatch(ctx.span_id)
    assert trace.parse(ctx.header()) == ctx


def test_new_traces_differ_and_round_trip() -> None:
    a, b = trace.start(None), trace.start(None)
    assert a.trace_id != b.trace_id and a.span_id != b.span_id
    assert a.flags == "01"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", a.header())
    assert trace.parse(a.header()) == a


def test_a_child_is_a_new_span_of_the_same_trace() -> None:
    parent = TraceContext(TRACE, SPAN, "00")
    child = parent.child()
    assert (child.trace_id, child.flags) == (TRACE, "00") and child.span_id != SPAN


def test_resume_joins_a_recorded_trace_id_or_starts_anew() -> None:
    ctx = trace.resume(TRACE)
    assert ctx.trace_id == TRACE and HEX16.fullmatch(ctx.span_id)
    for bad in (None, "", "0" * 32, TRACE.upper(), TRACE[:-1], "x" * 32):
        assert trace.resume(bad).trace_id not in (TRACE, "0" * 32)


async def test_use_sets_the_current_context_for_the_block_and_its_tasks() -> None:
    assert trace.current() is None and trace.kafka_headers() == [] and trace.http_headers() == {}
    outer, inner = trace.start(None), trace.start(VALID)
    with trace.use(outer):
        assert trace.current() == outer and trace.current_trace_id() == outer.trace_id
        with trace.use(inner):
            assert trace.current() == inner

            async def seen() -> TraceContext | None:
                return trace.current()

            assert await asyncio.create_task(seen()) == inner
            assert trace.kafka_headers() == [("traceparent", inner.header().encode())]
            assert trace.http_headers() == {"traceparent": inner.header()}
        assert trace.current() == outer
    assert trace.current() is None and trace.current_trace_id() is None


async def test_concurrent_tasks_keep_their_own_context() -> None:
    async def work(header: str) -> str | None:
        with trace.use(trace.start(header)):
            await asyncio.sleep(0.01)
            return trace.current_trace_id()

    other = "0af7651916cd43dd8448eb211c80319c"
    got = await asyncio.gather(work(VALID), work(f"00-{other}-{SPAN}-01"))
    assert got == [TRACE, other]

"""Group commit: calls made while one is in flight go out together, in call order."""

from __future__ import annotations

import asyncio

import pytest

from services.common.coalesce import Coalescer


class Recorder:
    """A batch call that records each batch and holds it until ``gate`` opens."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_on = fail_on

    async def __call__(self, args: list[str]) -> list[str]:
        self.batches.append(list(args))
        await self.gate.wait()
        if self.fail_on in args:
            raise ConnectionError("server away")
        return [a.upper() for a in args]


async def test_an_idle_call_goes_out_alone_and_at_once() -> None:
    rec = Recorder()
    assert await Coalescer(rec)("a") == "A"
    assert rec.batches == [["a"]]


async def test_calls_made_while_one_is_in_flight_go_out_as_one_batch() -> None:
    rec = Recorder()
    rec.gate.clear()
    call = Coalescer(rec)
    first = asyncio.create_task(call("a"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(call(x)) for x in "bcd"]
    await asyncio.sleep(0)
    rec.gate.set()
    assert await first == "A"
    assert [await t for t in rest] == ["B", "C", "D"]
    assert rec.batches == [["a"], ["b", "c", "d"]]


async def test_batches_are_bounded() -> None:
    rec = Recorder()
    rec.gate.clear()
    call = Coalescer(rec, max_batch=2)
    tasks = [asyncio.create_task(call(x)) for x in "abcde"]
    await asyncio.sleep(0)
    rec.gate.set()
    assert [await t for t in tasks] == list("ABCDE")
    assert rec.batches == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_failed_batch_fails_its_own_calls_only() -> None:
    rec = Recorder(fail_on="b")
    rec.gate.clear()
    call = Coalescer(rec, max_batch=2)
    tasks = [asyncio.create_task(call(x)) for x in "abc"]
    await asyncio.sleep(0)
    rec.gate.set()
    for t in tasks[:2]:
        with pytest.raises(ConnectionError):
            await t
    assert await tasks[2] == "C"
    # The coalescer is not stuck after a failure.
    assert await call("d") == "D"


async def test_a_caller_that_stops_waiting_still_has_its_call_made() -> None:
    rec = Recorder()
    rec.gate.clear()
    call = Coalescer(rec)
    first = asyncio.create_task(call("a"))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(call("b"))
    await asyncio.sleep(0)
    impatient.cancel()
    rec.gate.set()
    assert await first == "A"
    with pytest.raises(asyncio.CancelledError):
        await impatient
    await asyncio.sleep(0.01)
    assert rec.batches == [["a"], ["b"]]


async def test_a_batch_answering_the_wrong_count_fails_its_calls() -> None:
    async def short(args: list[str]) -> list[str]:
        return args[:-1]

    call = Coalescer(short)
    with pytest.raises(RuntimeError, match="0 results for 1 calls"):
        await call("a")

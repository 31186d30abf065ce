"""The advice writer: progress and partial results written behind the work, in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from schemas import Event
from services.common.advice import AdviceWriter
from tests.support.events import clip_request


class Recorder:
    """StatusRecorder that keeps each progress write; ``gate`` holds writes back."""

    def __init__(self, fail: int = 0) -> None:
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail

    async def started(self, stage: str, event: Event) -> None:
        raise AssertionError("not used")

    async def progress(self, stage: str, event: Event, fields: Mapping[str, Any]) -> None:
        await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("mongodb://user:secret@db:27017 refused")
        self.writes.append((stage, dict(fields)))

    async def finished(self, stage: str, event: Event, outputs: Sequence[Event], failed: bool,
                       detail: str | None = None) -> None:  # fmt: skip
        raise AssertionError("not used")


async def test_put_returns_at_once_and_settle_waits_for_the_write() -> None:
    rec, event = Recorder(), clip_request()
    rec.gate.clear()
    writer = AdviceWriter(rec, "audio")
    writer.put("audio", event, {"progress": {"done": 1}})
    await asyncio.sleep(0)
    assert rec.writes == []
    settling = asyncio.create_task(writer.settle())
    await asyncio.sleep(0.01)
    assert not settling.done()
    rec.gate.set()
    await settling
    assert rec.writes == [("audio", {"progress": {"done": 1}})]


async def test_what_is_put_while_a_write_is_out_goes_as_one_newest_first() -> None:
    rec, event = Recorder(), clip_request()
    rec.gate.clear()
    writer = AdviceWriter(rec, "audio")
    writer.put("audio", event, {"progress": {"done": 1}})
    await asyncio.sleep(0)  # the first write is out, held at the gate
    writer.put("audio", event, {"progress": {"done": 2}, "scenes.0": {"key": "a"}})
    writer.put("audio", event, {"progress": {"done": 3}, "scenes.1": {"key": "b"}})
    rec.gate.set()
    await writer.settle()
    assert rec.writes == [
        ("audio", {"progress": {"done": 1}}),
        ("audio", {"progress": {"done": 3}, "scenes.0": {"key": "a"}, "scenes.1": {"key": "b"}}),
    ]


async def test_paths_inside_one_another_or_another_record_are_written_apart_in_order() -> None:
    rec, event = Recorder(), clip_request()
    rec.gate.clear()
    writer = AdviceWriter(rec, "merge")
    writer.put("merge.mux", event, {"first": 1})
    await asyncio.sleep(0)
    writer.put("merge.mux", event, {"canvas": {"width": 2}})
    # One $set cannot hold a path and a path inside it: this one waits its turn.
    writer.put("merge.mux", event, {"canvas.width": 3})
    writer.put("merge.mux-v2", event, {"other": True})
    rec.gate.set()
    await writer.settle()
    assert rec.writes == [
        ("merge.mux", {"first": 1}),
        ("merge.mux", {"canvas": {"width": 2}}),
        ("merge.mux", {"canvas.width": 3}),
        ("merge.mux-v2", {"other": True}),
    ]


async def test_a_failed_write_is_logged_without_internals_and_the_next_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec, event = Recorder(fail=1), clip_request()
    writer = AdviceWriter(rec, "audio")
    caplog.set_level(logging.WARNING, "services.common.advice")
    writer.put("audio", event, {"progress": {"done": 1}})
    await writer.settle()
    writer.put("audio", event, {"progress": {"done": 2}})
    await writer.settle()
    assert rec.writes == [("audio", {"progress": {"done": 2}})]
    assert "could not record ['progress']" in caplog.text
    assert "secret" not in caplog.text


async def test_settle_with_nothing_put_returns() -> None:
    writer = AdviceWriter(Recorder(), "audio")
    await asyncio.wait_for(writer.settle(), 1)

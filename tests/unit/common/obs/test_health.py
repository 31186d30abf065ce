"""The consumer verdict: a stall is records waiting and nothing finished within the
window, unless an event in hand is still within its deadline."""

from __future__ import annotations

import asyncio

from services.common.obs.health import OK, Progress, consumer_verdict, run_checks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verdict(progress: Progress, lag: dict[tuple[str, int], int], **kw: float) -> str:
    return consumer_verdict(progress, lag, window_s=60, deadline_s=300, **kw)


def test_nothing_waiting_is_ready_however_long_idle() -> None:
    clock = Clock()
    progress = Progress(clock)
    clock.now += 10_000
    assert verdict(progress, {}) == OK
    assert verdict(progress, {("t", 0): 0, ("t", 1): 0}) == OK


def test_records_waiting_and_no_progress_past_the_window_is_a_stall() -> None:
    clock = Clock()
    progress = Progress(clock)
    clock.now += 60
    assert verdict(progress, {("t", 0): 3}) == OK  # at the window's edge: not yet
    clock.now += 1
    assert verdict(progress, {("t", 0): 3, ("t", 1): 2, ("t", 2): 0}) == (
        "stalled: 5 records waiting on 2 partition(s), no progress for 61s"
    )


def test_a_finished_event_resets_the_window() -> None:
    clock = Clock()
    progress = Progress(clock)
    clock.now += 50
    progress.end(progress.begin())
    clock.now += 50
    assert verdict(progress, {("t", 0): 1}) == OK
    clock.now += 11
    assert verdict(progress, {("t", 0): 1}).startswith("stalled")


def test_an_event_in_hand_counts_until_its_deadline_has_passed() -> None:
    clock = Clock()
    progress = Progress(clock)
    token = progress.begin()
    clock.now += 300 + 60
    assert verdict(progress, {("t", 0): 4}) == OK  # a long paid generation
    clock.now += 1
    assert verdict(progress, {("t", 0): 4}).startswith("stalled")  # hung past its deadline
    progress.end(token)
    assert progress.oldest_in_flight_s() is None
    assert verdict(progress, {("t", 0): 4}) == OK


def test_an_event_with_its_own_deadline_is_judged_by_it() -> None:
    clock = Clock()
    progress = Progress(clock)
    progress.begin(deadline_s=3600)  # an audio job may take an hour
    clock.now += 3000
    assert verdict(progress, {("t", 0): 1}) == OK
    clock.now += 661
    assert verdict(progress, {("t", 0): 1}).startswith("stalled")


def test_a_rebalance_longer_than_the_window_is_not_ready() -> None:
    progress = Progress(Clock())
    assert verdict(progress, {}, rebalancing_s=30) == OK
    assert verdict(progress, {}, rebalancing_s=61) == "stalled: rebalancing for 61s"


async def test_checks_run_side_by_side_and_report_without_internals() -> None:
    async def ok() -> None:
        return None

    async def broken() -> None:
        raise ConnectionError("mongodb://user:secret@db:27017 refused")

    async def hung() -> None:
        await asyncio.sleep(10)

    async def verdict_text() -> str:
        return "stalled: 1 records waiting"

    checks = await run_checks({"a": ok, "b": broken, "c": hung, "d": verdict_text}, timeout_s=0.2)
    assert checks == {
        "a": "ok",
        "b": "down: ConnectionError",
        "c": "down: no answer within the timeout",
        "d": "stalled: 1 records waiting",
    }

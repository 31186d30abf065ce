"""Cache warming: cut the most requested clip ranges before anyone asks again."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from schemas.clip import ClipFormat
from schemas.codes import Code
from schemas.names import Producer
from services.common.clip_rules import ClipRejected, resolve_clip
from services.submitter.clips.on_demand import (
    ClipAnswer,
    ClipPorts,
    ClipQuery,
    ClipRequestFailed,
    request_clip,
)
from services.submitter.requests import SubmitFailed, deadline_in
from services.submitter.waiter import TooManyPending

Outcome = Literal["warmed", "cached", "failed", "pending"]


@dataclass(frozen=True)
class WarmResult:
    episode_id: str
    start_ms: int
    duration_ms: int
    format: str
    count: int
    outcome: Outcome
    detail: str = ""
    request_id: str | None = None

    def line(self) -> str:
        what = f"{self.episode_id} {self.start_ms}+{self.duration_ms}ms {self.format}"
        tail = f" ({self.detail})" if self.detail else ""
        return f"{what} x{self.count}: {self.outcome}{tail}"


async def warm(
    ports: ClipPorts, ranges: Sequence[Mapping[str, Any]], wait_s: float
) -> list[WarmResult]:
    """One result per range, in the order given; all ranges share the ``wait_s`` budget."""
    deadline = deadline_in(wait_s)
    return list(await asyncio.gather(*(_warm_one(ports, r, deadline) for r in ranges)))


async def _warm_one(ports: ClipPorts, r: Mapping[str, Any], deadline: float) -> WarmResult:
    tenant_id, episode_id = str(r.get("tenant_id")), r.get("episode_id")
    start_ms, duration_ms = r.get("start_ms"), r.get("duration_ms")
    if not isinstance(start_ms, int) or not isinstance(duration_ms, int):
        start_ms = duration_ms = -1  # a malformed log entry: plan_clip names the problem
    fmt = r.get("format") or "mp3"
    accurate = r.get("accurate") is True

    def result(outcome: Outcome, detail: str = "", request_id: str | None = None) -> WarmResult:
        return WarmResult(
            str(episode_id),
            start_ms,
            duration_ms,
            str(fmt),
            int(r.get("count", 0)),
            outcome,
            detail,
            request_id,
        )

    try:
        episode, plan = await resolve_clip(
            ports.episodes,
            tenant_id,
            episode_id,
            start_ms,
            duration_ms,
            fmt,
            accurate,
            ports.limits.max_duration_ms,
        )
        if await ports.clips.find(plan) is not None:
            return result("cached")
        query = ClipQuery(
            plan.episode_id, plan.start_ms, duration_ms, cast(ClipFormat, plan.format), accurate
        )
        outcome = await request_clip(
            ports, query, episode.tenant_id, producer=Producer.CLI, deadline=deadline
        )
    except ClipRejected as exc:
        return result("failed", exc.code)
    except ClipRequestFailed as exc:
        return result("failed", exc.error.code, exc.request_id)
    except SubmitFailed as exc:
        return result("failed", Code.SUBMIT_FAILED, exc.job_id)
    except TooManyPending:
        return result("failed", Code.OVERLOADED)
    if isinstance(outcome, ClipAnswer):
        return result("warmed", f"{outcome.generation_time_ms} ms", outcome.request_id)
    return result("pending", f"requested as {outcome.request_id}", outcome.request_id)


def as_json(result: WarmResult) -> dict[str, Any]:
    """One result for scripts (``clips warm --json``)."""
    return {
        "episode_id": result.episode_id,
        "start_ms": result.start_ms,
        "duration_ms": result.duration_ms,
        "format": result.format,
        "count": result.count,
        "outcome": result.outcome,
        "detail": result.detail,
        "request_id": result.request_id,
    }


def summary(results: Sequence[WarmResult]) -> str:
    counts = {o: sum(r.outcome == o for r in results) for o in ("warmed", "cached", "failed")}
    pending = sum(r.outcome == "pending" for r in results)
    return (
        f"total {len(results)}: {counts['warmed']} warmed, {counts['cached']} already cached, "
        f"{counts['failed']} failed, {pending} still pending"
    )

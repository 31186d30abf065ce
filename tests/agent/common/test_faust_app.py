"""The thin Faust agent from bind_stage, driven through Faust's in-memory test context:
records in, runner outcomes out, no broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from schemas import TOPICS, ErrorInfo, Event
from schemas.clip import ClipRequested
from services.common.codec import Codec
from services.common.context import StageContext
from services.common.faust_app import bind_stage, create_app
from services.common.retry import RetryPolicy
from services.common.settings import Settings
from services.common.stage import Outcome, StageRunner
from tests.support.events import clip_failed
from tests.support.fakes import MemoryCheckpoints, MemoryEmitter, MemoryLedger

failed = clip_failed


async def test_agent_feeds_raw_records_to_the_runner() -> None:
    emitter, ledger = MemoryEmitter(), MemoryLedger()
    handled: list[str] = []

    async def handler(event: Event, ctx: StageContext) -> Sequence[Event]:
        handled.append(str(event.event_id))
        return [failed(event, ErrorInfo(code="done", message="", retryable=False, attempts=1))]

    @asynccontextmanager
    async def factory() -> AsyncIterator[StageRunner]:
        yield StageRunner(
            stage="agent-test", codec=Codec.for_topic(TOPICS.clip_requests, 10_000),
            handler=handler, on_failure=failed, emitter=emitter, dead_letters=emitter,
            ledger=ledger, checkpoints=MemoryCheckpoints(), retry=RetryPolicy(1, 0, 0),
        )  # fmt: skip

    settings = Settings()
    app = create_app("agent-test", settings)
    agent = bind_stage(app, TOPICS.clip_requests, settings, factory)
    good = ClipRequested(request_id="r1", tenant_id="acme", producer="t", episode_id="ep",
                         start_ms=0, duration_ms=10).model_dump_json().encode()  # fmt: skip
    async with agent.test_context() as ctx:
        assert await ctx.put(key=b"r1", value=good) is not None
        await ctx.put(key=b"r1", value=good)
        await ctx.put(key=b"r2", value=b"{broken")
        outcomes = [ctx.results[i] for i in sorted(ctx.results)]
    assert outcomes == [Outcome.DONE, Outcome.DUPLICATE, Outcome.DEAD_LETTER]
    assert len(handled) == 1
    assert [e.event_type for e in emitter.events] == ["clip.failed"]
    assert emitter.dead[0][0].value == b"{broken"

"""A worker killed with ``kill -9`` and started again is consuming within 10 s of its
restart: it does not wait for the broker to time the dead member's session out.

The clipper stands for every worker (they share create_app's consumer settings). A clip
request for an episode that does not exist is answered at once (``clip.failed``), so the
answer's arrival measures when the restarted worker consumed, not how long a cut takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from schemas import TOPICS
from schemas.clip import ClipFailed, ClipRequested
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from tests.support.kafka import produce
from tests.support.pipeline import Pipeline
from tests.support.watch import TopicWatch

CONSUMING_WITHIN_S = 10.0


def ask(request_id: str) -> bytes:
    return ClipRequested(request_id=request_id, tenant_id="t", producer="tests",
                         episode_id="no-such-episode", start_ms=0,
                         duration_ms=1000).model_dump_json().encode()  # fmt: skip


def answered(request_id: str) -> Callable[[TopicWatch], list[ClipFailed]]:
    return lambda w: [e for e in w.events(ClipFailed) if e.request_id == request_id]


def answered_at(watch: TopicWatch, request_id: str) -> float:
    mine = [r.at for r in watch.records
            if isinstance(r.event, ClipFailed) and r.event.request_id == request_id]  # fmt: skip
    return mine[0]


async def test_a_killed_clipper_consumes_again_within_10_s_of_its_restart(
    direct: Settings, pipeline: Pipeline
) -> None:
    await ensure_topics(direct)
    requests = TOPICS.clip_requests.full_name(direct.topic_prefix)
    async with TopicWatch(direct, TOPICS.clip_results.full_name(direct.topic_prefix)) as watch:
        clipper = pipeline.start("services.clipper")
        await pipeline.ready(clipper)
        await produce(direct, requests, [ask("before")], key=b"before")
        await watch.until(answered("before"), 60, "the clipper answers before the kill")

        pipeline.kill(clipper)
        await produce(direct, requests, [ask("after")], key=b"after")
        restarted = time.monotonic()
        pipeline.restart(clipper)
        await watch.until(answered("after"), 90, "the restarted clipper answers")
        took = answered_at(watch, "after") - restarted
        print(f"restarted clipper consumed {took:.1f} s after its restart")
        assert took <= CONSUMING_WITHIN_S, f"consumed {took:.1f} s after the restart"
        assert len(answered("after")(watch)) == 1

"""One code per clip rule, whichever way the request comes in.

For every clip parameter rule (each key of ``CLIP_PARAM_CODES``) and the rules that need
the episode, the HTTP API's error code must equal the code the Kafka path answers with in
its ``clip.failed``: a request the codec cannot decode is answered by
``answer_invalid_clip_request``; one it decodes goes to the clipper's handler, whose
rejection code the stage runner puts in the ``clip.failed``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from schemas import TOPICS
from schemas.clip import ClipFailed
from schemas.codes import CLIP_PARAM_CODES, Code
from services.clipper.handler import ClipConfig, ClipHandler, CutResult
from services.clipper.invalid import answer_invalid_clip_request
from services.common.clip_rules import ClipPlan, ClipRejected
from services.common.codec import Codec, DecodeError, RawMessage
from services.common.episodes import Episode
from services.submitter.http.app import create_api
from services.submitter.http.deps import get_clip_ports, get_keys
from services.submitter.keys import create_key
from services.submitter.settings import SubmitterSettings
from tests.support.events import clip_request
from tests.support.fakes import MemoryKeys, context_for
from tests.support.submitter import EPISODE, ClipWorld

MAX_DURATION_MS = 600_000


@dataclass(frozen=True)
class Case:
    rule: str  # a key of CLIP_PARAM_CODES, or the code of a rule that needs the episode
    http: str  # path and query under /api/v1/audio_clips/
    kafka: dict[str, Any]  # fields of clip.requested that differ from a valid request

    @property
    def expected(self) -> str:
        return CLIP_PARAM_CODES.get(self.rule, self.rule)


CASES = [
    Case("episode_id", "..%2Fx?start_time_ms=0&duration_ms=1000", {"episode_id": "../x"}),
    Case("episode_id", "-x?start_time_ms=0&duration_ms=1000", {"episode_id": "-x"}),
    Case("start_ms", "ep-1?start_time_ms=abc&duration_ms=1000", {"start_ms": "abc"}),
    Case("start_ms", "ep-1?start_time_ms=-1&duration_ms=1000", {"start_ms": -1}),
    Case("start_ms", "ep-1?start_time_ms=0.5&duration_ms=1000", {"start_ms": 0.5}),
    Case("duration_ms", "ep-1?start_time_ms=0&duration_ms=1.5", {"duration_ms": 1.5}),
    Case("duration_ms", "ep-1?start_time_ms=0&duration_ms=0", {"duration_ms": 0}),
    Case("duration_ms", "ep-1?start_time_ms=0&duration_ms=-5", {"duration_ms": -5}),
    Case("format", "ep-1?start_time_ms=0&duration_ms=1000&format=ogg", {"format": "ogg"}),
    Case("accurate", "ep-1?start_time_ms=0&duration_ms=1000&accurate=maybe", {"accurate": "maybe"}),
    Case(
        Code.DURATION_TOO_LONG,
        f"ep-1?start_time_ms=0&duration_ms={MAX_DURATION_MS + 1}",
        {"duration_ms": MAX_DURATION_MS + 1},
    ),
    Case(
        Code.START_PAST_END,
        "ep-1?start_time_ms=3000000&duration_ms=1000",
        {"start_ms": 3_000_000},
    ),
    Case(Code.EPISODE_NOT_FOUND, "nope?start_time_ms=0&duration_ms=1000", {"episode_id": "nope"}),
]


def test_every_parameter_rule_has_a_case() -> None:
    assert set(CLIP_PARAM_CODES) <= {case.rule for case in CASES}


class NoCutter:
    """Every case is rejected before a cut."""

    def cut(self, episode: Episode, plan: ClipPlan) -> AbstractAsyncContextManager[CutResult]:
        raise AssertionError("a rejected request was cut")


async def kafka_code(fields: dict[str, Any]) -> str:
    body = {**clip_request(tenant_id=EPISODE.tenant_id).model_dump(mode="json"), **fields}
    msg = RawMessage(TOPICS.clip_requests.name, json.dumps(body).encode())
    try:
        event = Codec.for_topic(TOPICS.clip_requests, 1 << 20).decode(msg)
    except DecodeError as exc:
        answer = answer_invalid_clip_request(msg, exc)
        assert isinstance(answer, ClipFailed), exc.reason
        return answer.error.code
    world = ClipWorld()
    handler = ClipHandler(
        episodes=world.episodes,
        clips=world.clips,
        media=world.media,
        cutter=NoCutter(),
        config=ClipConfig(max_duration_ms=MAX_DURATION_MS, url_expiry_s=3600),
    )
    with pytest.raises(ClipRejected) as info:
        await handler(event, context_for(event, "clip"))
    return info.value.code


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    keys = MemoryKeys()
    _, key = await create_key(keys, EPISODE.tenant_id)
    world = ClipWorld()
    app: FastAPI = create_api(SubmitterSettings())
    app.dependency_overrides[get_keys] = lambda: keys
    app.dependency_overrides[get_clip_ports] = lambda: world.ports
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c, {"Authorization": f"Bearer {key}"}
    assert world.emitter.events == [], "a rejected request reached Kafka"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}:{c.http.split('?')[0]}")
async def test_http_and_kafka_answer_the_same_code(
    case: Case, api: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    client, headers = api
    r = await client.get(f"/api/v1/audio_clips/{case.http}", headers=headers)
    assert r.status_code in (404, 422), r.text
    http_code = r.json()["error"]["code"]
    assert http_code == await kafka_code(case.kafka) == case.expected

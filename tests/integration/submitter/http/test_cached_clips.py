"""The cached-clip fast path against the real stack: it answers plain hits exactly as the
route does, and leaves everything else to the route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.common.clip_rules import plan_clip
from services.common.episodes import Episode
from services.common.settings import Settings
from services.submitter.http import deps
from services.submitter.http.routes import clips as clip_routes
from tests.integration.submitter.http.test_metrics import sample
from tests.integration.submitter.kit import Api, running_api

EPISODE = Episode(episode_id="ep-fast", tenant_id="acme", s3_key="episodes/ep-fast/source.mp3",
                  duration_ms=60_000, format_name="mp3", codec="mp3", size_bytes=1)  # fmt: skip
CLIPS = "/api/v1/audio_clips"
ROUTE = "/api/v1/audio_clips/{episode_id:anyid}"


class RouteCalls:
    """Counts the route's own ``get_clip`` calls: a request the fast path answered
    never reaches it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        real = clip_routes.get_clip

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.n += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(clip_routes, "get_clip", counted)


async def _cut(api: Api, start_ms: int, duration_ms: int, fmt: str = "mp3",
               accurate: bool = False) -> None:  # fmt: skip
    plan = plan_clip(EPISODE, start_ms, duration_ms, fmt, accurate, 600_000)

    async def body() -> AsyncIterator[bytes]:
        yield b"clip bytes"

    size = await api.runtime.media.upload_stream(plan.key, body())
    await api.runtime.clips.insert(plan, size, 42)


def _stable(resp: httpx.Response) -> dict[str, Any]:
    """The answer without what differs from one call to the next (time and signature)."""
    body = resp.json()
    url = urlsplit(body.pop("clip_url"))
    query = parse_qs(url.query)
    for moving in ("X-Amz-Date", "X-Amz-Signature"):
        assert query.pop(moving)
    for moving in ("generation_time_ms", "expires_at"):
        assert body.pop(moving) is not None
    return {"status": resp.status_code, "content-type": resp.headers["content-type"],
            "traced": "traceparent" in resp.headers, "url": (url.path, query), **body}  # fmt: skip


async def test_a_plain_hit_is_answered_as_the_route_answers_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = RouteCalls(monkeypatch)
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        await api.runtime.episodes.insert(EPISODE, None)
        await _cut(api, 1000, 2000)
        await _cut(api, 7, 2000, "wav", True)
        await _cut(api, 59_000, 1000)
        queries = [
            "start_time_ms=1000&duration_ms=2000",
            "duration_ms=2000&start_time_ms=1000&format=mp3&accurate=false",
            "start_time_ms=007&duration_ms=2000&format=wav&accurate=true",
            "start_time_ms=59000&duration_ms=5000",  # clamped at the end
        ]
        # The first request for each clip finds nothing in memory: the route reads the
        # key, the episode and the clip, and the caches hold them from then on.
        for q in queries:
            r = await api.client.get(f"{CLIPS}/ep-fast?{q}", headers=acme)
            assert r.status_code == 200 and r.json()["cache_hit"] is True, r.text
        assert calls.n == 3  # the first two queries name the same clip
        before = (await api.client.get("/metrics")).text
        fast = []
        for q in queries:
            r = await api.client.get(f"{CLIPS}/ep-fast?{q}", headers=acme)
            assert r.status_code == 200 and r.json()["cache_hit"] is True, r.text
            fast.append(r)
        assert calls.n == 3  # all answered before the route
        after = (await api.client.get("/metrics")).text
        count = sample(after, "tapedeck_http_requests_total", method="GET", route=ROUTE,
                       status="200")  # fmt: skip
        base = sample(before, "tapedeck_http_requests_total", method="GET", route=ROUTE,
                      status="200") or 0  # fmt: skip
        assert count == base + len(queries)
        assert sample(after, "tapedeck_cache_requests_total", cache="clip", result="hit")
        assert api.runtime.hit_log.pending == 2 * len(queries)

        # The same requests through the route (dependency overrides turn the fast path off).
        api.app.dependency_overrides[deps.get_runtime] = lambda: api.runtime
        try:
            for q, answer in zip(queries, fast, strict=True):
                r = await api.client.get(f"{CLIPS}/ep-fast?{q}", headers=acme)
                assert _stable(r) == _stable(answer), q
                assert list(r.json()) == list(answer.json())  # the same fields, in order
        finally:
            api.app.dependency_overrides.clear()
        assert calls.n == 3 + len(queries)


async def test_everything_but_a_plain_hit_goes_to_the_route(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = RouteCalls(monkeypatch)
    async with running_api(settings, CLIP_WAIT_TIMEOUT_S=0.2) as api:
        acme, other = await api.key_for("acme"), await api.key_for("acme-other")
        await api.runtime.episodes.insert(EPISODE, None)
        await _cut(api, 1000, 2000)
        hit = f"{CLIPS}/ep-fast?start_time_ms=1000&duration_ms=2000"
        key = acme["Authorization"].removeprefix("Bearer ")
        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        cases: list[tuple[str, dict[str, str], int, str | None]] = [
            (hit, {}, 401, "unauthorized"),
            (hit, {"X-API-Key": wrong}, 401, "unauthorized"),
            (hit, other, 404, "episode_not_found"),  # another tenant's episode
            (f"{CLIPS}/ep-fast?start_time_ms=1000&duration_ms=0", acme, 422, "invalid_duration"),
            (f"{CLIPS}/ep-fast?start_time_ms=99000&duration_ms=10", acme, 422, "start_past_end"),
            (f"{CLIPS}/ep-fast?start_time_ms=1000&duration_ms=2000&format=ogg", acme, 422,
             "invalid_format"),
            (f"{CLIPS}/nope?start_time_ms=1000&duration_ms=2000", acme, 404, "episode_not_found"),
            (f"{CLIPS}/ep-fast?start_time_ms=0&duration_ms=500", acme, 202, None),  # a miss
            # Spellings the fast path leaves alone, answered by the route all the same.
            (f"{CLIPS}/ep-fast?start_time_ms=1000&duration_ms=2000&accurate=0", acme, 200, None),
            (f"{CLIPS}/ep-fast?start_time_ms=%31000&duration_ms=2000", acme, 200, None),
        ]  # fmt: skip
        for url, headers, status, code in cases:
            before = calls.n
            r = await api.client.get(url, headers=headers)
            assert r.status_code == status, (url, r.text)
            if code is not None:
                assert r.json()["error"]["code"] == code, (url, r.text)
            if status == 200:
                # A hit, but not spelled plainly: the route's own get_clip answered it.
                assert r.json()["cache_hit"] is True and calls.n == before + 1, url

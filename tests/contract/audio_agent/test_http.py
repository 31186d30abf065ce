"""The shared HTTP layer: Retry-After, provider messages, backoff, downloads, scrubbing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.audio_agent.providers.base import ProviderRejected
from services.audio_agent.providers.http import (
    HttpPolicy,
    ProviderHttp,
    StatusReporter,
    ceil_seconds,
    message_of,
    retry_after_s,
)
from tests.contract.audio_agent.conftest import listing
from tests.support.contract.fal import FalContract
from tests.support.contract.server import FakeTime, tiny_wav

NOW = datetime(2026, 11, 3, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "message", "expected"),
    [
        ({"Retry-After": "7"}, "", 7.0),
        ({"Retry-After": "2.5"}, "", 2.5),
        ({"Retry-After": "-3"}, "", 0.0),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=42), usegmt=True)}, "", 42.0),
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=42), usegmt=True)}, "", 0.0),
        ({"Retry-After": "soon"}, "", None),
        ({}, "Request was throttled. Your rate limit resets in ~30s.", 30.0),
        ({}, "resets in 12.5s", 12.5),
        ({"Retry-After": "3"}, "resets in ~30s", 3.0),  # the header wins
        ({}, "Request was throttled.", None),
        ({}, "", None),
    ],
)
def test_retry_after(headers: dict[str, str], message: str, expected: float | None) -> None:
    assert retry_after_s(httpx.Headers(headers), message, now=NOW) == expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"detail": "Too many requests"}, "Too many requests"),
        (
            {
                "detail": [
                    {"loc": ["body", "duration"], "msg": "too big", "type": "x"},
                    {"loc": ["body", "prompt"], "msg": "missing"},
                ]
            },
            "body.duration: too big; body.prompt: missing",
        ),
        (
            {"detail": {"status": "quota_exceeded", "message": "No credits"}},
            "quota_exceeded: No credits",
        ),
        (
            {"type": "x", "title": "Unauthenticated", "status": 401, "detail": "Bad token"},
            "Bad token",
        ),
        ({"title": "Not found", "status": 404}, "Not found"),
        ({"error": "Boom", "error_type": "runner_error"}, "Boom [runner_error]"),
        ({"detail": "Nope", "error_type": "validation"}, "Nope [validation]"),
        (None, "plain text"),
    ],
)
def test_message_of(doc: Any, expected: str) -> None:
    assert message_of(doc, "plain text") == expected


def http(client: httpx.AsyncClient, fake: FakeTime | None = None, **policy: Any) -> ProviderHttp:
    fake = fake or FakeTime()
    return ProviderHttp(
        "fal",
        client,
        HttpPolicy(**policy),
        secret=SecretStr("k-123-secret"),
        sleep=fake.sleep,
        clock=fake.clock,
        rng=random.Random(0),
    )


async def test_backoff_is_full_jitter_under_an_exponential_cap(client: httpx.AsyncClient) -> None:
    h = http(client, backoff_base_s=1.0, backoff_max_s=8.0, retry_after_max_s=60.0)
    for attempt, cap in enumerate([1, 2, 4, 8, 8, 8]):
        delays = [h.retry_delay(attempt, None) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # really spread over the range, not fixed
    assert h.retry_delay(0, 30.0) == 30.0
    assert h.retry_delay(0, 500.0) == 60.0  # a provider's long wait is capped


def test_scrub_hides_the_key_and_signed_queries(client: httpx.AsyncClient) -> None:
    h = http(client)
    text = h.scrub("key k-123-secret at https://cdn.example/a.wav?X-Amz-Signature=abc&t=1")
    assert "k-123-secret" not in text and "abc" not in text
    assert text == "key <redacted> at https://cdn.example/a.wav?<redacted>"
    assert len(h.scrub("x" * 5000)) == 1000
    assert "k-123-secret" not in repr(h) + repr(vars(h))


def test_ceil_seconds() -> None:
    assert [ceil_seconds(x) for x in (0.2, 1.0, 1.0000001, 1.01, 9.999)] == [1, 1, 1, 2, 10]


async def test_status_reporter_reports_changes_only() -> None:
    seen: list[tuple[str, int | None]] = []

    async def on_status(status: str, position: int | None) -> None:
        seen.append((status, position))

    report = StatusReporter(on_status)
    for status, position in [
        ("queued", 3),
        ("queued", 3),
        ("queued", 2),
        ("running", None),
        ("running", None),
    ]:
        await report(status, position)
    assert seen == [("queued", 3), ("queued", 2), ("running", None)]
    await StatusReporter(None)("queued", 1)  # no callback: nothing to do


async def test_download_streams_to_the_file(
    fal: tuple[FalContract, str], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, url = fal
    dest = tmp_path / "a.wav"
    content_type = await http(client).download(f"{url}/files/a.wav", dest)
    assert dest.read_bytes() == tiny_wav() and content_type == "audio/wav"
    assert listing(tmp_path) == [dest]


async def test_download_larger_than_the_limit_is_refused_and_removed(
    fal: tuple[FalContract, str], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, url = fal
    dest = tmp_path / "a.wav"
    with pytest.raises(ProviderRejected, match="larger than 1000 bytes"):
        await http(client, max_download_bytes=1000).download(f"{url}/files/a.wav", dest)
    assert listing(tmp_path) == []

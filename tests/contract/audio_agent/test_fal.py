"""FalProvider against a local server speaking fal's queue contract."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.audio_agent.providers.base import (
    GenerationRequest,
    InvalidGeneration,
    ProviderError,
    ProviderRejected,
    Ticket,
)
from services.audio_agent.providers.fal import FalProvider
from tests.contract.audio_agent.conftest import SLOW_READ_TIMEOUT_S, listing, settings_for
from tests.support.contract.fal import KEY, FalContract
from tests.support.contract.server import FakeTime, tiny_wav

MUSIC = "cassetteai/music-generator"
SFX = "cassetteai/sound-effects-generator"
Server = tuple[FalContract, str]


def music(duration_s: float = 12.3, **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        kind="music", model=MUSIC, prompt="calm piano", duration_s=duration_s, **kw
    )


def make(
    url: str, client: httpx.AsyncClient, fake: FakeTime, key: str | None = KEY, **settings: Any
) -> FalProvider:
    s = settings_for(fal_queue_url=url, fal_key=SecretStr(key) if key else None, **settings)
    return FalProvider(s, client, sleep=fake.sleep, clock=fake.clock, rng=random.Random(7))


class Statuses:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []

    async def __call__(self, status: str, position: int | None) -> None:
        self.seen.append((status, position))


async def test_slow_path_queue_positions_progress_completed(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.script(
        {"status": "IN_QUEUE", "queue_position": 2},
        {"status": "IN_QUEUE", "queue_position": 1},
        {"status": "IN_QUEUE", "queue_position": 0},
        {"status": "IN_PROGRESS"},
        {"status": "COMPLETED"},
    )
    provider = make(url, client, fake_time)

    ticket = await provider.submit(music(12.3, seed=5))
    (rid,) = server.jobs
    base = f"{url}/{MUSIC}/requests/{rid}"
    assert ticket == Ticket(
        "fal",
        rid,
        {
            "model": MUSIC,
            "kind": "music",
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
            "gateway_request_id": rid,
        },
    )
    # Resumed from its JSON, as after a crash: no second submit.
    statuses = Statuses()
    dest = tmp_path / "scene.wav"
    got = await provider.fetch(
        Ticket.from_json(ticket.to_json()), dest, deadline_s=600, on_status=statuses
    )

    assert dest.read_bytes() == tiny_wav()
    assert got.path == dest and got.content_type == "audio/wav"
    assert listing(tmp_path) == [dest]  # no .part left behind
    assert statuses.seen == [("queued", 2), ("queued", 1), ("queued", 0), ("running", None)]
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0]  # polled at once, then 1 s doubling

    (submit,) = server.calls("submit")
    assert (submit.method, submit.path) == ("POST", f"/{MUSIC}")
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.headers["content-type"] == "application/json"
    # ceil(12.3) = 13 whole seconds; fal's music model takes no seed.
    assert submit.json == {"prompt": "calm piano", "duration": 13}
    polls = server.calls("status")
    assert len(polls) == 5
    assert {(r.method, r.path) for r in polls} == {("GET", f"/{MUSIC}/requests/{rid}/status")}
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in polls)
    (result,) = server.calls("result")
    assert (result.method, result.path) == ("GET", f"/{MUSIC}/requests/{rid}")
    assert result.headers["authorization"] == f"Key {KEY}"
    (file,) = server.calls("file")
    assert file.path == f"/files/{rid}.wav"
    assert "authorization" not in file.headers  # the CDN link gets no key
    assert server.counts["submit"] == 1


async def test_subpath_model_uses_the_answers_urls(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    # fal drops a subpath from the status/result/cancel URLs: only the answer's are right.
    server, url = fal
    provider = make(url, client, fake_time)
    request = GenerationRequest(kind="sfx", model=SFX, prompt="door creak", duration_s=2.2)
    ticket = await provider.submit(request)
    assert server.calls("submit")[0].json == {"prompt": "door creak", "duration": 3}
    await provider.fetch(ticket, tmp_path / "a.wav", deadline_s=60)
    assert server.calls("status")[0].path == f"/{SFX}/requests/{ticket.request_id}/status"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (music(3.2), 10),  # shorter than the model makes: its minimum, trimmed later
        (music(10.0), 10),
        (music(179.9999), 180),
        (music(180.0), 180),
        (GenerationRequest(kind="sfx", model=SFX, prompt="boom", duration_s=0.4), 1),
        (GenerationRequest(kind="sfx", model=SFX, prompt="boom", duration_s=30.0), 30),
    ],
)
async def test_durations_asked(
    request_: GenerationRequest, expected: int, client: httpx.AsyncClient
) -> None:
    provider = FalProvider(settings_for(), client)
    provider.check(request_)
    assert provider.input_for(request_)["duration"] == expected


@pytest.mark.parametrize(
    "request_",
    [
        music(180.5),  # longer than the model can make
        music(0),
        music(float("nan")),
        GenerationRequest(kind="sfx", model=SFX, prompt="boom", duration_s=30.5),
        GenerationRequest(kind="music", model="fal-ai/stable-audio", prompt="x", duration_s=5),
        GenerationRequest(kind="sfx", model=MUSIC, prompt="x", duration_s=12),
        GenerationRequest(kind="voiceover", model=MUSIC, prompt="x", duration_s=12, text="hi"),
        GenerationRequest(kind="music", model=MUSIC, prompt="  ", duration_s=12),
    ],
)
async def test_check_refuses_what_the_model_cannot_make(
    request_: GenerationRequest, fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    provider = make(url, client, fake_time)
    with pytest.raises(InvalidGeneration) as caught:
        provider.check(request_)
    assert caught.value.code == "invalid_audio_request" and caught.value.public
    with pytest.raises(InvalidGeneration):
        await provider.submit(request_)
    assert server.requests == []


async def test_429_with_retry_after_seconds_waits_that_long(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    server.fail("submit", 429, {"detail": "Too many requests"}, headers={"Retry-After": "7"})
    ticket = await make(url, client, fake_time).submit(music())
    assert fake_time.sleeps == [7.0]
    assert server.counts["submit"] == 2 and len(server.jobs) == 1
    assert ticket.request_id in server.jobs
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in server.calls("submit"))


async def test_429_with_retry_after_http_date(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    server.fail("status", 429, {"detail": "slow down"}, headers={"Retry-After": when})
    provider = make(url, client, fake_time)
    await provider.fetch(await provider.submit(music()), tmp_path / "a.wav", deadline_s=600)
    (waited,) = fake_time.sleeps
    assert 17.0 <= waited <= 20.0
    assert server.counts["status"] == 2


async def test_429_without_retry_after_backs_off_with_full_jitter(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    server.fail("submit", 429, {"detail": "Too many requests"}, times=3)
    await make(url, client, fake_time).submit(music())
    assert server.counts["submit"] == 4
    # Exponential caps 1, 2, 4 s; full jitter picks anywhere below each.
    assert len(fake_time.sleeps) == 3
    for waited, cap in zip(fake_time.sleeps, [1.0, 2.0, 4.0], strict=True):
        assert 0.0 <= waited <= cap


async def test_429_every_time_gives_up_retryable_rate_limited(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    server.fail("submit", 429, {"detail": "Too many requests"}, times=10)
    with pytest.raises(ProviderError) as caught:
        await make(url, client, fake_time).submit(music())
    err = caught.value
    assert err.retryable and err.code == "provider_rate_limited" and err.provider == "fal"
    assert err.provider_message == "Too many requests"
    assert server.counts["submit"] == 4  # 1 + provider_max_retries (3)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 409])
async def test_retryable_status_then_success(
    status: int, fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.fail("status", status, {"detail": "Internal Server Error"})
    server.fail("result", status, {"detail": "Internal Server Error"})
    server.fail("file", status)
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.wav"
    await provider.fetch(await provider.submit(music()), dest, deadline_s=600)
    assert dest.read_bytes() == tiny_wav()
    assert (server.counts["status"], server.counts["result"], server.counts["file"]) == (2, 2, 2)


async def test_504_with_fal_request_timeout_type_is_permanent(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.fail(
        "result",
        504,
        {"detail": "Request timed out"},
        headers={"X-Fal-Request-Timeout-Type": "user"},
    )
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(music()), tmp_path / "a.wav", deadline_s=600)
    assert caught.value.code == "provider_timeout"
    assert server.counts["result"] == 1


async def test_read_timeout_on_a_poll_is_retried(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    provider = make(url, client, fake_time, provider_read_timeout_s=SLOW_READ_TIMEOUT_S)
    ticket = await provider.submit(music())
    server.slow("status", 0.6)
    dest = tmp_path / "a.wav"
    await provider.fetch(ticket, dest, deadline_s=600)
    assert dest.read_bytes() == tiny_wav()
    assert server.counts["status"] == 2
    assert len(fake_time.sleeps) == 1 and fake_time.sleeps[0] <= 1.0  # one backoff


async def test_read_timeout_on_submit_is_not_resent(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    # The submit may have been queued (and paid): re-sending could pay twice, so the
    # retryable error goes back to the stage instead.
    server, url = fal
    server.slow("submit", 0.6)
    provider = make(url, client, fake_time, provider_read_timeout_s=SLOW_READ_TIMEOUT_S)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(music())
    assert caught.value.retryable and caught.value.code == "provider_timeout"
    assert "read timeout" in str(caught.value)
    assert server.counts["submit"] == 1 and fake_time.sleeps == []


async def test_malformed_result_is_permanent(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.result = {"audio": {"link": "nowhere"}}
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.wav"
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(music()), dest, deadline_s=600)
    assert caught.value.code == "provider_failed" and not caught.value.retryable
    assert "malformed result" in str(caught.value)
    assert "nowhere" in caught.value.provider_message
    assert not dest.exists() and server.counts["file"] == 0


@pytest.mark.parametrize(("op", "status"), [("file", 404), ("file", 410), ("result", 404)])
async def test_expired_result_is_permanent(
    op: str,
    status: int,
    fal: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
) -> None:
    server, url = fal
    server.fail(op, status, {"detail": "Not Found"})
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.wav"
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(music()), dest, deadline_s=600)
    assert caught.value.code == "provider_failed"
    assert "result expired" in str(caught.value)
    assert caught.value.provider_message == "Not Found"
    assert server.counts[op] == 1  # not retried
    assert listing(tmp_path) == []


async def test_completed_with_error_is_a_permanent_failure(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.script(
        {"status": "IN_PROGRESS"},
        {"status": "COMPLETED", "error": "CUDA out of memory", "error_type": "runner_error"},
    )
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a.wav", deadline_s=600)
    err = caught.value
    assert err.code == "provider_failed" and not err.retryable
    assert err.provider_message == "CUDA out of memory [runner_error]"
    assert ticket.request_id in str(err)
    assert server.counts["result"] == 0 and server.counts["file"] == 0


async def test_unknown_status_is_an_error_not_a_hang(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.script({"status": "PAUSED"})
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(music()), tmp_path / "a.wav", deadline_s=600)
    assert caught.value.code == "provider_failed" and "'PAUSED'" in str(caught.value)
    assert server.counts["status"] == 1


async def test_validation_error_on_submit_is_permanent(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    server.fail(
        "submit",
        422,
        {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "value_error"}]},
    )
    with pytest.raises(ProviderRejected) as caught:
        await make(url, client, fake_time).submit(music())
    assert caught.value.code == "invalid_audio_request"
    assert caught.value.provider_message == "body.prompt: too long"
    assert server.counts["submit"] == 1


@pytest.mark.parametrize("answer", ["CANCELLATION_REQUESTED", "ALREADY_COMPLETED"])
async def test_cancel(
    answer: str, fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    server.cancel_status = answer
    await provider.cancel(ticket)
    (call,) = server.calls("cancel")
    assert (call.method, call.path) == ("PUT", f"/{MUSIC}/requests/{ticket.request_id}/cancel")
    assert call.headers["authorization"] == f"Key {KEY}"


async def test_cancel_of_an_unknown_request_is_fine(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    base = f"{url}/{MUSIC}/requests/gone"
    ticket = Ticket(
        "fal",
        "gone",
        {"status_url": f"{base}/status", "response_url": base, "cancel_url": f"{base}/cancel"},
    )
    await make(url, client, fake_time).cancel(ticket)
    assert server.counts["cancel"] == 1


async def test_deadline_expiry_cancels_and_raises_provider_timeout(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = fal
    server.script({"status": "IN_QUEUE", "queue_position": 40})
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    statuses = Statuses()
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a.wav", deadline_s=20, on_status=statuses)
    assert caught.value.code == "provider_timeout" and not caught.value.retryable
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 5.0]  # the last wait cut to the deadline
    assert statuses.seen == [("queued", 40)]
    (cancel,) = server.calls("cancel")
    assert cancel.path == f"/{MUSIC}/requests/{ticket.request_id}/cancel"
    assert server.counts["result"] == 0


async def test_connection_refused_is_retried_then_retryable_unavailable(
    client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProviderError) as caught:
        await make(f"http://127.0.0.1:{port}", client, fake_time).submit(music())
    assert caught.value.code == "provider_unavailable" and caught.value.retryable
    assert len(fake_time.sleeps) == 3  # never sent, so safe to re-send


async def test_no_key_fails_permanently_before_sending(
    fal: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = fal
    provider = make(url, client, fake_time, key=None)
    provider.check(music())  # the request itself is fine
    with pytest.raises(ProviderRejected) as caught:
        await provider.submit(music())
    assert caught.value.code == "provider_unavailable" and not caught.value.retryable
    assert str(caught.value) == "no API key configured for fal (FAL_KEY)"
    assert server.requests == []


async def test_the_key_never_reaches_logs_messages_or_reprs(
    fal: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, url = fal
    caplog.set_level(logging.DEBUG)
    secret = KEY.split(":")[1]
    # A provider that echoes the header back in its errors: retried (and logged), then
    # refused (and raised).
    server.fail("submit", 503, {"detail": f"upstream rejected Authorization: Key {KEY}"})
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    server.fail("status", 400, {"detail": f"bad key {KEY}"})
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a.wav", deadline_s=600)
    wrong = make(url, client, fake_time, key="fal-other:not-the-key-77")
    with pytest.raises(ProviderRejected) as refused:
        await wrong.submit(music())
    assert refused.value.code == "provider_unavailable"
    assert refused.value.provider_message == "No user found for Key ID and Secret"

    exposed = [
        caplog.text,
        str(caught.value),
        repr(caught.value),
        caught.value.provider_message,
        str(refused.value),
        repr(refused.value),
        repr(provider),
        repr(vars(provider)),
        repr(wrong),
        repr(vars(wrong)),
        repr(ticket),
        str(ticket.to_json()),
    ]
    assert "upstream rejected" in caplog.text  # the retry was logged, scrubbed
    for text in exposed:
        assert KEY not in text and secret not in text and "not-the-key-77" not in text

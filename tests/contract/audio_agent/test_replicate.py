"""ReplicateProvider against a local server speaking Replicate's predictions contract."""

from __future__ import annotations

import logging
import random
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
from services.audio_agent.providers.replicate import ReplicateProvider
from tests.contract.audio_agent.conftest import SLOW_READ_TIMEOUT_S, listing, settings_for
from tests.support.contract.replicate import THROTTLED, TOKEN, VERSION, ReplicateContract, problem
from tests.support.contract.server import FakeTime, tiny_wav

Server = tuple[ReplicateContract, str]


def music(
    model: str = "stereo-melody-large", duration_s: float = 8.4, **kw: Any
) -> GenerationRequest:
    return GenerationRequest(
        kind="music", model=model, prompt="lofi beat", duration_s=duration_s, **kw
    )


def make(
    url: str, client: httpx.AsyncClient, fake: FakeTime, token: str | None = TOKEN, **settings: Any
) -> ReplicateProvider:
    secret = SecretStr(token) if token else None
    s = settings_for(replicate_api_url=url, replicate_api_token=secret, **settings)
    return ReplicateProvider(s, client, sleep=fake.sleep, clock=fake.clock, rng=random.Random(3))


class Statuses:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []

    async def __call__(self, status: str, position: int | None) -> None:
        self.seen.append((status, position))


async def test_slow_path_starting_processing_succeeded(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    server.script(
        {"status": "starting"},
        {"status": "processing", "logs": "10%"},
        {"status": "processing", "logs": "90%"},
        {"status": "succeeded"},
    )
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music(seed=42))

    (pid,) = server.predictions
    assert ticket == Ticket(
        "replicate",
        pid,
        {
            "get_url": f"{url}/v1/predictions/{pid}",
            "cancel_url": f"{url}/v1/predictions/{pid}/cancel",
            "version": VERSION,
            "model_version": "stereo-melody-large",
            "status": "starting",
        },
    )
    statuses = Statuses()
    dest = tmp_path / "scene.wav"
    got = await provider.fetch(
        Ticket.from_json(ticket.to_json()), dest, deadline_s=600, on_status=statuses
    )
    assert dest.read_bytes() == tiny_wav() and got.content_type == "audio/wav"
    assert listing(tmp_path) == [dest]
    assert statuses.seen == [("queued", None), ("running", None)]
    assert fake_time.sleeps == [1.0, 2.0, 4.0]

    (submit,) = server.calls("submit")
    assert (submit.method, submit.path) == ("POST", "/v1/predictions")
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"
    assert submit.headers["prefer"] == "wait=5"
    assert submit.json == {
        "version": VERSION,
        "input": {
            "model_version": "stereo-melody-large",
            "prompt": "lofi beat",
            "duration": 9,
            "output_format": "mp3",
            "normalization_strategy": "loudness",
            "seed": 42,
        },
    }
    polls = server.calls("status")
    assert len(polls) == 4
    assert {(r.method, r.path) for r in polls} == {("GET", f"/v1/predictions/{pid}")}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in polls)
    (file,) = server.calls("file")
    assert file.path == f"/files/{pid}.wav" and "authorization" not in file.headers


async def test_continuation_sends_input_audio(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = replicate
    request = music(
        "stereo-large",
        12,
        format="wav",
        continuation_url="https://media.example/scene-1.wav",
        options={"continuation_start": 0, "continuation_end": 6, "normalization_strategy": "peak"},
    )
    await make(url, client, fake_time).submit(request)
    assert server.calls("submit")[0].json["input"] == {
        "model_version": "stereo-large",
        "prompt": "lofi beat",
        "duration": 12,
        "output_format": "wav",
        "normalization_strategy": "peak",
        "input_audio": "https://media.example/scene-1.wav",
        "continuation": True,
        "continuation_start": 0,
        "continuation_end": 6,
    }


@pytest.mark.parametrize(
    "request_",
    [
        GenerationRequest(kind="sfx", model="stereo-large", prompt="x", duration_s=5),
        GenerationRequest(kind="voiceover", model="large", prompt="x", duration_s=5, text="hi"),
        music("small"),
        music("meta/musicgen"),
        music(duration_s=0),
        GenerationRequest(kind="music", model="large", prompt=" ", duration_s=5),
        music(options={"normalization_strategy": "loud"}),
        music(continuation_url="https://x/a.wav", options={"continuation_end": -1}),
        music(
            continuation_url="https://x/a.wav",
            options={"continuation_start": 5, "continuation_end": 2},
        ),
    ],
)
async def test_check_refuses_what_musicgen_cannot_make(
    request_: GenerationRequest,
    replicate: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
) -> None:
    server, url = replicate
    provider = make(url, client, fake_time)
    with pytest.raises(InvalidGeneration):
        provider.check(request_)
    with pytest.raises(InvalidGeneration):
        await provider.submit(request_)
    assert server.requests == []


@pytest.mark.parametrize("model", ["stereo-melody-large", "stereo-large", "melody-large", "large"])
async def test_every_model_version_is_accepted(model: str, client: httpx.AsyncClient) -> None:
    ReplicateProvider(settings_for(), client).check(music(model))


async def test_429_resets_in_detail_waits_that_long(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = replicate
    server.fail("submit", 429, THROTTLED)
    ticket = await make(url, client, fake_time).submit(music())
    assert fake_time.sleeps == [30.0]
    assert server.counts["submit"] == 2 and list(server.predictions) == [ticket.request_id]


async def test_429_resets_in_is_capped(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = replicate
    detail = "Request was throttled. Your rate limit resets in ~900s."
    server.fail("submit", 429, problem(429, "Too Many Requests", detail))
    await make(url, client, fake_time).submit(music())
    assert fake_time.sleeps == [60.0]


async def test_429_with_retry_after_header(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    server.fail(
        "status",
        429,
        problem(429, "Too Many Requests", "Request was throttled."),
        headers={"Retry-After": "4"},
    )
    await provider.fetch(ticket, tmp_path / "a.wav", deadline_s=600)
    assert fake_time.sleeps == [4.0]


async def test_429_without_any_hint_backs_off_with_jitter(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = replicate
    server.fail("submit", 429, problem(429, "Too Many Requests", "Request was throttled."), times=2)
    await make(url, client, fake_time).submit(music())
    assert len(fake_time.sleeps) == 2
    assert 0 <= fake_time.sleeps[0] <= 1.0 and 0 <= fake_time.sleeps[1] <= 2.0


async def test_500_then_success(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    server.fail("submit", 500, problem(500, "Internal Server Error", "Something went wrong"))
    server.fail("status", 502)
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.wav"
    await provider.fetch(await provider.submit(music()), dest, deadline_s=600)
    assert dest.read_bytes() == tiny_wav()
    assert server.counts["submit"] == 2 and len(server.predictions) == 1
    assert server.counts["status"] == 2


async def test_read_timeout_on_a_poll_is_retried(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    provider = make(url, client, fake_time, provider_read_timeout_s=SLOW_READ_TIMEOUT_S)
    ticket = await provider.submit(music())
    server.slow("status", 0.6)
    dest = tmp_path / "a.wav"
    await provider.fetch(ticket, dest, deadline_s=600)
    assert dest.read_bytes() == tiny_wav() and server.counts["status"] == 2


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"status": "failed", "error": "CUDA error: out of memory"}, "CUDA error: out of memory"),
        ({"status": "canceled"}, "canceled"),
        ({"status": "aborted"}, "aborted"),
    ],
)
async def test_final_failures_are_permanent_and_end_the_wait(
    doc: dict[str, Any],
    words: str,
    replicate: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
) -> None:
    server, url = replicate
    server.script({"status": "starting"}, doc)
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a.wav", deadline_s=600)
    err = caught.value
    assert err.code == "provider_failed" and not err.retryable
    assert err.provider_message == words and doc["status"] in str(err)
    assert server.counts["status"] == 2 and server.counts["file"] == 0
    assert fake_time.sleeps == [1.0]


async def test_aborted_never_hangs_even_with_a_long_deadline(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    server.script({"status": "aborted"})
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected, match="aborted"):
        await provider.fetch(await provider.submit(music()), tmp_path / "a", deadline_s=86400)
    assert fake_time.sleeps == [] and server.counts["cancel"] == 0


async def test_unknown_status_is_permanent(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    server.script({"status": "hibernating"})
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected, match="unexpected status 'hibernating'"):
        await provider.fetch(await provider.submit(music()), tmp_path / "a", deadline_s=600)


async def test_invalid_input_fails_the_prediction_not_the_call(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    # A model_version musicgen does not know (check() is bypassed here) is accepted by the
    # HTTP call and fails the prediction: the client reports the prediction's error.
    server, url = replicate
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    server.predictions[ticket.request_id].update(status="failed", error="Invalid model_version")
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a", deadline_s=600)
    assert caught.value.provider_message == "Invalid model_version"


@pytest.mark.parametrize(
    "output", [None, ["https://a/1.wav", "https://a/2.wav"], {"audio": "x"}, "not a url"]
)
async def test_malformed_output_is_permanent(
    output: Any,
    replicate: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
) -> None:
    server, url = replicate
    server.script({"status": "succeeded", "output": output})
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected, match="malformed output") as caught:
        await provider.fetch(await provider.submit(music()), tmp_path / "a", deadline_s=600)
    assert caught.value.code == "provider_failed"
    assert server.counts["file"] == 0


async def test_one_item_output_list_is_accepted(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    server.script({"status": "succeeded", "output": [f"{url}/files/only.wav"]})
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.wav"
    await provider.fetch(await provider.submit(music()), dest, deadline_s=600)
    assert dest.read_bytes() == tiny_wav()


@pytest.mark.parametrize("status", [404, 410])
async def test_expired_output_is_permanent(
    status: int,
    replicate: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
) -> None:
    server, url = replicate
    server.fail("file", status)
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected, match="result expired") as caught:
        await provider.fetch(await provider.submit(music()), tmp_path / "a", deadline_s=600)
    assert caught.value.code == "provider_failed" and server.counts["file"] == 1
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            422,
            problem(422, "Input validation failed", "- input.duration: Invalid type"),
            "invalid_audio_request",
        ),
        (402, problem(402, "Payment required", "You have insufficient credit"), "provider_quota"),
        (401, problem(401, "Unauthenticated", "Invalid token"), "provider_unavailable"),
        (
            404,
            problem(404, "Not found", "The requested resource does not exist"),
            "provider_failed",
        ),
    ],
)
async def test_rfc7807_errors_on_submit_are_permanent(
    status: int,
    body: dict[str, Any],
    code: str,
    replicate: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
) -> None:
    server, url = replicate
    server.fail("submit", status, body)
    with pytest.raises(ProviderRejected) as caught:
        await make(url, client, fake_time).submit(music())
    assert caught.value.code == code and caught.value.provider_message == body["detail"]
    assert server.counts["submit"] == 1 and fake_time.sleeps == []


async def test_cancel_posts_to_the_cancel_url(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    server, url = replicate
    server.script({"status": "processing"})
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    await provider.cancel(ticket)
    (call,) = server.calls("cancel")
    assert (call.method, call.path) == ("POST", f"/v1/predictions/{ticket.request_id}/cancel")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert server.predictions[ticket.request_id]["status"] == "canceled"
    # Cancelling again, or a prediction Replicate no longer has, is fine.
    await provider.cancel(ticket)
    base = f"{url}/v1/predictions/gone"
    gone = Ticket("replicate", "gone", {"get_url": base, "cancel_url": f"{base}/cancel"})
    await provider.cancel(gone)
    assert server.counts["cancel"] == 3


async def test_deadline_expiry_cancels_and_raises_provider_timeout(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = replicate
    server.script({"status": "starting"})
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a", deadline_s=30)
    assert caught.value.code == "provider_timeout"
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 10.0, 5.0]  # capped at 10 s, cut at 30
    (cancel,) = server.calls("cancel")
    assert cancel.path == f"/v1/predictions/{ticket.request_id}/cancel"
    assert server.predictions[ticket.request_id]["status"] == "canceled"


async def test_deadline_during_a_rate_limit_wait(
    replicate: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    # A 30 s "resets in" wait that would pass a 10 s deadline is not slept through.
    server, url = replicate
    provider = make(url, client, fake_time)
    ticket = await provider.submit(music())
    server.fail("status", 429, THROTTLED)
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a", deadline_s=10)
    assert caught.value.code == "provider_timeout" and fake_time.sleeps == []
    assert server.counts["cancel"] == 1


async def test_no_token_and_no_leaks(
    replicate: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, url = replicate
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderRejected, match="no API key configured for replicate") as none:
        await make(url, client, fake_time, token=None).submit(music())
    assert none.value.code == "provider_unavailable" and server.requests == []

    server.fail("submit", 500, problem(500, "Oops", f"token was Bearer {TOKEN}"))
    server.fail("submit", 400, problem(400, "Bad", f"token={TOKEN}"))
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected) as caught:
        await provider.submit(music())
    for text in (
        caplog.text,
        str(caught.value),
        repr(caught.value),
        caught.value.provider_message,
        repr(provider),
        repr(vars(provider)),
    ):
        assert TOKEN not in text
    assert "token was Bearer" in caplog.text


async def test_connection_error_while_polling_is_retryable(
    client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1/predictions/p1"
    ticket = Ticket("replicate", "p1", {"get_url": base, "cancel_url": f"{base}/cancel"})
    provider = make(f"http://127.0.0.1:{port}", client, fake_time)
    with pytest.raises(ProviderError) as caught:
        await provider.fetch(ticket, tmp_path / "a", deadline_s=600)
    assert caught.value.code == "provider_unavailable" and caught.value.retryable
    assert len(fake_time.sleeps) == 3

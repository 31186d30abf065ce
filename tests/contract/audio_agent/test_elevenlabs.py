"""ElevenLabsProvider against a local server speaking ElevenLabs' TTS and sound contract."""

from __future__ import annotations

import logging
import random
import uuid
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
from services.audio_agent.providers.elevenlabs import ElevenLabsProvider
from tests.contract.audio_agent.conftest import SLOW_READ_TIMEOUT_S, listing, settings_for
from tests.support.contract.elevenlabs import BUSY, KEY, QUOTA, TOO_MANY, ElevenLabsContract
from tests.support.contract.server import FakeTime, tiny_mp3

Server = tuple[ElevenLabsContract, str]
VOICE = "21m00Tcm4TlvDq8ikWAM"


def voiceover(
    text: str | None = "Welcome back to the show.", model: str = "eleven_multilingual_v2", **kw: Any
) -> GenerationRequest:
    return GenerationRequest(
        kind="voiceover", model=model, prompt="warm narrator", duration_s=4.0, text=text, **kw
    )


def sfx(duration_s: float = 2.5, **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        kind="sfx",
        model="eleven_text_to_sound_v2",
        prompt="glass breaking",
        duration_s=duration_s,
        **kw,
    )


def make(
    url: str, client: httpx.AsyncClient, fake: FakeTime, key: str | None = KEY, **settings: Any
) -> ElevenLabsProvider:
    s = settings_for(
        elevenlabs_api_url=url, elevenlabs_api_key=SecretStr(key) if key else None, **settings
    )
    return ElevenLabsProvider(s, client, sleep=fake.sleep, clock=fake.clock, rng=random.Random(1))


async def test_voiceover_submit_sends_nothing_fetch_streams_the_mp3(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = elevenlabs
    provider = make(url, client, fake_time)
    request = voiceover(
        previous_text="Last time...",
        next_text="Up next...",
        seed=9,
        options={"voice_settings": {"stability": 0.5, "similarity_boost": 0.8}},
    )
    ticket = await provider.submit(request)
    assert server.requests == []  # synchronous: the work happens in fetch
    assert ticket.provider == "elevenlabs" and uuid.UUID(ticket.request_id)
    resumed = Ticket.from_json(ticket.to_json())

    seen: list[tuple[str, int | None]] = []

    async def on_status(status: str, position: int | None) -> None:
        seen.append((status, position))

    dest = tmp_path / "vo.mp3"
    got = await provider.fetch(resumed, dest, deadline_s=60, on_status=on_status)
    assert dest.read_bytes() == tiny_mp3() and dest.read_bytes()[:3] in (b"ID3", b"\xff\xfb")
    assert got.content_type == "audio/mpeg" and seen == [("running", None)]

    (call,) = server.calls("tts")
    assert (call.method, call.path) == ("POST", f"/v1/text-to-speech/{VOICE}")
    assert call.query == {"output_format": "mp3_44100_128"}
    assert call.headers["xi-api-key"] == KEY and "authorization" not in call.headers
    assert call.json == {
        "text": "Welcome back to the show.",
        "model_id": "eleven_multilingual_v2",
        "voice_settings": {"stability": 0.5, "similarity_boost": 0.8},
        "previous_text": "Last time...",
        "next_text": "Up next...",
        "seed": 9,
    }


async def test_voice_id_from_options(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = elevenlabs
    provider = make(url, client, fake_time)
    request = voiceover(model="eleven_flash_v2_5", options={"voice_id": "pNInz6obpgDQGcFmaJgB"})
    ticket = await provider.submit(request)
    await provider.fetch(ticket, tmp_path / "a.mp3", deadline_s=60)
    (call,) = server.calls("tts")
    assert call.path == "/v1/text-to-speech/pNInz6obpgDQGcFmaJgB"
    assert call.json == {"text": "Welcome back to the show.", "model_id": "eleven_flash_v2_5"}


async def test_sound_effect(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = elevenlabs
    provider = make(url, client, fake_time)
    ticket = await provider.submit(sfx(2.345, options={"prompt_influence": 0.6}))
    dest = tmp_path / "fx.mp3"
    await provider.fetch(ticket, dest, deadline_s=60)
    assert dest.read_bytes() == tiny_mp3()
    (call,) = server.calls("sfx")
    assert (call.method, call.path, call.query) == (
        "POST",
        "/v1/sound-generation",
        {"output_format": "mp3_44100_128"},
    )
    assert call.headers["xi-api-key"] == KEY
    assert call.json == {
        "text": "glass breaking",
        "duration_seconds": 2.35,
        "model_id": "eleven_text_to_sound_v2",
        "prompt_influence": 0.6,
    }


@pytest.mark.parametrize(
    "request_",
    [
        voiceover(text=None),
        voiceover(text="   "),
        voiceover(text="x" * 10_001),
        voiceover(text="x" * 40_001, model="eleven_flash_v2_5"),
        voiceover(model="eleven_monolingual_v1"),
        voiceover(options={"voice_id": "../../v1/user"}),
        sfx(0.4),
        sfx(30.5),
        sfx(options={"prompt_influence": 1.5}),
        GenerationRequest(kind="sfx", model="eleven_multilingual_v2", prompt="x", duration_s=2),
        GenerationRequest(kind="music", model="eleven_multilingual_v2", prompt="x", duration_s=2),
    ],
)
async def test_check_refuses_what_elevenlabs_cannot_make(
    request_: GenerationRequest,
    elevenlabs: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
) -> None:
    server, url = elevenlabs
    provider = make(url, client, fake_time)
    with pytest.raises(InvalidGeneration) as caught:
        provider.check(request_)
    assert caught.value.code == "invalid_audio_request"
    with pytest.raises(InvalidGeneration):
        await provider.submit(request_)
    assert server.requests == []


async def test_text_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    provider = ElevenLabsProvider(settings_for(), client)
    provider.check(voiceover(text="x" * 10_000))
    provider.check(voiceover(text="x" * 40_000, model="eleven_flash_v2_5"))
    provider.check(sfx(0.5))
    provider.check(sfx(30))


@pytest.mark.parametrize(
    ("body", "headers", "waited"),
    [(TOO_MANY, {"Retry-After": "3"}, 3.0), (BUSY, {}, None)],
)
async def test_429_is_retried(
    body: dict[str, Any],
    headers: dict[str, str],
    waited: float | None,
    elevenlabs: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
) -> None:
    server, url = elevenlabs
    server.fail("tts", 429, body, headers=headers)
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.mp3"
    await provider.fetch(await provider.submit(voiceover()), dest, deadline_s=60)
    assert dest.read_bytes() == tiny_mp3() and server.counts["tts"] == 2
    (slept,) = fake_time.sleeps
    if waited is not None:
        assert slept == waited
    else:
        assert 0 <= slept <= 1.0


async def test_429_every_time_is_retryable_rate_limited(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = elevenlabs
    server.fail("sfx", 429, BUSY, times=10)
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.mp3"
    with pytest.raises(ProviderError) as caught:
        await provider.fetch(await provider.submit(sfx()), dest, deadline_s=60)
    err = caught.value
    assert err.retryable and err.code == "provider_rate_limited"
    assert err.provider_message.startswith("system_busy: We are experiencing heavy traffic")
    assert server.counts["sfx"] == 4 and not dest.exists()


async def test_quota_exceeded_is_permanent_provider_quota(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = elevenlabs
    server.fail("tts", 401, QUOTA)
    provider = make(url, client, fake_time)
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(voiceover()), tmp_path / "a", deadline_s=60)
    assert caught.value.code == "provider_quota" and not caught.value.retryable
    assert caught.value.provider_message == (
        "quota_exceeded: This request exceeds your quota of 10000. You have 12 left."
    )
    assert server.counts["tts"] == 1


async def test_wrong_key_is_permanent_provider_unavailable(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    _, url = elevenlabs
    provider = make(url, client, fake_time, key="sk_wrong_key_000")
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(voiceover()), tmp_path / "a", deadline_s=60)
    assert caught.value.code == "provider_unavailable"
    # "invalid_api_key: <word>" reads like a credential pair, so the word is masked: a
    # provider's message is scrubbed the same way as any other text an operator sees.
    assert caught.value.provider_message == "invalid_api_key: <redacted> API key"
    assert "sk_wrong_key_000" not in str(caught.value) + repr(caught.value)


async def test_422_list_detail_is_permanent_invalid_request(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    _, url = elevenlabs
    provider = make(url, client, fake_time)
    ticket = await provider.submit(sfx())
    # A ticket saved by an older build, with a duration the server refuses.
    data = {**ticket.data, "body": {**ticket.data["body"], "duration_seconds": 45}}
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(
            Ticket("elevenlabs", ticket.request_id, data), tmp_path / "a", deadline_s=60
        )
    assert caught.value.code == "invalid_audio_request" and not caught.value.retryable
    assert caught.value.provider_message == (
        "body.duration_seconds: Input should be between 0.5 and 30"
    )


async def test_500_then_success(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    server, url = elevenlabs
    server.fail("tts", 500, {"detail": {"status": "internal_error", "message": "Oops"}})
    server.fail("tts", 503)
    provider = make(url, client, fake_time)
    dest = tmp_path / "a.mp3"
    await provider.fetch(await provider.submit(voiceover()), dest, deadline_s=60)
    assert dest.read_bytes() == tiny_mp3() and server.counts["tts"] == 3
    assert len(fake_time.sleeps) == 2


async def test_read_timeout_is_not_resent(
    elevenlabs: Server, client: httpx.AsyncClient, fake_time: FakeTime, tmp_path: Path
) -> None:
    # The audio may have been generated (and billed): the stage decides whether to retry.
    server, url = elevenlabs
    server.slow("tts", 0.6)
    provider = make(url, client, fake_time, provider_read_timeout_s=SLOW_READ_TIMEOUT_S)
    dest = tmp_path / "a.mp3"
    with pytest.raises(ProviderError) as caught:
        await provider.fetch(await provider.submit(voiceover()), dest, deadline_s=60)
    assert caught.value.code == "provider_timeout" and caught.value.retryable
    assert server.counts["tts"] == 1 and listing(tmp_path) == []


async def test_deadline_expiry_is_provider_timeout(
    elevenlabs: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Real time here: the call itself outlives the deadline (nothing to cancel remotely).
    server, url = elevenlabs
    server.slow("tts", 0.8)
    provider = ElevenLabsProvider(
        settings_for(elevenlabs_api_url=url, elevenlabs_api_key=SecretStr(KEY)), client
    )
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(await provider.submit(voiceover()), tmp_path / "a", deadline_s=0.2)
    assert caught.value.code == "provider_timeout"
    assert listing(tmp_path) == []
    await provider.cancel(Ticket("elevenlabs", "x"))  # a no-op that never raises


async def test_no_key_and_no_leaks(
    elevenlabs: Server,
    client: httpx.AsyncClient,
    fake_time: FakeTime,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, url = elevenlabs
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderRejected, match="no API key configured for elevenlabs") as none:
        await make(url, client, fake_time, key=None).submit(voiceover())
    assert none.value.code == "provider_unavailable" and server.requests == []

    server.fail("tts", 503, {"detail": {"status": "x", "message": f"xi-api-key: {KEY}"}})
    server.fail("tts", 400, {"detail": {"status": "bad", "message": f"key {KEY} refused"}})
    provider = make(url, client, fake_time)
    ticket = await provider.submit(voiceover())
    with pytest.raises(ProviderRejected) as caught:
        await provider.fetch(ticket, tmp_path / "a", deadline_s=60)
    assert server.counts["tts"] == 2
    for text in (
        caplog.text,
        str(caught.value),
        repr(caught.value),
        str(ticket.to_json()),
        caught.value.provider_message,
        repr(provider),
        repr(vars(provider)),
    ):
        assert KEY not in text

"""ElevenLabs: voiceover (text to speech) and sound effects, both synchronous.

    voiceover  POST {elevenlabs_api_url}/v1/text-to-speech/{voice_id}?output_format=mp3_44100_128
               body {text, model_id, voice_settings?, previous_text?, next_text?, seed?,
                     language_code?}
    sfx        POST {elevenlabs_api_url}/v1/sound-generation?output_format=mp3_44100_128
               body {text: prompt, duration_seconds (0.5-30), prompt_influence?, loop?,
                     model_id}
    header     xi-api-key: <key>

Both answer audio bytes, so there is nothing to poll: ``submit`` only validates and
returns a ticket carrying the prepared call (request_id: a uuid of ours), and ``fetch``
makes the call and streams the bytes to ``dest``; ``cancel`` has nothing to stop.

Errors: ``{"detail": {"status", "message"}}``; 429 (``too_many_concurrent_requests``,
``system_busy``) is retried as ``provider_rate_limited``; 401 ``quota_exceeded`` is a
permanent ``provider_quota``; 422 (a list of ``{loc, msg}``) a permanent
``invalid_audio_request``. The call is not re-sent after a read timeout (it may have been
generated and billed): that comes back as a retryable ``provider_timeout``.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from schemas.codes import Code
from services.audio_agent.providers.base import (
    Generated,
    GenerationRequest,
    InvalidGeneration,
    OnStatus,
    ProviderError,
    ProviderRejected,
    Ticket,
)
from services.audio_agent.providers.http import (
    Clock,
    Deadline,
    Failure,
    HttpPolicy,
    ProviderHttp,
    Sleep,
    build_client,
    detail_status,
)
from services.audio_agent.settings import AudioAgentSettings

NAME = "elevenlabs"
OUTPUT_FORMAT = "mp3_44100_128"
# Text-to-speech models and their maximum characters per request (documented ones only).
VOICE_MODELS = {"eleven_multilingual_v2": 10_000, "eleven_flash_v2_5": 40_000}
SFX_MODELS = ("eleven_text_to_sound_v2",)
SFX_MIN_S, SFX_MAX_S = 0.5, 30.0
_VOICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _classify(failure: Failure, what: str) -> ProviderError | ProviderRejected | None:
    if failure.status == 401 and detail_status(failure.doc) == "quota_exceeded":
        return ProviderRejected(
            f"elevenlabs {what}: quota exceeded (HTTP 401)",
            provider=NAME,
            provider_message=failure.message,
            code=Code.PROVIDER_QUOTA,
        )
    return None


class ElevenLabsProvider:
    name = NAME

    def __init__(
        self,
        settings: AudioAgentSettings,
        client: httpx.AsyncClient | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._base = settings.elevenlabs_api_url.rstrip("/")
        self._key = settings.elevenlabs_api_key
        self._voice_id = settings.elevenlabs_voice_id
        self._owns_client = client is None
        self._http = ProviderHttp(
            NAME,
            client or build_client(settings),
            HttpPolicy.from_settings(settings),
            secret=self._key,
            classify=_classify,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )

    def __repr__(self) -> str:
        return f"ElevenLabsProvider({self._base!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.client.aclose()

    # -- the protocol ---------------------------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        self.call_for(request)

    def call_for(self, request: GenerationRequest) -> dict[str, Any]:
        """The call to make: ``{path, params, body}``; ``InvalidGeneration`` for what
        ElevenLabs cannot make."""
        if request.kind == "voiceover":
            return self._voiceover(request)
        if request.kind == "sfx":
            return self._sfx(request)
        raise InvalidGeneration(
            f"elevenlabs makes voiceover and sfx, not {request.kind}", provider=NAME
        )

    async def submit(self, request: GenerationRequest) -> Ticket:
        call = self.call_for(request)
        self._auth()  # fail now, not at fetch, when no key is configured
        return Ticket(NAME, uuid.uuid4().hex, {"kind": request.kind, **call})

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        headers = self._auth()
        path, body = ticket.data.get("path"), ticket.data.get("body")
        params = ticket.data.get("params") or {"output_format": OUTPUT_FORMAT}
        if not isinstance(path, str) or not path.startswith("/v1/") or not isinstance(body, dict):
            raise self._http.rejected(f"elevenlabs ticket {ticket.request_id} has no call")
        if on_status is not None:
            await on_status("running", None)

        async def work(deadline: Deadline) -> Generated:
            content_type = await self._http.to_file(
                "POST",
                f"{self._base}{path}",
                dest,
                what=str(ticket.data.get("kind") or "call"),
                headers=headers,
                json_body=body,
                params=params,
                deadline=deadline,
                idempotent=False,
            )
            return Generated(dest, content_type)

        return await self._http.run_with_deadline(deadline_s, work, cancel=None)

    async def cancel(self, ticket: Ticket) -> None:
        """Synchronous calls: nothing runs at ElevenLabs once ``fetch`` has stopped."""

    # -- the two calls --------------------------------------------------------------------------

    def _voiceover(self, request: GenerationRequest) -> dict[str, Any]:
        limit = VOICE_MODELS.get(request.model)
        if limit is None:
            raise InvalidGeneration(
                f"elevenlabs has no voice model {request.model!r} "
                f"(known: {', '.join(VOICE_MODELS)})",
                provider=NAME,
            )
        text = (request.text or "").strip()
        if not text:
            raise InvalidGeneration("a voiceover needs text", provider=NAME)
        if len(text) > limit:
            raise InvalidGeneration(
                f"voiceover text is {len(text)} characters; {request.model} takes at most {limit}",
                provider=NAME,
            )
        options = request.options
        voice_id = options.get("voice_id") or self._voice_id
        if not isinstance(voice_id, str) or not _VOICE_ID.match(voice_id):
            raise InvalidGeneration(f"invalid voice_id {voice_id!r}", provider=NAME)
        body: dict[str, Any] = {"text": text, "model_id": request.model}
        settings = options.get("voice_settings")
        if settings is not None:
            if not isinstance(settings, dict):
                raise InvalidGeneration("voice_settings must be an object", provider=NAME)
            body["voice_settings"] = settings
        if request.previous_text:
            body["previous_text"] = request.previous_text
        if request.next_text:
            body["next_text"] = request.next_text
        if request.seed is not None:
            body["seed"] = request.seed
        if isinstance(options.get("language_code"), str):
            body["language_code"] = options["language_code"]
        return {
            "path": f"/v1/text-to-speech/{quote(voice_id, safe='')}",
            "params": {"output_format": OUTPUT_FORMAT},
            "body": body,
        }

    def _sfx(self, request: GenerationRequest) -> dict[str, Any]:
        if request.model not in SFX_MODELS:
            raise InvalidGeneration(
                f"elevenlabs has no sound-effects model {request.model!r} "
                f"(known: {', '.join(SFX_MODELS)})",
                provider=NAME,
            )
        if not request.prompt.strip():
            raise InvalidGeneration("a sound effect needs a prompt", provider=NAME)
        d = request.duration_s
        if not math.isfinite(d) or not SFX_MIN_S <= round(d, 2) <= SFX_MAX_S:
            raise InvalidGeneration(
                f"elevenlabs sound effects last {SFX_MIN_S:g} to {SFX_MAX_S:g} s; {d:g} s asked",
                provider=NAME,
            )
        body: dict[str, Any] = {
            "text": request.prompt,
            "duration_seconds": round(d, 2),
            "model_id": request.model,
        }
        influence = request.options.get("prompt_influence")
        if influence is not None:
            if (
                isinstance(influence, bool)
                or not isinstance(influence, int | float)
                or not (0 <= influence <= 1)
            ):
                raise InvalidGeneration("prompt_influence must be 0 to 1", provider=NAME)
            body["prompt_influence"] = influence
        if isinstance(request.options.get("loop"), bool):
            body["loop"] = request.options["loop"]
        return {
            "path": "/v1/sound-generation",
            "params": {"output_format": OUTPUT_FORMAT},
            "body": body,
        }

    def _auth(self) -> dict[str, str]:
        if self._key is None or not self._key.get_secret_value():
            raise self._http.rejected(
                "no API key configured for elevenlabs (ELEVENLABS_API_KEY)",
                code=Code.PROVIDER_UNAVAILABLE,
            )
        return {"xi-api-key": self._key.get_secret_value()}

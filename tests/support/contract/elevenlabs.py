"""ElevenLabs' synchronous audio calls, as documented (providers.md, "ElevenLabs"):

    POST /v1/text-to-speech/{voice_id}?output_format=...   tts  {text, model_id, ...} -> MP3
    POST /v1/sound-generation?output_format=...            sfx  {text, duration_seconds, ...}
                                                                -> MP3

Auth: header ``xi-api-key``. Errors ``{"detail": {"status", "message"}}``; quota_exceeded
comes as 401; validation errors as 422 with a list of ``{loc, msg, type}``; 429 carries
``too_many_concurrent_requests`` or ``system_busy``.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.support.contract.server import ContractApp, tiny_mp3

KEY = "sk_contract0123456789abcdef0123456789abcdef"
MAX_CHARS = {"eleven_multilingual_v2": 10_000, "eleven_flash_v2_5": 40_000}


def detail(status: str, message: str) -> dict[str, Any]:
    return {"detail": {"status": status, "message": message}}


BUSY = detail("system_busy", "We are experiencing heavy traffic, please try again later.")
TOO_MANY = detail(
    "too_many_concurrent_requests",
    "You have too many concurrent requests (2 of 2 allowed); wait for one to finish.",
)
QUOTA = detail("quota_exceeded", "This request exceeds your quota of 10000. You have 12 left.")


class ElevenLabsContract(ContractApp):
    def __init__(self, *, key: str = KEY) -> None:
        self.key = key
        super().__init__(audio=tiny_mp3(), content_type="audio/mpeg")

    def reset(self) -> None:
        super().reset()
        self.request_ids: list[str] = []

    def routes(self) -> list[BaseRoute]:
        auth = self._auth
        return [
            Route(
                "/v1/text-to-speech/{voice_id}",
                self.handle("tts", self._tts, auth=auth),
                methods=["POST"],
            ),
            Route(
                "/v1/sound-generation", self.handle("sfx", self._sfx, auth=auth), methods=["POST"]
            ),
        ]

    def _auth(self, request: Request) -> bool:
        return request.headers.get("xi-api-key") == self.key

    def unauthorized(self) -> Response:
        return JSONResponse(detail("invalid_api_key", "Invalid API key"), 401)

    def _audio(self) -> Response:
        rid = uuid.uuid4().hex
        self.request_ids.append(rid)
        return Response(
            self.audio,
            media_type="audio/mpeg",
            headers={
                "request-id": rid,
                "current-concurrent-requests": "1",
                "maximum-concurrent-requests": "2",
            },
        )

    async def _tts(self, request: Request) -> Response:
        body = await request.json()
        errors = []
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            errors.append({"loc": ["body", "text"], "msg": "Field required", "type": "missing"})
        if errors:
            return JSONResponse({"detail": errors}, 422)
        assert isinstance(text, str)
        model = body.get("model_id", "eleven_multilingual_v2")
        if model not in MAX_CHARS:
            return JSONResponse(detail("model_not_found", f"Model {model} not found"), 400)
        if len(text) > MAX_CHARS[model]:
            return JSONResponse(
                detail("max_character_limit_exceeded", f"Text is over {MAX_CHARS[model]}"), 400
            )
        return self._audio()

    async def _sfx(self, request: Request) -> Response:
        body = await request.json()
        errors = []
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            errors.append({"loc": ["body", "text"], "msg": "Field required", "type": "missing"})
        duration = body.get("duration_seconds") if isinstance(body, dict) else None
        if duration is not None and not (
            isinstance(duration, int | float) and 0.5 <= duration <= 30
        ):
            errors.append(
                {
                    "loc": ["body", "duration_seconds"],
                    "type": "value_error",
                    "msg": "Input should be between 0.5 and 30",
                }
            )
        if errors:
            return JSONResponse({"detail": errors}, 422)
        return self._audio()

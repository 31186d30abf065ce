"""Replicate's predictions API, as documented (providers.md, "Replicate predictions"):

    POST /v1/predictions               submit  {version, input} -> 201 the prediction
    GET  /v1/predictions/{id}          status  -> the prediction: starting | processing |
                                                  succeeded (output: one URL) | failed |
                                                  canceled | aborted
    POST /v1/predictions/{id}/cancel   cancel  -> 200 the prediction
    GET  /files/{name}                 file    -> the WAV (replicate.delivery; no auth)

Auth: ``Authorization: Bearer <token>``. Errors are RFC 7807 (type, title, status, detail);
a throttled call answers 429 "... resets in ~30s.". An invalid input combination fails the
prediction, not the HTTP call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.support.contract.server import ContractApp, tiny_wav

TOKEN = "r8_contractTestToken0123456789abcdef"
VERSION = "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb"
MODEL_VERSIONS = {"stereo-melody-large", "stereo-large", "melody-large", "large"}
FINAL = {"succeeded", "failed", "canceled", "aborted"}


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "type": f"https://replicate.com/docs/errors#{status}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": None,
    }


THROTTLED = problem(
    429, "Too Many Requests", "Request was throttled. Your rate limit resets in ~30s."
)


class ReplicateContract(ContractApp):
    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        super().__init__(audio=tiny_wav(), content_type="audio/wav")

    def reset(self) -> None:
        super().reset()
        # Partial predictions merged in turn on each GET; the last one repeats.
        self.statuses: list[dict[str, Any]] = [{"status": "succeeded"}]
        self.predictions: dict[str, dict[str, Any]] = {}

    def script(self, *docs: dict[str, Any]) -> None:
        self.statuses = list(docs)

    def routes(self) -> list[BaseRoute]:
        auth = self._auth
        return [
            Route("/files/{name}", self.handle("file", self._file), methods=["GET"]),
            Route(
                "/v1/predictions", self.handle("submit", self._create, auth=auth), methods=["POST"]
            ),
            Route(
                "/v1/predictions/{pid}",
                self.handle("status", self._get, auth=auth),
                methods=["GET"],
            ),
            Route(
                "/v1/predictions/{pid}/cancel",
                self.handle("cancel", self._cancel, auth=auth),
                methods=["POST"],
            ),
        ]

    def _auth(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Response:
        return JSONResponse(
            problem(401, "Unauthenticated", "You did not pass a valid authentication token"), 401
        )

    async def _create(self, request: Request) -> Response:
        body = await request.json()
        if not isinstance(body, dict) or body.get("version") != VERSION:
            return JSONResponse(
                problem(
                    422, "Invalid version or not permitted", "The specified version does not exist"
                ),
                422,
            )
        data = body.get("input")
        if not isinstance(data, dict) or not isinstance(data.get("duration", 8), int):
            return JSONResponse(
                problem(
                    422,
                    "Input validation failed",
                    "- input.duration: Invalid type. Expected: integer",
                ),
                422,
            )
        pid = uuid.uuid4().hex[:26]
        base = str(request.base_url).rstrip("/")
        prediction: dict[str, Any] = {
            "id": pid,
            "model": "meta/musicgen",
            "version": VERSION,
            "input": data,
            "status": "starting",
            "output": None,
            "logs": "",
            "error": None,
            "metrics": {},
            "created_at": datetime.now(UTC).isoformat(),
            "started_at": None,
            "completed_at": None,
            "urls": {
                "get": f"{base}/v1/predictions/{pid}",
                "cancel": f"{base}/v1/predictions/{pid}/cancel",
                "stream": f"{base}/stream/{pid}",
                "web": f"https://replicate.com/p/{pid}",
            },
        }
        if data.get("model_version", "stereo-melody-large") not in MODEL_VERSIONS:
            # An invalid input fails the prediction, not the HTTP call.
            prediction["status"] = "failed"
            prediction["error"] = f"Invalid model_version: {data.get('model_version')}"
        self.predictions[pid] = prediction
        return JSONResponse(prediction, 201)

    async def _get(self, request: Request) -> Response:
        prediction = self.predictions.get(request.path_params["pid"])
        if prediction is None:
            return JSONResponse(problem(404, "Not found", "Not found."), 404)
        if prediction["status"] not in FINAL:
            doc = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            prediction.update(doc)
            if prediction["status"] == "succeeded" and "output" not in doc:
                base = str(request.base_url).rstrip("/")
                prediction["output"] = f"{base}/files/{prediction['id']}.wav"
            if prediction["status"] in FINAL:
                prediction["completed_at"] = datetime.now(UTC).isoformat()
        return JSONResponse(prediction)

    async def _cancel(self, request: Request) -> Response:
        prediction = self.predictions.get(request.path_params["pid"])
        if prediction is None:
            return JSONResponse(problem(404, "Not found", "Not found."), 404)
        if prediction["status"] not in FINAL:
            prediction["status"] = "canceled"
        return JSONResponse(prediction)

    async def _file(self, request: Request) -> Response:
        return self.audio_response()

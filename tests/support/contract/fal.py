"""fal.ai's queue, as documented (providers.md, "fal.ai queue"):

    POST /{owner}/{app}[/{subpath}]            submit  -> request_id, status_url, response_url,
                                                          cancel_url, status IN_QUEUE
    GET  /{owner}/{app}/requests/{id}/status   status  -> IN_QUEUE (+queue_position) | IN_PROGRESS
                                                          (202) | COMPLETED (200, may carry error)
    GET  /{owner}/{app}/requests/{id}          result  -> {"audio_file": {"url", ...}}
    PUT  /{owner}/{app}/requests/{id}/cancel   cancel  -> CANCELLATION_REQUESTED | ALREADY_COMPLETED
                                                          | NOT_FOUND
    GET  /files/{name}                         file    -> the WAV (fal's CDN; no auth)

Status, result and cancel URLs drop the subpath, as fal's do, so a client that builds
them instead of using the answer's fails. Auth: ``Authorization: Key <key>``.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.support.contract.server import ContractApp, tiny_wav

KEY = "fal-key-id:fal-key-secret-5f0c1e"
MODELS = {"cassetteai/music-generator": (10, 180), "cassetteai/sound-effects-generator": (1, 30)}
CANCEL_CODES = {"CANCELLATION_REQUESTED": 202, "ALREADY_COMPLETED": 400, "NOT_FOUND": 404}


class FalContract(ContractApp):
    def __init__(self, *, key: str = KEY) -> None:
        self.key = key
        super().__init__(audio=tiny_wav(), content_type="audio/wav")

    def reset(self) -> None:
        super().reset()
        # Status documents answered in turn; the last one repeats.
        self.statuses: list[dict[str, Any]] = [{"status": "COMPLETED"}]
        self.result: Any = None  # overrides the result document (a malformed one)
        self.cancel_status = "CANCELLATION_REQUESTED"
        self.jobs: dict[str, dict[str, Any]] = {}
        # Requests whose prompt holds one of these words complete with an error.
        self.failing_words: set[str] = set()

    def script(self, *docs: dict[str, Any]) -> None:
        self.statuses = list(docs)

    def routes(self) -> list[BaseRoute]:
        auth = self._auth
        return [
            Route("/files/{name}", self.handle("file", self._file), methods=["GET"]),
            Route(
                "/{owner}/{app}/requests/{rid}/status",
                self.handle("status", self._status, auth=auth),
                methods=["GET"],
            ),
            Route(
                "/{owner}/{app}/requests/{rid}/cancel",
                self.handle("cancel", self._cancel, auth=auth),
                methods=["PUT"],
            ),
            Route(
                "/{owner}/{app}/requests/{rid}",
                self.handle("result", self._result, auth=auth),
                methods=["GET"],
            ),
            Route(
                "/{model:path}", self.handle("submit", self._submit, auth=auth), methods=["POST"]
            ),
        ]

    def _auth(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Key {self.key}"

    def unauthorized(self) -> Response:
        return JSONResponse({"detail": "No user found for Key ID and Secret"}, 401)

    async def _submit(self, request: Request) -> Response:
        model = request.path_params["model"]
        app_id = "/".join(model.split("/")[:2])
        if app_id not in MODELS:
            return JSONResponse({"detail": f"Application '{model}' not found"}, 404)
        body = await request.json()
        low, high = MODELS[app_id]
        errors = []
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            errors.append({"loc": ["body", "prompt"], "msg": "field required", "type": "missing"})
        duration = body.get("duration") if isinstance(body, dict) else None
        if not isinstance(duration, int) or isinstance(duration, bool):
            errors.append(
                {
                    "loc": ["body", "duration"],
                    "msg": "value is not a valid integer",
                    "type": "int_type",
                }
            )
        elif not low <= duration <= high:
            errors.append(
                {
                    "loc": ["body", "duration"],
                    "type": "less_than_equal",
                    "msg": f"ensure this value is between {low} and {high}",
                }
            )
        if errors:
            return JSONResponse({"detail": errors}, 422)
        rid = str(uuid.uuid4())
        self.jobs[rid] = {"model": app_id, "input": body}
        return JSONResponse(
            {
                "status": "IN_QUEUE",
                "queue_position": 0,
                **self._urls(request, app_id, rid),
                "request_id": rid,
                "gateway_request_id": rid,
            },
        )

    def _urls(self, request: Request, app_id: str, rid: str) -> dict[str, str]:
        base = f"{str(request.base_url).rstrip('/')}/{app_id}/requests/{rid}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _known(self, request: Request) -> str | None:
        rid = request.path_params["rid"]
        return rid if rid in self.jobs else None

    async def _status(self, request: Request) -> Response:
        rid = self._known(request)
        if rid is None:
            return JSONResponse({"detail": "Request not found"}, 404)
        doc = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        prompt = str(self.jobs[rid]["input"].get("prompt", ""))
        if any(word in prompt for word in self.failing_words):
            doc = {"status": "COMPLETED", "error": "Model crashed", "error_type": "runner_error"}
        app_id = self.jobs[rid]["model"]
        answer = {
            **doc,
            "request_id": rid,
            "response_url": self._urls(request, app_id, rid)["response_url"],
        }
        if doc.get("status") in ("IN_PROGRESS", "COMPLETED"):
            answer.setdefault("logs", [])
        if doc.get("status") == "COMPLETED":
            answer.setdefault("metrics", {"inference_time": 1.5})
            return JSONResponse(answer, 200)
        return JSONResponse(answer, 202)

    async def _result(self, request: Request) -> Response:
        rid = self._known(request)
        if rid is None:
            return JSONResponse({"detail": "Request not found"}, 404)
        if self.result is not None:
            return JSONResponse(self.result)
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "audio_file": {
                    "url": f"{base}/files/{rid}.wav",
                    "content_type": "audio/wav",
                    "file_name": f"{rid}.wav",
                    "file_size": len(self.audio),
                }
            }
        )

    async def _cancel(self, request: Request) -> Response:
        status = self.cancel_status if self._known(request) else "NOT_FOUND"
        return JSONResponse({"status": status}, CANCEL_CODES[status])

    async def _file(self, request: Request) -> Response:
        return self.audio_response()

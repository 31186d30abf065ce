"""fal.ai's queue: cassetteai's music and sound-effect models.

    submit  POST {fal_queue_url}/{model_id}          Authorization: Key <FAL_KEY>
            -> request_id, status_url, response_url, cancel_url (kept in the ticket, never
               built: they drop a model's subpath)
    fetch   GET status_url until COMPLETED (IN_QUEUE + queue_position, IN_PROGRESS);
            COMPLETED may still carry error/error_type: a permanent failure; any other
            status value is a permanent error, not something to wait on forever;
            GET response_url -> {"audio_file": {"url", "content_type"?}}, downloaded at once
            (results expire: 404/410 on the result or the file = "result expired")
    cancel  PUT cancel_url (CANCELLATION_REQUESTED, ALREADY_COMPLETED, NOT_FOUND: all fine)

Retried on top of 429/5xx: 408 and 409 (as fal's SDK does); a 504 carrying
``X-Fal-Request-Timeout-Type`` is fal's own request timeout, permanent.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    EXPIRED,
    Clock,
    Deadline,
    Failure,
    HttpPolicy,
    ProviderHttp,
    Sleep,
    StatusReporter,
    build_client,
    ceil_seconds,
)
from services.audio_agent.settings import AudioAgentSettings

NAME = "fal"


@dataclass(frozen=True)
class FalModel:
    kind: str
    min_s: int
    max_s: int


# duration is an integer number of seconds: music 10-180 (documented); sound effects "up
# to 30" (lower bound unconfirmed: 1).
MODELS = {
    "cassetteai/music-generator": FalModel("music", 10, 180),
    "cassetteai/sound-effects-generator": FalModel("sfx", 1, 30),
}
_CANCEL_FINE = {"CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"}


def _classify(failure: Failure, what: str) -> ProviderError | ProviderRejected | None:
    if failure.status == 504 and "x-fal-request-timeout-type" in failure.headers:
        return ProviderRejected(
            f"fal {what}: the request timed out at fal (HTTP 504)",
            provider=NAME,
            provider_message=failure.message,
            code=Code.PROVIDER_TIMEOUT,
        )
    return None


class FalProvider:
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
        self._base = settings.fal_queue_url.rstrip("/")
        self._key = settings.fal_key
        self._owns_client = client is None
        self._http = ProviderHttp(
            NAME,
            client or build_client(settings),
            HttpPolicy.from_settings(settings),
            secret=self._key,
            retry_statuses={408, 409},
            classify=_classify,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )

    def __repr__(self) -> str:
        return f"FalProvider({self._base!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.client.aclose()

    # -- the protocol ---------------------------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        self.input_for(request)

    def input_for(self, request: GenerationRequest) -> dict[str, Any]:
        """The model's input; ``InvalidGeneration`` for what this model cannot make."""
        model = MODELS.get(request.model)
        if model is None:
            raise InvalidGeneration(
                f"fal has no model {request.model!r} (known: {', '.join(sorted(MODELS))})",
                provider=NAME,
            )
        if request.kind != model.kind:
            raise InvalidGeneration(
                f"fal {request.model} makes {model.kind}, not {request.kind}", provider=NAME
            )
        if not request.prompt.strip():
            raise InvalidGeneration("fal needs a prompt", provider=NAME)
        if not math.isfinite(request.duration_s) or request.duration_s <= 0:
            raise InvalidGeneration(f"invalid duration {request.duration_s!r}", provider=NAME)
        # The stage trims or pads the result to the scene, so a short scene asks for the
        # model's minimum; a scene longer than the model's maximum cannot be served.
        seconds = max(model.min_s, ceil_seconds(request.duration_s))
        if seconds > model.max_s:
            raise InvalidGeneration(
                f"fal {request.model} makes at most {model.max_s} s; "
                f"{request.duration_s:g} s asked",
                provider=NAME,
            )
        return {"prompt": request.prompt, "duration": seconds}

    async def submit(self, request: GenerationRequest) -> Ticket:
        body = self.input_for(request)
        answer = await self._http.request(
            "POST",
            f"{self._base}/{request.model}",
            what="submit",
            headers=self._auth(),
            json_body=body,
            idempotent=False,
        )
        doc = answer.doc if isinstance(answer.doc, dict) else {}
        fields = ("request_id", "status_url", "response_url", "cancel_url")
        missing = [f for f in fields if not isinstance(doc.get(f), str) or not doc[f]]
        if missing:
            raise self._http.rejected(
                f"fal submit: malformed answer (no {', '.join(missing)})",
                provider_message=str(doc)[:300],
            )
        data: dict[str, Any] = {"model": request.model, "kind": request.kind}
        data.update({f: doc[f] for f in fields[1:]})
        if isinstance(doc.get("gateway_request_id"), str):
            data["gateway_request_id"] = doc["gateway_request_id"]
        return Ticket(NAME, doc["request_id"], data)

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        headers = self._auth()
        status_url, response_url = (
            self._url(ticket, "status_url"),
            self._url(ticket, "response_url"),
        )
        report = StatusReporter(on_status)

        async def check(deadline: Deadline) -> dict[str, Any] | None:
            answer = await self._http.request(
                "GET",
                status_url,
                what="status",
                headers=headers,
                deadline=deadline,
                expired=EXPIRED,
            )
            doc = answer.doc if isinstance(answer.doc, dict) else {}
            status = doc.get("status")
            if status == "IN_QUEUE":
                position = doc.get("queue_position")
                await report("queued", position if isinstance(position, int) else None)
                return None
            if status == "IN_PROGRESS":
                await report("running", None)
                return None
            if status == "COMPLETED":
                if doc.get("error") or doc.get("error_type"):
                    error = doc.get("error")
                    words = error if isinstance(error, str) else str(error or "")
                    if doc.get("error_type"):
                        words = f"{words} [{doc['error_type']}]".strip()
                    raise self._http.rejected(
                        f"fal request {ticket.request_id}: the generation failed",
                        provider_message=words,
                    )
                return doc
            raise self._http.rejected(
                f"fal status: unexpected status {status!r}", provider_message=str(doc)[:300]
            )

        async def work(deadline: Deadline) -> Generated:
            await self._http.poll(deadline, lambda: check(deadline))
            answer = await self._http.request(
                "GET",
                response_url,
                what="result",
                headers=headers,
                deadline=deadline,
                expired=EXPIRED,
            )
            raw = answer.doc.get("audio_file") if isinstance(answer.doc, dict) else None
            audio: dict[str, Any] = raw if isinstance(raw, dict) else {}
            url = audio.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise self._http.rejected(
                    f"fal request {ticket.request_id}: malformed result (no audio_file.url)",
                    provider_message=str(answer.doc)[:300],
                )
            served = await self._http.download(url, dest, deadline=deadline)
            content_type = audio.get("content_type")
            return Generated(dest, content_type if isinstance(content_type, str) else served)

        return await self._http.run_with_deadline(
            deadline_s, work, cancel=lambda: self.cancel(ticket)
        )

    async def cancel(self, ticket: Ticket) -> None:
        answer = await self._http.request(
            "PUT",
            self._url(ticket, "cancel_url"),
            what="cancel",
            headers=self._auth(),
            accept={400, 404, 409, 410},
            retries=2,
        )
        status = answer.doc.get("status") if isinstance(answer.doc, dict) else None
        if answer.status < 300 or status in _CANCEL_FINE or answer.status in EXPIRED:
            return
        raise self._http.rejected(
            f"fal cancel: HTTP {answer.status}", provider_message=str(answer.doc)[:300]
        )

    # -- helpers --------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        if self._key is None or not self._key.get_secret_value():
            raise self._http.rejected(
                "no API key configured for fal (FAL_KEY)", code=Code.PROVIDER_UNAVAILABLE
            )
        return {"Authorization": f"Key {self._key.get_secret_value()}"}

    def _url(self, ticket: Ticket, field: str) -> str:
        url = ticket.data.get(field)
        if not isinstance(url, str) or not url:
            raise self._http.rejected(f"fal ticket {ticket.request_id} has no {field}")
        return url

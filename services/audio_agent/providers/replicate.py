"""Replicate predictions: meta/musicgen at a pinned version (music only).

    submit  POST {replicate_api_url}/v1/predictions    Authorization: Bearer <token>
            Prefer: wait=5 (a short hold: a quick prediction may come back finished)
            body {version, input: {model_version, prompt, duration, output_format,
                  normalization_strategy, seed?, input_audio + continuation
                  (+ continuation_start/_end) when continuing the previous scene}}
            -> id, urls.get, urls.cancel (kept in the ticket)
    fetch   GET urls.get until a final status: starting | processing | succeeded | failed |
            canceled | aborted. ``aborted`` (the deadline passed before it started; the
            official SDK's wait loop hangs on it) and any unknown status end the wait with a
            permanent error. ``output`` is one URL string, downloaded at once (inputs,
            outputs and logs are deleted after an hour: 404/410 = "result expired").
    cancel  POST urls.cancel

Errors are RFC 7807 (``detail`` kept as the provider's message); a 429's "resets in ~30s"
is waited on (capped) before retrying; 402 (billing) is ``provider_quota``.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from pathlib import Path
from typing import Any

import httpx

from schemas.codes import Code
from services.audio_agent.providers.base import (
    Generated,
    GenerationRequest,
    InvalidGeneration,
    OnStatus,
    Ticket,
)
from services.audio_agent.providers.http import (
    EXPIRED,
    Clock,
    Deadline,
    HttpPolicy,
    ProviderHttp,
    Sleep,
    StatusReporter,
    build_client,
    ceil_seconds,
)
from services.audio_agent.settings import AudioAgentSettings

NAME = "replicate"
MODEL_VERSIONS = ("stereo-melody-large", "stereo-large", "melody-large", "large")
NORMALIZATION = ("loudness", "clip", "peak", "rms")
PREFER_WAIT_S = 5
_FINAL_FAILURES = {
    "failed": "the prediction failed",
    "canceled": "the prediction was canceled",
    "aborted": "the prediction was aborted (its deadline passed before it started)",
}


class ReplicateProvider:
    name = NAME

    def __init__(
        self,
        settings: AudioAgentSettings,
        client: httpx.AsyncClient | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        prefer_wait_s: int = PREFER_WAIT_S,
    ) -> None:
        if not 0 < prefer_wait_s <= 60:
            raise ValueError("Prefer: wait takes 1 to 60 seconds")
        self._base = settings.replicate_api_url.rstrip("/")
        self._key = settings.replicate_api_token
        self._version = settings.replicate_musicgen_version
        self._prefer_wait_s = prefer_wait_s
        self._owns_client = client is None
        policy = HttpPolicy.from_settings(settings)
        # The submit's answer may be held for the wait: read for longer than that.
        self._submit_read_s = max(policy.read_timeout_s, prefer_wait_s + 5.0)
        self._http = ProviderHttp(
            NAME,
            client or build_client(settings),
            policy,
            secret=self._key,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )

    def __repr__(self) -> str:
        return f"ReplicateProvider({self._base!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.client.aclose()

    # -- the protocol ---------------------------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        self.input_for(request)

    def input_for(self, request: GenerationRequest) -> dict[str, Any]:
        """musicgen's input; ``InvalidGeneration`` for what it cannot make."""
        if request.kind != "music":
            raise InvalidGeneration(
                f"replicate (musicgen) makes music, not {request.kind}", provider=NAME
            )
        if request.model not in MODEL_VERSIONS:
            raise InvalidGeneration(
                f"musicgen has no model_version {request.model!r} "
                f"(known: {', '.join(MODEL_VERSIONS)})",
                provider=NAME,
            )
        if not request.prompt.strip():
            raise InvalidGeneration("musicgen needs a prompt", provider=NAME)
        if not math.isfinite(request.duration_s) or request.duration_s <= 0:
            raise InvalidGeneration(f"invalid duration {request.duration_s!r}", provider=NAME)
        options = request.options
        strategy = options.get("normalization_strategy", "loudness")
        if strategy not in NORMALIZATION:
            raise InvalidGeneration(
                f"normalization_strategy must be one of {', '.join(NORMALIZATION)}",
                provider=NAME,
            )
        data: dict[str, Any] = {
            "model_version": request.model,
            "prompt": request.prompt,
            "duration": ceil_seconds(request.duration_s),
            "output_format": request.format,
            "normalization_strategy": strategy,
        }
        if request.seed is not None:
            data["seed"] = request.seed
        if request.continuation_url:
            data["input_audio"] = request.continuation_url
            data["continuation"] = True
            for key in ("continuation_start", "continuation_end"):
                value = options.get(key)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidGeneration(f"{key} must be a whole number >= 0", provider=NAME)
                data[key] = value
            start, end = data.get("continuation_start"), data.get("continuation_end")
            if start is not None and end is not None and end <= start:
                raise InvalidGeneration(
                    "continuation_end must be after continuation_start", provider=NAME
                )
        return data

    async def submit(self, request: GenerationRequest) -> Ticket:
        body = {"version": self._version, "input": self.input_for(request)}
        headers = {**self._auth(), "Prefer": f"wait={self._prefer_wait_s}"}
        answer = await self._http.request(
            "POST",
            f"{self._base}/v1/predictions",
            what="submit",
            headers=headers,
            json_body=body,
            idempotent=False,
            read_timeout_s=self._submit_read_s,
        )
        doc = answer.doc if isinstance(answer.doc, dict) else {}
        raw_urls = doc.get("urls")
        urls: dict[str, Any] = raw_urls if isinstance(raw_urls, dict) else {}
        prediction_id, get_url, cancel_url = doc.get("id"), urls.get("get"), urls.get("cancel")
        if not all(isinstance(v, str) and v for v in (prediction_id, get_url, cancel_url)):
            raise self._http.rejected(
                "replicate submit: malformed answer (no id, urls.get or urls.cancel)",
                provider_message=str(doc)[:300],
            )
        data = {
            "get_url": get_url,
            "cancel_url": cancel_url,
            "version": self._version,
            "model_version": request.model,
            "status": doc.get("status"),
        }
        return Ticket(NAME, str(prediction_id), data)

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        headers = self._auth()
        get_url = self._url(ticket, "get_url")
        report = StatusReporter(on_status)

        async def check(deadline: Deadline) -> str | None:
            answer = await self._http.request(
                "GET", get_url, what="status", headers=headers, deadline=deadline, expired=EXPIRED
            )
            doc = answer.doc if isinstance(answer.doc, dict) else {}
            status = doc.get("status")
            if status == "starting":
                await report("queued", None)
                return None
            if status == "processing":
                await report("running", None)
                return None
            if status == "succeeded":
                return self._output_url(ticket, doc.get("output"))
            if isinstance(status, str) and status in _FINAL_FAILURES:
                error = doc.get("error")
                raise self._http.rejected(
                    f"replicate prediction {ticket.request_id}: {_FINAL_FAILURES[status]}",
                    provider_message=str(error) if error else status,
                )
            raise self._http.rejected(
                f"replicate prediction {ticket.request_id}: unexpected status {status!r}",
                provider_message=str(doc.get("error") or ""),
            )

        async def work(deadline: Deadline) -> Generated:
            url = await self._http.poll(deadline, lambda: check(deadline))
            content_type = await self._http.download(url, dest, deadline=deadline)
            return Generated(dest, content_type)

        return await self._http.run_with_deadline(
            deadline_s, work, cancel=lambda: self.cancel(ticket)
        )

    async def cancel(self, ticket: Ticket) -> None:
        # A finished prediction answers its unchanged self; a deleted one 404.
        await self._http.request(
            "POST",
            self._url(ticket, "cancel_url"),
            what="cancel",
            headers=self._auth(),
            idempotent=True,
            accept={404, 409, 410},
            retries=2,
        )

    # -- helpers --------------------------------------------------------------------------------

    def _output_url(self, ticket: Ticket, output: Any) -> str:
        # musicgen's output is one URL string; a one-item list is accepted too.
        if isinstance(output, list) and len(output) == 1:
            output = output[0]
        if isinstance(output, str) and output.startswith(("http://", "https://")):
            return output
        raise self._http.rejected(
            f"replicate prediction {ticket.request_id}: malformed output (not one URL)",
            provider_message=str(output)[:300],
        )

    def _auth(self) -> dict[str, str]:
        if self._key is None or not self._key.get_secret_value():
            raise self._http.rejected(
                "no API key configured for replicate (REPLICATE_API_TOKEN)",
                code=Code.PROVIDER_UNAVAILABLE,
            )
        return {"Authorization": f"Bearer {self._key.get_secret_value()}"}

    def _url(self, ticket: Ticket, field: str) -> str:
        url = ticket.data.get(field)
        if not isinstance(url, str) or not url:
            raise self._http.rejected(f"replicate ticket {ticket.request_id} has no {field}")
        return url

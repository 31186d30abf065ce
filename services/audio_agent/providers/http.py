"""What the remote providers (fal, Replicate, ElevenLabs) share: one HTTP discipline.

- Timeouts: connect and read from the settings, on every request (also on a client that
  was built elsewhere).
- Retries: 429, 5xx (plus provider extras such as fal's 408/409) and connection errors,
  up to ``provider_max_retries`` times, with exponential backoff and full jitter; a
  ``Retry-After`` header (seconds or an HTTP date) or Replicate's ``"... resets in ~30s"``
  wins over the backoff (capped). A request that may already have reached the provider
  (a read timeout, a connection dropped mid-answer) is only re-sent when it is idempotent:
  re-sending a paid submit could pay twice, so that error goes back to the stage as a
  retryable ``ProviderError`` instead.
- Polling: 1 s doubling up to 10 s (``provider_poll_min_s`` .. ``provider_poll_max_s``).
- Deadline: ``run_with_deadline`` bounds a whole ``fetch`` (polls, retries, download); past
  it the provider's cancel is sent (best effort) and ``ProviderRejected`` with code
  ``provider_timeout`` raised.
- Failures map to ``ProviderError`` (retryable) or ``ProviderRejected`` (permanent) with a
  code from ``schemas.codes``; the provider's own words go to ``provider_message``.
- Downloads stream to a ``.part`` file next to ``dest``, renamed when complete; the body is
  never held in memory. Downloads carry no credentials (output URLs are public CDN links).
- Keys: held as ``SecretStr``, put in headers at call time only; every message taken from a
  provider or an exception is scrubbed of the key and of URL query strings, so a key never
  reaches a log line, an exception message or a repr.

Sleeping and the clock are injectable so tests run polls and backoffs without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from schemas.codes import Code
from services.audio_agent.providers.base import ProviderError, ProviderRejected
from services.audio_agent.settings import AudioAgentSettings
from services.common.obs import metrics
from services.common.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
# Classifies an error answer before the generic rules; None means "no opinion".
Classifier = Callable[["Failure", str], "ProviderError | ProviderRejected | None"]

EXPIRED = frozenset({404, 410})
_ERROR_BODY_LIMIT = 64 * 1024
_JSON_BODY_LIMIT = 4 * 1024 * 1024
_MESSAGE_LIMIT = 1000
# Errors raised before the request left this process: always safe to send again.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Replicate's 429: "Request was throttled. Your rate limit resets in ~30s."
_RESETS_IN = re.compile(r"resets\s+in\s+~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retries: int = 5
    poll_min_s: float = 1.0
    poll_max_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0  # a provider asking for longer is waited on this long
    cancel_timeout_s: float = 10.0  # the best-effort cancel after a deadline
    max_download_bytes: int = 512 * 1024 * 1024

    @classmethod
    def from_settings(cls, s: AudioAgentSettings) -> HttpPolicy:
        return cls(
            connect_timeout_s=s.provider_connect_timeout_s,
            read_timeout_s=s.provider_read_timeout_s,
            max_retries=s.provider_max_retries,
            poll_min_s=s.provider_poll_min_s,
            poll_max_s=max(s.provider_poll_max_s, s.provider_poll_min_s),
        )

    def timeout(self, read_s: float | None = None) -> httpx.Timeout:
        read = self.read_timeout_s if read_s is None else read_s
        return httpx.Timeout(
            connect=self.connect_timeout_s, read=read, write=read, pool=self.connect_timeout_s
        )


def build_client(settings: AudioAgentSettings) -> httpx.AsyncClient:
    """The client a provider builds when none is passed in (the service passes one)."""
    return httpx.AsyncClient(
        timeout=HttpPolicy.from_settings(settings).timeout(), follow_redirects=True
    )


@dataclass(frozen=True)
class Deadline:
    at: float
    clock: Clock

    def remaining(self) -> float:
        return self.at - self.clock()


class DeadlineExpired(Exception):
    """Internal: the deadline passed (or a wait would pass it); ``run_with_deadline``
    turns it into ``provider_timeout``."""


@dataclass(frozen=True)
class Failure:
    """An error answer, read (at most 64 KB) and parsed."""

    status: int
    headers: httpx.Headers
    doc: Any  # the JSON body, or None
    message: str  # the provider's own words, scrubbed


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    doc: Any


class _Retry(Exception):
    """Internal: a retryable failure of one attempt, and whether re-sending is safe."""

    def __init__(self, error: ProviderError, *, resend_safe: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.resend_safe = resend_safe


def retry_after_s(
    headers: Mapping[str, str], message: str = "", *, now: datetime | None = None
) -> float | None:
    """How long the provider asked us to wait: ``Retry-After`` in seconds or as an HTTP
    date, else Replicate's "resets in ~30s" in the message; None if it did not say."""
    value = (headers.get("retry-after") or "").strip()
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    match = _RESETS_IN.search(message)
    return float(match.group(1)) if match else None


def message_of(doc: Any, text: str = "") -> str:
    """The provider's own words from an error body: ``detail`` as a string, a list of
    ``{loc, msg}`` or ``{status, message}``; else ``error``/``message``/``title``; plus
    fal's ``error_type``; else the raw text."""
    if isinstance(doc, dict):
        parts: list[str] = []
        detail = doc.get("detail")
        if isinstance(detail, str) and detail:
            parts.append(detail)
        elif isinstance(detail, list) and detail:
            parts.append("; ".join(_item_message(d) for d in detail))
        elif isinstance(detail, dict) and detail:
            status, msg = detail.get("status"), detail.get("message")
            parts.append(": ".join(str(p) for p in (status, msg) if p) or json.dumps(detail))
        if not parts:
            for key in ("error", "message", "title"):
                value = doc.get(key)
                if isinstance(value, str) and value:
                    parts.append(value)
                    break
        if isinstance(doc.get("error_type"), str):
            parts.append(f"[{doc['error_type']}]")
        if parts:
            return " ".join(parts)
    return text.strip()


def _item_message(item: Any) -> str:
    if isinstance(item, dict):
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        msg = str(item.get("msg") or item.get("message") or item)
        return f"{where}: {msg}" if where else msg
    return str(item)


def detail_status(doc: Any) -> str | None:
    """ElevenLabs' ``detail.status`` (``quota_exceeded``, ``system_busy``...)."""
    if isinstance(doc, dict) and isinstance(doc.get("detail"), dict):
        status = doc["detail"].get("status")
        return status if isinstance(status, str) else None
    return None


class ProviderHttp:
    """One provider's HTTP calls over a shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        policy: HttpPolicy,
        *,
        secret: SecretStr | None,
        retry_statuses: Collection[int] = (),
        classify: Classifier | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.policy = policy
        self._secret = secret
        self._retry_statuses = frozenset(retry_statuses)
        self._classify = classify
        self.sleep = sleep
        self.clock = clock
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"ProviderHttp({self.provider!r})"

    # -- words that may go anywhere ---------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Text safe for logs and exceptions: no key, no URL query strings, bounded."""
        if self._secret is not None:
            key = self._secret.get_secret_value()
            if key:
                text = text.replace(key, "<redacted>")
        text = redact(text)
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."

    def rejected(
        self, message: str, *, code: str = Code.PROVIDER_FAILED, provider_message: str = ""
    ) -> ProviderRejected:
        return ProviderRejected(
            self.scrub(message),
            provider=self.provider,
            provider_message=self.scrub(provider_message),
            code=code,
        )

    # -- classification ---------------------------------------------------------------------

    def classify(
        self, failure: Failure, what: str, expired: Collection[int] = ()
    ) -> ProviderError | ProviderRejected:
        if self._classify is not None:
            decided = self._classify(failure, what)
            if decided is not None:
                return decided
        p, status, msg = self.provider, failure.status, failure.message
        if status in expired:
            return self.rejected(
                f"{p} {what}: result expired (HTTP {status})", provider_message=msg
            )
        wait = retry_after_s(failure.headers, msg)
        if status == 429:
            return ProviderError(
                f"{p} {what}: rate limited (HTTP 429)",
                provider=p,
                provider_message=msg,
                retry_after_s=wait,
                code=Code.PROVIDER_RATE_LIMITED,
            )
        if status >= 500 or status in self._retry_statuses:
            return ProviderError(
                f"{p} {what}: HTTP {status}",
                provider=p,
                provider_message=msg,
                retry_after_s=wait,
                code=Code.PROVIDER_UNAVAILABLE,
            )
        if status == 402:
            return self.rejected(
                f"{p} {what}: payment required (HTTP 402)",
                code=Code.PROVIDER_QUOTA,
                provider_message=msg,
            )
        if status in (401, 403):
            return self.rejected(
                f"{p} {what}: the credentials were refused (HTTP {status})",
                code=Code.PROVIDER_UNAVAILABLE,
                provider_message=msg,
            )
        if status in (400, 422):
            return self.rejected(
                f"{p} {what}: the request was refused (HTTP {status})",
                code=Code.INVALID_AUDIO_REQUEST,
                provider_message=msg,
            )
        return self.rejected(f"{p} {what}: HTTP {status}", provider_message=msg)

    def _transport_error(self, exc: httpx.TransportError, what: str) -> ProviderError:
        p = self.provider
        if isinstance(exc, httpx.TimeoutException):
            kind = {
                httpx.ConnectTimeout: "connect",
                httpx.ReadTimeout: "read",
                httpx.WriteTimeout: "write",
                httpx.PoolTimeout: "pool",
            }.get(type(exc), "")
            return ProviderError(
                f"{p} {what}: {kind} timeout".replace("  ", " "),
                provider=p,
                provider_message=self.scrub(str(exc)),
                code=Code.PROVIDER_TIMEOUT,
            )
        return ProviderError(
            f"{p} {what}: connection failed ({type(exc).__name__})",
            provider=p,
            provider_message=self.scrub(str(exc)),
            code=Code.PROVIDER_UNAVAILABLE,
        )

    async def _failure(self, response: httpx.Response) -> Failure:
        body = bytearray()
        with contextlib.suppress(httpx.TransportError):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
        text = bytes(body[:_ERROR_BODY_LIMIT]).decode("utf-8", "replace")
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        return Failure(
            response.status_code, response.headers, doc, self.scrub(message_of(doc, text))
        )

    # -- requests ---------------------------------------------------------------------------

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Before attempt ``attempt + 1`` (0-based ``attempt`` just failed)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.policy.retry_after_max_s)
        cap = min(self.policy.backoff_max_s, self.policy.backoff_base_s * (2**attempt))
        return self._rng.uniform(0, cap)

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        what: str,
        consume: Callable[[httpx.Response], Awaitable[T]],
        headers: Mapping[str, str] | None,
        json_body: Any,
        params: Mapping[str, str] | None,
        expired: Collection[int],
        accept: Collection[int],
        read_timeout_s: float | None,
        on_accepted: Callable[[Failure], T] | None,
    ) -> T:
        request = self.client.build_request(
            method,
            url,
            headers=dict(headers or {}),
            json=json_body,
            params=params,
            timeout=self.policy.timeout(read_timeout_s),
        )
        started = time.perf_counter()
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            status = "timeout" if isinstance(exc, httpx.TimeoutException) else "error"
            metrics.observe_provider(self.provider, method, status, time.perf_counter() - started)
            raise _Retry(
                self._transport_error(exc, what), resend_safe=isinstance(exc, _UNSENT)
            ) from exc
        metrics.observe_provider(
            self.provider, method, str(response.status_code), time.perf_counter() - started
        )
        try:
            if not response.is_success:
                failure = await self._failure(response)
                if failure.status in accept and on_accepted is not None:
                    return on_accepted(failure)
                error = self.classify(failure, what, expired)
                if isinstance(error, ProviderError):
                    # The provider answered "not now": nothing was done, so re-sending is safe.
                    raise _Retry(error, resend_safe=True)
                raise error
            try:
                return await consume(response)
            except httpx.TransportError as exc:
                raise _Retry(self._transport_error(exc, what), resend_safe=False) from exc
        finally:
            await response.aclose()

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        what: str,
        url: str,
        idempotent: bool,
        deadline: Deadline | None,
        retries: int | None,
    ) -> T:
        attempts = 1 + (self.policy.max_retries if retries is None else retries)
        for n in range(attempts):
            if deadline is not None and deadline.remaining() <= 0:
                raise DeadlineExpired
            try:
                return await attempt()
            except _Retry as retry:
                error = retry.error
                if n + 1 >= attempts or not (idempotent or retry.resend_safe):
                    raise error from retry.__cause__
            delay = self.retry_delay(n, error.retry_after_s)
            log.warning(
                "%s %s %s: %s (%s); retry %d/%d in %.2f s",
                self.provider,
                what,
                self.scrub(url),
                error,
                error.provider_message or "-",
                n + 1,
                attempts - 1,
                delay,
            )
            if deadline is not None and delay >= deadline.remaining():
                raise DeadlineExpired
            await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        deadline: Deadline | None = None,
        idempotent: bool | None = None,
        expired: Collection[int] = (),
        accept: Collection[int] = (),
        read_timeout_s: float | None = None,
        retries: int | None = None,
    ) -> Answer:
        """A JSON call. Error statuses in ``accept`` come back as an ``Answer`` instead of
        being raised (a cancel's "not found"). A success whose body is not JSON is a
        permanent ``provider_failed``."""

        async def consume(response: httpx.Response) -> Answer:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _JSON_BODY_LIMIT:
                    raise self.rejected(f"{self.provider} {what}: answer too large")
            try:
                doc = json.loads(bytes(body)) if body.strip() else None
            except ValueError:
                raise self.rejected(
                    f"{self.provider} {what}: malformed answer (not JSON)",
                    provider_message=bytes(body[:200]).decode("utf-8", "replace"),
                ) from None
            return Answer(response.status_code, response.headers, doc)

        def accepted(failure: Failure) -> Answer:
            return Answer(failure.status, failure.headers, failure.doc)

        return await self._with_retries(
            lambda: self._attempt(
                method,
                url,
                what=what,
                consume=consume,
                headers=headers,
                json_body=json_body,
                params=params,
                expired=expired,
                accept=accept,
                read_timeout_s=read_timeout_s,
                on_accepted=accepted,
            ),
            what=what,
            url=url,
            idempotent=_idempotent(method, idempotent),
            deadline=deadline,
            retries=retries,
        )

    async def to_file(
        self,
        method: str,
        url: str,
        dest: Path,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        deadline: Deadline | None = None,
        idempotent: bool | None = None,
        expired: Collection[int] = (),
        read_timeout_s: float | None = None,
    ) -> str | None:
        """Stream a successful answer's body to ``dest`` (through ``dest.part``, renamed when
        complete); returns its content type. An empty body is a permanent failure."""

        async def consume(response: httpx.Response) -> str | None:
            await self._write(response, dest, what)
            return response.headers.get("content-type")

        return await self._with_retries(
            lambda: self._attempt(
                method,
                url,
                what=what,
                consume=consume,
                headers=headers,
                json_body=json_body,
                params=params,
                expired=expired,
                accept=(),
                read_timeout_s=read_timeout_s,
                on_accepted=None,
            ),
            what=what,
            url=url,
            idempotent=_idempotent(method, idempotent),
            deadline=deadline,
            retries=None,
        )

    async def download(
        self, url: str, dest: Path, *, deadline: Deadline | None = None, what: str = "download"
    ) -> str | None:
        """A result file, at once (providers keep them for minutes to an hour): no
        credentials sent; 404/410 means it expired (permanent)."""
        return await self.to_file("GET", url, dest, what=what, deadline=deadline, expired=EXPIRED)

    async def _write(self, response: httpx.Response, dest: Path, what: str) -> None:
        part = dest.with_name(dest.name + ".part")
        size = 0
        out = await asyncio.to_thread(part.open, "wb")
        try:
            try:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.policy.max_download_bytes:
                        raise self.rejected(
                            f"{self.provider} {what}: result larger than "
                            f"{self.policy.max_download_bytes} bytes"
                        )
                    out.write(chunk)
            finally:
                out.close()
            if size == 0:
                raise self.rejected(f"{self.provider} {what}: empty result")
            os.replace(part, dest)
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    # -- waiting ----------------------------------------------------------------------------

    async def poll(self, deadline: Deadline, check: Callable[[], Awaitable[T | None]]) -> T:
        """Call ``check`` until it returns something: at once, then after 1, 2, 4... s up
        to the poll maximum; past the deadline, ``DeadlineExpired``."""
        delay = self.policy.poll_min_s
        while True:
            result = await check()
            if result is not None:
                return result
            remaining = deadline.remaining()
            if remaining <= 0:
                raise DeadlineExpired
            await self.sleep(min(delay, remaining))
            delay = min(delay * 2, self.policy.poll_max_s)

    async def run_with_deadline(
        self,
        deadline_s: float,
        work: Callable[[Deadline], Awaitable[T]],
        *,
        cancel: Callable[[], Awaitable[None]] | None,
    ) -> T:
        """Run ``work`` within ``deadline_s`` seconds (by the injected clock, and by the
        event loop's as a backstop for a call that hangs); past it, send ``cancel`` (best
        effort, bounded) and raise ``provider_timeout``."""
        deadline = Deadline(self.clock() + deadline_s, self.clock)
        try:
            async with asyncio.timeout(deadline_s):
                return await work(deadline)
        except (TimeoutError, DeadlineExpired):
            pass
        if cancel is not None:
            try:
                async with asyncio.timeout(self.policy.cancel_timeout_s):
                    await cancel()
            except (ProviderError, ProviderRejected, TimeoutError) as exc:
                log.warning(
                    "%s: cancel after the deadline failed: %s", self.provider, self.scrub(str(exc))
                )
        raise self.rejected(
            f"{self.provider}: no result within {deadline_s:g} s"
            + ("; cancel sent" if cancel is not None else ""),
            code=Code.PROVIDER_TIMEOUT,
        )


def _idempotent(method: str, explicit: bool | None) -> bool:
    return explicit if explicit is not None else method.upper() in {"GET", "HEAD", "PUT"}


def ceil_seconds(duration_s: float) -> int:
    """Whole seconds covering ``duration_s`` (float noise such as 12.0000001 ignored)."""
    return math.ceil(round(duration_s, 3))


class StatusReporter:
    """Calls ``on_status`` (may be None) when the (status, queue position) changes."""

    def __init__(self, on_status: Any) -> None:
        self._on_status = on_status
        self._last: tuple[str, int | None] | None = None

    async def __call__(self, status: str, position: int | None = None) -> None:
        if self._on_status is None or self._last == (status, position):
            return
        self._last = (status, position)
        await self._on_status(status, position)

"""The delivery logic with in-memory ports: an outcome is recorded and never sent by the
consumer; each attempt is signed, timed, recorded on the job and the delivery, retried on
the schedule, ended by a refused URL, a 410 or old age."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest

from schemas import ErrorInfo
from schemas.audio import AudioRendered, AudioSegment
from schemas.job import JobCompleted
from schemas.merge import MergeFailed
from services.common.callbacks import CallbackRefused
from services.common.obs import trace
from services.webhooks.handler import NO_SECRET, WebhookHandler
from services.webhooks.plan import (
    DELIVERED,
    FAILED,
    GAVE_UP,
    NOT_SENT,
    PENDING,
    REFUSED,
    RETRYING,
    SENT,
    STATE_AFTER,
    Attempt,
    Delivery,
    Doc,
    Schedule,
    body,
    message_id,
    stage_body,
)
from services.webhooks.secrets import WebhookSecretStore, generate_secret
from services.webhooks.signing import WebhookVerificationError, verify
from tests.support.fakes import FakeClock, MemoryMongo

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
URL = "https://hooks.example.com/tapedeck?token=sekrit-token"


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class MemoryBook:
    """``DeliveryBook`` in a dict, with the store's due/lease/guard rules."""

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}

    async def add(self, delivery: Delivery) -> bool:
        await asyncio.sleep(0)
        if delivery.msg_id in self.docs:
            return False
        self.docs[delivery.msg_id] = {"delivery": delivery, "state": PENDING,
                                      "next_at": delivery.created_at, "history": []}  # fmt: skip
        return True

    async def due(self, now: datetime, limit: int) -> list[str]:
        due = [k for k, d in self.docs.items() if d["state"] == PENDING and d["next_at"] <= now]
        return sorted(due, key=lambda k: self.docs[k]["next_at"])[:limit]

    async def claim(self, msg_id: str, now: datetime, lease: timedelta) -> Delivery | None:
        await asyncio.sleep(0)
        doc = self.docs.get(msg_id)
        if doc is None or doc["state"] != PENDING or doc["next_at"] > now:
            return None
        doc["next_at"] = now + lease
        return cast(Delivery, doc["delivery"])

    async def settle(self, delivery: Delivery, attempt: Attempt) -> bool:
        await asyncio.sleep(0)
        doc = self.docs[delivery.msg_id]
        if doc["state"] != PENDING or doc["delivery"].attempts != delivery.attempts:
            return False
        doc["delivery"] = dataclasses.replace(delivery, attempts=attempt.attempt)
        doc["state"] = STATE_AFTER[attempt.outcome]
        doc["history"].append(attempt.doc())
        if attempt.next_at is not None:
            doc["next_at"] = attempt.next_at
        return True


class MemoryJobs:
    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}

    def add(self, job_id: str, tenant_id: str = "acme", url: str | None = URL,
            stages: bool | None = None) -> None:  # fmt: skip
        self.docs[job_id] = {"_id": job_id, "tenant_id": tenant_id, "callback_url": url}
        if stages is not None:
            self.docs[job_id]["spec"] = {"callback_stages": stages}

    async def get(self, job_id: str) -> Doc | None:
        return copy.deepcopy(self.docs.get(job_id))

    async def record(self, job_id: str, attempt: Attempt) -> None:
        history = self.docs[job_id].setdefault("webhooks", [])
        history[:] = [*history, attempt.doc()][-50:]


class Receiver:
    """The HTTP sender: answers from a script (a status, or an exception to raise), and
    takes ``took_s`` of the test's monotonic clock per request."""

    def __init__(self, clock: FakeClock, *script: int | Exception, took_s: float = 0.25) -> None:
        self.clock, self.script, self.took_s = clock, list(script), took_s
        self.calls: list[tuple[str, dict[str, str], bytes]] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        self.calls.append((url, dict(headers), body))
        if self.gate is not None:
            await self.gate.wait()
        self.clock.advance(self.took_s)
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


class UrlRules:
    def __init__(self) -> None:
        self.refused: dict[str, str] = {}
        self.checked: list[str] = []

    async def __call__(self, url: str) -> list[str]:
        self.checked.append(url)
        if url in self.refused:
            raise CallbackRefused(self.refused[url])
        return ["203.0.113.7"]


class Rig:
    def __init__(self, *script: int | Exception, schedule: Schedule | None = None) -> None:
        self.wall, self.clock = Wall(), FakeClock()
        self.book, self.jobs, self.urls = MemoryBook(), MemoryJobs(), UrlRules()
        db = cast("AsyncDatabase[Doc]", MemoryMongo())
        self.secrets = WebhookSecretStore(db, now=self.wall)
        self.receiver = Receiver(self.clock, *script)
        self.handler = WebhookHandler(
            book=self.book, jobs=self.jobs, secrets=self.secrets, send=self.receiver,
            check_url=self.urls, schedule=schedule or Schedule((5, 30), 3600, jitter=0),
            now=self.wall, clock=self.clock,
        )  # fmt: skip

    async def ready(self, job_id: str = "job-1") -> tuple[JobCompleted, str]:
        """A job with a callback URL, its tenant's secret and its outcome, recorded."""
        self.jobs.add(job_id)
        secret = await self.secrets.create_if_missing("acme") or ""
        event = outcome(job_id)
        assert await self.handler.record(event) == message_id(event)
        return event, secret

    def history(self, job_id: str = "job-1") -> list[Doc]:
        return cast(list[Doc], self.jobs.docs[job_id].get("webhooks", []))


def outcome(job_id: str = "job-1", tenant_id: str = "acme") -> JobCompleted:
    outputs = {"result": f"renders/{job_id}/r.mp4"}
    return JobCompleted(job_id=job_id, tenant_id=tenant_id, producer="lifecycle",
                        job_kind="production", outputs=outputs)  # fmt: skip


async def test_recording_makes_no_request_and_happens_once() -> None:
    rig = Rig()
    event, _ = await rig.ready()
    assert rig.receiver.calls == [] and rig.urls.checked == []
    [doc] = rig.book.docs.values()
    assert doc["state"] == PENDING and doc["next_at"] == T0
    delivery = doc["delivery"]
    assert delivery.body == body(event) and delivery.url == URL
    assert delivery.deadline == T0 + timedelta(hours=1)
    # A redelivered outcome (same event id) is the same delivery.
    assert await rig.handler.record(event) is None
    assert len(rig.book.docs) == 1


async def test_no_delivery_without_a_callback_url_or_for_another_tenant() -> None:
    rig = Rig()
    rig.jobs.add("no-url", url=None)
    rig.jobs.add("theirs", tenant_id="other")
    assert await rig.handler.record(outcome("no-url")) is None
    assert await rig.handler.record(outcome("unknown-job")) is None
    assert await rig.handler.record(outcome("theirs")) is None  # event says acme
    assert rig.book.docs == {}


async def test_an_attempt_is_signed_timed_and_recorded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = Rig(200)
    event, secret = await rig.ready()
    attempt = await rig.handler.attempt(message_id(event))
    assert attempt is not None and attempt.outcome == SENT

    [(url, headers, sent)] = rig.receiver.calls
    assert url == URL and sent == body(event)
    assert headers["webhook-id"] == message_id(event)
    assert headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert headers["content-type"] == "application/json"
    verify(secret, headers, sent, now=T0.timestamp())
    with pytest.raises(WebhookVerificationError):
        verify(generate_secret(), headers, sent, now=T0.timestamp())

    assert rig.history() == [{"msg_id": message_id(event), "type": "job.completed",
                              "attempt": 1, "at": T0, "outcome": SENT, "status": 200,
                              "duration_ms": 250}]  # fmt: skip
    doc = rig.book.docs[message_id(event)]
    assert doc["state"] == DELIVERED and doc["history"] == rig.history()
    assert await rig.handler.attempt(message_id(event)) is None  # done: nothing more
    # Neither the secret nor the signature is kept or logged; nor is the URL's token logged.
    kept = repr(rig.book.docs) + repr(rig.history()) + caplog.text
    assert secret not in kept and headers["webhook-signature"] not in kept
    assert "webhook" in caplog.text and "sekrit-token" not in caplog.text


async def test_failures_are_retried_on_the_schedule() -> None:
    rig = Rig(500, ConnectionResetError("reset by peer"), 204)
    event, _ = await rig.ready()
    msg = message_id(event)
    first = await rig.handler.attempt(msg)
    assert first is not None and first.outcome == RETRYING
    assert first.next_at == T0 + timedelta(seconds=5)
    assert await rig.handler.due(10) == []
    assert await rig.handler.attempt(msg) is None  # not due yet: no request
    assert len(rig.receiver.calls) == 1

    rig.wall.advance(5)
    assert await rig.handler.due(10) == [msg]
    second = await rig.handler.attempt(msg)
    assert second is not None and second.next_at == rig.wall.now + timedelta(seconds=30)
    rig.wall.advance(30)
    third = await rig.handler.attempt(msg)
    assert third is not None and third.outcome == SENT

    got = [(h["attempt"], h["outcome"], h.get("status"), h.get("error")) for h in rig.history()]
    assert got == [(1, RETRYING, 500, None), (2, RETRYING, None, "ConnectionResetError"),
                   (3, SENT, 204, None)]  # fmt: skip
    assert all(h["duration_ms"] == 250 for h in rig.history())
    assert rig.book.docs[msg]["state"] == DELIVERED
    # Every attempt is signed afresh, with its own timestamp, and the same id and body.
    stamps = [h["webhook-timestamp"] for _, h, _ in rig.receiver.calls]
    assert len(set(stamps)) == 3
    assert {h["webhook-id"] for _, h, _ in rig.receiver.calls} == {msg}


async def test_a_delivery_is_given_up_when_a_day_old() -> None:
    rig = Rig(*[503] * 10, schedule=Schedule((10,), max_age_s=25, jitter=0))
    event, _ = await rig.ready()
    msg = message_id(event)
    while (attempt := await rig.handler.attempt(msg)) is not None and attempt.next_at:
        rig.wall.now = attempt.next_at
    outcomes = [(h["outcome"], (h["at"] - T0).total_seconds()) for h in rig.history()]
    assert outcomes == [(RETRYING, 0), (RETRYING, 10), (RETRYING, 20), (GAVE_UP, 25)]
    assert "no 2xx answer in 4 attempts" in rig.history()[-1]["reason"]
    assert rig.book.docs[msg]["state"] == FAILED
    rig.wall.advance(3600)
    assert await rig.handler.due(10) == []


async def test_gone_ends_the_delivery_at_once() -> None:
    rig = Rig(410)
    event, _ = await rig.ready()
    attempt = await rig.handler.attempt(message_id(event))
    assert attempt is not None and attempt.outcome == GAVE_UP and attempt.status == 410
    assert "410" in (attempt.reason or "")


async def test_a_refused_url_ends_the_delivery_without_a_request() -> None:
    rig = Rig()
    event, _ = await rig.ready()
    rig.urls.refused[URL] = "callback_url resolves to a private address"
    attempt = await rig.handler.attempt(message_id(event))
    assert attempt is not None and attempt.outcome == NOT_SENT
    assert rig.receiver.calls == []
    assert rig.history() == [{"msg_id": message_id(event), "type": "job.completed",
                              "attempt": 1, "at": T0, "outcome": NOT_SENT,
                              "reason": "callback_url resolves to a private address"}]  # fmt: skip
    assert rig.book.docs[message_id(event)]["state"] == REFUSED


async def test_the_url_is_checked_again_before_every_attempt() -> None:
    rig = Rig(500)
    event, _ = await rig.ready()
    msg = message_id(event)
    await rig.handler.attempt(msg)
    rig.urls.refused[URL] = "callback_url resolves to a loopback address"  # DNS changed
    rig.wall.advance(5)
    attempt = await rig.handler.attempt(msg)
    assert attempt is not None and attempt.outcome == NOT_SENT
    assert rig.urls.checked == [URL, URL] and len(rig.receiver.calls) == 1


async def test_a_tenant_without_a_secret_gets_no_unsigned_request() -> None:
    rig = Rig()
    rig.jobs.add("job-1")
    event = outcome()
    await rig.handler.record(event)
    attempt = await rig.handler.attempt(message_id(event))
    assert attempt is not None and attempt.outcome == RETRYING and attempt.error == NO_SECRET
    assert rig.receiver.calls == []


async def test_after_a_rotation_both_secrets_sign() -> None:
    rig = Rig(200)
    event, old = await rig.ready()
    new = (await rig.secrets.rotate("acme")).secret
    await rig.handler.attempt(message_id(event))
    [(_, headers, sent)] = rig.receiver.calls
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        verify(secret, headers, sent, now=T0.timestamp())


async def test_one_worker_at_a_time_attempts_a_delivery() -> None:
    rig = Rig(200)
    event, _ = await rig.ready()
    rig.receiver.gate = asyncio.Event()
    first = asyncio.create_task(rig.handler.attempt(message_id(event)))
    await asyncio.sleep(0.01)
    assert await rig.handler.attempt(message_id(event)) is None  # leased to the first
    rig.receiver.gate.set()
    assert (await first) is not None
    assert len(rig.receiver.calls) == 1


async def test_the_job_keeps_its_last_fifty_attempts() -> None:
    rig = Rig(*[500] * 60, schedule=Schedule((1,), max_age_s=10_000, jitter=0))
    event, _ = await rig.ready()
    for _ in range(60):
        await rig.handler.attempt(message_id(event))
        rig.wall.advance(1)
    assert [h["attempt"] for h in rig.history()] == list(range(11, 61))


def test_bodies_are_json() -> None:
    data: Any = json.loads(body(outcome()))
    assert data["data"]["status"] == "COMPLETED"


def audio_rendered(job_id: str = "job-1", tenant_id: str = "acme") -> AudioRendered:
    segment = AudioSegment(scene_index=0, s3_key=f"audio/{job_id}/0.mp3", duration_s=4.0,
                           provider="local", cached=False, silent_fallback=False)  # fmt: skip
    return AudioRendered(job_id=job_id, tenant_id=tenant_id, producer="audio-agent",
                         segments=[segment])  # fmt: skip


def merge_failed(job_id: str = "job-1") -> MergeFailed:
    error = ErrorInfo(code="merge_failed", message="no", retryable=False, attempts=1)
    return MergeFailed(job_id=job_id, tenant_id="acme", producer="merger", error=error,
                       step="mux-v1")  # fmt: skip


async def test_stage_outcomes_are_delivered_only_to_jobs_that_ask() -> None:
    rig = Rig(200)
    rig.jobs.add("job-1", stages=True)
    rig.jobs.add("plain")  # no spec flag at all
    rig.jobs.add("declined", stages=False)
    rig.jobs.add("no-url", url=None, stages=True)
    rig.jobs.add("theirs", tenant_id="other", stages=True)
    secret = await rig.secrets.create_if_missing("acme") or ""
    for job_id in ("plain", "declined", "no-url", "theirs", "unknown"):
        assert await rig.handler.record(audio_rendered(job_id)) is None
        assert await rig.handler.record(merge_failed(job_id)) is None
    assert rig.book.docs == {}

    audio, voice, merge = audio_rendered(), audio_rendered("job-1.vo"), merge_failed()
    for event in (audio, voice, merge):
        assert await rig.handler.record(event) == message_id(event)
        assert await rig.handler.record(event) is None  # redelivered: the same delivery
    voice_delivery = rig.book.docs[message_id(voice)]["delivery"]
    assert voice_delivery.job_id == "job-1" and voice_delivery.event_type == "stage.completed"
    assert voice_delivery.body == stage_body(voice) and voice_delivery.url == URL

    attempt = await rig.handler.attempt(message_id(merge))
    assert attempt is not None and attempt.outcome == SENT
    [(url, headers, sent)] = rig.receiver.calls
    assert url == URL and sent == stage_body(merge)
    assert headers["webhook-id"] == message_id(merge)
    verify(secret, headers, sent, now=T0.timestamp())
    # Recorded on the parent job, like a job outcome's attempts.
    assert rig.history() == [{"msg_id": message_id(merge), "type": "stage.failed",
                              "attempt": 1, "at": T0, "outcome": SENT, "status": 200,
                              "duration_ms": 250}]  # fmt: skip


async def test_a_failed_stage_delivery_is_retried_on_the_schedule() -> None:
    rig = Rig(500, 200)
    rig.jobs.add("job-1", stages=True)
    await rig.secrets.create_if_missing("acme")
    event = audio_rendered("job-1.vo")
    msg = await rig.handler.record(event)
    assert msg is not None
    first = await rig.handler.attempt(msg)
    assert first is not None and first.outcome == RETRYING
    assert first.next_at == T0 + timedelta(seconds=5)
    rig.wall.advance(5)
    second = await rig.handler.attempt(msg)
    assert second is not None and second.outcome == SENT
    assert [h["outcome"] for h in rig.history()] == [RETRYING, SENT]


async def test_every_attempt_names_the_outcomes_trace_to_the_receiver() -> None:
    rig = Rig(500, 204)
    rig.jobs.add("job-1")
    rig.jobs.add("job-2")
    await rig.secrets.create_if_missing("acme")
    parent = trace.start(None)
    with trace.use(parent):
        traced = await rig.handler.record(outcome("job-1"))
    untraced = await rig.handler.record(outcome("job-2"))
    assert traced is not None and untraced is not None
    await rig.handler.attempt(traced)
    rig.wall.advance(5)
    await rig.handler.attempt(traced)
    await rig.handler.attempt(untraced)

    sent = [trace.parse(h.get("traceparent")) for _, h, _ in rig.receiver.calls]
    first, second, other = sent
    assert first is not None and second is not None and other is not None
    assert first.trace_id == second.trace_id == parent.trace_id
    assert len({first.span_id, second.span_id, parent.span_id}) == 3  # a span per attempt
    assert other.trace_id != parent.trace_id  # recorded outside a trace: one of its own

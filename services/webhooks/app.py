"""The webhook service, three parts sharing one set of adapters:

* an agent on the jobs results topic that records each outcome's delivery and queues
  it; it never waits on a receiver, so a slow one holds up no job and no delivery;
* one agent each on the audio, merge and video results topics, doing the same for the
  stage outcomes of jobs that ask for stage webhooks (``spec.callback_stages``);
* dispatchers (``WEBHOOK_CONCURRENCY`` of them) that make the attempts from the queue;
* a timer that queues every delivery due again (retries, and those a dead worker held).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pymongo.errors import ConnectionFailure

from schemas import TOPICS, Topic
from schemas.topics import attr_name
from services.common.callbacks import check_callback_url
from services.common.codec import Codec, DecodeError, RawMessage, dead_letter_headers
from services.common.errors import operator_detail
from services.common.faust_app import create_app, raw_topic
from services.common.kafka import KafkaEmitter
from services.common.mongo import open_database
from services.common.obs import metrics, trace
from services.common.obs.logs import annotate, bind, event_fields
from services.common.obs.worker import progress_of
from services.common.retry import RetryPolicy
from services.common.shared import Shared
from services.webhooks.handler import WebhookHandler
from services.webhooks.secrets import WebhookSecretStore
from services.webhooks.sender import HttpSender, http_client
from services.webhooks.settings import WebhookSettings
from services.webhooks.store import DeliveryStore, JobWebhooks

log = logging.getLogger(__name__)
# What the webhook service's agents report as in the stage metrics (it is no pipeline stage).
WEBHOOKS_STAGE = "webhooks"

CLIENT_ID = "tapedeck-webhooks"
STAGE = "webhooks"
# Job outcomes, then the stage outcomes delivered to jobs that ask for them.
FOLLOWS = (TOPICS.jobs_results, TOPICS.audio_results, TOPICS.merge_results,
           TOPICS.video_results)  # fmt: skip
T = TypeVar("T")


@dataclass(frozen=True)
class Opened:
    handler: WebhookHandler
    dead_letters: KafkaEmitter


@asynccontextmanager
async def open_webhooks(settings: WebhookSettings) -> AsyncIterator[Opened]:
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(open_database(settings, CLIENT_ID))
        deliveries = DeliveryStore(db)
        await deliveries.ensure_indexes()
        emitter = await stack.enter_async_context(KafkaEmitter(settings, CLIENT_ID))
        client = await stack.enter_async_context(http_client(
            connect_s=settings.webhook_connect_timeout_s, total_s=settings.webhook_timeout_s,
            max_connections=settings.webhook_concurrency))  # fmt: skip
        check = functools.partial(check_callback_url, allow_http=settings.webhook_allow_http,
                                  allow_private=settings.webhook_allow_private)  # fmt: skip
        handler = WebhookHandler(
            book=deliveries,
            jobs=JobWebhooks(db),
            secrets=WebhookSecretStore(db),
            send=HttpSender(client, total_s=settings.webhook_timeout_s),
            check_url=check,
            schedule=settings.schedule(),
        )
        yield Opened(handler, emitter)


class DeliveryQueue:
    """Delivery ids waiting for a dispatcher; an id already waiting or being attempted
    is not queued twice."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._held: set[str] = set()

    def __len__(self) -> int:
        return self._queue.qsize()

    def put(self, msg_id: str) -> None:
        if msg_id not in self._held:
            self._held.add(msg_id)
            self._queue.put_nowait(msg_id)

    async def get(self) -> str:
        return await self._queue.get()

    def done(self, msg_id: str) -> None:
        self._held.discard(msg_id)


async def _until_done(what: str, call: Callable[[], Awaitable[T]], retry: RetryPolicy) -> T:
    """Until ``call`` gets through: the agent must not move past an outcome whose
    delivery went unrecorded (its offset would be committed over it)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = retry.delay(min(attempt, 20))
            log.error("webhooks: %s failed (attempt %d), retrying in %.2fs: %s",
                      what, attempt, delay, operator_detail(exc))  # fmt: skip
            await asyncio.sleep(delay)


async def record_outcome(opened: Opened, codec: Codec, msg: RawMessage, retry: RetryPolicy,
                         *, dead_letter: bool = True) -> str | None:  # fmt: skip
    """The delivery id a results record needs attempting, if any. ``dead_letter`` off:
    a malformed record is skipped (on a stage's topic the lifecycle, which owns it,
    dead-letters it; a second copy would only mislead)."""
    # The delivery keeps the record's trace, so its attempts (later) continue it.
    with trace.use(trace.start(msg.header(trace.TRACEPARENT))), bind(stage=STAGE):
        return await _record_outcome(opened, codec, msg, retry, dead_letter=dead_letter)


async def _record_outcome(opened: Opened, codec: Codec, msg: RawMessage, retry: RetryPolicy,
                          *, dead_letter: bool) -> str | None:  # fmt: skip
    try:
        event = codec.read(msg)
    except DecodeError as exc:
        if not dead_letter:
            log.warning("webhooks: skipping %s[%s]@%s: %s",
                        msg.topic, msg.partition, msg.offset, exc.reason)  # fmt: skip
            return None
        log.warning("webhooks: dead-lettering %s[%s]@%s: %s",
                    msg.topic, msg.partition, msg.offset, exc.reason)  # fmt: skip
        headers = dead_letter_headers(msg, error=exc.reason, stage=STAGE,
                                      exception=exc.cause or exc)  # fmt: skip
        await _until_done("a dead-letter write",
                          lambda: opened.dead_letters.dead_letter(msg, headers), retry)  # fmt: skip
        return None
    annotate(**event_fields(event))

    async def record() -> str | None:
        try:
            return await opened.handler.record(event)
        except ConnectionFailure:
            raise  # MongoDB away: wait for it
        except Exception:
            # Anything else will fail the same way each time: losing this one webhook
            # beats stalling every later outcome behind it.
            log.exception("webhooks: no delivery recorded for %s %s",
                          event.event_type, event.event_id)  # fmt: skip
            return None

    return await _until_done(f"recording the delivery of {event.event_id}", record, retry)


async def dispatcher(handler: WebhookHandler, queue: DeliveryQueue) -> None:
    while True:
        msg_id = await queue.get()
        try:
            await handler.attempt(msg_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook %s: the attempt broke off; it is due again after its lease",
                          msg_id)  # fmt: skip
        finally:
            queue.done(msg_id)


def _raw(record: Any) -> RawMessage:
    m = record.message
    return RawMessage(topic=m.topic, value=m.value, key=m.key,
                      headers=tuple((k, v) for k, v in (m.headers or ())),
                      partition=m.partition, offset=m.offset)  # fmt: skip


def build_app(settings: WebhookSettings) -> Any:
    # At DEBUG, pymongo logs each command's reply, and replies here carry signing secrets.
    logging.getLogger("pymongo.command").setLevel(logging.INFO)
    app = create_app("webhooks", settings, web_port=settings.webhook_web_port)
    shared: Shared[Opened] = Shared(lambda: open_webhooks(settings))
    queue = DeliveryQueue()
    retry = RetryPolicy.from_settings(settings)
    progress = progress_of(app)

    def follow(topic: Topic) -> None:
        codec = Codec.for_topic(topic, settings.max_message_bytes)
        own = topic is TOPICS.jobs_results  # the stages' topics are the lifecycle's

        async def outcomes(stream: Any) -> None:
            opened = await shared.acquire()
            try:
                async for record in stream.events():
                    metrics.EVENTS_CONSUMED.labels(WEBHOOKS_STAGE, record.message.topic).inc()
                    token = progress.begin()
                    try:
                        msg_id = await record_outcome(opened, codec, _raw(record), retry,
                                                      dead_letter=own)  # fmt: skip
                    finally:
                        progress.end(token, WEBHOOKS_STAGE)
                    if msg_id is not None:
                        queue.put(msg_id)
            finally:
                await shared.release()

        name = f"{attr_name(topic.name)}_webhooks"
        app.agent(raw_topic(app, topic, settings), name=name)(outcomes)

    for topic in FOLLOWS:
        follow(topic)

    @app.task
    async def dispatch() -> None:
        opened = await shared.acquire()
        try:
            n = settings.webhook_concurrency
            await asyncio.gather(*(dispatcher(opened.handler, queue) for _ in range(n)))
        finally:
            await shared.release()

    @app.timer(interval=settings.webhook_sweep_s)
    async def sweep() -> None:
        # Enough to keep every dispatcher busy until the next sweep; the rest wait in MongoDB.
        room = 2 * settings.webhook_concurrency - len(queue)
        if room <= 0:
            return
        opened = await shared.acquire()
        try:
            for msg_id in await opened.handler.due(room):
                queue.put(msg_id)
        except Exception:
            log.exception("webhooks: the sweep failed; trying again at the next one")
        finally:
            await shared.release()

    return app

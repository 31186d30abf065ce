"""Faust app factory and the thin agent every stage uses.

The agent only turns Faust records into ``RawMessage`` and hands them to a
``StageRunner``; all stage logic lives in the service's handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

import faust

from schemas import Topic
from services.common.ack_order import AckOrder
from services.common.codec import RawMessage
from services.common.ffmpeg import runner
from services.common.obs.logs import configure_logging, secrets_of
from services.common.obs.worker import install as install_health
from services.common.obs.worker import progress_of
from services.common.settings import Settings
from services.common.shared import Shared
from services.common.stage import StageRunner

log = logging.getLogger(__name__)

RunnerFactory = Callable[[], AbstractAsyncContextManager[StageRunner]]


def create_app(
    service: str, settings: Settings, *, web_port: int | None = None, **overrides: Any
) -> faust.App:
    # The prefix keeps consumer groups of isolated environments (and tests) apart.
    app_id = f"{settings.topic_prefix}tapedeck-{service}"
    conf: dict[str, Any] = {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        "store": "memory://",
        "datadir": os.path.join(settings.faust_data_dir, app_id),
        "processing_guarantee": "at_least_once",
        # Topics come from the registry and are created by ensure_topics before start:
        # nothing may be auto-declared under a misspelt name.
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "consumer_auto_offset_reset": "earliest",
        "autodiscover": False,
        "web_enabled": web_port is not None,
        "web_host": "127.0.0.1",
        "web_bind": settings.web_bind,
        "web_port": web_port or 6066,
        "stream_wait_empty": False,
        # Faust's 60 s session kept a killed worker's partitions idle for a minute. The
        # heartbeat stays a third of the session, as Kafka advises.
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_heartbeat_interval": settings.kafka_session_timeout_s / 3,
        "consumer_group_instance_id": settings.worker_id,
        "broker_commit_every": 100,
        "broker_commit_interval": 1.0,
        "producer_max_request_size": max(settings.max_message_bytes * 2, 1024 * 1024),
    }
    conf.update(overrides)
    os.makedirs(conf["datadir"], exist_ok=True)
    app = faust.App(app_id, **conf)
    # Faust's consumer group is the app id: readiness reads that group's committed offsets.
    install_health(app, settings, app_id)
    return app


def raw_topic(app: faust.App, topic: Topic, settings: Settings) -> Any:
    return app.topic(
        topic.full_name(settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def bind_stage(
    app: faust.App,
    topic: Topic,
    settings: Settings,
    factory: RunnerFactory,
    *,
    concurrency: int = 1,
    on_outcome: Callable[[RawMessage, Any], Awaitable[None]] | None = None,
) -> Any:
    """Declare the stage's agent on ``topic``; ``factory`` opens the runner and its adapters.
    The worker has up to ``settings.stage_in_flight`` events in hand (at least
    ``concurrency``), of which ``concurrency`` run their handler at once."""

    @asynccontextmanager
    async def bounded() -> AsyncIterator[StageRunner]:
        async with factory() as runner:
            yield runner if runner.slots is not None else replace(runner, slots=concurrency)

    shared: Shared[StageRunner] = Shared(bounded)
    progress = progress_of(app)
    order: AckOrder[tuple[Any, Any]] = AckOrder()

    def rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        order.rebalanced()

    app.on_partitions_revoked.connect(rebalanced)

    async def agent(stream: Any) -> AsyncIterator[Any]:
        runner = await shared.acquire()
        try:
            # Acked by hand once handled, in offset order (ack_order.py): Faust acks an
            # event it gave out even when its handling is cancelled (a SIGTERM) or
            # raises, which would commit the offset over an event nobody finished.
            # Unacked, it goes to the partition's next owner.
            async for record in stream.noack().events():
                token = progress.begin(runner.deadline_s)
                m = record.message
                msg = RawMessage(
                    topic=m.topic,
                    value=m.value,
                    key=m.key,
                    headers=tuple((k, v) for k, v in (m.headers or ())),
                    partition=m.partition,
                    offset=m.offset,
                )
                ticket = order.begin((stream, record), (m.topic, m.partition), m.offset)
                try:
                    outcome = await runner.process(msg)
                    if on_outcome is not None:
                        await on_outcome(msg, outcome)
                finally:
                    progress.end(token, runner.stage)
                for owner, done in order.finish(ticket):
                    await owner.ack(done)
                yield outcome
        finally:
            await shared.release()

    agent.__name__ = f"{topic.name.replace('.', '_')}_agent"
    in_hand = max(concurrency, settings.stage_in_flight)
    return app.agent(raw_topic(app, topic, settings), name=agent.__name__, concurrency=in_hand)(
        agent
    )


class _BoundedWorker(faust.Worker):
    """Faust's worker with a bound on how long it may take to stop. Stopping commits the
    offsets of the events handled and flushes the producer, which wait on Kafka: with the
    broker out of reach a SIGTERM'd worker was seen retrying for half an hour. Past the
    bound the process exits at once; what it had not committed goes to the partition's
    next owner as after any crash."""

    shutdown_timeout_s = 30.0

    def _schedule_shutdown(self, signal: Any) -> None:
        if not self._signal_stop_time:
            bound = threading.Timer(self.shutdown_timeout_s, self._give_up)
            bound.daemon = True  # does not hold up a worker that stopped in time
            bound.start()
        super()._schedule_shutdown(signal)

    def _give_up(self) -> None:
        log.error("not stopped %.0f s after the signal: exiting now", self.shutdown_timeout_s)
        # os._exit unwinds nothing: ffmpeg children and scratch dirs still open go first.
        runner.abandon()
        logging.shutdown()
        os._exit(1)


def run_worker(
    app: faust.App, settings: Settings, prepare: Callable[[], Coroutine[Any, Any, object]]
) -> None:
    """Create topics (and any other start-up preparation), then run the worker until stopped."""
    # The app id is "<prefix>tapedeck-<service>" (create_app): the service logs under its name.
    service = app.conf.id.removeprefix(settings.topic_prefix).removeprefix("tapedeck-")
    configure_logging(service, settings.log_level, settings.log_format,
                      secrets=secrets_of(settings))  # fmt: skip
    asyncio.run(prepare())
    # asyncio.run closed its loop; Faust's worker takes the current one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    # override_logging off: Faust would replace the handler above with its own.
    worker = _BoundedWorker(
        app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False
    )
    worker.shutdown_timeout_s = settings.shutdown_timeout_s
    # Its start-up spinner writes terminal codes to stdout (Faust drops it only when it
    # sets up logging itself): they would corrupt the log stream.
    worker.spinner = None
    worker.execute_from_commandline()

"""Results listener: one consumer per process reading every result topic of the registry
(``TOPICS.results()``: clips, audio, video, merges, jobs).

It has no consumer group on purpose: each API instance waits for the results of its own
requests, which land on any partition, so each instance must read all of them. It starts
at the end of each topic (older results were for requests nobody here waits for) and
resumes from where it was after a restart, so a consumer error loses no result. Each
result goes to the sink with the id its topic is keyed by (``job_id`` or ``request_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from schemas import TOPICS, Event, Topic, decode_event
from services.common.settings import Settings

log = logging.getLogger(__name__)

# Called with a result and the id its topic is keyed by.
Sink = Callable[[Event, str], object]


class ResultsListener:
    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        *,
        client_id: str,
        max_restart_delay_s: float = 30.0,
    ) -> None:
        self.topics: dict[str, Topic] = {
            t.full_name(settings.topic_prefix): t for t in TOPICS.results()
        }
        self._bootstrap = settings.kafka_bootstrap
        self._max_bytes = settings.max_message_bytes
        self._client_id = client_id
        self._sink = sink
        self._max_restart_delay_s = max_restart_delay_s
        self._ready = asyncio.Event()
        self._positions: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """True while partitions are assigned and positioned: a result produced from now
        on will be seen."""
        return self._ready.is_set()

    async def start(self, ready_timeout_s: float = 30.0) -> bool:
        """Start reading; returns whether it became ready within ``ready_timeout_s``.

        Not ready in time is logged, not raised: the listener keeps trying in the
        background and until then misses simply answer 202.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="results-listener")
        try:
            await asyncio.wait_for(self._ready.wait(), ready_timeout_s)
        except TimeoutError:
            log.warning("results listener not ready after %.0fs", ready_timeout_s)
            return False
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ping(self, timeout_s: float) -> None:
        """Raises unless the cluster answers a metadata request."""
        consumer = self._consumer
        if consumer is None:
            raise ConnectionError("results listener has no consumer")
        await asyncio.wait_for(consumer.topics(), timeout_s)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("results listener failed; restarting in %.1fs", delay)
            self._ready.clear()
            if time.monotonic() - started > 60:
                delay = 0.5  # it ran fine for a while: this is a new incident
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_restart_delay_s)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            # Notices the topic (or added partitions) within seconds, not the default 5 min.
            metadata_max_age_ms=10_000,
            max_partition_fetch_bytes=max(self._max_bytes * 2, 1024 * 1024),
        )
        self._consumer = consumer
        try:
            await consumer.start()
            await self._position(consumer)
            self._ready.set()
            log.info("results listener ready on %s", ", ".join(sorted(self.topics)))
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        self._handle(record.value, tp, record.offset)
                        self._positions[tp] = record.offset + 1
        finally:
            self._ready.clear()
            self._consumer = None
            await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        # Without a group, start() assigns every partition of the topics that exist; one
        # not created yet fails this try and the run loop tries again, so "ready" always
        # covers every result topic.
        assigned = consumer.assignment()
        missing = set(self.topics) - {tp.topic for tp in assigned}
        if missing:
            raise RuntimeError(f"no partitions of {', '.join(sorted(missing))} assigned")
        fresh = [tp for tp in assigned if tp not in self._positions]
        for tp in assigned:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
        if fresh:
            await consumer.seek_to_end(*fresh)
        # position() resolves each offset now; a lazy reset could skip a result produced
        # between "ready" and the first fetch.
        for tp in assigned:
            self._positions[tp] = await consumer.position(tp)

    def _handle(self, value: bytes | None, tp: TopicPartition, offset: int) -> None:
        topic = self.topics.get(tp.topic)
        if topic is None or value is None or len(value) > self._max_bytes:
            return
        try:
            event = decode_event(value)
        except Exception as exc:
            # Not ours to dead-letter: the producing stage's own consumers deal with it.
            log.debug(
                "skipping undecodable record %s[%d]@%d: %s", tp.topic, tp.partition, offset, exc
            )
            return
        if event.event_type in topic.event_types:
            try:
                self._sink(event, getattr(event, topic.key_field))
            except Exception:
                # Re-reading the record after a restart would fail the same way.
                log.exception("result sink failed on %s@%d", tp, offset)

"""Kafka topic declarations: which events live where, keyed by what.

Pure data. The admin code that creates topics and the services that produce
and consume all read this, so a topic is declared exactly once, here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Literal

from schemas.envelope import Event
from schemas.registry import EVENT_MODELS, EVENT_TYPES, UnknownEventType

KeyField = Literal["job_id", "request_id"]

TOPIC_NAMESPACE = "tapedeck."
DLQ_SUFFIX = ".dlq"
RESULTS_SUFFIX = ".results"
DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_RETENTION_MS = 7 * DAY_MS
# Dead letters wait for a human, who may be on holiday.
DLQ_RETENTION_MS = 14 * DAY_MS

_NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


@dataclass(frozen=True)
class Topic:
    name: str
    key_field: KeyField
    event_types: tuple[str, ...]
    partitions: int
    retention_ms: int | None = DEFAULT_RETENTION_MS
    """None leaves retention to the broker default."""
    compacted: bool = False

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name) or len(self.name) > 200:
            raise ValueError(f"bad topic name {self.name!r}")
        if self.partitions < 1:
            raise ValueError(f"{self.name}: partitions must be >= 1")
        if self.retention_ms is not None and self.retention_ms <= 0:
            raise ValueError(f"{self.name}: retention_ms must be positive or None")
        if len(set(self.event_types)) != len(self.event_types):
            raise ValueError(f"{self.name}: event type listed twice")

    def full_name(self, prefix: str = "") -> str:
        """Name on the cluster; ``prefix`` carries its own separator, e.g. ``"dev-"``."""
        return prefix + self.name

    def dlq_name(self, prefix: str = "") -> str:
        return self.full_name(prefix) + DLQ_SUFFIX

    def dlq(self) -> Topic:
        """Spec of this topic's dead-letter topic.

        It lists no event types: dead letters are raw, possibly undecodable,
        copies of the original messages, forwarded with their original key.
        """
        return replace(
            self,
            name=self.name + DLQ_SUFFIX,
            event_types=(),
            retention_ms=DLQ_RETENTION_MS,
            compacted=False,
        )

    def key_for(self, event: Event) -> bytes:
        """Partition key, so every event of one job or request stays in order."""
        if event.event_type not in self.event_types:
            raise ValueError(f"{event.event_type!r} does not belong on {self.name}")
        key: str = getattr(event, self.key_field)
        return key.encode()

    def config(self) -> dict[str, str]:
        """Topic-level configs for the admin client."""
        config = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


def attr_name(topic_name: str) -> str:
    """``tapedeck.clip.requests`` -> ``clip_requests``."""
    return topic_name.removeprefix(TOPIC_NAMESPACE).replace(".", "_").replace("-", "_")


@dataclass(frozen=True)
class TopicRegistry:
    # Named fields rather than a dict so a typo in TOPICS.<name> fails mypy.
    audio_jobs: Topic
    audio_results: Topic
    video_jobs: Topic
    video_results: Topic
    clip_requests: Topic
    clip_results: Topic
    merge_requests: Topic
    merge_results: Topic
    jobs_requests: Topic
    jobs_results: Topic

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for attr, topic in self._items():
            if attr_name(topic.name) != attr:
                raise ValueError(f"{attr} holds {topic.name}; the names must agree")
            if topic.name in seen:
                raise ValueError(f"topic {topic.name} declared twice")
            seen.add(topic.name)
        self._by_event  # noqa: B018 - built now so a duplicate fails at import

    def _items(self) -> Iterator[tuple[str, Topic]]:
        for field in fields(self):
            yield field.name, getattr(self, field.name)

    @cached_property
    def _by_event(self) -> dict[str, Topic]:
        by_event: dict[str, Topic] = {}
        for topic in self:
            for event_type in topic.event_types:
                if event_type in by_event:
                    raise ValueError(
                        f"{event_type} is on both {by_event[event_type].name} and {topic.name}"
                    )
                by_event[event_type] = topic
        return by_event

    def __iter__(self) -> Iterator[Topic]:
        for _, topic in self._items():
            yield topic

    def __len__(self) -> int:
        return len(fields(self))

    def __getitem__(self, name: str) -> Topic:
        """Look up by topic name (``tapedeck.clip.requests``), without prefix."""
        for topic in self:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def for_event(self, event_type: str) -> Topic:
        try:
            return self._by_event[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def event_types(self) -> frozenset[str]:
        return frozenset(self._by_event)

    def dlqs(self) -> tuple[Topic, ...]:
        return tuple(topic.dlq() for topic in self)

    def results(self) -> tuple[Topic, ...]:
        """The outcome topics (``*.results``): what request/reply waiters listen to."""
        return tuple(topic for topic in self if topic.name.endswith(RESULTS_SUFFIX))


TOPICS = TopicRegistry(
    audio_jobs=Topic(
        "tapedeck.audio.jobs",
        key_field="job_id",
        event_types=("audio.job.submitted",),
        partitions=6,
    ),
    audio_results=Topic(
        "tapedeck.audio.results",
        key_field="job_id",
        event_types=("audio.rendered", "audio.failed"),
        partitions=6,
    ),
    video_jobs=Topic(
        "tapedeck.video.jobs",
        key_field="job_id",
        event_types=("video.job.submitted",),
        partitions=3,
    ),
    video_results=Topic(
        "tapedeck.video.results",
        key_field="job_id",
        event_types=("video.rendered",),
        partitions=3,
    ),
    # Clips are interactive and the busiest path, so they get the most partitions.
    clip_requests=Topic(
        "tapedeck.clip.requests",
        key_field="request_id",
        event_types=("clip.requested",),
        partitions=12,
    ),
    clip_results=Topic(
        "tapedeck.clip.results",
        key_field="request_id",
        event_types=("clip.ready", "clip.failed"),
        partitions=12,
    ),
    merge_requests=Topic(
        "tapedeck.merge.requests",
        key_field="job_id",
        event_types=("merge.requested",),
        partitions=3,
    ),
    merge_results=Topic(
        "tapedeck.merge.results",
        key_field="job_id",
        event_types=("merge.completed", "merge.failed"),
        partitions=3,
    ),
    jobs_requests=Topic(
        "tapedeck.jobs.requests",
        key_field="job_id",
        event_types=("job.requested",),
        partitions=6,
    ),
    jobs_results=Topic(
        "tapedeck.jobs.results",
        key_field="job_id",
        event_types=("job.completed", "job.failed"),
        partitions=6,
    ),
)


def _check_against_models(registry: TopicRegistry) -> None:
    placed = registry.event_types()
    if placed != EVENT_TYPES:
        raise RuntimeError(
            "topics out of step with event models: "
            f"unplaced={sorted(EVENT_TYPES - placed)} unknown={sorted(placed - EVENT_TYPES)}"
        )
    for (event_type, _), model in EVENT_MODELS.items():
        topic = registry.for_event(event_type)
        if topic.key_field not in model.model_fields:
            raise RuntimeError(f"{event_type} has no {topic.key_field} to key {topic.name} by")


_check_against_models(TOPICS)

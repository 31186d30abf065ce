"""Bytes on a topic -> typed event, or a dead letter with the reason.

Nothing a producer sends may crash an agent: every way a message can be unreadable
becomes a ``DecodeError`` naming what is wrong, and the caller routes the original bytes
to the topic's DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas import Event, Topic, UnknownEventType, UnsupportedSchemaVersion, decode_event
from schemas.dlq import (
    HEADER_ATTEMPTS,
    HEADER_FIRST_SEEN,
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
    dlq_headers,
)


@dataclass(frozen=True)
class RawMessage:
    """One record as it came off Kafka; transport-neutral so handlers stay testable."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int = -1
    offset: int = -1

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class DecodeError(Exception):
    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


@dataclass(frozen=True)
class Codec:
    topic: Topic
    max_bytes: int
    accepted: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_topic(cls, topic: Topic, max_bytes: int) -> Codec:
        return cls(topic, max_bytes, frozenset(topic.event_types))

    def decode(self, msg: RawMessage) -> Event:
        value = msg.value
        if value is None:
            raise DecodeError("empty message (tombstone) on an event topic")
        if len(value) > self.max_bytes:
            raise DecodeError(
                f"message of {len(value)} bytes exceeds the {self.max_bytes} byte limit"
            )
        try:
            event = decode_event(value)
        except UnknownEventType as exc:
            raise DecodeError(str(exc), exc) from exc
        except UnsupportedSchemaVersion as exc:
            raise DecodeError(str(exc), exc) from exc
        except ValidationError as exc:
            raise DecodeError(_summarise(exc), exc) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"not valid JSON: {exc}", exc) from exc
        if event.event_type not in self.accepted:
            raise DecodeError(
                f"event_type {event.event_type!r} does not belong on topic {self.topic.name} "
                f"(expected one of {sorted(self.accepted)})"
            )
        return event

    def read(self, msg: RawMessage) -> Event:
        """A record as a consumer takes it off the topic: :meth:`decode`, then its key.
        A record keyed otherwise than by its event's key field lands on another partition
        than the rest of its job, out of order with them, so it is as unreadable as bad JSON."""
        event = self.decode(msg)
        expected = self.topic.key_for(event)
        if msg.key is None:
            raise DecodeError(
                f"message has no key (expected the event's {self.topic.key_field}, "
                f"{_quote(expected)})"
            )
        if msg.key != expected:
            raise DecodeError(
                f"message key {_quote(msg.key)} is not the event's {self.topic.key_field}, "
                f"{_quote(expected)}"
            )
        return event


def _quote(key: bytes, limit: int = 64) -> str:
    text = key.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _summarise(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"not valid JSON: {errors[0]['msg'].removeprefix('Invalid JSON: ')}"
    parts = []
    for err in errors[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "<message>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "invalid event: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def event_headers(event: Event) -> list[tuple[str, bytes]]:
    """Routing facts a consumer can read without parsing the value."""
    return [
        ("event_type", event.event_type.encode()),
        ("schema_version", str(event.schema_version).encode()),
        ("correlation_id", event.correlation_id.encode()),
    ]


def dead_letter_headers(
    msg: RawMessage, *, error: str, stage: str, exception: BaseException | str
) -> list[tuple[str, bytes]]:
    """DLQ headers; a message replayed from a DLQ keeps its first_seen and counts attempts."""
    first_seen = datetime.now(UTC)
    raw_first = msg.header(HEADER_FIRST_SEEN)
    if raw_first:
        try:
            first_seen = datetime.fromisoformat(raw_first.decode())
        except ValueError:
            pass
    attempts = 1
    raw_attempts = msg.header(HEADER_ATTEMPTS)
    if raw_attempts and raw_attempts.isdigit():
        attempts = int(raw_attempts) + 1
    origin = [
        (HEADER_ORIGINAL_TOPIC, msg.topic.encode()),
        (HEADER_ORIGINAL_PARTITION, str(msg.partition).encode()),
        (HEADER_ORIGINAL_OFFSET, str(msg.offset).encode()),
    ]
    return (
        dlq_headers(
            error=error, stage=stage, exception=exception, first_seen=first_seen, attempts=attempts
        )
        + origin
    )

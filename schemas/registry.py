"""Every event model, looked up by (event_type, schema_version), and decoding."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.audio import AudioFailed, AudioJobSubmitted, AudioRendered
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.envelope import Event
from schemas.job import JobCompleted, JobFailed, JobRequested
from schemas.merge import MergeCompleted, MergeFailed, MergeRequested
from schemas.video import VideoJobSubmitted, VideoRendered

_MODELS: tuple[type[Event], ...] = (
    AudioJobSubmitted,
    AudioRendered,
    AudioFailed,
    VideoJobSubmitted,
    VideoRendered,
    ClipRequested,
    ClipReady,
    ClipFailed,
    MergeRequested,
    MergeCompleted,
    MergeFailed,
    JobRequested,
    JobCompleted,
    JobFailed,
)


def _key(model: type[Event]) -> tuple[str, int]:
    return (
        model.model_fields["event_type"].default,
        model.model_fields["schema_version"].default,
    )


EVENT_MODELS: dict[tuple[str, int], type[Event]] = {_key(model): model for model in _MODELS}
if len(EVENT_MODELS) != len(_MODELS):
    raise RuntimeError("two event models claim the same (event_type, schema_version)")

EVENT_TYPES: frozenset[str] = frozenset(event_type for event_type, _ in EVENT_MODELS)

# Discriminated by event_type alone, which is enough while every type has one
# version. Once a second version exists use decode_event, which reads both.
AnyEvent = Annotated[
    AudioJobSubmitted
    | AudioRendered
    | AudioFailed
    | VideoJobSubmitted
    | VideoRendered
    | ClipRequested
    | ClipReady
    | ClipFailed
    | MergeRequested
    | MergeCompleted
    | MergeFailed
    | JobRequested
    | JobCompleted
    | JobFailed,
    Field(discriminator="event_type"),
]


class UnknownEventType(KeyError):
    """No model exists for this event_type at any version."""

    def __init__(self, event_type: str) -> None:
        super().__init__(event_type)
        self.event_type = event_type

    def __str__(self) -> str:
        known = ", ".join(sorted(EVENT_TYPES))
        return f"unknown event_type {self.event_type!r} (known: {known})"


class UnsupportedSchemaVersion(KeyError):
    """The event_type is known, but not at this schema_version."""

    def __init__(self, event_type: str, version: int) -> None:
        super().__init__(event_type, version)
        self.event_type = event_type
        self.version = version
        self.supported = supported_versions(event_type)

    def __str__(self) -> str:
        return (
            f"{self.event_type!r} has no schema_version {self.version!r} "
            f"(supported: {list(self.supported)})"
        )


def supported_versions(event_type: str) -> tuple[int, ...]:
    return tuple(sorted(v for t, v in EVENT_MODELS if t == event_type))


def model_for(event_type: str, version: int) -> type[Event]:
    try:
        return EVENT_MODELS[(event_type, version)]
    except KeyError:
        if event_type not in EVENT_TYPES:
            raise UnknownEventType(event_type) from None
        raise UnsupportedSchemaVersion(event_type, version) from None


class _Header(BaseModel):
    """Just enough of a message to choose its model."""

    model_config = ConfigDict(strict=True, extra="ignore")

    event_type: str
    schema_version: int


def decode_event(raw: bytes | str) -> Event:
    """Parse a message of any type and version from its JSON bytes.

    Raises pydantic.ValidationError for malformed messages and
    UnknownEventType / UnsupportedSchemaVersion for ones nobody can read yet.
    Use this rather than ``model_validate`` on a dict: strict validation only
    accepts UUID and datetime *strings* when it parses JSON itself.
    """
    header = _Header.model_validate_json(raw)
    return model_for(header.event_type, header.schema_version).model_validate_json(raw)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json().encode()

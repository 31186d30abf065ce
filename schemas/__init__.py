"""Tapedeck's event contracts: typed, versioned events and the topics they travel on.

Import from the submodules for the rest (payload parts, Literal aliases, DLQ headers).
"""

from schemas.envelope import Event, JobEvent, RequestEvent
from schemas.errors import ErrorInfo
from schemas.ids import PlainId, S3Key, is_plain_id
from schemas.registry import (
    EVENT_MODELS,
    EVENT_TYPES,
    AnyEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode_event,
    encode_event,
    model_for,
)
from schemas.topics import TOPICS, Topic

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "TOPICS",
    "AnyEvent",
    "ErrorInfo",
    "Event",
    "JobEvent",
    "PlainId",
    "RequestEvent",
    "S3Key",
    "Topic",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "decode_event",
    "encode_event",
    "is_plain_id",
    "model_for",
]

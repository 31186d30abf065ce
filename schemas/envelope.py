"""Base models and the envelope every event carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.ids import PlainId, TraceId

# Fields a message on the wire must state even though Python callers get
# defaults: a consumer cannot pick a model for a message that omits them.
WIRE_REQUIRED = ("event_type", "schema_version")


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""Timezone-aware datetime, normalised to UTC; naive values are rejected."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_correlation_id() -> str:
    return uuid4().hex


class StrictModel(BaseModel):
    """No coercion, no unknown fields, no mutation after construction."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _require_wire_fields(schema: dict[str, Any], cls: type) -> None:
    required = schema.setdefault("required", [])
    for name in WIRE_REQUIRED:
        if name not in required:
            required.append(name)


class Event(StrictModel):
    """Envelope fields; concrete events pin ``event_type`` and ``schema_version``."""

    model_config = ConfigDict(json_schema_extra=_require_wire_fields)

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: int
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    tenant_id: PlainId
    correlation_id: TraceId = Field(default_factory=new_correlation_id)
    producer: PlainId = Field(description="Name of the service that emitted the event.")

    # An after-validator on purpose: a model "before" validator hands pydantic
    # the parsed dict, and strict mode then refuses ISO datetime strings.
    @model_validator(mode="after")
    def _wire_fields_present(self, info: ValidationInfo) -> Self:
        if info.mode == "json":
            missing = [name for name in WIRE_REQUIRED if name not in self.model_fields_set]
            if missing:
                raise ValueError(f"message must state {' and '.join(missing)}")
        return self

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_is_int(cls, value: Any) -> Any:
        # Literal[1] on its own accepts True and 1.0, which compare equal to 1.
        if type(value) is not int:
            raise ValueError("schema_version must be an integer")
        return value


class JobEvent(Event):
    """An event keyed by the job it belongs to."""

    job_id: PlainId


class RequestEvent(Event):
    """An event keyed by the request it answers (clips are requests, not jobs)."""

    request_id: PlainId

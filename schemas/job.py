"""The public job intake and its outcome, whatever the kind of job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from schemas.audio import AudioJobFields
from schemas.clip import ClipFields
from schemas.envelope import JobEvent, StrictModel
from schemas.errors import ErrorInfo
from schemas.ids import NonEmptyStr
from schemas.merge import MergeFields
from schemas.production import ProductionFields

JobKind = Literal["audio", "clip", "merge", "production"]

# The discriminator is ``job_kind``, not ``kind``: the audio payload already
# has a ``kind`` (music/sfx/voiceover) and must keep the same fields as
# ``audio.job.submitted``.
SPEC_DISCRIMINATOR = "job_kind"


def _require_discriminator(schema: dict[str, Any], cls: type) -> None:
    required = schema.setdefault("required", [])
    if SPEC_DISCRIMINATOR not in required:
        required.append(SPEC_DISCRIMINATOR)


class JobSpecBase(StrictModel):
    # Python callers get the default; a message must state it to be decoded.
    model_config = ConfigDict(json_schema_extra=_require_discriminator)

    def payload(self) -> dict[str, Any]:
        """Field values without the discriminator, to build the stage event.

        Nested models stay models, so strict validation accepts them as they are:
        ``AudioJobSubmitted(job_id=..., tenant_id=..., producer=..., **spec.payload())``.
        """
        return {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name != SPEC_DISCRIMINATOR
        }


class AudioJobSpec(JobSpecBase, AudioJobFields):
    job_kind: Literal["audio"] = "audio"


class ClipJobSpec(JobSpecBase, ClipFields):
    job_kind: Literal["clip"] = "clip"


class MergeJobSpec(JobSpecBase, MergeFields):
    job_kind: Literal["merge"] = "merge"


class ProductionJobSpec(JobSpecBase, ProductionFields):
    job_kind: Literal["production"] = "production"


JobSpec = Annotated[
    AudioJobSpec | ClipJobSpec | MergeJobSpec | ProductionJobSpec,
    Field(discriminator=SPEC_DISCRIMINATOR),
]


class JobRequested(JobEvent):
    """A job came in through the public intake."""

    event_type: Literal["job.requested"] = "job.requested"
    schema_version: Literal[1] = 1
    spec: JobSpec
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="A retried submission with the same key (within 24 h) is the same job.",
    )  # fmt: skip


class JobCompleted(JobEvent):
    """A job finished; ``outputs`` names what it produced."""

    event_type: Literal["job.completed"] = "job.completed"
    schema_version: Literal[1] = 1
    job_kind: NonEmptyStr
    outputs: dict[str, str] = Field(description="Output name -> S3 key or URL.")
    version: int = Field(default=1, ge=1, description="Result versions count up on retries.")
    audio_status: Literal["COMPLETED", "FAILED", "NOT_REQUESTED"] | None = None
    audio_error: str | None = Field(default=None, description="Why the audio failed.")


class JobFailed(JobEvent):
    """A job gave up."""

    event_type: Literal["job.failed"] = "job.failed"
    schema_version: Literal[1] = 1
    job_kind: NonEmptyStr
    error: ErrorInfo

"""Audio generation: job submission and its results."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from schemas.envelope import JobEvent, StrictModel
from schemas.errors import ErrorInfo
from schemas.ids import NonEmptyStr, PlainId, S3Key

AudioTier = Literal["basic", "standard", "premium"]
AudioKind = Literal["music", "sfx", "voiceover"]
AudioProvider = Literal["fal", "replicate", "elevenlabs", "local"]
AudioFormat = Literal["mp3", "wav"]
SampleRate = Literal[16000, 22050, 24000, 32000, 44100, 48000]
ErrorStrategy = Literal["continue_with_silence", "halt"]

MAX_SCENE_SECONDS = 600.0


class Scene(StrictModel):
    # The one rule below that a JSON Schema can state too: a duration, one way or another.
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["duration_s"]},
                                     {"required": ["video_duration_s"]}]}
    )  # fmt: skip

    index: int = Field(ge=0)
    prompt: NonEmptyStr
    duration_s: float | None = Field(
        default=None, gt=0, le=MAX_SCENE_SECONDS,
        description="Length of the scene's audio; defaults to its video's duration.",
    )  # fmt: skip
    video_duration_s: float | None = Field(
        default=None, gt=0, le=MAX_SCENE_SECONDS, description="Duration of the scene's video."
    )
    text: NonEmptyStr | None = Field(default=None, description="Script; voiceover only.")

    @model_validator(mode="after")
    def _has_a_duration(self) -> Self:
        if self.duration_s is None and self.video_duration_s is None:
            raise ValueError("a scene needs duration_s or video_duration_s")
        return self

    @property
    def seconds(self) -> float:
        """What the scene's audio lasts: its own duration, else its video's."""
        return self.duration_s if self.duration_s is not None else float(self.video_duration_s or 0)


class AudioParams(StrictModel):
    format: AudioFormat = "mp3"
    sample_rate: SampleRate = 44100
    continuation: bool = Field(
        default=True, description="Condition each scene on the previous one's audio."
    )
    error_strategy: ErrorStrategy = "continue_with_silence"
    enhance_prompt: bool = Field(
        default=True, description="Add the kind's production words to each scene's prompt."
    )


class AudioJobFields(StrictModel):
    """Payload shared by ``audio.job.submitted`` and the public audio job spec."""

    tier: AudioTier
    kind: AudioKind
    provider: AudioProvider | None = Field(default=None, description="None: tier decides.")
    model: NonEmptyStr | None = None
    scenes: list[Scene] = Field(min_length=1)
    params: AudioParams = Field(default_factory=AudioParams)
    video_job_id: PlainId | None = None
    attempt: int = Field(
        default=1, ge=1, description="Regenerations of the job's audio count up from 1."
    )
    cache: bool = Field(
        default=True, description="Reuse audio generated before for the same input."
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _scenes_consistent(self) -> Self:
        indexes = [scene.index for scene in self.scenes]
        if len(set(indexes)) != len(indexes):
            raise ValueError("scene indexes must be unique")
        if self.kind == "voiceover":
            silent = [scene.index for scene in self.scenes if scene.text is None]
            if silent:
                raise ValueError(f"voiceover scenes need text (missing for {silent})")
        return self


class AudioJobSubmitted(AudioJobFields, JobEvent):
    """A validated audio job, ready for the audio agent."""

    event_type: Literal["audio.job.submitted"] = "audio.job.submitted"
    schema_version: Literal[1] = 1


class AudioSegment(StrictModel):
    scene_index: int = Field(ge=0)
    s3_key: S3Key
    duration_s: float = Field(gt=0)
    provider: AudioProvider
    model: str | None = None
    cached: bool
    silent_fallback: bool = Field(description="Silence stands in for a failed scene.")
    prompt: str | None = Field(default=None, description="The scene's prompt as submitted.")
    sent_prompt: str | None = Field(default=None, description="The prompt sent to the provider.")
    request_id: str | None = Field(default=None, description="The provider's request id.")
    error: ErrorInfo | None = Field(default=None, description="Why a scene fell back to silence.")


class AudioRendered(JobEvent):
    """Every scene of an audio job has audio (possibly silence)."""

    event_type: Literal["audio.rendered"] = "audio.rendered"
    schema_version: Literal[1] = 1
    segments: list[AudioSegment] = Field(min_length=1)
    attempt: int = Field(default=1, ge=1)
    soundtrack_key: S3Key | None = Field(
        default=None, description="All segments joined, when the job asked for continuation."
    )


class AudioFailed(JobEvent):
    """An audio job gave up."""

    event_type: Literal["audio.failed"] = "audio.failed"
    schema_version: Literal[1] = 1
    error: ErrorInfo
    attempt: int = Field(default=1, ge=1)

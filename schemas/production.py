"""The production job: videos (scene by scene, one for the whole job, or made upstream)
joined into one MP4 with AI audio, which fails on its own without taking the video down."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from schemas.audio import AudioKind, AudioTier, ErrorStrategy
from schemas.envelope import StrictModel
from schemas.ids import NonEmptyStr, S3Key
from schemas.merge import SyncMode

MAX_SCENES = 50
MAX_SCENE_SECONDS = 600.0
# http(s) only; which hosts are allowed is the submitter's check (no private addresses).
CALLBACK_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"


class ProductionScene(StrictModel):
    prompt: NonEmptyStr = Field(max_length=2000)
    duration_s: float = Field(gt=0, le=MAX_SCENE_SECONDS, allow_inf_nan=False)
    text: NonEmptyStr | None = Field(
        default=None, max_length=10_000, description="Voiceover script for this scene."
    )
    video: S3Key | None = Field(
        default=None,
        description="The scene's video: a key under the tenant's ingest prefix or an upload.",
    )


class UpstreamVideo(StrictModel):
    """The team's own video generator makes the video: Tapedeck emits
    ``video.job.submitted`` and waits for ``video.rendered``."""

    source: Literal["upstream"] = "upstream"
    width: int = Field(default=1280, gt=0, le=7680)
    height: int = Field(default=720, gt=0, le=4320)


class Feature(StrictModel):
    audio: bool = True
    audio_tier: AudioTier = "basic"
    voiceover: bool = Field(default=False, description="A voiceover from the scenes' text.")


class ProductionAudioParams(StrictModel):
    kind: AudioKind = "music"
    fade_duration: float = Field(default=1.0, ge=0, le=10, allow_inf_nan=False)
    sync_mode: SyncMode = "trim"
    merge_with_video: bool = Field(
        default=True, description="Mux the soundtrack onto the video (else deliver apart)."
    )
    error_strategy: ErrorStrategy = "continue_with_silence"
    prompt: NonEmptyStr | None = Field(
        default=None, max_length=2000, description="Overrides the job's prompt for the audio."
    )
    loudness: float | None = Field(
        default=-16.0, ge=-40, le=-5, description="Integrated LUFS target; null: off."
    )


class ProductionFields(StrictModel):
    prompt: NonEmptyStr = Field(max_length=2000)
    duration_seconds: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False)
    scenes: list[ProductionScene] = Field(default_factory=list, max_length=MAX_SCENES)
    video: S3Key | UpstreamVideo | None = Field(
        default=None, description="One video for the whole job, or {source: upstream}."
    )
    feature: Feature = Field(default_factory=Feature)
    audio_params: ProductionAudioParams = Field(default_factory=ProductionAudioParams)
    callback_url: str | None = Field(default=None, max_length=2048, pattern=CALLBACK_URL_PATTERN)
    callback_stages: bool = Field(
        default=False, description="Also POST to callback_url when each stage ends."
    )

    @model_validator(mode="after")
    def _one_source_of_video(self) -> Self:
        scene_videos = [s.video for s in self.scenes if s.video is not None]
        if self.video is not None and scene_videos:
            raise ValueError("give either one video for the job or a video per scene, not both")
        if self.video is None and not scene_videos:
            raise ValueError("a production job needs a video: per scene, one, or upstream")
        if scene_videos and len(scene_videos) != len(self.scenes):
            missing = [i for i, s in enumerate(self.scenes) if s.video is None]
            raise ValueError(f"scenes {missing} have no video")
        if self.feature.voiceover and any(s.text is None for s in self.scenes):
            raise ValueError("a voiceover needs text on every scene")
        if self.feature.voiceover and not self.scenes:
            raise ValueError("a voiceover needs scenes with text")
        upstream = isinstance(self.video, UpstreamVideo)
        if upstream and self.duration_seconds is None and not self.scenes:
            raise ValueError("an upstream video needs duration_seconds or scenes")
        return self

    def total_seconds(self) -> float | None:
        if self.scenes:
            return sum(s.duration_s for s in self.scenes)
        return self.duration_seconds

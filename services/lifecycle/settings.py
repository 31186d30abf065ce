"""Lifecycle settings."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class LifecycleSettings(Settings):
    # An upstream video generator that never answers: the job fails after this long.
    video_timeout_s: float = Field(3600.0, alias="VIDEO_TIMEOUT_S", gt=0)
    # How often to look for overdue videos and for claimed events a dead worker never sent.
    lifecycle_sweep_s: float = Field(10.0, alias="LIFECYCLE_SWEEP_S", gt=0)
    outbox_grace_s: float = Field(30.0, alias="OUTBOX_GRACE_S", gt=0)
    lifecycle_concurrency: int = Field(4, alias="LIFECYCLE_CONCURRENCY", ge=1, le=64)
    lifecycle_web_port: int | None = Field(None, alias="LIFECYCLE_WEB_PORT")

"""Clipper settings: the shared ones plus how many clips one process cuts at once."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class ClipperSettings(Settings):
    clipper_concurrency: int = Field(4, alias="CLIPPER_CONCURRENCY", ge=1, le=64)
    clipper_web_port: int | None = Field(None, alias="CLIPPER_WEB_PORT")

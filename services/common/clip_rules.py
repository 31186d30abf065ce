"""Clip rules, shared by the clipper and the submitter's cache-hit path.

``plan_clip`` is the single place that decides whether a request is valid and which S3
object answers it, so both paths agree on codes, clamping and keys. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.codes import CLIP_PARAM_CODES, Code
from schemas.ids import is_plain_id
from services.common.episodes import Episode
from services.common.errors import PermanentError
from services.common.keys import clip_key
from services.common.ports import EpisodeRepo

FORMATS = ("mp3", "m4a", "wav")
CODEC_OF_FORMAT = {"mp3": "mp3", "m4a": "aac", "wav": "pcm_s16le"}


class ClipRejected(PermanentError):
    """A request that can never succeed as asked; ``param`` names the offending input."""

    public = True

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param

    @classmethod
    def bad(cls, param: str, message: str) -> ClipRejected:
        """A bad value of a clip parameter, with that parameter's code from the one table."""
        return cls(CLIP_PARAM_CODES[param], message, param)


class EpisodeNotFound(ClipRejected):
    def __init__(self, episode_id: str) -> None:
        super().__init__(Code.EPISODE_NOT_FOUND, f"unknown episode {episode_id!r}", "episode_id")


@dataclass(frozen=True)
class ClipPlan:
    tenant_id: str
    episode_id: str
    start_ms: int
    end_ms: int
    format: str
    accurate: bool
    key: str

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def check_request(episode_id: Any, start_ms: Any, duration_ms: Any, max_duration_ms: int) -> None:
    """Checks that need no episode: ids, types and limits."""
    if not isinstance(episode_id, str) or not is_plain_id(episode_id):
        raise ClipRejected.bad(
            "episode_id",
            "episode_id must be a plain id (letters, digits, '.', '_', '-'; no slashes)",
        )
    for name, value in (("start_ms", start_ms), ("duration_ms", duration_ms)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ClipRejected.bad(name, f"{name} must be an integer number of ms")
    if start_ms < 0:
        raise ClipRejected.bad("start_ms", "start_ms must be >= 0")
    if duration_ms <= 0:
        raise ClipRejected.bad("duration_ms", "duration_ms must be > 0")
    if duration_ms > max_duration_ms:
        raise ClipRejected(
            Code.DURATION_TOO_LONG,
            f"duration_ms {duration_ms} exceeds the maximum of {max_duration_ms} ms",
            "duration_ms",
        )


def plan_clip(
    episode: Episode,
    start_ms: int,
    duration_ms: int,
    fmt: str,
    accurate: bool,
    max_duration_ms: int,
) -> ClipPlan:
    check_request(episode.episode_id, start_ms, duration_ms, max_duration_ms)
    if fmt not in FORMATS:
        raise ClipRejected.bad("format", f"format must be one of {', '.join(FORMATS)}")
    if start_ms >= episode.duration_ms:
        raise ClipRejected(
            Code.START_PAST_END,
            f"start_ms {start_ms} is at or past the episode's end ({episode.duration_ms} ms)",
            "start_ms",
        )
    end_ms = min(start_ms + duration_ms, episode.duration_ms)
    key = clip_key(episode.tenant_id, episode.episode_id, start_ms, end_ms, fmt, accurate=accurate)
    return ClipPlan(episode.tenant_id, episode.episode_id, start_ms, end_ms, fmt, accurate, key)


async def resolve_clip(
    episodes: EpisodeRepo,
    tenant_id: str,
    episode_id: Any,
    start_ms: Any,
    duration_ms: Any,
    fmt: str,
    accurate: bool,
    max_duration_ms: int,
) -> tuple[Episode, ClipPlan]:
    """The tenant's episode and the plan for the clip, or the rule it breaks. Every path
    (HTTP, the topic, the cache warmer) comes through here, so all agree."""
    check_request(episode_id, start_ms, duration_ms, max_duration_ms)
    episode = await episodes.get(tenant_id, episode_id)
    if episode is None:
        raise EpisodeNotFound(episode_id)
    return episode, plan_clip(episode, start_ms, duration_ms, fmt, accurate, max_duration_ms)

"""Clip rules and clip metadata, shared by the clipper and the submitter's cache-hit path.

``plan_clip`` is the single place that decides whether a request is valid and which S3
object answers it, so both paths agree on codes, clamping and keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from schemas.ids import is_plain_id
from services.common.episodes import Episode
from services.common.errors import PermanentError
from services.common.keys import clip_key
from services.common.mongo import Doc

log = logging.getLogger(__name__)

AUDIO_CLIPS = "audio_clips"
REQUEST_LOG = "clip_request_log"
FORMATS = ("mp3", "m4a", "wav")
CONTENT_TYPES = {"mp3": "audio/mpeg", "m4a": "audio/mp4", "wav": "audio/wav"}
CODEC_OF_FORMAT = {"mp3": "mp3", "m4a": "aac", "wav": "pcm_s16le"}


class ClipRejected(PermanentError):
    """A request that can never succeed as asked; ``param`` names the offending input."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param


class EpisodeNotFound(ClipRejected):
    def __init__(self, episode_id: str) -> None:
        super().__init__("episode_not_found", f"unknown episode {episode_id!r}", "episode_id")


@dataclass(frozen=True)
class ClipPlan:
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
        raise ClipRejected(
            "invalid_episode_id",
            "episode_id must be a plain id (letters, digits, '.', '_', '-'; no slashes)",
            "episode_id",
        )
    for name, value in (("start_ms", start_ms), ("duration_ms", duration_ms)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ClipRejected("invalid_time", f"{name} must be an integer number of ms", name)
    if start_ms < 0:
        raise ClipRejected("invalid_time", "start_ms must be >= 0", "start_ms")
    if duration_ms <= 0:
        raise ClipRejected("invalid_duration", "duration_ms must be > 0", "duration_ms")
    if duration_ms > max_duration_ms:
        raise ClipRejected(
            "duration_too_long",
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
        raise ClipRejected(
            "invalid_format", f"format must be one of {', '.join(FORMATS)}", "format"
        )
    if start_ms >= episode.duration_ms:
        raise ClipRejected(
            "start_past_end",
            f"start_ms {start_ms} is at or past the episode's end ({episode.duration_ms} ms)",
            "start_ms",
        )
    end_ms = min(start_ms + duration_ms, episode.duration_ms)
    key = clip_key(episode.episode_id, start_ms, end_ms, fmt, accurate=accurate)
    return ClipPlan(episode.episode_id, start_ms, end_ms, fmt, accurate, key)


# -- metadata ---------------------------------------------------------------------------------

AUDIO_CLIPS_VALIDATOR = {
    "$jsonSchema": {
        "bsonType": "object",
        "required": [
            "episode_id",
            "clip_start_ms",
            "clip_end_ms",
            "s3_key",
            "generated_at",
            "file_size_bytes",
        ],
        "properties": {
            "episode_id": {"bsonType": "string"},
            "clip_start_ms": {"bsonType": ["int", "long"]},
            "clip_end_ms": {"bsonType": ["int", "long"]},
            "s3_key": {"bsonType": "string"},
            "generated_at": {"bsonType": "date"},
            "file_size_bytes": {"bsonType": ["int", "long"]},
            "format": {"bsonType": "string"},
        },
    }
}


def check_clip_doc(doc: Doc) -> None:
    """The validator's rules, applied in process for servers that lack ``$jsonSchema``
    (FerretDB 1.x), so no server lets a malformed clip document in."""
    schema = AUDIO_CLIPS_VALIDATOR["$jsonSchema"]
    for name in schema["required"]:
        if name not in doc:
            raise ValueError(f"audio_clips document misses {name}")
    for name in ("clip_start_ms", "clip_end_ms", "file_size_bytes"):
        if not isinstance(doc[name], int) or isinstance(doc[name], bool):
            raise ValueError(f"audio_clips.{name} must be an int")
    for name in ("episode_id", "s3_key"):
        if not isinstance(doc[name], str):
            raise ValueError(f"audio_clips.{name} must be a string")
    if not isinstance(doc["generated_at"], datetime):
        raise ValueError("audio_clips.generated_at must be a date")


class ClipRepo(Protocol):
    async def find(self, plan: ClipPlan) -> Doc | None: ...

    async def insert(self, plan: ClipPlan, size_bytes: int, generation_ms: int) -> Doc: ...

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None: ...


class ClipStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._clips = db[AUDIO_CLIPS]
        self._log = db[REQUEST_LOG]
        self.server_validates = False

    async def ensure_collections(self) -> None:
        if AUDIO_CLIPS not in await self._db.list_collection_names():
            try:
                await self._db.create_collection(AUDIO_CLIPS, validator=AUDIO_CLIPS_VALIDATOR)
                self.server_validates = True
            except OperationFailure as exc:
                if exc.code == 48:  # NamespaceExists: another process won the race
                    pass
                elif exc.code == 238:  # NotImplemented: FerretDB has no $jsonSchema
                    log.info("server has no $jsonSchema validators; validating in process")
                    await self._db.create_collection(AUDIO_CLIPS)
                else:
                    raise
        # The same range in another format or cut mode is another object: both in the key.
        await self._clips.create_index(
            [
                ("episode_id", 1),
                ("clip_start_ms", 1),
                ("clip_end_ms", 1),
                ("format", 1),
                ("accurate", 1),
            ],
            unique=True,
            name="clip_range_unique",
        )
        await self._log.create_index([("requested_at", 1)])

    async def find(self, plan: ClipPlan) -> Doc | None:
        return await self._clips.find_one(_range_filter(plan))

    async def insert(self, plan: ClipPlan, size_bytes: int, generation_ms: int) -> Doc:
        """Record a generated clip; when another process recorded it first, theirs stands."""
        doc: Doc = {
            "episode_id": plan.episode_id,
            "clip_start_ms": plan.start_ms,
            "clip_end_ms": plan.end_ms,
            "format": plan.format,
            "accurate": plan.accurate,
            "s3_key": plan.key,
            "generated_at": datetime.now(UTC),
            "file_size_bytes": size_bytes,
            "generation_time_ms": generation_ms,
        }
        check_clip_doc(doc)
        try:
            await self._clips.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.find(plan)
            if existing is not None:
                return existing
            raise
        return doc

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None:
        # One insert per request rather than a shared counter: nothing to race on.
        await self._log.insert_one(
            {
                "episode_id": plan.episode_id,
                "clip_start_ms": plan.start_ms,
                "duration_ms": plan.duration_ms,
                "clip_end_ms": plan.end_ms,
                "format": plan.format,
                "accurate": plan.accurate,
                "tenant_id": tenant_id,
                "cache_hit": cache_hit,
                "requested_at": datetime.now(UTC),
            }
        )

    async def most_requested(self, since: timedelta, limit: int) -> list[Doc]:
        """Clip ranges by request count over the last ``since``, most requested first."""
        pipeline: list[Doc] = [
            {"$match": {"requested_at": {"$gte": datetime.now(UTC) - since}}},
            {
                "$group": {
                    "_id": {
                        "episode_id": "$episode_id",
                        "start_ms": "$clip_start_ms",
                        "duration_ms": "$duration_ms",
                        "format": "$format",
                        "accurate": "$accurate",
                    },
                    "count": {"$sum": 1},
                }
            },
            {"$sort": {"count": -1}},
            {"$limit": limit},
        ]
        cursor = await self._log.aggregate(pipeline)
        return [{**d["_id"], "count": d["count"]} async for d in cursor]

    async def prune_requests(self, older_than: timedelta) -> int:
        res = await self._log.delete_many({"requested_at": {"$lt": datetime.now(UTC) - older_than}})
        return res.deleted_count


def _range_filter(plan: ClipPlan) -> Doc:
    return {
        "episode_id": plan.episode_id,
        "clip_start_ms": plan.start_ms,
        "clip_end_ms": plan.end_ms,
        "format": plan.format,
        "accurate": plan.accurate,
    }

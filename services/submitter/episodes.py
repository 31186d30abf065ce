"""Registering episodes for a tenant and reading them back, tenant-scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from schemas.ids import is_plain_id
from services.common.clip_rules import EpisodeNotFound
from services.common.episodes import Episode, EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.keys import InvalidKeyPart
from services.common.media_store import MediaStore
from services.common.ports import EpisodeRepo
from services.common.registration import register_file, register_s3_object


@dataclass(frozen=True)
class EpisodePorts:
    store: EpisodeStore
    media: MediaStore
    ffmpeg: FFmpeg


def new_episode_id() -> str:
    return f"ep-{uuid.uuid4().hex}"


def checked_episode_id(value: str | None) -> str:
    """The id to register under: the given one if usable everywhere an episode id goes
    (keys, events, clip URLs), else InvalidKeyPart."""
    if value is None:
        return new_episode_id()
    if not is_plain_id(value):
        raise InvalidKeyPart(
            "episode_id must be 1-128 of letters, digits, '.', '_', '-', start with a letter "
            "or digit and not contain '..'"
        )
    return value


async def register_upload(
    ports: EpisodePorts, tenant_id: str, path: Path, filename: str | None, episode_id: str | None
) -> Episode:
    return await register_file(
        path,
        episode_id=checked_episode_id(episode_id),
        tenant_id=tenant_id,
        filename=filename,
        store=ports.store,
        media=ports.media,
        ffmpeg=ports.ffmpeg,
    )


async def register_existing(
    ports: EpisodePorts, tenant_id: str, s3_key: str, episode_id: str | None
) -> Episode:
    return await register_s3_object(
        s3_key,
        episode_id=checked_episode_id(episode_id),
        tenant_id=tenant_id,
        store=ports.store,
        media=ports.media,
        ffmpeg=ports.ffmpeg,
    )


async def get_episode(store: EpisodeRepo, tenant_id: str, episode_id: str) -> Episode:
    episode = await store.get(tenant_id, episode_id) if is_plain_id(episode_id) else None
    if episode is None:
        raise EpisodeNotFound(episode_id)
    return episode

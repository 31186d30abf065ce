"""The generation cache: the same input to the same model gives the stored audio back,
with no provider call (and no bill).

The key hashes everything that decides the output: provider, model, kind, the prompt as
sent (normalised), the script, duration, sample rate, format, seed, and for a continued
scene the key of the scene it continues (its audio is part of the input).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

CACHE_PREFIX = "audio/cache/"


@dataclass(frozen=True)
class CacheEntry:
    s3_key: str
    duration_s: float
    request_id: str | None = None
    continuation_state: dict[str, Any] | None = None


class GenerationCache(Protocol):
    async def get(self, key: str) -> CacheEntry | None: ...

    async def put(self, key: str, entry: CacheEntry) -> None: ...


def cache_key(**inputs: Any) -> str:
    """Stable over dict order and float formatting; None values count."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_object_key(key: str, fmt: str) -> str:
    return f"{CACHE_PREFIX}{key}.{fmt}"

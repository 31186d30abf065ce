"""Every provider the agent knows, by name.

The three remote providers are always built, sharing the one ``httpx.AsyncClient`` the
service opens (its connection pool, its lifetime). A provider whose key is missing is
built all the same, so a deployment that routes nothing to it needs no key; routing a
scene to it fails that scene at ``submit`` (before anything is sent) with a permanent
``ProviderRejected``, code ``provider_unavailable``, message "no API key configured for
fal (FAL_KEY)": the provider cannot be reached from this deployment, which retrying will
not change (``provider_quota`` would wrongly say a quota was used up). ``check`` does not
look at keys: it judges the request, and its error blames the caller.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from services.audio_agent.providers.base import Provider
from services.audio_agent.providers.elevenlabs import ElevenLabsProvider
from services.audio_agent.providers.fal import FalProvider
from services.audio_agent.providers.http import Clock, Sleep
from services.audio_agent.providers.replicate import ReplicateProvider
from services.audio_agent.settings import AudioAgentSettings


def build_providers(
    settings: AudioAgentSettings,
    client: httpx.AsyncClient,
    local_provider: Provider | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> dict[str, Provider]:
    providers: dict[str, Provider] = {
        "fal": FalProvider(settings, client, sleep=sleep, clock=clock, rng=rng),
        "replicate": ReplicateProvider(settings, client, sleep=sleep, clock=clock, rng=rng),
        "elevenlabs": ElevenLabsProvider(settings, client, sleep=sleep, clock=clock, rng=rng),
    }
    if local_provider is not None:
        providers[local_provider.name] = local_provider
    return providers

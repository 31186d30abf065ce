"""build_providers: every remote provider is built, with or without its key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from services.audio_agent.providers.base import (
    Generated,
    GenerationRequest,
    OnStatus,
    ProviderRejected,
    Ticket,
)
from services.audio_agent.providers.registry import build_providers
from tests.contract.audio_agent.conftest import settings_for
from tests.support.contract.fal import FalContract

REQUESTS = {
    "fal": GenerationRequest(
        kind="music", model="cassetteai/music-generator", prompt="x", duration_s=12
    ),
    "replicate": GenerationRequest(kind="music", model="large", prompt="x", duration_s=12),
    "elevenlabs": GenerationRequest(
        kind="voiceover", model="eleven_flash_v2_5", prompt="x", duration_s=3, text="Hello."
    ),
}
ENV = {"fal": "FAL_KEY", "replicate": "REPLICATE_API_TOKEN", "elevenlabs": "ELEVENLABS_API_KEY"}


class StubLocal:
    name = "local"

    def check(self, request: GenerationRequest) -> None:
        pass

    async def submit(self, request: GenerationRequest) -> Ticket:
        return Ticket("local", "1")

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        return Generated(dest)

    async def cancel(self, ticket: Ticket) -> None:
        pass


async def test_all_providers_are_built_and_the_local_one_added(client: httpx.AsyncClient) -> None:
    local = StubLocal()
    providers = build_providers(settings_for(), client, local)
    assert sorted(providers) == ["elevenlabs", "fal", "local", "replicate"]
    assert providers["local"] is local
    assert all(p.name == name for name, p in providers.items())
    assert sorted(build_providers(settings_for(), client)) == ["elevenlabs", "fal", "replicate"]


@pytest.mark.parametrize("name", ["fal", "replicate", "elevenlabs"])
async def test_a_provider_without_a_key_fails_every_submit_clearly(
    name: str, client: httpx.AsyncClient
) -> None:
    provider = build_providers(settings_for(), client)[name]
    provider.check(REQUESTS[name])  # the request is fine; the deployment lacks the key
    with pytest.raises(ProviderRejected) as caught:
        await provider.submit(REQUESTS[name])
    assert caught.value.code == "provider_unavailable" and not caught.value.retryable
    assert str(caught.value) == f"no API key configured for {name} ({ENV[name]})"


async def test_providers_share_the_client_passed_in(
    fal: tuple[FalContract, str], client: httpx.AsyncClient
) -> None:
    server, url = fal
    settings = settings_for(
        fal_queue_url=url, fal_key=SecretStr("fal-key-id:fal-key-secret-5f0c1e")
    )
    providers = build_providers(settings, client)
    await providers["fal"].submit(REQUESTS["fal"])
    assert server.counts["submit"] == 1
    assert not client.is_closed

"""Fixtures for the provider contract tests: a contract server per test, a shared httpx
client, a fake clock and sleep (polls and backoffs take no real time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.audio_agent.settings import AudioAgentSettings
from tests.support.contract.elevenlabs import ElevenLabsContract
from tests.support.contract.fal import FalContract
from tests.support.contract.replicate import ReplicateContract
from tests.support.contract.server import FakeTime, serve

# Real timeouts short enough for a slow answer to trip them quickly; the clock and sleep
# the clients see are fake, so polls (1 s doubling to 10 s) and backoffs cost nothing.
READ_TIMEOUT_S = 2.0
SLOW_READ_TIMEOUT_S = 0.15


def listing(folder: Path) -> list[Path]:
    """What a folder holds (a sync helper: async tests may not touch paths directly)."""
    return sorted(folder.iterdir())


def settings_for(**update: Any) -> AudioAgentSettings:
    defaults: dict[str, Any] = {
        "provider_connect_timeout_s": 2.0,
        "provider_read_timeout_s": READ_TIMEOUT_S,
        "provider_max_retries": 3,
        "provider_poll_min_s": 1.0,
        "provider_poll_max_s": 10.0,
        "fal_key": None,
        "replicate_api_token": None,
        "elevenlabs_api_key": None,
    }
    return AudioAgentSettings().model_copy(update={**defaults, **update})


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=True) as c:
        yield c


# One server per provider for the whole session (starting and stopping uvicorn costs
# ~0.2 s); each test gets it reset.
@pytest.fixture(scope="session")
async def _fal_served() -> AsyncIterator[tuple[FalContract, str]]:
    contract = FalContract()
    async with serve(contract.app) as url:
        yield contract, url


@pytest.fixture(scope="session")
async def _replicate_served() -> AsyncIterator[tuple[ReplicateContract, str]]:
    contract = ReplicateContract()
    async with serve(contract.app) as url:
        yield contract, url


@pytest.fixture(scope="session")
async def _elevenlabs_served() -> AsyncIterator[tuple[ElevenLabsContract, str]]:
    contract = ElevenLabsContract()
    async with serve(contract.app) as url:
        yield contract, url


@pytest.fixture
def fal(_fal_served: tuple[FalContract, str]) -> tuple[FalContract, str]:
    _fal_served[0].reset()
    return _fal_served


@pytest.fixture
def replicate(
    _replicate_served: tuple[ReplicateContract, str],
) -> tuple[ReplicateContract, str]:
    _replicate_served[0].reset()
    return _replicate_served


@pytest.fixture
def elevenlabs(
    _elevenlabs_served: tuple[ElevenLabsContract, str],
) -> tuple[ElevenLabsContract, str]:
    _elevenlabs_served[0].reset()
    return _elevenlabs_served

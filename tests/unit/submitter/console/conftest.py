"""The submitter's app (no lifespan, so nothing connects) with the console's ports
replaced by in-memory ones, an operator key and a tenant key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from services.ops.pipeline import PipelineStats
from services.submitter.console.auth import COOKIE, csrf_token
from services.submitter.console.ports import ConsolePorts, get_console_ports
from services.submitter.http.app import create_api
from services.submitter.keys import OPERATOR_ROLE, create_key
from services.submitter.settings import SubmitterSettings
from tests.support.console import (
    FakeDeadLetters,
    FakeJobs,
    failed_audio_job,
    job,
    letter,
    pipeline_figures,
)
from tests.support.fakes import MemoryKeys


@dataclass
class Console:
    client: httpx.AsyncClient
    jobs: FakeJobs
    dead_letters: FakeDeadLetters
    operator_key: str
    tenant_key: str

    def signed_in(self, key: str | None = None) -> dict[str, str]:
        """Headers of a browser holding the session cookie for ``key``."""
        return {"cookie": f"{COOKIE}={key or self.operator_key}"}

    @property
    def csrf(self) -> str:
        return csrf_token(self.operator_key)


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    keys = MemoryKeys()
    _, operator_key = await create_key(keys, "ops", role=OPERATOR_ROLE, name="Ada")
    _, tenant_key = await create_key(keys, "acme")
    jobs = FakeJobs(
        failed_audio_job(), job("job-run", status="RUNNING", progress=40, cancellable=True)
    )
    dead = FakeDeadLetters(
        letter(0, b'{"event_type": "clip.requested", "oops"'),
        letter(1, b'{"event_type": "clip.requested", "episode_id": "ep-1"}'),
    )

    async def pipeline() -> PipelineStats:
        return pipeline_figures()

    app = create_api(SubmitterSettings())
    app.dependency_overrides[get_console_ports] = lambda: ConsolePorts(
        keys=keys, jobs=jobs, dead_letters=dead, pipeline=pipeline
    )
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield Console(client, jobs, dead, operator_key, tenant_key)

"""The fault rig: Toxiproxy in front of Kafka, MongoDB and S3, and a Kafka broker of these
tests' own (restartable, with a listener that advertises the proxy; tests/support/broker.py).

Services get ``proxied`` settings (every server through its proxy); the tests' own reads,
writes and checks use ``direct`` ones, which no fault touches. MongoDB and S3 are the
shared local stack's, reached through a proxy: "down" disables the proxy (connections
refused, open ones cut), so the shared servers never stop.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.common.settings import Settings
from tests.conftest import _cleanup
from tests.reliability.support import Stack, open_stack
from tests.support.broker import PrivateBroker
from tests.support.contract.fal import KEY as FAL_KEY
from tests.support.contract.fal import FalContract
from tests.support.contract.server import serve
from tests.support.pipeline import Pipeline
from tests.support.services import free_port
from tests.support.toxiproxy import Proxy, Toxiproxy, toxiproxy_server

HERE = Path(__file__).resolve().parent
# `make soak` sets it: the long soak runs, and nothing else is skipped for time.
SOAK = os.environ.get("TAPEDECK_SOAK", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability: faults injected into the real stack and service processes"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


@dataclass(frozen=True)
class Rig:
    toxiproxy: Toxiproxy
    broker: PrivateBroker
    kafka: Proxy
    mongo: Proxy
    s3: Proxy


def _host_port(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(",")[0]


@pytest.fixture(scope="session")
def rig(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    home = tmp_path_factory.mktemp("fault-rig")
    with toxiproxy_server(home / "toxiproxy.log") as toxiproxy:
        behind = free_port()
        kafka = toxiproxy.create("kafka", f"127.0.0.1:{behind}")
        mongo = toxiproxy.create("mongo", _host_port(stack.mongo_url))
        s3 = toxiproxy.create("s3", _host_port(stack.s3_endpoint or ""))
        broker = PrivateBroker(home / "kafka", kafka.port, behind)
        broker.start()
        try:
            yield Rig(toxiproxy, broker, kafka, mongo, s3)
        finally:
            broker.stop()


def _names(stack: Settings, rig: Rig) -> Settings:
    """Isolated names (topic prefix, database, S3 prefix) on the rig's broker, with
    MongoDB and S3 reached directly."""
    test_id = uuid.uuid4().hex[:12]
    return stack.model_copy(update={
        "topic_prefix": f"r{test_id}.", "mongo_db": f"r_{test_id}",
        "s3_key_prefix": f"tests/r{test_id}/", "kafka_bootstrap": rig.broker.direct,
    })  # fmt: skip


def _remove(names: Settings, stack: Settings, rig: Rig) -> None:
    rig.toxiproxy.reset()
    asyncio.run(_cleanup(names.model_copy(update={"kafka_bootstrap": stack.kafka_bootstrap})))
    if rig.broker.answers():
        asyncio.run(_delete_topics(names))


def _through_proxies(names: Settings, rig: Rig) -> Settings:
    """The same names, every server through its proxy: what the services get."""
    return names.model_copy(
        update={
            "kafka_bootstrap": rig.kafka.address,
            "mongo_url": f"mongodb://{rig.mongo.address}",
            "s3_endpoint": f"http://{rig.s3.address}",
        }
    )


@pytest.fixture(scope="module")
def direct(stack: Settings, rig: Rig) -> Iterator[Settings]:
    """A module's own names (for a module that starts services of its own), removed after."""
    names = _names(stack, rig)
    yield names
    _remove(names, stack, rig)


@pytest.fixture(scope="module")
def proxied(direct: Settings, rig: Rig) -> Settings:
    return _through_proxies(direct, rig)


# -- the whole pipeline, shared by the modules that fault it and put it back ----------------

# One fal.ai contract server for the standard tier's sound effects; the basic tier stays on
# the offline provider. Provider calls retry twice and time out in 3 s; a scene waits 8 s.
SFX = '{"standard": {"sfx": "fal:cassetteai/sound-effects-generator"}}'
PROVIDER_ENV = {"AUDIO_TIER_MAP": SFX, "FAL_KEY": FAL_KEY, "PROVIDER_MAX_RETRIES": "2",
                "PROVIDER_READ_TIMEOUT_S": "3", "PROVIDER_CONNECT_TIMEOUT_S": "3",
                "PROVIDER_POLL_MIN_S": "0.1", "PROVIDER_POLL_MAX_S": "0.3",
                "SCENE_DEADLINE_S": "8"}  # fmt: skip


@pytest.fixture(scope="session")
async def fal() -> AsyncIterator[tuple[FalContract, str]]:
    contract = FalContract()
    async with serve(contract.app) as url:
        yield contract, url


@pytest.fixture(scope="session")
async def shared(
    stack: Settings, rig: Rig, fal: tuple[FalContract, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:  # fmt: skip
    """Submitter, lifecycle, audio agent, merger and clipper, started once for the modules
    that fault them: starting them takes a while on two cores."""
    names = _names(stack, rig)
    home = tmp_path_factory.mktemp("shared")
    try:
        env = {**PROVIDER_ENV, "FAL_QUEUE_URL": fal[1]}
        async with open_stack(names, _through_proxies(names, rig), home, env=env) as shared:
            yield shared
    finally:
        await asyncio.to_thread(_remove, names, stack, rig)


@pytest.fixture
async def whole(shared: Stack, fal: tuple[FalContract, str]) -> Stack:
    """The shared pipeline with every one of its services running and ready (a test that
    failed half-way may have left one stopped), and the provider answering normally."""
    for worker in list(shared.pipeline.workers.values()):
        if not worker.alive():
            shared.pipeline.restart(worker)
    await shared.pipeline.ready()
    fal[0].reset()
    return shared


@pytest.fixture(autouse=True)
def _no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test on the rig starts and ends with every proxy up and no toxic (tests that
    do not use the rig do not start it)."""
    if not {"rig", "direct", "proxied", "shared"} & set(request.fixturenames):
        yield
        return
    rig: Rig = request.getfixturevalue("rig")
    rig.toxiproxy.reset()
    yield
    rig.toxiproxy.reset()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def pipeline(proxied: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """Services of the test's own (it starts the ones it needs), stopped afterwards."""
    p = Pipeline(proxied, tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


async def _delete_topics(s: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(s.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()

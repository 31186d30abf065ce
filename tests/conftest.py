"""Shared fixtures: the real local stack and per-test isolated names.

Tests under tests/unit run without servers. Tests under tests/integration and tests/e2e
ask for ``settings``, which makes sure the stack answers (starting it with
``scripts/stack up`` when it does not) and hands out a unique topic prefix, database and
S3 key prefix, all removed afterwards.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TIERS = {"unit", "agent", "contract", "integration", "e2e", "deploy"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder names the tier, so a test cannot forget its marker.
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


def _answers(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def stack() -> Settings:
    base = Settings()
    endpoints = [
        base.kafka_bootstrap.split(",")[0],
        base.mongo_url.removeprefix("mongodb://").split("/")[0].split(",")[0],
        (base.s3_endpoint or "").removeprefix("http://").removeprefix("https://").split("/")[0],
    ]
    down = [
        e for e in endpoints if e and not _answers(e.rsplit(":", 1)[0], int(e.rsplit(":", 1)[1]))
    ]
    if down:
        subprocess.run([str(ROOT / "scripts" / "stack"), "up"], check=True)
    return base


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def settings(stack: Settings, test_id: str) -> Iterator[Settings]:
    s = stack.model_copy(
        update={
            "topic_prefix": f"t{test_id}.",
            "mongo_db": f"t_{test_id}",
            "s3_key_prefix": f"tests/{test_id}/",
        }
    )
    yield s
    asyncio.run(_cleanup(s))


async def _cleanup(s: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import AsyncMongoClient

    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(s.mongo_url)
    try:
        await mongo.drop_database(s.mongo_db)
    finally:
        await mongo.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(s.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    await asyncio.to_thread(_delete_s3_prefix, s)


def _delete_s3_prefix(s: Settings) -> None:
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=s.s3_endpoint,
        region_name=s.s3_region,
        aws_access_key_id=s.s3_access_key.get_secret_value(),
        aws_secret_access_key=s.s3_secret_key.get_secret_value(),
        config=Config(s3={"addressing_style": "path"}),
    )
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=s.s3_bucket, Prefix=s.s3_key_prefix
    )
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=s.s3_bucket, Delete={"Objects": keys})

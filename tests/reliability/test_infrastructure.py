"""Kafka, MongoDB and S3 failing under the whole pipeline (submitter, lifecycle, audio agent,
merger, clipper, each its own process, every server reached through Toxiproxy): each
server down for 15 s, slow, cut off mid-connection, throttled; the broker restarted.

Jobs submitted before and during a fault pause and then complete, each effect once; no
process exits; the workers' ``/readyz`` turns red while their server is gone and green
again after.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from pymongo.errors import ConnectionFailure

from services.common.mongo import connect, database
from services.common.settings import Settings
from tests.reliability.conftest import Rig
from tests.reliability.support import Stack
from tests.support.toxiproxy import Proxy
from tests.support.workload import Job

OUTAGE_S = 15


async def test_a_calm_pipeline_completes_every_kind_of_job(whole: Stack) -> None:
    jobs = await whole.submit_mix()
    await whole.finish(jobs)
    print({j.kind: round(j.seconds or 0, 1) for j in jobs})


async def outage(stack: Stack, rig: Rig, proxy: Proxy, check: str) -> None:
    """``proxy``'s server down for OUTAGE_S with jobs in flight; every worker's /readyz
    red on ``check`` during it and all green after."""
    before = await stack.submit_mix()
    await asyncio.sleep(1)
    started = time.monotonic()
    with rig.toxiproxy.down(proxy):
        # Submitted during the outage too: refused (5xx) while it lasts, the client's
        # retries with the same Idempotency-Key get them in once it is over.
        during_outage = asyncio.create_task(stack.submit_mix())
        await asyncio.sleep(OUTAGE_S / 2)
        during = await stack.readiness()
        left = OUTAGE_S - (time.monotonic() - started)
        if left > 0:
            await asyncio.sleep(left)
    red = {n: (c, checks.get(check)) for n, (c, checks) in during.items()}
    assert all(code == 503 and str(state).startswith("down") for code, state in red.values()), red
    await stack.finish(before + await during_outage)
    after = await stack.readiness()
    assert all(code == 200 for code, _ in after.values()), after


async def test_mongodb_down_for_15_s(whole: Stack, rig: Rig) -> None:
    await outage(whole, rig, rig.mongo, "mongo")


async def test_s3_down_for_15_s(whole: Stack, rig: Rig) -> None:
    await outage(whole, rig, rig.s3, "s3")


async def test_kafka_down_for_15_s(whole: Stack, rig: Rig) -> None:
    await outage(whole, rig, rig.kafka, "consumer")


async def test_slow_links_and_a_throttled_s3(whole: Stack, rig: Rig) -> None:
    """For 6 s every link is slow (150 ms and 50 ms more each way) and S3 gives 256 KB/s:
    the jobs under way then take longer, and complete."""
    tp = rig.toxiproxy
    for proxy in (rig.kafka, rig.mongo, rig.s3):
        tp.add(proxy, "latency", latency=150, jitter=50)
        tp.add(proxy, "latency", stream="upstream", latency=50, jitter=20)
    tp.add(rig.s3, "bandwidth", rate=256)  # KB/s
    jobs = await whole.submit_mix()
    await asyncio.sleep(6)
    tp.reset()
    await whole.finish(jobs)


async def test_connections_reset_and_silent_servers(whole: Stack, rig: Rig) -> None:
    """For 6 s every new connection to Kafka, MongoDB and S3 is reset after half a second,
    then MongoDB and S3 go silent (connections open, nothing comes back) for 6 s."""
    tp = rig.toxiproxy
    jobs = await whole.submit_mix()
    resets = [tp.add(p, "reset_peer", timeout=500) for p in (rig.kafka, rig.mongo, rig.s3)]
    await asyncio.sleep(6)
    for proxy, name in zip((rig.kafka, rig.mongo, rig.s3), resets, strict=True):
        tp.remove(proxy, name)
    jobs += await whole.submit_mix()
    silent = [tp.add(p, "timeout", timeout=0) for p in (rig.mongo, rig.s3)]
    await asyncio.sleep(6)
    for proxy, name in zip((rig.mongo, rig.s3), silent, strict=True):
        tp.remove(proxy, name)
    await whole.finish(jobs)


async def test_the_broker_restarts_under_load(whole: Stack, rig: Rig) -> None:
    jobs = await whole.submit_mix()
    # Called from this thread: the broker dies with the thread that started it.
    rig.broker.restart()
    jobs += await whole.submit_mix()
    await whole.finish(jobs)
    after = await whole.readiness()
    assert all(code == 200 for code, _ in after.values()), after


async def test_a_submission_retried_through_a_kafka_outage_is_one_job(
    whole: Stack, rig: Rig
) -> None:
    """A clip job refused while Kafka is down (it could not be queued), then sent again
    with the same Idempotency-Key, as a client retries: one job, run once."""
    wl = whole.workload
    spec, key = wl.spec("clip"), {"Idempotency-Key": f"retry-{time.monotonic_ns()}"}
    with rig.toxiproxy.down(rig.kafka):
        refused = await wl._http.post("/v1/jobs", json=spec, headers=key)
    assert refused.status_code >= 500, refused.text
    first = await wl._http.post("/v1/jobs", json=spec, headers=key)
    again = await wl._http.post("/v1/jobs", json=spec, headers=key)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["job_id"] == again.json()["job_id"]
    other = await wl._http.post("/v1/jobs", json={**spec, "start_ms": 1}, headers=key)
    assert other.status_code == 409, other.text
    job = Job(first.json()["job_id"], "clip", time.monotonic())
    wl.jobs.append(job)
    await whole.finish([job])


async def test_a_call_on_a_silent_mongodb_connection_fails_as_an_outage(
    proxied: Settings, rig: Rig
) -> None:
    """MongoDB reachable, then silent on the open connection (the reply lost): the call
    fails as an outage after MONGO_SOCKET_TIMEOUT_MS, the kind of error the stage kit
    retries, instead of holding its caller (and a batch of ledger calls) for good."""
    settings = proxied.model_copy(update={"mongo_socket_timeout_ms": 1000})
    client = connect(settings, "silent-test")
    try:
        db = database(client, settings)
        await db["probe"].insert_one({"_id": "x"})
        silent = rig.toxiproxy.add(rig.mongo, "timeout", timeout=0)
        started = time.monotonic()
        with pytest.raises(ConnectionFailure):
            # Bounded here too, so a client without the timeout fails this test, not hangs it.
            await asyncio.wait_for(db["probe"].find_one({"_id": "x"}), timeout=15)
        waited = time.monotonic() - started
        assert 0.9 <= waited < 8, waited
        rig.toxiproxy.remove(rig.mongo, silent)
        assert await db["probe"].find_one({"_id": "x"}) == {"_id": "x"}
    finally:
        await client.close()

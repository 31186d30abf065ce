"""What the cluster holds for Tapedeck: every registry topic and DLQ that exists, each
partition's earliest and latest offset, and every consumer group's committed offset and
lag on it. Read with a group-less consumer and the admin client: looking commits nothing.

Groups are those whose name starts with the topic prefix when one is set (the workers'
groups are ``<prefix>tapedeck-<service>``), so environments sharing a cluster do not see
each other's groups; without a prefix, every group with offsets on these topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from services.common.kafka import registry_topics
from services.common.settings import Settings

# Offset queries in flight at once: a shared cluster may have many groups.
GROUP_QUERIES = 8


@dataclass(frozen=True)
class GroupOffset:
    committed: int | None  # None: the group consumes the topic but never committed here
    lag: int


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    earliest: int
    latest: int
    groups: dict[str, GroupOffset] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: list[PartitionInfo]


def lag_of(committed: int | None, earliest: int, latest: int) -> int:
    """What a group has yet to read: from its committed offset, or from the earliest
    retained one when it has none (or one the broker has deleted past)."""
    start = earliest if committed is None else max(committed, earliest)
    return max(latest - start, 0)


def assemble(
    names: Iterable[str],
    partitions: Mapping[str, list[int]],
    earliest: Mapping[TopicPartition, int],
    latest: Mapping[TopicPartition, int],
    committed: Mapping[str, Mapping[TopicPartition, int]],
) -> list[TopicInfo]:
    """Topics with their partitions and each group's offsets. A group that committed on
    one partition of a topic consumes all of it: its other partitions show no commit."""
    out = []
    for name in names:
        groups = sorted(
            g for g, offsets in committed.items() if any(tp.topic == name for tp in offsets)
        )
        rows = []
        for p in partitions.get(name, []):
            tp = TopicPartition(name, p)
            first, last = earliest.get(tp, 0), latest.get(tp, 0)
            offsets = {}
            for group in groups:
                at = committed[group].get(tp)
                offsets[group] = GroupOffset(at, lag_of(at, first, last))
            rows.append(PartitionInfo(p, first, last, offsets))
        out.append(TopicInfo(name, rows))
    return out


async def cluster_partitions(settings: Settings, names: Iterable[str]) -> dict[str, list[int]]:
    """The partitions of each of ``names`` that exists on the cluster (others left out)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="tapedeck-ops"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        # Only topics that exist are described: describing creates nothing, even where a
        # broker creates topics on first use.
        asked = [n for n in dict.fromkeys(names) if n in existing]
        described = await admin.describe_topics(asked) if asked else []
    finally:
        await admin.close()
    return {
        str(d["topic"]): sorted(int(p["partition"]) for p in d["partitions"])
        for d in described
        if d.get("error_code") == 0
    }


async def describe(settings: Settings) -> list[TopicInfo]:
    wanted = [t.full_name(settings.topic_prefix) for t in registry_topics(with_dlq=True)]
    partitions = await cluster_partitions(settings, wanted)
    names = [n for n in wanted if n in partitions]
    tps = [TopicPartition(n, p) for n in names for p in partitions[n]]
    if not tps:
        # Nothing to ask (no topic created yet). aiokafka's consumer, stopped right after
        # it started, raises CancelledError from stop().
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="tapedeck-ops",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        earliest = await consumer.beginning_offsets(tps)
        latest = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    committed = await _committed(settings, set(names))
    return assemble(names, partitions, earliest, latest, committed)


async def _committed(settings: Settings, topics: set[str]) -> dict[str, dict[TopicPartition, int]]:
    """Each group's committed offsets on ``topics`` (groups with none left out)."""
    if not topics:
        return {}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="tapedeck-ops"
    )
    await admin.start()
    try:
        listed = await admin.list_consumer_groups()
        groups = sorted({str(g[0]) for g in listed if str(g[0]).startswith(settings.topic_prefix)})
        gate = asyncio.Semaphore(GROUP_QUERIES)

        async def offsets(group: str) -> dict[TopicPartition, OffsetAndMetadata]:
            async with gate:
                return await admin.list_consumer_group_offsets(group)

        found = await asyncio.gather(*(offsets(g) for g in groups))
    finally:
        await admin.close()
    out: dict[str, dict[TopicPartition, int]] = {}
    for group, by_partition in zip(groups, found, strict=True):
        mine = {
            tp: o.offset for tp, o in by_partition.items() if tp.topic in topics and o.offset >= 0
        }
        if mine:
            out[group] = mine
    return out

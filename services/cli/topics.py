"""``tapedeck topics describe``: the registry's topics and DLQs on the cluster, each
partition's offsets, and every consumer group's committed offset and lag (read without
joining a group, so looking commits nothing)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.cli.args import json_option

if TYPE_CHECKING:
    from services.cli.args import Subcommands
    from services.ops.topics import TopicInfo


def add_commands(groups: Subcommands) -> None:
    topics = groups.add_parser(
        "topics", help="topics on the cluster: partitions, offsets, consumer lag"
    ).add_subparsers(dest="action", required=True)
    describe = topics.add_parser(
        "describe", help="every registry topic's partitions, offsets and consumer lag"
    )
    describe.add_argument(
        "--topic", action="append", metavar="NAME", help="only these (e.g. clip.requests)"
    )
    describe.add_argument("--group", action="append", metavar="GROUP", help="only these groups")
    describe.add_argument(
        "--partitions", action="store_true", help="a line per partition, not per topic"
    )
    json_option(describe)
    describe.set_defaults(command=describe_command)


def _matches(name: str, wanted: Sequence[str] | None, prefix: str) -> bool:
    if not wanted:
        return True
    bare = name.removeprefix(prefix)
    return any(w in (name, bare, bare.removeprefix("tapedeck.")) for w in wanted)


def describe_json(infos: Sequence[TopicInfo], groups: Sequence[str] | None) -> list[dict[str, Any]]:
    out = []
    for info in infos:
        partitions = []
        for p in info.partitions:
            offsets = {
                g: {"committed": o.committed, "lag": o.lag}
                for g, o in sorted(p.groups.items())
                if not groups or g in groups
            }
            partitions.append(
                {
                    "partition": p.partition,
                    "earliest": p.earliest,
                    "latest": p.latest,
                    "messages": p.latest - p.earliest,
                    "groups": offsets,
                }
            )
        lag: dict[str, int] = {}
        for p in info.partitions:
            for g, o in p.groups.items():
                if not groups or g in groups:
                    lag[g] = lag.get(g, 0) + o.lag
        out.append(
            {
                "topic": info.name,
                "partitions": partitions,
                "messages": sum(p.latest - p.earliest for p in info.partitions),
                "lag": dict(sorted(lag.items())),
            }
        )
    return out


def rows(described: Sequence[dict[str, Any]], *, per_partition: bool) -> list[list[Any]]:
    """One row per topic and group (per partition with ``per_partition``); a topic no
    group reads gets a row with ``-`` for the group."""
    out: list[list[Any]] = []
    for topic in described:
        parts = topic["partitions"]
        groups = sorted({g for p in parts for g in p["groups"]})
        if per_partition:
            for p in parts:
                base = [topic["topic"], p["partition"], p["earliest"], p["latest"]]
                if not p["groups"]:
                    out.append([*base, None, None, None])
                for g in groups:
                    if g in p["groups"]:
                        o = p["groups"][g]
                        out.append([*base, g, o["committed"], o["lag"]])
            continue
        base = [topic["topic"], len(parts), topic["messages"]]
        if not groups:
            out.append([*base, None, None])
        for g in groups:
            out.append([*base, g, topic["lag"][g]])
    return out


async def describe_command(args: argparse.Namespace) -> int:
    from services.cli.output import console, print_json, table
    from services.common.settings import Settings
    from services.ops.topics import describe

    settings = Settings()
    infos = [
        i for i in await describe(settings) if _matches(i.name, args.topic, settings.topic_prefix)
    ]
    described = describe_json(infos, args.group)
    if args.json:
        print_json(described)
        return 0
    if not described:
        print("none of the registry's topics exist on the cluster", file=sys.stderr)
        return 0
    if args.partitions:
        columns = ["TOPIC", "PARTITION", "EARLIEST", "LATEST", "GROUP", "COMMITTED", "LAG"]
    else:
        columns = ["TOPIC", "PARTITIONS", "MESSAGES", "GROUP", "LAG"]
    console().print(table(columns, rows(described, per_partition=args.partitions)))
    return 0

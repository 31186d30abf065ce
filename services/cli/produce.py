"""``tapedeck produce TOPIC FILE``: put one hand-written event on a registry topic, checked
first against its JSON Schema and the topic's codec, keyed and with the headers the
services' own emitter gives it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from services.cli.args import json_option, read_input

if TYPE_CHECKING:
    from services.cli.args import Subcommands
    from services.cli.events import Checked
    from services.common.settings import Settings


def add_commands(groups: Subcommands) -> None:
    produce = groups.add_parser(
        "produce",
        help="produce one event (checked against its JSON Schema and the topic)",
        description="Produce the event in FILE ('-' for stdin) to TOPIC, a registry name "
        "such as clip.requests. Nothing is produced unless the event passes its JSON "
        "Schema and the topic's codec. Kafka and the topic prefix come from the "
        "environment (KAFKA_BOOTSTRAP, TOPIC_PREFIX).",
    )
    produce.add_argument("topic", metavar="TOPIC", help="registry name, e.g. clip.requests")
    produce.add_argument("file", metavar="FILE", help="the event as JSON")
    produce.add_argument("--check", action="store_true", help="check only; produce nothing")
    json_option(produce)
    produce.set_defaults(command=produce_command)


async def produce_command(args: argparse.Namespace) -> int:
    from services.cli.events import check_event, topic_named
    from services.cli.output import print_json
    from services.common.obs import trace
    from services.common.settings import Settings

    topic = topic_named(args.topic)
    raw = read_input(args.file, "event file")
    settings = Settings()
    checked = check_event(
        topic, raw, max_bytes=settings.max_message_bytes, topic_prefix=settings.topic_prefix
    )
    # A trace of its own, carried as the services' emitter carries theirs, so what the
    # event sets off can be followed by its trace id.
    with trace.use(trace.start()) as ctx:
        headers = [*checked.headers, *trace.kafka_headers()]
    name = topic.full_name(settings.topic_prefix)
    out: dict[str, Any] = {
        "topic": name,
        "event_type": checked.event.event_type,
        "schema_version": checked.event.schema_version,
        "event_id": str(checked.event.event_id),
        "key": checked.key.decode(),
        "headers": {k: v.decode() for k, v in headers},
        "trace_id": ctx.trace_id,
        "partition": None,
        "offset": None,
    }
    if not args.check:
        out["partition"], out["offset"] = await send(settings, name, checked, headers)
    if args.json:
        print_json({**out, "produced": not args.check})
    elif args.check:
        print(
            f"ok: {out['event_type']} v{out['schema_version']} fits {topic.name} "
            f"(key {out['key']}); nothing produced"
        )
    else:
        print(
            f"produced {out['event_type']} {out['event_id']} to {out['topic']} "
            f"partition {out['partition']} offset {out['offset']} (key {out['key']}, "
            f"trace {ctx.trace_id})"
        )
    return 0


async def send(
    settings: Settings, topic: str, checked: Checked, headers: list[tuple[str, bytes]]
) -> tuple[int, int]:
    from aiokafka import AIOKafkaProducer

    from schemas import TOPICS
    from services.common.kafka import ensure_topics

    # As every service does at start: a missing topic gets the registry's partitions,
    # never the broker's defaults by auto-creation.
    registry = TOPICS.for_event(checked.event.event_type)
    await ensure_topics(settings, [registry, registry.dlq()])
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="tapedeck-cli",
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            topic, value=checked.value, key=checked.key, headers=headers
        )
    finally:
        await producer.stop()
    return meta.partition, meta.offset

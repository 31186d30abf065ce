"""``python -m services.topics``: create the registry's missing topics (and their ``.dlq``
topics) on ``KAFKA_BOOTSTRAP``, then exit.

Every service does the same at start; this one-shot entry point is for deployments that
create topics before any service runs: the ``topics-init`` step of docker-compose.yml and
the Kubernetes Job for clusters without Strimzi (deploy/k8s/components/topics-job). It
reads the shared settings only: ``TOPIC_PREFIX``, ``TOPIC_PARTITIONS`` (overrides the
registry's counts), ``TOPIC_REPLICATION``. Existing topics are left as they are.

``--list`` prints the registry's topics (name, partitions, retention) without Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from services.common.kafka import ensure_topics, registry_topics
from services.common.obs.logs import configure_logging, secrets_of
from services.common.settings import Settings


def describe(prefix: str = "") -> list[str]:
    """One line per topic: full name, partitions, retention in ms ("broker" when unset)."""
    return [
        f"{t.full_name(prefix)}\t{t.partitions}\t{t.retention_ms or 'broker'}"
        for t in registry_topics()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.topics", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the topics; no Kafka needed")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.list:
        print("\n".join(describe(settings.topic_prefix)))
        return 0
    configure_logging("topics", settings.log_level, settings.log_format,
                      secrets=secrets_of(settings))  # fmt: skip
    created = asyncio.run(ensure_topics(settings))
    total = len(registry_topics())
    print(f"topics: {len(created)} created, {total - len(created)} already there", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

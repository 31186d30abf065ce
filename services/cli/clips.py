"""``tapedeck clips``: the clip cache (warming the most requested ranges)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING

from services.cli.args import json_option, positive

if TYPE_CHECKING:
    from services.cli.args import Subcommands


def add_commands(groups: Subcommands) -> None:
    clips = groups.add_parser("clips", help="the clip cache").add_subparsers(
        dest="action", required=True
    )
    warm = clips.add_parser("warm", help="pre-cut the most requested clip ranges")
    warm.add_argument("--hours", type=positive(float), default=24.0, help="look back N hours")
    warm.add_argument("--top", type=positive(int), default=20, help="at most K ranges")
    warm.add_argument(
        "--wait-s", type=positive(float), default=60.0, help="how long to wait for the cuts"
    )
    json_option(warm)
    warm.set_defaults(command=warm_cache)


async def warm_cache(args: argparse.Namespace) -> int:
    from schemas import TOPICS
    from services.cli.output import print_json
    from services.cli.warming import as_json, summary, warm
    from services.common.kafka import ensure_topics
    from services.submitter.runtime import open_runtime
    from services.submitter.settings import SubmitterSettings

    settings = SubmitterSettings()
    await ensure_topics(settings, [TOPICS.clip_requests, *TOPICS.results()])
    async with open_runtime(settings, client_id="tapedeck-cli") as runtime:
        ranges = await runtime.clips.most_requested(timedelta(hours=args.hours), args.top)
        results = await warm(runtime.clip_ports(), ranges, args.wait_s)
    if args.json:
        print_json([as_json(result) for result in results])
        return 0
    for result in results:
        print(result.line())
    print(summary(results))
    return 0

"""``tapedeck``: operator commands (API keys, cache warming).

Settings and adapters are built when a command runs, never at import; each command
imports only what it uses, so ``keys`` does not load the Kafka or S3 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.submitter.key_store import KeyStore


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code = asyncio.run(args.command(args))
    if code:
        raise SystemExit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tapedeck", description="Tapedeck operator commands.")
    groups = parser.add_subparsers(dest="group", required=True)

    keys = groups.add_parser("keys", help="per-tenant API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key; it is shown once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--json", action="store_true", help='print {"tenant": ..., "key": ...}')
    create.set_defaults(command=_keys_create)
    listing = keys.add_parser("list", help="list keys (ids only, never the keys)")
    listing.add_argument("--tenant")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(command=_keys_revoke)

    clips = groups.add_parser("clips", help="the clip cache").add_subparsers(
        dest="action", required=True
    )
    warm = clips.add_parser("warm", help="pre-cut the most requested clip ranges")
    warm.add_argument("--hours", type=_positive(float), default=24.0, help="look back N hours")
    warm.add_argument("--top", type=_positive(int), default=20, help="at most K ranges")
    warm.add_argument(
        "--wait-s", type=_positive(float), default=60.0, help="how long to wait for the cuts"
    )
    warm.set_defaults(command=_clips_warm)
    return parser


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return value

    return parse


def _fail(message: str, code: int = 1) -> int:
    print(f"tapedeck: {message}", file=sys.stderr)
    return code


@asynccontextmanager
async def _key_store() -> AsyncIterator[KeyStore]:
    from services.common.mongo import connect, database
    from services.common.settings import Settings
    from services.submitter.key_store import KeyStore

    settings = Settings()
    client = connect(settings, app_name="tapedeck-cli")
    try:
        store = KeyStore(database(client, settings))
        await store.ensure_indexes()
        yield store
    finally:
        await client.close()


async def _keys_create(args: argparse.Namespace) -> int:
    from services.submitter.api_keys import InvalidTenant, create_key

    async with _key_store() as store:
        try:
            record, key = await create_key(store, args.tenant)
        except InvalidTenant as exc:
            return _fail(str(exc), 2)
    if args.json:
        print(json.dumps({"tenant": record.tenant_id, "key": key}))
    else:
        print(key)
        print(
            f"created key {record.key_id} for tenant {record.tenant_id}; "
            "it is not stored and cannot be shown again",
            file=sys.stderr,
        )
    return 0


async def _keys_list(args: argparse.Namespace) -> int:
    from services.submitter.api_keys import display_prefix

    async with _key_store() as store:
        records = await store.list(args.tenant)
    rows = [
        {
            "key_id": r.key_id,
            "tenant": r.tenant_id,
            "prefix": display_prefix(r.key_id),
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in records
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
        print(f"{row['key_id']}  {row['tenant']}  {row['prefix']}  {row['created_at']}  {state}")
    if not rows:
        print("no keys", file=sys.stderr)
    return 0


async def _keys_revoke(args: argparse.Namespace) -> int:
    async with _key_store() as store:
        if not await store.revoke(args.key_id):
            return _fail(f"no live key {args.key_id!r}")
    print(f"revoked {args.key_id}")
    return 0


async def _clips_warm(args: argparse.Namespace) -> int:
    from schemas import TOPICS
    from services.common.kafka import ensure_topics
    from services.submitter.runtime import open_runtime
    from services.submitter.settings import SubmitterSettings
    from services.submitter.warming import summary, warm

    settings = SubmitterSettings()
    await ensure_topics(settings, [TOPICS.clip_requests, TOPICS.clip_results])
    async with open_runtime(settings, client_id="tapedeck-cli") as runtime:
        ranges = await runtime.clips.most_requested(timedelta(hours=args.hours), args.top)
        results = await warm(runtime.clip_ports(), ranges, args.wait_s)
    for result in results:
        print(result.line())
    print(summary(results))
    return 0

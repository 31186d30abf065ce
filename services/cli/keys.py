"""``tapedeck keys``: per-tenant API keys, created, listed and revoked in MongoDB."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.cli.args import fail

if TYPE_CHECKING:
    from services.cli.args import Subcommands
    from services.submitter.keys import KeyStore


def add_commands(groups: Subcommands) -> None:
    keys = groups.add_parser("keys", help="per-tenant API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key; it is shown once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--json", action="store_true", help='print {"tenant": ..., "key": ...}')
    create.set_defaults(command=create_command)
    listing = keys.add_parser("list", help="list keys (ids only, never the keys)")
    listing.add_argument("--tenant")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command=list_command)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(command=revoke_command)


@asynccontextmanager
async def key_store() -> AsyncIterator[KeyStore]:
    from services.common.mongo import connect, database
    from services.common.settings import Settings
    from services.submitter.keys import KeyStore

    settings = Settings()
    client = connect(settings, app_name="tapedeck-cli")
    try:
        store = KeyStore(database(client, settings))
        await store.ensure_indexes()
        yield store
    finally:
        await client.close()


async def create_command(args: argparse.Namespace) -> int:
    from services.submitter.keys import InvalidTenant, create_key

    async with key_store() as store:
        try:
            record, key = await create_key(store, args.tenant)
        except InvalidTenant as exc:
            return fail(str(exc), 2)
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


async def list_command(args: argparse.Namespace) -> int:
    from services.submitter.keys import display_prefix

    async with key_store() as store:
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


async def revoke_command(args: argparse.Namespace) -> int:
    async with key_store() as store:
        if not await store.revoke(args.key_id):
            return fail(f"no live key {args.key_id!r}")
    print(f"revoked {args.key_id}")
    return 0

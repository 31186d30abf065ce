"""``tapedeck keys``: per-tenant API keys, created, listed and revoked in MongoDB, and the
tenant's webhook signing secret (made with its first key, rotated on demand)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.cli.args import fail

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from services.cli.args import Subcommands
    from services.common.mongo import Doc
    from services.submitter.keys import KeyStore


def add_commands(groups: Subcommands) -> None:
    keys = groups.add_parser("keys", help="per-tenant API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key; it is shown once")
    create.add_argument("--tenant", required=True)
    create.add_argument(
        "--json",
        action="store_true",
        help='print {"tenant": ..., "key": ...}, and "webhook_secret" with the first key',
    )
    create.set_defaults(command=create_command)
    listing = keys.add_parser("list", help="list keys (ids only, never the keys)")
    listing.add_argument("--tenant")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command=list_command)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(command=revoke_command)
    rotate = keys.add_parser(
        "rotate-webhook-secret",
        help="new webhook signing secret, shown once; the old one signs too for 24 h",
    )
    rotate.add_argument("--tenant", required=True)
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(command=rotate_webhook_secret_command)


@asynccontextmanager
async def _database() -> AsyncIterator[AsyncDatabase[Doc]]:
    from services.common.mongo import connect, database
    from services.common.settings import Settings

    settings = Settings()
    client = connect(settings, app_name="tapedeck-cli")
    try:
        yield database(client, settings)
    finally:
        await client.close()


@asynccontextmanager
async def key_store() -> AsyncIterator[KeyStore]:
    from services.submitter.keys import KeyStore

    async with _database() as db:
        store = KeyStore(db)
        await store.ensure_indexes()
        yield store


async def create_command(args: argparse.Namespace) -> int:
    from services.submitter.keys import InvalidTenant, KeyStore, issue_key
    from services.webhooks.secrets import WebhookSecretStore

    async with _database() as db:
        store = KeyStore(db)
        await store.ensure_indexes()
        try:
            issued = await issue_key(store, WebhookSecretStore(db), args.tenant)
        except InvalidTenant as exc:
            return fail(str(exc), 2)
    record, secret = issued.record, issued.webhook_secret
    if args.json:
        out = {"tenant": record.tenant_id, "key": issued.key}
        if secret is not None:
            out["webhook_secret"] = secret
        print(json.dumps(out))
    else:
        print(issued.key)
        print(
            f"created key {record.key_id} for tenant {record.tenant_id}; "
            "it is not stored and cannot be shown again",
            file=sys.stderr,
        )
        if secret is not None:
            # stderr, so KEY=$(tapedeck keys create ...) still captures the key alone.
            print(
                f"webhook signing secret of tenant {record.tenant_id} (verifies its webhooks; "
                f"shown only now): {secret}",
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


async def rotate_webhook_secret_command(args: argparse.Namespace) -> int:
    from services.submitter.keys import KeyStore
    from services.webhooks.secrets import WebhookSecretStore

    async with _database() as db:
        if not await KeyStore(db).list(args.tenant):
            return fail(f"tenant {args.tenant!r} has no API keys; create one first", 2)
        rotated = await WebhookSecretStore(db).rotate(args.tenant)
    expires = rotated.previous_expires_at.isoformat() if rotated.previous_expires_at else None
    if args.json:
        out = {"tenant": args.tenant, "webhook_secret": rotated.secret}
        print(json.dumps({**out, "previous_expires_at": expires}))
        return 0
    print(rotated.secret)
    note = f"the previous one signs too until {expires}" if expires else "there was none before"
    print(
        f"new webhook signing secret of tenant {args.tenant}, shown only now; {note}",
        file=sys.stderr,
    )
    return 0

"""``tapedeck keys``: per-tenant API keys, created, listed and revoked in MongoDB, and the
tenant's webhook signing secret (made with its first key, rotated on demand). Operator
keys (``--operator --name NAME``) open the operator API and carry no webhook secret."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.cli.args import USAGE, fail

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
    create.add_argument(
        "--tenant", help=f"the tenant (required for tenant keys; operator keys: {OPERATORS})"
    )
    create.add_argument(
        "--operator",
        action="store_true",
        help="an operator key: the operator API across tenants (needs --name)",
    )
    create.add_argument("--name", help="who holds the key (shown in operator action records)")
    create.add_argument(
        "--json",
        action="store_true",
        help='print {"tenant", "key", "role", "name"}, and "webhook_secret" with a '
        "tenant's first key",
    )
    create.set_defaults(command=create_command)
    listing = keys.add_parser("list", help="list keys (ids only, never the keys)")
    listing.add_argument("--tenant")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command=list_command)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true", help='print {"key_id", "revoked"}')
    revoke.set_defaults(command=revoke_command)
    rotate = keys.add_parser(
        "rotate-webhook-secret",
        help="new webhook signing secret, shown once; the old one signs too for 24 h",
    )
    rotate.add_argument("--tenant", required=True)
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(command=rotate_webhook_secret_command)


# The tenant operator keys belong to unless one is named: their holders work across
# tenants, and the key store keeps a tenant on every key.
OPERATORS = "operators"


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
    from services.submitter.keys import (
        OPERATOR_ROLE,
        InvalidKeyInput,
        KeyStore,
        create_key,
        issue_key,
    )
    from services.webhooks.secrets import WebhookSecretStore

    if args.operator and not args.name:
        return fail("an operator key needs --name (who holds it)", USAGE)
    if not args.operator and not args.tenant:
        return fail("--tenant is required (or --operator for an operator key)", USAGE)
    async with _database() as db:
        store = KeyStore(db)
        await store.ensure_indexes()
        try:
            if args.operator:
                # No webhook secret: nothing is delivered to operators.
                tenant = args.tenant or OPERATORS
                record, key = await create_key(store, tenant, role=OPERATOR_ROLE, name=args.name)
                secret = None
            else:
                issued = await issue_key(store, WebhookSecretStore(db), args.tenant, name=args.name)
                record, key, secret = issued.record, issued.key, issued.webhook_secret
        except InvalidKeyInput as exc:
            return fail(str(exc), USAGE)
    if args.json:
        out = {"tenant": record.tenant_id, "key": key, "role": record.role, "name": record.name}
        if secret is not None:
            out["webhook_secret"] = secret
        print(json.dumps(out))
    else:
        print(key)
        what = "operator key" if record.is_operator else "key"
        holder = f" held by {record.name}" if record.name else ""
        print(
            f"created {what} {record.key_id}{holder} for tenant {record.tenant_id}; "
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
            "role": r.role,
            "name": r.name,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in records
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no keys", file=sys.stderr)
        return 0
    from services.cli.output import console, table, when

    console().print(
        table(
            ["KEY ID", "TENANT", "PREFIX", "ROLE", "NAME", "CREATED", "STATE"],
            [
                [
                    row["key_id"],
                    row["tenant"],
                    row["prefix"],
                    row["role"],
                    row["name"],
                    when(row["created_at"]),
                    f"revoked {when(row['revoked_at'])}" if row["revoked_at"] else "live",
                ]
                for row in rows
            ],
        )
    )
    return 0


async def revoke_command(args: argparse.Namespace) -> int:
    async with key_store() as store:
        if not await store.revoke(args.key_id):
            return fail(f"no live key {args.key_id!r}")
    print(
        json.dumps({"key_id": args.key_id, "revoked": True})
        if args.json
        else f"revoked {args.key_id}"
    )
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

"""``tapedeck dlq``: dead letters, straight from Kafka and MongoDB (the services'
settings from the environment): list the DLQs or one DLQ's messages, show one, replay it
onto its original topic (as it was, or ``--edit FILE``: an edited body, checked by the
topic's codec first) or discard it. Replays and discards are recorded with who did them
(``--as``, default the login name)."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from services.cli.args import FAILED, USAGE, CliError, json_option, positive, read_input

if TYPE_CHECKING:
    from services.cli.args import Subcommands
    from services.ops.actions import Actor
    from services.ops.dlq import DeadLetter, DeadLetterOps, DlqTopic

# How the CLI appears in the action records, beside the operator's name: the API's
# operators are named by their key id there, and the command line has no key.
CLI_ACTOR_ID = "cli"
_REF = re.compile(r"(\d+)[-:/](\d+)")
# Characters of a dead letter's error a listing shows (``show`` gives it whole).
ERROR_CELL = 80


def add_commands(groups: Subcommands) -> None:
    dlq = groups.add_parser(
        "dlq", help="dead letters: list, show, replay, discard (Kafka and MongoDB)"
    ).add_subparsers(dest="action", required=True)

    listing = dlq.add_parser(
        "list", help="the DLQs with their counts, or the dead letters of one topic"
    )
    listing.add_argument(
        "topic", nargs="?", metavar="TOPIC", help="e.g. clip.requests (its DLQ); none: all DLQs"
    )
    listing.add_argument("--limit", type=positive(int), default=100, help="oldest N (TOPIC)")
    json_option(listing)
    listing.set_defaults(command=list_command)

    def one(name: str, help: str) -> argparse.ArgumentParser:
        parser = dlq.add_parser(name, help=help)
        parser.add_argument("topic", metavar="TOPIC", help="e.g. clip.requests (its DLQ)")
        parser.add_argument("ref", metavar="REF", help="PARTITION-OFFSET, as list shows it")
        json_option(parser)
        return parser

    show = one("show", "one dead letter: headers, error, body")
    show.set_defaults(command=show_command)
    replay = one("replay", "send it back to its original topic, with its original key")
    replay.add_argument(
        "--edit",
        metavar="FILE",
        help="replay this body instead ('-': stdin); refused unless it is a valid event "
        "for the topic",
    )
    replay.add_argument("--as", dest="actor", metavar="NAME", help="who replays it")
    replay.set_defaults(command=replay_command)
    discard = one("discard", "settle it without replaying")
    discard.add_argument("--as", dest="actor", metavar="NAME", help="who discards it")
    discard.set_defaults(command=discard_command)


def dlq_topic_name(name: str, prefix: str) -> str:
    """The DLQ's name on the cluster from what an operator types: ``clip.requests``,
    ``tapedeck.clip.requests``, with or without ``.dlq``, or the full name with prefix."""
    from schemas import TOPICS
    from schemas.topics import DLQ_SUFFIX, TOPIC_NAMESPACE

    bare = name
    if prefix and bare.startswith(prefix + TOPIC_NAMESPACE):
        bare = bare.removeprefix(prefix)
    bare = bare.removesuffix(DLQ_SUFFIX)
    if not bare.startswith(TOPIC_NAMESPACE):
        bare = TOPIC_NAMESPACE + bare
    try:
        return TOPICS[bare].dlq_name(prefix)
    except KeyError:
        known = ", ".join(t.name.removeprefix(TOPIC_NAMESPACE) for t in TOPICS)
        raise CliError(f"no topic {name!r} in the registry (known: {known})", USAGE) from None


def parse_ref(text: str) -> tuple[int, int]:
    match = _REF.fullmatch(text.strip())
    if not match:
        raise CliError(f"a dead letter is PARTITION-OFFSET (e.g. 0-12), not {text!r}", USAGE)
    return int(match.group(1)), int(match.group(2))


def actor(name: str | None) -> Actor:
    from services.ops.actions import Actor

    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no login name (a container with an unnamed uid)
            name = "operator"
    return Actor(key_id=CLI_ACTOR_ID, name=name)


@asynccontextmanager
async def dead_letters() -> AsyncIterator[tuple[DeadLetterOps, str]]:
    from services.common.mongo import open_database
    from services.common.settings import Settings
    from services.ops.dlq import DeadLetterOps

    settings = Settings()
    async with open_database(settings, "tapedeck-cli") as db:
        yield DeadLetterOps(settings, db), settings.topic_prefix


@asynccontextmanager
async def public_errors() -> AsyncIterator[None]:
    """The service layer's refusals as ``code: message``; a send that failed as such."""
    from services.common.errors import PermanentError, TransientError

    try:
        yield
    except PermanentError as exc:
        if exc.public:
            raise CliError(f"{exc.code}: {exc.message}") from None
        raise CliError(f"{exc.code}: the operation was refused") from None
    except TransientError:
        raise CliError("Kafka did not take the message; nothing was settled, try again") from None


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    from services.cli.output import iso

    return {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "ref": letter.ref,
        "timestamp": iso(letter.timestamp),
        "key": None if letter.key is None else letter.key.decode(errors="backslashreplace"),
        "value": letter.value.decode(errors="backslashreplace"),
        "headers": dict(letter.headers),
        "error": letter.error,
        "stage": letter.stage,
        "original_topic": letter.original_topic,
        "first_seen": iso(letter.first_seen),
        "attempts": letter.attempts,
        "state": letter.state,
        "actions": [
            {"at": iso(a.at), "actor": a.actor, "action": a.action, "detail": a.detail}
            for a in letter.actions
        ],
    }


def _short(text: str, limit: int = ERROR_CELL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


async def list_command(args: argparse.Namespace) -> int:
    async with dead_letters() as (ops, prefix), public_errors():
        if args.topic is None:
            _print_topics(await ops.topics(), args.json)
        else:
            name = dlq_topic_name(args.topic, prefix)
            _print_letters(await ops.list(name, limit=args.limit), args.json)
    return 0


def _print_topics(topics: list[DlqTopic], as_json: bool) -> None:
    from services.cli.output import console, print_json, table

    rows = [
        {
            "topic": t.name,
            "original_topic": t.original_topic,
            "messages": t.messages,
            "pending": t.pending,
        }
        for t in topics
    ]
    if as_json:
        print_json(rows)
    elif rows:
        console().print(
            table(
                ["DLQ", "ORIGINAL", "MESSAGES", "PENDING"],
                [[r["topic"], r["original_topic"], r["messages"], r["pending"]] for r in rows],
            )
        )
    else:
        print("no dead-letter topics on the cluster", file=sys.stderr)


def _print_letters(letters: list[DeadLetter], as_json: bool) -> None:
    from services.cli.output import console, print_json, status_text, table, when

    if as_json:
        print_json([letter_json(letter) for letter in letters])
        return
    if not letters:
        print("no dead letters", file=sys.stderr)
        return
    console().print(
        table(
            ["REF", "TIME", "KEY", "STAGE", "ATTEMPTS", "STATE", "ERROR"],
            [
                [
                    letter.ref,
                    when(letter.timestamp),
                    letter_json(letter)["key"],
                    letter.stage,
                    letter.attempts,
                    status_text(letter.state),
                    _short(letter.error),
                ]
                for letter in letters
            ],
            title=letters[0].topic,
        )
    )


async def show_command(args: argparse.Namespace) -> int:
    partition, offset = parse_ref(args.ref)
    async with dead_letters() as (ops, prefix), public_errors():
        topic = dlq_topic_name(args.topic, prefix)
        letter = await ops.get(topic, partition, offset)
    if letter is None:
        raise CliError(f"no dead letter {partition}-{offset} on {topic}")
    print_letter(letter, as_json=args.json)
    return 0


def print_letter(letter: DeadLetter, *, as_json: bool) -> None:
    from services.cli.output import console, fields, print_json, status_text, table, when

    if as_json:
        print_json(letter_json(letter))
        return
    out = console()
    doc = letter_json(letter)
    out.print(
        fields(
            {
                "dead letter": f"{letter.topic} {letter.ref}",
                "original topic": letter.original_topic,
                "time": when(letter.timestamp),
                "key": doc["key"],
                "stage": letter.stage,
                "attempts": letter.attempts,
                "first seen": when(letter.first_seen),
                "state": status_text(letter.state),
                "error": letter.error,
            }
        )
    )
    if letter.headers:
        out.print(table(["HEADER", "VALUE"], sorted(letter.headers.items()), title="headers"))
    if letter.actions:
        out.print(
            table(
                ["AT", "BY", "ACTION", "DETAIL"],
                [[when(a.at), a.actor, a.action, a.detail] for a in letter.actions],
                title="actions",
            )
        )
    out.print("body:", markup=False)
    out.print(letter.pretty, markup=False, highlight=False, soft_wrap=True)


async def replay_command(args: argparse.Namespace) -> int:
    partition, offset = parse_ref(args.ref)
    body = read_input(args.edit, "edited body") if args.edit else None
    async with dead_letters() as (ops, prefix), public_errors():
        topic = dlq_topic_name(args.topic, prefix)
        letter = await ops.replay(topic, partition, offset, actor(args.actor), body)
    return _settled(letter, args.json, "replayed to " + letter.original_topic)


async def discard_command(args: argparse.Namespace) -> int:
    partition, offset = parse_ref(args.ref)
    async with dead_letters() as (ops, prefix), public_errors():
        topic = dlq_topic_name(args.topic, prefix)
        letter = await ops.discard(topic, partition, offset, actor(args.actor))
    return _settled(letter, args.json, "discarded")


def _settled(letter: DeadLetter, as_json: bool, what: str) -> int:
    from services.cli.output import print_json

    if as_json:
        print_json(letter_json(letter))
    else:
        print(f"{letter.topic} {letter.ref}: {what}")
    return 0 if letter.state != "pending" else FAILED

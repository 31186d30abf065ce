"""Checking an event an operator wrote by hand before it goes on a topic: its JSON Schema
(``schemas/json``, as ``python -m schemas.export`` writes them), then the topic's codec,
as the consuming stage will read it. Pure: no Kafka here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from schemas import TOPICS, Event, Topic
from schemas.topics import DLQ_SUFFIX, TOPIC_NAMESPACE
from services.cli.args import FAILED, USAGE, CliError

# How many schema violations one refusal lists, and how much of each.
MAX_PROBLEMS = 5
MAX_PROBLEM_CHARS = 200


class Refused(CliError):
    """The event is not fit for the topic; nothing was produced."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused, nothing produced: {reason}", FAILED)
        self.reason = reason


def topic_named(name: str) -> Topic:
    """The registry topic called ``name``, with or without ``tapedeck.``
    (``clip.requests``, ``tapedeck.clip.requests``)."""
    if name.endswith(DLQ_SUFFIX):
        raise CliError(
            f"{name} is a dead-letter topic; replay dead letters with: tapedeck dlq replay",
            USAGE,
        )
    full = name if name.startswith(TOPIC_NAMESPACE) else TOPIC_NAMESPACE + name
    try:
        return TOPICS[full]
    except KeyError:
        known = ", ".join(t.name.removeprefix(TOPIC_NAMESPACE) for t in TOPICS)
        raise CliError(f"no topic {name!r} in the registry (known: {known})", USAGE) from None


def schema_dir() -> Path:
    from schemas.export import PACKAGE_DIR

    return PACKAGE_DIR / "json"


@lru_cache(maxsize=32)
def _schema(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def schema_for(event_type: str, version: int, directory: Path | None = None) -> dict[str, Any]:
    from schemas.export import file_stem

    path = (directory or schema_dir()) / f"{file_stem(event_type, version)}.schema.json"
    if not path.is_file():
        raise Refused(f"no JSON Schema for event_type {event_type!r} version {version}")
    return _schema(path)


def schema_problems(document: Any, schema: dict[str, Any]) -> list[str]:
    """Every way ``document`` breaks ``schema``, first ``MAX_PROBLEMS``, each naming where."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.path])
    problems = []
    for error in errors[:MAX_PROBLEMS]:
        where = ".".join(str(p) for p in error.path) or "<event>"
        message = error.message
        if len(message) > MAX_PROBLEM_CHARS:
            message = message[:MAX_PROBLEM_CHARS] + "\u2026"
        problems.append(f"{where}: {message}")
    if len(errors) > MAX_PROBLEMS:
        problems[-1] += f" (+{len(errors) - MAX_PROBLEMS} more)"
    return problems


@dataclass(frozen=True)
class Checked:
    event: Event
    key: bytes
    headers: list[tuple[str, bytes]]  # the event's routing facts (``event_headers``)
    value: bytes  # what goes on the topic: the event as the services encode it


def check_event(
    topic: Topic,
    raw: bytes,
    *,
    max_bytes: int,
    topic_prefix: str = "",
    schema_directory: Path | None = None,
) -> Checked:
    """The event in ``raw``, fit for ``topic``, with its key and headers; else ``Refused``
    with the reason."""
    from schemas import encode_event
    from services.common.codec import Codec, DecodeError, RawMessage, event_headers

    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Refused(f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, UnicodeDecodeError):
        raise Refused("not valid JSON (not UTF-8 text)") from None
    if not isinstance(document, dict):
        raise Refused("an event is a JSON object")
    event_type, version = document.get("event_type"), document.get("schema_version")
    if not isinstance(event_type, str) or type(version) is not int:
        raise Refused("the event must state event_type (a string) and schema_version (an int)")
    problems = schema_problems(document, schema_for(event_type, version, schema_directory))
    if problems:
        raise Refused(f"{event_type} v{version} breaks its JSON Schema: " + "; ".join(problems))
    codec = Codec.for_topic(topic, max_bytes)
    try:
        event = codec.decode(RawMessage(topic.full_name(topic_prefix), raw))
    except DecodeError as exc:
        raise Refused(f"{topic.name} would not take it: {exc.reason}") from None
    return Checked(event, topic.key_for(event), event_headers(event), encode_event(event))

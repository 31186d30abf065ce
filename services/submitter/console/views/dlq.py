"""Dead letters: the DLQ topics, each one's messages (error headers, a decoded body),
replay to the original topic (as it was, or after editing the body, which the ops layer
validates against the event's schema first) or discard, one at a time or a selection.
Every action is recorded with who and when, and shown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from services.common.errors import PermanentError
from services.ops.dlq import DeadLetter
from services.submitter.console.auth import OperatorSession, PostedSession, Session
from services.submitter.console.ports import Ports
from services.submitter.console.render import base_path, render
from services.submitter.console.routing import ConsoleRoute, error_page
from services.submitter.http.errors import bounded, status_for

router = APIRouter(route_class=ConsoleRoute)

# A Kafka topic name (at most 249 of these characters) that is a dead-letter topic.
DLQ_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,245}\.dlq")
REF = re.compile(r"(\d{1,9})-(\d{1,19})")
BODY_MAX = 4 * 1024 * 1024
NOTICES = {"replayed": "Replayed to the original topic.", "discarded": "Discarded."}

Topic = Annotated[str, Path(max_length=249)]
Partition = Annotated[int, Path(ge=0, le=1_000_000)]
Offset = Annotated[int, Path(ge=0)]


@dataclass(frozen=True)
class Outcome:
    ref: str
    ok: bool
    message: str


def _known(topic: str) -> bool:
    return DLQ_TOPIC.fullmatch(topic) is not None and ".." not in topic


def _no_topic(request: Request, topic: str) -> Response:
    return error_page(request, 404, bounded(f"There is no dead-letter topic {topic!r}."))


def _no_message(request: Request, topic: str, partition: int, offset: int) -> Response:
    return error_page(
        request, 404, bounded(f"There is no message {partition}-{offset} in {topic!r}.")
    )


@router.get("/dlq", name="console_dlq")
async def topics_page(request: Request, ports: Ports, _: OperatorSession) -> Response:
    topics = await ports.dead_letters.topics()
    return render(request, "dlq/topics.html", topics=topics, title="Dead letters", nav="dlq")


def _list_page(
    request: Request,
    topic: str,
    letters: list[DeadLetter],
    *,
    status: int = 200,
    notice: str | None = None,
    outcomes: list[Outcome] | None = None,
) -> Response:
    return render(
        request,
        "dlq/list.html",
        status=status,
        topic=topic,
        letters=letters,
        notice=notice,
        outcomes=outcomes or [],
        title=topic,
        nav="dlq",
    )


@router.get("/dlq/{topic}", name="console_dlq_topic")
async def list_page(
    request: Request,
    ports: Ports,
    _: OperatorSession,
    topic: Topic,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    if not _known(topic):
        return _no_topic(request, topic)
    letters = await ports.dead_letters.list(topic)
    return _list_page(request, topic, letters, notice=NOTICES.get(notice or ""))


def _message_page(
    request: Request,
    letter: DeadLetter,
    *,
    status: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    draft: str | None = None,
) -> Response:
    return render(
        request,
        "dlq/message.html",
        status=status,
        letter=letter,
        notice=notice,
        problem=problem,
        draft=letter.pretty if draft is None else draft,
        title=f"{letter.topic} {letter.ref}",
        nav="dlq",
    )


@router.get("/dlq/{topic}/{partition}/{offset}", name="console_dlq_message")
async def message_page(
    request: Request,
    ports: Ports,
    _: OperatorSession,
    topic: Topic,
    partition: Partition,
    offset: Offset,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    letter = await ports.dead_letters.get(topic, partition, offset) if _known(topic) else None
    if letter is None:
        return _no_message(request, topic, partition, offset)
    return _message_page(request, letter, notice=NOTICES.get(notice or ""))


@router.post("/dlq/{topic}/{partition}/{offset}/replay", name="console_dlq_replay")
async def replay(
    request: Request,
    ports: Ports,
    session: PostedSession,
    topic: Topic,
    partition: Partition,
    offset: Offset,
    body: Annotated[str | None, Form(max_length=BODY_MAX)] = None,
    mode: Annotated[Literal["original", "edited"], Form()] = "original",
) -> Response:
    letter = await ports.dead_letters.get(topic, partition, offset) if _known(topic) else None
    if letter is None:
        return _no_message(request, topic, partition, offset)
    edited = body.encode() if mode == "edited" and body is not None else None
    try:
        await ports.dead_letters.replay(topic, partition, offset, session.actor, body=edited)
    except PermanentError as exc:
        if not exc.public:
            raise
        fresh = await ports.dead_letters.get(topic, partition, offset) or letter
        return _message_page(
            request, fresh, status=status_for(exc.code), problem=bounded(exc.message), draft=body
        )
    return _back_to(request, topic, partition, offset, "replayed")


@router.post("/dlq/{topic}/{partition}/{offset}/discard", name="console_dlq_discard")
async def discard(
    request: Request,
    ports: Ports,
    session: PostedSession,
    topic: Topic,
    partition: Partition,
    offset: Offset,
) -> Response:
    letter = await ports.dead_letters.get(topic, partition, offset) if _known(topic) else None
    if letter is None:
        return _no_message(request, topic, partition, offset)
    try:
        await ports.dead_letters.discard(topic, partition, offset, session.actor)
    except PermanentError as exc:
        if not exc.public:
            raise
        fresh = await ports.dead_letters.get(topic, partition, offset) or letter
        return _message_page(
            request, fresh, status=status_for(exc.code), problem=bounded(exc.message)
        )
    return _back_to(request, topic, partition, offset, "discarded")


def _back_to(request: Request, topic: str, partition: int, offset: int, notice: str) -> Response:
    url = f"{base_path(request)}/dlq/{topic}/{partition}/{offset}?notice={notice}"
    return RedirectResponse(url, status_code=303)


async def _one(ports: Ports, session: Session, topic: str, ref: str, action: str) -> Outcome:
    match = REF.fullmatch(ref)
    if match is None:
        return Outcome(bounded(ref), False, "not a message reference")
    partition, offset = int(match.group(1)), int(match.group(2))
    try:
        if action == "replay":
            await ports.dead_letters.replay(topic, partition, offset, session.actor)
        else:
            await ports.dead_letters.discard(topic, partition, offset, session.actor)
    except PermanentError as exc:
        if not exc.public:
            raise
        return Outcome(ref, False, bounded(exc.message))
    return Outcome(ref, True, "replayed" if action == "replay" else "discarded")


@router.post("/dlq/{topic}/selection", name="console_dlq_selection")
async def selection(
    request: Request,
    ports: Ports,
    session: PostedSession,
    topic: Topic,
    action: Annotated[Literal["replay", "discard"], Form()],
    ref: Annotated[list[str] | None, Form(max_length=500)] = None,
) -> Response:
    if not _known(topic):
        return _no_topic(request, topic)
    outcomes = [await _one(ports, session, topic, r, action) for r in dict.fromkeys(ref or [])]
    letters = await ports.dead_letters.list(topic)
    if not outcomes:
        return _list_page(
            request,
            topic,
            letters,
            status=422,
            outcomes=[Outcome("—", False, "select at least one message")],
        )
    status = 200 if any(o.ok for o in outcomes) else 422
    return _list_page(request, topic, letters, status=status, outcomes=outcomes)

"""Who is using the console: an operator key, pasted once on the sign-in page and then
kept in an HttpOnly, SameSite=Strict cookie (Secure over https), or sent as an API key
header by a script. A tenant key is refused (403), no key asks to sign in (401).

Every POST made with the cookie carries a CSRF token (a form field or the
``X-CSRF-Token`` header): an HMAC of the key, so it needs no server state and only a
page rendered for that key knows it. SameSite=Strict is the second layer."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Header, Request, Response

from services.ops.actions import Actor
from services.submitter.console.ports import Ports
from services.submitter.console.render import base_path
from services.submitter.keys import KeyRecord, authenticate_record, presented_key

COOKIE = "td_console"
LOGIN_COOKIE = "td_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_S = 12 * 3600
LOGIN_FORM_S = 3600


class SignInRequired(Exception):
    """No usable key: the sign-in page, with why when a key was presented."""

    def __init__(self, reason: str | None = None, *, stale_cookie: bool = False) -> None:
        super().__init__(reason or "sign in")
        self.reason = reason
        self.stale_cookie = stale_cookie


class NotOperator(Exception):
    """A live tenant key: it may not use the console."""


class CsrfRejected(Exception):
    """A POST made with the cookie but without this session's token."""


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str
    via_cookie: bool


def csrf_token(key: str) -> str:
    return hmac.new(key.encode(), b"tapedeck-console-csrf", hashlib.sha256).hexdigest()


def actor_of(record: KeyRecord) -> Actor:
    return Actor(key_id=record.key_id, name=record.name or "")


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_session_cookie(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        max_age=SESSION_S,
        path=base_path(request),
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path=base_path(request), httponly=True, samesite="strict", secure=secure(request)
    )


def login_nonce(request: Request) -> str:
    """The sign-in form's token: the one already in the browser's cookie, else a new one
    (set by :func:`set_login_cookie` on the page that shows the form)."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if len(current) == 43 else secrets.token_urlsafe(32)


def set_login_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_FORM_S,
        path=f"{base_path(request)}/login",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


async def current_session(request: Request, ports: Ports) -> Session:
    cookie = request.cookies.get(COOKIE)
    key = cookie or presented_key(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    if not key:
        raise SignInRequired()
    record = await authenticate_record(ports.keys, key)
    if record is None:
        raise SignInRequired("That key is unknown or was revoked.", stale_cookie=bool(cookie))
    session = Session(actor_of(record), csrf_token(key), via_cookie=bool(cookie))
    if not record.is_operator:
        raise NotOperator()
    request.state.console_session = session
    return session


OperatorSession = Annotated[Session, Depends(current_session)]


async def posted_session(
    session: OperatorSession,
    csrf_form: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    csrf_header: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Session:
    # A key sent in a header is not something a browser adds by itself: no CSRF there.
    if session.via_cookie:
        given = csrf_form or csrf_header or ""
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise CsrfRejected()
    return session


PostedSession = Annotated[Session, Depends(posted_session)]

"""Signing in (pasting an operator key) and out."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from services.submitter.console.auth import (
    COOKIE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    CsrfRejected,
    NotOperator,
    SignInRequired,
    clear_session_cookie,
    csrf_token,
    current_session,
    set_session_cookie,
)
from services.submitter.console.ports import Ports
from services.submitter.console.render import base_path
from services.submitter.console.routing import ConsoleRoute, safe_next, sign_in_page
from services.submitter.keys import authenticate_record

router = APIRouter(route_class=ConsoleRoute)

KEY_MAX = 256


@router.get("/login", name="console_login")
async def login_form(request: Request, ports: Ports, next: str | None = None) -> Response:
    try:
        await current_session(request, ports)
    except SignInRequired as exc:
        return sign_in_page(request, status=200, next_path=next, clear=exc.stale_cookie)
    except NotOperator:
        return sign_in_page(request, status=200, next_path=next)
    return RedirectResponse(safe_next(request, next), status_code=303)


@router.post("/login")
async def login(
    request: Request,
    ports: Ports,
    key: Annotated[str, Form(max_length=KEY_MAX)] = "",
    login_token: Annotated[str, Form(max_length=KEY_MAX)] = "",
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(login_token.encode(), expected.encode()):
        return sign_in_page(
            request,
            status=403,
            next_path=next,
            reason="The sign-in form expired. Paste the key again.",
        )
    key = key.strip()
    record = await authenticate_record(ports.keys, key) if key else None
    if record is None:
        reason = "Paste an operator key." if not key else "That key is unknown or was revoked."
        return sign_in_page(request, status=401, reason=reason, next_path=next)
    if not record.is_operator:
        return sign_in_page(
            request,
            status=403,
            next_path=next,
            reason="That is a tenant key. The console needs an operator key.",
        )
    response = RedirectResponse(safe_next(request, next), status_code=303)
    set_session_cookie(response, request, key)
    response.delete_cookie(LOGIN_COOKIE, path=f"{base_path(request)}/login")
    return response


@router.post("/logout", name="console_logout")
async def logout(
    request: Request, csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = ""
) -> Response:
    # Any key may sign out, a tenant key shown the door included; the token is the
    # cookie's own, so a page of another site cannot sign an operator out.
    cookie = request.cookies.get(COOKIE)
    if cookie and not hmac.compare_digest(csrf.encode(), csrf_token(cookie).encode()):
        raise CsrfRejected()
    response = RedirectResponse(f"{base_path(request)}/login", status_code=303)
    clear_session_cookie(response, request)
    return response

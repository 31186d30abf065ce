"""Failures on console routes become HTML pages (never the API's JSON, never internals):
the sign-in page for 401, plain words for everything else. A route class does it, so
the app's own handlers stay as they are for the API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka.errors import KafkaConnectionError
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException

from services.common.errors import PermanentError, TransientError
from services.submitter.console.auth import (
    COOKIE,
    CsrfRejected,
    NotOperator,
    SignInRequired,
    clear_session_cookie,
    csrf_token,
    login_nonce,
    set_login_cookie,
)
from services.submitter.console.render import base_path, render
from services.submitter.http.errors import ApiError, bounded, from_validation, status_for

log = logging.getLogger(__name__)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

STATUS_TITLES = {
    400: "Bad request",
    401: "Sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    422: "Invalid request",
    500: "Something went wrong",
    503: "Service unavailable",
}


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after signing in: a console page only, never another site."""
    base = base_path(request)
    if target and target.startswith(base + "/") and "//" not in target and "\\" not in target:
        return target
    return base + "/jobs"


def sign_in_page(
    request: Request,
    *,
    status: int = 401,
    reason: str | None = None,
    next_path: str | None = None,
    clear: bool = False,
) -> Response:
    nonce = login_nonce(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = {"WWW-Authenticate": 'Cookie realm="tapedeck-console"'} if status == 401 else {}
    if request.headers.get("hx-request"):
        # A live fragment whose session ended: reload the whole page, which signs in.
        headers["HX-Refresh"] = "true"
    response = render(
        request,
        "login.html",
        status=status,
        headers=headers,
        reason=reason,
        nonce=nonce,
        next_path=safe_next(request, next_path or here),
    )
    set_login_cookie(response, request, nonce)
    if clear:
        clear_session_cookie(response, request)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    headers = {"HX-Refresh": "true"} if request.headers.get("hx-request") and status == 403 else {}
    return render(
        request,
        "error.html",
        status=status,
        headers=headers,
        title=STATUS_TITLES.get(status, "Error"),
        message=message,
    )


def page_for(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInRequired):
        return sign_in_page(request, reason=exc.reason, clear=exc.stale_cookie)
    if isinstance(exc, NotOperator):
        cookie = request.cookies.get(COOKIE)
        return render(
            request,
            "forbidden.html",
            status=403,
            title="Not an operator key",
            signout_csrf=csrf_token(cookie) if cookie else None,
        )
    if isinstance(exc, CsrfRejected):
        return error_page(request, 403, "This form has expired. Reload the page and try again.")
    if isinstance(exc, RequestValidationError):
        error = from_validation(list(exc.errors()))
        return error_page(request, 422, error.message)
    if isinstance(exc, ApiError):
        return error_page(request, exc.status, exc.message)
    if isinstance(exc, PermanentError) and exc.public:
        return error_page(request, status_for(exc.code), bounded(exc.message))
    if isinstance(exc, TransientError | ConnectionFailure | KafkaConnectionError):
        log.warning("backing service unavailable on %s: %r", request.url.path, exc)
        return error_page(request, 503, "A backing service is unavailable. Try again shortly.")
    if isinstance(exc, HTTPException):
        return error_page(request, exc.status_code, STATUS_TITLES.get(exc.status_code, "Error"))
    log.error("console error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "The console could not show this page.")


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return page_for(request, exc)

        return route

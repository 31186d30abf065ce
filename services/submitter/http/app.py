"""The submitter's HTTP app: factory, lifespan and the one error shape for every failure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from schemas.codes import Code
from services.common.errors import PermanentError, TransientError
from services.submitter.console.router import build_router as console_router
from services.submitter.http import health, metrics
from services.submitter.http.cached_clips import CachedClipFastPath
from services.submitter.http.errors import ApiError, error_body, from_validation, status_message
from services.submitter.http.routes import clips, episodes, jobs, legacy_audio, media, merges
from services.submitter.http.routes import ops as ops_routes
from services.submitter.http.tracing import TracedAPI
from services.submitter.runtime import open_runtime
from services.submitter.settings import SubmitterSettings

log = logging.getLogger(__name__)


def allowed_methods(app: FastAPI, scope: Any) -> list[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "__none__"})
        if match is Match.PARTIAL and isinstance(route, APIRoute):
            methods |= route.methods or set()
    return sorted(methods)


def create_api(settings: SubmitterSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            yield

    app = TracedAPI(
        title="Tapedeck submitter",
        version="1.0.0",
        summary="Register episodes and fetch clips of them.",
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # A path with a stray slash is a 404 in the one error shape, not a redirect that
        # sends a client (and its key) elsewhere.
        redirect_slashes=False,
    )
    _install_error_handlers(app)
    app.include_router(episodes.router)
    app.include_router(clips.build_router(settings.clip_max_duration_ms))
    app.include_router(jobs.router)
    app.include_router(media.router)
    app.include_router(merges.router)
    app.include_router(legacy_audio.router)
    app.include_router(ops_routes.router)
    app.include_router(health.router)
    app.include_router(console_router())
    app.include_router(metrics.router)
    # Added first so the request metrics wrap it: its answers are counted like the route's.
    app.add_middleware(CachedClipFastPath)
    app.add_middleware(metrics.RequestMetrics)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = from_validation(list(exc.errors()))
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = status_message(exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route on the path; a path with a route per
            # method (GET and POST /v1/jobs) allows all of them.
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return JSONResponse(error_body(code, message), status_code=exc.status_code,
                            headers=headers)  # fmt: skip

    @app.exception_handler(TransientError)
    @app.exception_handler(ConnectionFailure)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("backing service unavailable on %s: %r", request.url.path, exc)
        error = ApiError(
            Code.UNAVAILABLE,
            "a backing service is unavailable; try again",
            headers={"Retry-After": "5"},
            retryable=True,
        )
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(PermanentError)
    async def permanent(request: Request, exc: PermanentError) -> JSONResponse:
        if exc.public:
            # Written for the caller (a job rule, a refused callback URL): its code's status.
            headers = {}
            retry_after = getattr(exc, "retry_after_s", None)
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            error = ApiError(exc.code, exc.message, headers=headers)
            return JSONResponse(error.body(), status_code=error.status, headers=error.headers)
        # Otherwise no route mapped it: a bug, so 500 whatever its code's kind.
        # The code is a fixed, safe vocabulary; the message may name internal keys.
        log.error("unmapped %r on %s", exc, request.url.path)
        body = error_body(exc.code, "the request could not be completed")
        return JSONResponse(body, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Full detail goes to the log only; the caller learns nothing about internals.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            error_body(Code.INTERNAL_ERROR, "internal server error"), status_code=500
        )

"""The submitter's HTTP app: factory, lifespan and the one error shape for every failure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.codes import Code
from services.common.errors import PermanentError, TransientError
from services.submitter.http import health
from services.submitter.http.errors import ApiError, error_body, from_validation, status_message
from services.submitter.http.routes import clips, episodes
from services.submitter.runtime import open_runtime
from services.submitter.settings import SubmitterSettings

log = logging.getLogger(__name__)


def create_api(settings: SubmitterSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="Tapedeck submitter",
        version="1.0.0",
        summary="Register episodes and fetch clips of them.",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    app.include_router(episodes.router)
    app.include_router(clips.router)
    app.include_router(health.router)
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
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = status_message(exc.status_code)
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

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
        # Reaching here means no route mapped it: a bug, so 500 whatever its code's kind.
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

"""Trace context for the API: each request continues the caller's trace (its
``traceparent``) or starts one, everything the request logs or produces carries it, and
the response names the request's span in a ``traceparent`` header of its own.

The tracing wraps the whole app, error handling included, so a 500's log line and
response are traced too.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.obs import trace
from services.common.obs.logs import annotate, bind

_HEADER = trace.TRACEPARENT.encode()


class TraceMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = [value for name, value in scope["headers"] if name.lower() == _HEADER]
        # Two traceparent headers cannot both be the parent: start anew, as for a bad one.
        ctx = trace.start(given[0] if len(given) == 1 else None)

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(trace.TRACEPARENT, ctx.header())
            await send(message)

        # bind(): a scope of the request's own, which its dependencies annotate.
        with trace.use(ctx), bind():
            await self.app(scope, receive, send_traced)


async def bind_path_ids(request: Request) -> None:
    """Lines about one job (``/v1/jobs/{job_id}`` and the like) carry its id."""
    annotate(job_id=request.path_params.get("job_id"))


class TracedAPI(FastAPI):
    """FastAPI with :class:`TraceMiddleware` outside everything, Starlette's error
    middleware included, and every route's lines bound to the job it names."""

    def __init__(self, **kwargs: Any) -> None:
        dependencies = [Depends(bind_path_ids), *(kwargs.pop("dependencies", None) or [])]
        super().__init__(dependencies=dependencies, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return TraceMiddleware(super().build_middleware_stack())

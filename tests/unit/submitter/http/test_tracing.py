"""The API's trace context: a request continues the caller's trace or starts one, the
response names the request's span, and everything the request does (its error handling
included) runs in that trace with the job it names bound."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Request
from fastapi.responses import JSONResponse

from services.common.obs import trace
from services.common.obs.logs import annotate, bound
from services.submitter.http.tracing import TracedAPI

PARENT = trace.TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def build() -> tuple[TracedAPI, list[dict[str, str]]]:
    app = TracedAPI()
    seen: list[dict[str, str]] = []

    @app.get("/v1/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, str]:
        annotate(tenant="acme")  # as the tenant dependency does
        return bound()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        seen.append(bound())
        return JSONResponse({"error": "internal"}, status_code=500)

    app.add_exception_handler(Exception, unexpected)
    return app, seen


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, str]]]]:
    app, seen = build()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c, seen


async def test_a_request_continues_the_callers_trace(
    client: tuple[httpx.AsyncClient, list[dict[str, str]]],
) -> None:
    c, _ = client
    resp = await c.get("/v1/jobs/job-1", headers={"traceparent": PARENT.header()})
    answered = trace.parse(resp.headers["traceparent"])
    assert answered is not None and answered.trace_id == PARENT.trace_id
    assert answered.span_id != PARENT.span_id
    # The request's lines carry its span, the job it names and the tenant found on the way.
    assert resp.json() == {"trace_id": PARENT.trace_id, "span_id": answered.span_id,
                           "job_id": "job-1", "tenant": "acme"}  # fmt: skip
    assert bound() == {} and trace.current() is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"},
        {"traceparent": PARENT.header().upper()},
        [("traceparent", PARENT.header()), ("traceparent", PARENT.child().header())],
    ],
)
async def test_no_single_valid_traceparent_starts_a_new_trace(
    client: tuple[httpx.AsyncClient, list[dict[str, str]]],
    headers: dict[str, str] | list[tuple[str, str]],
) -> None:
    c, _ = client
    resp = await c.get("/v1/jobs/job-1", headers=headers)
    answered = trace.parse(resp.headers["traceparent"])
    assert answered is not None and answered.trace_id != PARENT.trace_id
    assert resp.json()["trace_id"] == answered.trace_id


async def test_an_unhandled_error_is_traced_too(
    client: tuple[httpx.AsyncClient, list[dict[str, str]]],
) -> None:
    c, seen = client
    resp = await c.get("/boom", headers={"traceparent": PARENT.header()})
    assert resp.status_code == 500
    answered = trace.parse(resp.headers["traceparent"])
    assert answered is not None and answered.trace_id == PARENT.trace_id
    assert [s["trace_id"] for s in seen] == [PARENT.trace_id]

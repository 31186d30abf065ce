"""The app's error handlers: one JSON shape, right statuses, nothing internal leaked."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pymongo.errors import ServerSelectionTimeoutError

from services.common.errors import PermanentError, TransientError
from services.submitter.http.app import create_api
from services.submitter.settings import SubmitterSettings

SECRET = "s3://internal-bucket/secret-key"


@pytest.fixture
def app() -> FastAPI:
    # No lifespan runs here, so nothing connects: only the framework layer is exercised.
    app = create_api(SubmitterSettings())

    @app.get("/boom/{kind}")
    async def boom(kind: str) -> None:
        raise {
            "transient": TransientError(SECRET),
            "mongo": ServerSelectionTimeoutError(SECRET),
            "permanent": PermanentError(SECRET, code="s3_error"),
            "bug": RuntimeError(SECRET),
        }[kind]

    return app


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/boom/transient", 503, "unavailable"),
        ("/boom/mongo", 503, "unavailable"),
        ("/boom/permanent", 500, "s3_error"),
        ("/boom/bug", 500, "internal_error"),
        ("/nowhere", 404, "not_found"),
    ],
)
async def test_failures_answer_in_one_shape_without_internals(
    app: FastAPI, path: str, status: int, code: str
) -> None:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get(path)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert SECRET not in r.text and "Traceback" not in r.text


async def test_wrong_method_is_405_in_the_same_shape(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.delete("/healthz")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"

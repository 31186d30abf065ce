"""Ids in paths: every bad one gets the same answer on every route, whatever its
characters, and no error quotes unbounded input. The OpenAPI document states the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.submitter.http.app import create_api
from services.submitter.http.deps import get_clip_ports, get_runtime
from services.submitter.http.errors import ELLIPSIS, QUOTE_MAX
from services.submitter.keys import create_key
from services.submitter.settings import SubmitterSettings
from tests.support.fakes import MemoryEpisodes, MemoryKeys
from tests.support.submitter import EPISODE, ClipWorld

CLIP_QUERY = "?start_time_ms=0&duration_ms=1000"
LONG_ID = "x" * 10_000

BAD_IDS = [
    "x%0Ay",  # a newline: Starlette's path convertor stops there
    "x%0Dy",
    "x%00y",
    "a%2Fb",
    "..%2Fx",
    "a..b",
    "-x",
    ".x",
    "x%20y",
    "%C3%A9",
    "x" * 129,
    LONG_ID,
]


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    keys = MemoryKeys()
    _, key = await create_key(keys, EPISODE.tenant_id)
    world = ClipWorld()
    app: FastAPI = create_api(SubmitterSettings())
    runtime = SimpleNamespace(keys=keys, episodes=MemoryEpisodes(EPISODE))
    app.dependency_overrides[get_runtime] = lambda: runtime
    app.dependency_overrides[get_clip_ports] = lambda: world.ports
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c, {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda s: s[:12])
@pytest.mark.parametrize("route", ["/api/v1/audio_clips/{}" + CLIP_QUERY, "/v1/episodes/{}"])
async def test_every_bad_episode_id_is_a_422_naming_it(
    client: tuple[httpx.AsyncClient, dict[str, str]], route: str, bad: str
) -> None:
    c, headers = client
    r = await c.get(route.format(bad), headers=headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_episode_id", "episode_id")
    assert "x" * (QUOTE_MAX + 1) not in r.text


@pytest.mark.parametrize("route", ["/api/v1/audio_clips/ep-1" + CLIP_QUERY, "/v1/episodes/ep-1"])
async def test_a_good_id_still_works(
    client: tuple[httpx.AsyncClient, dict[str, str]], route: str
) -> None:
    c, headers = client
    r = await c.get(route, headers=headers)
    assert r.status_code in (200, 202), r.text


async def test_unknown_ids_are_404_and_quoted_briefly(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, headers = client
    longest = "y" * 128
    for route in (f"/api/v1/audio_clips/{longest}{CLIP_QUERY}", f"/v1/episodes/{longest}"):
        r = await c.get(route, headers=headers)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "episode_not_found"
        message = r.json()["error"]["message"]
        assert longest not in message and "y" * QUOTE_MAX + ELLIPSIS in message
    for request_id in ("clip-nope", "a%2Fb", "x%0Ay", LONG_ID):
        r = await c.get(f"/api/v1/clip_requests/{request_id}", headers=headers)
        assert r.status_code == 404, r.text
        assert r.json()["error"] == {
            "code": "request_not_found",
            "message": "unknown clip request",
            "param": "request_id",
        }


async def test_huge_numbers_are_not_echoed(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, headers = client
    start = "9" * 4000
    r = await c.get(
        f"/api/v1/audio_clips/ep-1?start_time_ms={start}&duration_ms=10", headers=headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in ("invalid_time", "start_past_end")
    assert len(r.json()["error"]["message"]) < 200


def _operation(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    operation: dict[str, Any] = spec["paths"][path][method]
    return operation


def test_the_document_states_the_rules() -> None:
    settings = SubmitterSettings.model_validate({"CLIP_MAX_DURATION_MS": 1234})
    spec = create_api(settings).openapi()
    clip = _operation(spec, "/api/v1/audio_clips/{episode_id}")
    params = {p["name"]: p["schema"] for p in clip["parameters"]}
    assert params["episode_id"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
    assert params["episode_id"]["not"] == {"pattern": r"\.\."}
    assert (params["episode_id"]["minLength"], params["episode_id"]["maxLength"]) == (1, 128)
    assert params["start_time_ms"]["minimum"] == 0
    assert (params["duration_ms"]["minimum"], params["duration_ms"]["maximum"]) == (1, 1234)
    assert params["format"]["enum"] == ["mp3", "m4a", "wav"]

    statuses = {
        ("/api/v1/audio_clips/{episode_id}", "get"): {"401", "404", "422", "500", "502", "503"},
        ("/api/v1/clip_requests/{request_id}", "get"): {"401", "404", "503"},
        ("/v1/episodes", "post"): {"401", "403", "404", "409", "413", "415", "422", "503"},
        ("/v1/episodes/{episode_id}", "get"): {"401", "404", "422", "503"},
    }
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for (path, method), expected in statuses.items():
        responses = _operation(spec, path, method)["responses"]
        errors = {code for code in responses if code >= "400"}
        assert errors == expected, path
        for code in errors:
            assert responses[code]["content"]["application/json"]["schema"] == error_ref

    body = _operation(spec, "/v1/episodes", "post")["requestBody"]["content"]
    s3_key = body["application/json"]["schema"]["properties"]["s3_key"]
    assert (s3_key["minLength"], s3_key["maxLength"]) == (1, 1024)
    assert body["multipart/form-data"]["encoding"] == {"file": {"contentType": "audio/*"}}

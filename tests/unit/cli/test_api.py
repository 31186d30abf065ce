"""The API client: URL and key from flags or the environment, and every failure as one
line with the API's own error code and message."""

from __future__ import annotations

import argparse

import httpx
import pytest

from services.cli.api import KEY_ENV, URL_ENV, Api, ApiFailure, api_key, base_url, failure
from services.cli.args import USAGE, CliError


def namespace(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"api_url": None, "key": None, "timeout": 5.0, **kw})


def test_url_and_key_come_from_flags_before_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(URL_ENV, "http://env.example:9000/")
    monkeypatch.setenv(KEY_ENV, " td_env ")
    assert base_url(namespace()) == "http://env.example:9000"
    assert api_key(namespace()) == "td_env"
    assert base_url(namespace(api_url="https://flag.example")) == "https://flag.example"
    assert api_key(namespace(key="td_flag")) == "td_flag"


def test_without_a_key_or_with_a_bad_url_it_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(URL_ENV, raising=False)
    assert base_url(namespace()) == "http://127.0.0.1:8080"
    with pytest.raises(CliError) as no_key:
        api_key(namespace())
    assert no_key.value.code == USAGE and KEY_ENV in no_key.value.message
    for bad in ("ftp://host", "127.0.0.1:8080", "http://"):
        with pytest.raises(CliError) as url:
            base_url(namespace(api_url=bad))
        assert url.value.code == USAGE and "http(s) URL" in url.value.message


def test_the_apis_error_shape_becomes_code_and_message() -> None:
    answer = httpx.Response(
        404, json={"error": {"code": "job_not_found", "message": "no job 'x'", "param": "id"}}
    )
    err = failure(answer)
    assert (err.http_status, err.error_code) == (404, "job_not_found")
    assert err.message == "job_not_found: no job 'x'"
    limited = failure(
        httpx.Response(
            429,
            headers={"Retry-After": "7"},
            json={"error": {"code": "rate_limited", "message": "slow down"}},
        )
    )
    assert limited.message == "rate_limited: slow down (retry after 7 s)"


def test_an_answer_not_in_the_error_shape_is_not_echoed() -> None:
    err = failure(httpx.Response(502, text="<html>secret upstream page</html>"))
    assert err.message == "HTTP 502 from the API (not an API error answer)"
    assert "secret" not in err.message


async def test_requests_carry_the_key_and_drop_unset_parameters() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async with Api("http://api", "td_k", transport=httpx.MockTransport(handler)) as api:
        assert await api.get("/v1/jobs", {"status": "FAILED", "kind": None}) == {"ok": True}
    assert seen[0].headers["authorization"] == "Bearer td_k"
    assert dict(seen[0].url.params) == {"status": "FAILED"}


async def test_transport_failures_are_one_line_naming_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="hello")

    expected = {
        refuse: "cannot reach the API at http://api",
        slow: "the API at http://api did not answer in time",
        not_json: "the API at http://api answered HTTP 200 without JSON",
    }
    for handler, message in expected.items():
        async with Api("http://api", "td_k", transport=httpx.MockTransport(handler)) as api:
            with pytest.raises(CliError) as exc:
                await api.get("/v1/jobs")
        assert exc.value.message == message
        assert not isinstance(exc.value, ApiFailure)

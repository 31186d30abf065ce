"""The console as a whole: HTML for every failure (no internals), security headers,
vendored assets, and markup the CSP accepts."""

from __future__ import annotations

from importlib import resources

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.common.errors import TransientError
from tests.support.console import DLQ, Broken
from tests.unit.submitter.console.conftest import Console

SECRET = "s3://internal-bucket/secret-key?X-Amz-Signature=abc"


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (Broken(SECRET), 500),
        (RuntimeError(SECRET), 500),
        (TransientError(SECRET), 503),
        (ServerSelectionTimeoutError(SECRET), 503),
    ],
)
async def test_failures_are_html_pages_without_internals(
    console: Console, failure: Exception, status: int
) -> None:
    console.jobs.fail_with = failure
    for path in ("/console/jobs", "/console/jobs/job-audio"):
        r = await console.client.get(path, headers=console.signed_in())
        assert r.status_code == status
        assert r.headers["content-type"].startswith("text/html")
        assert (
            SECRET not in r.text and "Traceback" not in r.text and "internal-bucket" not in r.text
        )


async def test_unknown_console_paths_are_html_404s(console: Console) -> None:
    for method, path in (("GET", "/console/nowhere"), ("POST", "/console/jobs/x/y/z")):
        r = await console.client.request(method, path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    # The API keeps its JSON.
    api = await console.client.get("/v1/nowhere")
    assert api.json()["error"]["code"] == "not_found"


async def test_pages_carry_security_headers(console: Console) -> None:
    for headers in ({}, console.signed_in()):
        r = await console.client.get("/console/jobs", headers=headers)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


async def test_home_goes_to_the_jobs(console: Console) -> None:
    for path in ("/console", "/console/"):
        r = await console.client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/console/jobs", path


async def test_malformed_requests_are_html_pages_naming_the_parameter(console: Console) -> None:
    r = await console.client.get(f"/console/dlq/{DLQ}/first/1", headers=console.signed_in())
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "partition" in r.text
    long_stage = await console.client.post(
        "/console/jobs/job-audio/retry",
        data={"stage": "x" * 100, "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert long_stage.status_code == 422 and "stage" in long_stage.text
    assert console.jobs.acted == []


async def test_assets_are_served_from_the_package(console: Console) -> None:
    htmx = await console.client.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and htmx.headers["content-type"].startswith("text/javascript")
    assert htmx.text.startswith("var htmx=")
    css = await console.client.get("/console/static/console.css")
    assert css.headers["content-type"].startswith("text/css")
    for name in ("nope.js", "..%2Frender.py", "%2E%2E%2F__init__.py"):
        r = await console.client.get(f"/console/static/{name}")
        assert r.status_code == 404, name
    licence = resources.files("services.submitter.console") / "static" / "htmx.LICENSE"
    assert "Zero-Clause BSD" in licence.read_text()


async def test_pages_reference_only_vendored_assets(console: Console) -> None:
    r = await console.client.get("/console/jobs", headers=console.signed_in())
    assert 'src="/console/static/htmx.min.js"' in r.text
    assert "https://" not in r.text and "cdn" not in r.text.lower()


def test_templates_have_no_inline_styles_or_scripts() -> None:
    # The CSP refuses both; a template that used them would break silently in browsers.
    folder = resources.files("services.submitter.console") / "templates"
    pages = [p for p in folder.iterdir() if p.name.endswith(".html")]
    pages += [p for d in folder.iterdir() if d.is_dir() for p in d.iterdir()]
    assert len(pages) >= 10
    for page in pages:
        text = page.read_text()
        assert "style=" not in text and "<style" not in text, page.name
        assert "<script>" not in text and " on" + "click=" not in text, page.name

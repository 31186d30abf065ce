"""Who may use the console: an operator key (cookie or header), never a tenant key; the
session cookie's flags; CSRF on every cookie-authenticated POST; sign-out."""

from __future__ import annotations

import re

import httpx

from services.submitter.console.auth import COOKIE, LOGIN_COOKIE
from tests.unit.submitter.console.conftest import Console


def login_token(page: httpx.Response) -> str:
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def sign_in(console: Console, key: str, **extra: str) -> httpx.Response:
    console.client.cookies.clear()  # a fresh browser
    form = await console.client.get("/console/login")
    token = login_token(form)
    return await console.client.post(
        "/console/login",
        data={"key": key, "login_token": token, **extra},
        headers={"cookie": f"{LOGIN_COOKIE}={token}"},
    )


async def test_no_key_gets_401_and_the_sign_in_page(console: Console) -> None:
    r = await console.client.get("/console/jobs")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert 'name="key"' in r.text and 'type="password"' in r.text
    # Back to the page asked for once signed in.
    assert 'name="next" value="/console/jobs"' in r.text
    assert console.jobs.listed == []


async def test_a_tenant_key_is_refused_with_403(console: Console) -> None:
    as_header = await console.client.get(
        "/console/jobs", headers={"Authorization": f"Bearer {console.tenant_key}"}
    )
    as_cookie = await console.client.get(
        "/console/jobs", headers=console.signed_in(console.tenant_key)
    )
    for r in (as_header, as_cookie):
        assert r.status_code == 403
        assert "Not an operator key" in r.text
    assert console.jobs.listed == []
    # Signing in with one sets no session.
    refused = await sign_in(console, console.tenant_key)
    assert refused.status_code == 403 and "tenant key" in refused.text
    assert f"{COOKIE}=" not in refused.headers.get("set-cookie", "")


async def test_an_operator_key_in_a_header_works_without_a_cookie(console: Console) -> None:
    r = await console.client.get("/console/jobs", headers={"X-API-Key": console.operator_key})
    assert r.status_code == 200 and "job-audio" in r.text


async def test_signing_in_sets_a_strict_http_only_cookie(console: Console) -> None:
    r = await sign_in(console, console.operator_key, next="/console/dlq")
    assert r.status_code == 303 and r.headers["location"] == "/console/dlq"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags  # served over http here
    assert cookie.startswith(f"{COOKIE}={console.operator_key};")


async def test_the_cookie_is_secure_over_https(console: Console) -> None:
    https = await console.client.post(
        "https://console.test/console/login",
        data={"key": console.operator_key, "login_token": "x" * 43},
        headers={"cookie": f"{LOGIN_COOKIE}={'x' * 43}"},
    )
    cookie = next(c for c in https.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


async def test_sign_in_goes_only_to_console_pages(console: Console) -> None:
    for target in ("https://evil.test/", "//evil.test/console/jobs", "/v1/jobs"):
        r = await sign_in(console, console.operator_key, next=target)
        assert r.headers["location"] == "/console/jobs", target


async def test_a_bad_key_or_a_forged_form_signs_nobody_in(console: Console) -> None:
    unknown = await sign_in(console, "td_000000000000_" + "A" * 43)
    assert unknown.status_code == 401 and "unknown or was revoked" in unknown.text
    forged = await console.client.post(
        "/console/login", data={"key": console.operator_key, "login_token": "made-up"}
    )
    assert forged.status_code == 403 and "expired" in forged.text
    for r in (unknown, forged):
        assert f"{COOKIE}={console.operator_key}" not in r.headers.get("set-cookie", "")


async def test_a_revoked_key_in_the_cookie_signs_out(console: Console) -> None:
    r = await console.client.get(
        "/console/jobs", headers=console.signed_in("td_000000000000_" + "B" * 43)
    )
    assert r.status_code == 401
    assert any(c.startswith(f'{COOKIE}=""') for c in r.headers.get_list("set-cookie"))


async def test_cookie_posts_need_the_csrf_token(console: Console) -> None:
    url = "/console/jobs/job-audio/retry"
    missing = await console.client.post(url, data={"stage": "audio"}, headers=console.signed_in())
    wrong = await console.client.post(
        url, data={"stage": "audio", "csrf_token": "0" * 64}, headers=console.signed_in()
    )
    for r in (missing, wrong):
        assert r.status_code == 403 and "expired" in r.text
    assert console.jobs.acted == []
    # As a header (what htmx sends) it is accepted too.
    ok = await console.client.post(
        url, data={"stage": "audio"}, headers={**console.signed_in(), "X-CSRF-Token": console.csrf}
    )
    assert ok.status_code == 303 and len(console.jobs.acted) == 1


async def test_a_key_sent_as_a_header_needs_no_csrf_token(console: Console) -> None:
    r = await console.client.post(
        "/console/jobs/job-audio/retry",
        data={"stage": "audio"},
        headers={"Authorization": f"Bearer {console.operator_key}"},
    )
    assert r.status_code == 303 and console.jobs.acted[0][:3] == ("retry", "job-audio", "audio")


async def test_sign_out_clears_the_cookie_and_needs_the_token(console: Console) -> None:
    forged = await console.client.post("/console/logout", headers=console.signed_in())
    assert forged.status_code == 403
    r = await console.client.post(
        "/console/logout", data={"csrf_token": console.csrf}, headers=console.signed_in()
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert any(c.startswith(f'{COOKIE}=""') for c in r.headers.get_list("set-cookie"))


async def test_pages_show_who_is_signed_in(console: Console) -> None:
    r = await console.client.get("/console/jobs", headers=console.signed_in())
    assert "Ada (" in r.text and 'action="/console/logout"' in r.text
    assert f'value="{console.csrf}"' in r.text


async def test_a_live_fragment_whose_session_ended_reloads_the_page(console: Console) -> None:
    r = await console.client.get("/console/jobs/rows", headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["HX-Refresh"] == "true"

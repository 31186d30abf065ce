"""Security against the real app and stack: every route asks for a key (401 without one),
operator routes and the console refuse a tenant's key (403), another tenant's job,
episode or clip answers exactly as a missing one does, presigned URLs stop working when
they expire, and pip-audit finds no known vulnerability in the installed dependencies.

(No secret, key or signed URL in any log line or event over a whole production run:
tests/e2e/test_trace_and_logs.py. In error bodies: tests/reliability/test_bad_http.py.
ffmpeg's protocol and format whitelists: tests/reliability/test_bad_media.py.)
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.settings import Settings
from services.submitter.console.views import dlq, jobs, pipeline
from services.submitter.keys import OPERATOR_ROLE, create_key
from tests.integration.submitter.kit import Api, make_tone, running_api
from tests.support.isolated import isolated_names

HERE = Path(__file__).resolve().parent
ALLOW_LIST = HERE / "pip_audit_allow.toml"
# Answer without a key, on purpose: probes, the API's own description, its docs.
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
SAMPLE = {
    "episode_id": "ep-1",
    "request_id": "r1",
    "job_id": "j1",
    "topic": "tapedeck.clip.requests",
    "partition": "0",
    "offset": "0",
    "name": "x",
}


@pytest.fixture(autouse=True)
def _no_faults_left() -> None:
    """Replaces the fault rig's fixture of this name: no fault is injected here."""


@pytest.fixture(scope="module")
def names(stack: Settings) -> Iterator[Settings]:
    with isolated_names(stack) as s:
        yield s


@dataclass
class World:
    api: Api
    acme: dict[str, str]
    other: dict[str, str]
    operator: dict[str, str]
    episode: str
    clip_request: str
    job: str
    legacy_job: str
    tone: bytes


@pytest.fixture(scope="module")
async def world(names: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tone = await make_tone(tmp_path_factory.mktemp("security") / "tone.mp3", seconds=1.0)
    async with running_api(names, CLIP_WAIT_TIMEOUT_S=0.05) as api:
        acme, other = await api.key_for("acme"), await api.key_for("other")
        _, op_key = await create_key(api.runtime.keys, "ops", role=OPERATOR_ROLE, name="sec")
        upload = {"file": ("tone.mp3", tone.read_bytes(), "audio/mpeg")}
        r = await api.client.post("/v1/episodes", headers=acme, files=upload,
                                  data={"episode_id": "ep-acme"})  # fmt: skip
        assert r.status_code == 201, r.text
        r = await api.client.get("/api/v1/audio_clips/ep-acme?start_time_ms=0&duration_ms=500",
                                 headers=acme)  # fmt: skip
        assert r.status_code == 202, r.text
        clip_request = r.json()["request_id"]
        job = {"job_kind": "clip", "episode_id": "ep-acme", "start_ms": 0, "duration_ms": 500}
        r = await api.client.post("/v1/jobs", headers=acme, json=job)
        assert r.status_code == 202, r.text
        clip_job = str(r.json()["job_id"])
        scenes = {"job_id": "legacy-acme", "scenes": [{"prompt": "rain", "duration_s": 2}]}
        r = await api.client.post("/api/v3/audio/generate-scenes", headers=acme, json=scenes)
        assert r.status_code == 202, r.text
        yield World(api, acme, other, {"Authorization": f"Bearer {op_key}"}, "ep-acme",
                    clip_request, clip_job, "legacy-acme", tone.read_bytes())  # fmt: skip


def operations(api: Api) -> list[tuple[str, str, bool]]:
    """(method, path with sample ids, needs a key) of every operation in the document."""
    out = []
    for path, ops in api.app.openapi()["paths"].items():
        for method, op in ops.items():
            concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
            out.append((method.upper(), concrete, bool(op.get("security"))))
    return out


def console_pages() -> list[tuple[str, str]]:
    out = []
    for area in (jobs.router, dlq.router, pipeline.router):
        for route in area.routes:
            path = "/console" + re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"),
                                       route.path)  # type: ignore[attr-defined]  # fmt: skip
            for method in sorted(route.methods):  # type: ignore[attr-defined]
                out.append((method, path))
    return out


async def test_every_route_wants_a_key_and_operator_routes_an_operators(world: World) -> None:
    client = world.api.client
    ops = operations(world.api)
    assert len(ops) > 20
    for method, path, secured in ops:
        if path.split("?")[0] in PUBLIC:
            continue
        assert secured, f"{method} {path} is not declared as needing a key"
        for headers in ({}, {"Authorization": "Bearer td_000000000000_not-a-key"},
                        {"X-API-Key": "nope"}, {"Authorization": "Basic YTpi"}):  # fmt: skip
            r = await client.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text[:200])
            assert r.json()["error"]["code"] == "unauthorized", (method, path)
            assert r.headers["www-authenticate"].startswith("Bearer")
        if path.startswith("/v1/ops/"):
            r = await client.request(method, path, headers=world.acme)
            assert r.status_code == 403, (method, path, r.text[:200])
            assert r.json()["error"]["code"] == "forbidden", (method, path)
            r = await client.request(method, path, headers=world.operator)
            assert r.status_code not in (401, 403), (method, path, r.text[:200])


async def test_the_console_signs_in_operators_only(world: World) -> None:
    client = world.api.client
    pages = console_pages()
    assert len(pages) >= 10
    for method, path in pages:
        r = await client.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code)
        assert "text/html" in r.headers["content-type"], (method, path)
        r = await client.request(method, path, headers=world.acme)
        assert r.status_code == 403, (method, path, r.status_code)
        # A tenant's key as the console's cookie is refused the same way.
        key = world.acme["Authorization"].removeprefix("Bearer ")
        r = await client.request(method, path, headers={"Cookie": f"td_console={key}"})
        assert r.status_code == 403, (method, path, r.status_code)
    r = await client.get("/console/jobs", headers=world.operator)
    assert r.status_code == 200


def shape(r: httpx.Response, asked: str) -> tuple[int, str, str]:
    """Status, code and message with the asked-for id taken out: what a caller can
    compare between two answers."""
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    keys = ",".join(sorted(error))
    message = str(error.get("message", "")).replace(asked, "<id>")
    return r.status_code, f"{error.get('code')}|{keys}", message


async def test_another_tenants_objects_answer_as_missing_ones(world: World) -> None:
    client, w = world.api.client, world
    by_id = [
        ("GET", "/v1/episodes/{}", w.episode, None),
        ("GET", "/api/v1/audio_clips/{}?start_time_ms=0&duration_ms=500", w.episode, None),
        ("GET", "/api/v1/clip_requests/{}", w.clip_request, None),
        ("GET", "/v1/jobs/{}", w.job, None),
        ("GET", "/v1/jobs/{}/download", w.job, None),
        ("POST", "/v1/jobs/{}/cancel", w.job, None),
        ("POST", "/v1/jobs/{}/retry", w.job, None),
        ("GET", "/v1/merges/{}", w.job, None),
        ("GET", "/api/v3/audio/status/{}", w.legacy_job, None),
        ("GET", "/api/v3/audio/{}/download", w.legacy_job, None),
        ("POST", "/v1/jobs", w.episode,
         {"job_kind": "clip", "episode_id": "{}", "start_ms": 0, "duration_ms": 500}),
        ("POST", "/v1/episodes", w.episode, None),
    ]  # fmt: skip
    # The owner sees its own: the ids are real, so the comparison below is not empty.
    for path in ("/v1/episodes/{}", "/v1/jobs/{}"):
        own = await client.get(path.format(w.episode if "episodes" in path else w.job),
                               headers=w.acme)  # fmt: skip
        assert own.status_code == 200, own.text
    for method, template, theirs, body in by_id:
        missing = f"missing-{uuid.uuid4().hex[:8]}"
        answers = []
        for asked in (theirs, missing):
            kw: dict[str, Any] = {}
            if body is not None:
                kw["json"] = json.loads(json.dumps(body).replace("{}", asked))
            if template == "/v1/episodes":
                kw["data"] = {"episode_id": asked}
                kw["files"] = {"file": ("t.mp3", w.tone, "audio/mpeg")}
            r = await client.request(method, template.format(asked), headers=w.other, **kw)
            answers.append(shape(r, asked))
        assert answers[0] == answers[1], (method, template, answers)
        assert 400 <= answers[0][0] < 500 or template in ("/v1/jobs", "/v1/episodes"), answers


async def test_an_idempotency_key_is_per_tenant(world: World) -> None:
    client = world.api.client
    job = {"job_kind": "clip", "episode_id": "ep-x", "start_ms": 0, "duration_ms": 500}
    first = await client.post("/v1/jobs", headers={**world.acme, "Idempotency-Key": "same"},
                              json=job)  # fmt: skip
    second = await client.post("/v1/jobs", headers={**world.other, "Idempotency-Key": "same"},
                               json=job)  # fmt: skip
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    assert first.json()["job_id"] != second.json()["job_id"]
    theirs = await client.get(f"/v1/jobs/{first.json()['job_id']}", headers=world.other)
    assert theirs.status_code == 404


async def test_a_presigned_url_is_refused_once_it_expires(world: World, tmp_path: Path) -> None:
    media = world.api.runtime.media
    body = tmp_path / "b.bin"
    body.write_bytes(b"secret bytes")
    await media.upload_file("presign/b.bin", body)
    url = await media.presign_get("presign/b.bin", 2)
    signed_at = time.monotonic()
    async with httpx.AsyncClient() as plain:
        fresh = await plain.get(url)
        assert fresh.status_code == 200 and fresh.content == b"secret bytes"
        # Signatures count whole seconds: past two of them, and one more for the clock.
        await asyncio.sleep(max(0.0, signed_at + 3.5 - time.monotonic()))
        stale = await plain.get(url)
    assert stale.status_code == 403, stale.text[:300]
    assert b"secret bytes" not in stale.content


# -- known vulnerabilities ----------------------------------------------------------------------


def allowed() -> dict[str, str]:
    """Vulnerability id -> why it does not apply here (each entry must say)."""
    data = tomllib.loads(ALLOW_LIST.read_text())
    out = {}
    for entry in data.get("allow", []):
        assert entry.get("id") and str(entry.get("reason", "")).strip(), entry
        out[str(entry["id"])] = str(entry["reason"])
    return out


def test_pip_audit_finds_no_known_vulnerability(tmp_path: Path) -> None:
    allow = allowed()
    audit = Path(sys.executable).with_name("pip-audit")
    done = subprocess.run(
        [str(audit), "--progress-spinner", "off", "--skip-editable", "--format", "json",
         "--output", str(tmp_path / "audit.json")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    report_path = tmp_path / "audit.json"
    if not report_path.exists():
        pytest.xfail(f"pip-audit could not run or reach its service: {done.stderr[-600:]}")
    deps = json.loads(report_path.read_text())["dependencies"]
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        # pip-audit exits 0 and says "No known vulnerabilities found" when it could look
        # nothing up: that is no answer, and must not pass as one.
        reason = skipped[0]["skip_reason"] if skipped else "no dependency listed"
        pytest.xfail(
            f"pip-audit's vulnerability service (PyPI's JSON API) could not be reached from "
            f"here: all {len(skipped)} dependencies were skipped ({reason}); "
            "see the README's Reliability section"
        )
    findings = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
    for name, version, vuln in findings:
        ids = [vuln["id"], *vuln.get("aliases", [])]
        why = next((allow[i] for i in ids if i in allow), None)
        print(f"{name} {version}: {vuln['id']} ({', '.join(ids[1:])}) fixed in "
              f"{vuln.get('fix_versions')}: {why or 'NOT ALLOWED'}")  # fmt: skip
    unexplained = [
        f"{name} {version} {vuln['id']}"
        for name, version, vuln in findings
        if not any(i in allow for i in [vuln["id"], *vuln.get("aliases", [])])
    ]
    assert not unexplained, f"known vulnerabilities without a reason in {ALLOW_LIST.name}"
    assert not skipped, f"not audited: {[d['name'] for d in skipped]}"

"""Bad HTTP requests against the real app: each one is refused with a 4xx, a stable code
and a message in the one error shape, quoting nothing internal. Then hypothesis throws
random ids, numbers and bodies at the same routes: never a 5xx, always that shape.

(Schemathesis fuzzes the whole OpenAPI document: tests/integration/submitter/http/
test_openapi.py. This corpus holds what a schema-driven fuzzer does not think of.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.settings import Settings
from services.submitter.http.json_numbers import JSON_BODY_MAX
from tests.integration.submitter.kit import Api, make_tone, running_api
from tests.support.isolated import isolated_names

CLIPS = "/api/v1/audio_clips"
UPLOAD_MAX = 64 * 1024
JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _no_faults_left() -> None:
    """Replaces the fault rig's fixture of this name: no fault is injected here."""


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    code: str
    kw: dict[str, Any] = field(default_factory=dict)


def clip_job(**kw: Any) -> dict[str, Any]:
    return {"job_kind": "clip", "episode_id": "ep-1", "start_ms": 0, "duration_ms": 1000, **kw}


def production(callback_url: str) -> dict[str, Any]:
    return {"job_kind": "production", "prompt": "waves", "video": "ingest/acme/a.mp4",
            "feature": {"audio": False}, "callback_url": callback_url}  # fmt: skip


def raw(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": content_type}}


def clip(episode: str = "ep-1", start: str = "0", duration: str = "1000", **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"start_time_ms": start, "duration_ms": duration,
                                              **extra}.items())  # fmt: skip
    return f"{CLIPS}/{episode}?{query}"


NUMBERS = [
    ("negative", "-1", "invalid_time"),
    ("huge", str(10**30), "invalid_time"),
    ("past 2^53", str(2**53), "invalid_time"),
    ("fraction", "1.5", "invalid_time"),
    ("exponent", "1e3", "invalid_time"),
    ("NaN", "NaN", "invalid_time"),
    ("infinity", "Infinity", "invalid_time"),
    ("hex", "0x10", "invalid_time"),
    ("arabic-indic digits", quote("١٢"), "invalid_time"),
    ("fullwidth digits", quote("\uff11\uff12"), "invalid_time"),
    ("empty", "", "invalid_time"),
]
IDS = [
    ("traversal", quote("../../etc/passwd", safe="")),
    ("dot-dot", "%2e%2e"),
    ("bell", "ep%07"),
    ("nul", "%00"),
    ("newline", "ep%0Aset-cookie"),
    ("right-to-left override", quote("ep\u202e1")),
    ("accented", quote("épisode")),
    ("emoji", quote("\U0001f3a7")),
    ("10,000 characters", "a" * 10_000),
]
# Where a webhook may not go (SSRF), by address, by name and by scheme.
CALLBACKS = [
    ("loopback", "https://127.0.0.1/h", "invalid_callback_url"),
    ("loopback, short form", "https://127.1/h", "invalid_callback_url"),
    ("loopback, decimal", "https://2130706433/h", "invalid_callback_url"),
    ("loopback, hex", "https://0x7f000001/h", "invalid_callback_url"),
    ("loopback, octal", "https://0177.0.0.1/h", "invalid_callback_url"),
    ("loopback v6", "https://[::1]/h", "invalid_callback_url"),
    ("v4-mapped loopback", "https://[::ffff:127.0.0.1]/h", "invalid_callback_url"),
    ("6to4 of loopback", "https://[2002:7f00:1::1]/h", "invalid_callback_url"),
    ("NAT64 of loopback", "https://[64:ff9b::7f00:1]/h", "invalid_callback_url"),
    ("unspecified", "https://0.0.0.0/h", "invalid_callback_url"),
    ("private 10/8", "https://10.0.0.1/h", "invalid_callback_url"),
    ("private 172.16/12", "https://172.16.0.1/h", "invalid_callback_url"),
    ("private 192.168/16", "https://192.168.1.1/h", "invalid_callback_url"),
    ("shared 100.64/10", "https://100.64.0.1/h", "invalid_callback_url"),
    ("link-local", "https://169.254.1.1/h", "invalid_callback_url"),
    ("link-local v6", "https://[fe80::1]/h", "invalid_callback_url"),
    ("unique-local v6", "https://[fd12:3456::1]/h", "invalid_callback_url"),
    ("AWS metadata", "https://169.254.169.254/latest/meta-data/", "invalid_callback_url"),
    ("AWS metadata v6", "https://[fd00:ec2::254]/latest/", "invalid_callback_url"),
    ("Alibaba metadata", "https://100.100.100.200/latest/", "invalid_callback_url"),
    ("GCP metadata by name", "https://metadata.google.internal/x", "invalid_callback_url"),
    ("*.internal", "https://db.corp.internal/x", "invalid_callback_url"),
    ("name resolving to loopback", "https://localhost/h", "invalid_callback_url"),
    ("same, trailing dot", "https://localhost./h", "invalid_callback_url"),
    ("broadcast", "https://255.255.255.255/h", "invalid_callback_url"),
    ("multicast", "https://224.0.0.1/h", "invalid_callback_url"),
    ("reserved", "https://240.0.0.1/h", "invalid_callback_url"),
    ("http (not allowed)", "http://example.com/h", "invalid_callback_url"),
    ("credentials", "https://user:pw@example.com/h", "invalid_callback_url"),
    ("bad port", "https://example.com:99999/h", "invalid_callback_url"),
    ("unclosed bracket", "https://[::1/h", "invalid_callback_url"),
    ("file", "file:///etc/passwd", "invalid_request"),
    ("gopher", "gopher://example.com/x", "invalid_request"),
    ("ftp", "ftp://example.com/x", "invalid_request"),
    ("dict", "dict://127.0.0.1:11211/stat", "invalid_request"),
    ("javascript", "javascript:alert(1)", "invalid_request"),
    ("data", "data:text/plain,hi", "invalid_request"),
    ("no host", "https://", "invalid_request"),
    ("leading blank", " https://example.com/h", "invalid_request"),
]
# Numbers too large to be a duration are longer than any clip may be.
DURATION_CODE = {"huge": "duration_too_long", "past 2^53": "duration_too_long"}
INVALID_D = "invalid_duration"
MERGE_OUT = "media/acme/out.mp4"

CASES: list[Case] = [
    *(Case(f"clip start {n}", "GET", clip(start=v), 422, c) for n, v, c in NUMBERS),
    *(
        Case(f"clip duration {n}", "GET", clip(duration=v), 422, DURATION_CODE.get(n, INVALID_D))
        for n, v, _ in NUMBERS
    ),
    Case("clip duration zero", "GET", clip(duration="0"), 422, "invalid_duration"),
    Case("clip format not ours", "GET", clip(format="exe"), 422, "invalid_format"),
    Case("clip format traversal", "GET", clip(format="..%2Fmp3"), 422, "invalid_format"),
    *(
        Case(f"clip episode id {n}", "GET", clip(episode=v), 422, "invalid_episode_id")
        for n, v in IDS
    ),
    *(
        Case(f"episode id {n}", "GET", f"/v1/episodes/{v}", 422, "invalid_episode_id")
        for n, v in IDS
    ),
    Case(
        "episode key traversal",
        "POST",
        "/v1/episodes",
        422,
        "invalid_s3_key",
        {"json": {"s3_key": "ingest/acme/../other/x.mp3"}},
    ),
    Case(
        "episode key absolute",
        "POST",
        "/v1/episodes",
        422,
        "invalid_s3_key",
        {"json": {"s3_key": "/etc/passwd"}},
    ),
    Case(
        "episode key a file URL",
        "POST",
        "/v1/episodes",
        403,
        "forbidden_s3_key",
        {"json": {"s3_key": "file:///etc/passwd"}},
    ),
    Case(
        "episode key with NUL",
        "POST",
        "/v1/episodes",
        422,
        "invalid_s3_key",
        {"json": {"s3_key": "ingest/acme/a\u0000.mp3"}},
    ),
    Case(
        "episode key of another tenant",
        "POST",
        "/v1/episodes",
        403,
        "forbidden_s3_key",
        {"json": {"s3_key": "ingest/other/show.mp3"}},
    ),
    Case(
        "episode key, prefix look-alike",
        "POST",
        "/v1/episodes",
        403,
        "forbidden_s3_key",
        {"json": {"s3_key": "ingest/acme-evil/show.mp3"}},
    ),
    Case(
        "episode body as text",
        "POST",
        "/v1/episodes",
        415,
        "unsupported_media_type",
        raw(b"s3_key=x", "text/plain"),
    ),
    Case("episode body not JSON", "POST", "/v1/episodes", 422, "invalid_json", raw(b"{")),
    Case(
        "episode id in form",
        "POST",
        "/v1/episodes",
        422,
        "invalid_episode_id",
        {
            "files": {"file": ("a.mp3", b"ID3" + b"\x00" * 100, "audio/mpeg")},
            "data": {"episode_id": "../x"},
        },
    ),
    Case(
        "episode upload over the limit",
        "POST",
        "/v1/episodes",
        413,
        "too_large",
        {"files": {"file": ("a.mp3", b"\x00" * (UPLOAD_MAX + 1), "audio/mpeg")}},
    ),
    Case(
        "episode upload of text",
        "POST",
        "/v1/episodes",
        422,
        "not_audio",
        {"files": {"file": ("a.mp3", b"just words\n" * 100, "audio/mpeg")}},
    ),
    Case("job body malformed", "POST", "/v1/jobs", 422, "invalid_json", raw(b'{"job_kind": ')),
    Case("job body not UTF-8", "POST", "/v1/jobs", 422, "invalid_json", raw(b"\xff\xfe{}")),
    Case(
        "job body nested 100,000 deep",
        "POST",
        "/v1/jobs",
        422,
        "invalid_json",
        raw(b"[" * 100_000 + b"]" * 100_000),
    ),
    Case(
        "job body over the limit",
        "POST",
        "/v1/jobs",
        413,
        "too_large",
        raw(json.dumps(clip_job(pad="x" * JSON_BODY_MAX)).encode()),
    ),
    Case("job body an array", "POST", "/v1/jobs", 422, "invalid_request", raw(b"[]")),
    Case(
        "job body as a form",
        "POST",
        "/v1/jobs",
        415,
        "unsupported_media_type",
        raw(b"job_kind=clip", "application/x-www-form-urlencoded"),
    ),
    Case(
        "job body as XML",
        "POST",
        "/v1/jobs",
        415,
        "unsupported_media_type",
        raw(b"<job/>", "application/xml"),
    ),
    Case(
        "job body as text",
        "POST",
        "/v1/jobs",
        415,
        "unsupported_media_type",
        raw(json.dumps(clip_job()).encode(), "text/plain"),
    ),
    Case(
        "job kind unknown",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(job_kind="nope")},
    ),
    Case(
        "job start negative",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(start_ms=-1)},
    ),
    Case(
        "job start huge",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(start_ms=10**30)},
    ),
    Case(
        "job start 1e400",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        raw(b'{"job_kind":"clip","episode_id":"ep-1","start_ms":1e400,"duration_ms":1}'),
    ),
    Case(
        "job start NaN",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        raw(b'{"job_kind":"clip","episode_id":"ep-1","start_ms":NaN,"duration_ms":1}'),
    ),
    Case(
        "job start a string",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(start_ms="10")},
    ),
    Case(
        "job start a fraction",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(start_ms=1.5)},
    ),
    Case(
        "job episode traversal",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(episode_id="../../x")},
    ),
    Case(
        "job episode bidi",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(episode_id="ep\u202e1")},
    ),
    Case(
        "job extra field",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(surprise=1)},
    ),
    Case(
        "job video of another tenant",
        "POST",
        "/v1/jobs",
        403,
        "forbidden_s3_key",
        {"json": {**production("x"), "callback_url": None, "video": "ingest/other/a.mp4"}},
    ),
    Case(
        "job idempotency key too long",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(), "headers": {"Idempotency-Key": "k" * 5000}},
    ),
    Case(
        "job idempotency key with a tab",
        "POST",
        "/v1/jobs",
        422,
        "invalid_request",
        {"json": clip_job(), "headers": {"Idempotency-Key": "a\tb"}},
    ),
    *(
        Case(f"callback {n}", "POST", "/v1/jobs", 422, c, {"json": production(url)})
        for n, url, c in CALLBACKS
    ),
    Case("jobs limit negative", "GET", "/v1/jobs?limit=-1", 422, "invalid_request"),
    Case("jobs limit huge", "GET", f"/v1/jobs?limit={10**20}", 422, "invalid_request"),
    Case("jobs status unknown", "GET", "/v1/jobs?status=NOPE", 422, "invalid_request"),
    Case("jobs cursor forged", "GET", "/v1/jobs?cursor=garbage", 422, "invalid_request"),
    Case("jobs date not a date", "GET", "/v1/jobs?created_after=yesterday", 422, "invalid_request"),
    Case(
        "download what traversal",
        "GET",
        "/v1/jobs/j1/download?what=../../etc",
        422,
        "invalid_request",
    ),
    Case(
        "media as text", "POST", "/v1/media", 415, "unsupported_media_type", raw(b"x", "text/plain")
    ),
    Case(
        "media not media",
        "POST",
        "/v1/media",
        422,
        "not_media",
        {"files": {"file": ("a.mp4", b"just words\n" * 100, "video/mp4")}},
    ),
    Case(
        "media empty",
        "POST",
        "/v1/media",
        422,
        "not_media",
        {"files": {"file": ("a.mp4", b"", "video/mp4")}},
    ),
    Case(
        "media over the limit",
        "POST",
        "/v1/media",
        413,
        "too_large",
        {"files": {"file": ("a.mp4", b"\x00" * (UPLOAD_MAX + 1), "video/mp4")}},
    ),
    Case(
        "media form broken",
        "POST",
        "/v1/media",
        422,
        "invalid_form",
        raw(
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nab',
            "multipart/form-data; boundary=x",
        ),
    ),
    Case(
        "merge concat-list injection, line break",
        "POST",
        "/v1/merges",
        422,
        "invalid_request",
        {
            "json": {
                "input_videos": ["ingest/acme/a.mp4'\nfile '/etc/passwd"],
                "output_key": MERGE_OUT,
            }
        },
    ),
    Case(
        "merge concat-list injection, quotes",
        "POST",
        "/v1/merges",
        404,
        "input_missing",
        {
            "json": {
                "input_videos": ["ingest/acme/a.mp4' file '/etc/passwd.mp4"],
                "output_key": MERGE_OUT,
            }
        },
    ),
    Case(
        "merge input of another tenant",
        "POST",
        "/v1/merges",
        403,
        "forbidden_s3_key",
        {"json": {"input_videos": ["ingest/other/a.mp4"], "output_key": MERGE_OUT}},
    ),
    Case(
        "merge input traversal",
        "POST",
        "/v1/merges",
        422,
        "invalid_request",
        {"json": {"input_videos": ["ingest/acme/../other/a.mp4"], "output_key": MERGE_OUT}},
    ),
    Case(
        "merge input in another bucket",
        "POST",
        "/v1/merges",
        403,
        "forbidden_s3_key",
        {"json": {"input_videos": ["s3://elsewhere/ingest/acme/a.mp4"], "output_key": MERGE_OUT}},
    ),
    Case(
        "merge input a metadata URL",
        "POST",
        "/v1/merges",
        403,
        "forbidden_s3_key",
        {"json": {"input_videos": ["http://169.254.169.254/a.mp4"], "output_key": MERGE_OUT}},
    ),
    Case(
        "merge input a file URL",
        "POST",
        "/v1/merges",
        403,
        "forbidden_s3_key",
        {"json": {"input_videos": ["file:///etc/passwd"], "output_key": MERGE_OUT}},
    ),
    Case(
        "merge output traversal",
        "POST",
        "/v1/merges",
        422,
        "invalid_request",
        {"json": {"input_videos": ["ingest/acme/a.mp4"], "output_key": "../../o.mp4"}},
    ),
    Case(
        "merge output of another tenant",
        "POST",
        "/v1/merges",
        403,
        "forbidden_s3_key",
        {"json": {"input_videos": ["ingest/acme/a.mp4"], "output_key": "media/other/o.mp4"}},
    ),
    Case(
        "scenes duration negative",
        "POST",
        "/api/v3/audio/generate-scenes",
        422,
        "invalid_request",
        {"json": {"job_id": "1", "scenes": [{"prompt": "a", "duration_s": -5}]}},
    ),
    Case(
        "scenes duration huge",
        "POST",
        "/api/v3/audio/generate-scenes",
        422,
        "invalid_request",
        {"json": {"job_id": "1", "scenes": [{"prompt": "a", "duration_s": 1e9}]}},
    ),
    Case(
        "scenes job id traversal",
        "POST",
        "/api/v3/audio/generate-scenes",
        422,
        "invalid_request",
        {"json": {"job_id": "../x", "scenes": [{"prompt": "a", "duration_s": 5}]}},
    ),
    Case("unknown route", "GET", "/v1/../../etc/passwd", 404, "not_found"),
    # A stray slash is not found, never a redirect elsewhere.
    Case("trailing slash traversal", "GET", "/v1/merges/..%2F", 404, "not_found"),
    Case("trailing slash", "GET", "/v1/jobs/", 404, "not_found"),
    Case("method not allowed", "DELETE", "/v1/jobs", 405, "method_not_allowed"),
]


@pytest.fixture(scope="module")
def names(stack: Settings) -> Iterator[Settings]:
    with isolated_names(stack) as s:
        yield s


@dataclass
class Caller:
    api: Api
    headers: dict[str, str]
    secrets: list[str]


@pytest.fixture(scope="module")
async def caller(
    names: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Caller]:
    tone = await make_tone(tmp_path_factory.mktemp("http") / "tone.mp3", seconds=1.0)
    async with running_api(names, CLIP_WAIT_TIMEOUT_S=0.05, UPLOAD_MAX_BYTES=UPLOAD_MAX,
                           MEDIA_MAX_BYTES=UPLOAD_MAX) as api:  # fmt: skip
        headers = await api.key_for("acme")
        upload = {"file": ("t.mp3", tone.read_bytes(), "audio/mpeg")}
        r = await api.client.post(
            "/v1/episodes", headers=headers, data={"episode_id": "ep-1"}, files=upload
        )
        assert r.status_code == 201, r.text
        await api.runtime.media.upload_file("ingest/other/show.mp3", tone)
        secrets = [
            headers["Authorization"].removeprefix("Bearer "),
            names.s3_secret_key.get_secret_value(),
            names.s3_access_key.get_secret_value(),
        ]
        yield Caller(api, headers, secrets)


def check_refusal(caller: Caller, r: httpx.Response, what: str) -> dict[str, Any]:
    """A 4xx in the one error shape, with nothing internal in it; its ``error``."""
    assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error"}, (what, body)
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], (what, error)
    assert isinstance(error["message"], str) and error["message"].strip(), (what, error)
    assert len(error["message"]) <= 513, (what, len(error["message"]))
    text = r.text
    for internal in ("Traceback", "/tmp", "/work/", "127.0.0.1:7070", "tests/", *caller.secrets):
        assert internal not in text, (what, internal, text[:300])
    return dict(error)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_bad_request_is_refused_with_its_code(caller: Caller, case: Case) -> None:
    kw = dict(case.kw)
    kw["headers"] = {**caller.headers, **kw.get("headers", {})}
    r = await caller.api.client.request(case.method, case.path, **kw)
    error = check_refusal(caller, r, case.name)
    assert (r.status_code, error["code"]) == (case.status, case.code), (case.name, error)


# -- fuzzed ---------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip
numbers = st.one_of(
    st.integers().map(str), st.floats().map(str), st.text(max_size=20),
    st.sampled_from(["1e3", "NaN", "-0", "0x1", " 1", "1_000", "\u0661"]),
)  # fmt: skip
ids = st.text(min_size=1, max_size=300)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(episode=ids, start=numbers, duration=numbers)
async def test_fuzzed_clip_requests_are_answered_or_refused(
    caller: Caller, episode: str, start: str, duration: str
) -> None:
    path = f"{CLIPS}/{quote(episode, safe='')}"
    params = {"start_time_ms": start, "duration_ms": duration}
    r = await caller.api.client.get(path, headers=caller.headers, params=params)
    if r.status_code not in (200, 202):
        check_refusal(caller, r, f"clip {episode!r} {start!r} {duration!r}")


@FUZZ
@given(job_id=ids, route=st.sampled_from(["", "/download", "/cancel", "/retry"]))
async def test_fuzzed_job_ids_are_refused(caller: Caller, job_id: str, route: str) -> None:
    method = "POST" if route in ("/cancel", "/retry") else "GET"
    path = f"/v1/jobs/{quote(job_id, safe='')}{route}"
    r = await caller.api.client.request(method, path, headers=caller.headers)
    error = check_refusal(caller, r, f"{method} {path}")
    assert r.status_code in (404, 422), (path, r.status_code, error)


@FUZZ
@given(field_name=st.sampled_from(["job_kind", "episode_id", "start_ms", "duration_ms",
                                   "format", "callback_url", "extra"]),
       value=json_values)  # fmt: skip
async def test_fuzzed_job_bodies_are_accepted_or_refused(
    caller: Caller, field_name: str, value: Any
) -> None:
    body = {**clip_job(), field_name: value}
    r = await caller.api.client.post("/v1/jobs", headers=caller.headers, json=body)
    if r.status_code != 202:
        check_refusal(caller, r, f"{field_name}={value!r}")


def test_the_corpus_covers_every_kind_of_bad_input() -> None:
    names = " ".join(c.name for c in CASES)
    for kind in ("negative", "huge", "fraction", "NaN", "traversal", "nul", "bidi",
                 "over the limit", "as text", "metadata", "name resolving to loopback",
                 "file", "gopher", "concat-list injection"):  # fmt: skip
        assert kind in names, kind

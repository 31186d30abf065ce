"""The OpenAPI document against the real app: schemathesis, run as a new user would run it.

The app is served on a free loopback port (uvicorn, in this test's event loop) and the
schemathesis CLI runs in its own process against ``/openapi.json``, with a tenant's key in
the Authorization header, every phase (examples, coverage, fuzzing, stateful) and the
default checks. It must report no failure: the document states exactly the rules the API
enforces and every status it answers.

The CLI gets this suite's hooks by running as this module (``main``): audio to upload, and
the refusals only data can explain (``LEGITIMATE_REFUSALS``). In its own process because
sharing one with the server makes both crawl (a run takes minutes instead of ~20 s).

Bounded and repeatable: few examples per operation, a hard time limit (``RUN_TIMEOUT_S``),
deterministic generation (derandomized, so no example database), and nothing written to
the checkout (the CLI runs in ``tmp_path``, with its cache off).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.cli import schemathesis as schemathesis_cli
from schemathesis.openapi.checks import RejectedPositiveData

from services.common.settings import Settings
from services.submitter.keys import OPERATOR_ROLE, create_key
from tests.integration.submitter.kit import make_tone, running_api

ROOT = Path(__file__).resolve().parents[4]
# The audio file the CLI uploads where the schema asks for audio/*.
AUDIO_ENV = "TAPEDECK_OPENAPI_AUDIO"
RUN_TIMEOUT_S = 480  # five more operations made it 2-3 min under load

# Refusals of schema-valid requests that no schema can rule out, by operation: each
# depends on data, not on the request's shape, and each operation's 422 says so.
LEGITIMATE_REFUSALS = {
    # start_time_ms at or past the end of the stored episode.
    "GET /api/v1/audio_clips/{episode_id}": {"start_past_end"},
    # A file ffprobe cannot read as audio: the schema can only say audio/*.
    "POST /v1/episodes": {"not_audio"},
    # A video key with no object behind it; a callback host that does not resolve (or
    # resolves to a private address).
    # Rules between fields (one source of video, text for a voiceover): documented in the
    # operation's 422, not expressible in its schema.
    "POST /v1/jobs": {"invalid_s3_key", "invalid_callback_url", "invalid_spec"},
    # A cursor this API never gave out: opaque tokens have no schema.
    "GET /v1/jobs": {"invalid_request"},
    "GET /v1/ops/jobs": {"invalid_request"},
}

CONFIG = """\
color = false

[cache]
# Otherwise schemathesis keeps a .schemathesis/ folder in the working directory.
enabled = false

[generation]
# Derandomized, and so without an example database.
deterministic = true
max-examples = 15

[auth.openapi.HTTPBearer]
bearer = "{key}"

# The operator API takes operator keys only (a tenant's key is a 403 there).
[[operations]]
include-path-regex = "^/v1/ops/"
headers = {{ Authorization = "Bearer {operator_key}" }}
"""


async def test_schemathesis_finds_no_failure(settings: Settings, tmp_path: Path) -> None:
    tone = await make_tone(tmp_path / "tone.mp3", seconds=1.0)
    # A miss answers 202 at once instead of holding each request 15 s for a clipper.
    async with running_api(settings, CLIP_WAIT_TIMEOUT_S=0.05) as api:
        headers = await api.key_for("acme")
        # What the document's examples name (ep-1, ingest/acme/show.mp3), so the success
        # paths are reachable; schemathesis also reuses the ids it sees in answers.
        for episode_id in ("ep-1", "ep-2"):
            r = await api.client.post(
                "/v1/episodes",
                headers=headers,
                files={"file": ("tone.mp3", tone.read_bytes(), "audio/mpeg")},
                data={"episode_id": episode_id},
            )
            assert r.status_code == 201, r.text
        await api.runtime.media.upload_file("ingest/acme/show.mp3", tone)

        config = tmp_path / "schemathesis.toml"
        _, operator_key = await create_key(api.runtime.keys, "ops", role=OPERATOR_ROLE, name="t")
        key = headers["Authorization"].removeprefix("Bearer ")
        config.write_text(CONFIG.format(key=key, operator_key=operator_key))
        async with serving(api.app) as base_url:
            code, output = await run_schemathesis(
                ["--config-file", str(config), "run", f"{base_url}/openapi.json"],
                cwd=tmp_path,
                env={AUDIO_ENV: str(tone)},
            )
    assert code == 0, output
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output


async def run_schemathesis(args: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Exit code and output of the schemathesis CLI with this suite's hooks (``main``)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        *args,
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": path},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise AssertionError(
            f"schemathesis ran over {RUN_TIMEOUT_S} s:\n{out.decode(errors='replace')}"
        ) from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served on a free loopback port; its lifespan is the caller's."""
    server = uvicorn.Server(
        # "error": schemathesis' malformed requests would each log a warning.
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def legitimate_refusals_are_not_failures(
    ctx: schemathesis.HookContext,
    failure: object,
    case: schemathesis.Case,
    response: schemathesis.Response,
) -> bool:
    """A ``filter_failure`` hook: keeps every failure but the refusal of a schema-valid
    request with the 422 code its operation answers for reasons of data
    (``LEGITIMATE_REFUSALS``). Any other refusal of a schema-valid request still fails."""
    expected = LEGITIMATE_REFUSALS.get(case.operation.label)
    if expected is None or not isinstance(failure, RejectedPositiveData):
        return True
    code = None
    with suppress(ValueError, KeyError, TypeError):
        code = response.json()["error"]["code"]
    return not (response.status_code == 422 and code in expected)


def main() -> None:
    """The schemathesis CLI with this suite's hooks: ``python -m <this module> <args>``."""
    # The upload's schema says its file is audio/*; schemathesis has no audio samples.
    audio = Path(os.environ[AUDIO_ENV]).read_bytes()
    schemathesis.openapi.media_type("audio/mpeg", st.just(audio))
    schemathesis.hook("filter_failure")(legitimate_refusals_are_not_failures)
    schemathesis_cli()


if __name__ == "__main__":
    main()

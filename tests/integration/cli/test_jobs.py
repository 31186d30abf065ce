"""``tapedeck submit --no-wait`` and ``tapedeck jobs`` against a real submitter process:
the tenant API with a tenant key, the operator API (``--ops``) with an operator key."""

from __future__ import annotations

import json
from pathlib import Path

from services.common.settings import Settings
from tests.integration.cli.command import tapedeck
from tests.support.services import running

AUDIO_JOB = {
    "job_kind": "audio",
    "tier": "basic",
    "kind": "music",
    "scenes": [{"index": 0, "prompt": "rain on a roof", "duration_s": 2}],
}


async def new_key(settings: Settings, *args: str) -> str:
    code, out, err = await tapedeck(settings, "keys", "create", *args, "--json")
    assert code == 0, err
    return str(json.loads(out)["key"])


async def test_jobs_through_the_tenant_and_operator_apis(
    settings: Settings, tmp_path: Path
) -> None:
    acme = await new_key(settings, "--tenant", "acme")
    other = await new_key(settings, "--tenant", "other")
    alice = await new_key(settings, "--operator", "--name", "alice")
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(AUDIO_JOB))
    # Only the submitter runs: the jobs wait, which is what cancelling needs.
    with running(settings, tmp_path, ("services.submitter",)) as base:
        as_acme = {"TAPEDECK_API_URL": base, "TAPEDECK_API_KEY": acme}
        code, out, err = await tapedeck(settings, "submit", str(spec), "--no-wait", env=as_acme)
        assert code == 0, err
        job_id = out.strip()
        assert f"submitted job {job_id}" in err
        code, out, err = await tapedeck(
            settings,
            "submit",
            "-",
            "--no-wait",
            "--json",
            "--key",
            other,
            stdin=json.dumps(AUDIO_JOB).encode(),
            env={"TAPEDECK_API_URL": base},
        )
        assert code == 0, err
        theirs = json.loads(out)["job_id"]

        code, out, err = await tapedeck(settings, "jobs", "list", "--json", env=as_acme)
        assert code == 0, err
        assert [j["job_id"] for j in json.loads(out)["jobs"]] == [job_id]
        code, out, _ = await tapedeck(settings, "jobs", "list", env=as_acme)
        assert code == 0 and job_id in out and "audio" in out and theirs not in out

        code, out, err = await tapedeck(settings, "jobs", "show", job_id, "--json", env=as_acme)
        assert code == 0, err
        shown = json.loads(out)
        assert (shown["job_id"], shown["kind"], shown["status"]) == (job_id, "audio", "PENDING")
        code, _, err = await tapedeck(settings, "jobs", "show", theirs, env=as_acme)
        assert code == 1 and err == f"tapedeck: job_not_found: no job '{theirs}'\n"

        # The API's refusals, in its own words.
        code, _, err = await tapedeck(settings, "jobs", "retry", job_id, env=as_acme)
        assert code == 1 and err.startswith("tapedeck: job_finished: ")
        code, _, err = await tapedeck(settings, "jobs", "list", "--key", "td_nope", env=as_acme)
        assert code == 1 and err == "tapedeck: unauthorized: invalid or revoked API key\n"
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**AUDIO_JOB, "tier": "gold"}))
        code, _, err = await tapedeck(settings, "submit", str(bad), env=as_acme)
        assert code == 1 and err.startswith("tapedeck: invalid_request: ")

        # The operator API: every tenant's jobs; a tenant key is refused.
        code, _, err = await tapedeck(settings, "jobs", "list", "--ops", env=as_acme)
        assert code == 1 and err == "tapedeck: forbidden: this needs an operator key\n"
        as_alice = {"TAPEDECK_API_URL": base, "TAPEDECK_API_KEY": alice}
        code, out, err = await tapedeck(settings, "jobs", "list", "--ops", "--json", env=as_alice)
        assert code == 0, err
        rows = {j["job_id"]: j["tenant_id"] for j in json.loads(out)["jobs"]}
        assert rows == {job_id: "acme", theirs: "other"}
        code, out, err = await tapedeck(
            settings, "jobs", "list", "--ops", "--tenant", "other", "--json", env=as_alice
        )
        assert code == 0 and [j["job_id"] for j in json.loads(out)["jobs"]] == [theirs], err
        code, out, err = await tapedeck(settings, "jobs", "list", "--ops", env=as_alice)
        assert code == 0 and "TENANT" in out and "other" in out, err

        code, out, err = await tapedeck(
            settings, "jobs", "cancel", theirs, "--ops", "--json", env=as_alice
        )
        assert code == 0, err
        cancelled = json.loads(out)
        assert cancelled["status"] == "CANCELLED" and cancelled["tenant_id"] == "other"
        assert [a["action"] for a in cancelled["actions"]] == ["cancel"]
        assert "alice" in cancelled["actions"][0]["actor"]
        code, out, err = await tapedeck(settings, "jobs", "show", theirs, "--ops", env=as_alice)
        assert code == 0 and "CANCELLED" in out and "operator actions" in out, err

        code, out, err = await tapedeck(settings, "jobs", "cancel", job_id, env=as_acme)
        assert code == 0 and "CANCELLED" in out, err
        # Watching a job that already ended returns at once, with its end.
        code, out, err = await tapedeck(settings, "jobs", "watch", job_id, "--json", env=as_acme)
        assert code == 1 and json.loads(out)["status"] == "CANCELLED"
        assert err == f"tapedeck: job {job_id} CANCELLED\n"

    code, _, err = await tapedeck(settings, "jobs", "list", env=as_acme)
    assert code == 1 and err == f"tapedeck: cannot reach the API at {base}\n"

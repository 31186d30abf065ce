"""``tapedeck submit`` against the in-process fake API: the spec file, waiting, and the
exit status a script sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.api import KEY_ENV
from services.cli.args import CliError
from services.cli.submit import load_spec
from tests.support.fake_api import TENANT_KEY, FakeApi, job
from tests.unit.cli.cli import tapedeck

SPEC = {"job_kind": "audio", "scenes": [{"prompt": "rain", "duration_s": 2}]}


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, TENANT_KEY)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(SPEC))
    return str(path)


def test_a_spec_must_be_a_json_object() -> None:
    assert load_spec(b'{"job_kind": "audio"}', "f") == {"job_kind": "audio"}
    for raw, message in [
        (b"{nope", "f is not valid JSON (line 1)"),
        (b"[1, 2]", "f must hold a JSON object (a job spec)"),
        (b"\xff", "f is not valid JSON"),
    ]:
        with pytest.raises(CliError) as exc:
            load_spec(raw, "f")
        assert exc.value.code == 2 and exc.value.message == message


async def test_no_wait_prints_the_job_id_and_returns(
    spec_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    code = await tapedeck(
        "submit", spec_file, "--no-wait", "--idempotency-key", "k1", transport=api.transport
    )
    out, err = capsys.readouterr()
    assert code == 0 and out == "job-1\n" and "submitted job job-1" in err
    assert api.bodies[0] == SPEC and api.requests[0].headers["idempotency-key"] == "k1"
    assert len(api.requests) == 1

    code = await tapedeck("submit", spec_file, "--no-wait", "--json", transport=api.transport)
    accepted = json.loads(capsys.readouterr().out)
    assert code == 0 and accepted == {
        "job_id": "job-2",
        "status": "PENDING",
        "status_url": "/v1/jobs/job-2",
    }


async def test_waiting_ends_with_the_jobs_outcome(
    spec_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi(
        lambda job_id: [
            job(job_id, "PENDING"),
            job(job_id, "RUNNING", 50),
            job(job_id, "FAILED", 50, error={"code": "provider_failed", "message": "gave up"}),
        ]
    )
    code = await tapedeck(
        "submit", spec_file, "--interval", "0.01", "--json", transport=api.transport
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["status"] == "FAILED"
    assert [r.url.path for r in api.requests] == ["/v1/jobs", *["/v1/jobs/job-1"] * 3]
    assert err.strip().splitlines()[-1] == ("tapedeck: job job-1 FAILED: provider_failed: gave up")


async def test_a_completed_job_exits_zero_with_its_result(
    spec_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi(lambda job_id: [job(job_id, "COMPLETED", 100, result_url="https://r/x.mp4")])
    code = await tapedeck("submit", spec_file, "--interval", "0.01", transport=api.transport)
    out, _ = capsys.readouterr()
    assert code == 0 and out == "job job-1 COMPLETED; result: https://r/x.mp4\n"


async def test_bad_files_and_refusals_are_one_line(
    spec_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    code = await tapedeck("submit", str(tmp_path / "missing.json"), transport=api.transport)
    assert code == 2 and not api.requests
    assert (
        capsys.readouterr().err == f"tapedeck: job file '{tmp_path}/missing.json' does not exist\n"
    )

    (tmp_path / "nokind.json").write_text("{}")
    code = await tapedeck("submit", str(tmp_path / "nokind.json"), transport=api.transport)
    assert code == 1
    assert capsys.readouterr().err == "tapedeck: invalid_request: job_kind is required\n"

    code = await tapedeck("submit", spec_file, "--key", "td_wrong", transport=api.transport)
    assert code == 1
    assert capsys.readouterr().err == "tapedeck: unauthorized: invalid or revoked API key\n"

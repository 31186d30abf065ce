"""``tapedeck jobs`` against the in-process fake API: paths, parameters, output, errors."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest

from services.cli import parser
from services.cli.api import KEY_ENV
from services.cli.jobs import instant
from tests.support.fake_api import OPERATOR_KEY, TENANT_KEY, FakeApi, job
from tests.unit.cli.cli import tapedeck


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    monkeypatch.setenv(KEY_ENV, TENANT_KEY)
    fake = FakeApi()
    fake.add([job("job-a", "RUNNING", 30)])
    fake.add([job("job-b", "FAILED", 60, error={"code": "ffmpeg_failed", "message": "no"})])
    fake.add([job("job-c", "COMPLETED", 100)], tenant="other")
    return fake


def test_times_are_rfc3339_dates_or_ages() -> None:
    now = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    assert instant("6h", now) == "2025-01-10T06:00:00Z"
    assert instant("2d", now) == "2025-01-08T12:00:00Z"
    assert instant("2025-01-02") == "2025-01-02T00:00:00Z"
    assert instant("2025-01-02T03:04:05+02:00") == "2025-01-02T01:04:05Z"
    with pytest.raises(argparse.ArgumentTypeError):
        instant("yesterday")


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["jobs", "list", "--status", "DONE"],
        ["jobs", "list", "--limit", "0"],
        ["jobs", "list", "--created-after", "soon"],
        ["jobs", "show"],
    ):
        with pytest.raises(SystemExit) as exc:
            parser().parse_args(argv)
        assert exc.value.code == 2
    assert parser().parse_args(["jobs", "list", "--status", "failed"]).status == "FAILED"
    capsys.readouterr()


async def test_list_filters_and_prints_a_table_or_json(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await tapedeck(
        "jobs",
        "list",
        "--status",
        "failed",
        "--created-after",
        "2025-01-01",
        transport=api.transport,
    )
    out, _ = capsys.readouterr()
    assert code == 0
    params = dict(api.requests[-1].url.params)
    assert params == {"status": "FAILED", "created_after": "2025-01-01T00:00:00Z", "limit": "50"}
    assert "job-b" in out and "ffmpeg_failed: no" in out and "job-a" not in out

    code = await tapedeck("jobs", "list", "--limit", "1", "--json", transport=api.transport)
    out, _ = capsys.readouterr()
    page = json.loads(out)
    assert [j["job_id"] for j in page["jobs"]] == ["job-a"] and page["next_cursor"] == "c2"

    code = await tapedeck("jobs", "list", "--limit", "1", transport=api.transport)
    assert "more: --cursor c2" in capsys.readouterr().err


async def test_ops_uses_the_operator_api_and_a_tenant_key_is_refused(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await tapedeck("jobs", "list", "--ops", transport=api.transport)
    assert code == 1
    assert capsys.readouterr().err == "tapedeck: forbidden: this needs an operator key\n"
    assert api.requests[-1].url.path == "/v1/ops/jobs"

    code = await tapedeck("jobs", "list", "--tenant", "other", transport=api.transport)
    assert code == 2 and "--tenant needs --ops" in capsys.readouterr().err

    code = await tapedeck(
        "jobs",
        "list",
        "--ops",
        "--tenant",
        "other",
        "--key",
        OPERATOR_KEY,
        "--json",
        transport=api.transport,
    )
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert code == 0 and [(j["job_id"], j["tenant_id"]) for j in jobs] == [("job-c", "other")]
    assert api.requests[-1].url.params["tenant"] == "other"


async def test_show_cancel_retry_and_the_apis_errors(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await tapedeck("jobs", "show", "job-b", transport=api.transport)
    out, _ = capsys.readouterr()
    assert code == 0 and "job-b" in out and "ffmpeg_failed" in out

    code = await tapedeck("jobs", "show", "job-c", transport=api.transport)
    assert code == 1
    assert capsys.readouterr().err == "tapedeck: job_not_found: no job 'job-c'\n"

    code = await tapedeck("jobs", "cancel", "job-a", "--json", transport=api.transport)
    assert code == 0 and json.loads(capsys.readouterr().out)["status"] == "CANCELLED"
    assert api.requests[-1].method == "POST" and api.requests[-1].url.path.endswith("/cancel")

    code = await tapedeck("jobs", "cancel", "job-a", transport=api.transport)
    assert code == 1
    assert capsys.readouterr().err == "tapedeck: job_finished: the job already ended\n"

    code = await tapedeck(
        "jobs",
        "retry",
        "job-b",
        "--ops",
        "--stage",
        "merge",
        "--key",
        OPERATOR_KEY,
        transport=api.transport,
    )
    assert code == 0 and "retrying stage merge of job job-b" in capsys.readouterr().err
    assert api.requests[-1].url.path == "/v1/ops/jobs/job-b/retry"
    assert api.requests[-1].url.params["stage"] == "merge"

    code = await tapedeck("jobs", "show", "a/../b", transport=api.transport)
    assert api.requests[-1].url.raw_path == b"/v1/jobs/a%2F..%2Fb"
    capsys.readouterr()


async def test_watch_exits_with_the_jobs_end(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add([job("job-w", "RUNNING", 10), job("job-w", "CANCELLED", 10)])
    code = await tapedeck("jobs", "watch", "job-w", "--interval", "0.01", transport=api.transport)
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "tapedeck: job job-w CANCELLED"

"""Jobs as tables and lines, from the tenant API's answer and the operator API's."""

from __future__ import annotations

import io

from rich.console import Console

from services.cli.job_view import detail, error_line, list_table, stage_states, summary


def render(*parts: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    for part in parts:
        console.print(part)
    return out.getvalue()


TENANT_JOB = {
    "job_id": "job-1",
    "kind": "production",
    "status": "FAILED",
    "progress": 40,
    "created_at": "2025-01-02T03:04:05Z",
    "stages": [
        {"name": "merge.concat", "status": "COMPLETED", "progress": None, "attempt": 1},
        {
            "name": "audio",
            "status": "FAILED",
            "progress": 50,
            "error": {"code": "provider_failed", "message": "the provider failed"},
        },
        {"name": "merge.mux-v1", "status": "RUNNING", "progress": 140},
    ],
    "error": {"code": "video_failed", "message": "the video could not be made"},
    "urls": {"video": "https://s3.example/v.mp4"},
}
OPS_JOB = {
    "job_id": "job-2",
    "tenant_id": "acme",
    "kind": "audio",
    "status": "RUNNING",
    "progress": 10,
    "error_code": None,
    "stages": [{"name": "audio", "status": "RUNNING", "progress": 10, "note": "scene 1 of 3"}],
    "retryable_stages": ["audio"],
    "cancellable": True,
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "actions": [
        {"at": "2025-01-02T03:05:00Z", "actor": "alice", "action": "retry", "detail": "stage audio"}
    ],
    "audio": [{"label": "scene 1", "url": "https://s3.example/a.mp3", "content_type": "x"}],
    "video": None,
}


def test_stage_states_read_progress_errors_and_notes() -> None:
    states = stage_states(TENANT_JOB)
    assert [(s.name, s.status, s.percent) for s in states] == [
        ("merge.concat", "COMPLETED", 100),  # done is 100 whatever the record said
        ("audio", "FAILED", 50),
        ("merge.mux-v1", "RUNNING", 100),  # clamped
    ]
    assert states[1].note == "provider_failed: the provider failed"
    assert stage_states(OPS_JOB)[0].note == "scene 1 of 3"
    assert stage_states({"stages": [{"status": "RUNNING"}, "junk"]}) == []


def test_errors_read_from_either_shape() -> None:
    assert error_line(TENANT_JOB) == "video_failed: the video could not be made"
    assert error_line({"error_code": "cancelled", "error_message": "stopped"}) == (
        "cancelled: stopped"
    )
    assert error_line(OPS_JOB) == ""
    assert summary(TENANT_JOB) == "job job-1 FAILED: video_failed: the video could not be made"
    done = {"job_id": "j", "status": "COMPLETED", "result_url": "https://r"}
    assert summary(done) == "job j COMPLETED; result: https://r"


def test_list_table_has_a_tenant_column_only_for_operators() -> None:
    text = render(list_table([TENANT_JOB], tenants=False))
    assert "TENANT" not in text and "job-1" in text and "40%" in text
    assert "2025-01-02 03:04:05" in text and "video_failed" in text
    text = render(list_table([OPS_JOB], tenants=True))
    assert "TENANT" in text and "acme" in text


def test_detail_shows_stages_outputs_and_operator_facts() -> None:
    text = render(*detail(TENANT_JOB))
    for expected in (
        "merge.concat",
        "provider_failed: the provider failed",
        "outputs",
        "https://s3.example/v.mp4",
    ):
        assert expected in text
    text = render(*detail(OPS_JOB))
    for expected in (
        "acme",
        "retryable",
        "cancellable",
        "4bf92f35",
        "operator actions",
        "alice",
        "https://s3.example/a.mp3",
    ):
        assert expected in text


def test_data_is_never_read_as_markup() -> None:
    text = render(list_table([{**OPS_JOB, "job_id": "[red]x[/red]"}], tenants=True))
    assert "[red]x[/red]" in text

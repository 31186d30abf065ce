"""The jobs pages: filters reach the ops layer, rows refresh as a fragment, a job's page
tells its story (stages, timeline, error and operator detail, players, webhooks), and
retry and cancel act as the signed-in operator."""

from __future__ import annotations

import pytest

from tests.unit.submitter.console.conftest import Console


async def test_the_list_passes_its_filters_on(console: Console) -> None:
    r = await console.client.get(
        "/console/jobs?status=COMPLETED&kind=production&tenant=acme"
        "&created_after=2025-03-01T00:00&created_before=2025-03-05T12:30",
        headers=console.signed_in(),
    )
    assert r.status_code == 200
    query = console.jobs.listed[-1]
    assert (query["status"], query["kind"], query["tenant"]) == ("COMPLETED", "production", "acme")
    assert query["created_after"].isoformat() == "2025-03-01T00:00:00+00:00"
    assert query["created_before"].isoformat() == "2025-03-05T12:30:00+00:00"
    assert 'href="/console/jobs/job-audio"' in r.text and "job-run" not in r.text
    # The live fragment polls with the same filters.
    assert (
        'hx-get="/console/jobs/rows?status=COMPLETED&amp;kind=production&amp;tenant=acme' in r.text
    )
    assert "Audio generation failed" in r.text


@pytest.mark.parametrize(
    "query",
    [
        "status=DONE",
        "kind=video",
        "tenant=a%20b",
        "created_after=yesterday",
        "created_after=2025-03-02T00:00&created_before=2025-03-01T00:00",
    ],
)
async def test_bad_filters_are_named_not_passed_on(console: Console, query: str) -> None:
    r = await console.client.get(f"/console/jobs?{query}", headers=console.signed_in())
    assert r.status_code == 422 and 'role="alert"' in r.text
    assert console.jobs.listed == []


async def test_empty_filters_mean_any(console: Console) -> None:
    r = await console.client.get(
        "/console/jobs?status=&kind=&tenant=&created_after=&created_before=",
        headers=console.signed_in(),
    )
    assert r.status_code == 200 and "job-audio" in r.text and "job-run" in r.text
    assert console.jobs.listed[-1]["status"] is None


async def test_rows_come_as_a_fragment_that_polls(console: Console) -> None:
    r = await console.client.get("/console/jobs/rows", headers=console.signed_in())
    assert r.status_code == 200
    assert "<html" not in r.text and 'id="job-rows"' in r.text
    assert 'hx-trigger="every 3s"' in r.text and 'hx-swap="outerHTML"' in r.text


async def test_a_job_page_tells_the_whole_story(console: Console) -> None:
    r = await console.client.get("/console/jobs/job-audio", headers=console.signed_in())
    assert r.status_code == 200
    text = r.text
    assert "What went wrong" in text
    # Said once: the job's error is its audio stage's, shown with the attempt.
    assert text.count("Audio generation failed: the music provider refused the request.") == 1
    assert "(attempt 1, 2025-03-04 10:00:03)" in text
    assert "ProviderError: fal submit answered 500 (GPU pool exhausted)" in text  # operator detail
    assert 'data-stage="audio" data-status="FAILED"' in text
    assert "job submitted" in text and "9.0 s" in text  # the timeline, with a duration
    assert '<video controls preload="metadata" src="http://s3.test/result.mp4?sig=1">' in text
    assert '<audio controls preload="none" src="http://s3.test/a1.wav?sig=1">' in text
    assert "job.completed" in text and ">500<" in text  # a webhook attempt
    assert 'name="stage" value="audio"' in text and "Retry audio" in text
    assert "Cancel job" not in text
    # Ended: no polling of the live part.
    assert "every 2s" not in text


async def test_a_running_job_polls_and_can_be_cancelled(console: Console) -> None:
    r = await console.client.get("/console/jobs/job-run", headers=console.signed_in())
    assert 'hx-get="/console/jobs/job-run/live" hx-trigger="every 2s"' in r.text
    assert "Cancel job" in r.text and "Retry" not in r.text
    live = await console.client.get("/console/jobs/job-run/live", headers=console.signed_in())
    assert "<html" not in live.text and "HX-Trigger" not in live.headers


async def test_the_live_part_asks_for_the_players_once_the_job_ends(console: Console) -> None:
    r = await console.client.get("/console/jobs/job-audio/live", headers=console.signed_in())
    assert r.headers["HX-Trigger"] == "job-media"
    media = await console.client.get("/console/jobs/job-audio/media", headers=console.signed_in())
    assert 'hx-trigger="job-media from:body"' in media.text and "<video" in media.text


async def test_retry_acts_as_the_operator_and_comes_back(console: Console) -> None:
    r = await console.client.post(
        "/console/jobs/job-audio/retry",
        data={"stage": "audio", "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/jobs/job-audio?notice=retried"
    action, job_id, stage, actor = console.jobs.acted[0]
    assert (action, job_id, stage, actor.name) == ("retry", "job-audio", "audio", "Ada")
    page = await console.client.get(r.headers["location"], headers=console.signed_in())
    assert "Retry requested" in page.text and "Ada (" in page.text


async def test_a_refused_retry_says_why_on_the_job_page(console: Console) -> None:
    r = await console.client.post(
        "/console/jobs/job-run/retry",
        data={"stage": "audio", "csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert r.status_code == 409
    assert "stage audio cannot be retried now" in r.text and 'role="alert"' in r.text
    assert console.jobs.acted == []


async def test_cancel(console: Console) -> None:
    r = await console.client.post(
        "/console/jobs/job-run/cancel",
        data={"csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert r.status_code == 303 and console.jobs.jobs["job-run"].status == "CANCELLED"
    again = await console.client.post(
        "/console/jobs/job-run/cancel",
        data={"csrf_token": console.csrf},
        headers=console.signed_in(),
    )
    assert again.status_code == 409 and "already ended" in again.text


async def test_a_missing_job_is_a_404_page(console: Console) -> None:
    for path in ("/console/jobs/nope", "/console/jobs/%2E%2E%2Fx", "/console/jobs/nope/live"):
        r = await console.client.get(path, headers=console.signed_in())
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path

"""Jobs: the filtered list (its rows refreshed by htmx polling) and a job's page (its
live part polled while the job runs; its players reloaded once it ends), with retry
and cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from schemas.ids import is_plain_id
from services.common.errors import PermanentError
from services.lifecycle.plan import TERMINAL
from services.ops.jobs import JobDetail
from services.submitter.console.auth import OperatorSession, PostedSession
from services.submitter.console.filters import KINDS, PAGE_SIZE, STATUSES, BadFilter, JobFilters
from services.submitter.console.ports import Ports
from services.submitter.console.render import base_path, render
from services.submitter.console.routing import ConsoleRoute, error_page
from services.submitter.http.errors import bounded, status_for

router = APIRouter(route_class=ConsoleRoute)

# What a redirect after an action may say: fixed words, nothing from the request echoed.
NOTICES = {
    "retried": "Retry requested. The job runs again; this page follows it.",
    "cancelled": "The job was cancelled.",
}
# An event the live fragment sends once its job ends, so the players reload.
MEDIA_EVENT = "job-media"
Text = Annotated[str | None, Query(max_length=200)]


async def _list(
    ports: Ports,
    status: str | None,
    kind: str | None,
    tenant: str | None,
    created_after: str | None,
    created_before: str | None,
    cursor: str | None,
) -> dict[str, Any]:
    filters = JobFilters.parse(status, kind, tenant, created_after, created_before)
    page = await ports.jobs.list(
        status=filters.status,
        kind=filters.kind,
        tenant=filters.tenant,
        created_after=filters.created_after,
        created_before=filters.created_before,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    return {"filters": filters, "page": page, "cursor": cursor or None}


@router.get("/jobs", name="console_jobs")
async def jobs_page(
    request: Request,
    ports: Ports,
    _: OperatorSession,
    status: Text = None,
    kind: Text = None,
    tenant: Text = None,
    created_after: Text = None,
    created_before: Text = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    common: dict[str, Any] = {"statuses": STATUSES, "kinds": KINDS, "title": "Jobs", "nav": "jobs"}
    try:
        listed = await _list(ports, status, kind, tenant, created_after, created_before, cursor)
    except BadFilter as exc:
        return render(
            request,
            "jobs/list.html",
            status=422,
            problem=str(exc),
            page=None,
            filters=JobFilters(),
            cursor=None,
            **common,
        )
    return render(request, "jobs/list.html", **listed, **common)


@router.get("/jobs/rows", name="console_job_rows")
async def job_rows(
    request: Request,
    ports: Ports,
    _: OperatorSession,
    status: Text = None,
    kind: Text = None,
    tenant: Text = None,
    created_after: Text = None,
    created_before: Text = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    try:
        listed = await _list(ports, status, kind, tenant, created_after, created_before, cursor)
    except BadFilter as exc:
        return error_page(request, 422, str(exc))
    return render(request, "jobs/_rows.html", **listed)


async def _detail(ports: Ports, job_id: str) -> JobDetail | None:
    return await ports.jobs.detail(job_id) if is_plain_id(job_id) else None


def _job_page(
    request: Request,
    job: JobDetail,
    *,
    status: int = 200,
    notice: str | None = None,
    problem: str | None = None,
) -> Response:
    return render(
        request,
        "jobs/detail.html",
        status=status,
        job=job,
        notice=notice,
        problem=problem,
        live=job.status not in TERMINAL,
        title=f"Job {job.job_id}",
        nav="jobs",
    )


def _missing(request: Request, job_id: str) -> Response:
    return error_page(request, 404, bounded(f"There is no job {job_id!r}."))


@router.get("/jobs/{job_id}", name="console_job")
async def job_page(
    request: Request,
    ports: Ports,
    _: OperatorSession,
    job_id: str,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    job = await _detail(ports, job_id)
    if job is None:
        return _missing(request, job_id)
    return _job_page(request, job, notice=NOTICES.get(notice or ""))


@router.get("/jobs/{job_id}/live", name="console_job_live")
async def job_live(request: Request, ports: Ports, _: OperatorSession, job_id: str) -> Response:
    job = await _detail(ports, job_id)
    if job is None:
        return _missing(request, job_id)
    live = job.status not in TERMINAL
    # This fragment is fetched only by the poll of a running job: ended now, so the
    # players (outside the fragment, so playback is not reset by polls) reload.
    headers = {} if live else {"HX-Trigger": MEDIA_EVENT}
    return render(request, "jobs/_live.html", headers=headers, job=job, live=live)


@router.get("/jobs/{job_id}/media", name="console_job_media")
async def job_media(request: Request, ports: Ports, _: OperatorSession, job_id: str) -> Response:
    job = await _detail(ports, job_id)
    if job is None:
        return _missing(request, job_id)
    return render(request, "jobs/_media.html", job=job)


async def _act(
    request: Request,
    ports: Ports,
    job_id: str,
    notice: str,
    action: str,
    session: PostedSession,
    stage: str | None = None,
) -> Response:
    job = await _detail(ports, job_id)
    if job is None:
        return _missing(request, job_id)
    try:
        if action == "retry":
            await ports.jobs.retry(job_id, stage or "", session.actor)
        else:
            await ports.jobs.cancel(job_id, session.actor)
    except PermanentError as exc:
        if not exc.public:
            raise
        fresh = await _detail(ports, job_id) or job
        return _job_page(request, fresh, status=status_for(exc.code), problem=bounded(exc.message))
    url = f"{base_path(request)}/jobs/{job_id}?notice={notice}"
    return RedirectResponse(url, status_code=303)


@router.post("/jobs/{job_id}/retry", name="console_job_retry")
async def retry(
    request: Request,
    ports: Ports,
    session: PostedSession,
    job_id: str,
    stage: Annotated[str, Form(min_length=1, max_length=64)],
) -> Response:
    return await _act(request, ports, job_id, "retried", "retry", session, stage)


@router.post("/jobs/{job_id}/cancel", name="console_job_cancel")
async def cancel(request: Request, ports: Ports, session: PostedSession, job_id: str) -> Response:
    return await _act(request, ports, job_id, "cancelled", "cancel", session)

"""Jobs as people read them: list rows, one job's details, and each stage's progress.

Reads both answers: the tenant API's job (``error: {code, message}``, no tenant) and the
operator API's (``tenant_id``, ``error_code``/``error_message``, a stage ``note``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.cli.output import escape, fields, markup, status_text, table, when

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


def error_of(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(code, message) of a failed job or stage, from either API's shape."""
    error = job.get("error")
    if isinstance(error, Mapping) and error.get("code"):
        return str(error["code"]), str(error.get("message") or "")
    if job.get("error_code"):
        return str(job["error_code"]), str(job.get("error_message") or "")
    return None


def error_line(job: Mapping[str, Any]) -> str:
    error = error_of(job)
    if error is None:
        return ""
    code, message = error
    return f"{code}: {message}" if message else code


@dataclass(frozen=True)
class StageState:
    name: str
    status: str
    percent: int  # 0-100; a finished stage is 100
    note: str


def stage_states(job: Mapping[str, Any]) -> list[StageState]:
    out = []
    for stage in job.get("stages") or []:
        if not isinstance(stage, Mapping) or not stage.get("name"):
            continue
        status = str(stage.get("status") or "PENDING")
        progress = stage.get("progress")
        percent = progress if isinstance(progress, int) else 0
        if status == "COMPLETED":
            percent = 100
        note = error_line(stage) or str(stage.get("note") or "")
        out.append(StageState(str(stage["name"]), status, max(0, min(percent, 100)), note))
    return out


def job_percent(job: Mapping[str, Any]) -> int:
    progress = job.get("progress")
    if job.get("status") == "COMPLETED":
        return 100
    return max(0, min(progress, 100)) if isinstance(progress, int) else 0


def list_table(jobs: Sequence[Mapping[str, Any]], *, tenants: bool) -> Any:
    columns = ["JOB", *(["TENANT"] if tenants else []), "KIND", "STATUS", "PROGRESS"]
    columns += ["CREATED", "UPDATED", "ERROR"]
    rows = []
    for job in jobs:
        row: list[Any] = [job.get("job_id")]
        if tenants:
            row.append(job.get("tenant_id"))
        row += [
            job.get("kind"),
            status_text(job.get("status")),
            f"{job_percent(job)}%",
            when(job.get("created_at")),
            when(job.get("updated_at")),
            error_line(job),
        ]
        rows.append(row)
    return table(columns, rows)


def detail(job: Mapping[str, Any]) -> list[Any]:
    """Renderables for ``jobs show``: the job, its stages, outputs, and what happened."""
    head: dict[str, Any] = {"job": job.get("job_id")}
    if job.get("tenant_id"):
        head["tenant"] = job["tenant_id"]
    head["kind"] = job.get("kind")
    head["status"] = status_text(job.get("status"))
    head["progress"] = f"{job_percent(job)}%"
    head["created"] = when(job.get("created_at"))
    head["updated"] = when(job.get("updated_at"))
    if job.get("version") is not None:
        head["version"] = job["version"]
    if error_line(job):
        head["error"] = markup(f"[red]{escape(error_line(job))}[/]")
    if job.get("audio_status"):
        audio = str(job["audio_status"])
        if job.get("audio_error"):
            audio += f" ({job['audio_error']})"
        head["audio"] = audio
    if job.get("trace_id"):
        head["trace"] = job["trace_id"]
    if job.get("retryable_stages"):
        head["retryable"] = ", ".join(str(s) for s in job["retryable_stages"])
    if "cancellable" in job:
        head["cancellable"] = "yes" if job["cancellable"] else "no"
    out: list[Any] = [fields(head)]
    stages = job.get("stages") or []
    if stages:
        out.append(
            table(
                ["STAGE", "STATUS", "PROGRESS", "ATTEMPT", "UPDATED", "NOTE"],
                [
                    [
                        s.get("name"),
                        status_text(s.get("status")),
                        f"{st.percent}%",
                        s.get("attempt"),
                        when(s.get("updated_at") or s.get("finished_at") or s.get("started_at")),
                        st.note,
                    ]
                    for s, st in zip(_stage_docs(stages), stage_states(job), strict=True)
                ],
                title="stages",
            )
        )
    links = _links(job)
    if links:
        out.append(table(["OUTPUT", "URL"], links, title="outputs"))
    timeline = job.get("timeline") or []
    if timeline:
        out.append(
            table(
                ["AT", "WHAT"],
                [[when(t.get("at")), _timeline_text(t)] for t in timeline[-20:]],
                title="timeline",
            )
        )
    webhooks = job.get("webhooks") or []
    if webhooks:
        out.append(
            table(
                ["AT", "STAGE", "STATUS", "OUTCOME", "ERROR"],
                [
                    [
                        when(w.get("at")),
                        w.get("stage"),
                        w.get("status_code", w.get("status")),
                        w.get("outcome"),
                        w.get("error"),
                    ]
                    for w in webhooks[-20:]
                ],
                title="webhooks",
            )
        )
    actions = job.get("actions") or []
    if actions:
        out.append(
            table(
                ["AT", "BY", "ACTION", "DETAIL"],
                [
                    [when(a.get("at")), a.get("actor"), a.get("action"), a.get("detail")]
                    for a in actions
                ],
                title="operator actions",
            )
        )
    return out


def _stage_docs(stages: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [s for s in stages if isinstance(s, Mapping) and s.get("name")]


def _timeline_text(entry: Mapping[str, Any]) -> str:
    text = str(entry.get("name") or entry.get("what") or "")
    if entry.get("detail"):
        text = f"{text}: {entry['detail']}" if text else str(entry["detail"])
    if isinstance(entry.get("duration_ms"), int):
        text += f" ({entry['duration_ms']} ms)"
    return text


def _links(job: Mapping[str, Any]) -> list[list[str]]:
    links: list[list[str]] = []
    urls = job.get("urls")
    if isinstance(urls, Mapping):
        links += [[str(k), str(v)] for k, v in urls.items()]
    for item in [*(job.get("audio") or []), job.get("video")]:
        if isinstance(item, Mapping) and item.get("url"):
            links.append([str(item.get("label") or "media"), str(item["url"])])
    return links


def summary(job: Mapping[str, Any]) -> str:
    """The one line ``submit`` and ``watch`` end with."""
    status = str(job.get("status"))
    line = f"job {job.get('job_id')} {status}"
    if error_line(job):
        line += f": {error_line(job)}"
    elif status == "COMPLETED" and isinstance(job.get("result_url"), str):
        line += f"; result: {job['result_url']}"
    return line

"""An in-process stand-in for the job API (tenant and operator routes), behind
``httpx.MockTransport``: the CLI's client logic is tested against it without servers.
It answers in the API's one error shape and records every request it got."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

TENANT_KEY = "td_000000000001_tenant"
OPERATOR_KEY = "td_000000000002_operator"


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def job(job_id: str, status: str = "PENDING", progress: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "kind": "production",
        "status": status,
        "progress": progress,
        "created_at": "2025-01-02T03:04:05Z",
        "updated_at": "2025-01-02T03:04:06Z",
        "stages": [],
        "outputs": {},
        "urls": {},
        **extra,
    }


class FakeApi:
    """``states[job_id]`` is what successive reads of the job answer (the last repeats);
    ``submitted(job_id)``, when set, gives them for a job submitted through the API."""

    def __init__(
        self, submitted: Callable[[str], Sequence[Mapping[str, Any]]] | None = None
    ) -> None:
        self.submitted = submitted
        self.states: dict[str, list[dict[str, Any]]] = {}
        self.tenants: dict[str, str] = {}
        self.requests: list[httpx.Request] = []
        self.bodies: list[Any] = []
        self.next_id = 1

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add(self, states: Sequence[Mapping[str, Any]], tenant: str = "acme") -> str:
        job_id = str(states[0]["job_id"])
        self.states[job_id] = [dict(s) for s in states]
        self.tenants[job_id] = tenant
        return job_id

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content) if request.content else None
        self.bodies.append(body)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key not in (TENANT_KEY, OPERATOR_KEY):
            return error(401, "unauthorized", "invalid or revoked API key")
        parts = request.url.path.strip("/").split("/")
        ops = parts[:3] == ["v1", "ops", "jobs"]
        if ops and key != OPERATOR_KEY:
            return error(403, "forbidden", "this needs an operator key")
        rest = parts[3:] if ops else parts[2:]
        if parts[:2] != ["v1", "ops" if ops else "jobs"]:
            return error(404, "not_found", "no such resource")
        if not rest:
            return self._collection(request, body, ops)
        job_id, action = rest[0], rest[1] if len(rest) > 1 else ""
        if job_id not in self.states or (not ops and self.tenants[job_id] != "acme"):
            return error(404, "job_not_found", f"no job {job_id!r}")
        if action == "cancel":
            done = self._read(job_id, ops)
            if done["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                return error(409, "job_finished", "the job already ended")
            self.states[job_id] = [{**done, "status": "CANCELLED"}]
            return httpx.Response(200, json=self._read(job_id, ops))
        if action == "retry":
            return httpx.Response(202, json=self._read(job_id, ops))
        return httpx.Response(200, json=self._read(job_id, ops))

    def _collection(self, request: httpx.Request, body: Any, ops: bool) -> httpx.Response:
        if request.method == "POST":
            if not isinstance(body, dict) or "job_kind" not in body:
                return error(422, "invalid_request", "job_kind is required")
            job_id = f"job-{self.next_id}"
            self.next_id += 1
            self.add(self.submitted(job_id) if self.submitted else [job(job_id)])
            return httpx.Response(
                202,
                json={"job_id": job_id, "status": "PENDING", "status_url": f"/v1/jobs/{job_id}"},
            )
        params = request.url.params
        jobs = [
            self._peek(job_id, ops)
            for job_id in self.states
            if ops or self.tenants[job_id] == "acme"
        ]
        if params.get("status"):
            jobs = [j for j in jobs if j["status"] == params["status"]]
        if ops and params.get("tenant"):
            jobs = [j for j in jobs if j["tenant_id"] == params["tenant"]]
        limit = int(params.get("limit", "50"))
        more = len(jobs) > limit
        return httpx.Response(
            200, json={"jobs": jobs[:limit], "next_cursor": "c2" if more else None}
        )

    def _peek(self, job_id: str, ops: bool) -> dict[str, Any]:
        state = dict(self.states[job_id][0])
        return {**state, "tenant_id": self.tenants[job_id]} if ops else state

    def _read(self, job_id: str, ops: bool) -> dict[str, Any]:
        state = self._peek(job_id, ops)
        if len(self.states[job_id]) > 1:
            self.states[job_id].pop(0)
        return state

"""An in-memory job book for the lifecycle's unit tests, with the store's semantics: the
job as created plus a summary, outcomes appended once, actions and ends claimed once by
unique keys, an outbox of claimed events not yet confirmed sent."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from services.lifecycle.plan import TERMINAL, Action, Doc, Outcome, fold


class MemoryJobBook:
    def __init__(self) -> None:
        self.jobs: dict[str, Doc] = {}
        self.outcomes: dict[str, list[tuple[str, Outcome]]] = {}
        self.actions: dict[str, dict[str, Any]] = {}  # "job:name" -> {event, sent}
        self.claims: list[str] = []

    async def create(self, job_id: str, tenant_id: str, fields: dict[str, Any]) -> bool:
        await asyncio.sleep(0)
        if job_id in self.jobs:
            return False
        now = datetime.now(UTC)
        self.jobs[job_id] = {"_id": job_id, "job_id": job_id, "tenant_id": tenant_id,
                             "kind": "production", "created_at": now, "updated_at": now,
                             **copy.deepcopy(fields)}  # fmt: skip
        return True

    async def get(self, job_id: str) -> Doc | None:
        await asyncio.sleep(0)
        doc = self.jobs.get(job_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def record(self, job_id: str, event: Outcome, key: str) -> bool:
        await asyncio.sleep(0)
        recorded = self.outcomes.setdefault(job_id, [])
        if any(k == key for k, _ in recorded):
            return False
        recorded.append((key, event))
        return True

    async def state(self, job_id: str, job: Doc | None = None) -> tuple[Doc, list[str]] | None:
        await asyncio.sleep(0)
        job = job if job is not None else self.jobs.get(job_id)
        if job is None:
            return None
        return fold(job, [e for _, e in self.outcomes.get(job_id, [])])

    async def end(self, job_id: str, version: int) -> bool:
        key = f"{job_id}:end-v{version}"
        if key in self.actions:
            return False
        self.actions[key] = {"event": None, "sent": True}
        return True

    async def claim(self, job_id: str, action: Action, version: int = 1) -> bool:
        await asyncio.sleep(0)
        if action.status in TERMINAL and not await self.end(job_id, version):
            return False
        key = f"{job_id}:{action.name}"
        if key in self.actions:
            return False
        event = action.event.model_dump(mode="json") if action.event else None
        self.actions[key] = {"event": event, "sent": event is None}
        self.claims.append(action.name)
        await self.set_summary(job_id, {**action.fields, **(
            {"status": action.status} if action.status else {})})  # fmt: skip
        return True

    async def set_summary(self, job_id: str, fields: dict[str, Any]) -> None:
        self.jobs[job_id].update(copy.deepcopy(fields))

    async def sent(self, job_id: str, name: str) -> None:
        self.actions[f"{job_id}:{name}"]["sent"] = True

    def outbox(self, job_id: str) -> list[str]:
        return [k.split(":", 1)[1] for k, a in self.actions.items()
                if k.startswith(f"{job_id}:") and not a["sent"]]  # fmt: skip

    async def stale_outbox(
        self, older_than: timedelta, limit: int = 100
    ) -> list[tuple[str, str, Doc]]:
        return [(k.split(":", 1)[0], k.split(":", 1)[1], a["event"])
                for k, a in self.actions.items() if not a["sent"]]  # fmt: skip

    async def upstream_jobs(self, older_than: timedelta, limit: int = 100) -> list[str]:
        cutoff = datetime.now(UTC) - older_than
        return [j for j, d in self.jobs.items()
                if d.get("video", {}).get("source") == "upstream"
                and d["status"] not in TERMINAL and d["created_at"] < cutoff]  # fmt: skip

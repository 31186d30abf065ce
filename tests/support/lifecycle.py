"""An in-memory job book for the lifecycle's unit tests, with the store's conditional
semantics: guards on dotted paths (None: missing), claims that succeed once, an outbox."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from services.lifecycle.plan import TERMINAL, Action, Doc, Update

_MISSING = object()


def _get(doc: Doc, path: str) -> Any:
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _set(doc: Doc, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def _holds(doc: Doc, guard: Doc) -> bool:
    for path, want in guard.items():
        got = _get(doc, path)
        if isinstance(want, dict) and "$exists" in want:
            if (got is not _MISSING) != want["$exists"]:
                return False
        elif isinstance(want, dict) and "$nin" in want:
            if got in want["$nin"]:
                return False
        elif want is None:
            if got is not _MISSING and got is not None:
                return False
        elif got != want:
            return False
    return True


class MemoryJobBook:
    def __init__(self) -> None:
        self.jobs: dict[str, Doc] = {}
        self.claims: list[str] = []

    async def create(self, job_id: str, tenant_id: str, fields: dict[str, Any]) -> bool:
        await asyncio.sleep(0)
        if job_id in self.jobs:
            return False
        now = datetime.now(UTC)
        self.jobs[job_id] = {"_id": job_id, "job_id": job_id, "tenant_id": tenant_id,
                             "kind": "production", "created_at": now, "updated_at": now,
                             "outbox": [], **copy.deepcopy(fields)}  # fmt: skip
        return True

    async def get(self, job_id: str) -> Doc | None:
        await asyncio.sleep(0)
        doc = self.jobs.get(job_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def apply(self, job_id: str, update: Update) -> bool:
        await asyncio.sleep(0)
        doc = self.jobs.get(job_id)
        if doc is None or not _holds(doc, update.guard):
            return False
        for path, value in update.set.items():
            _set(doc, path, copy.deepcopy(value))
        doc.setdefault("timeline", []).append(update.note)
        return True

    async def claim(self, job_id: str, action: Action) -> bool:
        await asyncio.sleep(0)
        doc = self.jobs.get(job_id)
        guard = {f"actions.{action.name}": {"$exists": False}, "status": {"$nin": TERMINAL}}
        if doc is None or not _holds(doc, guard):
            return False
        event = action.event.model_dump(mode="json") if action.event else None
        _set(doc, f"actions.{action.name}", {"event": event})
        for path, value in action.fields.items():
            _set(doc, path, copy.deepcopy(value))
        if action.status is not None:
            doc["status"] = action.status
        if action.event is not None:
            doc["outbox"].append(action.name)
        self.claims.append(action.name)
        return True

    async def sent(self, job_id: str, name: str) -> None:
        self.jobs[job_id]["outbox"].remove(name)

    async def stale_outbox(
        self, older_than: timedelta, limit: int = 100
    ) -> list[tuple[str, str, Doc]]:
        return [(j, name, d["actions"][name]["event"])
                for j, d in self.jobs.items() for name in d["outbox"]]  # fmt: skip

    async def overdue_videos(self, older_than: timedelta, limit: int = 100) -> list[str]:
        cutoff = datetime.now(UTC) - older_than
        return [j for j, d in self.jobs.items()
                if _get(d, "video.status") == "WAITING" and _get(d, "video.source") == "upstream"
                and d["status"] not in TERMINAL and d["created_at"] < cutoff]  # fmt: skip

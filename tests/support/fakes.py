"""In-memory fakes of every shared port (``services/common/ports.py``), for unit tests.

Each keeps what it was asked in plain attributes, so tests assert on calls and state
without mocks. They follow the real adapters' rules where a test could depend on them
(forward-only stage status, first ledger record wins, unique clip ranges).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError
from pymongo.results import InsertOneResult, UpdateResult

from schemas import Event
from services.common.clip_rules import ClipPlan
from services.common.codec import RawMessage
from services.common.context import StageContext
from services.common.episodes import Episode, SeekIndex
from services.common.growing import Finish, Finisher
from services.common.job_store import TERMINAL, JobStatusRecorder, StageStatus, can_move
from services.common.ports import ObjectInfo
from services.submitter.keys import KeyRecord

Doc = dict[str, Any]


class MemoryEmitter:
    """Emitter and DeadLetters. ``fail_emits`` / ``fail_dead_letters`` make the next N
    calls raise, as a broker that does not answer would."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.dead: list[tuple[RawMessage, dict[str, bytes]]] = []
        self.fail_emits = 0
        self.fail_dead_letters = 0

    async def emit(self, events: Sequence[Event]) -> None:
        if self.fail_emits:
            self.fail_emits -= 1
            raise ConnectionError("broker unavailable")
        self.events.extend(events)

    async def dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        if self.fail_dead_letters:
            self.fail_dead_letters -= 1
            raise ConnectionError("broker unavailable")
        self.dead.append((msg, dict(headers)))


class MemoryLedger:
    def __init__(self) -> None:
        self.done: dict[tuple[str, str], list[str]] = {}
        self.reads = 0

    async def seen(self, stage: str, event_id: str) -> bool:
        self.reads += 1
        return (stage, event_id) in self.done

    async def record(self, stage: str, event_id: str, emitted: Sequence[str]) -> None:
        self.done.setdefault((stage, event_id), list(emitted))


class MemoryLeases:
    """Leases shared by the runners of several pretend processes: ``holder`` names each
    lease's process; ``expire`` frees one as if its holder had died."""

    def __init__(self, owner: str = "p1", held: dict[tuple[str, str], str] | None = None) -> None:
        self.ttl_s = 30.0
        self.owner = owner
        self.held: dict[tuple[str, str], str] = {} if held is None else held
        self.claims = 0

    def process(self, owner: str) -> MemoryLeases:
        """The same leases, as seen from another process."""
        return MemoryLeases(owner, self.held)

    async def claim(self, stage: str, event_id: str) -> bool:
        self.claims += 1
        return self.held.setdefault((stage, event_id), self.owner) == self.owner

    async def renew(self, stage: str, event_id: str) -> bool:
        return self.held.get((stage, event_id)) == self.owner

    async def release(self, stage: str, event_id: str) -> None:
        if self.held.get((stage, event_id)) == self.owner:
            del self.held[(stage, event_id)]

    def expire(self, stage: str, event_id: str) -> None:
        self.held.pop((stage, event_id), None)


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[tuple[str, str, str], Any] = {}
        self.loads = 0

    async def load(self, stage: str, event_id: str, step: str) -> Any | None:
        self.loads += 1
        return self.saved.get((stage, event_id, step))

    async def save(self, stage: str, event_id: str, step: str, result: Any) -> None:
        self.saved[(stage, event_id, step)] = result


class MemoryJobs:
    """JobRepo with the job store's rules: stages move forward only, progress only while
    a stage is not finished."""

    def __init__(self) -> None:
        self.jobs: dict[str, Doc] = {}
        self.stages: dict[str, Doc] = {}

    async def create_job(
        self, job_id: str, tenant_id: str, kind: str, fields: Mapping[str, Any]
    ) -> bool:
        if job_id in self.jobs:
            return False
        self.jobs[job_id] = {
            "_id": job_id,
            "job_id": job_id,
            "tenant_id": tenant_id,
            "kind": kind,
            "created_at": datetime.now(UTC),
            **fields,
        }
        return True

    async def transition(
        self, job_id: str, stage: str, target: StageStatus, fields: Mapping[str, Any] | None = None
    ) -> bool:
        key = f"{job_id}:{stage}"
        doc = self.stages.get(key)
        current = StageStatus(doc["status"]) if doc is not None else None
        if not can_move(current, target):
            return False
        if doc is None:
            doc = self.stages[key] = {"_id": key, "job_id": job_id, "stage": stage}
        doc.update({"status": target.value, **(fields or {})})
        return True

    async def record_progress(self, job_id: str, stage: str, fields: Mapping[str, Any]) -> bool:
        doc = self.stages.get(f"{job_id}:{stage}")
        if doc is None or doc["status"] in TERMINAL:
            return False
        for path, value in fields.items():
            # Dotted paths set one nested field, as MongoDB's $set does.
            *parents, leaf = path.split(".")
            target = doc
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        return True

    async def stage(self, job_id: str, stage: str) -> Doc | None:
        return self.stages.get(f"{job_id}:{stage}")

    async def job(self, job_id: str) -> Doc | None:
        stages = {d["stage"]: d for d in self.stages.values() if d["job_id"] == job_id}
        if job_id not in self.jobs and not stages:
            return None
        return {**self.jobs.get(job_id, {"_id": job_id, "job_id": job_id}), "stages": stages}

    async def stages_of(self, *job_ids: str) -> dict[str, dict[str, Doc]]:
        out: dict[str, dict[str, Doc]] = {job_id: {} for job_id in job_ids}
        for d in self.stages.values():
            if d["job_id"] in out:
                out[d["job_id"]][d["stage"]] = d
        return out


class MemoryMedia:
    """MediaPort over a dict of keys to bytes."""

    def __init__(self, objects: Mapping[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.uploads: list[str] = []
        self.presigned: list[str] = []
        self.copies: list[tuple[str, str]] = []

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    async def head(self, key: str) -> ObjectInfo | None:
        data = self.objects.get(key)
        if data is None:
            return None
        return ObjectInfo(key, len(data), None, None, None)

    async def presign_get(self, key: str, expires_s: int) -> str:
        self.presigned.append(key)
        return f"https://s3.test/{key}?expires={expires_s}"

    async def upload_file(self, key: str, path: Path, content_type: str | None = None) -> int:
        data = await asyncio.to_thread(Path(path).read_bytes)
        self.objects[key] = data
        self.uploads.append(key)
        return len(data)

    async def upload_growing(
        self,
        key: str,
        path: Path,
        written: Awaitable[None],
        content_type: str | None = None,
        finish: Finisher | None = None,
        check: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """The finished file (as ``finish`` composes it), once ``written`` is done and
        ``check`` passed; nothing when either raises."""
        await written
        if check is not None:
            await check()
        data = await asyncio.to_thread(Path(path).read_bytes)
        done = finish(Path(path), len(data)) if finish is not None else Finish.whole(len(data))
        self.objects[key] = done.prefix + data[done.skip : done.end]
        self.uploads.append(key)
        return done.size

    async def download_file(
        self,
        key: str,
        path: str | os.PathLike[str],
        start: int | None = None,
        end: int | None = None,
    ) -> int:
        if key not in self.objects:
            raise FileNotFoundError(key)
        data = self.objects[key][start or 0 : None if end is None else end + 1]
        await asyncio.to_thread(Path(path).write_bytes, data)
        return len(data)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def copy(self, src: str, dst: str) -> None:
        if src not in self.objects:
            raise FileNotFoundError(src)
        self.objects[dst] = self.objects[src]
        self.copies.append((src, dst))


class MemoryEpisodes:
    """EpisodeRepo keyed like the store: by (tenant, episode id)."""

    def __init__(self, *episodes: Episode) -> None:
        self.by_id = {(e.tenant_id, e.episode_id): e for e in episodes}
        self.indexes: dict[tuple[str, str], SeekIndex] = {}
        self.gets = 0

    async def get(self, tenant_id: str, episode_id: str) -> Episode | None:
        self.gets += 1
        return self.by_id.get((tenant_id, episode_id))

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None:
        return self.indexes.get((tenant_id, episode_id))


class MemoryClips:
    """ClipRepo: one document per clip range, like the unique index."""

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.inserts = 0

    async def find(self, plan: ClipPlan) -> Doc | None:
        return self.docs.get(plan.key)

    async def insert(self, plan: ClipPlan, size_bytes: int, generation_ms: int) -> Doc:
        self.inserts += 1
        doc = {"s3_key": plan.key, "file_size_bytes": size_bytes}
        return self.docs.setdefault(plan.key, doc)

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None:
        self.requests.append((plan.key, tenant_id, cache_hit))


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def context_for(
    event: Event,
    stage: str = "test",
    *,
    attempt: int = 1,
    checkpoints: MemoryCheckpoints | None = None,
    jobs: MemoryJobs | None = None,
    deadline_s: float = 60.0,
) -> StageContext:
    """A stage context for calling a handler directly, as the stage runner would."""
    clock = FakeClock()
    return StageContext(
        stage=stage,
        event=event,
        attempt=attempt,
        deadline=clock() + deadline_s,
        checkpoints=checkpoints or MemoryCheckpoints(),
        status=JobStatusRecorder(jobs) if jobs is not None else None,
        clock=clock,
    )


class MemoryKeys:
    """The submitter's key store (``KeyRepo`` plus listing and revoking), in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}

    async def get(self, key_id: str) -> KeyRecord | None:
        return self.records.get(key_id)

    async def add(self, record: KeyRecord) -> None:
        assert record.key_id not in self.records, "key ids are unique"
        self.records[record.key_id] = record

    async def list(self, tenant_id: str | None = None) -> list[KeyRecord]:
        return [r for r in self.records.values() if tenant_id in (None, r.tenant_id)]

    async def revoke(self, key_id: str) -> bool:
        record = self.records.get(key_id)
        if record is None or record.revoked_at is not None:
            return False
        self.records[key_id] = dataclasses.replace(record, revoked_at=datetime.now(UTC))
        return True


class MemoryCollection:
    """A MongoDB collection in a dict, with the part of the driver API the stores use:
    ``create_index`` (unique ones are enforced; ``_id`` always is), ``insert_one``,
    ``update_one`` with ``$set`` (dotted paths too), ``find_one``, ``find`` and
    ``count_documents``. Filters match on equality, ``$in`` and ``$nin``.

    Documents are copied in and out, as they would be over the wire, and every call
    yields to the event loop first, like a round trip, so concurrent writers interleave.
    """

    def __init__(self) -> None:
        self.docs: dict[Any, Doc] = {}
        self.indexes: list[tuple[list[tuple[str, int]], bool]] = []

    async def create_index(self, keys: Sequence[tuple[str, int]], *, unique: bool = False) -> str:
        await asyncio.sleep(0)
        self.indexes.append((list(keys), unique))
        return "_".join(f"{field}_{direction}" for field, direction in keys)

    async def insert_one(self, document: Mapping[str, Any]) -> InsertOneResult:
        await asyncio.sleep(0)
        doc = copy.deepcopy(dict(document))
        doc.setdefault("_id", ObjectId())
        unique = [[("_id", 1)], *(keys for keys, is_unique in self.indexes if is_unique)]
        for keys in unique:
            fields = [field for field, _ in keys]
            value = [_get(doc, f) for f in fields]
            if any([_get(other, f) for f in fields] == value for other in self.docs.values()):
                raise DuplicateKeyError(
                    f"E11000 duplicate key error: {dict(zip(fields, value, strict=True))}"
                )
        self.docs[doc["_id"]] = doc
        return InsertOneResult(doc["_id"], acknowledged=True)

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any]
    ) -> UpdateResult:
        await asyncio.sleep(0)
        assert set(update) == {"$set"}, f"only $set is supported, not {set(update)}"
        doc = next((d for d in self.docs.values() if _matches(d, filter)), None)
        if doc is None:
            return UpdateResult({"n": 0, "nModified": 0}, acknowledged=True)
        for path, value in update["$set"].items():
            *parents, last = path.split(".")
            target = doc
            for name in parents:
                target = target.setdefault(name, {})
            target[last] = copy.deepcopy(value)
        return UpdateResult({"n": 1, "nModified": 1}, acknowledged=True)

    async def find_one(self, filter: Mapping[str, Any]) -> Doc | None:
        await asyncio.sleep(0)
        doc = next((d for d in self.docs.values() if _matches(d, filter)), None)
        return copy.deepcopy(doc)

    async def find(self, filter: Mapping[str, Any]) -> AsyncIterator[Doc]:
        await asyncio.sleep(0)
        for doc in [d for d in self.docs.values() if _matches(d, filter)]:
            yield copy.deepcopy(doc)

    async def count_documents(self, filter: Mapping[str, Any]) -> int:
        await asyncio.sleep(0)
        return sum(_matches(d, filter) for d in self.docs.values())


class MemoryMongo:
    """An ``AsyncDatabase`` of :class:`MemoryCollection`, for the Mongo-backed stores."""

    def __init__(self) -> None:
        self.collections: dict[str, MemoryCollection] = {}

    def __getitem__(self, name: str) -> MemoryCollection:
        return self.collections.setdefault(name, MemoryCollection())


def _get(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for name in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _matches(doc: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    for path, condition in filter.items():
        value = _get(doc, path)
        if isinstance(condition, Mapping) and all(k.startswith("$") for k in condition):
            for op, arg in condition.items():
                if op == "$in" and value not in arg:
                    return False
                if op == "$nin" and value in arg:
                    return False
                if op not in ("$in", "$nin"):
                    raise NotImplementedError(f"filter operator {op}")
        elif value != condition:
            return False
    return True

"""``/healthz``: the process serves (liveness: a dependency outage must not restart it).
``/readyz``: MongoDB, Kafka (the results listener positioned) and S3 answer, pinged side
by side, each bounded, so a hung server cannot hang the answer (readiness)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.submitter.http.deps import RuntimeDep
from services.submitter.http.models import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    return HealthOut(status="ok", checks={})


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks = await run_checks(runtime.health_checks())
    ok = all(v == "ok" for v in checks.values())
    body = HealthOut(status="ok" if ok else "degraded", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


async def run_checks(
    checks: Mapping[str, Callable[[], Awaitable[object]]], timeout_s: float = 5.0
) -> dict[str, str]:
    async def one(check: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except TimeoutError:
            return "down: no answer within the timeout"
        except Exception as exc:
            # The type only: messages can carry hostnames or credentials in URLs.
            return f"down: {type(exc).__name__}"
        return "ok"

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))

"""``/healthz``: the process serves (liveness: a dependency outage must not restart it).
``/readyz``: MongoDB, Kafka (the results listener positioned) and S3 answer, pinged side
by side, each bounded, so a hung server cannot hang the answer (readiness)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.common.obs.health import run_checks
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

"""FastAPI dependencies: the runtime built in the lifespan, the ports routes use, and the
caller's tenant. Routes depend on ports rather than the runtime where they can, so tests
can hand them in-memory ones (``app.dependency_overrides``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from schemas.codes import Code
from services.common.obs.logs import annotate
from services.ops.actions import Actor
from services.submitter.clips.on_demand import ClipPorts
from services.submitter.http.errors import ApiError
from services.submitter.keys import KeyRepo, authenticate, authenticate_record, presented_key
from services.submitter.runtime import Runtime

# Declared for the OpenAPI document; the header values are read directly below so a
# malformed header is a 401 like any other bad key.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


# The dependencies below are ``async`` though they never wait: FastAPI runs a plain
# ``def`` dependency in its thread pool, a thread hop per dependency per request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_keys(runtime: RuntimeDep) -> KeyRepo:
    return runtime.keys


async def get_clip_ports(runtime: RuntimeDep) -> ClipPorts:
    return runtime.clip_ports()


ClipPortsDep = Annotated[ClipPorts, Depends(get_clip_ports)]


async def get_tenant(
    request: Request,
    keys: Annotated[KeyRepo, Depends(get_keys)],
    _b: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    _k: Annotated[str | None, Security(_api_key)],
) -> str:
    key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    tenant = await authenticate(keys, key)
    if tenant is None:
        message = "missing API key" if key is None else "invalid or revoked API key"
        raise ApiError(Code.UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})
    annotate(tenant=tenant)  # the request's later log lines say whose it was
    return tenant


Tenant = Annotated[str, Depends(get_tenant)]


async def get_operator(
    request: Request,
    keys: Annotated[KeyRepo, Depends(get_keys)],
    _b: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    _k: Annotated[str | None, Security(_api_key)],
) -> Actor:
    """The operator behind an operator key: 401 without a live key, 403 for a tenant's."""
    key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    record = await authenticate_record(keys, key)
    if record is None:
        message = "missing API key" if key is None else "invalid or revoked API key"
        raise ApiError(Code.UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})
    if not record.is_operator:
        raise ApiError(Code.FORBIDDEN, "this needs an operator key")
    return Actor(key_id=record.key_id, name=record.name or "")


OperatorDep = Annotated[Actor, Depends(get_operator)]

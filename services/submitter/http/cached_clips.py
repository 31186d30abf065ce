"""The cached-clip fast path: a plain cache hit of ``GET /api/v1/audio_clips/{id}``
answered before the framework.

With the clip, the episode and the key all cached, what is left of a hit is a signature
and a few dictionary look-ups; FastAPI's work around them (nine dependencies solved, five
parameters validated, the returned model validated again) measured about twice the 401
answer of the same route. So this middleware answers a request itself only when it is a
hit in its plainest form, from this process's memory alone: a live key whose record is
cached; a plain episode id, the episode cached; each parameter at most once, spelled
canonically (digits; ``format`` and ``accurate`` literally, no escapes); and the clip
cached. Anything else (no key, another spelling, a broken rule, a miss, anything not in
memory or past its TTL, a test's dependency overrides) goes on to the route untouched,
which answers it as it always did and fills the caches. So this path never waits on a
store, and gives only answers the route would give: the same body (``ClipOut``), status
and headers, under the same route label in the metrics, traced and counted
(``get_cached_clip``) the same way.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final, cast

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.clip import ClipFormat
from services.common.obs.logs import annotate
from services.submitter.clips.cache import NotInMemory
from services.submitter.clips.on_demand import ClipQuery, get_cached_clip
from services.submitter.http.routes.clips import ROUTE_NAME, clip_out
from services.submitter.keys import authenticate, presented_key

log = logging.getLogger(__name__)

PREFIX: Final = "/api/v1/audio_clips/"
_DIGITS: Final = re.compile(r"[0-9]{1,15}")
_FORMATS: Final = frozenset({"mp3", "m4a", "wav"})
_BOOLS: Final = {"true": True, "false": False}
_PARAMS: Final = frozenset({"start_time_ms", "duration_ms", "format", "accurate"})


class CachedClipFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: APIRoute | None = None
        self._looked_up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(PREFIX)
            and not scope.get("root_path")
        ):
            try:
                body = await self._hit(scope)
            except Exception:
                # Whatever went wrong, the route meets it again and answers it properly.
                log.debug("cached-clip fast path gave way to the route", exc_info=True)
                body = None
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _hit(self, scope: Scope) -> bytes | None:
        app: FastAPI = scope["app"]
        runtime = getattr(app.state, "runtime", None)
        if runtime is None or app.dependency_overrides:
            return None
        route = self._route if self._looked_up else self._find_route(app)
        query = parse_query(scope["path"][len(PREFIX) :], scope["query_string"])
        if route is None or query is None:
            return None
        headers = _headers(scope)
        key = presented_key(headers.get(b"authorization"), headers.get(b"x-api-key"))
        # From memory only: what is not held there (a key, an episode, the clip) the
        # route reads, so this path never waits on a store, nor twice on one that is down.
        tenant = await authenticate(runtime.keys.in_memory, key)
        if tenant is None:
            return None
        annotate(tenant=tenant)
        try:
            answer = await get_cached_clip(runtime.clip_ports_in_memory(), tenant, query)
        except NotInMemory:
            return None
        if answer is None:
            return None
        scope["route"] = route  # the route's label in the request metrics
        return clip_out(answer).model_dump_json().encode()

    def _find_route(self, app: FastAPI) -> APIRoute | None:
        self._route, self._looked_up = find_route(app.routes, ROUTE_NAME), True
        if self._route is None:
            log.warning("clip route %r not found: the cached-clip fast path is off", ROUTE_NAME)
        return self._route


def parse_query(episode_id: str, query_string: bytes) -> ClipQuery | None:
    """The clip query if every part is in its canonical spelling, else None."""
    try:
        text = query_string.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "%" in text or "+" in text:
        return None
    given: dict[str, str] = {}
    for pair in text.split("&") if text else ():
        name, sep, value = pair.partition("=")
        if not sep or name not in _PARAMS or name in given:
            return None
        given[name] = value
    start, duration = given.get("start_time_ms", ""), given.get("duration_ms", "")
    fmt, accurate = given.get("format", "mp3"), given.get("accurate", "false")
    if not (_DIGITS.fullmatch(start) and _DIGITS.fullmatch(duration)):
        return None
    if fmt not in _FORMATS or accurate not in _BOOLS:
        return None
    return ClipQuery(episode_id, int(start), int(duration), cast(ClipFormat, fmt), _BOOLS[accurate])


def _headers(scope: Scope) -> dict[bytes, str]:
    # The first of each, as Starlette's ``headers.get`` gives the route.
    out: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in (b"authorization", b"x-api-key") and name not in out:
            out[name] = value.decode("latin-1")
    return out


def find_route(routes: Any, name: str) -> APIRoute | None:
    """The API route called ``name``, also inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute) and route.name == name:
            return route
        inner = getattr(route, "original_router", None) or route
        nested = getattr(inner, "routes", None)
        if nested is not None and nested is not routes:
            found = find_route(nested, name)
            if found is not None:
                return found
    return None

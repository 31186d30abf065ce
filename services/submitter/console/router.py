"""The console's one router, mounted by the submitter's app under ``/console``: the
pages, the vendored assets, and an HTML 404 for any other console path."""

from __future__ import annotations

import mimetypes
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from services.submitter.console.render import PREFIX, base_path
from services.submitter.console.routing import ConsoleRoute, error_page
from services.submitter.console.views import dlq, jobs, pipeline, session

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _static_files() -> dict[str, bytes]:
    folder = resources.files("services.submitter.console") / "static"
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
    files = _static_files()

    @router.get("", name="console_home")
    async def home(request: Request) -> Response:
        return RedirectResponse(f"{base_path(request)}/jobs", status_code=303)

    @router.get("/static/{name}", name="console_static")
    async def static(request: Request, name: str) -> Response:
        body = files.get(name)
        if body is None:
            return error_page(request, 404, "No such file.")
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        media = STATIC_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "text/plain"
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=media, headers=headers)

    for area in (session.router, jobs.router, dlq.router, pipeline.router):
        router.include_router(area)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def nowhere(request: Request, rest: str) -> Response:
        if not rest and request.method == "GET":
            return RedirectResponse(f"{base_path(request)}/jobs", status_code=303)
        return error_page(request, 404, "There is no such page in the console.")

    return router

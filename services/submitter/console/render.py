"""Pages: the Jinja2 environment (package templates, autoescaped, strict about undefined
names so a template mistake fails a test instead of rendering blank), the filters pages
share, and the headers every console answer carries."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

PREFIX = "/console"
# Media comes from presigned object-store URLs (another origin); nothing else may.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' http: https:; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show tenants' data and carry the CSRF token: never kept by caches.
    "Cache-Control": "no-store",
}
# htmx: no inline styles (the CSP refuses them), no eval, no history in localStorage.
HTMX_CONFIG = json.dumps(
    {
        "includeIndicatorStyles": False,
        "allowEval": False,
        "allowScriptTags": False,
        "historyCacheSize": 0,
        "selfRequestsOnly": True,
    }
)


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + PREFIX


def when(value: datetime | None) -> str:
    """A UTC time as pages show it (naive values are UTC, as MongoDB returns them)."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %"


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("services.submitter.console", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, duration=duration, percent=percent, number=number)
    env.globals["htmx_config"] = HTMX_CONFIG
    env.globals["now"] = lambda: when(datetime.now(UTC))
    return env


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    base = base_path(request)
    context.setdefault("session", getattr(request.state, "console_session", None))
    context.setdefault("notice", None)
    context.setdefault("problem", None)
    html = (
        environment()
        .get_template(template)
        .render(base=base, static=f"{base}/static", path=request.url.path, **context)
    )
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})

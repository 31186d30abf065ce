"""The HTTP side of a delivery: one POST, its status, nothing else read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from services.common.obs import trace


def http_client(*, connect_s: float, total_s: float, max_connections: int) -> httpx.AsyncClient:
    # trust_env off: no proxy variables and no .netrc credentials for tenants' URLs.
    # No redirects: a 3xx is a failed attempt, never a hop to a host nobody checked.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(total_s, connect=connect_s),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=max_connections),
    )


class HttpSender:
    def __init__(self, client: httpx.AsyncClient, *, total_s: float) -> None:
        self._client = client
        self._total_s = total_s

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        # httpx times each phase; the whole attempt, a trickling answer included, is
        # bounded here. The body is never read: only the status counts.
        if trace.TRACEPARENT not in headers:
            # Every call names a trace: the current one's span, else a new one.
            ctx = trace.current() or trace.start(None)
            headers = {**headers, trace.TRACEPARENT: ctx.header()}
        async with asyncio.timeout(self._total_s):
            async with self._client.stream("POST", url, content=body, headers=headers) as resp:
                return resp.status_code

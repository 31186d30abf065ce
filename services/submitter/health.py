"""Dependency pings run side by side, each bounded, so a hung server cannot hang /healthz."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping


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

"""Running a ``tapedeck`` command in-process, as ``main`` would, against the fake API."""

from __future__ import annotations

import httpx

from services.cli import parser, run


async def tapedeck(*argv: str, transport: httpx.AsyncBaseTransport | None = None) -> int:
    args = parser().parse_args(list(argv))
    if transport is not None:
        args.transport = transport
    return await run(args)

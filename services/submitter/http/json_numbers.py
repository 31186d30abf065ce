"""JSON bodies as these routes take them: numbers as JSON Schema reads them (``1.0`` and
``1e3`` are integers there, so a body that says ``"duration_ms": 1e3`` must reach our
strict models as the int 1000), at most ``JSON_BODY_MAX`` bytes (an event carries the
body on, and no event is larger), and only as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

# The largest event a stage takes is 1 MiB (MAX_MESSAGE_BYTES' default); a job's body
# travels on inside one, so a larger body could never be served.
JSON_BODY_MAX = 1024 * 1024


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _Request(Request):
    async def body(self) -> bytes:
        # Refused at the first byte over the limit: nothing larger is held in memory.
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > JSON_BODY_MAX:
                raise HTTPException(413)
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > JSON_BODY_MAX:
                    raise HTTPException(413)
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # As malformed JSON (a 422 naming the body), not an unreadable request.
                raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
            try:
                self._json = json.loads(text, parse_float=_number)
            except RecursionError:
                raise json.JSONDecodeError("the body is nested too deeply", "", 0) from None
        return self._json


class IntegralNumbersRoute(APIRoute):
    """A route whose JSON body reads whole-valued numbers as integers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def route(request: Request) -> Response:
            content_type = request.headers.get("content-type")
            if takes_body and content_type and not _is_json(content_type):
                # Otherwise the body would be read as bytes and refused as an invalid spec.
                raise HTTPException(415)
            return await handler(_Request(request.scope, request.receive))

        return route

"""JSON numbers as JSON Schema reads them: ``1.0`` and ``1e3`` are integers there, so a
body that says ``"duration_ms": 1e3`` must reach our strict models as the int 1000."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


class _Request(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # As malformed JSON (a 422 naming the body), not an unreadable request.
                raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
            self._json = json.loads(text, parse_float=_number)
        return self._json


class IntegralNumbersRoute(APIRoute):
    """A route whose JSON body reads whole-valued numbers as integers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_Request(request.scope, request.receive))

        return route

"""One router per resource: ``clips``, ``episodes``.

Ids in paths use the ``anyid`` convertor: it takes every character, a newline or an
encoded slash included, so each bad id reaches the id rules and gets their answer, instead
of some of them missing the route (Starlette's ``path`` convertor is ``.*``, which stops at
a newline) and answering a bare 404."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class AnyIdConvertor(Convertor[str]):
    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("anyid", AnyIdConvertor())

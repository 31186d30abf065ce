"""The jobs list's filters, from the query string and back into links (the live
fragment and the next page keep them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args
from urllib.parse import urlencode

from schemas.ids import is_plain_id
from services.submitter.http.routes.jobs import Kind, Status

STATUSES: tuple[str, ...] = get_args(Status)
KINDS: tuple[str, ...] = get_args(Kind)
PAGE_SIZE = 50


class BadFilter(ValueError):
    pass


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if value not in allowed:
        raise BadFilter(f"{name} must be one of {', '.join(allowed)}")
    return value


def parse_time(value: str | None, name: str) -> datetime | None:
    """A ``datetime-local`` field's value (or any ISO time); without a zone it is UTC."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadFilter(f"{name} must be a time like 2025-01-31T13:45") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def field_time(value: datetime | None) -> str:
    """How a time goes back into a ``datetime-local`` field (UTC, to the minute)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if value else ""


@dataclass(frozen=True)
class JobFilters:
    status: str | None = None
    kind: str | None = None
    tenant: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    @classmethod
    def parse(
        cls,
        status: str | None,
        kind: str | None,
        tenant: str | None,
        created_after: str | None,
        created_before: str | None,
    ) -> JobFilters:
        tenant = (tenant or "").strip() or None
        if tenant is not None and not is_plain_id(tenant):
            raise BadFilter("tenant must be a tenant id (letters, digits, '.', '_', '-')")
        after = parse_time(created_after, "from")
        before = parse_time(created_before, "to")
        if after and before and after >= before:
            raise BadFilter("'from' must be before 'to'")
        return cls(
            _choice(status, STATUSES, "status"), _choice(kind, KINDS, "kind"), tenant, after, before
        )

    def params(self) -> dict[str, str]:
        out = {
            "status": self.status or "",
            "kind": self.kind or "",
            "tenant": self.tenant or "",
            "created_after": field_time(self.created_after),
            "created_before": field_time(self.created_before),
        }
        return {k: v for k, v in out.items() if v}

    def query(self, **extra: str | None) -> str:
        params = {**self.params(), **{k: v for k, v in extra.items() if v}}
        return urlencode(params)

    @property
    def active(self) -> bool:
        return bool(self.params())

"""Who did what: the operator behind an action, and the record every operator action
leaves (job retries and cancels in ``ops_actions``; dead-letter replays and discards in
``dlq_actions``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Actor:
    """An operator, as their API key names them."""

    key_id: str
    name: str

    @property
    def label(self) -> str:
        """What records show: the key's name, and its id so two keys of one name differ."""
        return f"{self.name} ({self.key_id})" if self.name else self.key_id


@dataclass(frozen=True)
class ActionRecord:
    at: datetime
    actor: str
    action: str
    detail: str

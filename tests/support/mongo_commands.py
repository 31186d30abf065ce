"""MongoDB commands counted per request (pymongo command monitoring), so a test can tell
the commands a request waited for from those of the background tasks beside it.

pymongo publishes ``started`` in the task that sends the command. A context variable
marks the code under watch; tasks it starts (a cache's shared read) inherit it, tasks
started apart (flushers, a cache's background refresh) do not. Listeners are global and
permanent once registered: one is registered for the whole test process, the first time
:func:`commands` is called, before the clients it must see are made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pymongo import monitoring

_SEEN: ContextVar[list[tuple[str, str]] | None] = ContextVar("mongo_commands_seen", default=None)


class _Listener(monitoring.CommandListener):
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        seen = _SEEN.get()
        if seen is not None:
            target = event.command.get(event.command_name)
            seen.append((event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_REGISTERED: list[_Listener] = []


def commands() -> None:
    """Start listening (once per process); call it before the clients to watch are made."""
    if not _REGISTERED:
        _REGISTERED.append(_Listener())
        monitoring.register(_REGISTERED[0])


@contextmanager
def sent_by_this_task() -> Iterator[list[tuple[str, str]]]:
    """(command, collection) of each command this code, and tasks it starts, send."""
    commands()
    seen: list[tuple[str, str]] = []
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)

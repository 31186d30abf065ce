"""One line for an exception no command caught: what failed, in words an operator can act
on, without the exception's own text (which can carry URLs with credentials or paths)."""

from __future__ import annotations

import sys


def _is(exc: BaseException, module: str, *names: str) -> bool:
    # Only modules already loaded can have raised it: checking never imports a client.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(
        exc, tuple(getattr(loaded, name) for name in names if hasattr(loaded, name))
    )


def describe(exc: BaseException) -> str:
    if _is(exc, "pymongo.errors", "ConnectionFailure", "ServerSelectionTimeoutError"):
        return "cannot reach MongoDB (MONGO_URL); is it running?"
    if _is(exc, "pymongo.errors", "PyMongoError"):
        return f"MongoDB refused the operation ({type(exc).__name__})"
    if _is(exc, "aiokafka.errors", "KafkaConnectionError"):
        return "cannot reach Kafka (KAFKA_BOOTSTRAP); is it running?"
    if _is(exc, "aiokafka.errors", "KafkaTimeoutError"):
        return "Kafka did not answer in time (KAFKA_BOOTSTRAP)"
    if _is(exc, "aiokafka.errors", "KafkaError"):
        return f"Kafka refused the operation ({type(exc).__name__})"
    if _is(exc, "pydantic", "ValidationError"):
        return f"invalid settings in the environment: {_settings_problem(exc)}"
    return f"unexpected error ({type(exc).__name__}); run with TAPEDECK_DEBUG=1 for details"


def _settings_problem(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return "see TAPEDECK_DEBUG=1"
    parts = []
    for err in errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "?"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)

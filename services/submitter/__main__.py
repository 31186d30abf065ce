"""``python -m services.submitter``: create the topics, then serve the API with
``API_WORKERS`` processes."""

from __future__ import annotations

import asyncio

import uvicorn
from fastapi import FastAPI

from services.common.kafka import ensure_topics
from services.common.obs.logs import configure_logging, secrets_of
from services.submitter.http.app import create_api
from services.submitter.settings import SubmitterSettings


def _configure_logging(settings: SubmitterSettings) -> None:
    configure_logging("submitter", settings.log_level, settings.log_format,
                      secrets=secrets_of(settings))  # fmt: skip


def worker_app() -> FastAPI:
    """One API process's app. Each worker is a fresh (spawned) interpreter that reads the
    same environment, so it configures its own logging and opens its own runtime."""
    settings = SubmitterSettings()
    _configure_logging(settings)
    return create_api(settings)


def main() -> None:
    settings = SubmitterSettings()
    _configure_logging(settings)
    asyncio.run(ensure_topics(settings))
    uvicorn.run(
        # An import string (a factory): uvicorn builds the app in each worker process.
        "services.submitter.__main__:worker_app",
        factory=True,
        workers=settings.api_workers,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # None: uvicorn's own error and access lines go through the handler above.
        log_config=None,
    )


if __name__ == "__main__":
    main()

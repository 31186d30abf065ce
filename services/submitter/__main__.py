"""``python -m services.submitter``: create the topics, then serve the API."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from services.common.kafka import ensure_topics
from services.submitter.http.app import create_api
from services.submitter.settings import SubmitterSettings


def main() -> None:
    settings = SubmitterSettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(ensure_topics(settings))
    uvicorn.run(
        create_api(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()

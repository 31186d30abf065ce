"""``python -m services.webhooks``: deliver job outcomes to callback URLs until stopped."""

from __future__ import annotations

from services.common.faust_app import run_worker
from services.common.kafka import ensure_topics
from services.webhooks.app import build_app
from services.webhooks.settings import WebhookSettings


def main() -> None:
    settings = WebhookSettings()
    run_worker(build_app(settings), settings, lambda: ensure_topics(settings))


if __name__ == "__main__":
    main()

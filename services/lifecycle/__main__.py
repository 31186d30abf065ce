"""``python -m services.lifecycle``: drive production jobs until stopped."""

from __future__ import annotations

from services.common.faust_app import run_worker
from services.common.kafka import ensure_topics
from services.lifecycle.app import build_app
from services.lifecycle.settings import LifecycleSettings


def main() -> None:
    settings = LifecycleSettings()
    run_worker(build_app(settings), settings, lambda: ensure_topics(settings))


if __name__ == "__main__":
    main()

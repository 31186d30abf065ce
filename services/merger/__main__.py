"""``python -m services.merger``: run the merge stage until stopped."""

from __future__ import annotations

from services.common.faust_app import run_worker
from services.common.kafka import ensure_topics
from services.merger.app import build_app
from services.merger.settings import MergerSettings


def main() -> None:
    settings = MergerSettings()
    run_worker(build_app(settings), settings, lambda: ensure_topics(settings))


if __name__ == "__main__":
    main()

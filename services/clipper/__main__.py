"""``python -m services.clipper``: run the clip stage until stopped."""

from __future__ import annotations

from services.clipper.app import build_app
from services.clipper.settings import ClipperSettings
from services.common.faust_app import run_worker
from services.common.kafka import ensure_topics


def main() -> None:
    settings = ClipperSettings()
    run_worker(build_app(settings), settings, lambda: ensure_topics(settings))


if __name__ == "__main__":
    main()

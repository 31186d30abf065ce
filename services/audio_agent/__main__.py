"""``python -m services.audio_agent``: run the audio stage until stopped."""

from __future__ import annotations

from services.audio_agent.app import build_app
from services.audio_agent.settings import AudioAgentSettings
from services.common.faust_app import run_worker
from services.common.kafka import ensure_topics


def main() -> None:
    settings = AudioAgentSettings()
    run_worker(build_app(settings), settings, lambda: ensure_topics(settings))


if __name__ == "__main__":
    main()

"""The main jobs on the local stack, end to end: a production job (three scene videos
joined, scored with music and a voiceover, muxed into one MP4), then the clip demo:
register a spoken episode and ask for a clip twice (a miss that goes through Kafka and
the clipper, then a cache hit).

Run through ``make run``, which brings the stack and the services up first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import production_demo

API = f"http://{os.environ.get('API_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8080')}"
ROOT = Path(__file__).resolve().parent.parent

PARAGRAPH = (
    "This is paragraph {n} of the Tapedeck demonstration episode. Tapedeck turns media jobs "
    "into typed events on Kafka and runs them through independent services. The clipper "
    "cuts a range out of an episode stored in S3, reads only the bytes that range needs, "
    "caches the result, and answers with a presigned link. "
)


def make_episode(workdir: Path, paragraphs: int = 14) -> Path:
    """A few minutes of speech from espeak-ng, encoded as MP3 with ffmpeg."""
    text = "".join(PARAGRAPH.format(n=i + 1) for i in range(paragraphs))
    wav, mp3 = workdir / "episode.wav", workdir / "episode.mp3"
    subprocess.run(["espeak-ng", "-s", "165", "-w", str(wav), text], check=True)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-i",
            str(wav),
            "-ac",
            "1",
            "-ar",
            "44100",
            "-c:a",
            "libmp3lame",
            "-q:a",
            "4",
            str(mp3),
        ],
        check=True,
    )
    return mp3


def api_key() -> str:
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "tapedeck"), "keys", "create", "--tenant", "demo", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(out.stdout)["key"])


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="tapedeck-demo-"))
    try:
        episode = make_episode(workdir)
        headers = {"Authorization": f"Bearer {api_key()}"}
        with httpx.Client(base_url=API, headers=headers, timeout=120) as client:
            print("== production job ==")
            production_demo.run(client, workdir)
            print("== clips ==")
            with episode.open("rb") as fh:
                resp = client.post(
                    "/v1/episodes", files={"file": ("episode.mp3", fh, "audio/mpeg")}
                )
            resp.raise_for_status()
            ep = resp.json()
            print(
                f"registered episode {ep['episode_id']}: {ep['duration_ms'] / 1000:.1f} s, "
                f"{ep['codec']} {ep['sample_rate']} Hz, {ep['size_bytes']} bytes"
            )
            start = min(60_000, ep["duration_ms"] // 2)
            params = {"start_time_ms": start, "duration_ms": 15_000}
            for attempt in ("first (miss)", "second (hit)"):
                t0 = time.perf_counter()
                resp = client.get(f"/api/v1/audio_clips/{ep['episode_id']}", params=params)
                elapsed_ms = (time.perf_counter() - t0) * 1000
                resp.raise_for_status()
                body = resp.json()
                print(
                    f"{attempt}: HTTP {resp.status_code} in {elapsed_ms:.0f} ms, "
                    f"cache_hit={body['cache_hit']}, "
                    f"generation_time_ms={body['generation_time_ms']}"
                )
                print(f"  clip_url: {body['clip_url']}")
            clip = httpx.get(body["clip_url"], timeout=30)
            clip.raise_for_status()
            print(f"downloaded the clip through its URL: {len(clip.content)} bytes")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

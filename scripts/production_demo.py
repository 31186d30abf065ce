"""The production job demo: three short scene videos made with ffmpeg and uploaded, one
job with music from the offline provider and a voiceover, followed to COMPLETED in the
terminal, then the result's URL, duration and loudness and each stage's time."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

SCENES = [
    ("sunrise over a calm sea", "Morning comes slowly over the water."),
    ("a busy harbour at noon", "By noon the harbour is full of boats."),
    ("lanterns along the quay at night", "At night the lanterns light the quay."),
]
SCENE_S = 4


def make_scene(path: Path, n: int) -> Path:
    """A short 640x360 test-pattern video with a tone, the same format for every scene,
    so joining them is a stream copy."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={SCENE_S}",
         "-f", "lavfi", "-i", f"sine=frequency={300 + 100 * n}:duration={SCENE_S}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25",
         "-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def upload(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as fh:
        resp = client.post("/v1/media", files={"file": (path.name, fh, "video/mp4")})
    resp.raise_for_status()
    return str(resp.json()["s3_key"])


def bar(progress: int, width: int = 30) -> str:
    filled = width * progress // 100
    return "[" + "#" * filled + "." * (width - filled) + f"] {progress:3d}%"


def follow(client: httpx.Client, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        stages = " ".join(f"{s['name']}:{s['status'].lower()}" for s in job["stages"])
        line = f"{bar(job['progress'])} {job['status'].lower():9} {stages}"
        if line != last:
            print(line, flush=True)
            last = line
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return dict(job)
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not end within {timeout_s:.0f} s")
        time.sleep(0.5)


def loudness(url: str) -> str:
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", url, "-map", "0:a:0",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    lufs = re.findall(r"I:\s+(-?[\d.]+) LUFS", out)
    peak = re.findall(r"Peak:\s+(-?[\d.]+) dBFS", out)
    return (
        f"{lufs[-1] if lufs else '?'} LUFS integrated, true peak {peak[-1] if peak else '?'} dBTP"
    )


def duration(url: str, stream: str) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
         "stream=duration", "-of", "csv=p=0", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[0])


def stage_times(job: dict[str, Any]) -> list[str]:
    lines = []
    for stage in job["stages"]:
        try:
            start = datetime.fromisoformat(stage["created_at"])
            end = datetime.fromisoformat(stage["updated_at"])
            lines.append(f"  {stage['name']:22} {(end - start).total_seconds():6.2f} s")
        except (TypeError, ValueError, KeyError):
            continue
    return lines


def run(client: httpx.Client, workdir: Path) -> None:
    print("making three scene videos with ffmpeg and uploading them ...")
    keys = [upload(client, make_scene(workdir / f"scene-{n}.mp4", n)) for n in range(len(SCENES))]
    spec = {
        "job_kind": "production",
        "prompt": "a gentle day at the seaside, warm piano",
        "scenes": [
            {"prompt": p, "duration_s": SCENE_S, "text": t, "video": k}
            for (p, t), k in zip(SCENES, keys, strict=True)
        ],
        "feature": {"audio": True, "audio_tier": "basic", "voiceover": True},
        "audio_params": {"kind": "music", "fade_duration": 1.0, "sync_mode": "trim"},
    }
    resp = client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": f"demo-{time.time()}"})
    resp.raise_for_status()
    job_id = resp.json()["job_id"]
    print(f"submitted production job {job_id}; following it:")
    t0 = time.perf_counter()
    job = follow(client, job_id)
    elapsed = time.perf_counter() - t0
    if job["status"] != "COMPLETED":
        raise SystemExit(f"job ended {job['status']}: {job.get('error')}")
    url = job["result_url"]
    print(f"completed in {elapsed:.1f} s; audio {job['audio_status'].lower()}")
    print(f"  final MP4: {url}")
    video_s, audio_s = duration(url, "v:0"), duration(url, "a:0")
    print(f"  duration: video {video_s:.3f} s, audio {audio_s:.3f} s")
    print(f"  loudness: {loudness(url)}")
    print("  time in each stage:")
    for line in stage_times(job):
        print(line)

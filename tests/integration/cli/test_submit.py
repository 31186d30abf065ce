"""``tapedeck submit`` following a job through the whole pipeline (submitter, lifecycle,
merger and audio agent, each its own process) to its end: one small production job that
completes, and one that fails at once, for the exit statuses scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

from services.common.media_store import MediaStore
from services.common.settings import Settings
from tests.integration.cli.command import tapedeck
from tests.integration.merger.media import make_video
from tests.support.services import running

MODULES = ("services.submitter", "services.lifecycle", "services.merger", "services.audio_agent")


async def test_submit_shows_progress_until_the_job_ends(settings: Settings, tmp_path: Path) -> None:
    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme", "--json")
    assert code == 0, err
    key = json.loads(out)["key"]
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    video = make_video(scenes / "a.mp4", 2, tone=None)
    not_video = scenes / "b.mp4"
    not_video.write_text("not a video")
    async with MediaStore.from_settings(settings) as media:
        await media.upload_file("ingest/acme/a.mp4", video)
        await media.upload_file("ingest/acme/b.mp4", not_video)
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "job_kind": "production",
                "prompt": "a calm sea",
                "scenes": [{"prompt": "dawn", "duration_s": 2, "video": "ingest/acme/a.mp4"}],
                "feature": {"audio": True, "audio_tier": "basic"},
            }
        )
    )
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            {
                "job_kind": "production",
                "prompt": "a calm sea",
                "scenes": [
                    {"prompt": "dawn", "duration_s": 2, "video": "ingest/acme/a.mp4"},
                    {"prompt": "dusk", "duration_s": 2, "video": "ingest/acme/b.mp4"},
                ],
                "feature": {"audio": False},
            }
        )
    )

    with running(settings, tmp_path, MODULES, TMPDIR=str(tmp_path)) as base:
        env = {"TAPEDECK_API_URL": base, "TAPEDECK_API_KEY": key}
        code, out, err = await tapedeck(
            settings,
            "submit",
            str(job),
            "--interval",
            "0.5",
            "--wait-timeout",
            "240",
            env=env,
            timeout_s=300,
        )
        assert code == 0, err
        [line] = out.splitlines()
        job_id = err.splitlines()[0].removeprefix("submitted job ")
        assert line.startswith(f"job {job_id} COMPLETED; result: http")
        # The bars as they last stood: the job's, then each stage's as the API has it.
        code, out, _ = await tapedeck(settings, "jobs", "show", job_id, "--json", env=env)
        final = json.loads(out)
        bars = [bar.split() for bar in err.splitlines()[1:]]
        assert bars[0][:2] == ["job", job_id] and "100%" in bars[0] and "COMPLETED" in bars[0]
        shown = {bar[0]: bar for bar in bars[1:]}
        assert set(shown) == {stage["name"] for stage in final["stages"]}
        assert {"audio", "merge.soundtrack-a1"} <= set(shown)
        for stage in final["stages"]:
            assert stage["status"] in shown[stage["name"]], err

        code, out, err = await tapedeck(
            settings,
            "submit",
            str(broken),
            "--interval",
            "0.5",
            "--wait-timeout",
            "120",
            "--json",
            env=env,
            timeout_s=180,
        )
        failed = json.loads(out)
        assert code == 1 and failed["status"] == "FAILED", out
        code_, message = failed["error"]["code"], failed["error"]["message"]
        assert err == f"tapedeck: job {failed['job_id']} FAILED: {code_}: {message}\n"

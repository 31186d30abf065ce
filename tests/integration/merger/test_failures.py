"""Every bad input ends in ``merge.failed`` with its own code before any heavy work, and a
merge killed or cancelled mid-run leaves nothing in its scratch directory."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from schemas import TOPICS
from schemas.codes import Code
from schemas.merge import MergeFailed, MergeRequested
from schemas.names import Stage
from services.common.codec import Codec, RawMessage
from services.common.errors import PermanentError
from services.common.media_store import MediaStore
from services.common.retry import RetryPolicy
from services.common.stage import Outcome, StageRunner
from services.merger.handler import merge_failed
from tests.integration.merger import media
from tests.integration.merger.conftest import Clips, handler_for, merge_request, put
from tests.support.fakes import MemoryCheckpoints, MemoryEmitter, MemoryLedger, context_for


@pytest.mark.parametrize(
    ("operation", "inputs", "params", "limits", "code"),
    [
        ("concat_video", ["in/a.mp4", "in/gone.mp4"], {}, {}, Code.INPUT_MISSING),
        ("concat_video", ["in/a.mp4", "in/notes.mp4"], {}, {}, Code.INPUT_NOT_MEDIA),
        ("concat_video", ["in/a.mp4", "in/tone.wav"], {}, {}, Code.INPUT_NO_VIDEO),
        ("mux", ["in/a.mp4", "in/small.mp4"], {}, {}, Code.INPUT_NO_AUDIO),
        ("mux", ["in/a.mp4", "in/tone.wav"], {"voiceover_key": "in/small.mp4"}, {},
         Code.INPUT_NO_AUDIO),
        ("concat_video", ["in/a.mp4"], {}, {"max_duration_ms": 1500}, Code.INPUT_TOO_LONG),
        ("concat_video", ["in/a.mp4"] * 3, {}, {"max_inputs": 2}, Code.TOO_MANY_INPUTS),
        ("mux", ["in/a.mp4"], {}, {}, Code.INVALID_MERGE_REQUEST),
    ],
)  # fmt: skip
async def test_bad_inputs_end_in_merge_failed_with_their_code(
    store: MediaStore, clips: Clips, operation: str, inputs: list[str],
    params: dict[str, Any], limits: dict[str, Any], code: Code, tmp_path: Path,
) -> None:  # fmt: skip
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are not the frames you are looking for\n" * 50)
    await put(store, {"in/a.mp4": clips.a, "in/small.mp4": clips.small,
                      "in/tone.wav": clips.tones[0], "in/notes.mp4": notes})  # fmt: skip
    emitter = MemoryEmitter()
    runner = StageRunner(
        stage=Stage.MERGE, codec=Codec.for_topic(TOPICS.merge_requests, 1 << 20),
        handler=handler_for(store, **limits), on_failure=merge_failed, emitter=emitter,
        dead_letters=emitter, ledger=MemoryLedger(), checkpoints=MemoryCheckpoints(),
        retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip
    event = merge_request(operation, inputs, "out/never.mp4", step="concat", **params)
    msg = RawMessage(topic=TOPICS.merge_requests.name, value=event.model_dump_json().encode(),
                     key=event.job_id.encode())  # fmt: skip
    assert await runner.process(msg) is Outcome.FAILED
    (failed,) = emitter.events
    assert isinstance(failed, MergeFailed)
    assert failed.error.code == code and not failed.error.retryable
    assert failed.error.message and "in/" not in failed.error.message  # positions, not keys
    assert (failed.job_id, failed.operation, failed.step) == ("job-1", operation, "concat")
    assert await store.head("out/never.mp4") is None


# -- scratch space on every path ------------------------------------------------------------


def _ffmpeg_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if comm == "ffmpeg" and int(rest.split()[1]) == me and rest.split()[0] != "Z":
            found.append(int(entry))
    return found


def _writing(scratch: Path) -> bool:
    outputs = list(scratch.glob("tapedeck-merge-*/merged.*"))
    return bool(outputs) and outputs[0].stat().st_size > 0


async def _started_run(scratch: Path) -> int:
    """The pid of the merge's ffmpeg, once it is writing its output in the scratch dir."""
    for _ in range(400):
        children = _ffmpeg_children()
        writing = await asyncio.to_thread(_writing, scratch)
        if children and writing:
            return children[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the merge's ffmpeg did not start")


@pytest.fixture
async def slow_merge(store: MediaStore, tmp_path_factory: pytest.TempPathFactory) -> MergeRequested:
    """A normalising concat that takes seconds: 20 s of video upscaled to 720p."""
    d = tmp_path_factory.mktemp("slow")
    big = media.make_video(d / "big.mp4", 1, size="1280x720", tone=440)
    long = media.make_video(d / "long.mp4", 20, tone=660)
    await put(store, {"in/big.mp4": big, "in/long.mp4": long})
    return merge_request("concat_video", ["in/big.mp4", "in/long.mp4"], "out/slow.mp4")


@pytest.mark.parametrize("how", ["kill ffmpeg", "cancel the handler"])
async def test_a_merge_stopped_mid_run_leaves_no_scratch_files(
    store: MediaStore, slow_merge: MergeRequested, tmp_path: Path, how: str
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    handler = handler_for(store, workdir=scratch)
    task = asyncio.create_task(handler(slow_merge, context_for(slow_merge, Stage.MERGE,
                                                               deadline_s=600)))  # fmt: skip
    pid = await _started_run(scratch)
    if how == "kill ffmpeg":
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(PermanentError) as err:
            await task
        assert err.value.code == Code.FFMPEG_FAILED
    else:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert list(scratch.iterdir()) == []
    assert pid not in _ffmpeg_children()
    assert not await asyncio.to_thread(Path(f"/proc/{pid}").exists)
    assert await store.head("out/slow.mp4") is None

"""MergeHandler with the shared in-memory ports and a fake of the merger's ffmpeg tools:
codes for every bad input before any ffmpeg run, the path each operation takes, what the
outcome says, checkpoints, and what reaches ffmpeg."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import ErrorInfo
from schemas.codes import Code
from schemas.merge import MergeCompleted, MergeFailed, MergeParams, MergeRequested
from schemas.names import Producer, Stage
from services.common.codec import DecodeError, RawMessage
from services.common.errors import PermanentError
from services.common.ffmpeg import temp_workdir
from services.common.job_store import StageStatus
from services.merger.handler import (
    MergeConfig,
    MergeHandler,
    merge_failed,
    record_key,
)
from services.merger.invalid import answer_invalid_merge_request
from services.merger.media import MediaInfo, Unusable
from services.merger.sources import Limits
from tests.support.fakes import MemoryCheckpoints, MemoryJobs, MemoryMedia, context_for
from tests.unit.merger.media_infos import sound, video

pytestmark = pytest.mark.unit

URL = "https://s3.test/"
LOUDNORM = '{\n"input_i" : "-30.00", "input_tp" : "-25.00", "input_lra" : "1.00",\n' \
    '"input_thresh" : "-40.00", "target_offset" : "0.10"\n}'  # fmt: skip


class FakeTools:
    """Probes answer from ``infos`` by key (``None``: not media); every run writes a small
    output and reports its progress; ``runs`` keeps each command line."""

    def __init__(self, root: Path, infos: dict[str, MediaInfo | None], output: MediaInfo) -> None:
        self.root = root
        self.infos = infos
        self.output = output
        self.runs: list[list[str]] = []
        self.probed: list[str] = []
        self.lists: list[str] = []
        self.workdirs: list[Path] = []

    async def probe(self, source: str | os.PathLike[str]) -> MediaInfo:
        text = os.fspath(source)
        if not text.startswith(URL):
            return self.output
        key = text.removeprefix(URL).split("?")[0]
        self.probed.append(key)
        info = self.infos.get(key)
        if info is None:
            raise Unusable("ffprobe could not read it")
        return info

    async def run(
        self, args: Sequence[str], timeout_s: float, on_time: Callable[[float], Awaitable[None]]
    ) -> None:
        self.runs.append(list(args))
        assert timeout_s >= 1
        await on_time(0.5)
        await asyncio.to_thread(Path(args[-1]).write_bytes, b"merged media")

    async def run_for_stderr(
        self, args: Sequence[str], timeout_s: float, on_time: Callable[[float], Awaitable[None]]
    ) -> str:
        self.runs.append(list(args))
        return LOUDNORM

    def workdir(self) -> contextlib.AbstractAsyncContextManager[Path]:
        @contextlib.asynccontextmanager
        async def made() -> Any:
            async with temp_workdir("tapedeck-merge-", dir=self.root) as tmp:
                self.workdirs.append(tmp)
                yield tmp

        return made()

    async def write_text(self, path: Path, text: str) -> None:
        self.lists.append(text)
        await asyncio.to_thread(path.write_text, text)


def request(operation: str, inputs: list[str], output: str = "merged/job-1/out.mp4",
            step: str | None = None, **params: Any) -> MergeRequested:  # fmt: skip
    return MergeRequested(job_id="job-1", tenant_id="acme", producer="tests", step=step,
                          operation=operation, inputs=inputs,  # type: ignore[arg-type]
                          params=MergeParams(**params), output_key=output)  # fmt: skip


def setup(
    tmp_path: Path, infos: dict[str, MediaInfo | None], output: MediaInfo | None = None,
    **config: Any,
) -> tuple[MergeHandler, MemoryMedia, FakeTools]:  # fmt: skip
    media = MemoryMedia({key: b"x" * 10 for key in infos})
    tools = FakeTools(tmp_path, infos, output or video(5000))
    limits = Limits(config.pop("max_inputs", 10), config.pop("max_duration_ms", 60_000))
    handler = MergeHandler(media=media, tools=tools, config=MergeConfig(limits, **config))
    return handler, media, tools


async def merged(handler: MergeHandler, event: MergeRequested, **ctx: Any) -> MergeCompleted:
    (out,) = await handler(event, context_for(event, Stage.MERGE, **ctx))
    assert isinstance(out, MergeCompleted)
    return out


# -- bad inputs fail with their code, before any ffmpeg run -----------------------------------


@pytest.mark.parametrize(
    ("operation", "inputs", "infos", "params", "code", "words"),
    [
        ("concat_video", ["a.mp4", "gone.mp4"], {"a.mp4": video()}, {},
         Code.INPUT_MISSING, "input 2 is not in storage"),
        ("concat_video", ["a.mp4", "b.txt"], {"a.mp4": video(), "b.txt": None}, {},
         Code.INPUT_NOT_MEDIA, "input 2 is not a readable"),
        ("concat_video", ["a.mp4", "b.wav"], {"a.mp4": video(), "b.wav": sound()}, {},
         Code.INPUT_NO_VIDEO, "input 2 has no video"),
        ("crossfade_audio", ["a.wav", "v.mp4"], {"a.wav": sound(), "v.mp4": video(audio=False)},
         {}, Code.INPUT_NO_AUDIO, "input 2 has no audio"),
        ("mux", ["v.mp4", "m.wav"], {"v.mp4": video(), "m.wav": sound(61_000)}, {},
         Code.INPUT_TOO_LONG, "the soundtrack lasts 61.0 s"),
        ("mux", ["v.mp4", "m.wav"], {"v.mp4": video(), "m.wav": sound()},
         {"voiceover_key": "vo.wav"}, Code.INPUT_MISSING, "the voiceover is not in storage"),
        ("concat_video", ["a.mp4"] * 11, {"a.mp4": video()}, {}, Code.TOO_MANY_INPUTS, "11 inputs"),
    ],
)  # fmt: skip
async def test_bad_inputs(
    tmp_path: Path, operation: str, inputs: list[str], infos: dict[str, MediaInfo | None],
    params: dict[str, Any], code: Code, words: str,
) -> None:  # fmt: skip
    output = "merged/out.wav" if operation == "crossfade_audio" else "merged/out.mp4"
    handler, media, tools = setup(tmp_path, infos)
    event = request(operation, inputs, output, **params)
    with pytest.raises(PermanentError) as err:
        await handler(event, context_for(event, Stage.MERGE))
    assert err.value.code == code and err.value.public
    assert words in err.value.message
    assert tools.runs == [] and media.uploads == []


async def test_every_input_is_probed_once_and_the_first_failure_in_order_wins(
    tmp_path: Path,
) -> None:
    infos: dict[str, MediaInfo | None] = {"a.mp4": video(), "b.wav": sound(), "c.txt": None}
    handler, _, tools = setup(tmp_path, infos)
    event = request("concat_video", ["a.mp4", "b.wav", "c.txt"])
    with pytest.raises(PermanentError) as err:
        await handler(event, context_for(event, Stage.MERGE))
    assert err.value.code == Code.INPUT_NO_VIDEO  # input 2, though input 3 is worse
    assert sorted(tools.probed) == ["a.mp4", "b.wav", "c.txt"]


# -- concat_video ---------------------------------------------------------------------------


async def test_compatible_videos_are_joined_by_stream_copy_from_our_own_files(
    tmp_path: Path,
) -> None:
    evil = "in/evil' file '/etc/passwd'.mp4"
    infos: dict[str, MediaInfo | None] = {"in/a.mp4": video(2000), evil: video(3000)}
    handler, media, tools = setup(tmp_path, infos, output=video(5000))
    jobs = MemoryJobs()
    await jobs.transition("job-1", Stage.MERGE, StageStatus.RUNNING)
    event = request("concat_video", ["in/a.mp4", evil], step="concat")
    done = await merged(handler, event, jobs=jobs)
    assert (done.s3_key, done.duration_ms, done.size_bytes) == ("merged/job-1/out.mp4", 5000, 12)
    assert done.copied and done.operation == "concat_video" and done.step == "concat"
    assert done.producer == Producer.MERGER
    assert tools.lists == ["ffconcat version 1.0\nfile 'in-000.mp4'\nfile 'in-001.mp4'\n"]
    (args,) = tools.runs
    assert args[:4] == ["-f", "concat", "-protocol_whitelist", "file"]
    assert "-safe" not in args  # relative names of our own: the demuxer's safe mode stays on
    assert args[args.index("-c") + 1] == "copy" and "-filter_complex" not in args
    assert media.objects["merged/job-1/out.mp4"] == b"merged media"
    # The scratch directory is gone.
    assert tools.workdirs and not any(d.exists() for d in tools.workdirs)
    stage = await jobs.stage("job-1", Stage.MERGE)
    assert stage is not None and stage["copied"] is True and stage["progress"]["percent"] == 100


def test_a_key_cannot_carry_a_line_break_into_a_concat_list() -> None:
    with pytest.raises(ValidationError):
        request("concat_video", ["in/a.mp4", "in/b.mp4\nfile '/etc/passwd'"])


async def test_different_videos_are_normalised_in_one_encoded_run(tmp_path: Path) -> None:
    infos: dict[str, MediaInfo | None] = {
        "a.mp4": video(2000, width=320, height=240, fps="25/1"),
        "b.mp4": video(1000, width=160, height=120, fps="30/1", audio=False),
    }
    handler, _, tools = setup(tmp_path, infos, output=video(3000))
    done = await merged(handler, request("concat_video", ["a.mp4", "b.mp4"]))
    assert not done.copied and done.duration_ms == 3000
    (args,) = tools.runs
    graph = args[args.index("-filter_complex") + 1]
    assert graph.count("scale=320:240") == 2 and graph.count("fps=30/1") == 2
    assert "anullsrc=r=48000:cl=stereo,apad,atrim=duration=1.000000" in graph
    assert "[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]" in graph
    assert args[args.index("-c:v") + 1] == "libx264"
    assert [a for a in args if a.startswith(URL)] == [f"{URL}a.mp4?expires=660",
                                                      f"{URL}b.mp4?expires=660"]  # fmt: skip


async def test_one_input_of_the_same_format_is_passed_through(tmp_path: Path) -> None:
    handler, media, tools = setup(tmp_path, {"in/a.mp4": video(2000)})
    done = await merged(handler, request("concat_video", ["in/a.mp4"]))
    assert done.copied and done.duration_ms == 2000 and done.size_bytes == 10
    assert media.copies == [("in/a.mp4", "merged/job-1/out.mp4")] and tools.runs == []


# -- crossfade_audio ------------------------------------------------------------------------


async def test_segments_are_crossfaded_in_one_run(tmp_path: Path) -> None:
    keys = ["s/1.wav", "s/2.wav", "s/3.wav"]
    infos: dict[str, MediaInfo | None] = {k: sound(10_000) for k in keys}
    handler, _, tools = setup(tmp_path, infos, output=sound(28_000))
    done = await merged(handler, request("crossfade_audio", keys, "out/track.m4a",
                                         curve="exp"))  # fmt: skip
    assert done.duration_ms == 28_000 and not done.copied
    (args,) = tools.runs
    graph = args[args.index("-filter_complex") + 1]
    assert graph.count("acrossfade=d=1.000000:c1=exp:c2=exp") == 2
    assert args[args.index("-c:a") + 1] == "aac" and args[-2:] == ["ipod", args[-1]]


async def test_crossfade_ms_still_sets_the_fade(tmp_path: Path) -> None:
    keys = ["s/1.wav", "s/2.wav"]
    handler, _, tools = setup(tmp_path, {k: sound(10_000) for k in keys}, output=sound(17_500))
    await merged(handler, request("crossfade_audio", keys, "out/t.wav", crossfade_ms=2500))
    assert "acrossfade=d=2.500000" in tools.runs[0][tools.runs[0].index("-filter_complex") + 1]


async def test_one_segment_is_passed_through(tmp_path: Path) -> None:
    handler, media, tools = setup(tmp_path, {"s/1.wav": sound(4000)})
    done = await merged(handler, request("crossfade_audio", ["s/1.wav"], "out/t.wav"))
    assert done.copied and done.duration_ms == 4000 and tools.runs == []
    assert media.copies == [("s/1.wav", "out/t.wav")]


# -- mux ------------------------------------------------------------------------------------


async def test_mux_copies_the_video_and_fits_the_soundtrack(tmp_path: Path) -> None:
    infos: dict[str, MediaInfo | None] = {
        "v.mp4": video(10_000),
        "m.mp3": sound(15_000, codec="mp3"),
    }
    handler, _, tools = setup(tmp_path, infos, output=video(10_000))
    done = await merged(handler, request("mux", ["v.mp4"], audio_key="m.mp3", sync_mode="stretch"))
    assert done.copied and done.duration_ms == 10_000
    (args,) = tools.runs
    assert args[args.index("-c:v") + 1] == "copy" and args[args.index("-b:a") + 1] == "192k"
    assert args[args.index("-map") + 1] == "0:v:0"
    assert "atempo=1.500000" in args[args.index("-filter_complex") + 1]


async def test_loudness_is_measured_then_applied(tmp_path: Path) -> None:
    infos: dict[str, MediaInfo | None] = {"v.mp4": video(10_000), "m.wav": sound(8_000),
                                          "vo.wav": sound(6_000)}  # fmt: skip
    handler, _, tools = setup(tmp_path, infos, output=video(10_000))
    event = request("mux", ["v.mp4", "m.wav"], voiceover_key="vo.wav", loudness={})
    await merged(handler, event)
    measure, final = tools.runs
    # The first pass reads the audio alone: the video is not opened.
    assert [a for a in measure if a.startswith(URL)] == [
        a for a in final if a.startswith(URL)][1:]  # fmt: skip
    assert measure[-3:] == ["-f", "null", "-"]
    first_graph = measure[measure.index("-filter_complex") + 1]
    assert "loudnorm=I=-16:TP=-1.5:LRA=11:print_format=json" in first_graph
    graph = final[final.index("-filter_complex") + 1]
    assert "sidechaincompress" in graph and "measured_I=-30.00" in graph


async def test_a_codec_the_container_cannot_hold_is_refused_not_reencoded(tmp_path: Path) -> None:
    infos: dict[str, MediaInfo | None] = {"v.mkv": video(codec="vp8"), "m.wav": sound()}
    handler, _, tools = setup(tmp_path, infos)
    event = request("mux", ["v.mkv", "m.wav"], "out/x.mp4")
    with pytest.raises(PermanentError) as err:
        await handler(event, context_for(event, Stage.MERGE))
    assert err.value.code == Code.INVALID_MERGE_REQUEST and ".mkv" in err.value.message
    assert tools.runs == []


# -- redelivery, outcomes -------------------------------------------------------------------


async def test_a_redelivery_after_the_upload_answers_from_the_checkpoint(tmp_path: Path) -> None:
    infos: dict[str, MediaInfo | None] = {"a.mp4": video(2000), "b.mp4": video(3000)}
    handler, _, tools = setup(tmp_path, infos)
    event = request("concat_video", ["a.mp4", "b.mp4"])
    checkpoints = MemoryCheckpoints()
    first = await merged(handler, event, checkpoints=checkpoints)
    again = await merged(handler, event, checkpoints=checkpoints)
    assert len(tools.runs) == 1
    assert (again.s3_key, again.duration_ms, again.size_bytes, again.copied) == (
        first.s3_key, first.duration_ms, first.size_bytes, first.copied)  # fmt: skip


def test_failures_name_the_operation_and_step() -> None:
    event = request("mux", ["v.mp4", "m.mp3"], step="soundtrack")
    error = ErrorInfo(code=Code.INPUT_NO_AUDIO, message="the soundtrack has no audio stream",
                      retryable=False, attempts=1)  # fmt: skip
    failed = merge_failed(event, error)
    assert isinstance(failed, MergeFailed)
    assert (failed.job_id, failed.operation, failed.step, failed.error) == (
        "job-1", "mux", "soundtrack", error)  # fmt: skip
    assert failed.correlation_id == event.correlation_id and failed.producer == Producer.MERGER
    assert record_key(event) == "merge.soundtrack"
    assert record_key(request("mux", ["v.mp4", "m.mp3"])) == "merge"


def test_the_old_lambda_contract_maps_one_to_one() -> None:
    lambda_event = {"input_videos": ["pipelines/1/a.mp4", "pipelines/1/b.mp4"],
                    "output_key": "pipelines/1/nodes/2/output.mp4"}  # fmt: skip
    event = request("concat_video", lambda_event["input_videos"], lambda_event["output_key"])  # type: ignore[arg-type]
    done = MergeCompleted(job_id="job-1", tenant_id="acme", producer="merger",
                          s3_key=event.output_key, duration_ms=12_345, size_bytes=678)  # fmt: skip
    answer = {"s3_key": done.s3_key, "duration": done.duration_ms / 1000, "size": done.size_bytes}
    assert answer == {"s3_key": "pipelines/1/nodes/2/output.mp4", "duration": 12.345, "size": 678}


def test_a_schema_invalid_request_with_a_readable_envelope_is_answered() -> None:
    body = json.loads(request("mux", ["v.mp4"], step="mux").model_dump_json())
    body["inputs"] = []
    msg = RawMessage(topic="t", value=json.dumps(body).encode())
    answer = answer_invalid_merge_request(msg, DecodeError("inputs: too short"))
    assert isinstance(answer, MergeFailed)
    assert (answer.job_id, answer.step, answer.operation) == ("job-1", "mux", "mux")
    assert answer.error.code == Code.INVALID_MERGE_REQUEST
    assert (
        answer_invalid_merge_request(
            RawMessage(topic="t", value=b"{"),
            DecodeError("bad json"),
        )
        is None
    )

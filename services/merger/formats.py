"""Output containers and encoders, chosen by the output key's extension."""

from __future__ import annotations

from dataclasses import dataclass

# No encoder tag, creation time or source metadata in the file: the same request gives
# the same bytes, so a redelivered merge overwrites its output with an identical object.
BITEXACT = ("-fflags", "+bitexact", "-map_metadata", "-1", "-map_chapters", "-1")
AUDIO_BITRATE = "192k"
# Muxers of the MP4 family: their index (moov) goes in front of the data as the output is
# uploaded (faststart.py), not by ffmpeg's +faststart, which rewrites the whole file.
MOOV_MUXERS = frozenset({"mp4", "mov", "ipod"})
# What the concat demuxer can copy into each container without re-encoding.
_MP4_VIDEO = frozenset({"h264", "hevc", "mpeg4", "av1", "vp9"})
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})


@dataclass(frozen=True)
class VideoOutput:
    ext: str
    muxer: str
    content_type: str
    copies_video: frozenset[str] | None  # None: any codec
    copies_audio: frozenset[str] | None

    def args(self) -> list[str]:
        return [*BITEXACT, "-f", self.muxer]

    @property
    def moov_first(self) -> bool:
        return self.muxer in MOOV_MUXERS

    def can_copy(self, video_codec: str | None, audio_codec: str | None) -> bool:
        ok_v = self.copies_video is None or video_codec is None or video_codec in self.copies_video
        ok_a = self.copies_audio is None or audio_codec is None or audio_codec in self.copies_audio
        return ok_v and ok_a


@dataclass(frozen=True)
class AudioOutput:
    ext: str
    muxer: str
    content_type: str
    codec_args: tuple[str, ...]
    codecs: frozenset[str]  # codecs a file with this extension holds as it is

    def args(self) -> list[str]:
        return [*self.codec_args, *BITEXACT, "-flags:a", "+bitexact", "-f", self.muxer]

    @property
    def moov_first(self) -> bool:
        return self.muxer in MOOV_MUXERS


VIDEO_OUTPUTS = {
    "mp4": VideoOutput("mp4", "mp4", "video/mp4", _MP4_VIDEO, _MP4_AUDIO),
    "m4v": VideoOutput("m4v", "mp4", "video/mp4", _MP4_VIDEO, _MP4_AUDIO),
    "mov": VideoOutput("mov", "mov", "video/quicktime", _MP4_VIDEO, _MP4_AUDIO),
    "mkv": VideoOutput("mkv", "matroska", "video/x-matroska", None, None),
}
AUDIO_OUTPUTS = {
    "mp3": AudioOutput("mp3", "mp3", "audio/mpeg",
                       ("-c:a", "libmp3lame", "-b:a", AUDIO_BITRATE), frozenset({"mp3"})),
    "m4a": AudioOutput("m4a", "ipod", "audio/mp4",
                       ("-c:a", "aac", "-b:a", AUDIO_BITRATE),
                       frozenset({"aac", "alac"})),
    "aac": AudioOutput("aac", "adts", "audio/aac",
                       ("-c:a", "aac", "-b:a", AUDIO_BITRATE), frozenset({"aac"})),
    "wav": AudioOutput("wav", "wav", "audio/wav", ("-c:a", "pcm_s16le"),
                       frozenset({"pcm_s16le"})),
    "flac": AudioOutput("flac", "flac", "audio/flac", ("-c:a", "flac"), frozenset({"flac"})),
}  # fmt: skip

# Re-encoding video: the first of these the local ffmpeg has.
VIDEO_ENCODER_ARGS: dict[str, tuple[str, ...]] = {
    "libx264": ("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"),
    "libopenh264": ("-c:v", "libopenh264", "-b:v", "6M", "-pix_fmt", "yuv420p"),
    "mpeg4": ("-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"),
}
AAC_ARGS = ("-c:a", "aac", "-b:a", AUDIO_BITRATE)


def extension(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""

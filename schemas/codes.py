"""Error codes: one table, shared by every service, the HTTP API and the ``*.failed`` events.

Each code has a kind, which says whose fault it is and so how the HTTP API answers it
(``services/submitter/http/errors.py`` maps kinds to statuses). A code is a stable public
contract: add codes, never rename one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Kind(enum.StrEnum):
    INVALID = "invalid"  # the caller's input can never succeed as sent
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"  # wrong content type
    TOO_MANY = "too_many"  # a tenant over its rate or in-flight limit: try again later
    SOURCE = "source"  # a stored source cannot be used: our side, not the caller's
    UNAVAILABLE = "unavailable"  # try again later
    INTERNAL = "internal"


class Code(enum.StrEnum):
    # Requests
    INVALID_REQUEST = "invalid_request"
    INVALID_SPEC = "invalid_spec"  # a rule between fields the schema cannot state
    INVALID_JSON = "invalid_json"
    INVALID_FORM = "invalid_form"
    INVALID_EPISODE_ID = "invalid_episode_id"
    INVALID_TIME = "invalid_time"
    INVALID_DURATION = "invalid_duration"
    INVALID_FORMAT = "invalid_format"
    INVALID_S3_KEY = "invalid_s3_key"
    INVALID_ID = "invalid_id"
    MISSING_FILE = "missing_file"
    DURATION_TOO_LONG = "duration_too_long"
    START_PAST_END = "start_past_end"
    NOT_AUDIO = "not_audio"
    NOT_MEDIA = "not_media"  # an upload that is no video or audio file Tapedeck takes
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"  # a live key without the role the resource needs
    FORBIDDEN_S3_KEY = "forbidden_s3_key"
    NOT_FOUND = "not_found"
    EPISODE_NOT_FOUND = "episode_not_found"
    REQUEST_NOT_FOUND = "request_not_found"
    OBJECT_NOT_FOUND = "object_not_found"
    EPISODE_EXISTS = "episode_exists"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # Sources and tools
    SOURCE_MISSING = "source_missing"
    SOURCE_UNREADABLE = "source_unreadable"
    INVALID_RANGE = "invalid_range"
    FFMPEG_FAILED = "ffmpeg_failed"
    FFMPEG_UNAVAILABLE = "ffmpeg_unavailable"
    NO_SUCH_BUCKET = "no_such_bucket"
    S3_ERROR = "s3_error"
    # Audio providers
    INVALID_AUDIO_REQUEST = "invalid_audio_request"
    PROVIDER_FAILED = "provider_failed"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_QUOTA = "provider_quota"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    # Merging: a request that cannot be merged as sent, told apart per input
    INVALID_MERGE_REQUEST = "invalid_merge_request"
    TOO_MANY_INPUTS = "too_many_inputs"
    INPUT_MISSING = "input_missing"
    INPUT_NOT_MEDIA = "input_not_media"
    INPUT_NO_VIDEO = "input_no_video"
    INPUT_NO_AUDIO = "input_no_audio"
    INPUT_TOO_LONG = "input_too_long"
    # Jobs
    INVALID_CALLBACK_URL = "invalid_callback_url"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_JOBS = "too_many_jobs"
    JOB_NOT_FOUND = "job_not_found"
    JOB_FINISHED = "job_finished"
    NOT_READY = "not_ready"  # the job's output is not made yet: ask again later
    NO_SCENES = "no_scenes"  # the named job has nothing to make audio for
    VIDEO_FAILED = "video_failed"
    CANCELLED = "cancelled"
    # Operations
    INVALID_REPLAY = "invalid_replay"  # an edited dead letter that is no valid event
    DEAD_LETTER_SETTLED = "dead_letter_settled"  # already replayed or discarded
    # The pipeline
    SUBMIT_FAILED = "submit_failed"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    TRANSIENT_EXHAUSTED = "transient_exhausted"
    INTERNAL_ERROR = "internal_error"
    HTTP_ERROR = "http_error"
    PERMANENT = "permanent"


KIND: Mapping[Code, Kind] = MappingProxyType(
    {
        Code.INVALID_REQUEST: Kind.INVALID,
        Code.INVALID_SPEC: Kind.INVALID,
        Code.INVALID_JSON: Kind.INVALID,
        Code.INVALID_FORM: Kind.INVALID,
        Code.INVALID_EPISODE_ID: Kind.INVALID,
        Code.INVALID_TIME: Kind.INVALID,
        Code.INVALID_DURATION: Kind.INVALID,
        Code.INVALID_FORMAT: Kind.INVALID,
        Code.INVALID_S3_KEY: Kind.INVALID,
        Code.INVALID_ID: Kind.INVALID,
        Code.MISSING_FILE: Kind.INVALID,
        Code.DURATION_TOO_LONG: Kind.INVALID,
        Code.START_PAST_END: Kind.INVALID,
        Code.NOT_AUDIO: Kind.INVALID,
        Code.NOT_MEDIA: Kind.INVALID,
        Code.UNAUTHORIZED: Kind.UNAUTHORIZED,
        Code.FORBIDDEN: Kind.FORBIDDEN,
        Code.FORBIDDEN_S3_KEY: Kind.FORBIDDEN,
        Code.NOT_FOUND: Kind.NOT_FOUND,
        Code.EPISODE_NOT_FOUND: Kind.NOT_FOUND,
        Code.REQUEST_NOT_FOUND: Kind.NOT_FOUND,
        Code.OBJECT_NOT_FOUND: Kind.NOT_FOUND,
        Code.EPISODE_EXISTS: Kind.CONFLICT,
        Code.METHOD_NOT_ALLOWED: Kind.INVALID,
        Code.TOO_LARGE: Kind.TOO_LARGE,
        Code.UNSUPPORTED_MEDIA_TYPE: Kind.UNSUPPORTED,
        Code.SOURCE_MISSING: Kind.SOURCE,
        Code.SOURCE_UNREADABLE: Kind.SOURCE,
        Code.INVALID_RANGE: Kind.SOURCE,
        Code.FFMPEG_FAILED: Kind.SOURCE,
        Code.FFMPEG_UNAVAILABLE: Kind.INTERNAL,
        Code.NO_SUCH_BUCKET: Kind.INTERNAL,
        Code.S3_ERROR: Kind.UNAVAILABLE,
        Code.INVALID_AUDIO_REQUEST: Kind.INVALID,
        Code.PROVIDER_FAILED: Kind.SOURCE,
        Code.PROVIDER_TIMEOUT: Kind.UNAVAILABLE,
        Code.PROVIDER_RATE_LIMITED: Kind.UNAVAILABLE,
        Code.PROVIDER_QUOTA: Kind.SOURCE,
        Code.PROVIDER_UNAVAILABLE: Kind.UNAVAILABLE,
        Code.INVALID_MERGE_REQUEST: Kind.INVALID,
        Code.TOO_MANY_INPUTS: Kind.INVALID,
        Code.INPUT_MISSING: Kind.NOT_FOUND,
        Code.INPUT_NOT_MEDIA: Kind.INVALID,
        Code.INPUT_NO_VIDEO: Kind.INVALID,
        Code.INPUT_NO_AUDIO: Kind.INVALID,
        Code.INPUT_TOO_LONG: Kind.INVALID,
        Code.INVALID_CALLBACK_URL: Kind.INVALID,
        Code.IDEMPOTENCY_CONFLICT: Kind.CONFLICT,
        Code.RATE_LIMITED: Kind.TOO_MANY,
        Code.TOO_MANY_JOBS: Kind.TOO_MANY,
        Code.JOB_NOT_FOUND: Kind.NOT_FOUND,
        Code.JOB_FINISHED: Kind.CONFLICT,
        Code.NOT_READY: Kind.CONFLICT,
        Code.NO_SCENES: Kind.CONFLICT,
        Code.VIDEO_FAILED: Kind.SOURCE,
        Code.CANCELLED: Kind.CONFLICT,
        Code.INVALID_REPLAY: Kind.INVALID,
        Code.DEAD_LETTER_SETTLED: Kind.CONFLICT,
        Code.SUBMIT_FAILED: Kind.UNAVAILABLE,
        Code.OVERLOADED: Kind.UNAVAILABLE,
        Code.UNAVAILABLE: Kind.UNAVAILABLE,
        Code.TRANSIENT_EXHAUSTED: Kind.UNAVAILABLE,
        Code.INTERNAL_ERROR: Kind.INTERNAL,
        Code.HTTP_ERROR: Kind.INVALID,
        Code.PERMANENT: Kind.INTERNAL,
    }
)


def kind_of(code: str) -> Kind:
    """The kind of a code; an unknown one (from a newer producer) is internal."""
    try:
        return KIND[Code(code)]
    except ValueError:
        return Kind.INTERNAL


# The clip request's parameters and the code a bad value of each gets, on every path:
# the HTTP query, the HTTP body and the ``clip.requested`` event.
CLIP_PARAM_CODES: Mapping[str, Code] = MappingProxyType(
    {
        "episode_id": Code.INVALID_EPISODE_ID,
        "start_ms": Code.INVALID_TIME,
        "duration_ms": Code.INVALID_DURATION,
        "format": Code.INVALID_FORMAT,
        "accurate": Code.INVALID_REQUEST,
    }
)


# What a failure says in public (HTTP bodies, ``*.failed`` events) when the exception's
# own message is for operators only: it may hold storage keys, signed URLs or a tool's
# stderr. The detail goes to the logs and to the job record's operator-only field.
PUBLIC_MESSAGES: Mapping[Code, str] = MappingProxyType(
    {
        Code.SOURCE_MISSING: "the source media is missing from storage",
        Code.SOURCE_UNREADABLE: "the source media could not be read",
        Code.INVALID_RANGE: "the source media is shorter than its recorded size",
        Code.FFMPEG_FAILED: "the media could not be processed",
        Code.FFMPEG_UNAVAILABLE: "media processing is not available",
        Code.NOT_AUDIO: "the media has no readable audio stream",
        Code.NOT_MEDIA: "the file is not a video or audio file Tapedeck can use",
        Code.NO_SUCH_BUCKET: "storage is misconfigured",
        Code.S3_ERROR: "storage failed; try again",
        Code.PROVIDER_FAILED: "the audio provider could not generate this scene",
        Code.PROVIDER_TIMEOUT: "the audio provider did not finish in time",
        Code.PROVIDER_RATE_LIMITED: "the audio provider is busy; try again later",
        Code.PROVIDER_QUOTA: "the audio provider's quota is used up",
        Code.PROVIDER_UNAVAILABLE: "the audio provider could not be reached",
        # The merger's own messages name the input by position; these stand in for others.
        Code.INPUT_MISSING: "an input is missing from storage",
        Code.INPUT_NOT_MEDIA: "an input is not a readable media file",
        Code.SUBMIT_FAILED: "the request could not be queued; try again",
        Code.TRANSIENT_EXHAUSTED: "a temporary failure persisted; try again later",
        Code.INTERNAL_ERROR: "internal error",
    }
)
GENERIC_MESSAGE = "the request could not be completed"


def public_message(code: str) -> str:
    try:
        return PUBLIC_MESSAGES.get(Code(code), GENERIC_MESSAGE)
    except ValueError:
        return GENERIC_MESSAGE

"""Names that change behaviour when they differ: stages and producers.

A stage name keys its ``job_stages`` document, its ledger entries and its checkpoints; a
producer name is stamped on every event a service emits. Written once, here.
"""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    CLIP = "clip"
    AUDIO = "audio"
    VIDEO = "video"
    MERGE = "merge"


class Producer(enum.StrEnum):
    SUBMITTER = "submitter"
    CLIPPER = "clipper"
    AUDIO_AGENT = "audio-agent"
    MERGER = "merger"
    LIFECYCLE = "lifecycle"
    # The operators' command line (cache warming among others).
    CLI = "cli"


# A production job's voiceover runs as an audio job of its own, ``<job_id>.vo``.
VOICEOVER_SUFFIX = ".vo"


def parent_job_id(job_id: str) -> str:
    """The job a stage's job belongs to (itself, or the production job of a voiceover)."""
    return job_id.removesuffix(VOICEOVER_SUFFIX)


# Requests from these producers are not demand: counting the cache warmer's requests
# would make the ranges it warms look ever more popular.
UNCOUNTED_PRODUCERS = frozenset({Producer.CLI})

"""Running ``tapedeck`` as a user would: the installed script, configured by env."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from services.common.settings import Settings

TAPEDECK = Path(sys.executable).with_name("tapedeck")


async def tapedeck(
    settings: Settings,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout_s: float = 120,
) -> tuple[int, str, str]:
    full_env = {
        **os.environ,
        "TOPIC_PREFIX": settings.topic_prefix,
        "MONGO_DB": settings.mongo_db,
        "S3_KEY_PREFIX": settings.s3_key_prefix,
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        str(TAPEDECK),
        *args,
        env=full_env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()

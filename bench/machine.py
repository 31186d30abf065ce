"""The machine a benchmark ran on and the versions of what it measured.

Versions come from the servers that answered where they can say (MongoDB's ``buildInfo``,
FerretDB's own field in it), else from the local stack's running processes (the
binary paths under the stack's cache name the version it built), else from the pins in
``scripts/stack.py``. Anything that cannot be found is reported as ``unknown``, never
guessed.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = ROOT / "scripts" / "stack.py"
UNKNOWN = "unknown"


def cores() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


def memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or UNKNOWN


def pinned(name: str) -> str | None:
    """A version pinned in the stack script (``KAFKA_VERSION = "4.1.1"``)."""
    try:
        text = STACK_SCRIPT.read_text()
    except OSError:
        return None
    match = re.search(rf'^{name}\s*=\s*"([^"]+)"', text, re.M)
    return match.group(1) if match else None


def _stack_dir() -> Path:
    return Path(os.environ.get("STACK_DIR", str(ROOT / ".stack"))).resolve()


def running_version(service: str, pattern: str) -> str | None:
    """The version in the command line of the local stack's ``service`` process, if it
    runs (``kafka-4.1.1/lib`` on Kafka's class path, ``versitygw-v1.7.0/versitygw``)."""
    try:
        pid = int((_stack_dir() / "run" / f"{service}.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    match = re.search(pattern, cmdline)
    return match.group(1) if match else None


def kafka_version() -> str:
    found = running_version("kafka", r"kafka-([0-9][\w.]*)/lib")
    if found:
        return found
    pin = pinned("KAFKA_VERSION")
    return f"{pin} (stack pin; broker not the local stack's)" if pin else UNKNOWN


def s3_version() -> str:
    found = running_version("s3", r"versitygw-(v?[0-9][\w.]*)/versitygw")
    if found:
        return f"versitygw {found}"
    pin = pinned("VERSITYGW_VERSION")
    return f"versitygw {pin} (stack pin; server not the local stack's)" if pin else UNKNOWN


async def mongo_version(settings: Settings) -> str:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=3000
    )
    try:
        info = await client.admin.command("buildInfo")
    except Exception as exc:
        return f"{UNKNOWN} ({type(exc).__name__})"
    finally:
        await client.close()
    version = str(info.get("version", UNKNOWN))
    ferret = info.get("ferretdbVersion")
    # FerretDB answers with the MongoDB version it emulates; its own is the one that counts.
    return f"FerretDB {ferret} (MongoDB {version} wire)" if ferret else f"MongoDB {version}"


def ffmpeg_version(ffmpeg_bin: str = "ffmpeg") -> str:
    try:
        out = subprocess.run(
            [ffmpeg_bin, "-hide_banner", "-version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN
    first = out.splitlines()[0] if out else ""
    match = re.match(r"ffmpeg version (\S+)", first)
    return match.group(1) if match else UNKNOWN


def python_version() -> str:
    return f"{platform.python_implementation()} {sys.version.split()[0]}"


async def describe(settings: Settings) -> dict[str, Any]:
    """Everything the results file says about the machine and the software measured."""
    mongo = await mongo_version(settings)
    ffmpeg = await asyncio.to_thread(ffmpeg_version, settings.ffmpeg_bin)
    return {
        "cores": cores(),
        "memory_mb": memory_mb(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "loadavg_start": loadavg(),
        "versions": {
            "kafka": kafka_version(),
            "mongo": mongo,
            "s3": s3_version(),
            "ffmpeg": ffmpeg,
            "python": python_version(),
        },
    }

"""The benchmark suite: every module on the local stack, one table, results on disk.

    python -m bench.run [--only GROUP[,GROUP]] [--smoke] [--out-dir DIR]

Each module (``MODULES``) exposes ``async def run(ctx, *, smoke) -> list[Figure]`` and
measures its figures next to their baselines in the same run. A module that is missing
or raises shows its error in the table and the run goes on. Speed never fails the run;
an error does (exit status 1, after the results are written).

Everything runs under one isolated namespace (topic prefix, MongoDB database, S3 key
prefix) removed at the end, also on an error or Ctrl-C. Results go to
``bench/results/latest.json`` and ``latest.md`` (git-ignored) with the machine and the
versions measured (a smoke run's to ``smoke.json`` and ``smoke.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import math
import socket
import sys
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine
from bench.figures import BenchContext, Figure
from bench.sources import cache_dir
from services.common.settings import Settings

# group -> module, in the order they run; capacity last: it reads the others' figures.
MODULES: dict[str, str] = {
    "clip": "bench.clip_bench",
    "api": "bench.api_bench",
    "stage": "bench.stage_hop",
    "merge": "bench.merges",
    "e2e": "bench.e2e_job",
    "memory": "bench.merger_memory",
    "capacity": "bench.capacity",
}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(msg: str) -> None:
    print(msg, flush=True)


# -- the run's namespace ------------------------------------------------------------------


def check_stack(settings: Settings) -> None:
    endpoints = {
        "kafka": settings.kafka_bootstrap.split(",")[0],
        "mongo": settings.mongo_url.removeprefix("mongodb://").split("/")[0].split(",")[0],
        "s3": (settings.s3_endpoint or "").split("://")[-1].split("/")[0],
    }
    for name, hostport in endpoints.items():
        if ":" not in hostport:
            continue
        host, port = hostport.rsplit(":", 1)
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex((host, int(port))) != 0:
                raise SystemExit(f"{name} does not answer on {hostport}: run `make up` first")


def isolated(base: Settings, run_id: str) -> Settings:
    return base.model_copy(
        update={
            "topic_prefix": f"bench{run_id}.",
            "mongo_db": f"bench_{run_id}",
            "s3_key_prefix": f"bench/{run_id}/",
        }
    )


async def cleanup(settings: Settings, say: Callable[[str], None]) -> None:
    """Remove the run's topics, databases (its own and any a module derived from its
    name) and S3 objects. Each part is tried even when another fails."""
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import AsyncMongoClient

    from services.common.media_store import MediaStore

    try:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
        try:
            names = [n for n in await mongo.list_database_names()
                     if n.startswith(settings.mongo_db)]  # fmt: skip
            for name in names:
                await mongo.drop_database(name)
            say(f"cleanup: dropped {len(names)} database(s) {settings.mongo_db}*")
        finally:
            await mongo.close()
    except Exception as exc:
        say(f"cleanup: MongoDB: {exc!r}")
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
            if mine:
                await admin.delete_topics(mine)
            say(f"cleanup: deleted {len(mine)} topic(s) {settings.topic_prefix}*")
        finally:
            await admin.close()
    except Exception as exc:
        say(f"cleanup: Kafka: {exc!r}")
    try:
        async with MediaStore.from_settings(settings) as media:
            removed = await media.delete_prefix("")
        say(f"cleanup: removed {removed} S3 object(s) under {settings.s3_key_prefix}")
    except Exception as exc:
        say(f"cleanup: S3: {exc!r}")


@contextlib.asynccontextmanager
async def namespace(base: Settings, say: Callable[[str], None]) -> AsyncIterator[Settings]:
    settings = isolated(base, uuid.uuid4().hex[:10])
    try:
        yield settings
    finally:
        await asyncio.shield(cleanup(settings, say))


# -- running the modules ------------------------------------------------------------------


def error_figure(group: str, message: str) -> Figure:
    return Figure(group, "(module error)", math.nan, "", note=message)


async def run_module(
    group: str, ctx: BenchContext, smoke: bool, measured: list[Figure]
) -> tuple[list[Figure], str | None]:
    """The module's figures, or an error figure and the error's text."""
    try:
        module = importlib.import_module(MODULES[group])
    except ImportError as exc:
        text = f"missing: {MODULES[group]} ({exc})"
        return [error_figure(group, text)], text
    try:
        if group == "capacity":
            figures = await module.run(ctx, smoke=smoke, measured=measured)
        else:
            figures = await module.run(ctx, smoke=smoke)
    except Exception as exc:
        ctx.log(traceback.format_exc().rstrip())
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        text = f"{type(exc).__name__}: {first}"
        return [error_figure(group, text)], text
    return list(figures), None


async def run_suite(
    groups: Sequence[str],
    *,
    smoke: bool,
    out_dir: Path | None = RESULTS_DIR,
    base: Settings | None = None,
    inputs: Path | None = None,
    say: Callable[[str], None] = log,
) -> tuple[dict[str, Any], list[Figure]]:
    """Run ``groups`` in order; the results (also written to ``out_dir``) and the figures."""
    base = base or Settings()
    check_stack(base)
    started = time.monotonic()
    started_at = datetime.now(UTC)
    about = await machine.describe(base)
    say(f"machine: {about['cores']} cores, {about['memory_mb']} MB, load average "
        f"{' '.join(str(x) for x in about['loadavg_start'])}")  # fmt: skip
    say("versions: " + ", ".join(f"{k} {v}" for k, v in about["versions"].items()))
    figures: list[Figure] = []
    modules: dict[str, dict[str, Any]] = {}
    async with namespace(base, say) as settings:
        ctx = BenchContext(settings=settings, cache_dir=inputs or cache_dir(), log=say)
        for group in groups:
            say(f"\n== {group} ({MODULES[group]}) ==")
            t0 = time.monotonic()
            got, error = await run_module(group, ctx, smoke, figures)
            wall = round(time.monotonic() - t0, 1)
            modules[group] = {"module": MODULES[group], "wall_s": wall, "error": error}
            say(f"== {group}: {len(got)} figure(s) in {wall:.0f} s"
                + (f"; error: {error}" if error else ""))  # fmt: skip
            figures.extend(got)
    result = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_s": round(time.monotonic() - started, 1),
        "smoke": smoke,
        "machine": {**about, "loadavg_end": machine.loadavg()},
        "modules": modules,
        "figures": [_jsonable(asdict(f)) for f in figures],
    }
    if out_dir is not None:
        write(result, figures, out_dir)
    return result, figures


def _jsonable(value: Any) -> Any:
    # NaN (a figure that could not be measured) is not JSON: null instead.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# -- the table ----------------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def _met(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def rows(figures: Sequence[Figure]) -> list[list[str]]:
    out = []
    for f in figures:
        value = f"{_num(f.value)} {f.unit}".strip() if f.name != "(module error)" else "error"
        baseline = (
            f"{_num(f.baseline)} {f.unit} ({f.baseline_name})".strip()
            if f.baseline is not None else (f.baseline_name or "-")
        )  # fmt: skip
        ratio = f"{_num(f.ratio)}x" if f.ratio is not None else "-"
        out.append([f.group, f.name, value, baseline, ratio, f.target or "-", _met(f.met)])
    return out


HEADER = ["group", "figure", "value", "baseline", "ratio", "target", "met"]


def text_table(figures: Sequence[Figure]) -> str:
    table = [HEADER, *rows(figures)]
    widths = [min(max(len(r[i]) for r in table), 60) for i in range(len(HEADER))]
    lines = []
    for n, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(figures: Sequence[Figure]) -> list[str]:
    return [f"- {f.group} / {f.name}: {f.note}" for f in figures if f.note]


def markdown(result: dict[str, Any], figures: Sequence[Figure]) -> str:
    m = result["machine"]
    v = m["versions"]
    lines = [
        f"# Benchmark results ({'smoke' if result['smoke'] else 'full'} run)",
        "",
        f"Groups: {', '.join(result['modules'])}.",
        "",
        f"{result['started_at']}, {result['wall_s']:.0f} s; {m['cores']} cores "
        f"({m['cpu']}), {m['memory_mb']} MB; load average at the start "
        f"{' / '.join(str(x) for x in m['loadavg_start'])}, at the end "
        f"{' / '.join(str(x) for x in m['loadavg_end'])} (1 / 5 / 15 min).",
        "",
        f"Kafka {v['kafka']}; {v['mongo']}; S3: {v['s3']}; ffmpeg {v['ffmpeg']}; {v['python']}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for r in rows(figures):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    if any(f.note for f in figures):
        lines += ["", "Notes:", "", *notes(figures)]
    return "\n".join(lines) + "\n"


def results_name(smoke: bool) -> str:
    # A smoke run's tiny figures never replace a real run's.
    return "smoke" if smoke else "latest"


def write(result: dict[str, Any], figures: Sequence[Figure], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = results_name(bool(result["smoke"]))
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(markdown(result, figures))


# -- CLI ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description="Run the benchmarks.")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GROUP",
        help=f"run only these groups (repeat or comma-separate): {', '.join(MODULES)}",
    )
    p.add_argument("--smoke", action="store_true", help="tiny inputs, 1-2 repetitions")
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR,
                   help="where latest.json and latest.md go (default bench/results)")  # fmt: skip
    args = p.parse_args(argv)
    groups = [g.strip() for item in args.only for g in item.split(",") if g.strip()]
    unknown = [g for g in groups if g not in MODULES]
    if unknown:
        p.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    args.groups = [g for g in MODULES if g in groups] if groups else list(MODULES)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The clients' own retries and rebalances are not the benchmark's output.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A new topic's leader not elected yet is retried by the client: not worth a line.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        result, figures = asyncio.run(
            run_suite(args.groups, smoke=args.smoke, out_dir=args.out_dir)
        )
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    print()
    print(text_table(figures))
    if any(f.note for f in figures):
        print("\nnotes:")
        print("\n".join(notes(figures)))
    name = results_name(args.smoke)
    print(f"\nwhole run {result['wall_s']:.0f} s; results in {args.out_dir}/{name}.json, .md")
    return 1 if any(m["error"] for m in result["modules"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())

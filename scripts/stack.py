"""Local stack manager: Kafka (KRaft), a MongoDB wire-protocol server and an S3 server on loopback.

Usage: scripts/stack up | down | status | logs [NAME] | env

Binaries are built or fetched from package registries once into a cache directory
(``TAPEDECK_CACHE``, default ``~/.cache/tapedeck``) so a fresh clone on the same machine
starts fast; data, logs and pid files live under ``STACK_DIR`` (default ``.stack/``).
Every endpoint comes from the environment so the same services can point at a remote
cluster instead; this script only manages the local one.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
FERRETDB_VERSION = "v1.24.2"
VERSITYGW_VERSION = "v1.7.0"
APT_TOOLS = {
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
    # The console's browser tests drive it (Playwright cannot download its own here).
    "chromium": "chromium",
    # The API benchmark's load generator (bench/api_bench.py).
    "wrk": "wrk",
}


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


STACK_DIR = Path(env("STACK_DIR", str(ROOT / ".stack"))).resolve()
CACHE_DIR = Path(env("TAPEDECK_CACHE", str(Path.home() / ".cache" / "tapedeck"))).resolve()
HOST = "127.0.0.1"
KAFKA_PORT = int(env("STACK_KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(env("STACK_KAFKA_CONTROLLER_PORT", "9093"))
MONGO_PORT = int(env("STACK_MONGO_PORT", "27017"))
S3_PORT = int(env("STACK_S3_PORT", "7070"))
S3_ACCESS = env("S3_ACCESS_KEY", "tapedeck-local")
S3_SECRET = env("S3_SECRET_KEY", "tapedeck-local-secret")
S3_BUCKETS = [b for b in env("STACK_S3_BUCKETS", env("S3_BUCKET", "tapedeck")).split(",") if b]


class StackError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def run(argv: list[str], cwd: Path | None = None, env_extra: dict[str, str] | None = None) -> None:
    e = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run(argv, cwd=cwd, env=e, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise StackError(f"command failed ({proc.returncode}): {' '.join(argv)}\n{tail}")


def require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise StackError(f"'{tool}' is not on PATH: {hint}")
    return path


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# ---------------------------------------------------------------- installs


def install_apt_tools() -> None:
    missing = sorted({pkg for tool, pkg in APT_TOOLS.items() if not shutil.which(tool)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError(
            f"missing Debian packages {missing}: run 'sudo apt-get install -y {' '.join(missing)}'"
        )
    log(f"installing Debian packages: {' '.join(missing)}")
    run(["apt-get", "update", "-q"])
    run(
        ["apt-get", "install", "-y", "-q", *missing],
        env_extra={"DEBIAN_FRONTEND": "noninteractive"},
    )


def kafka_lib() -> Path:
    lib = CACHE_DIR / f"kafka-{KAFKA_VERSION}" / "lib"
    if (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return lib
    require("mvn", "install Maven (apt-get install -y maven)")
    require("java", "install a JDK 17+ (apt-get install -y openjdk-17-jre-headless)")
    log(f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central")
    build = lib.parent / "build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "pom.xml").write_text(POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    tmp = lib.parent / "lib.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run(["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"], cwd=build)
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    return lib


POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tapedeck.stack</groupId><artifactId>kafka-local</artifactId>
  <version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def go_env() -> dict[str, str]:
    return {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}


def go_tool(name: str, module: str, version: str, *, built_as: str | None = None) -> Path:
    """``go install MODULE@VERSION`` once into ``$TAPEDECK_CACHE/NAME-VERSION/NAME`` (tools
    the tests and scripts need: kustomize, promtool, toxiproxy); its path. ``built_as`` is
    the binary's name when the module's command is called otherwise."""
    home = CACHE_DIR / f"{name}-{version}"
    out = home / name
    if out.exists():
        return out
    go = require("go", "install Go 1.22+ (apt-get install -y golang)")
    log(f"building {name} {version} through the Go module proxy")
    # Into a fresh folder, then renamed: a build cut short leaves no half binary behind,
    # and two builds at once cannot mix.
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = home.parent / f"{name}-{version}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        run([go, "install", f"{module}@{version}"], env_extra={**go_env(), "GOBIN": str(tmp)})
        built = tmp / (built_as or name)
        if not built.exists():
            raise StackError(f"go install {module}@{version} made no binary")
        built.rename(tmp / name)
        try:
            tmp.rename(home)
        except OSError:
            if not out.exists():  # not another build's finished result: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ferretdb_bin() -> Path:
    out = CACHE_DIR / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"
    if out.exists():
        return out
    go = require("go", "install Go 1.22+ (https://go.dev/doc/install or apt-get install -y golang)")
    log(f"building FerretDB {FERRETDB_VERSION} through the Go module proxy")
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"],
        capture_output=True,
        text=True,
        cwd=CACHE_DIR,
        env=dict(os.environ, GOFLAGS="-mod=mod"),
    )
    if proc.returncode != 0:
        raise StackError(f"go mod download FerretDB failed:\n{proc.stdout}{proc.stderr}")
    import json

    src_mod = Path(json.loads(proc.stdout)["Dir"])
    src = out.parent / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(src_mod, src)
    for p in [src, *src.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    # The module zip lacks the generated version file that build/version embeds; without
    # it the binary panics at start.
    (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
    run([go, "build", "-trimpath", "-o", str(out), "./cmd/ferretdb"], cwd=src, env_extra=go_env())
    shutil.rmtree(src, ignore_errors=True)
    return out


def versitygw_bin() -> Path:
    gobin = CACHE_DIR / f"versitygw-{VERSITYGW_VERSION}"
    out = gobin / "versitygw"
    if out.exists():
        return out
    go = require("go", "install Go 1.22+ (https://go.dev/doc/install or apt-get install -y golang)")
    log(f"building versitygw {VERSITYGW_VERSION} through the Go module proxy")
    gobin.mkdir(parents=True, exist_ok=True)
    run(
        [go, "install", f"github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"],
        env_extra={**go_env(), "GOBIN": str(gobin)},
    )
    return out


# ---------------------------------------------------------------- services


@dataclass
class Service:
    name: str
    port: int
    install: Callable[[], None]
    argv: Callable[[], list[str]]
    probe: Callable[[], None]
    prepare: Callable[[], None] = lambda: None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pidfile(self) -> Path:
        return STACK_DIR / "run" / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return STACK_DIR / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def healthy(self) -> bool:
        try:
            self.probe()
        except Exception:
            return False
        return True


# Kafka ------------------------------------------------------------------


def kafka_dir() -> Path:
    return STACK_DIR / "kafka"


def kafka_prepare() -> None:
    d = kafka_dir()
    (d / "data").mkdir(parents=True, exist_ok=True)
    props = d / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={HOST}:{KAFKA_CONTROLLER_PORT}",
                f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={d / 'data'}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Topics come from the registry; a typo must fail, not create a topic.
                "auto.create.topics.enable=false",
                "delete.topic.enable=true",
                "message.max.bytes=10485760",
                "",
            ]
        )
    )
    (d / "log4j2.properties").write_text(
        "status = warn\n"
        "appender.out.type = Console\nappender.out.name = OUT\n"
        "appender.out.layout.type = PatternLayout\n"
        "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\nrootLogger.appenderRef.out.ref = OUT\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = WARN\n"
        "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
        "logger.org.name = org.apache.kafka\nlogger.org.level = WARN\n"
    )
    if not (d / "data" / "meta.properties").exists():
        cluster_id = new_cluster_id()
        run(
            [
                *kafka_java(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(props),
            ]
        )


def new_cluster_id() -> str:
    """A KRaft cluster id (16 random bytes, URL-safe base64). One starting with "-" would be
    read by the storage tool as an option, so, like Kafka's own generator, skip those."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_java() -> list[str]:
    lib = CACHE_DIR / f"kafka-{KAFKA_VERSION}" / "lib"
    return [
        "java",
        "-Xms512m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kafka_dir() / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={STACK_DIR / 'logs'}",
        "-cp",
        f"{lib}/*",
    ]


def kafka_probe() -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    async def go() -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=f"{HOST}:{KAFKA_PORT}", request_timeout_ms=3000
        )
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(asyncio.wait_for(go(), 10))


# MongoDB wire protocol --------------------------------------------------


def mongo_argv() -> list[str]:
    data = STACK_DIR / "mongo"
    mongod = shutil.which("mongod")
    if mongod:
        return [mongod, "--bind_ip", HOST, "--port", str(MONGO_PORT), "--dbpath", str(data)]
    return [
        str(ferretdb_bin()),
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--listen-addr={HOST}:{MONGO_PORT}",
        f"--state-dir={data}",
        f"--debug-addr={HOST}:{int(env('STACK_FERRETDB_DEBUG_PORT', '28088'))}",
        "--telemetry=disable",
        "--log-level=warn",
    ]


def mongo_install() -> None:
    if not shutil.which("mongod"):
        ferretdb_bin()


def mongo_probe() -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://{HOST}:{MONGO_PORT}", serverSelectionTimeoutMS=2000
    )
    try:
        client.admin.command("ping")
    finally:
        client.close()


# S3 ------------------------------------------------------------------------


def s3_client() -> Any:
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=f"http://{HOST}:{S3_PORT}",
        region_name="us-east-1",
        aws_access_key_id=S3_ACCESS,
        aws_secret_access_key=S3_SECRET,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=2,
            read_timeout=5,
        ),
    )


def s3_argv() -> list[str]:
    data = STACK_DIR / "s3-data"
    return [
        str(versitygw_bin()),
        "--access",
        S3_ACCESS,
        "--secret",
        S3_SECRET,
        "--port",
        f"{HOST}:{S3_PORT}",
        "--quiet",
        "posix",
        "--sidecar",
        str(STACK_DIR / "s3-sidecar"),
        str(data),
    ]


def s3_prepare() -> None:
    (STACK_DIR / "s3-data").mkdir(parents=True, exist_ok=True)
    (STACK_DIR / "s3-sidecar").mkdir(parents=True, exist_ok=True)


def s3_probe() -> None:
    s3_client().list_buckets()


def s3_buckets() -> None:
    client = s3_client()
    have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in S3_BUCKETS:
        if bucket not in have:
            client.create_bucket(Bucket=bucket)
            log(f"created bucket {bucket}")


SERVICES = [
    Service(
        "kafka",
        KAFKA_PORT,
        lambda: (kafka_lib(), None)[1],
        lambda: [*kafka_java(), "kafka.Kafka", str(kafka_dir() / "server.properties")],
        kafka_probe,
        kafka_prepare,
    ),
    Service(
        "mongo",
        MONGO_PORT,
        mongo_install,
        mongo_argv,
        mongo_probe,
        lambda: (STACK_DIR / "mongo").mkdir(parents=True, exist_ok=True),
    ),
    Service("s3", S3_PORT, lambda: (versitygw_bin(), None)[1], s3_argv, s3_probe, s3_prepare),
]


# ---------------------------------------------------------------- commands


def start(svc: Service) -> None:
    if svc.pid():
        return
    if svc.port and port_open(svc.port):
        if svc.healthy():
            log(
                f"{svc.name}: port {svc.port} already serves a compatible server not started by "
                "this script; using it"
            )
            return
        raise StackError(f"{svc.name}: port {HOST}:{svc.port} is already taken by another process")
    svc.install()
    svc.prepare()
    svc.logfile.parent.mkdir(parents=True, exist_ok=True)
    svc.pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(svc.logfile, "ab") as out:
        proc = subprocess.Popen(
            svc.argv(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=STACK_DIR,
            start_new_session=True,
            env=dict(os.environ, **svc.env),
        )
    svc.pidfile.write_text(str(proc.pid))
    log(f"{svc.name}: started pid {proc.pid}")


def wait_ready(svc: Service, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if svc.healthy():
            return
        if svc.pidfile.exists() and not svc.pid():
            break
        time.sleep(0.3)
    tail = ""
    if svc.logfile.exists():
        tail = "\n".join(svc.logfile.read_text(errors="replace").splitlines()[-25:])
    raise StackError(f"{svc.name} did not become ready on {HOST}:{svc.port}; log tail:\n{tail}")


def up() -> None:
    t0 = time.monotonic()
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    install_apt_tools()
    for svc in SERVICES:
        start(svc)
    for svc in SERVICES:
        wait_ready(svc)
    s3_buckets()
    log(f"ready in {time.monotonic() - t0:.1f}s")
    print_env()


def stop(svc: Service, timeout_s: float = 20) -> None:
    pid = svc.pid()
    if not pid:
        svc.pidfile.unlink(missing_ok=True)
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and svc.pid():
        time.sleep(0.2)
    if svc.pid():
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while svc.pid():
            time.sleep(0.1)
    svc.pidfile.unlink(missing_ok=True)
    log(f"{svc.name}: stopped")


def down() -> None:
    for svc in reversed(SERVICES):
        stop(svc)


def status() -> int:
    rc = 0
    for svc in SERVICES:
        pid = svc.pid()
        ok = svc.healthy()
        state = "ready" if ok else ("starting/unhealthy" if pid else "stopped")
        if not ok:
            rc = 1
        print(f"{svc.name:6} {HOST}:{svc.port:<6} pid={pid or '-':<8} {state}")
    return rc


def print_env() -> None:
    print(f"KAFKA_BOOTSTRAP={HOST}:{KAFKA_PORT}")
    print(f"MONGO_URL=mongodb://{HOST}:{MONGO_PORT}")
    print(f"S3_ENDPOINT=http://{HOST}:{S3_PORT}")
    print(f"S3_BUCKET={S3_BUCKETS[0]}")


def logs(name: str | None) -> None:
    for svc in SERVICES:
        if name and svc.name != name:
            continue
        if svc.logfile.exists():
            print(f"==> {svc.logfile} <==")
            print("\n".join(svc.logfile.read_text(errors="replace").splitlines()[-50:]))


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "status"
    try:
        if cmd == "up":
            up()
        elif cmd == "down":
            down()
        elif cmd == "status":
            return status()
        elif cmd == "logs":
            logs(argv[1] if len(argv) > 1 else None)
        elif cmd == "env":
            print_env()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except StackError as exc:
        print(f"[stack] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

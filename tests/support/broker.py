"""A Kafka broker of the reliability tests' own: the local stack's Kafka build (from the
stack's cache), one KRaft node on free loopback ports, restartable by a test.

Kafka tells clients where to connect from its metadata (the advertised listener), so a
proxy in front of it needs a listener that advertises the proxy's address, or clients
would bypass the proxy after their first request. This broker has two:

* ``DIRECT`` on ``direct_port``, advertising itself: the tests' own producers, readers and
  admin calls, which no fault may touch;
* ``PROXIED`` on ``behind_port``, advertising ``127.0.0.1:<proxy port>``: the services
  bootstrap at the proxy and every later connection goes through it too.

The shared broker of ``scripts/stack up`` is left alone: these tests restart theirs, and
adding a listener to the shared one would need a restart of everyone's Kafka.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from tests.support.pipeline import die_with_parent
from tests.support.scripts import load_script
from tests.support.services import free_port

HEAP = "384m"


class PrivateBroker:
    def __init__(self, home: Path, proxy_port: int, behind_port: int) -> None:
        self.home = home
        self.proxy_port = proxy_port
        self.behind_port = behind_port
        self.direct_port = free_port()
        self.controller_port = free_port()
        self.log = home / "kafka.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stack = load_script("stack")

    @property
    def direct(self) -> str:
        return f"127.0.0.1:{self.direct_port}"

    def _prepare(self) -> Path:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        host = "127.0.0.1"
        props.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={host}:{self.controller_port}",
            f"listeners=DIRECT://{host}:{self.direct_port},PROXIED://{host}:{self.behind_port},"
            f"CONTROLLER://{host}:{self.controller_port}",
            f"advertised.listeners=DIRECT://{host}:{self.direct_port},"
            f"PROXIED://{host}:{self.proxy_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=DIRECT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,DIRECT:PLAINTEXT,"
            "PROXIED:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "delete.topic.enable=true",
            "message.max.bytes=10485760",
            "",
        ]))  # fmt: skip
        (self.home / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.out.type = Console\nappender.out.name = OUT\n"
            "appender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = OUT\n"
        )
        if not (data / "meta.properties").exists():
            cluster = self._stack.new_cluster_id()
            self._stack.run([*self._java(), "kafka.tools.StorageTool", "format", "--standalone",
                             "-t", cluster, "-c", str(props)])  # fmt: skip
        return props

    def _java(self) -> list[str]:
        lib = self._stack.kafka_lib()
        return ["java", f"-Xms{HEAP}", f"-Xmx{HEAP}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.home}", "-cp", f"{lib}/*"]  # fmt: skip

    def start(self, timeout_s: float = 90) -> None:
        props = self._prepare()
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen([*self._java(), "kafka.Kafka", str(props)],
                                          stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          cwd=self.home, preexec_fn=die_with_parent)  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the test broker exited; log in {self.log}")
            if self.answers():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test broker did not answer in {timeout_s:g} s")
            time.sleep(0.3)

    def answers(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", self.direct_port)) != 0:
                return False

        async def probe() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.direct, request_timeout_ms=3000)
            await admin.start()
            try:
                await admin.list_topics()
            finally:
                await admin.close()

        # A loop of its own, in a thread of its own: callers may be inside a running loop.
        with ThreadPoolExecutor(1) as pool:
            try:
                pool.submit(asyncio.run, asyncio.wait_for(probe(), 5)).result()
            except Exception:
                return False
        return True

    def stop(self, timeout_s: float = 30) -> None:
        """A controlled shutdown (SIGTERM), as an orchestrator restarts a broker."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

"""deploy/docker/healthcheck.py, the health check of every container, against real HTTP
servers on loopback, and services/topics.py's offline listing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from schemas.topics import TOPICS
from services import topics
from tests.deploy.support import ROOT, load_script

hc = load_script(ROOT / "deploy" / "docker" / "healthcheck.py", "tapedeck_healthcheck")


class _Handler(BaseHTTPRequestHandler):
    status = 200
    paths: list[str]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b'{"status": "OK"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    srv = HTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"paths": []}))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_main_module_comes_from_the_main_process(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"python\0-m\0services.clipper\0")
    assert hc.main_module(str(cmdline)) == "services.clipper"
    cmdline.write_bytes(b"/bin/sh\0-c\0sleep 1\0")
    assert hc.main_module(str(cmdline)) is None
    assert hc.main_module(str(tmp_path / "missing")) is None


def test_urls() -> None:
    assert hc.url_for("services.submitter", {"API_PORT": "9000"}) == "http://127.0.0.1:9000/readyz"
    assert hc.url_for("services.submitter", {}) == "http://127.0.0.1:8080/readyz"
    web = {"CLIPPER_WEB_PORT": "6066"}
    assert hc.url_for("services.clipper", web) == "http://127.0.0.1:6066/healthz"
    assert hc.url_for("services.clipper", web, ready=True) == "http://127.0.0.1:6066/readyz"
    assert hc.url_for("services.clipper", {"MERGER_WEB_PORT": "6066"}) is None
    assert hc.url_for("services.topics", {}) is None
    assert hc.url_for(None, {}) is None


def test_healthy_unhealthy_and_down(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    port = server.server_address[1]
    monkeypatch.setenv("CLIPPER_WEB_PORT", str(port))
    assert hc.main(["services.clipper"]) == 0
    assert hc.main(["services.clipper", "--ready"]) == 0
    assert server.RequestHandlerClass.paths[-2:] == ["/healthz", "/readyz"]  # type: ignore[attr-defined]
    server.RequestHandlerClass.status = 503  # type: ignore[attr-defined]
    assert hc.main(["services.clipper"]) == 1
    assert hc.main(["services.clipper", "--ready"]) == 1
    monkeypatch.setenv("CLIPPER_WEB_PORT", "1")  # nothing listens there
    assert hc.main(["services.clipper"]) == 1
    monkeypatch.delenv("CLIPPER_WEB_PORT")
    assert hc.main(["services.clipper"]) == 0  # no web server asked for: the process runs


def test_topics_list_is_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert topics.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    wanted = [*TOPICS, *TOPICS.dlqs()]
    assert [line.split("\t")[0] for line in lines] == [t.name for t in wanted]
    assert [int(line.split("\t")[1]) for line in lines] == [t.partitions for t in wanted]

"""Toxiproxy for the reliability tests: the server (built by scripts/toxiproxy.py into the
stack's cache) on a loopback port of its own, and a small client of its HTTP API.

A proxy listens on a free loopback port and forwards to one server; a test makes that
server slow, cut off, throttled or gone (``down``) without touching the server itself,
so the shared local stack is never stopped.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.pipeline import die_with_parent
from tests.support.scripts import load_script
from tests.support.services import free_port


@dataclass(frozen=True)
class Proxy:
    name: str
    port: int  # where clients connect
    upstream: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class Toxiproxy:
    """The admin API of one toxiproxy server."""

    def __init__(self, admin_url: str) -> None:
        self._http = httpx.Client(base_url=admin_url, timeout=10)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._http.request(method, path, json=body)
        if resp.status_code >= 400:
            raise RuntimeError(f"toxiproxy {method} {path}: {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    def create(self, name: str, upstream: str) -> Proxy:
        port = free_port()
        self._call("POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{port}",
                                        "upstream": upstream, "enabled": True})  # fmt: skip
        return Proxy(name, port, upstream)

    def set_enabled(self, proxy: Proxy, enabled: bool) -> None:
        """Disabled, the proxy closes its listener and every open connection: to a client
        the server is down (connections refused)."""
        self._call("POST", f"/proxies/{proxy.name}", {"enabled": enabled})

    def add(
        self,
        proxy: Proxy,
        kind: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: int | float,
    ) -> str:
        """Add a toxic (``latency``, ``timeout``, ``reset_peer``, ``bandwidth``,
        ``slow_close``, ``limit_data``, ...); returns its name."""
        name = name or f"{proxy.name}-{kind}-{stream}"
        self._call("POST", f"/proxies/{proxy.name}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": toxicity,
            "attributes": attributes,
        })  # fmt: skip
        return name

    def remove(self, proxy: Proxy, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy.name}/toxics/{toxic}")

    def toxics(self, proxy: Proxy) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/proxies/{proxy.name}/toxics"))

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._call("POST", "/reset")

    @contextmanager
    def down(self, proxy: Proxy) -> Iterator[None]:
        self.set_enabled(proxy, False)
        try:
            yield
        finally:
            self.set_enabled(proxy, True)

    @contextmanager
    def toxic(self, proxy: Proxy, kind: str, **kw: Any) -> Iterator[str]:
        name = self.add(proxy, kind, **kw)
        try:
            yield name
        finally:
            self.remove(proxy, name)


@contextmanager
def toxiproxy_server(log: Path) -> Iterator[Toxiproxy]:
    """A toxiproxy server on a free loopback port (built on first use); stopped after."""
    script = load_script("toxiproxy")
    binary = script.toxiproxy_bin()
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([str(binary), "-host", "127.0.0.1", "-port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)  # fmt: skip
    client = Toxiproxy(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"toxiproxy exited with {proc.returncode}; log in {log}")
            try:
                client._call("GET", "/version")
                break
            except (httpx.HTTPError, RuntimeError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"toxiproxy did not answer in 20 s; log in {log}") from None
                time.sleep(0.1)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""The local stack (scripts/services.py), docker-compose.yml and deploy/k8s start the same
services with the same commands and give each the same setting names, all of them names
its Settings class reads; .env.example lists every setting there is."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.support import (
    K8S,
    OVERLAYS,
    ROOT,
    Doc,
    all_setting_names,
    by_name,
    load_script,
    local_services,
    settings_of,
    yaml_docs,
)

# Environment that is not a setting: none. (TMPDIR, HOME and API_HOST defaults for
# containers are the image's own ENV.)
NOT_SETTINGS: set[str] = set()


def compose_env() -> dict[str, set[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: set(services[name].get("environment") or {}) for name in local_services()}


def secret_keys() -> dict[str, set[str]]:
    docs = yaml_docs((K8S / "secret.template.yaml").read_text())
    return {d["metadata"]["name"]: set(d["stringData"]) for d in docs}


def k8s_env(docs: list[Doc]) -> dict[str, set[str]]:
    configmaps = {
        d["metadata"]["name"]: set(d.get("data", {})) for d in docs if d["kind"] == "ConfigMap"
    }
    secrets = secret_keys()
    out: dict[str, set[str]] = {}
    for name, d in by_name(docs, "Deployment").items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        names = {e["name"] for e in c.get("env", [])}
        for source in c.get("envFrom", []):
            if "configMapRef" in source:
                names |= configmaps[source["configMapRef"]["name"]]
            else:
                names |= secrets[source["secretRef"]["name"]]
        out[name] = names
    return out


def test_compose_and_k8s_run_the_local_stacks_commands(rendered: dict[str, list[Doc]]) -> None:
    local = local_services()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {n: services[n]["command"][0] for n in local} == local
    for overlay in OVERLAYS:
        deployments = by_name(rendered[overlay], "Deployment")
        got = {
            n: d["spec"]["template"]["spec"]["containers"][0]["args"][0]
            for n, d in deployments.items()
        }
        assert got == local, overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_compose_and_k8s_set_the_same_setting_names(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    compose, k8s = compose_env(), k8s_env(rendered[overlay])
    assert set(k8s) == set(compose)
    for name, module in local_services().items():
        readable = settings_of(module) | NOT_SETTINGS
        assert compose[name] <= readable, (name, sorted(compose[name] - readable))
        assert k8s[name] <= readable, (name, sorted(k8s[name] - readable))
        assert compose[name] == k8s[name], (
            name,
            "compose only:",
            sorted(compose[name] - k8s[name]),
            "k8s only:",
            sorted(k8s[name] - compose[name]),
        )


def test_shared_config_and_secrets_hold_settings_only() -> None:
    shared = {
        line.split("=", 1)[0]
        for line in (K8S / "base" / "config.env").read_text().splitlines()
        if line and not line.startswith("#")
    }
    common = settings_of("services.common")
    assert shared <= common, sorted(shared - common)
    for keys in secret_keys().values():
        assert keys <= all_setting_names()


def test_env_example_lists_every_setting() -> None:
    listed = re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    assert len(listed) == len(set(listed)), "a setting listed twice"
    assert set(listed) == all_setting_names(), (
        "missing:",
        sorted(all_setting_names() - set(listed)),
        "unknown:",
        sorted(set(listed) - all_setting_names()),
    )


def test_health_check_ports_are_settings_of_their_service() -> None:
    hc = load_script(ROOT / "deploy" / "docker" / "healthcheck.py", "tapedeck_healthcheck")
    workers = {m for m in local_services().values() if m != hc.SUBMITTER}
    assert set(hc.WEB_PORT) == workers
    for module, setting in hc.WEB_PORT.items():
        assert setting in settings_of(module), (module, setting)
    assert "API_PORT" in settings_of(hc.SUBMITTER)

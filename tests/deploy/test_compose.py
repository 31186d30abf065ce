"""docker-compose.yml: valid for the Compose specification's JSON Schema (kept in
deploy/compose/, from the compose-spec project's Go module), with the servers, the
one-shot steps and every service, each with a health check and a restart policy."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.deploy.support import ROOT, compose_validator, local_services

COMPOSE = ROOT / "docker-compose.yml"
INIT_STEPS = {"s3-init", "topics-init"}


def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in compose_validator().iter_errors(doc)
    ]


def test_compose_file_matches_the_compose_specification() -> None:
    assert errors(compose()) == []


def test_the_schema_rejects_mistakes() -> None:
    doc = compose()
    bad = copy.deepcopy(doc)
    bad["services"]["clipper"]["helthcheck"] = {}
    assert errors(bad)
    bad = copy.deepcopy(doc)
    bad["services"]["clipper"]["restart"] = ["always"]
    assert errors(bad)


def test_servers_are_pinned_official_images() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    roles = services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert set(roles.split(",")) == {"broker", "controller"}, "single-node KRaft"
    assert services["mongo"]["image"].startswith("mongo:")
    assert services["s3"]["image"].split(":")[0] in ("versity/versitygw", "minio/minio")
    for name, svc in services.items():
        image = svc["image"]
        if image == "tapedeck:local":
            assert svc["build"]["context"] == "."
            continue
        tag = image.rpartition(":")[2]
        assert tag and tag != "latest" and any(ch.isdigit() for ch in tag), (name, image)


def test_every_service_has_a_container_health_check_and_restart_policy() -> None:
    services = compose()["services"]
    local = local_services()
    for name, module in local.items():
        svc = services[name]
        assert svc["command"] == [module], name
        assert svc["image"] == "tapedeck:local"
        assert svc["restart"] in ("always", "unless-stopped"), name
        assert svc["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        needs = svc["depends_on"]
        assert needs["topics-init"]["condition"] == "service_completed_successfully"
        assert needs["s3-init"]["condition"] == "service_completed_successfully"
        assert needs["kafka"]["condition"] == needs["mongo"]["condition"] == "service_healthy"
    for name in ("kafka", "mongo", "s3"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped"
    assert services["topics-init"]["command"] == ["services.topics"]
    assert services["s3-init"]["entrypoint"][1].endswith("create_bucket.py")
    assert (ROOT / services["s3-init"]["entrypoint"][1].removeprefix("/app/")).exists()
    app_services = {
        n for n, s in services.items() if s.get("image") == "tapedeck:local" and "profiles" not in s
    }
    assert app_services == set(local) | INIT_STEPS


def test_api_is_on_the_submitters_port_and_the_demo_reaches_it() -> None:
    services = compose()["services"]
    env = services["submitter"]["environment"]
    assert f"127.0.0.1:8080:{env['API_PORT']}" in services["submitter"]["ports"]
    assert env["API_HOST"] == "0.0.0.0"
    demo = services["demo"]
    assert demo["entrypoint"] == ["python", "/app/scripts/demo.py"]
    assert demo["environment"]["API_HOST"] == "submitter"
    assert demo["environment"]["API_PORT"] == env["API_PORT"]

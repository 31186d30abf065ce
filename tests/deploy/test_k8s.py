"""deploy/k8s: every overlay renders with kustomize, every object is valid for its schema
(Kubernetes K8S_VERSION, or its operator's CRD), and the Deployments, autoscalers,
disruption budgets and network policies follow the rules platform engineers expect."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import pytest
import yaml

from schemas.topics import TOPICS
from tests.deploy.support import (
    K8S,
    OVERLAYS,
    ROOT,
    Doc,
    by_name,
    load_script,
    local_services,
    of_kind,
    schema_errors,
    selects,
    settings_of,
    yaml_docs,
)

HEALTHCHECK = load_script(ROOT / "deploy" / "docker" / "healthcheck.py", "tapedeck_healthcheck")
SUBMITTER = "submitter"
# Where the Dockerfile puts deploy/docker/healthcheck.py in the image.
IMAGE_HEALTHCHECK = "/app/deploy/docker/healthcheck.py"
# The stages and the Faust app each runs: its consumer group and the topics it reads are
# taken from the app itself (build_app), so autoscaling cannot drift from the code.
STAGE_APPS = {
    "lifecycle": ("services.lifecycle", "LifecycleSettings"),
    "audio-agent": ("services.audio_agent", "AudioAgentSettings"),
    "clipper": ("services.clipper", "ClipperSettings"),
    "merger": ("services.merger", "MergerSettings"),
    "webhooks": ("services.webhooks", "WebhookSettings"),
}


def container(deployment: Doc) -> Doc:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(c)


def pod_labels(obj: Doc) -> dict[str, str]:
    return dict(obj["spec"]["template"]["metadata"]["labels"])


def config(docs: list[Doc]) -> dict[str, str]:
    (cm,) = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("tapedeck-config")
    ]
    return dict(cm["data"])


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_its_schema(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    assert len(docs) > 20
    errors = [e for d in docs for e in schema_errors(d)]
    assert not errors, "\n".join(errors)


def test_the_secret_template_is_valid_and_holds_no_values() -> None:
    docs = yaml_docs((K8S / "secret.template.yaml").read_text())
    assert [d["kind"] for d in docs] == ["Secret", "Secret"]
    for d in docs:
        assert not schema_errors(d)
        assert "data" not in d
        assert d["stringData"] and all(v == "" for v in d["stringData"].values()), d


def test_the_validators_reject_mistakes(rendered: dict[str, list[Doc]]) -> None:
    """The checks above are not vacuous: a misspelt field or a wrong type fails."""
    prod = rendered["prod"]
    deployment = copy.deepcopy(next(of_kind(prod, "Deployment")))
    container(deployment)  # one container
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert schema_errors(deployment)
    topic = copy.deepcopy(next(of_kind(prod, "KafkaTopic")))
    topic["spec"]["partitons"] = 3
    assert schema_errors(topic)
    scaled = copy.deepcopy(next(of_kind(prod, "ScaledObject")))
    scaled["spec"]["maxReplicaCount"] = "many"
    assert schema_errors(scaled)
    rule = copy.deepcopy(next(of_kind(prod, "PrometheusRule")))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "soon"
    assert schema_errors(rule)
    bad_name = copy.deepcopy(topic)
    del bad_name["spec"]["partitons"]
    bad_name["metadata"]["nmae"] = "x"
    assert schema_errors(bad_name)


# ---------------------------------------------------------------- deployments


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_per_service_running_its_module(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    deployments = by_name(rendered[overlay], "Deployment")
    assert {n: container(d)["args"] for n, d in deployments.items()} == {
        n: [m] for n, m in local_services().items()
    }
    for d in deployments.values():
        assert "command" not in container(d), "the image's ENTRYPOINT is python -m"
        image = container(d)["image"]
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_are_hardened_and_sized(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    faust_dir = config(docs)["FAUST_DATA_DIR"]
    for name, d in by_name(docs, "Deployment").items():
        pod = d["spec"]["template"]["spec"]
        c = container(d)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["automountServiceAccountToken"] is False, name
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory", "ephemeral-storage"} <= set(c["resources"][kind]), name
        # Writable scratch: TMPDIR (/tmp, the image's) and Faust's data dir, both emptyDirs.
        empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert mounts.get("/tmp") in empty, name
        assert mounts.get(faust_dir) in empty, name
        keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for t in pod["topologySpreadConstraints"]:
            assert selects(t["labelSelector"], pod_labels(d)), name
        assert selects(d["spec"]["selector"], pod_labels(d)), name


def _step_bounds() -> dict[str, float]:
    """The longest single step each service may be in when it is asked to stop."""
    from services.audio_agent.settings import AudioAgentSettings
    from services.clipper.settings import ClipperSettings
    from services.lifecycle.settings import LifecycleSettings
    from services.merger.settings import MergerSettings
    from services.submitter.settings import SubmitterSettings
    from services.webhooks.settings import WebhookSettings

    sub, merger = SubmitterSettings(), MergerSettings()
    return {
        "submitter": max(sub.clip_wait_timeout_s, getattr(sub, "merge_wait_timeout_s", 0.0)),
        "lifecycle": LifecycleSettings().mongo_timeout_ms / 1000,
        "audio-agent": AudioAgentSettings().scene_deadline_s,
        "clipper": ClipperSettings().ffmpeg_timeout_s,
        "merger": max(merger.ffmpeg_timeout_s, merger.merge_timeout_min_s),
        "webhooks": WebhookSettings().webhook_timeout_s,
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_covers_an_in_flight_step(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    bounds = _step_bounds()
    for name, d in by_name(rendered[overlay], "Deployment").items():
        grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= bounds[name] + 15, (name, grace, bounds[name])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_what_each_service_exposes(rendered: dict[str, list[Doc]], overlay: str) -> None:
    from services.submitter.http.app import create_api
    from services.submitter.settings import SubmitterSettings

    assert IMAGE_HEALTHCHECK in (ROOT / "Dockerfile").read_text()
    api = create_api(SubmitterSettings())
    routes = {*api.openapi()["paths"], api.openapi_url}
    for name, d in by_name(rendered[overlay], "Deployment").items():
        c = container(d)
        module = c["args"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            p = c[probe]
            if name == SUBMITTER:
                assert p["httpGet"]["path"] in routes, (probe, p)
                ports = {pt["name"]: pt["containerPort"] for pt in c["ports"]}
                assert ports[p["httpGet"]["port"]] == int(env["API_PORT"])
            else:
                # The worker's web server listens on WEB_BIND (loopback by default): the
                # probe runs inside the pod. Readiness asks /readyz, the others /healthz.
                ready = ["--ready"] if probe == "readinessProbe" else []
                assert p["exec"]["command"] == [
                    "python",
                    IMAGE_HEALTHCHECK,
                    module,
                    *ready,
                ], (name, probe)
        if name == SUBMITTER:
            # Readiness follows the dependencies; liveness must not (an outage of MongoDB
            # would otherwise restart every API pod).
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        else:
            port_setting = HEALTHCHECK.WEB_PORT[module]
            assert port_setting in settings_of(module), (module, port_setting)
            assert env.get(port_setting), f"{name}: {port_setting} turns on the probed server"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    pdbs = list(of_kind(docs, "PodDisruptionBudget"))
    for name, d in by_name(docs, "Deployment").items():
        mine = [p for p in pdbs if selects(p["spec"]["selector"], pod_labels(d))]
        assert len(mine) == 1, name
        assert mine[0]["spec"].get("maxUnavailable") == 1, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """Deny by default; every service reaches Kafka, MongoDB, S3 and DNS; only the audio
    agent and the webhook service reach the internet, on 443; only the API takes traffic."""
    docs = rendered[overlay]
    policies = list(of_kind(docs, "NetworkPolicy"))
    pods = {n: pod_labels(d) for n, d in by_name(docs, "Deployment").items()}
    pods.update({f"job/{n}": pod_labels(j) for n, j in by_name(docs, "Job").items()})
    for name, labels in pods.items():
        mine = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        deny = [
            p
            for p in mine
            if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert deny, f"{name}: no default-deny policy"
        egress = [rule for p in mine for rule in p["spec"].get("egress", [])]
        ports = {pt["port"] for rule in egress for pt in rule.get("ports", [])}
        assert 53 in ports and 9092 in ports, name
        internet = [r for r in egress if any("ipBlock" in peer for peer in r.get("to", []))]
        service = name.removeprefix("job/")
        if service in ("audio-agent", "webhooks"):
            assert internet and all({pt["port"] for pt in r["ports"]} == {443} for r in internet)
            for r in internet:
                for peer in r["to"]:
                    assert (
                        "10.0.0.0/8" in peer["ipBlock"].get("except", [])
                        or ":" in peer["ipBlock"]["cidr"]
                    ), peer
        else:
            assert not internet, f"{name} must not reach the internet"
        if not name.startswith("job/"):
            assert {27017, 9000} <= ports, name
        ingress = [rule for p in mine for rule in p["spec"].get("ingress", [])]
        # Besides the API's traffic, only scrapes from the monitoring namespace, on the
        # named metrics ports.
        scrapes = [r for r in ingress if _from_monitoring(r)]
        for rule in scrapes:
            assert {pt["port"] for pt in rule["ports"]} <= {"metrics", "http"}, rule
        assert bool([r for r in ingress if r not in scrapes]) == (name == SUBMITTER), name
        if overlay == "prod" and not name.startswith("job/"):
            assert scrapes, f"{name}: Prometheus cannot scrape it"


def _from_monitoring(rule: Doc) -> bool:
    return bool(rule.get("from")) and all(
        peer.get("namespaceSelector", {}).get("matchLabels") == {"tapedeck.io/monitoring": "true"}
        for peer in rule.get("from", [])
    )


# ---------------------------------------------------------------- autoscaling


def _stage_app(name: str) -> tuple[str, dict[str, int]]:
    """The Faust app of a stage: its consumer group and {topic: partitions} it reads."""
    module, cls = STAGE_APPS[name]
    settings_cls = getattr(importlib.import_module(f"{module}.settings"), cls)
    app = importlib.import_module(f"{module}.app").build_app(settings_cls())
    topics: set[str] = set()
    for agent in app.agents.values():
        topics |= set(agent.channel.topics)
    return app.conf.id, {t: TOPICS[t].partitions for t in topics}


def test_prod_scales_each_stage_on_lag_capped_at_partitions(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["prod"]
    cfg = config(docs)
    assert cfg["TOPIC_PREFIX"] == "", "consumer groups and topics below carry no prefix"
    scaled = by_name(docs, "ScaledObject")
    assert set(scaled) == set(STAGE_APPS)
    deployments = by_name(docs, "Deployment")
    for name, so in scaled.items():
        spec = so["spec"]
        assert spec["scaleTargetRef"]["name"] == name and name in deployments
        group, partitions = _stage_app(name)
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        assert {t["metadata"]["topic"]: t["metadata"]["consumerGroup"] for t in triggers} == {
            topic: group for topic in partitions
        }, name
        for t in triggers:
            meta: dict[str, Any] = t["metadata"]
            assert meta["bootstrapServersFromEnv"] in cfg
            assert meta.get("allowIdleConsumers", "false") == "false"
        assert spec["maxReplicaCount"] == max(partitions.values()), name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    hpas = by_name(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {SUBMITTER}


def test_dev_scales_on_cpu_capped_at_partitions(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["dev"]
    assert not list(of_kind(docs, "ScaledObject"))
    hpas = by_name(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == set(by_name(docs, "Deployment"))
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu"]
        if name in STAGE_APPS:
            assert spec["maxReplicas"] <= max(_stage_app(name)[1].values()), name


# ---------------------------------------------------------------- topics


def test_prod_has_a_kafka_topic_per_registry_topic(rendered: dict[str, list[Doc]]) -> None:
    topics = by_name(rendered["prod"], "KafkaTopic")
    wanted = [*TOPICS, *TOPICS.dlqs()]
    assert set(topics) == {t.name for t in wanted}
    for t in wanted:
        kt = topics[t.name]
        assert kt["spec"]["topicName"] == t.name
        assert kt["spec"]["partitions"] == t.partitions
        assert kt["spec"]["config"]["retention.ms"] == str(t.retention_ms)
        assert kt["spec"]["config"]["cleanup.policy"] == t.config()["cleanup.policy"]
        assert kt["metadata"]["labels"]["strimzi.io/cluster"]
        assert kt["metadata"]["namespace"] != "tapedeck", "where the Topic Operator watches"


def test_generated_kafka_topics_are_current() -> None:
    gen = load_script(ROOT / "scripts" / "gen_k8s_topics.py", "tapedeck_gen_k8s_topics")
    assert gen.OUT.read_text() == gen.render(), "run scripts/gen_k8s_topics.py"


def test_dev_creates_topics_with_a_job(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["dev"]
    assert not list(of_kind(docs, "KafkaTopic"))
    (job,) = of_kind(docs, "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["services.topics"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert importlib.import_module("services.topics").main


# ---------------------------------------------------------------- the rest of prod


def test_prod_has_api_ingress_dashboard_and_alerts(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    (ingress,) = of_kind(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = by_name(docs, "Service")[backend["name"]]
    assert selects(
        {"matchLabels": service["spec"]["selector"]},
        pod_labels(by_name(docs, "Deployment")[SUBMITTER]),
    )
    (dashboard,) = [
        d
        for d in of_kind(docs, "ConfigMap")
        if "grafana_dashboard" in d["metadata"].get("labels", {})
    ]
    (body,) = dashboard["data"].values()
    board = json.loads(body)
    # Its content is deploy/observability's (tests/deploy/test_observability.py).
    assert board["uid"] == "tapedeck-overview" and len(board["panels"]) >= 4
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    (rule,) = of_kind(docs, "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    for metric in (
        "kafka_consumergroup_lag",
        "tapedeck_dead_letters_total",
        "tapedeck_stage_outcomes_total",
    ):
        assert metric in exprs and any(metric in e for e in alerts.values()), metric


def test_secrets_referenced_are_the_templates() -> None:
    template = {
        d["metadata"]["name"]: set(d["stringData"])
        for d in yaml_docs((K8S / "secret.template.yaml").read_text())
    }
    docs = yaml_docs((K8S / "base" / "audio-agent.yaml").read_text())
    refs = {e["secretRef"]["name"] for e in container(docs[0])["envFrom"] if "secretRef" in e}
    assert refs == set(template)
    for keys in template.values():
        assert keys <= settings_of("services.audio_agent")


def test_overlay_files_parse() -> None:
    for path in K8S.rglob("*.yaml"):
        assert list(yaml.safe_load_all(path.read_text())), path

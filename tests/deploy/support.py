"""What the deploy tests share: the repository's deploy files, the local stack's service
list, the Settings classes and their setting names, and schema validation (Kubernetes
schemas from kubernetes-validate; Strimzi, KEDA and Prometheus Operator CRDs and the
Compose specification kept in the repository)."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The Kubernetes version the manifests are validated against (kubernetes-validate's
# bundled schemas): the oldest minor version the manifests are meant to run on.
K8S_VERSION = "1.32.0"
CRDS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafka.strimzi.io_kafkatopics.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitors.yaml",
}
COMPOSE_SCHEMA = ROOT / "deploy" / "compose" / "compose-spec.json"
Doc = dict[str, Any]


def load_script(path: Path, name: str) -> ModuleType:
    """Import a file under scripts/ or deploy/ as a module (they are not packages)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def yaml_docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


# ---------------------------------------------------------------- the local stack


def local_services() -> dict[str, str]:
    """scripts/services.py's services: name -> the module it runs (``python -m MODULE``)."""
    mod = load_script(ROOT / "scripts" / "services.py", "tapedeck_scripts_services")
    out: dict[str, str] = {}
    for svc in mod.SERVICES:
        argv = list(svc.argv())
        assert argv[1] == "-m", argv
        out[svc.name] = argv[2]
    return out


# ---------------------------------------------------------------- settings


@cache
def settings_classes() -> dict[str, type[BaseSettings]]:
    """Module (``services.clipper``, ``services.common``) -> the Settings class its
    settings.py defines."""
    found: dict[str, type[BaseSettings]] = {}
    for path in sorted((ROOT / "services").glob("*/settings.py")):
        modname = f"services.{path.parent.name}.settings"
        module = importlib.import_module(modname)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value.__module__ == modname
            ):
                assert path.parent.name not in found, f"two Settings classes in {path}"
                found[f"services.{path.parent.name}"] = value
    return found


def aliases(cls: type[BaseSettings]) -> set[str]:
    return {f.alias or name.upper() for name, f in cls.model_fields.items()}


def all_setting_names() -> set[str]:
    return set().union(*(aliases(c) for c in settings_classes().values()))


def settings_of(module: str) -> set[str]:
    """The setting names ``python -m MODULE`` reads."""
    classes = settings_classes()
    return aliases(classes.get(module, classes["services.common"]))


def secret_setting_names() -> set[str]:
    from pydantic import SecretStr

    out = set()
    for cls in settings_classes().values():
        for name, f in cls.model_fields.items():
            if SecretStr in (getattr(f.annotation, "__args__", None) or (f.annotation,)):
                out.add(f.alias or name.upper())
    return out


# ---------------------------------------------------------------- schemas


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as a validator that rejects unknown fields: the API server
    would silently drop them (pruning), which hides a misspelt field until it matters."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    path = K8S / "crds" / CRDS[(api_version, kind)]
    crd = yaml.safe_load(path.read_text())
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == kind
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert entry["served"], f"{path.name} does not serve {api_version}"
    schema = _strict(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))
    # metadata is validated as Kubernetes ObjectMeta, not by the CRD.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def schema_errors(doc: Doc) -> list[str]:
    """Why ``doc`` is not a valid object of Kubernetes K8S_VERSION (or of its CRD)."""
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key in CRDS:
        errors = [
            f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validator(*key).iter_errors(doc)
        ]
        meta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
        return errors + [e.replace("ConfigMap", doc["kind"]) for e in schema_errors(meta)]
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{where}: {exc.message}"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))


# ---------------------------------------------------------------- label selectors


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def of_kind(docs: list[Doc], kind: str) -> Iterator[Doc]:
    return (d for d in docs if d["kind"] == kind)


def by_name(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}

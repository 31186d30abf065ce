"""deploy/observability/: the Grafana dashboard and the Prometheus alerting rules.

promtool (built once through the Go module proxy by scripts/promtool.py) parses the rules,
runs their unit tests and parses every dashboard query; a promtool that cannot be built
fails these tests. Without promtool, every ``tapedeck_*`` name is checked against
``services.common.obs.metrics``: declared, with the suffix its type has, and with the
labels it has. The Kubernetes monitoring component's copies must be what
scripts/gen_monitoring.py makes of the sources, and what kustomize renders from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

from services.common.obs import metrics
from tests.deploy.support import ROOT, Doc, load_script, of_kind

SOURCE = ROOT / "deploy" / "observability"
DASHBOARD = SOURCE / "grafana" / "tapedeck-dashboard.json"
RULES = SOURCE / "prometheus" / "tapedeck.rules.yaml"
RULE_TESTS = SOURCE / "prometheus" / "tapedeck.rules.test.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# Labels Prometheus adds to every scraped series (the target's), beside a metric's own.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container"})
# Grafana's built-in interval variables, and a stand-in of the right kind for promtool.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
SEVERITIES = frozenset({"critical", "warning", "info"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_NAME = re.compile(r"\btapedeck_[a-zA-Z0-9_]*")
SELECTOR = re.compile(r"\b(tapedeck_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan"})
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$")


# ---------------------------------------------------------------- sources


@cache
def board() -> Doc:
    out: Doc = json.loads(DASHBOARD.read_text())
    return out


@cache
def rule_file() -> Doc:
    out: Doc = yaml.safe_load(RULES.read_text())
    return out


def data_panels() -> list[Doc]:
    return [p for p in board()["panels"] if p["type"] != "row"]


def alerts() -> list[Doc]:
    return [r for g in rule_file()["groups"] for r in g["rules"] if "alert" in r]


def variable_queries() -> list[str]:
    """The PromQL selectors of the dashboard's query variables (``label_values(SEL, L)``)."""
    out = []
    for var in board()["templating"]["list"]:
        if var["type"] == "query":
            match = LABEL_VALUES.match(var["query"]["query"])
            assert match, f"variable {var['name']}: not label_values(selector, label)"
            out.append(match.group(1))
    return out


def panel_exprs() -> Iterator[tuple[str, str]]:
    """(where, expr) of every dashboard query, Grafana variables still in."""
    for panel in data_panels():
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for i, selector in enumerate(variable_queries()):
        yield f"variable query {i}", selector


def all_exprs() -> Iterator[tuple[str, str]]:
    yield from panel_exprs()
    for rule in alerts():
        yield f"alert {rule['alert']}", rule["expr"]


def dashboard_variables() -> set[str]:
    return {v["name"] for v in board()["templating"]["list"]}


def substitute(expr: str) -> str:
    """``expr`` as Grafana sends it, for the parser: intervals as durations, every
    template variable (they all stand in regex matchers) as ``.*``."""
    for name, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(name, value)
    variables = dashboard_variables()

    def one(match: re.Match[str]) -> str:
        assert match.group(1) in variables, f"undefined dashboard variable ${match.group(1)}"
        return ".*"

    return re.sub(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?", one, expr)


# ---------------------------------------------------------------- the metrics contract


@cache
def declared_labels() -> dict[str, frozenset[str]]:
    """Metric name as written in PromQL (counters with ``_total``) -> its label names."""
    out: dict[str, frozenset[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = next(iter(value.describe())).name
            name = name + "_total" if isinstance(value, Counter) else name
            # prometheus_client keeps a metric's label names only on this attribute.
            out[name] = frozenset(value._labelnames)
    assert set(out) == set(metrics.NAMES), "metrics.NAMES and the module's metrics differ"
    return out


def family(name: str) -> str | None:
    """The declared metric a series name belongs to, or None when it matches none (with the
    suffix its type has: ``_total`` counters as declared, histograms only by a sample
    suffix, since the bare name of a histogram has no series)."""
    if name in metrics.NAMES:
        return name if metrics.KINDS[name] != "histogram" else None
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and metrics.KINDS.get(base) == "histogram":
            return base
    return None


def name_errors(expr: str) -> list[str]:
    return [
        f"{name}: not a series of any metric in services/common/obs/metrics.py"
        for name in METRIC_NAME.findall(expr)
        if family(name) is None
    ]


def series_names(expr: str) -> set[str]:
    """Every metric name an expression selects: the identifiers left once string literals,
    label matchers, ranges and grouping clauses are gone, less functions and keywords."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = GROUPING.sub(" ", re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare))
    names = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    return {n for n in names if n not in KEYWORDS}


def label_errors(expr: str) -> list[str]:
    """Label matchers on tapedeck_* metrics name labels they have; when only tapedeck_*
    metrics are queried, every grouping label is one of theirs (or ``le``); a histogram's
    buckets are read only through histogram_quantile over ``le``."""
    errors = []
    for name, matchers in SELECTOR.findall(expr):
        known = declared_labels().get(family(name) or "", frozenset()) | TARGET_LABELS
        for label in MATCHER_LABEL.findall(matchers):
            if label not in known:
                errors.append(f"{name} has no label {label!r}")
    names = series_names(expr)
    if names and all(n.startswith("tapedeck_") for n in names):
        has = set().union(*(declared_labels().get(family(n) or "", frozenset()) for n in names))
        for labels in GROUPING.findall(expr):
            for label in filter(None, (x.strip() for x in labels.split(","))):
                if label not in has | TARGET_LABELS | {"le"}:
                    errors.append(f"groups by {label!r}, which no queried metric has")
    for match in re.finditer(r"\b(tapedeck_[a-zA-Z0-9_]+_bucket)\b", expr):
        head = expr[: match.start()]
        if "histogram_quantile" not in head or not re.search(r"by \([^)]*\ble\b[^)]*\)", head):
            errors.append(f"{match.group(1)} outside histogram_quantile(... by (..., le) ...)")
    return errors


def test_every_metric_name_is_declared_with_its_suffix() -> None:
    errors = [f"{where}: {e}" for where, expr in all_exprs() for e in name_errors(expr)]
    assert not errors, "\n".join(errors)


def test_every_label_is_one_the_metric_has() -> None:
    errors = [f"{where}: {e}" for where, expr in all_exprs() for e in label_errors(expr)]
    assert not errors, "\n".join(errors)


def test_the_metric_checks_reject_mistakes() -> None:
    """Not vacuous: a misspelt name, a wrong suffix, a label the metric lacks fail."""
    assert name_errors("rate(tapedeck_consumed_events_total[5m])")
    assert name_errors("tapedeck_consumer_lag_total")  # a gauge has no _total
    assert name_errors("rate(tapedeck_stage_outcomes[5m])")  # a counter without _total
    assert name_errors("tapedeck_stage_duration_seconds")  # a histogram without suffix
    assert not name_errors("rate(tapedeck_stage_duration_seconds_count[5m])")
    assert label_errors('tapedeck_consumer_lag{consumergroup="x"}')
    assert label_errors("sum by (consumergroup) (tapedeck_consumer_lag)")
    assert label_errors("rate(tapedeck_stage_duration_seconds_bucket[5m])")
    assert label_errors(
        "histogram_quantile(0.5, sum by (stage) (rate(tapedeck_stage_duration_seconds_bucket[5m])))"
    )
    assert not label_errors('sum by (namespace, group) (tapedeck_consumer_lag{group="x"})')
    assert series_names(
        'sum by (a) (rate(x_total{b="c"}[5m])) / on (a) time() - y offset 5m unless z'
    ) == {"x_total", "y", "z"}


# ---------------------------------------------------------------- promtool


@pytest.fixture(scope="module")
def promtool() -> ModuleType:
    """scripts/promtool.py, its binary built: a failed build fails the test with go's
    output (these checks are never skipped)."""
    script = load_script(ROOT / "scripts" / "promtool.py", "tapedeck_scripts_promtool")
    try:
        script.promtool_bin()
    except script.stack.StackError as exc:
        pytest.fail(f"promtool {script.PROMTOOL_VERSION} could not be built: {exc}")
    return script


def promtool_ok(promtool: ModuleType, *args: str | Path) -> str:
    proc = promtool.run(*args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{output}"
    return output


def test_promtool_checks_the_rules(promtool: ModuleType) -> None:
    output = promtool_ok(promtool, "check", "rules", RULES)
    count = sum(len(g["rules"]) for g in rule_file()["groups"])
    assert f"SUCCESS: {count} rules found" in output, output


def test_promtool_unit_tests_of_the_alerts(promtool: ModuleType) -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert {
        "TapedeckConsumerLagGrowing",
        "TapedeckConsumerNoProgress",
        "TapedeckDeadLettersGrowing",
    } <= tested
    assert tested <= {r["alert"] for r in alerts()}, "a test names an alert that does not exist"
    assert "SUCCESS" in promtool_ok(promtool, "test", "rules", RULE_TESTS)


def test_promtool_parses_every_dashboard_query(promtool: ModuleType, tmp_path: Path) -> None:
    """Each query as a recording rule of a scratch rule file: promtool's PromQL parser."""
    exprs = list(panel_exprs())
    rules = [
        {"record": f"dashboard_query_{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboard-queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = promtool_ok(promtool, "check", "rules", path)
    assert f"SUCCESS: {len(rules)} rules found" in output, output


def test_promtool_rejects_a_broken_rule(promtool: ModuleType, tmp_path: Path) -> None:
    """Not vacuous: promtool fails a rule file with an expression that does not parse."""
    path = tmp_path / "broken.rules.yaml"
    rule = {"alert": "Broken", "expr": "sum(rate(tapedeck_dead_letters_total[5m])"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [rule]}]}))
    assert promtool.run("check", "rules", path).returncode != 0


# ---------------------------------------------------------------- the dashboard


def test_the_dashboard_is_importable_and_complete() -> None:
    doc = board()
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
    (source,) = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
    # Named as the placeholder, so the panels' "${DS_PROMETHEUS}" resolves both when the
    # JSON is imported and when Grafana's sidecar provisions it (no import step there).
    assert source["name"] == "DS_PROMETHEUS" and source["query"] == "prometheus"
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in doc["panels"]:
        assert panel.get("title"), f"panel {panel['id']} has no title"
    for panel in data_panels():
        where = f"panel {panel['title']!r}"
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], f"{where} has no targets"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{where}: refIds repeat"
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == DATASOURCE, where


def test_the_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in board()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_draws_every_metric() -> None:
    used = {family(n) for _, e in panel_exprs() for n in METRIC_NAME.findall(e)}
    assert set(metrics.NAMES) <= used, f"no panel for {sorted(set(metrics.NAMES) - used)}"
    exprs = " ".join(e for _, e in panel_exprs())
    for quantile in ("0.5", "0.95"):
        assert f"histogram_quantile({quantile}, " in exprs


# ---------------------------------------------------------------- the rules


def test_rule_groups_and_alerts_are_named_once() -> None:
    groups = [g["name"] for g in rule_file()["groups"]]
    assert len(groups) == len(set(groups)), groups
    names = [r["alert"] for r in alerts()]
    assert len(names) == len(set(names)), names


def test_every_alert_has_severity_summary_and_a_runbook_hint() -> None:
    for rule in alerts():
        where = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, where
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), where
        # What to look at: a `tapedeck ...` command or a console page.
        assert re.search(r"`tapedeck [a-z]|/console/", notes["runbook"]), where


def test_the_alerts_watch_what_operators_need() -> None:
    watched: dict[str, set[str]] = {}
    for rule in alerts():
        for name in METRIC_NAME.findall(rule["expr"]):
            watched.setdefault(family(name) or name, set()).add(rule["alert"])
    for metric in (
        "tapedeck_consumer_lag",  # lag growing; no progress while there is lag
        "tapedeck_events_consumed_total",
        "tapedeck_consumer_stalled",
        "tapedeck_dead_letters_total",
        "tapedeck_stage_outcomes_total",
        "tapedeck_provider_requests_total",
        "tapedeck_http_requests_total",
        "tapedeck_webhook_deliveries_total",
    ):
        assert metric in watched, f"no alert on {metric}"
    assert len(watched["tapedeck_consumer_lag"]) >= 2


# ---------------------------------------------------------------- the Kubernetes copies


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_script(ROOT / "scripts" / "gen_monitoring.py", "tapedeck_gen_monitoring")


def test_the_k8s_component_copies_are_up_to_date(gen: ModuleType) -> None:
    for path, text in gen.render().items():
        assert path.read_text() == text, f"{path.name} is stale: run scripts/gen_monitoring.py"


def test_gen_monitoring_refuses_a_rule_file_it_cannot_wrap(gen: ModuleType) -> None:
    with pytest.raises(ValueError):
        gen.rules_body("# a comment\nrules: []\n")
    assert gen.rules_body("# c\n\ngroups:\n  - name: x\n\n    rules: []\n") == (
        "  groups:\n    - name: x\n\n      rules: []\n"
    )


def test_prod_renders_the_sources(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    (dashboard,) = [
        d for d in of_kind(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]
    ]
    (body,) = dashboard["data"].values()
    assert json.loads(body) == board()
    (rule,) = of_kind(docs, "PrometheusRule")
    spec: Any = rule["spec"]
    assert spec == rule_file()

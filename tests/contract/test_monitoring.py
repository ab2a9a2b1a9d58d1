"""The alert rules and the Grafana dashboard in deploy/monitoring name only metrics and labels
the services export (shared/metrics.py) or Strimzi's Kafka Exporter provides; every alert is
documented and unit-tested; every panel queries Prometheus. (promtool itself runs in
tests/contract/test_deploy_tools.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "whistle.rules.yml"
RULE_TESTS = MONITORING / "whistle.rules.test.yml"
DASHBOARD = MONITORING / "grafana" / "whistle-dashboard.json"

# Strimzi's Kafka Exporter (kafka_exporter): the metrics and labels the rules may use.
KAFKA_EXPORTER = {
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_current_offset": {"consumergroup", "topic", "partition"},
    "kafka_topic_partition_current_offset": {"topic", "partition"},
}
# Labels Prometheus itself adds to every scraped series.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "container"}
METRIC = re.compile(r"\b((?:whistle|kafka)_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b((?:whistle|kafka)_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def exported() -> dict[str, set[str]]:
    """Every sample name the services export, with its label names."""
    names: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        labels = set(collector._labelnames)
        for family in collector.describe():
            suffixes = {
                "counter": ["_total", "_created"],
                "histogram": ["_bucket", "_sum", "_count", "_created"],
                "gauge": [""],
            }[family.type]
            for suffix in suffixes:
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return {**names, **{k: set(v) for k, v in KAFKA_EXPORTER.items()}}


def problems(exprs: Iterable[str]) -> list[str]:
    """Unknown metrics, unknown labels in selectors, and grouping labels no metric of the
    expression has."""
    known = exported()
    found: list[str] = []
    for expr in exprs:
        used = set(METRIC.findall(expr))
        found += [f"unknown metric {m} in {expr!r}" for m in sorted(used - known.keys())]
        for name, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(matchers):
                if name in known and label not in known[name] | TARGET_LABELS:
                    found.append(f"{name} has no label {label!r} ({expr!r})")
        if not used <= known.keys():
            continue  # reported above; its labels are unknown
        available = set().union(*(known[m] for m in used)) | TARGET_LABELS
        for group in GROUPING.findall(expr):
            for label in (g.strip() for g in group.split(",") if g.strip()):
                if label not in available:
                    found.append(f"grouping by {label!r}, which {sorted(used)} lack ({expr!r})")
    return found


def load_rules(path: Path = RULES) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in load_rules() if "alert" in r]


def panels() -> list[dict[str, Any]]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [p for p in doc["panels"] if p["type"] != "row"]


def test_rules_parse_and_every_alert_is_documented():
    rules = alerts()
    assert len(rules) >= 10
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        summary = rule["annotations"]["summary"]
        assert re.search(r"[\u4e00-\u9fff]", summary) and " — " in summary, (
            f"{rule['alert']}: summary in Chinese, then English"
        )
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_rules_name_only_exported_metrics_and_labels():
    assert problems(r["expr"] for r in load_rules()) == []


def test_the_check_catches_an_unknown_metric_or_label(tmp_path: Path):
    """Negative control: the same check on a rule file with a typo reports it."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    doc["groups"][0]["rules"].append(
        {"alert": "Typo", "expr": "max by (service) (whistle_outbox_backlogg) > 1"}
    )
    doc["groups"][0]["rules"].append(
        {"alert": "Label", "expr": 'sum(whistle_deliveries_total{outcomes="dead"}) > 0'}
    )
    doc["groups"][0]["rules"].append(
        {"alert": "Group", "expr": "sum by (channel) (whistle_outbox_backlog) > 0"}
    )
    bad = tmp_path / "bad.rules.yml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    found = problems(r["expr"] for r in load_rules(bad))
    assert len(found) == 3, found
    assert "unknown metric whistle_outbox_backlogg" in found[0]
    assert "no label 'outcomes'" in found[1]
    assert "grouping by 'channel'" in found[2]


def test_the_issue_s_signals_are_alerted():
    exprs = " ".join(r["expr"] for r in alerts())
    for metric in (
        "kafka_consumergroup_lag",  # lag
        "whistle_outbox_oldest_unsent_seconds",  # outbox age
        'outcome="dead_lettered"',  # dead letters
        "whistle_clocks_overdue_total",  # overdue counts
        "whistle_deliveries_total",  # delivery failures
    ):
        assert metric in exprs


def test_every_alert_has_a_unit_test_that_fires_it():
    doc = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert doc["rule_files"] == [RULES.name]
    cases = [c for t in doc["tests"] for c in t["alert_rule_test"]]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {r["alert"] for r in alerts()}
    assert fired == names, f"alerts without a firing test: {sorted(names - fired)}"
    assert len(silent) >= len(names) - 2, "most alerts are also shown silent below threshold"
    series = " ".join(s["series"] for t in doc["tests"] for s in t["input_series"])
    assert problems([series]) == []


def test_dashboard_panels_query_prometheus_with_unique_ids():
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert [i["name"] for i in doc["__inputs"]] == ["DS_PROMETHEUS"]
    assert doc["uid"] == "whistle-operations"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    assert len(panels()) >= 10
    for panel in panels():
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${DS_PROMETHEUS}"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))


def test_dashboard_names_only_exported_metrics_and_covers_the_signals():
    exprs = [t["expr"] for p in panels() for t in p["targets"]]
    variable = doc_variable_query()
    assert problems([*exprs, variable]) == []
    joined = " ".join(exprs)
    for metric in (
        "kafka_consumergroup_lag",
        "whistle_consumer_lag_seconds",
        "whistle_outbox_oldest_unsent_seconds",
        "whistle_outbox_backlog",
        "whistle_outbox_parked_rows",
        'outcome="dead_lettered"',
        "whistle_events_parked_total",
        "whistle_clocks_overdue_total",
        "whistle_deliveries_total",
    ):
        assert metric in joined


# Prometheus scrapes every 30-60 s in a typical setup; rate() and increase() need at least two
# samples in their window, and Prometheus advises a window of 4 scrape intervals or more.
SLOWEST_SCRAPE_SECONDS = 60
RANGE = re.compile(r"\[(\d+)([smhd])\]")


def short_ranges(exprs: Iterable[str]) -> list[str]:
    """Range selectors shorter than 4 scrape intervals: at a 60 s scrape an increase(...[1m])
    holds one sample or none, so its panel or alert stays empty."""
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return [
        f"[{n}{u}] in {expr!r}"
        for expr in exprs
        for n, u in RANGE.findall(expr)
        if int(n) * unit[u] < 4 * SLOWEST_SCRAPE_SECONDS
    ]


def test_every_range_spans_several_scrapes():
    exprs = [t["expr"] for p in panels() for t in p["targets"]]
    assert short_ranges([*exprs, *(r["expr"] for r in load_rules())]) == []
    assert short_ranges(["sum(increase(whistle_timers_fired_total[1m]))"])  # the check can fail


def doc_variable_query() -> str:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [variable] = doc["templating"]["list"]
    return variable["query"]["query"]


@pytest.mark.parametrize(
    "metric", ["whistle_outbox_oldest_unsent_seconds", "whistle_clocks_overdue_total"]
)
def test_the_new_metrics_are_exported(metric):
    assert metric in exported()

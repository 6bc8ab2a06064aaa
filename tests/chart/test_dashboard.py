"""The chart's Grafana dashboard: a ConfigMap the Grafana sidecar picks up, holding
dashboards/dask-aws.json, whose PromQL reads only metrics (and labels of them) that
dask_aws.controller.metrics really exports."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import dask_aws.controller.metrics as operator_metrics
from tests.chart.helpers import CHART, find, render

DASHBOARD_KEY = "dask-aws.json"
METRIC = re.compile(r"\bdask_aws_[A-Za-z0-9_]*")
# A metric name and its {...} selector.
SELECTOR = re.compile(r"\b(dask_aws_[A-Za-z0-9_]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
# by (...), without (...), on (...), ignoring (...), group_left/right (...)
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\(\s*(dask_aws_[A-Za-z0-9_]*)\s*,\s*(\w+)\s*\)")

# Series names by family type (the exposition format), beside the ones samples show.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
# Labels a series has beyond the metric's own: le on histogram buckets, quantile on summaries.
_EXTRA_LABELS = {"_bucket": {"le"}}


def exported_series() -> dict[str, set[str]]:
    """Each dask_aws_ series name the operator's registry exports, with its label names."""
    labelnames = {
        metric.describe()[0].name: set(metric._labelnames)
        for metric in vars(operator_metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    series: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("dask_aws_"):
            continue
        labels = labelnames.get(family.name, set())
        for suffix in _SUFFIXES.get(family.type, ("",)):
            series[family.name + suffix] = labels | _EXTRA_LABELS.get(suffix, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(labels, sample.labels)
    return series


def _configmaps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in find(docs, "ConfigMap") if DASHBOARD_KEY in d.get("data", {})]


def _expressions(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(k8s: Any) -> None:
    (configmap,) = _configmaps(render(k8s))
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "dask-aws"
    assert "annotations" not in configmap["metadata"]
    dashboard = json.loads(configmap["data"][DASHBOARD_KEY])
    # The very file in the chart, for importing by hand.
    assert dashboard == json.loads((CHART / "dashboards" / DASHBOARD_KEY).read_text())
    assert dashboard["uid"] == "dask-aws" and dashboard["title"] == "dask-aws"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["definition"] == (
        "label_values(dask_aws_cluster_workers, namespace)"
    )

    panels = dashboard["panels"]
    assert panels
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel.get("title"), panel
        assert panel.get("targets"), f"{panel['title']}: no targets"
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]


def test_dashboard_label_namespace_and_annotations_are_configurable(k8s: Any) -> None:
    docs = render(
        k8s,
        "--set", "grafana.dashboard.label=dashboards.example.com/grafana",
        "--set", "grafana.dashboard.labelValue=dask",
        "--set", "grafana.dashboard.namespace=monitoring",
        "--set", "grafana.dashboard.annotations.grafana_folder=Dask",
    )  # fmt: skip
    (configmap,) = _configmaps(docs)
    metadata = configmap["metadata"]
    assert metadata["labels"]["dashboards.example.com/grafana"] == "dask"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["namespace"] == "monitoring"
    assert metadata["annotations"] == {"grafana_folder": "Dask"}
    # An unquoted number from --set is still a string label value.
    (numbered,) = _configmaps(render(k8s, "--set", "grafana.dashboard.labelValue=2"))
    assert numbered["metadata"]["labels"]["grafana_dashboard"] == "2"


def test_dashboard_disabled_renders_no_configmap(k8s: Any) -> None:
    docs = render(k8s, "--set", "grafana.dashboard.enabled=false")
    assert _configmaps(docs) == []
    assert find(docs, "ConfigMap") == []


def test_dashboard_queries_read_only_exported_metrics_and_labels(k8s: Any) -> None:
    series = exported_series()
    # The metrics the issue names are all there (the registry really was read).
    for name in (
        "dask_aws_clusters",
        "dask_aws_cluster_workers",
        "dask_aws_cluster_hourly_usd",
        "dask_aws_cluster_accrued_usd",
        "dask_aws_namespace_hourly_usd",
        "dask_aws_aws_calls_total",
        "dask_aws_reconciles_total",
        "dask_aws_reconcile_duration_seconds_bucket",
    ):
        assert name in series, name
    assert series["dask_aws_reconcile_duration_seconds_bucket"] == {"kind", "le"}

    (configmap,) = _configmaps(render(k8s))
    dashboard = json.loads(configmap["data"][DASHBOARD_KEY])
    used: set[str] = set()
    problems: list[str] = []
    for title, target in _expressions(dashboard):
        expr = target["expr"]
        names = set(METRIC.findall(expr))
        if not names:
            problems.append(f"{title}: no dask_aws_ metric in {expr!r}")
            continue
        unknown = names - series.keys()
        if unknown:
            problems.append(f"{title}: {sorted(unknown)} not exported ({expr!r})")
            continue
        used |= names
        for name, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(matchers):
                if label not in series[name]:
                    problems.append(f"{title}: {name} has no label {label!r}")
        # Grouping labels must be labels of every metric the expression reads.
        common = set.intersection(*(series[n] for n in names))
        for group in GROUPING.findall(expr):
            for label in filter(None, (g.strip() for g in group.split(","))):
                if label not in common:
                    problems.append(f"{title}: grouping label {label!r} not on {sorted(names)}")
        for label in LEGEND.findall(target.get("legendFormat", "")):
            if label not in common:
                problems.append(f"{title}: legend label {label!r} not on {sorted(names)}")
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        for name, label in LABEL_VALUES.findall(text + " " + variable.get("definition", "")):
            if label not in series.get(name, set()):
                problems.append(f"variable {variable['name']}: {name} has no label {label!r}")
    assert problems == []
    # Every metric of the issue has a panel.
    assert {
        "dask_aws_clusters",
        "dask_aws_cluster_workers",
        "dask_aws_namespace_hourly_usd",
        "dask_aws_cluster_hourly_usd",
        "dask_aws_cluster_accrued_usd",
        "dask_aws_aws_calls_total",
        "dask_aws_reconciles_total",
        "dask_aws_reconcile_duration_seconds_bucket",
    } <= used


def test_the_checks_catch_a_renamed_metric_and_a_wrong_label() -> None:
    series = exported_series()
    assert "dask_aws_cluster_worker" not in series  # a typo is not an exported series
    assert "dask_aws_clusters_total" not in series  # a gauge has no _total
    assert "cluster" not in series["dask_aws_cluster_workers"]
    assert series["dask_aws_cluster_workers"] == {"namespace", "name", "group", "state"}
    assert series["dask_aws_aws_calls_total"] == {"operation", "outcome"}
    assert SELECTOR.findall('x{a="1"} + dask_aws_y{b=~"2", c!="3"}') == [
        ("dask_aws_y", 'b=~"2", c!="3"')
    ]
    assert MATCHER.findall('b=~"2", c!="3"') == ["b", "c"]
    assert GROUPING.findall("sum by (le, kind) (x) / on(kind) group_left() y") == [
        "le, kind",
        "kind",
        "",
    ]

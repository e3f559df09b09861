"""The Grafana dashboards (helm/kascade/dashboards/*.json) only query metrics that exist.

Every PromQL expression (panel targets and template-variable queries) is reduced to
its metric names, and each must be a series the operator exports: read from
``prometheus_client.REGISTRY`` after importing ``kascade.metrics``, with the
exposition suffixes each metric type really gets (a prometheus-client Counter
``kascade_x_total`` is described as ``kascade_x`` and exported as ``kascade_x_total``;
a Histogram as ``_bucket``/``_sum``/``_count``), or a standard ``process_*`` metric of
the client's process collector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import kascade.metrics  # noqa: F401  (registers the operator's metrics)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "helm" / "kascade" / "dashboards").glob("*.json"))

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
}
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported_series() -> set[str]:
    """Series names the registry exports (described metrics, with their type's suffixes)."""
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):
        describe = getattr(collector, "describe", None)
        families = list(describe()) if describe else []
        if not families:
            families = list(collector.collect())
        for family in families:
            for suffix in SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
            names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (or a Grafana label_values() query)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings (label values, regexes)
    text = re.sub(r"\{[^{}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range/subquery durations
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # grouping label lists
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "", text)  # Grafana variables
    lv = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)?.*\)\s*", text)
    if lv:
        return {lv.group(1)} if lv.group(1) else set()
    names = set()
    for match in IDENT.finditer(text):
        word = match.group(0)
        after = text[match.end() :].lstrip()
        if after.startswith("("):
            continue  # a function or aggregation
        if word.lower() in PROMQL_WORDS or re.fullmatch(r"[0-9].*", word):
            continue
        names.add(word)
    return names


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or [])

    for panel in panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                yield f"panel {panel.get('title')!r}", target["expr"]
    for var in (dashboard.get("templating") or {}).get("list") or []:
        query = var.get("query")
        if var.get("type") == "query":
            text = query.get("query") if isinstance(query, dict) else query
            yield f"variable {var['name']!r}", str(text)


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, task) (rate(kascade_task_duration_seconds_bucket"
        '{namespace=~"$namespace",task=~"a|b"}[$__rate_interval]))) / on (pipeline) '
        "group_left clamp_min(sum(kascade_active_runs), 1)"
    )
    assert metric_names(expr) == {"kascade_task_duration_seconds_bucket", "kascade_active_runs"}
    assert metric_names('label_values(kascade_runs_started_total{a="b"}, pipeline)') == {
        "kascade_runs_started_total"
    }
    assert metric_names("process_resident_memory_bytes") == {"process_resident_memory_bytes"}


def test_registry_suffix_rules() -> None:
    series = exported_series()
    # Counter declared as kascade_runs_started_total: exported as <name>_total, not doubled.
    assert "kascade_runs_started_total" in series
    assert "kascade_runs_started_total_total" not in series
    assert "kascade_run_duration_seconds_bucket" in series
    assert "kascade_run_duration_seconds" not in series  # a histogram has no bare series
    assert "kascade_active_runs" in series


def test_there_are_dashboards() -> None:
    assert len(DASHBOARDS) >= 1


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_queries_use_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard.get("uid") and dashboard.get("title")
    series = exported_series()
    seen: set[str] = set()
    problems = []
    for where, expr in expressions(dashboard):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric in {expr!r}")
        for name in names:
            seen.add(name)
            if name not in series:
                problems.append(f"{where}: {name} is not exported by kascade.metrics ({expr})")
    assert not problems, "\n".join(problems)
    assert any(name.startswith("kascade_") for name in seen)


def test_dashboards_cover_the_issue() -> None:
    """Outcomes, success rate, durations, SLA, retries, queue/pools, delay, operator health."""
    used: set[str] = set()
    for path in DASHBOARDS:
        for _, expr in expressions(json.loads(path.read_text())):
            used |= metric_names(expr)
    for name in (
        "kascade_runs_finished_total",
        "kascade_task_duration_seconds_bucket",
        "kascade_sla_misses_total",
        "kascade_time_to_sla_seconds",
        "kascade_task_retries_total",
        "kascade_queued_tasks",
        "kascade_pool_slots_used",
        "kascade_task_scheduling_delay_seconds_bucket",
        "kascade_reconcile_errors_total",
        "kascade_api_writes_total",
        "process_resident_memory_bytes",
    ):
        assert name in used, f"no dashboard panel shows {name}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets") or []:
            assert target["datasource"]["uid"] == "${datasource}"

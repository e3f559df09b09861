"""The Grafana dashboards count right: a real Prometheus scrapes a real operator running pipelines.

A `kascade operator` runs a few pipelines (successes, a retry, failures with an SLA miss
and a refused notification, tasks queued behind a one-slot Pool, scheduled runs); the
Debian ``prometheus`` server (hack/cluster/deps.sh installs it) scrapes its ``/metrics``
every second. Then every query of both dashboards is evaluated through Prometheus' HTTP
API over the whole test, the way a panel covering it would, and the counts are compared
with what the API server says happened (PipelineRuns and TaskRuns). Before series were
created at zero, a counter's first event was invisible to ``increase()``: the panels
showed a fraction of the runs (issue 9, section 6).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import kubeconfig_path, wait_until
from .operator_support import ROOT, Kascade, free_port, operator_namespace, pipeline

pytestmark = pytest.mark.e2e

DASHBOARDS = sorted((ROOT / "helm" / "kascade" / "dashboards").glob("*.json"))
JOB = "kascade-metrics"


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr, time=f"{at:.3f}")["result"])

    def total(self, expr: str, at: float) -> float | None:
        result = self.query(expr, at)
        return sum(float(r["value"][1]) for r in result) if result else None

    def latest_scrape(self) -> float:
        targets = self.get("/api/v1/targets")["activeTargets"]
        return max(_ts(t.get("lastScrape")) for t in targets)


def _ts(value: str | None) -> float:
    from datetime import datetime

    if not value or value.startswith("0001"):
        return 0.0
    head, _, frac = value.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(head + "+00:00").timestamp()
    return stamp + float("0." + (frac.split("+")[0].split("-")[0] or "0"))


def start_prometheus(tmp: Path, metrics_port: int) -> Prometheus:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed: hack/cluster/deps.sh installs Debian's")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc)

    def up() -> bool:
        try:
            return prom.total(f'up{{job="{JOB}"}}', time.time()) == 1.0
        except (OSError, urllib.error.URLError, AssertionError):
            return False

    wait_until(up, timeout=60, interval=0.5, what="prometheus scraping the operator")
    return prom


@dataclass
class Scenario:
    kas: Kascade
    prom: Prometheus
    start: float
    end: float
    runs: list[dict[str, Any]]
    taskruns: list[dict[str, Any]]


PIPELINES = [
    # Two tasks in a one-slot pool: one waits (queue depth), both succeed.
    pipeline(
        "steady",
        [
            {"name": "a", "command": ["sleep", "1"], "pool": "small"},
            {"name": "b", "command": ["sleep", "1"], "pool": "small"},
        ],
    ),
    # Fails its first attempt, succeeds on the retry.
    pipeline(
        "flaky",
        [
            {
                "name": "try",
                "command": ["sh", "-c", '[ "$KASCADE_TRY_NUMBER" -ge 2 ]'],
                "retries": 1,
                "retryDelay": "1s",
            }
        ],
    ),
    # Fails; misses its SLA; its failure notification is refused (loopback).
    pipeline(
        "broken",
        [{"name": "x", "command": ["sh", "-c", "sleep 2; exit 3"], "sla": "1s"}],
        notifications=[
            {"name": "page", "events": ["failure"], "webhook": {"url": "http://127.0.0.1:9/"}}
        ],
    ),
]
RUNS = {"steady": 3, "flaky": 2, "broken": 2}


@pytest.fixture(scope="module")
def scenario(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("dashboards")
    with operator_namespace(cluster, kubeconfig_path(), "dash", tmp / "operator.log") as kas:
        prom = start_prometheus(tmp, kas.operator.metrics_port)
        try:
            start = time.time()
            kas.custom.create_namespaced_custom_object(
                "kascade.io",
                "v1alpha1",
                kas.ns,
                "pools",
                {"apiVersion": "kascade.io/v1alpha1", "kind": "Pool",
                 "metadata": {"name": "small"}, "spec": {"slots": 1}},
            )  # fmt: skip
            for doc in PIPELINES:
                kas.apply_pipeline(doc)
            ticker = pipeline("ticker", [{"name": "tick", "command": ["true"]}], schedule="10s")
            kas.apply_pipeline(ticker)
            # The series exist (at zero) and Prometheus has them before anything runs. (What
            # happens within one scrape of a Pipeline's creation cannot be counted by
            # increase(): there is no earlier sample. Real scrapes are 30 s apart, real
            # pipelines exist long before their runs.)
            for name in ("broken", "ticker"):
                selector = f'namespace="{kas.ns}",pipeline="{name}"'
                wait_until(
                    lambda s=selector: (
                        prom.total(f"kascade_runs_started_total{{{s}}}", time.time()) == 0.0
                    ),
                    timeout=60,
                    what="the zero series scraped",
                )
            kas.apply_pipeline(ticker, suspend=False)
            names = [kas.create_run(p) for p, n in RUNS.items() for _ in range(n)]
            for name in names:
                kas.wait_run(name, timeout=180)
            kas.apply_pipeline(ticker, suspend=True)  # stop scheduling; let the last run end

            def all_done() -> bool:
                runs = kas.list("pipelineruns")
                return all(
                    (r.get("status") or {}).get("phase") in ("success", "failed") for r in runs
                )

            wait_until(all_done, timeout=120, what="every run to end")
            time.sleep(3)  # the last status changes reach /metrics
            scraped_after = time.time()
            wait_until(lambda: prom.latest_scrape() > scraped_after, timeout=30, what="a scrape")
            end = prom.latest_scrape()
            yield Scenario(kas, prom, start, end, kas.list("pipelineruns"), kas.list("taskruns"))
        finally:
            prom.proc.terminate()
            prom.proc.wait(timeout=30)


def substitute(expr: str, ns: str, window: int) -> str:
    for name, value in (
        ("$namespace", ns),
        ("$pipeline", ".*"),
        ("$task", ".*"),
        ("$job", JOB),
        ("$__range", f"{window}s"),
        ("$__rate_interval", f"{window}s"),
    ):
        expr = expr.replace(name, value)
    return expr


def panels(path: Path) -> Iterator[tuple[str, str]]:
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel.get("targets") or []:
            yield panel["title"], target["expr"]


def evaluate_all(s: Scenario) -> dict[str, list[dict[str, Any]]]:
    window = math.ceil(s.end - s.start) + 2
    results: dict[str, list[dict[str, Any]]] = {}
    for path in DASHBOARDS:
        for title, expr in panels(path):
            results[f"{title} :: {expr}"] = s.prom.query(substitute(expr, s.kas.ns, window), s.end)
    return results


def by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in result:
        out[r["metric"].get(label, "")] = out.get(r["metric"].get(label, ""), 0) + float(
            r["value"][1]
        )
    return out


def find(results: dict[str, list[dict[str, Any]]], title: str, part: str = "") -> Any:
    matches = [v for k, v in results.items() if k.startswith(title + " :: ") and part in k]
    assert len(matches) == 1, (title, part, list(results))
    return matches[0]


def exactly(expected: Any) -> Any:
    """A count from Prometheus: the true integer, give or take the sub-millisecond gap
    between the last scrape and the evaluation time that increase() extrapolates over."""
    return pytest.approx(expected, rel=1e-3)


def nonzero(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if abs(v) > 1e-9}


def truth(s: Scenario) -> dict[str, Any]:
    """What happened, from the API server."""
    runs_by_state: Counter[str] = Counter()
    per_pipeline: Counter[tuple[str, str]] = Counter()
    triggers: Counter[str] = Counter()
    for run in s.runs:
        phase = run["status"]["phase"]
        runs_by_state[phase] += 1
        per_pipeline[(run["spec"]["pipelineRef"]["name"], phase)] += 1
        triggers[run["spec"]["trigger"]["kind"]] += 1
    attempts: Counter[str] = Counter()
    retries = 0
    for tr in s.taskruns:
        status = tr.get("status") or {}
        tried = len(status.get("attempts") or [])
        ok = 1 if status.get("state") == "success" else 0
        attempts["success"] += ok
        attempts["failed"] += tried - ok
        retries += tried - 1  # every attempt but the last was retried
    return {
        "runs": runs_by_state,
        "per_pipeline": per_pipeline,
        "triggers": triggers,
        "attempts": attempts,
        "retries": retries,
    }


def test_every_dashboard_query_evaluates(scenario: Scenario) -> None:
    results = evaluate_all(scenario)
    # Empty only where nothing can be known: no run is active at the end (time to SLA).
    may_be_empty = {"Time to SLA"}
    empty = [k for k, v in results.items() if not v and k.split(" :: ")[0] not in may_be_empty]
    assert not empty, empty
    nan = [k for k, v in results.items() for r in v if r["value"][1] in ("NaN", "+Inf", "-Inf")]
    assert not nan, nan


def test_run_counts_match_the_runs_made(scenario: Scenario) -> None:
    results = evaluate_all(scenario)
    real = truth(scenario)
    assert real["runs"]["success"] >= 5 and real["runs"]["failed"] == 2, real
    finished = by(find(results, "Runs finished in range"), "state")
    assert finished == exactly(
        {"success": real["runs"]["success"], "failed": real["runs"]["failed"]}
    )
    per = find(results, "Runs finished per pipeline and state")
    counted = {
        f"{r['metric']['pipeline']}/{r['metric']['state']}": float(r["value"][1]) for r in per
    }
    expected = {f"{p}/{state}": n for (p, state), n in real["per_pipeline"].items()}
    assert nonzero(counted) == exactly(expected)
    started = by(find(results, "Runs started by trigger"), "trigger")
    assert nonzero(started) == exactly(dict(real["triggers"]))
    rate = find(results, "Success rate in range")[0]
    total = sum(real["runs"].values())
    assert float(rate["value"][1]) == pytest.approx(real["runs"]["success"] / total)


def test_task_counts_match_the_attempts_made(scenario: Scenario) -> None:
    results = evaluate_all(scenario)
    real = truth(scenario)
    window = math.ceil(scenario.end - scenario.start) + 2
    per_second = by(find(results, "Task attempts by outcome"), "state")
    attempts = {k: v * window for k, v in per_second.items()}
    assert attempts == exactly(dict(real["attempts"]))
    retries = sum(by(find(results, "Retries"), "task").values())
    assert real["retries"] == 2 and retries == exactly(2)
    reasons = by(find(results, "Failed attempts by reason"), "reason")
    assert nonzero(reasons) == exactly({"Error": real["attempts"]["failed"]})
    sla = by(find(results, "SLA misses in range"), "pipeline")
    assert nonzero(sla) == exactly({"broken": 2})
    notes = by(find(results, "Notifications"), "outcome")
    assert nonzero(notes) == exactly({"refused": 2})


def test_operator_panels_show_values_not_gaps(scenario: Scenario) -> None:
    results = evaluate_all(scenario)
    queue = find(results, "Queue depth (ready tasks waiting for a slot)")
    pools = by(queue, "pool")
    assert pools.get("small") == 0.0 and pools.get("default_pool") is not None, pools
    # While the steady runs were queued behind the one-slot pool, it was not zero.
    peak = scenario.prom.total(
        f'max_over_time(kascade_queued_tasks{{namespace="{scenario.kas.ns}",pool="small"}}'
        f"[{math.ceil(scenario.end - scenario.start) + 2}s])",
        scenario.end,
    )
    assert peak is not None and peak >= 1
    assert by(find(results, "Leader"), "pod") == {"": 1.0}
    errors = sum(by(find(results, "Reconcile errors"), "kind").values())
    assert errors == 0.0
    delays = find(results, "Run scheduling delay (schedule -> run created)", "0.5")
    assert delays and 0 <= float(delays[0]["value"][1]) < 60


def test_template_variables_list_what_ran(scenario: Scenario) -> None:
    ns = scenario.kas.ns
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            query = (
                (var.get("query") or {}).get("query", "")
                if isinstance(var.get("query"), dict)
                else ""
            )
            if not query.startswith("label_values("):
                continue
            inner = query[len("label_values(") : -1]
            selector, _, label = inner.rpartition(",")
            selector = substitute(selector.strip(), ns, 60)
            values = scenario.prom.get(
                f"/api/v1/label/{label.strip()}/values", **{"match[]": selector}
            )
            if label.strip() == "namespace":
                assert ns in values, (path.name, var["name"], values)
            elif label.strip() == "pipeline":
                assert {"steady", "flaky", "broken", "ticker"} <= set(values), values
            elif label.strip() == "task":
                assert {"a", "b", "try", "x", "tick"} <= set(values), values
            elif label.strip() == "job":
                assert JOB in values

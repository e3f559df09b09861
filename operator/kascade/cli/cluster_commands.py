"""Commands that talk to a cluster: operator, trigger, backfill, clear, mark.

clear and mark change what the operator observes (TaskRuns and the run's task
summary), then ask it to rebuild the run (the ``kascade.io/reload`` annotation):
the engine's restore turns the new observations into the right next steps, so
there is no second code path for "re-run from here".
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import click

RELOAD = "kascade.io/reload"
TERMINAL = ("success", "failed")


def _kube(kubeconfig: str | None) -> Any:
    from kascade.kube.client import Kube, load_config

    load_config(kubeconfig)
    return Kube()


def _now() -> datetime:
    return datetime.now(UTC)


def _date(value: str, option: str = "--logical-date") -> datetime:
    """An ISO date(-time) given on the command line; UTC unless it has an offset."""
    from kascade.engine.run_dates import read_date

    try:
        return read_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _params(pairs: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    from kascade.api.pipeline import Param
    from kascade.engine.params import coerce_cli_value

    declared = spec.get("params") or {}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        param = Param.model_validate(declared[key]) if key in declared else None
        out[key] = coerce_cli_value(param, raw)
    return out


def _pipeline(kube: Any, namespace: str, name: str) -> tuple[str, dict[str, Any]]:
    """A Pipeline by name, or by the dag_id it was compiled from (``process_customer_A``)."""
    from kascade.sdk.naming import pipeline_name

    for candidate in dict.fromkeys((name, pipeline_name(name))):
        body = kube.get("pipelines", namespace, candidate)
        if body is not None:
            return candidate, body
    raise click.ClickException(f"pipeline {namespace}/{name} not found")


def _wait(kube: Any, namespace: str, name: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = kube.get("pipelineruns", namespace, name) or {}
        phase = str((run.get("status") or {}).get("phase") or "")
        if phase in TERMINAL:
            return phase
        time.sleep(1)
    return "timeout"


common = [
    click.option("-n", "--namespace", default="default", show_default=True),
    click.option("--kubeconfig", envvar="KUBECONFIG", default=None),
]


def _common(f: Any) -> Any:
    for option in reversed(common):
        f = option(f)
    return f


@click.command()
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option("--namespace", "namespaces", multiple=True, help="Watch this namespace (repeat).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace.")
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
@click.option("--metrics-port", default=8080, show_default=True, help="0 turns metrics off.")
@click.option("--liveness", default="http://0.0.0.0:8081/healthz", show_default=True)
@click.option(
    "--leader-election-namespace",
    envvar="KASCADE_LEADER_NAMESPACE",
    default=None,
    help="Hold a Lease there before acting (run several replicas safely).",
)
@click.option(
    "--leader-election-name",
    envvar="KASCADE_LEADER_NAME",
    default="kascade-operator",
    show_default=True,
    help="The Lease's name (one per installation sharing a namespace).",
)
@click.option(
    "--task-events",
    type=click.Choice(["all", "warnings"]),
    envvar="KASCADE_TASK_EVENTS",
    default="all",
    show_default=True,
    help="Post an Event for every task state change, or only for failures and retries.",
)
@click.option(
    "--approval",
    type=click.Choice(["required", "off"]),
    envvar="KASCADE_APPROVAL",
    default="required",
    show_default=True,
    help="required: run only specs the admission webhook approved (signed with the key); "
    "off: run any spec as written (anyone who may create a Pipeline may then use every "
    "ServiceAccount, Secret and pod privilege of its namespace; see docs/security.md).",
)
@click.option(
    "--approval-key-file",
    envvar="KASCADE_APPROVAL_KEY_FILE",
    default=None,
    help="The key the admission webhook signs approvals with (at least 32 bytes).",
)
@click.option(
    "--notify-allowed-host",
    "notify_allowed_hosts",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Notification webhooks may post only to these hosts (repeat; *.example.com "
    "matches subdomains). Default: any host whose addresses are all public.",
)
@click.option(
    "--notify-allow-private-networks",
    is_flag=True,
    help="Let notification webhooks reach private, loopback and link-local addresses too.",
)
@click.option(
    "--helper-image",
    envvar="KASCADE_HELPER_IMAGE",
    default="kascade-operator:dev",
    show_default=True,
    help="The image of sql/s3 sensor pods (`kascade poke`) and of the outputs sidecar: "
    "the operator's own image.",
)
@click.option(
    "--outputs-max-bytes",
    envvar="KASCADE_OUTPUTS_MAX_BYTES",
    type=click.IntRange(4097, 8 * 1024 * 1024),
    default=4 * 1024 * 1024,
    show_default=True,
    help="With an object store (KASCADE_STORE_<key> variables): the largest outputs a task "
    "may write.",
)
@click.option(
    "--log-archive/--no-log-archive",
    envvar="KASCADE_LOG_ARCHIVE",
    default=True,
    show_default=True,
    help="With an object store (KASCADE_STORE_<key> variables): keep each ended attempt's "
    "log there, readable with `kascade logs` after its pod is gone.",
)
@click.option(
    "--log-archive-max-bytes",
    envvar="KASCADE_LOG_ARCHIVE_MAX_BYTES",
    type=click.IntRange(1024, 256 * 1024 * 1024),
    default=8 * 1024 * 1024,
    show_default=True,
    help="The most of one attempt's log the archive keeps (the first bytes; the cut is noted).",
)
def operator(
    log_level: str,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    kubeconfig: str | None,
    metrics_port: int,
    liveness: str,
    leader_election_namespace: str | None,
    leader_election_name: str,
    task_events: str,
    approval: str,
    approval_key_file: str | None,
    notify_allowed_hosts: tuple[str, ...],
    notify_allow_private_networks: bool,
    helper_image: str,
    outputs_max_bytes: int,
    log_archive: bool,
    log_archive_max_bytes: int,
) -> None:
    """Run the Kascade operator (in-cluster, or with a kubeconfig).

    Large outputs go to the object store given by the KASCADE_STORE_<key> variables
    (endpoint, bucket, accessKeyId, ...; docs/object-store.md), when they are set, and
    so do the logs of ended attempts (--no-log-archive: not the logs).
    """
    if not namespaces and not all_namespaces:
        raise click.UsageError("give --namespace NS (repeatable) or --all-namespaces")
    from kascade.controller.config import read_config

    settings = {
        "KASCADE_HELPER_IMAGE": helper_image,
        "KASCADE_OUTPUTS_MAX_BYTES": str(outputs_max_bytes),
        "KASCADE_LOG_ARCHIVE": "on" if log_archive else "off",
        "KASCADE_LOG_ARCHIVE_MAX_BYTES": str(log_archive_max_bytes),
    }
    try:
        read_config({**os.environ, **settings})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if approval == "required":
        if not approval_key_file:
            raise click.UsageError(
                "give --approval-key-file FILE (the key the admission webhook signs with), "
                "or --approval=off to run every spec as written (see docs/security.md)"
            )
        from kascade.controller.approval import read_key

        try:
            read_key(approval_key_file)
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"--approval-key-file: {exc}") from None
        os.environ["KASCADE_APPROVAL_KEY_FILE"] = approval_key_file
    os.environ["KASCADE_APPROVAL"] = approval
    os.environ.update(settings)
    os.environ["KASCADE_NOTIFY_ALLOWED_HOSTS"] = ",".join(notify_allowed_hosts)
    if notify_allow_private_networks:
        os.environ["KASCADE_NOTIFY_ALLOW_PRIVATE_NETWORKS"] = "1"
    import logging

    from kascade.controller import logs

    logs.install(getattr(logging, log_level.upper()))
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    os.environ["KASCADE_METRICS_PORT"] = str(metrics_port)
    os.environ["KASCADE_TASK_EVENTS"] = task_events
    if leader_election_namespace:
        os.environ["KASCADE_LEADER_NAMESPACE"] = leader_election_namespace
        os.environ["KASCADE_LEADER_NAME"] = leader_election_name
    from kascade.controller import handlers

    handlers.run(list(namespaces), all_namespaces, liveness or None)


@click.command()
@click.argument("pipeline")
@_common
@click.option("--param", "params", multiple=True, metavar="K=V")
@click.option("--logical-date", default=None, help="ISO date(-time); default: now.")
@click.option("--wait", is_flag=True, help="Wait for the run to end; exit 1 if it failed.")
@click.option("--timeout", default=3600.0, show_default=True)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run every task with a cache: read no cache entry (new ones are still written).",
)
def trigger(
    pipeline: str,
    namespace: str,
    kubeconfig: str | None,
    params: tuple[str, ...],
    logical_date: str | None,
    wait: bool,
    timeout: float,
    no_cache: bool,
) -> None:
    """Start a manual run of PIPELINE (a name or a dag_id; Airflow's "Trigger DAG").

    The run's logical date is --logical-date (UTC unless it has an offset) or now; its data
    interval is the schedule's latest complete interval ending at or before it.
    """
    from kascade.controller import scheduling

    kube = _kube(kubeconfig)
    _, body = _pipeline(kube, namespace, pipeline)
    manifest = scheduling.manual_run_manifest(
        body,
        logical_date=_date(logical_date) if logical_date else None,
        now=_now(),
        params=_params(params, body["spec"]),
        by=os.environ.get("USER", "kascade-cli"),
    )
    if no_cache:
        manifest["spec"]["noCache"] = True
    name = manifest["metadata"]["name"]
    kube.create("pipelineruns", namespace, manifest)
    click.echo(f"pipelinerun/{name} created")
    if wait:
        phase = _wait(kube, namespace, name, timeout)
        click.echo(f"pipelinerun/{name} {phase}")
        raise SystemExit(0 if phase == "success" else 1)


@click.command()
@click.argument("pipeline")
@_common
@click.option("--from", "start", required=True, help="First logical date (ISO).")
@click.option("--to", "end", required=True, help="Last logical date (ISO, inclusive).")
def backfill(pipeline: str, namespace: str, kubeconfig: str | None, start: str, end: str) -> None:
    """Create runs for every interval between --from and --to (maxActiveRuns at a time)."""
    from kascade.api.runs import TriggerKind
    from kascade.controller import scheduling
    from kascade.engine.schedule import due_intervals, parse_schedule

    kube = _kube(kubeconfig)
    _, body = _pipeline(kube, namespace, pipeline)
    spec = body["spec"]
    tt = parse_schedule(spec.get("schedule"), spec.get("timezone", "UTC"))
    first, last = _date(start, "--from"), _date(end, "--to")
    intervals = due_intervals(
        tt, last=None, start_date=first, end_date=last, catchup=True, now=max(_now(), last)
    )
    if not intervals:
        raise click.ClickException("no schedule interval starts in that range")
    for interval in intervals:
        manifest = scheduling.run_manifest(body, interval, TriggerKind.BACKFILL)
        created = kube.create("pipelineruns", namespace, manifest)
        state = "created" if created else "exists"
        click.echo(f"pipelinerun/{manifest['metadata']['name']} {state}")


def _run_and_plan(kube: Any, namespace: str, run: str) -> tuple[dict[str, Any], Any]:
    from kascade.api.resources import PipelineRun
    from kascade.engine import task_templates
    from kascade.engine.compile import compile_or_raise

    body = kube.get("pipelineruns", namespace, run)
    if body is None:
        raise click.ClickException(f"pipelinerun {namespace}/{run} not found")
    model = PipelineRun.model_validate(body)
    assert model.spec.pipeline_spec is not None
    shared = task_templates.pinned(model.spec.task_templates or [])
    return body, compile_or_raise(model.spec.pipeline_spec, model.spec.pipeline_ref.name, shared)


def _reload(kube: Any, namespace: str, run: str, tasks: dict[str, Any]) -> None:
    kube.patch_status(
        "pipelineruns",
        namespace,
        run,
        {"phase": "running", "endTime": None, "conditions": None, "message": None, "tasks": tasks},
    )
    kube.patch(
        "pipelineruns", namespace, run, {"metadata": {"annotations": {RELOAD: uuid.uuid4().hex}}}
    )


def _taskruns(kube: Any, namespace: str, run: str) -> dict[str, dict[str, Any]]:
    from kascade.api.runs import instance_key
    from kascade.controller import naming
    from kascade.controller.podspec import LABEL_RUN

    out = {}
    for tr in kube.list_objects("taskruns", namespace, f"{LABEL_RUN}={naming.label_value(run)}"):
        out[instance_key(tr["spec"]["taskName"], tr["spec"].get("mapIndex"))] = tr
    return out


def _forget(kube: Any, namespace: str, run: str, keys: list[str]) -> None:
    """Delete the TaskRuns and pods of these task instances, and wait until they are gone.

    Their names are reused when the tasks run again, so the old objects must be gone.
    """
    from kascade.controller import naming
    from kascade.controller.podspec import LABEL_RUN, LABEL_TASK

    trs = _taskruns(kube, namespace, run)
    selectors = [
        f"{LABEL_RUN}={naming.label_value(run)},{LABEL_TASK}={naming.label_value(k)}" for k in keys
    ]
    for key in keys:
        if key in trs:
            kube.delete("taskruns", namespace, trs[key]["metadata"]["name"])
    for selector in selectors:
        for pod in kube.list_pods(namespace, selector):
            kube.delete_pod(namespace, pod["metadata"]["name"], grace=0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        left = any(k in _taskruns(kube, namespace, run) for k in keys) or any(
            kube.list_pods(namespace, sel) for sel in selectors
        )
        if not left:
            return
        time.sleep(0.5)


@click.command()
@click.argument("run")
@_common
@click.option("--task", "tasks", multiple=True, help="Clear this task (default: every failed one).")
@click.option("--downstream/--no-downstream", default=True, show_default=True)
def clear(
    run: str, namespace: str, kubeconfig: str | None, tasks: tuple[str, ...], downstream: bool
) -> None:
    """Re-run tasks of a run (Airflow's Clear, Argo's retry): failed ones by default.

    Cleared tasks with a `cache` run again rather than reuse a cache entry.
    """
    kube = _kube(kubeconfig)
    body, plan = _run_and_plan(kube, namespace, run)
    states: dict[str, str] = dict((body.get("status") or {}).get("tasks") or {})

    from kascade.api.runs import split_instance_key

    def base(key: str) -> str:
        return split_instance_key(key)[0]

    if tasks:
        unknown = [t for t in tasks if t not in plan.index]
        if unknown:
            raise click.ClickException(f"unknown task(s): {', '.join(unknown)}")
        chosen = set(tasks)
    else:
        chosen = {base(k) for k, s in states.items() if s in ("failed", "upstream_failed")}
    if downstream:
        for task_id in list(chosen):
            chosen |= {plan.tasks[i].id for i in plan.graph.descendants(plan.index[task_id])}
    keys = [k for k in states if base(k) in chosen]
    if not keys:
        click.echo("nothing to clear")
        return
    _forget(kube, namespace, run, keys)
    # A cleared task runs again: its cache entry (maybe its own last success) is not read.
    cleared = {base(k) for k in keys} | set((body.get("spec") or {}).get("noCacheTasks") or [])
    kube.patch("pipelineruns", namespace, run, {"spec": {"noCacheTasks": sorted(cleared)}})
    _reload(kube, namespace, run, {k: None for k in keys})
    click.echo(f"cleared {len(keys)} task instance(s) of {run}: {', '.join(sorted(keys))}")


@click.command()
@click.argument("run")
@_common
@click.option("--task", "task", required=True)
@click.argument("state", type=click.Choice(["success", "failed", "skipped"]))
def mark(run: str, namespace: str, kubeconfig: str | None, task: str, state: str) -> None:
    """Set a task's state by hand (Airflow's Mark Success / Mark Failed)."""
    kube = _kube(kubeconfig)
    body, plan = _run_and_plan(kube, namespace, run)
    from kascade.api.runs import split_instance_key

    base = split_instance_key(task)[0]
    if base not in plan.index:
        raise click.ClickException(f"unknown task {task!r}")
    trs = _taskruns(kube, namespace, run)
    if task in trs:
        kube.patch_status("taskruns", namespace, trs[task]["metadata"]["name"], {"state": state})
    descendants = {plan.tasks[i].id for i in plan.graph.descendants(plan.index[base])}
    states = (body.get("status") or {}).get("tasks") or {}
    reset: dict[str, Any] = {k: None for k in states if split_instance_key(k)[0] in descendants}
    _forget(kube, namespace, run, list(reset))
    reset[task] = state
    _reload(kube, namespace, run, reset)
    click.echo(f"{run}: {task} marked {state}")


def register(group: click.Group) -> None:
    for command in (operator, trigger, backfill, clear, mark):
        group.add_command(command)

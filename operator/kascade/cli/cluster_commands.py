"""Commands that talk to a cluster: operator, trigger, backfill, clear, mark, pause.

Each action is a thin wrapper over ``kascade.actions``, the same functions the
web UI's buttons call, so both do exactly the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click


def _kube(kubeconfig: str | None) -> Any:
    from kascade.kube import KubeConfigError
    from kascade.kube.client import Kube, load_config

    try:
        load_config(kubeconfig)
    except KubeConfigError as exc:  # no kubeconfig, or one that does not parse
        raise click.ClickException(str(exc)) from None
    return Kube()


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _refusals() -> Iterator[None]:
    """An action's refusal (unknown task, bad param) is a one-line error, not a traceback."""
    from kascade.actions import ActionError

    try:
        yield
    except ActionError as exc:
        raise click.ClickException(str(exc)) from None


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
    "--keep-succeeded-pods",
    type=click.IntRange(min=-1),
    envvar="KASCADE_KEEP_SUCCEEDED_PODS",
    default=100,
    show_default=True,
    help="Pods of succeeded attempts (and of sensor pokes not met) a run keeps for `kubectl "
    "logs`; older ones are deleted once their TaskRun records them, so that a large run "
    "does not slow the node down. Pods of failed attempts are always kept. -1: keep all.",
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
    "--ui-url",
    envvar="KASCADE_UI_URL",
    default="",
    help="The web UI's address: alerts link to the task's page there (its log).",
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
    keep_succeeded_pods: int,
    approval: str,
    approval_key_file: str | None,
    notify_allowed_hosts: tuple[str, ...],
    notify_allow_private_networks: bool,
    ui_url: str,
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
    os.environ["KASCADE_UI_URL"] = ui_url
    import logging

    from kascade.controller import logs

    logs.install(getattr(logging, log_level.upper()))
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    os.environ["KASCADE_METRICS_PORT"] = str(metrics_port)
    os.environ["KASCADE_TASK_EVENTS"] = task_events
    os.environ["KASCADE_KEEP_SUCCEEDED_PODS"] = str(keep_succeeded_pods)
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
    from kascade import actions

    kube = _kube(kubeconfig)
    with _refusals():
        name = actions.trigger(
            kube,
            namespace,
            pipeline,
            params=params,
            logical_date=logical_date,
            by=os.environ.get("USER", "kascade-cli"),
            now=_now(),
            no_cache=no_cache,
        )
    click.echo(f"pipelinerun/{name} created")
    if wait:
        phase, why = actions.wait_for_end(kube, namespace, name, timeout)
        click.echo(f"pipelinerun/{name} {phase}" + (f": {why}" if why else ""))
        raise SystemExit(0 if phase == "success" else 1)


@click.command()
@click.argument("pipeline")
@_common
@click.option("--from", "start", required=True, help="First logical date (ISO).")
@click.option("--to", "end", required=True, help="Last logical date (ISO, inclusive).")
def backfill(pipeline: str, namespace: str, kubeconfig: str | None, start: str, end: str) -> None:
    """Create runs for every interval between --from and --to (maxActiveRuns at a time)."""
    from kascade import actions

    with _refusals():
        made = actions.backfill(
            _kube(kubeconfig), namespace, pipeline, start=start, end=end, now=_now()
        )
    for run in made:
        click.echo(f"pipelinerun/{run.name} {'created' if run.created else 'exists'}")


@click.command()
@click.argument("run")
@_common
@click.option("--task", "tasks", multiple=True, help="Clear this task (default: every failed one).")
@click.option("--downstream/--no-downstream", default=True, show_default=True)
def clear(
    run: str, namespace: str, kubeconfig: str | None, tasks: tuple[str, ...], downstream: bool
) -> None:
    """Re-run tasks of a run (Airflow's Clear, Argo's retry): failed ones by default."""
    from kascade import actions

    with _refusals():
        keys = actions.clear(_kube(kubeconfig), namespace, run, tasks=tasks, downstream=downstream)
    if not keys:
        click.echo("nothing to clear")
        return
    click.echo(f"cleared {len(keys)} task instance(s) of {run}: {', '.join(keys)}")


@click.command()
@click.argument("run")
@_common
@click.option("--task", "task", required=True)
@click.argument("state", type=click.Choice(["success", "failed", "skipped"]))
def mark(run: str, namespace: str, kubeconfig: str | None, task: str, state: str) -> None:
    """Set a task's state by hand (Airflow's Mark Success / Mark Failed)."""
    from kascade import actions

    with _refusals():
        actions.mark(_kube(kubeconfig), namespace, run, task, state)
    click.echo(f"{run}: {task} marked {state}")


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "unpause"

    @click.command(verb)
    @click.argument("pipeline")
    @_common
    def command(pipeline: str, namespace: str, kubeconfig: str | None) -> None:
        from kascade import actions

        with _refusals():
            actions.set_paused(_kube(kubeconfig), namespace, pipeline, paused)
        click.echo(f"pipeline/{pipeline} {verb}d")

    command.help = (
        "Pause PIPELINE: no new scheduled runs (spec.suspend); manual runs still allowed."
        if paused
        else "Unpause PIPELINE: scheduled runs resume."
    )
    return command


pause = _pause_command(True)
unpause = _pause_command(False)


def register(group: click.Group) -> None:
    for command in (operator, trigger, backfill, clear, mark, pause, unpause):
        group.add_command(command)

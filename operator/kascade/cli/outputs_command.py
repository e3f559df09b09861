"""``kascade outputs``: a task's outputs, with the values kept in the object store read back.

On a cluster the TaskRun's status holds small outputs and references to large ones; the
references are read from the store the ``KASCADE_STORE_<key>`` variables of your shell
describe, with your own credentials (the operator never serves them). ``--local`` reads a
local run's record instead (``$KASCADE_HOME/local-runs``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click


def _resolved(outputs: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    from kascade.engine.outputs import OutputRef
    from kascade.integrations.outputs_store import StoreError, from_environment
    from kascade.integrations.settings import SettingsError

    names = [wanted] if wanted else list(outputs)
    missing = [n for n in names if n not in outputs]
    if missing:
        known = ", ".join(sorted(outputs)) or "none"
        raise click.ClickException(f"no output {missing[0]!r} (outputs: {known})")
    refs = {n: OutputRef.of(outputs[n]) for n in names}
    store = None
    if any(refs.values()):
        try:
            store = from_environment(os.environ)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        if store is None:
            raise click.ClickException(
                "these outputs are kept in the object store: set KASCADE_STORE_endpoint, "
                "KASCADE_STORE_bucket, KASCADE_STORE_accessKeyId, ... to read them"
            )
    out: dict[str, Any] = {}
    for name in names:
        ref = refs[name]
        try:
            out[name] = outputs[name] if ref is None or store is None else store.fetch(ref)
        except StoreError as exc:
            raise click.ClickException(f"output {name!r}: {exc}") from None
    return out


def _from_cluster(run: str, task: str, namespace: str, kubeconfig: str | None) -> dict[str, Any]:
    from kascade.api.runs import instance_key
    from kascade.controller import naming
    from kascade.controller.podspec import LABEL_RUN
    from kascade.kube.client import Kube, load_config

    load_config(kubeconfig)
    kube = Kube()
    selector = f"{LABEL_RUN}={naming.label_value(run)}"
    for tr in kube.list_objects("taskruns", namespace, selector):
        if instance_key(tr["spec"]["taskName"], tr["spec"].get("mapIndex")) == task:
            return dict((tr.get("status") or {}).get("outputs") or {})
    raise click.ClickException(f"no task {task!r} in run {namespace}/{run}")


def _from_local(pipeline: str, run: str, task: str) -> dict[str, Any]:
    from kascade.local.history import LocalHistory

    path = LocalHistory().root / pipeline / f"{run}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"no local run record {path}: {exc}") from None
    info = (record.get("tasks") or {}).get(task)
    if info is None:
        raise click.ClickException(f"no task {task!r} in {path}")
    return dict(info.get("outputs") or {})


@click.command("outputs")
@click.argument("run")
@click.option("--task", "task", required=True, help="The task (task[3] for a mapped instance).")
@click.option("--name", "name", default=None, help="Only this output (printed as is if text).")
@click.option("--local", "pipeline", metavar="PIPELINE", help="A local run of this pipeline.")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def outputs_command(
    run: str,
    task: str,
    name: str | None,
    pipeline: str | None,
    namespace: str,
    kubeconfig: str | None,
) -> None:
    """Print a task's outputs (JSON), reading large ones back from the object store."""
    raw = (
        _from_local(pipeline, run, task)
        if pipeline
        else _from_cluster(run, task, namespace, kubeconfig)
    )
    values = _resolved(raw, name)
    if name is not None and isinstance(values[name], str):
        sys.stdout.write(values[name] + "\n")
    else:
        click.echo(json.dumps(values[name] if name is not None else values, indent=2))


def register(group: click.Group) -> None:
    group.add_command(outputs_command)

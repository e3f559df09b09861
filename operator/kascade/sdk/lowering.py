"""What a task becomes in the Pipeline: container fields, runtime command, environment.

``Target`` says where the compiled DAG runs: ``local`` (``kascade run``: this
Python, the DAG file where it is), ``bundle`` (a cluster; the DAG folder and the
runtime travel in a ConfigMap mounted into each task's pod) or ``image`` (a
cluster; an image that contains the DAGs and kascade). ``Lowerer`` gives an
operator's ``_lower`` what it needs: the runtime command for Python callables,
templated strings in Kascade's language, and the engine-rendered environment
that carries the run's context and upstream outputs into the task.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kascade.sdk import templates
from kascade.sdk.naming import pipeline_name
from kascade.sdk.xcom_arg import iter_references

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator
    from kascade.sdk.dag import DAG

PYTHON_IMAGE = "python:3.11-slim"
#: A Python task gets the outputs of all its upstream tasks up to this many; beyond,
#: of its direct upstream tasks, of those its XComArgs name and of those its code names
#: in quotes (``xcom_pull(task_ids="extract")``), so a long chain does not carry
#: every earlier output into every pod.
MAX_XCOM_SOURCES = 64
SHELL_IMAGE = "busybox:1.36"
XCOM_ENV_PREFIX = "KASCADE_XCOM__"
TEMPLATE_ENV_PREFIX = "KASCADE_TEMPLATE_"
PARAMS_ENV = "KASCADE_PARAMS"
MAP_ITEM_ENV = "KASCADE_MAP_ITEM"
INTERVAL_START_ENV = "KASCADE_DATA_INTERVAL_START"
INTERVAL_END_ENV = "KASCADE_DATA_INTERVAL_END"


@dataclass(frozen=True)
class Target:
    kind: str
    """local | bundle | image."""
    python: tuple[str, ...]
    """How a task starts the runtime: interpreter and entry (``-m kascade.sdk.execution``)."""
    dag_file: str
    """The DAG file's path as the task sees it."""
    host_file: Path
    """The DAG file on this machine (to read ``.sh`` templates next to it)."""
    default_image: str = PYTHON_IMAGE
    env: tuple[dict[str, Any], ...] = ()
    volumes: tuple[dict[str, Any], ...] = ()
    volume_mounts: tuple[dict[str, Any], ...] = ()
    hook_python: tuple[str, ...] = ()
    """How a callback hook starts the runtime (hooks have no volumes: see bundle.py)."""
    hook_env: tuple[dict[str, Any], ...] = ()
    names: dict[str, str] = field(default_factory=dict)
    """dag_id → Pipeline name for the DAGs compiled together (ExternalTaskSensor)."""

    def runtime_argv(self, mode: str, dag_id: str, task_id: str | None) -> list[str]:
        argv = [*self.python, mode, "--file", self.dag_file, "--dag", dag_id]
        return argv + (["--task", task_id] if task_id is not None else [])


class Lowerer:
    def __init__(
        self, dag: DAG, task: BaseOperator, target: Target, ancestors: Sequence[str]
    ) -> None:
        self.dag = dag
        self.task = task
        self.target = target
        self.ancestors = ancestors

    def template(self, value: Any, what: str) -> str:
        return templates.to_template(value, self.dag.dag_id, what)

    def image(self, default: str | None = None) -> str:
        return str(self.task.container.get("image") or default or self.target.default_image)

    def pipeline_name(self, dag_id: str) -> str:
        return self.target.names.get(dag_id) or pipeline_name(dag_id)

    def read_script(self, path: str) -> str:
        """A ``.sh`` bash_command is a template file next to the DAG file, as in Airflow."""
        file = (self.target.host_file.parent / path).resolve()
        try:
            return file.read_text()
        except OSError as exc:
            raise FileNotFoundError(
                f"bash_command {path!r} names a script template that cannot be read "
                f"({exc.strerror}); end the command with a space to run it as a command"
            ) from None

    def xcom_sources(self) -> list[str]:
        """The upstream tasks whose outputs the task gets (see ``MAX_XCOM_SOURCES``)."""
        from kascade.sdk.operators.empty import EmptyOperator

        producers = [
            a for a in self.ancestors if not isinstance(self.dag.task_dict[a], EmptyOperator)
        ]
        if len(producers) <= MAX_XCOM_SOURCES:
            return producers
        wanted = set(self.task.upstream_task_ids)
        for name in self.task.template_fields:
            wanted.update(op.task_id for op in iter_references(getattr(self.task, name, None)))
        code = _source_of(self.task)
        wanted.update(a for a in producers if f"'{a}'" in code or f'"{a}"' in code)
        return [a for a in producers if a in wanted]

    def runtime(self, mode: str) -> dict[str, Any]:
        """Fields of a task whose Python code runs in the Kascade runtime."""
        env: list[dict[str, Any]] = list(self.target.env)
        env.append({"name": PARAMS_ENV, "value": "{{ params | tojson }}"})
        env.append({"name": INTERVAL_START_ENV, "value": "{{ data_interval_start }}"})
        env.append({"name": INTERVAL_END_ENV, "value": "{{ data_interval_end }}"})
        if self.task.expand_input is not None:
            env.append({"name": MAP_ITEM_ENV, "value": "{{ item | tojson }}"})
        for up in self.xcom_sources():
            expr = f"tasks.{up}.outputs | default(null) | tojson"
            env.append({"name": XCOM_ENV_PREFIX + up, "value": "{{ " + expr + " }}"})
        texts = templates.templated_strings(self.task, list(self.task.template_fields))
        for i, text in enumerate(texts):
            env.append(
                {"name": f"{TEMPLATE_ENV_PREFIX}{i}", "value": self.template(text, "a template")}
            )
        fields: dict[str, Any] = {
            "image": self.image(),
            "command": self.target.runtime_argv(mode, self.dag.dag_id, self.task.task_id),
            "env": env,
        }
        if self.target.volumes:
            fields["volumes"] = list(self.target.volumes)
            fields["volumeMounts"] = list(self.target.volume_mounts)
        return fields


def _source_of(task: BaseOperator) -> str:
    """The code a runtime task runs: its callable, else its class (a custom operator)."""
    target = getattr(task, "python_callable", None) or type(task)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        return ""


def hook(target: Target, dag: DAG, scope: str, callback: str, index: int) -> dict[str, Any]:
    """A notification hook that runs a Python callback through the runtime.

    ``scope`` is ``task`` (the task comes from the hook's ``KASCADE_TASK``, so every
    task can share one hook, hoisted into ``spec.defaults``) or ``dag``.
    """
    argv = [*target.hook_python, "callback", "--file", target.dag_file, "--dag", dag.dag_id]
    argv += ["--scope", scope, "--callback", callback, "--index", str(index)]
    # The DAG's Python image: the one default_args give the tasks (with their libraries).
    image = dag.default_args.get("image") or target.default_image
    out: dict[str, Any] = {"image": image, "command": argv}
    env = list(target.hook_env)
    if env:
        out["env"] = env
    return out

"""``python -m kascade.sdk.execution run|poke|callback --file F --dag D [--task T]``.

One attempt of one task: load the DAG file, put the engine's renderings of the
templated arguments and the mapped item in place, resolve XComArgs, run, and
write the outputs (``$KASCADE_OUTPUTS``, JSON, 4 KiB at most). Exit codes
follow the task protocol: 0 done, 1 failed, 100 a sensor not met yet, 2 the
DAG file or the task could not be loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from kascade.sdk import templates
from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.dag import DAG
from kascade.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from kascade.sdk.execution.context import build_context, parse_instant
from kascade.sdk.execution.loader import load_file
from kascade.sdk.lowering import MAP_ITEM_ENV, TEMPLATE_ENV_PREFIX
from kascade.sdk.mapped import MappedArg
from kascade.sdk.sensors.base import BaseSensorOperator, PokeReturnValue
from kascade.sdk.xcom_arg import resolve_value

EXIT_OK, EXIT_FAILED, EXIT_LOAD, NOT_MET = 0, 1, 2, 100
OUTPUTS_LIMIT_BYTES = 4096


class LoadError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kascade.sdk.execution")
    p.add_argument("mode", choices=["run", "poke", "callback"])
    p.add_argument("--file", required=True)
    p.add_argument("--dag", required=True)
    p.add_argument("--task")
    p.add_argument("--callback")
    p.add_argument("--scope", choices=["task", "dag"], default="task")
    p.add_argument("--index", type=int, default=0)
    return p


def find(file: str, dag_id: str, task_id: str | None) -> tuple[DAG, BaseOperator | None]:
    from pathlib import Path

    loaded = load_file(Path(file))
    if loaded.problems:
        raise LoadError("\n".join(str(p) for p in loaded.problems))
    dag = next((d for d in loaded.dags if d.dag_id == dag_id), None)
    if dag is None:
        found = ", ".join(d.dag_id for d in loaded.dags) or "none"
        raise LoadError(f"{file} builds no DAG {dag_id!r} (found: {found})")
    if task_id is None:
        return dag, None
    if task_id not in dag.task_dict:
        raise LoadError(f"DAG {dag_id!r} of {file} has no task {task_id!r}")
    return dag, dag.task_dict[task_id]


def _replace_mapped(value: Any, item: Any) -> Any:
    if isinstance(value, MappedArg):
        return value.value(item)
    if isinstance(value, list):
        return [_replace_mapped(v, item) for v in value]
    if isinstance(value, tuple):
        return tuple(_replace_mapped(v, item) for v in value)
    if isinstance(value, dict):
        return {k: _replace_mapped(v, item) for k, v in value.items()}
    return value


def prepare(task: BaseOperator, context: dict[str, Any], env: Mapping[str, str]) -> None:
    """Templates rendered by the engine, the mapped item, then XComArgs, in place."""
    fields = list(task.template_fields)
    expected = templates.templated_strings(task, fields)
    rendered = [env.get(f"{TEMPLATE_ENV_PREFIX}{i}", "") for i in range(len(expected))]
    if expected:
        templates.replace_templated(task, fields, rendered)
    spec = task.expand_input
    if spec is not None:
        item = json.loads(env.get(MAP_ITEM_ENV) or "null")
        if spec.names is None and isinstance(item, dict):  # expand_kwargs with run-time keys
            if hasattr(task, "op_kwargs"):
                task.op_kwargs.update(item)
            else:
                for name, value in item.items():
                    setattr(task, name, value)
        for name in {*fields, *(spec.names or [])}:
            if hasattr(task, name):
                setattr(task, name, _replace_mapped(getattr(task, name), item))
    for name in fields:
        if hasattr(task, name):
            setattr(task, name, resolve_value(getattr(task, name), context))


def write_outputs(outputs: dict[str, Any]) -> None:
    path = os.environ.get("KASCADE_OUTPUTS")
    if not outputs or not path:
        return
    try:
        text = json.dumps(outputs, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the task's XCom values must be JSON (str, int, float, bool, None, list, dict): {exc}"
        ) from None
    limit = OUTPUTS_LIMIT_BYTES
    raw = os.environ.get("KASCADE_OUTPUTS_MAX_BYTES", "")
    if raw.isdigit():  # an object store for outputs takes what does not fit in 4 KiB
        limit = int(raw)
    if len(text.encode()) > limit:
        store = "" if limit > OUTPUTS_LIMIT_BYTES else " (no object store for outputs is set up)"
        raise ValueError(
            f"the task's XCom values are {len(text.encode())} bytes as JSON, over the "
            f"{limit}-byte limit{store}: write large data to storage and return its location"
        )
    with open(path, "w") as out:
        out.write(text)


def _run(mode: str, task: BaseOperator, context: dict[str, Any]) -> int:
    ti = context["ti"]
    if mode == "poke":
        assert isinstance(task, BaseSensorOperator)
        result = task.poke(context)
        done = result.is_done if isinstance(result, PokeReturnValue) else bool(result)
        if not done:
            print(f"Poking {task.task_id}: condition not met yet", flush=True)
            return NOT_MET
        write_outputs({**ti.pushed, **task.outputs_of(result)})
        return EXIT_OK
    for callback in task.on_execute_callback:
        callback(context)
    task.pre_execute(context)
    result = task.execute(context)
    task.post_execute(context, result)
    write_outputs({**ti.pushed, **task.outputs_of(result)})
    return EXIT_OK


def callback_context(dag: DAG, task: BaseOperator | None, env: Mapping[str, str]) -> dict[str, Any]:
    """Airflow's callback context, from the hook's environment (``engine/callbacks.py``
    sets it): the task instance's state, try number, duration, dates and log URL, the
    exception (as an exception, as Airflow passes it) and why the attempt ended."""
    context = build_context(dag, task, env)
    ti = context["ti"]
    ti.state = env.get("KASCADE_STATE") or None
    ti.duration = _number(env.get("KASCADE_DURATION_SECONDS"))
    ti.log_url = env.get("KASCADE_LOG_URL", "")
    ti.start_date = parse_instant(env.get("KASCADE_START_DATE"))
    ti.end_date = parse_instant(env.get("KASCADE_END_DATE"))
    tries = _number(env.get("KASCADE_MAX_TRIES"))
    ti.max_tries = int(tries) - 1 if tries else 0  # Airflow's max_tries is the retries
    text = env.get("KASCADE_EXCEPTION")
    if text is None:  # a hook from an operator that predates KASCADE_EXCEPTION
        text = env.get("KASCADE_MESSAGE", "")
    context["exception"] = AirflowException(text) if text else None
    context["reason"] = env.get("KASCADE_REASON") or env.get("KASCADE_MESSAGE", "")
    context["exit_code"] = _number(env.get("KASCADE_EXIT_CODE"))
    context["event"] = env.get("KASCADE_EVENT", "")
    context["message"] = env.get("KASCADE_MESSAGE", "")
    return context


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _callback(dag: DAG, scope: str, name: str, index: int) -> int:
    """A notification hook: the task is the one the event is about (``KASCADE_TASK``)."""
    instance = os.environ.get("KASCADE_TASK", "")
    task_id, _, rest = instance.partition("[")
    task = dag.task_dict.get(task_id) if task_id else None
    env = dict(os.environ)
    if rest:
        env["KASCADE_MAP_INDEX"] = rest.rstrip("]")
    context = callback_context(dag, task, env)
    if name == "sla_miss_callback":
        callback = dag.sla_miss_callback
        assert callback is not None
        blocking = [b for b in env.get("KASCADE_BLOCKING_TASKS", "").split(",") if b]
        miss = _SlaMiss(task_id or dag.dag_id, dag.dag_id, context["logical_date"])
        blocking_tis = [_BlockingTi(dag.dag_id, key, context["run_id"]) for key in blocking]
        callback(dag, task_id, "\n".join(blocking), [miss], blocking_tis)
        return EXIT_OK
    owner: Any = dag if scope == "dag" else task
    if owner is None:
        raise LoadError(f"the hook's task {instance!r} is not in DAG {dag.dag_id!r}")
    callbacks = getattr(owner, name)
    chosen = (callbacks if isinstance(callbacks, list) else [callbacks])[index]
    chosen(context)
    return EXIT_OK


class _SlaMiss:
    def __init__(self, task_id: str, dag_id: str, logical: Any) -> None:
        self.task_id = task_id
        self.dag_id = dag_id
        self.execution_date = self.logical_date = logical


class _BlockingTi:
    """A blocking task instance, as Airflow's sla_miss_callback lists them."""

    def __init__(self, dag_id: str, key: str, run_id: str) -> None:
        task_id, _, rest = key.partition("[")
        self.dag_id = dag_id
        self.task_id = task_id
        self.map_index = int(rest.rstrip("]")) if rest else -1
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id}>"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        dag, task = find(args.file, args.dag, args.task if args.mode != "callback" else None)
    except LoadError as exc:
        print(f"kascade runtime: {exc}", file=sys.stderr)
        return EXIT_LOAD
    try:
        if args.mode == "callback":
            return _callback(dag, args.scope, args.callback, args.index)
        assert task is not None, "--task is required to run or poke"
        context = build_context(dag, task)
        prepare(task, context, os.environ)
        return _run(args.mode, task, context)
    except AirflowSkipException as exc:
        print(
            f"AirflowSkipException: {exc}\nkascade: a task cannot skip itself yet, so this "
            "attempt fails; skip it with a branch, a short circuit or `when` instead",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except AirflowFailException:
        traceback.print_exc()
        print(
            "kascade: AirflowFailException fails this attempt; retries still apply", file=sys.stderr
        )
        return EXIT_FAILED
    except Exception:
        traceback.print_exc()
        return EXIT_FAILED

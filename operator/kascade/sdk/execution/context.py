"""Airflow's task context, built from the environment the engine gives every task.

``ti.xcom_pull`` reads the upstream outputs the engine rendered into
``KASCADE_XCOM__<task id>`` (every upstream task's outputs, by ancestry); a task
that is not upstream has no XComs to give, and saying so beats returning None.
``ti.xcom_push`` adds to this task's outputs.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from kascade.sdk.exceptions import XComNotFound
from kascade.sdk.lowering import (
    INTERVAL_END_ENV,
    INTERVAL_START_ENV,
    PARAMS_ENV,
    XCOM_ENV_PREFIX,
)
from kascade.sdk.param import NOTSET, ParamsDict
from kascade.sdk.variable import Variable
from kascade.sdk.xcom_arg import RETURN_KEY

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator
    from kascade.sdk.dag import DAG


class DateTime(datetime):
    """A datetime with the pendulum methods DAG code uses most (``add``, ``subtract``...)."""

    def add(self, **kwargs: float) -> DateTime:
        return self + timedelta(**kwargs)  # type: ignore[return-value]

    def subtract(self, **kwargs: float) -> DateTime:
        return self - timedelta(**kwargs)  # type: ignore[return-value]

    def to_date_string(self) -> str:
        return self.strftime("%Y-%m-%d")

    def to_datetime_string(self) -> str:
        return self.strftime("%Y-%m-%d %H:%M:%S")

    def to_iso8601_string(self) -> str:
        return self.isoformat()


def parse_instant(text: str | None) -> DateTime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return DateTime.fromtimestamp(value.timestamp(), tz=UTC)


class DagRun:
    def __init__(
        self,
        dag_id: str,
        run_id: str,
        logical: DateTime | None,
        params: dict[str, Any],
        start: DateTime | None,
        end: DateTime | None,
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.logical_date = self.execution_date = logical
        self.data_interval_start = start
        self.data_interval_end = end
        self.conf = params
        self.run_type = run_id.split("__", 1)[0] if "__" in run_id else "manual"
        self.external_trigger = self.run_type != "scheduled"

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}>"


class TaskInstance:
    def __init__(
        self,
        task: BaseOperator | None,
        dag: DAG,
        run_id: str,
        try_number: int,
        map_index: int,
        env: Mapping[str, str],
    ) -> None:
        self.task = task
        self.task_id = task.task_id if task is not None else ""
        self.dag_id = dag.dag_id
        self.run_id = run_id
        self.try_number = try_number
        self.map_index = map_index
        self.hostname = socket.gethostname()
        self.pushed: dict[str, Any] = {}
        self._env = env
        self.log_url = ""

    def _outputs_of(self, task_id: str) -> dict[str, Any] | None:
        if task_id == self.task_id:
            return self.pushed
        raw = self._env.get(XCOM_ENV_PREFIX + task_id)
        if raw is None:
            raise XComNotFound(
                f"task {task_id!r} is not upstream of {self.task_id!r}: Kascade gives a task "
                f"the XComs of its upstream tasks only (add {task_id} >> {self.task_id})"
            )
        value = json.loads(raw) if raw else None
        return value if isinstance(value, dict) else None

    def xcom_pull(
        self,
        task_ids: str | list[str] | None = None,
        dag_id: str | None = None,
        key: str | None = RETURN_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: int | list[int] | None = None,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        if dag_id not in (None, self.dag_id) or run_id not in (None, self.run_id):
            raise XComNotFound("XComs of other DAGs or runs are not available to a task")
        key = key or RETURN_KEY
        many = isinstance(task_ids, list | tuple)
        ids = (
            [str(t) for t in task_ids]
            if isinstance(task_ids, list | tuple)
            else [task_ids or self.task_id]
        )
        values = []
        for task_id in ids:
            outputs = self._outputs_of(str(task_id))
            value = default if outputs is None or key not in outputs else outputs[key]
            if map_indexes is not None and isinstance(value, list):
                value = (
                    [value[i] for i in map_indexes]
                    if isinstance(map_indexes, list)
                    else (value[map_indexes])
                )
            values.append(value)
        return values if many else values[0]

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.pushed[str(key)] = value

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [running]>"


def _ds_add(ds: str, days: int) -> str:
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def _ds_format(ds: str, input_format: str, output_format: str) -> str:
    return datetime.strptime(ds, input_format).strftime(output_format)


MACROS = SimpleNamespace(
    ds_add=_ds_add, ds_format=_ds_format, datetime=datetime, timedelta=timedelta, json=json
)


class _VarAccessor:
    def __init__(self, as_json: bool) -> None:
        self._json = as_json

    def __getattr__(self, key: str) -> Any:
        return Variable.get(key, deserialize_json=self._json)

    def get(self, key: str, default: Any = NOTSET) -> Any:
        return Variable.get(key, default_var=default, deserialize_json=self._json)


def build_context(
    dag: DAG, task: BaseOperator | None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    env = os.environ if env is None else env
    run_id = env.get("KASCADE_RUN_ID", "manual__unknown")
    logical = parse_instant(env.get("KASCADE_LOGICAL_DATE"))
    if logical is None and "__" in run_id:
        logical = parse_instant(run_id.split("__", 1)[1])
    start = parse_instant(env.get(INTERVAL_START_ENV)) or logical
    end = parse_instant(env.get(INTERVAL_END_ENV)) or logical
    raw_params = env.get(PARAMS_ENV)
    params = ParamsDict(json.loads(raw_params) if raw_params else {})
    if not raw_params:
        for name, param in dag.params.items():
            if param.value is not NOTSET:
                params[name] = param.value
    map_index = int(env.get("KASCADE_MAP_INDEX") or -1)
    ti = TaskInstance(task, dag, run_id, int(env.get("KASCADE_TRY_NUMBER") or 1), map_index, env)
    dag_run = DagRun(dag.dag_id, run_id, logical, params, start, end)
    ds = logical.strftime("%Y-%m-%d") if logical else env.get("KASCADE_DS", "")
    ctx: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": dag_run,
        "run_id": run_id,
        "params": params,
        "conf": SimpleNamespace(),
        "macros": MACROS,
        "var": {"value": _VarAccessor(False), "json": _VarAccessor(True)},
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": start,
        "data_interval_end": end,
        "inlets": [],
        "outlets": [],
        "test_mode": False,
        "map_index_template": None,
    }
    if logical is not None:
        ctx["ts"] = logical.isoformat()
        ctx["ts_nodash"] = logical.strftime("%Y%m%dT%H%M%S")
        ctx["ts_nodash_with_tz"] = logical.strftime("%Y%m%dT%H%M%S") + "+0000"
        ctx["yesterday_ds"] = _ds_add(ds, -1)
        ctx["tomorrow_ds"] = _ds_add(ds, 1)
    return ctx

"""The task environment contract: what every attempt finds in its environment, locally and in a pod.

Precedence, the same in both places (it is Kubernetes' own for a container):
``variables`` and ``connections`` (envFrom, in that order), then the task's ``env``, then
the contract's ``KASCADE_*`` variables, which a task cannot override.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kascade.api.protocol import OUTPUTS_ENV

OUTPUTS_MAX_ENV = "KASCADE_OUTPUTS_MAX_BYTES"
"""How large the outputs file may be: set when an object store takes what does not fit
in 4 KiB (without it the 4 KiB limit of the protocol stands)."""
CONTRACT_NAMES = (
    OUTPUTS_ENV,
    OUTPUTS_MAX_ENV,
    "KASCADE_PIPELINE",
    "KASCADE_RUN_ID",
    "KASCADE_TASK",
    "KASCADE_TRY_NUMBER",
    "KASCADE_MAP_INDEX",
    "KASCADE_LOGICAL_DATE",
    "KASCADE_DS",
)


def contract(
    *,
    pipeline: str,
    run_id: str,
    logical_date: datetime,
    task_id: str,
    attempt: int,
    map_index: int | None,
    outputs: str,
    outputs_max: int | None = None,
) -> dict[str, str]:
    """The ``KASCADE_*`` variables of one attempt (``KASCADE_MAP_INDEX`` is -1 for a task
    that is not mapped, Airflow's map_index; ``KASCADE_OUTPUTS_MAX_BYTES`` only with an
    object store for outputs)."""
    logical = logical_date.astimezone(UTC)
    return {
        OUTPUTS_ENV: outputs,
        **({OUTPUTS_MAX_ENV: str(outputs_max)} if outputs_max is not None else {}),
        "KASCADE_PIPELINE": pipeline,
        "KASCADE_RUN_ID": run_id,
        "KASCADE_TASK": task_id,
        "KASCADE_TRY_NUMBER": str(attempt),
        "KASCADE_MAP_INDEX": str(-1 if map_index is None else map_index),
        "KASCADE_LOGICAL_DATE": logical.isoformat(),
        "KASCADE_DS": logical.strftime("%Y-%m-%d"),
    }


def connection_prefix(name: str) -> str:
    """``warehouse-db`` → ``CONN_WAREHOUSE_DB_``: the prefix of a connection's keys."""
    return "CONN_" + name.upper().replace("-", "_") + "_"


def valid_name(name: str) -> bool:
    """An environment variable name Kubernetes accepts (printable ASCII, no '=')."""
    return bool(name) and all(" " <= c <= "~" for c in name) and "=" not in name


def from_keys(data: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The variables ``envFrom`` makes of a ConfigMap's or Secret's keys."""
    return {prefix + key: value for key, value in data.items() if valid_name(prefix + key)}

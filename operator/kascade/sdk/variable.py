"""``Variable.get``: Airflow Variables, read from the task's environment.

A DAG's ``variables=["etl-settings"]`` makes every key of those ConfigMaps an
environment variable ``VAR_<key>`` of every task (the API's ``spec.variables``);
Airflow's own ``AIRFLOW_VAR_<KEY>`` is read too, which is also how a local run
(``kascade run``) gets them: from your shell.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kascade.sdk.param import NOTSET

PREFIX = "VAR_"


class Variable:
    @staticmethod
    def _raw(key: str) -> str | None:
        for name in (PREFIX + key, PREFIX + key.upper(), "AIRFLOW_VAR_" + key.upper()):
            if name in os.environ:
                return os.environ[name]
        return None

    @classmethod
    def get(
        cls,
        key: str,
        default_var: Any = NOTSET,
        deserialize_json: bool = False,
        *,
        default: Any = NOTSET,
    ) -> Any:
        fallback = default if default is not NOTSET else default_var
        raw = cls._raw(key)
        if raw is None:
            if fallback is NOTSET:
                raise KeyError(
                    f"Variable {key} does not exist (looked for ${PREFIX}{key} and "
                    f"$AIRFLOW_VAR_{key.upper()})"
                )
            return fallback
        return json.loads(raw) if deserialize_json else raw

    @classmethod
    def set(cls, key: str, value: Any, serialize_json: bool = False, **_: Any) -> None:
        """Sets it for this process only: Variables are ConfigMaps, edited with kubectl."""
        os.environ[PREFIX + key] = json.dumps(value) if serialize_json else str(value)

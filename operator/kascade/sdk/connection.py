"""Connections, read from the task's environment.

A DAG's ``connections={"warehouse": "warehouse-conn"}`` mounts the keys of the
Secret ``warehouse-conn`` as ``CONN_WAREHOUSE_<KEY>`` (the API's
``spec.connections``): ``CONN_WAREHOUSE_HOST``, ``..._LOGIN``, ``..._PASSWORD``,
``..._PORT``, ``..._SCHEMA``, ``..._EXTRA`` (JSON) and ``..._CONN_TYPE``, or one
``..._URI``. Airflow's ``AIRFLOW_CONN_<ID>`` (a URI or JSON) is read too.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from kascade.sdk.exceptions import AirflowNotFoundException


def env_prefix(conn_id: str) -> str:
    return "CONN_" + conn_id.upper().replace("-", "_") + "_"


@dataclass
class Connection:
    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: str | None = None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_uri(self) -> str:
        auth = ""
        if self.login or self.password:
            auth = urllib.parse.quote(self.login or "", safe="")
            if self.password:
                auth += ":" + urllib.parse.quote(self.password, safe="")
            auth += "@"
        port = f":{self.port}" if self.port else ""
        path = f"/{self.schema}" if self.schema else ""
        return f"{self.conn_type or 'generic'}://{auth}{self.host or ''}{port}{path}"

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        parts = urllib.parse.urlsplit(uri)
        query = dict(urllib.parse.parse_qsl(parts.query))
        return cls(
            conn_id=conn_id,
            conn_type=parts.scheme.replace("-", "_") or None,
            host=parts.hostname,
            login=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            schema=parts.path.lstrip("/") or None,
            port=parts.port,
            extra=json.dumps(query) if query else None,
        )

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        prefix = env_prefix(conn_id)
        values = {
            k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)
        }
        if "uri" in values:
            return cls.from_uri(conn_id, values["uri"])
        if values:
            port = values.get("port")
            return cls(
                conn_id=conn_id,
                conn_type=values.get("conn_type"),
                host=values.get("host"),
                login=values.get("login"),
                password=values.get("password"),
                schema=values.get("schema"),
                port=int(port) if port else None,
                extra=values.get("extra"),
            )
        airflow = os.environ.get("AIRFLOW_CONN_" + conn_id.upper())
        if airflow:
            if airflow.lstrip().startswith("{"):
                data = json.loads(airflow)
                extra = data.pop("extra", None)
                return cls(
                    conn_id=conn_id,
                    **{k: v for k, v in data.items() if k in cls.__dataclass_fields__},
                    extra=json.dumps(extra) if isinstance(extra, dict) else extra,
                )
            return cls.from_uri(conn_id, airflow)
        raise AirflowNotFoundException(
            f"The conn_id `{conn_id}` isn't defined (no ${prefix}* or $AIRFLOW_CONN_"
            f"{conn_id.upper()} in the environment; declare it in DAG(connections=...))"
        )


class BaseHook:
    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get(conn_id)

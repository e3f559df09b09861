"""kascade.sdk: write Kascade pipelines as Airflow DAG files.

Porting an Airflow DAG means changing its imports only::

    from kascade.sdk import DAG, task, BashOperator, PythonOperator, TaskGroup

Everything here is pure Python (standard library only), because the Kascade
runtime imports it again inside each task's pod to run the task's callable.
``kascade compile`` / ``validate`` / ``run`` / ``apply`` turn the DAGs into
Pipelines (``kascade.sdk.compiler``); see docs/python-sdk.md.
"""

from __future__ import annotations

from typing import Any

from kascade.sdk._defaults import apply_defaults
from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.connection import BaseHook, Connection
from kascade.sdk.dag import DAG, dag
from kascade.sdk.decorators import setup, task, teardown
from kascade.sdk.dependencies import Label, chain, chain_linear, cross_downstream
from kascade.sdk.exceptions import (
    AirflowDagCycleException,
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    DagDefinitionError,
    DuplicateTaskIdFound,
    UnsupportedFeature,
)
from kascade.sdk.notifications import BaseNotifier, SmtpNotifier, send_smtp_notification
from kascade.sdk.operators.bash import BashOperator
from kascade.sdk.operators.email import EmailOperator
from kascade.sdk.operators.empty import DummyOperator, EmptyOperator
from kascade.sdk.operators.kubernetes import KubernetesPodOperator
from kascade.sdk.operators.python import (
    BranchPythonOperator,
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonOperator,
    PythonVirtualenvOperator,
    ShortCircuitOperator,
)
from kascade.sdk.operators.task_template import TaskTemplateOperator
from kascade.sdk.operators.trigger_dagrun import TriggerDagRunOperator
from kascade.sdk.param import Param, ParamsDict
from kascade.sdk.sensors.base import BaseSensorOperator, PokeReturnValue
from kascade.sdk.sensors.date_time import (
    DateTimeSensor,
    DateTimeSensorAsync,
    TimeDeltaSensor,
    TimeDeltaSensorAsync,
    TimeSensor,
    TimeSensorAsync,
)
from kascade.sdk.sensors.external_task import ExternalTaskSensor
from kascade.sdk.sensors.filesystem import FileSensor
from kascade.sdk.sensors.http import HttpSensor
from kascade.sdk.sensors.python import PythonSensor
from kascade.sdk.sensors.s3 import S3KeySensor
from kascade.sdk.sensors.sql import SqlSensor
from kascade.sdk.taskgroup import TaskGroup, task_group
from kascade.sdk.timing import days_ago
from kascade.sdk.trigger_rule import TriggerRule
from kascade.sdk.variable import Variable
from kascade.sdk.xcom_arg import DagParam, XComArg

BaseSensor = BaseSensorOperator

__all__ = [
    "DAG",
    "AirflowDagCycleException",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseSensorOperator",
    "BashOperator",
    "BranchPythonOperator",
    "BranchPythonVirtualenvOperator",
    "Connection",
    "DagDefinitionError",
    "DagParam",
    "DateTimeSensor",
    "DateTimeSensorAsync",
    "DummyOperator",
    "DuplicateTaskIdFound",
    "EmailOperator",
    "EmptyOperator",
    "ExternalPythonOperator",
    "ExternalTaskSensor",
    "FileSensor",
    "HttpSensor",
    "KubernetesPodOperator",
    "Label",
    "Param",
    "ParamsDict",
    "PokeReturnValue",
    "PythonOperator",
    "PythonSensor",
    "PythonVirtualenvOperator",
    "S3KeySensor",
    "ShortCircuitOperator",
    "SmtpNotifier",
    "SqlSensor",
    "TaskGroup",
    "TaskTemplateOperator",
    "TimeDeltaSensor",
    "TimeDeltaSensorAsync",
    "TimeSensor",
    "TimeSensorAsync",
    "TriggerDagRunOperator",
    "TriggerRule",
    "UnsupportedFeature",
    "Variable",
    "XComArg",
    "apply_defaults",
    "chain",
    "chain_linear",
    "cross_downstream",
    "dag",
    "days_ago",
    "send_smtp_notification",
    "setup",
    "task",
    "task_group",
    "teardown",
]

#: Airflow names with no Kascade equivalent yet, and what to use instead.
_NOT_PROVIDED = {
    "PostgresOperator": "run the SQL from a @task with your driver (an image that has it), "
    "or a KubernetesPodOperator with a psql image",
    "SQLExecuteQueryOperator": "run the SQL from a @task with your driver",
    "PostgresHook": "connect from the task with your driver; read the connection with "
    "BaseHook.get_connection(conn_id)",
    "S3Hook": "use your S3 client in the task; read the connection with BaseHook.get_connection",
    "DockerOperator": "use KubernetesPodOperator(image=...)",
    "SubDagOperator": "use a TaskGroup",
    "Dataset": "data-aware scheduling is not supported yet; use a schedule or a sensor",
    "Asset": "data-aware scheduling is not supported yet; use a schedule or a sensor",
    "Stats": "expose metrics from the task itself (stdout is kept in the task's log)",
}


def __getattr__(name: str) -> Any:
    if name in _NOT_PROVIDED:
        raise ImportError(f"kascade.sdk has no {name}: {_NOT_PROVIDED[name]}")
    raise AttributeError(f"module 'kascade.sdk' has no attribute {name!r}")

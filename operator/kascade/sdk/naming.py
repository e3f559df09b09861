"""Kubernetes names for Airflow ids, deterministically.

A ``dag_id`` such as ``process_customer_A`` is not a valid object name; the
Pipeline is named ``process-customer-a`` and keeps the original id in the
annotation ``kascade.io/dag-id``. Task ids keep their underscores (the API
allows them); ids the API cannot hold are reported with the rule they break.
"""

from __future__ import annotations

import hashlib
import re

DAG_ID_ANNOTATION = "kascade.io/dag-id"
SOURCE_ANNOTATION = "kascade.io/dag-file"
MAX_NAME = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TASK_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$")


def pipeline_name(dag_id: str) -> str:
    """``process_customer_A`` → ``process-customer-a`` (a hash keeps cut names unique)."""
    if len(dag_id) <= MAX_NAME and _DNS_LABEL.match(dag_id):
        return dag_id
    slug = re.sub(r"[^a-z0-9]+", "-", dag_id.lower()).strip("-") or "dag"
    if len(slug) > MAX_NAME:
        digest = hashlib.sha256(dag_id.encode()).hexdigest()[:6]
        slug = f"{slug[: MAX_NAME - 7].rstrip('-')}-{digest}"
    return slug


def task_name_problem(label: str) -> str | None:
    """Why ``label`` (a task id or group id without its group prefix) cannot be a task name."""
    if len(label) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if not _TASK_NAME.match(label):
        return "must be letters, digits, '_' and '-', starting and ending with a letter or digit"
    return None

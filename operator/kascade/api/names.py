"""Kubernetes' name rules, as the API server applies them, in the models.

A name that reaches Kubernetes (an object's ``metadata.name``, the Secret, ConfigMap,
ServiceAccount or Pipeline a spec refers to) must follow the API server's rule, so
that ``kascade validate``, the admission webhook and the CRD schema (generated from
these types) say the same thing about it. The local runner builds paths from such
names, and a DNS-1123 name cannot be ``..``, hold a ``/`` or leave its folder.

* :data:`ObjectName`: a DNS-1123 subdomain (``validation.NameIsDNSSubdomain``, what the
  API server checks for the names of custom resources, Secrets and ConfigMaps):
  lowercase letters, digits, ``-`` and ``.``, starting and ending with a letter or a
  digit, at most 253 characters.
* :data:`NamespaceName`: a DNS-1123 label (a namespace's rule): the same without
  ``.``, at most 63 characters.

Task and group names are not object names (Airflow's task ids, with ``_`` and capitals,
are welcome): the operator derives DNS-safe pod names from them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

__all__ = [
    "LABEL_PATTERN",
    "SUBDOMAIN_PATTERN",
    "NamespaceName",
    "ObjectName",
    "PoolName",
    "label_problem",
    "pool_name_problem",
    "subdomain_problem",
]

LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAX_SUBDOMAIN = 253
MAX_LABEL = 63
_LABEL = re.compile(LABEL_PATTERN.strip("^$"))
_SUBDOMAIN = re.compile(SUBDOMAIN_PATTERN.strip("^$"))


def _shown(name: str) -> str:
    return repr(name) if len(name) <= 70 else repr(name[:67] + "...")


def subdomain_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 subdomain, or None."""
    if len(name) > MAX_SUBDOMAIN:
        return f"{_shown(name)} is longer than {MAX_SUBDOMAIN} characters"
    if _SUBDOMAIN.fullmatch(name):
        return None
    return (
        f"{_shown(name)} is not a Kubernetes object name (DNS-1123 subdomain): lowercase "
        "letters, digits, '-' and '.', starting and ending with a letter or a digit"
    )


def label_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 label, or None."""
    if len(name) > MAX_LABEL:
        return f"{_shown(name)} is longer than {MAX_LABEL} characters"
    if _LABEL.fullmatch(name):
        return None
    return (
        f"{_shown(name)} is not a DNS-1123 label: lowercase letters, digits and '-', "
        "starting and ending with a letter or a digit"
    )


def pool_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a Pool (a DNS-1123 subdomain), with the name to use; or None.

    Airflow's pool names (``large_processing_pool``) are common in ported DAGs, so the
    message says which name would do.
    """
    if subdomain_problem(name) is None:
        return None
    suggestion = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")[:MAX_SUBDOMAIN] or "pool"
    return (
        f"{_shown(name)} cannot name a Pool: pool names are Kubernetes object names "
        f"(lowercase letters, digits, '-' and '.'); use {suggestion!r}"
    )


def _pool(name: str) -> str:
    problem = pool_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def _subdomain(name: str) -> str:
    problem = subdomain_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def _label(name: str) -> str:
    problem = label_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


ObjectName = Annotated[
    str,
    AfterValidator(_subdomain),
    WithJsonSchema({"type": "string", "maxLength": MAX_SUBDOMAIN, "pattern": SUBDOMAIN_PATTERN}),
]
NamespaceName = Annotated[
    str,
    AfterValidator(_label),
    WithJsonSchema({"type": "string", "maxLength": MAX_LABEL, "pattern": LABEL_PATTERN}),
]
PoolName = Annotated[
    str,
    AfterValidator(_pool),
    WithJsonSchema({"type": "string", "maxLength": MAX_SUBDOMAIN, "pattern": SUBDOMAIN_PATTERN}),
]

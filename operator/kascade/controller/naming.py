"""Deterministic object names, so that retried API calls are idempotent.

A pod's name is derived from (run, task instance, attempt, poke): if the operator
restarts between creating a pod and recording it, creating it again answers
AlreadyExists instead of starting a second copy of the same attempt.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^a-z0-9-]+")
MAX_NAME = 63
LABEL_MAX = 63


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-") or "x"


def _short_hash(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def bounded(base: str, key: str, limit: int = MAX_NAME) -> str:
    """``base`` made DNS-safe, cut to fit ``limit`` with a hash of ``key`` kept unique."""
    slug = _slug(base)
    if len(slug) <= limit and slug == base:
        return slug
    tail = _short_hash(key)
    return f"{slug[: limit - len(tail) - 1].rstrip('-')}-{tail}"


def taskrun_name(run: str, key: str) -> str:
    return bounded(
        f"{run}-{key.replace('.', '-').replace('[', '-').replace(']', '')}", f"{run}/{key}"
    )


def pod_name(taskrun: str, attempt: int, poke: int = 0) -> str:
    suffix = f"-a{attempt}" + (f"-p{poke}" if poke else "")
    return bounded(taskrun, taskrun, MAX_NAME - len(suffix)) + suffix


def run_name(pipeline: str, trigger: str, stamp: str) -> str:
    """``hello-world-scheduled-20260101t000000`` for a scheduled run."""
    return bounded(f"{pipeline}-{trigger}-{stamp}", f"{pipeline}/{trigger}/{stamp}")


def triggered_run_name(pipeline: str, run_id: str | None, origin: str) -> str:
    """The PipelineRun a trigger task makes: named after the ``runId`` asked for (the same
    id is the same run, which may exist), else after the asking attempt (``origin``:
    namespace/run/instance/attempt), so an attempt launched again finds its own run."""
    if run_id is not None:
        return bounded(f"{pipeline}-{run_id}", f"{pipeline}/{run_id}")
    _, run, instance, attempt = origin.rsplit("/", 3)
    instance = instance.replace(".", "-").replace("[", "-").replace("]", "")
    # The hash keeps two origins whose slugs meet (``a.b`` and ``a-b``) apart.
    readable = f"{pipeline}-from-{run}-{instance}-a{attempt}-{_short_hash(origin)}"
    return bounded(readable, origin)


def label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(value) <= LABEL_MAX:
        return value
    return value[: LABEL_MAX - 7].rstrip("-_.") + "-" + _short_hash(text)

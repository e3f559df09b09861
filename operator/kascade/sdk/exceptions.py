"""Airflow's exception names, so that DAG files keep their ``except``/``raise`` lines.

``UnsupportedFeature`` is Kascade's own: raised while the DAG file is parsed
(``kascade compile``/``validate``/``run``) when an Airflow argument or operator
has no Kascade equivalent yet, naming the argument and what to use instead, so
that nothing is silently dropped.
"""

from __future__ import annotations


class AirflowException(Exception):
    """Base of every error the SDK raises on purpose."""


class AirflowSkipException(AirflowException):
    """Raised in a task to skip it (not supported yet: see the runtime's message)."""


class AirflowFailException(AirflowException):
    """Raised in a task to fail it; Kascade still retries it under ``retries``."""


class AirflowSensorTimeout(AirflowException):
    """A sensor gave up (the engine enforces sensor timeouts; kept for ``except`` lines)."""


class AirflowNotFoundException(AirflowException):
    """A connection that is not defined."""


class DagDefinitionError(AirflowException):
    """A DAG that cannot be built: a cycle, a duplicate id, a bad argument."""


class DuplicateTaskIdFound(DagDefinitionError):
    pass


class AirflowDagCycleException(DagDefinitionError):
    pass


class AirflowDagDuplicatedIdException(DagDefinitionError):
    pass


class UnsupportedFeature(DagDefinitionError):
    """An Airflow feature Kascade cannot run (yet); the message says what to use instead."""

    def __init__(self, what: str, instead: str) -> None:
        self.what = what
        self.instead = instead
        super().__init__(f"{what} is not supported by kascade.sdk: {instead}")


class XComNotFound(AirflowException):
    pass

"""``EmptyOperator`` (and Airflow 1's ``DummyOperator``): a task that does nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kascade.sdk.baseoperator import BaseOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class EmptyOperator(BaseOperator):
    """Airflow marks it done without a worker; here it is a pod (or process) running ``true``."""

    ui_color = "#e8f7e4"

    def execute(self, context: dict[str, Any]) -> None:
        return None

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        return {"image": lo.image(), "command": ["true"]}


EmptyOperator._native_execute = EmptyOperator.execute
DummyOperator = EmptyOperator

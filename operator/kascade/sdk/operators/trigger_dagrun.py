"""``TriggerDagRunOperator``: not built yet (a task that creates a PipelineRun of another DAG).

Kept as a class so DAG files import it unchanged and the compiler can gain it
later; constructing one fails while the DAG file is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature


class TriggerDagRunOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = (
        "trigger_dag_id",
        "trigger_run_id",
        "conf",
        "logical_date",
    )

    def __init__(self, *, trigger_dag_id: str = "", **kwargs: Any) -> None:
        raise UnsupportedFeature(
            f"TriggerDagRunOperator(trigger_dag_id={trigger_dag_id!r})",
            "not built yet; make the other DAG wait with an ExternalTaskSensor, or trigger it "
            "with `kascade trigger` from outside",
        )

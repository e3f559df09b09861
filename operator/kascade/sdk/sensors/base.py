"""``BaseSensorOperator``: poke until a condition holds, with Airflow's knobs.

``poke_interval``, ``timeout``, ``mode`` (poke or reschedule), ``soft_fail`` and
``exponential_backoff`` become the task's ``sensor`` fields; the engine does the
waiting. A sensor Kascade knows (file, http, external task, date-time) is
checked without Python; any other ``poke`` (a subclass, ``PythonSensor``,
``@task.sensor``) runs in the Kascade runtime once per poke: met → exit 0, not
yet → exit 100 (the command-sensor protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.timing import duration

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer

DEFAULT_TIMEOUT = timedelta(days=7).total_seconds()


@dataclass
class PokeReturnValue:
    """A poke's verdict plus the XCom value to push when it is done."""

    is_done: bool
    xcom_value: Any = None

    def __bool__(self) -> bool:
        return self.is_done


class BaseSensorOperator(BaseOperator):
    ui_color = "#e6f1f2"
    _native_poke: ClassVar[Any] = None

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("poke", "reschedule"):
            raise ValueError(f"mode must be 'poke' or 'reschedule', got {mode!r}")
        for name, value in (
            ("max_wait", max_wait),
            ("silent_fail", silent_fail),
            ("never_fail", never_fail),
        ):
            if value:
                raise UnsupportedFeature(f"{name}={value!r}", "not supported by sensors yet")
        self.poke_interval = poke_interval
        self.timeout = timeout
        self.soft_fail = soft_fail
        # A deferred sensor frees its worker between checks: reschedule mode does the same here.
        self.mode = "reschedule" if deferrable else mode
        self.exponential_backoff = exponential_backoff

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        raise NotImplementedError(f"{type(self).__name__} must implement poke()")

    def execute(self, context: dict[str, Any]) -> Any:
        raise RuntimeError("sensors are poked by the engine; execute() is not called")

    def runs_in_runtime(self) -> bool:
        return type(self).poke is not type(self)._native_poke

    def sensor_fields(self, kind: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": kind}
        out["pokeInterval"] = duration(self.poke_interval, "poke_interval")
        out["timeout"] = duration(self.timeout, "timeout")
        if self.mode != "poke":
            out["mode"] = self.mode
        if self.soft_fail:
            out["softFail"] = True
        if self.exponential_backoff:
            out["exponentialBackoff"] = True
        out.update({k: v for k, v in extra.items() if v is not None})
        return out

    def outputs_of(self, result: Any) -> dict[str, Any]:
        if isinstance(result, PokeReturnValue):
            return super().outputs_of(result.xcom_value)
        return {}

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        if self.runs_in_runtime():
            return {**lo.runtime("poke"), "sensor": self.sensor_fields("command")}
        return self._lower_native(lo)

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no native sensor")

"""``DateTimeSensor``, ``TimeSensor`` and ``TimeDeltaSensor``: wait for a moment.

The first two are checked by the engine without a pod; ``TimeDeltaSensor``
(the data interval's end plus a delta) pokes in the runtime, because the engine's
templates do not add durations to dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.sensors.base import BaseSensorOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class DateTimeSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("target_time",)
    mappable_fields: ClassVar[Sequence[str]] = ("target_time",)

    def __init__(self, *, target_time: str | datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(target_time, datetime):
            target_time = _aware(target_time).isoformat()
        if not isinstance(target_time, str):
            raise TypeError(f"target_time must be a datetime or a string, got {target_time!r}")
        self.target_time = target_time

    def poke(self, context: dict[str, Any]) -> bool:
        return _now() >= _aware(datetime.fromisoformat(self.target_time))

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        target = lo.template(self.target_time, "target_time")
        return {"sensor": self.sensor_fields("datetime", targetTime=target)}


DateTimeSensor._native_poke = DateTimeSensor.poke


class TimeSensor(BaseSensorOperator):
    """Waits for a time of day on the day the data interval ends."""

    def __init__(self, *, target_time: time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, time):
            raise TypeError(f"target_time must be a datetime.time, got {target_time!r}")
        self.target_time = target_time

    def poke(self, context: dict[str, Any]) -> bool:
        end = context["data_interval_end"]
        return _now() >= datetime.combine(end.date(), self.target_time, tzinfo=UTC)

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        text = self.target_time.strftime("%H:%M:%S")
        return {"sensor": self.sensor_fields("time", targetTime=text)}


TimeSensor._native_poke = TimeSensor.poke


class TimeDeltaSensor(BaseSensorOperator):
    """Waits until ``delta`` after the data interval's end."""

    def __init__(self, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def poke(self, context: dict[str, Any]) -> bool:
        end: datetime = context["data_interval_end"]
        return _now() >= end + self.delta


DateTimeSensorAsync = DateTimeSensor
TimeSensorAsync = TimeSensor
TimeDeltaSensorAsync = TimeDeltaSensor

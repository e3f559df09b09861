"""Sensors that need the provider features of the seeds' issue (SQL, S3): not built yet."""

from __future__ import annotations

from typing import Any

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.sensors.base import BaseSensorOperator


class SqlSensor(BaseSensorOperator):
    def __init__(self, **kwargs: Any) -> None:
        raise UnsupportedFeature(
            "SqlSensor",
            "not built yet; poke the database from a @task.sensor (or a PythonSensor) "
            "with your driver, in an image that has it",
        )


class S3KeySensor(BaseSensorOperator):
    def __init__(self, **kwargs: Any) -> None:
        raise UnsupportedFeature(
            "S3KeySensor",
            "not built yet; poke the bucket from a @task.sensor with your S3 client, "
            "in an image that has it",
        )

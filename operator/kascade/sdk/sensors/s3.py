"""``S3KeySensor``: wait for an object in an S3-compatible bucket (Airflow's amazon provider).

It becomes an ``s3`` sensor poked by the engine (in-process locally, a pod of the
operator's image running ``kascade poke s3`` on the cluster) with the object-store
settings of the DAG connection ``aws_conn_id`` (``DAG(connections={id: secret})``).
``bucket_key`` may be a full ``s3://bucket/key`` URL; ``wildcard_match=True`` matches
it as a shell pattern (``*`` also crosses ``/``, as in Airflow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.sensors.base import BaseSensorOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class S3KeySensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("bucket_key", "bucket_name")
    ui_color = "#ffd700"

    def __init__(
        self,
        *,
        bucket_key: str | Sequence[str],
        bucket_name: str | None = None,
        wildcard_match: bool = False,
        aws_conn_id: str = "aws_default",
        check_fn: Any = None,
        use_regex: bool = False,
        metadata_keys: Sequence[str] | None = None,
        verify: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value, instead in (
            ("check_fn", check_fn, "poke from a @task.sensor with your S3 client"),
            ("use_regex", use_regex, "use wildcard_match=True with a shell pattern"),
            ("metadata_keys", metadata_keys, "poke from a @task.sensor with your S3 client"),
            ("verify", verify, "set caCert in the connection's Secret"),
        ):
            if value:
                raise UnsupportedFeature(f"S3KeySensor({name}=...)", instead)
        if not isinstance(bucket_key, str):
            keys = list(bucket_key)
            if len(keys) != 1:
                raise UnsupportedFeature(
                    "S3KeySensor(bucket_key=[several keys])", "use one sensor per key"
                )
            bucket_key = keys[0]
        if bucket_key.startswith("s3://"):
            if bucket_name:
                raise ValueError("S3KeySensor: give bucket_name or an s3:// bucket_key, not both")
            bucket_name, _, bucket_key = bucket_key.removeprefix("s3://").partition("/")
        self.bucket_key = bucket_key
        self.bucket_name = bucket_name
        self.wildcard_match = wildcard_match
        self.aws_conn_id = aws_conn_id

    def poke(self, context: dict[str, Any]) -> bool:
        raise NotImplementedError(
            "S3KeySensor is poked by Kascade itself; override poke() to run yours"
        )

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        target = "wildcard" if self.wildcard_match else "key"
        fields = self.sensor_fields(
            "s3",
            connection=self.aws_conn_id,
            bucket=lo.template(self.bucket_name, "bucket_name") if self.bucket_name else None,
            **{target: lo.template(self.bucket_key, "bucket_key")},
        )
        return {"sensor": fields}


S3KeySensor._native_poke = S3KeySensor.poke

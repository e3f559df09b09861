"""``FileSensor``: a path (glob allowed, templated) that must exist on a volume of the task."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.sensors.base import BaseSensorOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class FileSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("filepath",)
    ui_color = "#91818a"
    mappable_fields: ClassVar[Sequence[str]] = ("filepath",)

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fs_conn_id != "fs_default":
            raise UnsupportedFeature(
                f"FileSensor(fs_conn_id={fs_conn_id!r})",
                "give the full path in filepath (connections are not read when compiling)",
            )
        self.filepath = filepath
        self.recursive = recursive

    def poke(self, context: dict[str, Any]) -> bool:
        return any(True for _ in glob.iglob(str(self.filepath), recursive=self.recursive))

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        path = lo.template(self.filepath, "filepath")
        return {"image": lo.image(), "sensor": self.sensor_fields("file", path=path)}


FileSensor._native_poke = FileSensor.poke

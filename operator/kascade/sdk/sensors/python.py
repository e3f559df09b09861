"""``PythonSensor``: a callable poked in the Kascade runtime until it returns true."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from kascade.sdk.operators.python import CallableArgs, check_callable
from kascade.sdk.sensors.base import BaseSensorOperator, PokeReturnValue


class PythonSensor(CallableArgs, BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        check_callable(python_callable)
        super().__init__(**kwargs)
        self._set_callable(python_callable, op_args, op_kwargs, templates_dict)

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        result = self.call_with_context(context)
        return result if isinstance(result, PokeReturnValue) else bool(result)

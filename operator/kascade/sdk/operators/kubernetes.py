"""``KubernetesPodOperator``: any image, as the task's container.

Arguments follow Airflow's provider (``image``, ``cmds``, ``arguments``,
``env_vars``, ``container_resources``, volumes...). Kubernetes client model
objects (``k8s.V1Volume(...)``) are accepted and written in their API form.
Outputs are read from ``$KASCADE_OUTPUTS``, not from ``/airflow/xcom``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


def api_form(value: Any) -> Any:
    """Kubernetes client models (``attribute_map``) → plain camelCase data; other values as is."""
    attribute_map = getattr(type(value), "attribute_map", None)
    if isinstance(attribute_map, dict):
        out = {}
        for attr, wire in attribute_map.items():
            item = getattr(value, attr, None)
            if item is not None:
                out[wire] = api_form(item)
        return out
    if isinstance(value, list | tuple):
        return [api_form(v) for v in value]
    if isinstance(value, dict):
        return {k: api_form(v) for k, v in value.items()}
    return value


class KubernetesPodOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("image", "cmds", "arguments", "env_vars")
    mappable_fields: ClassVar[Sequence[str]] = ("image",)

    def __init__(
        self,
        *,
        image: str | None = None,
        cmds: list[str] | None = None,
        arguments: list[str] | None = None,
        env_vars: dict[str, Any] | list[Any] | None = None,
        namespace: str | None = None,
        name: str | None = None,
        container_security_context: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        get_logs: bool = True,
        on_finish_action: str = "delete_pod",
        is_delete_operator_pod: bool | None = None,
        in_cluster: bool | None = None,
        kubernetes_conn_id: str | None = None,
        cluster_context: str | None = None,
        startup_timeout_seconds: int | None = None,
        do_xcom_push: bool = False,
        **kwargs: Any,
    ) -> None:
        for arg, value, instead in (
            ("labels", labels, "pod labels are set by Kascade"),
            ("annotations", annotations, "pod annotations are set by Kascade"),
            ("cluster_context", cluster_context, "tasks run in the Pipeline's cluster"),
            ("kubernetes_conn_id", kubernetes_conn_id, "tasks run in the Pipeline's cluster"),
        ):
            if value:
                raise UnsupportedFeature(f"KubernetesPodOperator({arg}=...)", instead)
        if do_xcom_push:
            raise UnsupportedFeature(
                "KubernetesPodOperator(do_xcom_push=True) (/airflow/xcom/return.json)",
                "write a JSON object to the file named by $KASCADE_OUTPUTS instead",
            )
        if startup_timeout_seconds is not None:
            kwargs.setdefault("start_timeout", startup_timeout_seconds)
        if image is not None:
            kwargs["image"] = image
        super().__init__(do_xcom_push=False, **kwargs)
        if container_security_context:
            merged = dict(self.container.get("security_context") or {})
            merged.update(api_form(container_security_context))
            self.container["security_context"] = merged
        self.namespace = namespace
        self.cmds = list(cmds or [])
        self.arguments = list(arguments or [])
        self.env_vars = env_vars

    @property
    def image(self) -> str | None:
        return self.container.get("image")

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        fields: dict[str, Any] = {"image": lo.template(lo.image(), "image")}
        if self.cmds:
            fields["command"] = [lo.template(c, "cmds") for c in self.cmds]
        if self.arguments:
            fields["args"] = [lo.template(a, "arguments") for a in self.arguments]
        env = self._env(lo)
        if env:
            fields["env"] = env
        return fields

    def _env(self, lo: Lowerer) -> list[dict[str, Any]]:
        if not self.env_vars:
            return []
        if isinstance(self.env_vars, dict):
            return [
                {"name": str(k), "value": lo.template(v, f"env_vars[{k!r}]")}
                for k, v in self.env_vars.items()
            ]
        out = []
        for item in api_form(self.env_vars):
            entry = dict(item)
            if "value" in entry and entry["value"] is not None:
                entry["value"] = lo.template(entry["value"], "env_vars")
            out.append(entry)
        return out

    def execute(self, context: dict[str, Any]) -> Any:
        raise RuntimeError("a KubernetesPodOperator is its own pod; it has no Python execute")


KubernetesPodOperator._native_execute = KubernetesPodOperator.execute

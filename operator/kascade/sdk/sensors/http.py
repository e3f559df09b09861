"""``HttpSensor``: poke an HTTP endpoint.

With a full URL as ``endpoint`` and no Python (no ``response_check``, headers or
request params), the engine checks the status itself (``busybox`` ``wget`` in a
pod, or in-process locally). Otherwise the poke runs in the Kascade runtime:
the base URL comes from the connection ``http_conn_id`` (its env vars, see
``BaseHook``), and ``response_check(response, **context)`` decides.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.lowering import SHELL_IMAGE
from kascade.sdk.operators.python import determine_kwargs
from kascade.sdk.sensors.base import BaseSensorOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class Response:
    """The part of ``requests.Response`` that response checks use."""

    def __init__(self, status_code: int, content: bytes, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.content = content
        self.headers = headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def ok(self) -> bool:
        return self.status_code < 400


class HttpSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("endpoint", "request_params", "headers")

    def __init__(
        self,
        *,
        endpoint: str,
        http_conn_id: str = "http_default",
        method: str = "GET",
        request_params: dict[str, Any] | None = None,
        request_kwargs: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        response_error_codes_allowlist: list[str] | None = None,
        response_check: Callable[..., bool] | None = None,
        extra_options: dict[str, Any] | None = None,
        tcp_keep_alive: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.http_conn_id = http_conn_id
        self.method = method.upper()
        self.request_params = request_params or {}
        self.headers = headers or {}
        self.response_error_codes_allowlist = response_error_codes_allowlist or ["404"]
        self.response_check = response_check
        self.extra_options = extra_options or {}

    def _native(self) -> bool:
        return (
            isinstance(self.endpoint, str)
            and self.endpoint.startswith(("http://", "https://"))
            and self.response_check is None
            and not self.request_params
            and not self.headers
            and not self.extra_options
            and self.method in ("GET", "HEAD")
        )

    def runs_in_runtime(self) -> bool:
        return super().runs_in_runtime() or not self._native()

    def url(self) -> str:
        import urllib.parse  # a task that never pokes HTTP does not pay for it

        if self.endpoint.startswith(("http://", "https://")):
            base = self.endpoint
        else:
            from kascade.sdk.connection import Connection

            conn = Connection.get(self.http_conn_id)
            host = conn.host or ""
            if "://" not in host:
                host = f"{conn.conn_type or 'http'}://{host}"
            if conn.port:
                host = f"{host}:{conn.port}"
            base = host.rstrip("/") + "/" + self.endpoint.lstrip("/")
        if self.request_params:
            base += ("&" if "?" in base else "?") + urllib.parse.urlencode(self.request_params)
        return base

    def poke(self, context: dict[str, Any]) -> bool:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url(), method=self.method, headers=self.headers)
        timeout = float(self.extra_options.get("timeout", 30))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                response = Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            if str(exc.code) in self.response_error_codes_allowlist:
                return False
            raise
        if self.response_check is not None:
            kwargs = determine_kwargs(self.response_check, [response], context)
            return bool(self.response_check(response, **kwargs))
        return True

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        fields = self.sensor_fields(
            "http", url=lo.template(self.endpoint, "endpoint"), method=self.method
        )
        # The pod's poke needs wget: busybox, unless this sensor names its own image
        # (an image from default_args is for the DAG's Python tasks).
        own = "image" in self.container and "image" not in getattr(self, "_defaulted", set())
        return {"image": self.container["image"] if own else SHELL_IMAGE, "sensor": fields}


HttpSensor._native_poke = HttpSensor.poke

"""Outputs beyond 4 KiB, kept in the object store configured once for the installation.

Both drivers use this module: the local runner with the ``KASCADE_STORE_<key>`` variables
of your shell, the operator with the same variables (the chart fills them from a Secret).
The engine decides which values move (``engine/outputs.split_outputs``) and under which
key (``object_key``: per namespace, pipeline, run, task, attempt); this module writes them,
and reads them back for the engine (:meth:`OutputsStore.fetch`, the engine's
``ValueStore``) with a size cap and a small in-memory cache, so that a template reading the
same value for many tasks fetches it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from kascade.api.protocol import OUTPUTS_LIMIT_BYTES
from kascade.engine import outputs
from kascade.engine.outputs import OutputRef
from kascade.integrations.objectstore import ObjectStore, ObjectStoreError
from kascade.integrations.settings import ObjectStoreSettings, SettingsError, from_env

__all__ = ["OutputsStore", "StoreError", "from_environment"]

STORE_PREFIX = "KASCADE_STORE_"
OUTPUTS_MAX_ENV = "KASCADE_OUTPUTS_MAX_BYTES"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""The largest outputs of one attempt with a store (a pod's log carries them to the
operator, and the kubelet rotates a container's log at 10 MiB by default)."""
MAX_MAX_BYTES = 8 * 1024 * 1024
CACHE_BYTES = 32 * 1024 * 1024
"""Values read back are kept (least recently used first out) up to this many bytes."""


class StoreError(Exception):
    """A value could not be written or read; the message says which and why."""


class OutputsStore:
    def __init__(self, settings: ObjectStoreSettings, max_bytes: int = DEFAULT_MAX_BYTES):
        self.settings = settings
        self.store = ObjectStore(settings)
        self.max_bytes = max_bytes
        self._read: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        prefix = f"{self.store.prefix}/" if self.store.prefix else ""
        return f"s3://{self.store.bucket}/{prefix}"

    def offload(self, values: Mapping[str, Any], key_of: Callable[[str], str]) -> dict[str, Any]:
        """``values`` with those :func:`~kascade.engine.outputs.split_outputs` moves written to
        the store (at ``key_of(name)``) and replaced by their references."""
        inline, moved = outputs.split_outputs(values)
        for name, data in moved.items():
            key = key_of(name)
            try:
                self.store.put(key, data, content_type="application/json")
            except ObjectStoreError as exc:
                raise StoreError(f"output {name!r}: {exc}") from None
            inline[name] = outputs.reference(key, data).wire()
        return inline

    def fetch(self, ref: OutputRef) -> Any:
        """The value of a reference (the engine's ValueStore); raises StoreError."""
        with self._lock:
            if ref.key in self._read:
                self._read.move_to_end(ref.key)
                return self._read[ref.key][1]
        if ref.size > self.max_bytes:
            raise StoreError(f"{ref.key} is {ref.size} bytes, over the cap of {self.max_bytes}")
        try:
            data = self.store.get(ref.key, max_bytes=self.max_bytes)
            value = outputs.stored(data, ref)
        except (ObjectStoreError, ValueError) as exc:
            raise StoreError(str(exc)) from None
        with self._lock:
            self._read[ref.key] = (ref.size, value)
            self._held += ref.size
            while self._held > CACHE_BYTES and len(self._read) > 1:
                _, (size, _) = self._read.popitem(last=False)
                self._held -= size
        return value


def from_environment(environ: Mapping[str, str]) -> OutputsStore | None:
    """The store the ``KASCADE_STORE_<key>`` variables describe (None when there are none);
    raises SettingsError naming the variable and the problem."""
    data = from_env(STORE_PREFIX, environ)
    raw = environ.get(OUTPUTS_MAX_ENV, "").strip()
    cap = DEFAULT_MAX_BYTES
    if raw:
        if not raw.isdigit() or not OUTPUTS_LIMIT_BYTES < int(raw) <= MAX_MAX_BYTES:
            raise SettingsError(
                f"{OUTPUTS_MAX_ENV}={raw!r}: a number of bytes above "
                f"{OUTPUTS_LIMIT_BYTES} and at most {MAX_MAX_BYTES}"
            )
        cap = int(raw)
    if not data:
        return None
    settings = ObjectStoreSettings.from_data(data, f"environment {STORE_PREFIX}*")
    if not settings.bucket:
        raise SettingsError(f"{STORE_PREFIX}bucket: the object store for outputs needs a bucket")
    return OutputsStore(settings, cap)

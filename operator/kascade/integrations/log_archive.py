"""Task logs that outlive their pods: one object per attempt in the installation's store.

The operator writes each ended attempt's log (``controller/log_archiving.py``); ``kascade
logs`` and ``kascade ui`` read it back once the pod is gone. Both sides build the key
here, from parts that are checked first, so a name can never climb out of the logs
folder or land on another attempt's object::

    <prefix>/logs/<namespace>/<run>/<task>/attempt-<n>.log

The store is the one large outputs use (the ``KASCADE_STORE_<key>`` settings, one
Secret in the chart). Logs are kept up to a cap (``KASCADE_LOG_ARCHIVE_MAX_BYTES``): the
first bytes of a longer log, then a line saying where and why it was cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from kascade.integrations.objectstore import ObjectNotFoundError, ObjectStore, ObjectStoreError
from kascade.integrations.settings import ObjectStoreSettings, SettingsError, from_env

__all__ = [
    "ArchiveUnavailable",
    "LogArchive",
    "LogKeyError",
    "LogNotArchived",
    "capped",
    "from_environment",
    "log_key",
]

STORE_PREFIX = "KASCADE_STORE_"
ENABLED_ENV = "KASCADE_LOG_ARCHIVE"
MAX_BYTES_ENV = "KASCADE_LOG_ARCHIVE_MAX_BYTES"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
"""A log longer than this keeps its first 8 MiB (the kubelet rotates at 10 MiB by default)."""
MIN_MAX_BYTES = 1024
MAX_MAX_BYTES = 256 * 1024 * 1024
FOLDER = "logs"
READ_CHUNK = 64 * 1024

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_RUN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_TASK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}(\[[0-9]{1,9}\])?")


class LogKeyError(ValueError):
    """A part of a log's key is not a valid name (the message says which and why)."""


class LogNotArchived(LookupError):
    """The archive has no log for that attempt."""


class ArchiveUnavailable(RuntimeError):
    """The store could not be read; the message says where and why (never a credential)."""


class AttemptLike(Protocol):
    """What names an attempt (``kascade.ui.logs.AttemptRef`` has these fields)."""

    namespace: str
    run: str
    task: str
    number: int
    pod: str | None


def log_key(namespace: str, run: str, task: str, attempt: int) -> str:
    """The key of one attempt's log (below the store's prefix); raises LogKeyError.

    Each part must be the Kubernetes or Kascade name it claims to be: no ``/``, no
    ``..``, nothing empty, so the key is exactly one attempt's and no other's.
    """
    for field, value, pattern in (
        ("namespace", namespace, _NAMESPACE),
        ("run", run, _RUN),
        ("task", task, _TASK),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
            raise LogKeyError(f"log archive: {field} {value!r} is not a valid {field} name")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise LogKeyError(f"log archive: attempt {attempt!r} is not a number from 1")
    return f"{FOLDER}/{namespace}/{run}/{task}/attempt-{attempt}.log"


def cut_note(max_bytes: int) -> bytes:
    return (
        f"\n[kascade: log archive: the log was longer than {max_bytes} bytes; "
        "only its first bytes were kept]\n"
    ).encode()


def capped(data: bytes, max_bytes: int) -> bytes:
    """``data`` as archived: whole, or its first ``max_bytes`` and a line saying it was cut.

    The reader asks for one byte more than the cap, so a longer log is known to be
    longer without reading it all.
    """
    if len(data) <= max_bytes:
        return data
    return data[:max_bytes] + cut_note(max_bytes)


class LogArchive:
    """Logs in the store: written by the operator, read by ``kascade logs`` and the UI."""

    def __init__(self, store: ObjectStore, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.store = store
        self.max_bytes = max_bytes

    @property
    def where(self) -> str:
        prefix = f"{self.store.prefix}/" if self.store.prefix else ""
        return f"s3://{self.store.bucket}/{prefix}"

    def write(
        self,
        namespace: str,
        run: str,
        task: str,
        attempt: int,
        data: bytes,
        *,
        mask: Callable[[bytes], bytes] | None = None,
    ) -> str:
        """Store an attempt's log (cut to the cap, then ``mask`` applied: whether it was
        cut is decided on the log as read); returns its key. Raises ObjectStoreError (the
        store refused or is down) or LogKeyError."""
        key = log_key(namespace, run, task, attempt)
        kept = capped(data, self.max_bytes)
        if mask is not None:
            kept = mask(kept)
        self.store.put(key, kept, content_type="text/plain; charset=utf-8")
        return key

    def read(self, namespace: str, run: str, task: str, attempt: int) -> bytes:
        """An attempt's archived log; LogNotArchived or ArchiveUnavailable otherwise."""
        key = log_key(namespace, run, task, attempt)
        limit = self.max_bytes + len(cut_note(self.max_bytes))
        try:
            return self.store.get(key, max_bytes=limit)
        except ObjectNotFoundError:
            raise LogNotArchived(f"{self.where}{key}: no such object") from None
        except ObjectStoreError as exc:
            raise ArchiveUnavailable(f"log archive: {exc}") from None

    def chunks(self, ref: AttemptLike) -> Iterator[bytes]:
        """The archived log of the attempt ``ref`` names, in pieces (the reading path's
        ``Archive``); the errors name the pod and the attempt and say why."""
        pod = f"pod {ref.pod}" if ref.pod else "its pod"
        try:
            data = self.read(ref.namespace, ref.run, ref.task, ref.number)
        except LogNotArchived as exc:
            raise LogNotArchived(
                f"attempt {ref.number} of {ref.task} in run {ref.run}: {pod} is gone and the "
                f"log archive has no log for it ({exc}); its TaskRun's attempt says why "
                "(logArchived, logArchiveMessage)"
            ) from None
        except ArchiveUnavailable as exc:
            raise ArchiveUnavailable(
                f"attempt {ref.number} of {ref.task} in run {ref.run}: {pod} is gone and the "
                f"log archive could not be read: {exc}"
            ) from None
        for start in range(0, len(data), READ_CHUNK):
            yield data[start : start + READ_CHUNK]


def from_environment(environ: Mapping[str, str]) -> LogArchive | None:
    """The archive the ``KASCADE_STORE_<key>`` variables describe, unless
    ``KASCADE_LOG_ARCHIVE=off``; None without a store. Raises SettingsError naming the
    variable and the problem."""
    switch = environ.get(ENABLED_ENV, "").strip().lower()
    if switch not in ("", "on", "off"):
        raise SettingsError(f"{ENABLED_ENV}={switch!r}: give on or off")
    raw = environ.get(MAX_BYTES_ENV, "").strip()
    cap = DEFAULT_MAX_BYTES
    if raw:
        if not raw.isdigit() or not MIN_MAX_BYTES <= int(raw) <= MAX_MAX_BYTES:
            raise SettingsError(
                f"{MAX_BYTES_ENV}={raw!r}: a number of bytes from {MIN_MAX_BYTES} "
                f"to {MAX_MAX_BYTES}"
            )
        cap = int(raw)
    data = from_env(STORE_PREFIX, environ)
    if switch == "off" or not data:
        return None
    settings = ObjectStoreSettings.from_data(data, f"environment {STORE_PREFIX}*")
    if not settings.bucket:
        raise SettingsError(f"{STORE_PREFIX}bucket: the log archive needs a bucket")
    return LogArchive(ObjectStore(settings), cap)

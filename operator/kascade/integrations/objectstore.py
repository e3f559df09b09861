"""A small client for one bucket of an S3-compatible object store.

Built on obstore (Python bindings of Apache Arrow's Rust ``object_store``
crate): one native wheel with no Python dependencies, about 8 MiB of RSS and
0.2 s to import, where boto3 costs about 37 MiB and 1 s (docs/object-store.md).
It speaks S3 to AWS and to any compatible server (versitygw, MinIO, Ceph RGW,
SeaweedFS). Callers see only :class:`ObjectStore` and its errors, so the
library stays swappable.

Reads take a size cap that is checked against the object's metadata before
its body is read: a 10 GiB object cannot blow up the caller's memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kascade.integrations.settings import ObjectStoreSettings, SettingsError, bucket_name_problem

if TYPE_CHECKING:
    from obstore import ObjectMeta
    from obstore.store import S3Store

__all__ = [
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectTooLargeError",
]


class ObjectStoreError(Exception):
    """The store refused or could not be reached; the message names bucket and key."""


class ObjectNotFoundError(ObjectStoreError):
    """No object at that key."""


class ObjectTooLargeError(ObjectStoreError):
    """The object is larger than the caller's cap; nothing of it was read."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    """The key in the bucket, without the store's prefix."""
    size: int
    last_modified: datetime
    etag: str | None


class ObjectStore:
    """One bucket (and optional key prefix) of a store; every method blocks.

    ``retries`` bounds how often a failed request is retried (with backoff) and
    ``timeout`` bounds each request, so a store that is down answers with an
    :class:`ObjectStoreError` in bounded time, never a hang.
    """

    def __init__(
        self,
        settings: ObjectStoreSettings,
        bucket: str | None = None,
        *,
        prefix: str | None = None,
        retries: int = 2,
    ) -> None:
        bucket = bucket or settings.bucket
        if not bucket:
            raise SettingsError("object store: no bucket given (set the key 'bucket')")
        problem = bucket_name_problem(bucket)
        if problem:
            raise SettingsError(f"object store: bucket {bucket!r}: {problem}")
        self.bucket = bucket
        self.prefix = (settings.prefix if prefix is None else prefix).strip("/")
        self._where = f"s3://{bucket}/{self.prefix + '/' if self.prefix else ''}"
        self._store = _open(settings, bucket, self.prefix, retries)

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Write ``data`` at ``key`` atomically (readers never see half an object)."""
        import obstore

        attributes: dict[Any, str] = {"Content-Type": content_type} if content_type else {}
        self._call("put", key, lambda: obstore.put(self._store, key, data, attributes=attributes))

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; :class:`ObjectTooLargeError` past ``max_bytes``, unread."""
        import obstore

        result = self._call("get", key, lambda: obstore.get(self._store, key))
        size = int(result.meta["size"])
        if max_bytes is not None and size > max_bytes:
            raise ObjectTooLargeError(
                f"{self._where}{key} is {size} bytes, over the limit of {max_bytes} bytes"
            )
        return bytes(self._call("get", key, result.bytes))

    def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or None when there is no object at ``key``."""
        import obstore

        try:
            meta = self._call("head", key, lambda: obstore.head(self._store, key))
        except ObjectNotFoundError:
            return None
        return self._info(meta)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a plain string prefix, not only
        whole folders: ``logs/2024`` matches ``logs/2024-01-01.txt``), in pages."""
        import obstore

        # obstore lists by folder: list the folder that holds the prefix, filter the rest.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        stream = self._call("list", prefix, lambda: obstore.list(self._store, folder or None))
        while True:
            try:
                page = self._call("list", prefix, lambda: next(stream))
            except StopIteration:
                return
            for meta in page:
                info = self._info(meta)
                if info.key.startswith(prefix):
                    yield info

    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error (S3's rule)."""
        import obstore

        self._call("delete", key, lambda: obstore.delete(self._store, key))

    def _info(self, meta: ObjectMeta) -> ObjectInfo:
        key = meta["path"]
        if self.prefix and key.startswith(self.prefix + "/"):
            key = key[len(self.prefix) + 1 :]
        return ObjectInfo(
            key=key, size=meta["size"], last_modified=meta["last_modified"], etag=meta["e_tag"]
        )

    def _call(self, what: str, key: str, action: Any) -> Any:
        """Run one obstore call and turn its errors into ours, with a short message.

        obstore's messages carry the whole request chain; the first line is enough
        and never holds credentials (they are only in request headers).
        """
        from obstore import exceptions

        try:
            return action()
        except StopIteration:
            raise
        except (exceptions.NotFoundError, FileNotFoundError):
            # obstore raises the builtin FileNotFoundError for a 404.
            missing = "no such bucket" if what in ("put", "list") else "no such object"
            raise ObjectNotFoundError(f"{what} {self._where}{key}: {missing}") from None
        except (exceptions.BaseError, OSError, RuntimeError) as exc:
            raise ObjectStoreError(f"{what} {self._where}{key}: {_summary(exc)}") from None


def _summary(exc: BaseException) -> str:
    """The first line of obstore's message, without the XML error body it may quote."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.split("<?xml", 1)[0].rstrip(": ")


def _open(settings: ObjectStoreSettings, bucket: str, prefix: str, retries: int) -> S3Store:
    from obstore.store import S3Store

    timeout = timedelta(seconds=settings.timeout)
    client: dict[str, Any] = {
        "connect_timeout": timedelta(seconds=min(settings.timeout, 10.0)),
        "timeout": timeout,
    }
    if settings.endpoint and settings.endpoint.startswith("http://"):
        client["allow_http"] = True
    if settings.ca_cert:
        client["root_certificate"] = settings.ca_cert
    config: dict[str, Any] = {
        "region": settings.region,
        "virtual_hosted_style_request": not settings.path_style,
    }
    if settings.endpoint:
        config["endpoint"] = settings.endpoint
    if settings.access_key_id and settings.secret_access_key:
        config["access_key_id"] = settings.access_key_id
        config["secret_access_key"] = settings.secret_access_key
        if settings.session_token:
            config["session_token"] = settings.session_token
    retry: dict[str, Any] = {
        "max_retries": retries,
        "retry_timeout": timeout,
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=2),
        },
    }
    try:
        return S3Store(
            bucket,
            prefix=prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
        )
    except Exception as exc:  # obstore validates the configuration here
        raise SettingsError(f"object store s3://{bucket}: {str(exc).splitlines()[0]}") from None

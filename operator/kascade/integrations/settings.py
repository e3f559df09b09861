"""Connection settings for SMTP, PostgreSQL and an S3-compatible store.

Settings come from the data of a Kubernetes Secret (decoded to text) or, for a
task pod and the local runner, from environment variables that carry a
prefix (``CONN_WAREHOUSE_host``: what ``envFrom`` with a prefix makes of a
Secret). Both are flat ``key -> text`` mappings, parsed here once.

Errors name the source and the key and say what is wrong, never the value:
most of these values are credentials. Surrounding whitespace is removed from
every value (``kubectl create secret --from-file`` keeps a file's last newline).
Unknown keys are errors (with a suggestion), so a typo such as ``sslMode`` is
not silently ignored.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast
from urllib.parse import urlsplit

__all__ = [
    "ObjectStoreSettings",
    "PostgresSettings",
    "SettingsError",
    "SmtpSettings",
    "bucket_name_problem",
    "from_env",
]

SmtpSecurity = Literal["starttls", "tls", "none"]
_SMTP_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


class SettingsError(ValueError):
    """A setting that is missing or malformed; says where it came from and which key."""


def from_env(prefix: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that start with ``prefix``, with the prefix removed.

    ``envFrom: [{secretRef: {name: s}, prefix: CONN_X_}]`` turns the Secret's
    key ``host`` into ``CONN_X_host``; this gives back ``{"host": ...}``.
    """
    return {
        name[len(prefix) :]: value for name, value in environ.items() if name.startswith(prefix)
    }


class _Reader:
    """Typed access to one flat mapping, with errors that name source and key."""

    def __init__(self, data: Mapping[str, str], source: str, known: Iterable[str]) -> None:
        self.data = {key: value.strip() for key, value in data.items()}
        self.source = source
        known = list(known)
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.error(key, f"unknown key{hint}; known keys: {', '.join(known)}")

    def error(self, key: str, problem: str) -> SettingsError:
        return SettingsError(f"{self.source}: key {key!r}: {problem}")

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        return value or None

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise self.error(key, "is required")
        return value

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.text(key)
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise self.error(key, "must be a whole number")
        number = int(value)
        if not low <= number <= high:
            raise self.error(key, f"must be between {low} and {high}")
        return number

    def seconds(self, key: str, default: float) -> float:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = float(value.removesuffix("s"))
        except ValueError:
            raise self.error(key, "must be a number of seconds (e.g. 30)") from None
        if not 0 < number <= 3600:
            raise self.error(key, "must be more than 0 and at most 3600 seconds")
        return number

    def flag(self, key: str) -> bool:
        value = (self.text(key) or "false").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise self.error(key, "must be true or false")

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(key) or default).lower()
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}")
        return value

    def pem(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
            raise self.error(key, "must be PEM text (-----BEGIN CERTIFICATE----- ...)")
        return value

    def credentials(self, user_key: str, password_key: str) -> tuple[str | None, str | None]:
        user, password = self.text(user_key), self.text(password_key)
        if (user is None) != (password is None):
            missing, given = (
                (password_key, user_key) if password is None else (user_key, password_key)
            )
            raise self.error(missing, f"is required when {given} is set")
        return user, password


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send mail. Keys: host, port, security, user, password, from,
    timeout, caCert, insecureSkipVerify."""

    host: str
    port: int
    sender: str
    security: SmtpSecurity = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_cert: str | None = field(default=None, repr=False)
    """Extra CA certificates (PEM) to trust, for a server with an internal CA."""
    verify: bool = True
    """Check the server's certificate and name (turning it off is for tests only)."""

    KEYS = (
        "host",
        "port",
        "security",
        "user",
        "password",
        "from",
        "timeout",
        "caCert",
        "insecureSkipVerify",
    )

    @classmethod
    def from_data(cls, data: Mapping[str, str], source: str) -> SmtpSettings:
        r = _Reader(data, source, cls.KEYS)
        security = cast(SmtpSecurity, r.choice("security", ("starttls", "tls", "none"), "starttls"))
        user, password = r.credentials("user", "password")
        if user is not None and security == "none":
            raise r.error("security", "must be starttls or tls when a password is set")
        sender = r.required("from")
        if "@" not in sender:
            raise r.error("from", "must be an e-mail address (name@domain)")
        return cls(
            host=r.required("host"),
            port=r.integer("port", 1, 65535) or _SMTP_DEFAULT_PORTS[security],
            sender=sender,
            security=security,
            user=user,
            password=password,
            timeout=r.seconds("timeout", 30.0),
            ca_cert=r.pem("caCert"),
            verify=not r.flag("insecureSkipVerify"),
        )


@dataclass(frozen=True)
class PostgresSettings:
    """A PostgreSQL connection. Keys: host, port, database, user, password, sslmode,
    connectTimeout; or uri (postgresql://user:password@host:port/database?sslmode=...)."""

    host: str | None = None
    port: int = 5432
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sslmode: str = "prefer"
    connect_timeout: float = 10.0
    uri: str | None = field(default=None, repr=False)

    KEYS = ("uri", "host", "port", "database", "user", "password", "sslmode", "connectTimeout")

    @classmethod
    def from_data(cls, data: Mapping[str, str], source: str) -> PostgresSettings:
        r = _Reader(data, source, cls.KEYS)
        timeout = r.seconds("connectTimeout", 10.0)
        uri = r.text("uri")
        if uri is not None:
            others = sorted(k for k in r.data if k not in ("uri", "connectTimeout") and r.text(k))
            if others:
                raise r.error("uri", f"give either uri or {', '.join(others)}, not both")
            if urlsplit(uri).scheme not in ("postgresql", "postgres"):
                raise r.error("uri", "must start with postgresql://")
            return cls(uri=uri, connect_timeout=timeout)
        return cls(
            host=r.required("host"),
            port=r.integer("port", 1, 65535) or 5432,
            database=r.text("database"),
            user=r.text("user"),
            password=r.text("password"),
            sslmode=r.choice("sslmode", _SSLMODES, "prefer"),
            connect_timeout=timeout,
        )


@dataclass(frozen=True)
class ObjectStoreSettings:
    """An S3-compatible store. Keys: endpoint, region, accessKeyId, secretAccessKey,
    sessionToken, bucket, prefix, addressingStyle, caCert, timeout.

    Without ``endpoint`` the store is AWS S3 in ``region``. ``bucket`` and ``prefix``
    are defaults for users that are configured once (large outputs, log archive);
    a sensor names its own bucket.
    """

    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    bucket: str | None = None
    prefix: str = ""
    path_style: bool = True
    ca_cert: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    KEYS = (
        "endpoint",
        "region",
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
        "bucket",
        "prefix",
        "addressingStyle",
        "caCert",
        "timeout",
    )

    @classmethod
    def from_data(cls, data: Mapping[str, str], source: str) -> ObjectStoreSettings:
        r = _Reader(data, source, cls.KEYS)
        endpoint = r.text("endpoint")
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise r.error("endpoint", "must be an http:// or https:// URL with a host")
            if parts.path.strip("/"):
                raise r.error("endpoint", "must not have a path (the bucket is a separate key)")
        key_id, secret = r.credentials("accessKeyId", "secretAccessKey")
        if r.text("sessionToken") and key_id is None:
            raise r.error("sessionToken", "needs accessKeyId and secretAccessKey")
        bucket = r.text("bucket")
        problem = bucket_name_problem(bucket) if bucket is not None else None
        if problem:
            raise r.error("bucket", problem)
        default_style = "path" if endpoint else "virtual"
        style = r.choice("addressingStyle", ("path", "virtual"), default_style)
        return cls(
            endpoint=endpoint.rstrip("/") if endpoint else None,
            region=r.text("region") or "us-east-1",
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=r.text("sessionToken"),
            bucket=bucket,
            prefix=(r.text("prefix") or "").strip("/"),
            path_style=style == "path",
            ca_cert=r.pem("caCert"),
            timeout=r.seconds("timeout", 30.0),
        )


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def bucket_name_problem(bucket: str) -> str | None:
    """What breaks S3's bucket naming rules, if anything."""
    if _BUCKET_NAME.fullmatch(bucket):
        return None
    return (
        "must be 3-63 characters of a-z, 0-9, '.' and '-', "
        "starting and ending with a letter or digit"
    )

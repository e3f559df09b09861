"""versitygw, an S3-compatible gateway over a folder, built by hack/servers/build.sh."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from servers.common import LOOPBACK, ROOT, Process, free_port, secret_token, spawn, unavailable


def versitygw_binary() -> str:
    """The versitygw binary, built (once, cached) by hack/servers/build.sh."""
    script = ROOT / "hack" / "servers" / "build.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode == 3:
        unavailable(f"versitygw cannot be built here: {proc.stderr.strip().splitlines()[-1]}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(
            f"hack/servers/build.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc.stdout.strip().splitlines()[-1]


@dataclass
class S3Server:
    """versitygw serving a temporary folder: each top-level folder is a bucket."""

    addresses: tuple[str, ...]
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    data: Path
    process: Process
    workdir: Path

    def endpoint(self, host: str | None = None) -> str:
        return f"http://{host or self.addresses[0]}:{self.port}"

    def settings(self, host: str | None = None, **extra: str) -> dict[str, str]:
        """Secret data for kascade.integrations.settings.ObjectStoreSettings."""
        return {
            "endpoint": self.endpoint(host),
            "region": "us-east-1",
            "accessKeyId": self.access_key,
            "secretAccessKey": self.secret_key,
            **extra,
        }

    def make_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (on the posix backend a bucket is a top-level folder)."""
        name = name or f"b-{secret_token(12)}"
        (self.data / name).mkdir()
        return name

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_s3(addresses: Sequence[str] = LOOPBACK) -> S3Server:
    binary = versitygw_binary()
    workdir = Path(tempfile.mkdtemp(prefix="kascade-s3-"))
    data = workdir / "data"
    data.mkdir()
    port = free_port(addresses)
    access, secret = f"kascade{secret_token(8)}", secret_token(32)
    argv = [binary, "--quiet", "--health", "/health"]
    for address in addresses:
        argv += ["--port", f"{address}:{port}"]
    argv += ["posix", str(data)]
    # A clean environment: versitygw reads many generic variables (LOGFILE, WEBHOOK, ...).
    process = spawn(
        "versitygw", argv, workdir, {"ROOT_ACCESS_KEY": access, "ROOT_SECRET_KEY": secret}
    )
    server = S3Server(tuple(addresses), port, access, secret, data, process, workdir)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{server.endpoint()}/health", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        process.wait_until(healthy, "its health endpoint answers")
    except BaseException:
        server.stop()
        raise
    return server

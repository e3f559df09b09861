"""A sensor means the same in a pod as in the local runner (issue 8, bug 7).

The pod's probes are shell scripts; the local runner checks in-process. Both are run
here side by side against the same files and the same real HTTP server, the pod's
with the shells and tools a task image may have: busybox (its sh and wget, as in the
cluster's busybox image), dash with curl, dash with GNU wget.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kascade.api.pipeline import PipelineSpec, Sensor, Task
from kascade.controller.podspec import RunIdentity, build_pod
from kascade.engine.decisions import Launch
from kascade.engine.sensors import SensorPolicy
from kascade.local.sensors import file_met, http_met

RUN = RunIdentity("ns", "p", "r", "manual__x", datetime(2026, 1, 1, tzinfo=UTC))
OWNER = {"apiVersion": "kascade.io/v1alpha1", "kind": "PipelineRun", "name": "r", "uid": "u"}
TOOLS = ("sed", "grep", "tail", "timeout", "cat", "sleep", "env")


def _toolbox(root: Path, name: str) -> Path | None:
    """A PATH folder with only the tools of one kind of image (None: not on this machine)."""
    folder = root / name
    folder.mkdir()
    if name == "busybox":
        busybox = shutil.which("busybox")
        if busybox is None:
            return None
        for tool in ("sh", "wget", *TOOLS):
            (folder / tool).symlink_to(busybox)
        return folder
    client = {"curl": "curl", "gnu-wget": "wget"}[name]
    wanted = {"sh": shutil.which("dash") or shutil.which("sh"), client: shutil.which(client)}
    wanted.update({tool: shutil.which(tool) for tool in TOOLS})
    if any(path is None for path in wanted.values()):
        return None
    for tool, path in wanted.items():
        (folder / tool).symlink_to(str(path))
    return folder


@pytest.fixture(scope="module")
def toolboxes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toolboxes")
    found = {name: _toolbox(root, name) for name in ("busybox", "curl", "gnu-wget")}
    return {name: path for name, path in found.items() if path is not None}


def _pod_argv(sensor: dict[str, Any]) -> list[str]:
    spec = Task.model_validate(
        {"name": "s", "image": "busybox:1.36", "sensor": {"mode": "reschedule", **sensor}}
    )
    assert spec.sensor is not None
    launch = Launch(
        "s", "s", None, 1, spec, None, spec.sensor, None, 1, None,
        sensor_policy=SensorPolicy.of(spec.sensor),
    )  # fmt: skip
    container = build_pod(launch, name="p", run=RUN, pipeline=PipelineSpec(), owner=OWNER)["spec"][
        "containers"
    ][0]
    return [*container["command"], *(container.get("args") or [])]


def _run_in_pod(argv: list[str], tools: Path) -> int:
    env = {"PATH": str(tools), "HOME": "/tmp"}
    # The container's entrypoint is resolved on PATH, as the runtime does.
    exe = shutil.which(argv[0], path=str(tools))
    assert exe is not None
    return subprocess.run([exe, *argv[1:]], env=env, timeout=30, check=False).returncode


# -- file ------------------------------------------------------------------------------------
FILES = ("a.csv", "b.txt", "with space.csv", ".hidden.csv", "sub/c.csv", "deep/1/2/d.csv")
PATTERNS = (
    "*.csv",
    "?.csv",
    "[ab].csv",
    "[!a].csv",
    "sub/*.csv",
    "*/*.csv",
    "**/*.csv",
    "deep/**/d.csv",
    "with space.csv",
    "with*",
    "nope*.csv",
    ".h*",
    "*.parquet",
    "$(touch pwned).csv",
    "`touch pwned`",
    "b.txt",
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    return root


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("shell", ["busybox", "curl"])
def test_file_sensor_pod_probe_matches_the_local_check(
    pattern: str, shell: str, tree: Path, toolboxes: dict[str, Path]
) -> None:
    if shell not in toolboxes:
        pytest.skip(f"no {shell} on this machine")
    path = f"{tree}/{pattern}"
    local = file_met(path)
    code = _run_in_pod(_pod_argv({"kind": "file", "path": path}), toolboxes[shell])
    assert code == (0 if local else 100), f"{pattern}: local {local}, pod exit {code}"
    assert not (tree / "pwned").exists()


def test_file_globs_are_one_directory_level_everywhere(tree: Path) -> None:
    assert not file_met(f"{tree}/deep/**/d.csv")  # `**` is `*`, as in a shell
    assert file_met(f"{tree}/deep/*/*/d.csv")


# -- http ------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        path = self.path
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.end_headers()
            return
        status, body = {
            "/ok": (200, b"hello world"),
            "/created": (201, b"made"),
            "/missing": (404, b"not here"),
            "/only-post": (200 if self.command == "POST" else 405, b"posted"),
            "/only-delete": (204 if self.command == "DELETE" else 405, b""),
        }.get(path, (500, b"?"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


HTTP_CASES = [
    ("/ok", "GET", 200, None),
    ("/ok", "GET", 200, "world"),
    ("/ok", "GET", 200, "nowhere"),
    ("/ok", "GET", 201, None),
    ("/created", "GET", 201, None),
    ("/missing", "GET", 404, None),
    ("/missing", "GET", 200, None),
    ("/redirect", "GET", 200, "hello"),
    ("/only-post", "POST", 200, "posted"),
    ("/only-post", "GET", 200, None),
    ("/only-delete", "DELETE", 204, None),
    ("/gone-server", "GET", 200, None),
]


@pytest.mark.parametrize(("path", "method", "status", "needle"), HTTP_CASES)
@pytest.mark.parametrize("tools", ["busybox", "curl", "gnu-wget"])
def test_http_sensor_pod_probe_matches_the_local_check(
    path: str,
    method: str,
    status: int,
    needle: str | None,
    tools: str,
    server: str,
    toolboxes: dict[str, Path],
) -> None:
    if tools not in toolboxes:
        pytest.skip(f"no {tools} on this machine")
    url = "http://127.0.0.1:9/refused" if path == "/gone-server" else server + path
    fields = {"url": url, "method": method, "expectedStatus": status}
    if needle is not None:
        fields["responseContains"] = needle
    local = http_met(Sensor.model_validate({"kind": "http", **fields}), 5.0)
    code = _run_in_pod(_pod_argv({"kind": "http", **fields}), toolboxes[tools])
    if tools == "busybox" and method not in ("GET", "POST"):
        assert code == 2  # busybox's wget cannot send it: a clear error, not "not yet"
        return
    assert code == (0 if local else 100), f"{method} {path}: local {local}, pod exit {code}"


# -- the poke loop ---------------------------------------------------------------------------
@pytest.mark.parametrize("exponential", [False, True])
def test_the_pod_poke_loop_waits_as_the_policy_says(
    exponential: bool, tmp_path: Path, toolboxes: dict[str, Path]
) -> None:
    if "curl" not in toolboxes:
        pytest.skip("no dash/coreutils toolbox on this machine")
    tools = tmp_path / "bin"
    shutil.copytree(toolboxes["curl"], tools, symlinks=True)
    log = tmp_path / "sleeps"
    (tools / "sleep").unlink()
    (tools / "sleep").write_text(f'#!{tools}/sh\necho "$1" >> {log}\n')
    (tools / "sleep").chmod(0o755)
    # The probe: not met four times, then met.
    counter = tmp_path / "pokes"
    probe = tmp_path / "probe"
    probe.write_text(
        f"#!{tools}/sh\necho x >> {counter}\n"
        f'[ "$(grep -c x {counter})" -ge 5 ] && exit 0\nexit 100\n'
    )
    probe.chmod(0o755)
    sensor = {"kind": "command", "mode": "poke", "pokeInterval": "3s"}
    if exponential:
        sensor["exponentialBackoff"] = True
    spec = Task.model_validate(
        {"name": "s", "image": "i", "command": [str(probe)], "sensor": sensor}
    )
    assert spec.sensor is not None
    policy = SensorPolicy.of(spec.sensor)
    launch = Launch(
        "s", "s", None, 1, spec, None, spec.sensor, None, 1, None, sensor_policy=policy
    )  # fmt: skip
    container = build_pod(launch, name="p", run=RUN, pipeline=PipelineSpec(), owner=OWNER)["spec"][
        "containers"
    ][0]
    assert _run_in_pod(container["command"], tools) == 0
    waits = [int(line) for line in log.read_text().split()]
    assert waits == [policy.wait_after(n).total_seconds() for n in range(1, 5)]
    assert waits == ([3, 6, 12, 24] if exponential else [3, 3, 3, 3])
    assert policy.wait_after(40) == timedelta(seconds=3) * (2**10 if exponential else 1)

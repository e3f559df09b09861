"""What the command-line tests share: a private ``$KASCADE_HOME`` and manifest files.

``from cli_support import private_home, write`` in a test module makes ``home`` an
autouse fixture there: every test gets its own history folder and works in its
tmp_path (a test that needs the folder takes ``home``).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, name="home")
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KASCADE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

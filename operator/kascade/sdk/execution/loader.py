"""Load a DAG file the way Airflow's DagBag does, with import errors tied to file and line.

The file runs as a module of its own (its directory on ``sys.path``, as Airflow
puts the DAGs folder there); the DAGs are those entered with ``with``/built by
``@dag`` (auto-register) plus any DAG in the module's globals. An error names
the line of the DAG file (or of a helper module next to it) where it happened.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kascade.sdk import contexts
from kascade.sdk.dag import DAG
from kascade.sdk.exceptions import UnsupportedFeature

DEFAULT_TIMEOUT_SECONDS = 30.0
#: The DAG folder, put on ``sys.path`` like Airflow's, so ``dags/common/`` imports work.
DAGS_FOLDER_ENV = "KASCADE_DAGS_FOLDER"


@dataclass(frozen=True)
class ImportProblem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class LoadedFile:
    path: Path
    dags: list[DAG] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    seconds: float = 0.0


class _ImportTimeout(BaseException):  # not caught by a DAG file's `except Exception`
    pass


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Airflow's dagbag_import_timeout: a file that parses forever is an error, not a hang."""
    usable = seconds and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise _ImportTimeout

    previous = signal.signal(signal.SIGALRM, fire)
    started = time.monotonic()
    # An alarm already set (pytest-timeout's, say) is put back with what is left of it.
    outer, _ = signal.setitimer(signal.ITIMER_REAL, float(seconds or 0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"kascade_dag_{digest}_{stem}"


def _problem(path: Path, exc: BaseException) -> ImportProblem:
    """The innermost frame in the DAG file (else in its folder) names the line."""
    frames = traceback.extract_tb(exc.__traceback__)
    here = str(path)
    folder = str(path.parent) + "/"
    chosen = None
    for frame in frames:
        if frame.filename == here:
            chosen = frame
    if chosen is None:
        for frame in frames:
            if frame.filename.startswith(folder):
                chosen = frame
    file = chosen.filename if chosen else here
    line = chosen.lineno if chosen else None
    unsupported = isinstance(exc, UnsupportedFeature)
    text = str(exc) if unsupported else f"{type(exc).__name__}: {exc}"
    return ImportProblem(file, line, text)


def load_file(
    path: Path, timeout: float | None = DEFAULT_TIMEOUT_SECONDS, root: Path | None = None
) -> LoadedFile:
    """Run one DAG file; ``root`` is the DAG folder (``$KASCADE_DAGS_FOLDER`` by default)."""
    path = path.absolute()
    root = root or (Path(os.environ[DAGS_FOLDER_ENV]) if os.environ.get(DAGS_FOLDER_ENV) else None)
    out = LoadedFile(path)
    start = time.perf_counter()
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(ImportProblem(str(path), None, f"cannot read: {exc}"))
        return out
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        out.problems.append(ImportProblem(str(path), exc.lineno, f"SyntaxError: {exc.msg}"))
        return out
    name = module_name(path)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    for folder in dict.fromkeys([str(path.parent), *([str(root.absolute())] if root else [])]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    contexts.reset()
    try:
        with _deadline(timeout):
            exec(code, module.__dict__)
    except _ImportTimeout:
        out.problems.append(
            ImportProblem(str(path), None, f"the file took longer than {timeout:g}s to run")
        )
    except (Exception, SystemExit) as exc:  # a DAG file's error is a report, not a crash
        out.problems.append(_problem(path, exc))
    registered = contexts.take_registered()
    contexts.reset()
    if out.problems:
        out.seconds = time.perf_counter() - start
        return out
    found: list[DAG] = []
    for candidate in [*registered, *module.__dict__.values()]:
        if isinstance(candidate, DAG) and all(candidate is not d for d in found):
            found.append(candidate)
    seen: dict[str, DAG] = {}
    for dag in found:
        dag.fileloc = str(path)
        if dag.dag_id in seen:
            out.problems.append(
                ImportProblem(str(path), None, f"two DAGs have the id {dag.dag_id!r}")
            )
        seen[dag.dag_id] = dag
    out.dags = found
    out.seconds = time.perf_counter() - start
    return out

"""Trigger tasks in the local runner: where the other pipeline is found, and run-id rules.

``kascade run`` runs a triggered pipeline in the same process, found in the same
file or another file of the folder; a ``runId`` that exists (in this process or in
the local history) fails the task unless ``resetDagRun``; a run that ends in a
failed state fails a waiting task; every triggered run is in the local history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sdk_support import kascade

DATE = "2024-01-15T00:00:00+00:00"


def parent(**trigger: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "parent"},
        "spec": {
            "defaults": {"image": "busybox"},
            "tasks": [
                {
                    "name": "trig",
                    "triggerPipeline": {"pipeline": "child", "logicalDate": "{{ ts }}", **trigger},
                },
                {"name": "after", "dependsOn": ["trig"], "command": ["true"]},
            ],
        },
    }


def child(command: str = "true") -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "child"},
        "spec": {
            "defaults": {"image": "busybox"},
            "params": {"n": {"type": "integer", "default": 1}},
            "tasks": [{"name": "work", "command": ["sh", "-c", command]}],
        },
    }


def run(folder: Path, file: str, home: Path) -> dict[str, Any]:
    proc = kascade(
        "run", str(folder / file), "--pipeline", "parent", "--output", "json",
        "--logical-date", DATE, home=home,
    )  # fmt: skip
    assert proc.stdout, proc.stderr
    return dict(json.loads(proc.stdout))


def history(home: Path, pipeline: str) -> list[str]:
    return sorted(p.stem for p in (home / "local-runs" / pipeline).glob("*.json"))


def test_the_child_is_found_in_another_file_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump(parent(waitForCompletion=True,
                                                                params={"n": 5})))  # fmt: skip
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(child('echo "n={{ params.n }}"')))
    (tmp_path / "broken.yaml").write_text("not: [valid")  # skipped: not where it is
    result = run(tmp_path, "parent.yaml", tmp_path / "home")
    assert result["phase"] == "success", result
    assert history(tmp_path / "home", "child") == [f"triggered__{DATE}"]
    log = next((tmp_path / "home" / "local-runs" / "child").glob("*/logs/work/attempt-1.log"))
    assert log.read_text().strip() == "n=5"


def test_a_missing_pipeline_fails_the_task_and_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump(parent()))
    result = run(tmp_path, "parent.yaml", tmp_path / "home")
    trig = result["tasks"]["trig"]
    assert (trig["state"], result["tasks"]["after"]["state"]) == ("failed", "upstream_failed")
    assert trig["message"] == (
        f"pipeline 'child' is neither in parent.yaml nor in another file of {tmp_path}"
    )


def test_a_failed_child_fails_a_waiting_task(tmp_path: Path) -> None:
    docs = [parent(waitForCompletion=True, pokeInterval="1s"), child("exit 2")]
    (tmp_path / "both.yaml").write_text(yaml.safe_dump_all(docs))
    result = run(tmp_path, "both.yaml", tmp_path / "home")
    assert result["tasks"]["trig"]["state"] == "failed"
    assert result["tasks"]["trig"]["message"] == f"run triggered__{DATE} of child is failed"


def test_an_explicit_run_id_that_exists_fails_unless_reset(tmp_path: Path) -> None:
    home = tmp_path / "home"
    docs = [parent(runId="nightly-{{ ds }}", waitForCompletion=True), child()]
    (tmp_path / "both.yaml").write_text(yaml.safe_dump_all(docs))
    assert run(tmp_path, "both.yaml", home)["phase"] == "success"
    again = run(tmp_path, "both.yaml", home)
    assert again["tasks"]["trig"]["message"] == (
        "a run 'nightly-2024-01-15' of child exists already (set resetDagRun to replace it)"
    )
    docs[0] = parent(runId="nightly-{{ ds }}", waitForCompletion=True, resetDagRun=True)
    (tmp_path / "both.yaml").write_text(yaml.safe_dump_all(docs))
    assert run(tmp_path, "both.yaml", home)["phase"] == "success"
    assert history(home, "child") == ["nightly-2024-01-15"]


def test_without_a_run_id_each_run_triggers_its_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "both.yaml").write_text(yaml.safe_dump_all([parent(), child()]))
    for _ in range(2):  # the same logical date, the same default run id: a new run each time
        result = run(tmp_path, "both.yaml", home)
        assert result["phase"] == "success"
        assert result["tasks"]["trig"]["outputs"] == {
            "trigger_run_id": f"triggered__{DATE}",
            "trigger_logical_date_iso": DATE,
        }

"""Names follow Kubernetes' rules in the models: validate, the webhook and the CRD agree (issue 13).

``metadata.name`` becomes a folder of the local runner: ``../../x`` or ``/tmp/x`` used
to make it write outside ``$KASCADE_HOME``, and ``kascade validate`` accepted names the
API server refuses (uppercase, unicode, a newline, ``..``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kascade.api import crdgen
from kascade.cli.main import cli
from kascade.engine.validation import validate_document
from name_cases import BAD_OBJECT_NAMES, GOOD_OBJECT_NAMES


def pipeline(name: Any, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"tasks": [{"name": "t", "image": "busybox", "command": ["true"]}], **spec},
    }


def paths(doc: dict[str, Any]) -> list[str]:
    return [issue.path for issue in validate_document(doc)[2]]


@pytest.mark.parametrize("name", BAD_OBJECT_NAMES, ids=range(len(BAD_OBJECT_NAMES)))
def test_names_kubernetes_refuses_are_refused(name: str) -> None:
    expected = ["metadata.name"]
    assert paths(pipeline(name)) == expected


@pytest.mark.parametrize("name", GOOD_OBJECT_NAMES)
def test_names_kubernetes_takes_are_taken(name: str) -> None:
    assert paths(pipeline(name)) == []


def _crd_pattern(kind_file: str, *path: str) -> tuple[re.Pattern[str], int]:
    crd = yaml.safe_load(crdgen.files()[kind_file])
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path:
        node = node["properties"][part]
    # JSON Schema patterns are ECMA regexes; ours are anchored with ^...$ (no multiline).
    return re.compile(node["pattern"].removeprefix("^").removesuffix("$")), node["maxLength"]


@pytest.mark.parametrize("name", BAD_OBJECT_NAMES + GOOD_OBJECT_NAMES)
def test_the_crd_schema_says_what_the_models_say(name: str) -> None:
    from kascade.api.names import subdomain_problem

    for kind_file, path in (
        ("kascade.io_pipelines.yaml", ("metadata", "name")),
        ("kascade.io_pipelineruns.yaml", ("metadata", "name")),
        ("kascade.io_pipelineruns.yaml", ("spec", "pipelineRef", "name")),
    ):
        pattern, longest = _crd_pattern(kind_file, *path)
        schema_ok = len(name) <= longest and pattern.fullmatch(name) is not None
        assert schema_ok == (subdomain_problem(name) is None), (kind_file, path, name)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"variables": [{"configMap": "Settings"}]},
            "spec.variables[0].configMap",
        ),
        (
            {"connections": [{"name": "db", "secret": "db_secret"}]},
            "spec.connections[0].secret",
        ),
        (
            {"defaults": {"serviceAccountName": "../sa"}},
            "spec.defaults.serviceAccountName",
        ),
        (
            {
                "notifications": [
                    {
                        "name": "n",
                        "events": ["failure"],
                        "webhook": {"urlFrom": {"name": "Hook", "key": "url"}},
                    }
                ]
            },
            "spec.notifications[0].webhook.urlFrom.name",
        ),
    ],
)
def test_names_of_other_objects_follow_the_same_rule(spec: dict[str, Any], field: str) -> None:
    assert field in paths(pipeline("ok", **spec))


def test_an_external_task_sensor_names_a_pipeline() -> None:
    doc = pipeline("ok")
    doc["spec"]["tasks"] = [
        {"name": "wait", "sensor": {"kind": "externalTask", "pipeline": "../../etc"}}
    ]
    assert paths(doc) == ["spec.tasks[0].sensor.pipeline"]


def test_the_local_runner_never_writes_outside_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "deep" / "home"
    monkeypatch.setenv("KASCADE_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    for i, name in enumerate(["../../escape", "/tmp/kascade-escape-test", ".."]):
        path = tmp_path / f"p{i}.yaml"
        path.write_text(yaml.safe_dump(pipeline(name)))
        result = CliRunner().invoke(cli, ["run", str(path), "-q"], catch_exceptions=False)
        assert result.exit_code == 2
        assert "metadata.name: " in result.stderr
    assert not (tmp_path / "escape").exists()
    assert not Path("/tmp/kascade-escape-test").exists()
    assert not home.exists()  # nothing was run, so nothing was written


def test_a_pool_name_says_which_name_to_use() -> None:
    doc = pipeline("ok", defaults={"pool": "large_processing_pool"})
    [issue] = validate_document(doc)[2]
    assert issue.path == "spec.defaults.pool"
    assert issue.message.endswith("use 'large-processing-pool'")

"""crds/ is generated from the models, is structural, and carries what kubectl users need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.api import crdgen

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_checked_in_crds_match_the_models() -> None:
    assert crdgen.main(["--check", str(CRDS)]) == 0, "run `make crds`"


def test_drift_is_detected(tmp_path: Path) -> None:
    for name, text in crdgen.files().items():
        (tmp_path / name).write_text(text.replace("pokeInterval", "pokeIntervall"))
    assert crdgen.main(["--check", str(tmp_path)]) == 1


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key in ("properties",):
            for name, sub in (node.get(key) or {}).items():
                out.extend(_walk(sub, f"{path}.{name}"))
        if isinstance(node.get("items"), dict):
            out.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            out.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return out


@pytest.mark.parametrize("name", sorted(crdgen.files()))
def test_schema_is_structural(name: str) -> None:
    crd = yaml.safe_load(crdgen.files()[name])
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        open_node = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        assert "type" in node or open_node, f"{name}{path}: no type"
        assert "default" not in node, f"{name}{path}: defaults make the API server rewrite objects"
        assert "$ref" not in node and "anyOf" not in node, f"{name}{path}: not structural"
        assert "title" not in node
    has_status = "status" in schema["properties"]
    # A PipelineSnapshot never changes: no status, no status subresource.
    assert version.get("subresources") == ({"status": {}} if has_status else None)
    assert has_status or crd["spec"]["names"]["kind"] == "PipelineSnapshot"
    assert version["additionalPrinterColumns"]
    assert crd["spec"]["names"]["categories"] == ["kascade"]
    assert crd["spec"]["names"]["shortNames"]


def test_fields_have_descriptions_for_kubectl_explain() -> None:
    crd = yaml.safe_load(crdgen.files()["kascade.io_pipelines.yaml"])
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    task = spec["properties"]["tasks"]["items"]["properties"]
    for field in ("dependsOn", "triggerRule", "retryDelay", "sensor", "expand", "branch"):
        assert task[field].get("description"), field
    assert spec["properties"]["schedule"]["description"]


def test_header_says_do_not_edit() -> None:
    for path in CRDS.glob("*.yaml"):
        assert path.read_text().startswith("# DO NOT EDIT"), path


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    """`kubectl explain pipeline.spec.tasks.image` shows the field's docstring."""
    from kascade.api.crdgen import crd
    from kascade.api.resources import KINDS

    missing: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in (node.get("properties") or {}).items():
            if not sub.get("description"):
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")

    for info in KINDS:
        schema = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for top in ("spec", "status") if info.status is not None else ("spec",):
            assert schema["properties"][top].get("description"), f"{info.kind}.{top}"
            walk(schema["properties"][top], f"{info.kind}.{top}")
    assert not missing, f"{len(missing)} fields without a description: {missing[:20]}"

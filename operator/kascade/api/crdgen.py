"""Generate the CRDs from the pydantic models (``make crds``, checked by ``make crds-check``).

The models are the source of truth; the schema is made *structural* the way the
API server wants it: ``$ref``s inlined, no titles, no defaults (a default in a
CRD makes the API server rewrite stored objects), ``anyOf [X, null]`` turned
into ``nullable``, and recursion (nested task groups) cut below a fixed depth
into an open object that the operator validates with the full models.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import sys
from pathlib import Path
from typing import Any

import yaml

from kascade.api.base import GROUP, VERSION
from kascade.api.names import MAX_SUBDOMAIN, SUBDOMAIN_PATTERN
from kascade.api.resources import KINDS, KindInfo

HEADER = (
    "# DO NOT EDIT: generated from operator/kascade/api by `make crds`.\n"
    "# A test fails when this file drifts from the models.\n"
)
MAX_RECURSION = 2
"""Nested groups deeper than this are validated by the operator, not the schema."""

_DROP = {"title", "default", "examples", "$defs"}
METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": MAX_SUBDOMAIN, "pattern": SUBDOMAIN_PATTERN}
    },
}
"""The API server's own rule for the names of custom resources (the only metadata a CRD
schema may restrict), written out so that the schema says what ``kascade validate`` says."""


def _resolve(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[-1]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        if stack.count(ref) >= MAX_RECURSION:
            target: dict[str, Any] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        else:
            target = dict(_resolve(defs[ref], defs, (*stack, ref)))
        # A description on the use site is more specific than the class docstring.
        return {**target, **_resolve(extra, defs, stack)}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs, stack) for name, sub in value.items()}
        else:
            out[key] = _resolve(value, defs, stack)
    return _structural(out)


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        kinds = [s for s in any_of if s.get("type") != "null"]
        nullable = len(kinds) < len(any_of)
        if len(kinds) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            merged = {**kinds[0], **rest}
            if nullable and not merged.get("x-kubernetes-preserve-unknown-fields"):
                merged["nullable"] = True
            return merged
        types = {s.get("type") for s in kinds}
        if types == {"integer", "string"}:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return {**rest, "x-kubernetes-int-or-string": True}
        raise ValueError(f"cannot express a union of {types} structurally")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("type") == "object" and node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" in node:
        del node["additionalProperties"]
    is_object = node.get("type") == "object"
    if is_object and not node.get("properties") and "additionalProperties" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def model_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema = _resolve(raw, defs, (model.__name__,))
    assert isinstance(schema, dict)
    return schema


def crd(info: KindInfo) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": METADATA,
        "spec": model_schema(info.spec),
    }
    if info.status is not None:
        properties["status"] = model_schema(info.status)
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if info.status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kascade"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": ["kascade"],
            },
            "versions": [
                {
                    **version,
                    "additionalPrinterColumns": [c.dump() for c in info.columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "required": ["spec"],
                            "properties": properties,
                        }
                    },
                }
            ],
        },
    }


def render(info: KindInfo) -> str:
    return HEADER + yaml.safe_dump(crd(info), sort_keys=False, width=100)


@functools.cache
def files() -> dict[str, str]:
    """Every CRD file by name (computed once: schema generation is not cheap)."""
    return {f"{GROUP}_{info.plural}.yaml": render(info) for info in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the CRDs into this folder")
    group.add_argument("--check", type=Path, help="fail when this folder differs")
    args = parser.parse_args(argv)
    wanted = files()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, text in wanted.items():
            (args.out / name).write_text(text)
        print(f"wrote {len(wanted)} CRDs to {args.out}")
        return 0
    drift = 0
    for name, text in wanted.items():
        path = args.check / name
        have = path.read_text() if path.exists() else ""
        if have != text:
            drift += 1
            diff = difflib.unified_diff(
                have.splitlines(), text.splitlines(), str(path), "models", lineterm=""
            )
            print("\n".join(list(diff)[:40]))
    extra = {p.name for p in args.check.glob(f"{GROUP}_*.yaml")} - set(wanted)
    for name in sorted(extra):
        drift += 1
        print(f"{args.check / name}: no model generates this file")
    if drift:
        print(f"{drift} CRD file(s) out of sync with the models: run `make crds`", file=sys.stderr)
        return 1
    print(f"{len(wanted)} CRDs in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Write helm/kascade/README.md from the chart's values.yaml comments (helm-docs style).

A value is documented by a ``# -- description`` comment right above its key;
following ``#`` lines continue the description. ``# -- (type) description``
overrides the type guessed from the default. Undocumented keys are left out (their
documented parent shows them in its default).

    hack/helm-docs.py            # rewrite the README
    hack/helm-docs.py --check    # exit 1 when the README is out of date (used by a test)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "kascade"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+|\"[^\"]+\"):(?:\s|$)")
DOC = re.compile(r"^ *# -- ?(?:\((?P<type>[^)]+)\) *)?(?P<text>.*)$")
MORE = re.compile(r"^ *# ?(?P<text>.*)$")


def documented_values(text: str) -> list[tuple[str, str | None, str]]:
    """(dotted path, explicit type, description) for every documented key, in file order."""
    out: list[tuple[str, str | None, str]] = []
    stack: list[tuple[int, str]] = []
    pending: tuple[str | None, list[str]] | None = None
    for line in text.splitlines():
        doc = DOC.match(line)
        if doc:
            pending = (doc.group("type"), [doc.group("text").strip()])
            continue
        more = MORE.match(line)
        if more and pending is not None:
            pending[1].append(more.group("text").strip())
            continue
        key = KEY.match(line)
        if key and not line.lstrip().startswith("-"):
            indent = len(key.group("indent"))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            name = key.group("key").strip('"')
            stack.append((indent, name))
            if pending is not None:
                parts = (k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"' for _, k in stack)
                path = ".".join(parts)
                out.append((path, pending[0], " ".join(t for t in pending[1] if t)))
        if line.strip() and not line.lstrip().startswith("#"):
            pending = None
    return out


def lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in re.findall(r'"[^"]+"|[^.]+', path):
        node = node[part.strip('"')]
    return node


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string" if value is None else type(value).__name__


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows = []
    for path, explicit, description in documented_values(text):
        value = lookup(values, path)
        default = json.dumps(value, sort_keys=False)
        kind = explicit or type_of(value)
        rows.append(f"| {cell(path)} | {kind} | `{cell(default)}` | {cell(description)} |")
    lines = [
        "<!-- DO NOT EDIT: generated from values.yaml by hack/helm-docs.py (make helm-docs). -->",
        f"# {chart['name']}",
        "",
        f"Version: {chart['version']} · AppVersion: {chart['appVersion']}",
        "",
        chart["description"],
        "",
        "## Install",
        "",
        "```sh",
        "helm install kascade ./helm/kascade -n kascade-system --create-namespace",
        "# only some namespaces:",
        "helm install kascade ./helm/kascade -n kascade-system --create-namespace \\",
        "  --set scope=namespaced --set 'watchNamespaces={team-a,team-b}'",
        "helm test kascade -n kascade-system",
        "```",
        "",
        "Without Helm: `kubectl apply --server-side -f manifests/install.yaml` (this chart rendered"
        " with its default values, but without the admission webhook)."
        " See docs/install.md and docs/operations.md.",
        "",
        "## Values",
        "",
        "| Key | Type | Default | Description |",
        "|-----|------|---------|-------------|",
        *rows,
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the README is stale")
    args = parser.parse_args()
    readme = CHART / "README.md"
    content = render()
    if args.check:
        if not readme.exists() or readme.read_text() != content:
            print(f"{readme} is out of date: run make helm-docs", file=sys.stderr)
            return 1
        return 0
    readme.write_text(content)
    print(f"wrote {readme.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

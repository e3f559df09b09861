"""The repository's hack/ scripts, imported by the tests that check what they produce.

The scripts have dashes in their names (they are run, not imported), so they are
loaded from their paths; one loader serves the unit and the e2e tiers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def render_install_manifest() -> Any:
    """hack/image/render-install-manifest.py as a module (find_helm, render, ...)."""
    path = ROOT / "hack" / "image" / "render-install-manifest.py"
    spec = importlib.util.spec_from_file_location("render_install_manifest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

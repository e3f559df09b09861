"""Validation problems, each tied to the field it is about.

Validation collects every problem instead of stopping at the first, so that a
user fixes a manifest in one round trip (``kascade validate``, the admission
webhook and the Pipeline's status all show the same list).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    path: str
    """Field path in the manifest, e.g. ``spec.tasks[2].dependsOn[0]``."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PipelineInvalid(ValueError):
    """A pipeline that cannot run; carries every problem found."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def pydantic_issues(errors: Iterable[dict[str, object]], prefix: str = "") -> list[Issue]:
    """Turn pydantic's errors into field-path issues (``spec.tasks[0].name``)."""
    out = []
    for err in errors:
        loc = err.get("loc", ())
        path = prefix
        for part in loc if isinstance(loc, tuple) else ():
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            message = "unknown field (check its spelling)"
        out.append(Issue(path or "(root)", message))
    return out

"""Validation problems, each tied to the field it is about.

Validation collects every problem instead of stopping at the first, so that a
user fixes a manifest in one round trip (``kascade validate``, the admission
webhook and the Pipeline's status all show the same list).
"""

from __future__ import annotations

import difflib
import re
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


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters; an integer too long to
    print (over 4,300 digits) is described instead of raising."""
    try:
        text = repr(value)
    except ValueError:
        return "a number too large to print"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean load?)`` when a candidate is close to ``word``, else ``""``."""
    pool = list(dict.fromkeys(candidates))
    near = difflib.get_close_matches(word, pool, n=3, cutoff=0.6)
    if not near:  # case slips (dependson → dependsOn) score low on ratio alone
        near = [c for c in pool if c.lower() == word.lower()][:3]
    return f" (did you mean {', '.join(near)}?)" if near else ""


def pydantic_issues(
    errors: Iterable[dict[str, object]], prefix: str = "", fields: Iterable[str] = ()
) -> list[Issue]:
    """Turn pydantic's errors into field-path issues (``spec.tasks[0].name``); ``fields``
    are the known field names, for the hint on a misspelt one."""
    known = list(fields)
    out = []
    for err in errors:
        loc = err.get("loc", ())
        path = prefix
        for part in loc if isinstance(loc, tuple) else ():
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            name = str(loc[-1]) if isinstance(loc, tuple) and loc else ""
            message = "unknown field" + (did_you_mean(name, known) or " (check its spelling)")
        elif err.get("type") == "enum":
            message += _enum_hint(err)
        out.append(Issue(path or "(root)", message))
    return out


def _enum_hint(err: dict[str, object]) -> str:
    given = err.get("input")
    ctx = err.get("ctx")
    expected = ctx.get("expected") if isinstance(ctx, dict) else None
    if not isinstance(given, str) or not isinstance(expected, str):
        return ""
    return did_you_mean(given, re.findall(r"'([^']*)'", expected))

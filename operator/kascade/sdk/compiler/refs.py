"""How one task names another in the manifest, so that the engine finds the same task.

``dependsOn`` entries and ``tasks.<id>.outputs`` references are resolved from
the referring task's group outwards (docs/concepts.md). The compiler writes the
shortest reference that resolves to the intended task and to nothing else, so
that a group with a member named like a top-level task cannot capture it.
"""

from __future__ import annotations

from collections.abc import Collection


class AmbiguousReference(ValueError):
    pass


def _scopes(referrer: str) -> list[str]:
    parts = referrer.split(".")[:-1]
    return [".".join(parts[:depth]) for depth in range(len(parts), -1, -1)]


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _candidates(target: str, referrer: str) -> list[str]:
    """Written forms from the shortest (relative to a shared group) to the full id."""
    forms = []
    for scope in _scopes(referrer):
        if scope and target.startswith(scope + "."):
            forms.append(target[len(scope) + 1 :])
    forms.append(target)
    return forms


def dependency_ref(target: str, referrer: str, ids: Collection[str]) -> str:
    """For ``dependsOn``: the first scope (innermost first) where the name exists wins."""
    for written in _candidates(target, referrer):
        hits = [_join(scope, written) for scope in _scopes(referrer)]
        first = next((h for h in hits if h in ids), None)
        if first == target:
            return written
    raise AmbiguousReference(
        f"task {referrer!r} cannot refer to {target!r} unambiguously: a group around it has a "
        "member of the same name; rename one of them"
    )


def output_ref(target: str, referrer: str, nodes: Collection[str]) -> str:
    """For ``tasks.<ref>.outputs``: any enclosing group holding the first name shadows the rest.

    ``nodes`` holds every task id and group id (and their prefixes).
    """
    for written in _candidates(target, referrer):
        head = written.split(".")[0]
        owners = [scope for scope in _scopes(referrer) if _join(scope, head) in nodes]
        if owners and _join(owners[0], written) == target and len(owners) == 1:
            return written
    raise AmbiguousReference(
        f"task {referrer!r} cannot read the outputs of {target!r} unambiguously: a group "
        "around it has a member of the same name; rename one of them"
    )

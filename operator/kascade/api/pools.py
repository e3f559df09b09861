"""The Pool kind: a named slot limit shared by every pipeline of a namespace.

Slot usage is never stored as a counter: it is recomputed from the TaskRuns that
hold a slot, so a crash can never leak one (see FIELD-NOTES on Argo semaphores).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kascade.api.base import Model


class PoolSpec(Model):
    """The pool's size."""

    slots: Annotated[int, Field(ge=0)]
    """How many task slots the pool offers at once."""
    description: str | None = None
    """What the pool is for."""


class PoolStatus(Model):
    """How the pool's slots are used."""

    used: int | None = None
    """Slots in use."""
    queued: int | None = None
    """Tasks waiting for a slot."""

"""Outputs beyond 4 KiB in the local runner, kept in the object store of ``KASCADE_STORE_*``.

The process writes its outputs file as anywhere; when it is larger than a termination
message and a store is configured, the values that do not fit move to the store under
the same keys the operator uses (``engine/outputs.object_key``), and references stay in
the run's record. Without a store the 4 KiB rule stands, as on a cluster without one.
"""

from __future__ import annotations

from kascade.api.protocol import OUTPUTS_LIMIT_BYTES
from kascade.api.runs import AttemptReason
from kascade.engine.context import RunContext
from kascade.engine.decisions import Result
from kascade.engine.outputs import OutputsError, object_key, parse_outputs
from kascade.integrations.outputs_store import OutputsStore, StoreError


def large_result(
    raw: bytes, store: OutputsStore, ctx: RunContext, key: str, attempt: int
) -> Result:
    """The Result of outputs over 4 KiB: the values that do not fit written to the store."""
    try:
        values = parse_outputs(raw, limit=store.max_bytes)
    except OutputsError as exc:
        too_large = len(raw) > store.max_bytes
        reason = AttemptReason.OUTPUTS_TOO_LARGE if too_large else AttemptReason.BAD_OUTPUTS
        return Result(0, reason=reason, message=str(exc))
    try:
        inline = store.offload(
            values,
            lambda name: object_key(ctx.namespace, ctx.pipeline, ctx.run_id, key, attempt, name),
        )
    except StoreError as exc:
        return Result(0, reason=AttemptReason.OUTPUTS_STORE_ERROR, message=str(exc))
    return Result(0, outputs=inline)


def needs_store(size: int) -> bool:
    return size > OUTPUTS_LIMIT_BYTES

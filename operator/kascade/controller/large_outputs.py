"""Outputs beyond 4 KiB on the cluster: read from the outputs sidecar's log, written to the store.

The pod never holds the store's credentials: its outputs sidecar
(``podspec.OUTPUTS_SIDECAR``) prints outputs larger than a termination message to its log
and says their size; the operator reads at most the cap of that log (through the API
server, masked like a termination message), applies the engine's split
(``engine/outputs``: which values move, under which per-run key) and writes them with the
installation's own credentials. What fails is an ordinary failed attempt (retries apply):
over the cap (``OutputsTooLarge``), outputs that do not parse (``BadOutputs``), a store
that refuses (``OutputsStoreError``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kascade.api.runs import AttemptReason
from kascade.controller.podspec import OUTPUTS_SIDECAR, RunIdentity
from kascade.engine.decisions import Result
from kascade.engine.outputs import OutputsError, object_key, parse_outputs, too_large
from kascade.integrations.outputs_store import OutputsStore, StoreError
from kascade.kube.client import Kube


async def collect(
    kube: Kube,
    store: OutputsStore | None,
    pod: dict[str, Any],
    size: int,
    *,
    run: RunIdentity,
    key: str,
    attempt: int,
) -> Result:
    """The Result of an attempt whose outputs wait in its sidecar's log."""
    if store is None:  # the store was removed while the pod ran
        message = "the outputs are larger than 4 KiB and no object store is configured"
        return Result(0, reason=AttemptReason.OUTPUTS_TOO_LARGE, message=message)
    if size > store.max_bytes:
        message = too_large(size, store.max_bytes)
        return Result(0, reason=AttemptReason.OUTPUTS_TOO_LARGE, message=message)
    try:
        text = await asyncio.to_thread(
            kube.read_outputs_log, pod, OUTPUTS_SIDECAR, store.max_bytes + 1
        )
    except Exception as exc:  # the log is gone (pod deleted): the attempt cannot be judged
        return Result(0, reason=AttemptReason.BAD_OUTPUTS, message=f"outputs log: {exc}")
    try:
        values = parse_outputs(text, limit=store.max_bytes)
    except OutputsError as exc:
        return Result(0, reason=AttemptReason.BAD_OUTPUTS, message=str(exc))

    def key_of(name: str) -> str:
        return object_key(run.namespace, run.pipeline, run.run_id, key, attempt, name)

    try:
        inline = await asyncio.to_thread(store.offload, values, key_of)
    except StoreError as exc:
        return Result(0, reason=AttemptReason.OUTPUTS_STORE_ERROR, message=str(exc))
    return Result(0, outputs=inline)

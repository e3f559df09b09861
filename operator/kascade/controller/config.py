"""What the operator is set up with besides what it watches: the helper image, the object store.

Read once at start-up (``kascade operator`` options and the environment the chart sets)
and kept here, as ``approval.POLICY`` is: the pod builder and the outputs path read it,
and unit tests set it with :func:`configure`.

* ``helperImage``: the image of the pods that run ``kascade poke`` (``sql`` and ``s3``
  sensors) and of the outputs sidecar that passes large outputs on (the operator's own
  image in the chart).
* The object store (``KASCADE_STORE_<key>``, from the Secret the chart names): where
  outputs beyond 4 KiB go. Without one the 4 KiB rule stands.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kascade.integrations.settings import ObjectStoreSettings, from_env

HELPER_IMAGE_ENV = "KASCADE_HELPER_IMAGE"
DEFAULT_HELPER_IMAGE = "kascade-operator:dev"
"""The chart's own default operator image (``image.repository:image.tag``)."""
STORE_PREFIX = "KASCADE_STORE_"
OUTPUTS_MAX_ENV = "KASCADE_OUTPUTS_MAX_BYTES"
DEFAULT_OUTPUTS_MAX_BYTES = 4 * 1024 * 1024
"""A task's outputs may be this large with a store (the pod's log carries them to the
operator; the kubelet rotates a container's log at 10 MiB by default)."""
MAX_OUTPUTS_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class OperatorConfig:
    helper_image: str = DEFAULT_HELPER_IMAGE
    store: ObjectStoreSettings | None = None
    outputs_max_bytes: int = DEFAULT_OUTPUTS_MAX_BYTES


CONFIG = OperatorConfig()


def configure(config: OperatorConfig) -> None:
    global CONFIG
    CONFIG = config


def read_config(environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """The configuration in ``environ`` (the process's by default); raises ValueError
    (a SettingsError for the store) with the variable and the problem."""
    env = os.environ if environ is None else environ
    store_data = from_env(STORE_PREFIX, env)
    store = ObjectStoreSettings.from_data(store_data, f"{STORE_PREFIX}*") if store_data else None
    if store is not None and not store.bucket:
        raise ValueError(f"{STORE_PREFIX}bucket: the object store for outputs needs a bucket")
    raw = env.get(OUTPUTS_MAX_ENV, "").strip()
    cap = DEFAULT_OUTPUTS_MAX_BYTES
    if raw:
        if not raw.isdigit() or not 4096 < int(raw) <= MAX_OUTPUTS_MAX_BYTES:
            raise ValueError(
                f"{OUTPUTS_MAX_ENV}={raw!r}: a number of bytes above 4096 and at most "
                f"{MAX_OUTPUTS_MAX_BYTES}"
            )
        cap = int(raw)
    image = env.get(HELPER_IMAGE_ENV, "").strip() or DEFAULT_HELPER_IMAGE
    return OperatorConfig(helper_image=image, store=store, outputs_max_bytes=cap)

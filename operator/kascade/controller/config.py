"""What the operator is set up with besides what it watches: the helper image, the object store.

Read once at start-up (``kascade operator`` options and the environment the chart sets)
and kept here, as ``approval.POLICY`` is: the pod builder and the outputs path read it,
and unit tests set it with :func:`configure`.

* ``helperImage``: the image of the pods that run ``kascade poke`` (``sql`` and ``s3``
  sensors) and of the outputs sidecar that passes large outputs on (the operator's own
  image in the chart).
* The object store for outputs (``KASCADE_STORE_<key>``, from the Secret the chart
  names; ``integrations/outputs_store.py``): outputs beyond 4 KiB go there, up to
  ``KASCADE_OUTPUTS_MAX_BYTES``. Without one the 4 KiB rule stands.
* The log archive in the same store (``integrations/log_archive.py``): each ended
  attempt's log, up to ``KASCADE_LOG_ARCHIVE_MAX_BYTES``, unless
  ``KASCADE_LOG_ARCHIVE=off``. Without a store logs live as long as their pods.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kascade.integrations import log_archive
from kascade.integrations.log_archive import LogArchive
from kascade.integrations.outputs_store import OutputsStore, from_environment

HELPER_IMAGE_ENV = "KASCADE_HELPER_IMAGE"
DEFAULT_HELPER_IMAGE = "kascade-operator:dev"
"""The chart's own default operator image (``image.repository:image.tag``)."""


@dataclass(frozen=True)
class OperatorConfig:
    helper_image: str = DEFAULT_HELPER_IMAGE
    outputs: OutputsStore | None = None
    """Where outputs beyond 4 KiB go (None: nowhere, the 4 KiB rule stands)."""
    log_archive: LogArchive | None = None
    """Where ended attempts' logs are kept (None: they live as long as their pods)."""


CONFIG = OperatorConfig()


def configure(config: OperatorConfig) -> None:
    global CONFIG
    CONFIG = config


def read_config(environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """The configuration in ``environ`` (the process's by default); raises ValueError
    (a SettingsError for the store) naming the variable and the problem."""
    env = os.environ if environ is None else environ
    image = env.get(HELPER_IMAGE_ENV, "").strip() or DEFAULT_HELPER_IMAGE
    return OperatorConfig(
        helper_image=image,
        outputs=from_environment(env),
        log_archive=log_archive.from_environment(env),
    )

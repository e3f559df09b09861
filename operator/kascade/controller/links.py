"""Links to what a run shows in the web UI (``kascade ui``), for notifications.

The UI's address is the operator's configuration (``--ui-url``, chart value
``ui.externalUrl``), since only an administrator knows how users reach it. Its
task page shows each attempt's log (streamed from the pod), so that is what a
failure alert links to. Without a configured address the link is empty and
notifications say nothing about the UI.
"""

from __future__ import annotations

import os
from urllib.parse import quote

UI_URL_ENV = "KASCADE_UI_URL"


def ui_base() -> str:
    return os.environ.get(UI_URL_ENV, "").strip().rstrip("/")


def task_page(base: str, namespace: str, run: str, instance: str | None) -> str:
    """``<base>/#/task/<ns>/<run>/<instance>`` (the run's page when ``instance`` is None)."""
    if not base:
        return ""

    def part(text: str) -> str:
        return quote(text, safe="")

    if instance is None:
        return f"{base}/#/run/{part(namespace)}/{part(run)}"
    return f"{base}/#/task/{part(namespace)}/{part(run)}/{part(instance)}"

"""The operator's log: one line per meaningful event, each naming the object it is about.

kopf logs ``Handler 'run_event' succeeded.`` for every watch event (most of an
operator's log, saying nothing about which object), and an admission handler
that rejects a manifest as ``ERROR ... failed permanently`` (a user's typo is
not an operator error). This filter, on the root handlers:

* moves kopf's per-handler successes to DEBUG;
* drops kopf's line for a rejected admission request (``kascade.admission``
  logs the rejection at INFO, with the user and the object);
* prefixes every line kopf logs about an object with ``Kind namespace/name:``
  (kubebuilder's logging guidance: name the object kind).

The meaningful events themselves are the Kubernetes Events the operator posts;
``handlers._emit`` logs each one once.
"""

from __future__ import annotations

import logging
import re

_SUCCEEDED = re.compile(r"^(Handler|Webhook|Activity) '[^']*' succeeded\.$")
_REJECTED = re.compile(r"^Webhook '[^']*' failed permanently")
_QUIET = ("aiohttp.access",)


class ObjectLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kopf"):
            return True
        message = record.getMessage()
        if _REJECTED.match(message):
            return False
        if _SUCCEEDED.match(message):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            if not logging.getLogger().isEnabledFor(logging.DEBUG):
                return False
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            where = f"{ref.get('namespace')}/{ref['name']}" if ref.get("namespace") else ref["name"]
            record.msg, record.args = f"{ref.get('kind') or 'Object'} {where}: {message}", ()
        return True


def install(level: int) -> None:
    """Configure the root logger for the operator (plain lines, one per event)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(ObjectLines())
    for name in _QUIET:
        if level > logging.DEBUG:
            logging.getLogger(name).setLevel(logging.WARNING)

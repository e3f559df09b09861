"""Start a Kascade task from a DAG bundle (this file's text is shipped in the bundle ConfigMap).

The bundle is one zip (base64) holding the Kascade runtime under ``lib/`` and
the DAG folder under ``dags/``. A task pod mounts the ConfigMap and runs
``python3 /opt/kascade/boot.py ARGS``; a notification hook pod (which has no
volumes) gets this text and the zip as environment variables and runs
``python3 -c 'exec(...)' ARGS``. The zip is unpacked once per pod into the
temporary directory; ``--file`` is relative to the DAG folder. Standard library only.
"""

import base64
import contextlib
import hashlib
import io
import os
import sys
import tempfile
import zipfile

BUNDLE_KEY = "bundle.zip.b64"


def _bundle_text() -> str:
    text = os.environ.get("KASCADE_BUNDLE")
    if text is not None:
        return text
    here = os.path.dirname(os.path.abspath(globals().get("__file__", ".")))
    with open(os.path.join(here, BUNDLE_KEY)) as f:
        return f.read()


def unpack() -> str:
    raw = base64.b64decode(_bundle_text())
    root = os.path.join(tempfile.gettempdir(), "kascade-" + hashlib.sha256(raw).hexdigest()[:16])
    if not os.path.isdir(root):
        staging = f"{root}.{os.getpid()}"
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            archive.extractall(staging)
        with contextlib.suppress(OSError):  # another process of this pod unpacked it first
            os.rename(staging, root)
    return root


def main() -> int:
    root = unpack()
    sys.path.insert(0, os.path.join(root, "lib"))
    os.environ["KASCADE_DAGS_FOLDER"] = os.path.join(root, "dags")
    argv = list(sys.argv[1:])
    if "--file" in argv:
        at = argv.index("--file") + 1
        argv[at] = os.path.join(root, "dags", argv[at])
    from kascade.sdk.execution.runner import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())

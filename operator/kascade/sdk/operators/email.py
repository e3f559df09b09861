"""``EmailOperator``: not built yet (it needs an SMTP connection and a sender in the engine).

The class exists so that DAG files import it as today and so that the compiler
can gain it later; constructing one fails while the DAG file is parsed, naming
what to use instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature


class EmailOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("to", "subject", "html_content", "files")

    def __init__(self, *, to: Any = None, subject: str = "", html_content: str = "", **kwargs: Any):
        raise UnsupportedFeature(
            "EmailOperator",
            "e-mail is not built yet; post to a chat webhook from a @task, or use an "
            "on_success_callback/on_failure_callback",
        )

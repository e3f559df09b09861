"""E-mail addresses as a manifest gives them: checked one by one, naming the field.

Validation (literal addresses in a spec) and the drivers (addresses a template
rendered) apply the same rule, so an address the validator accepts is one the
SMTP client can send to. Pure: the standard library's address parser only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.errors import HeaderParseError
from email.headerregistry import Address

MAX_RECIPIENTS = 100


class RecipientError(ValueError):
    """An address list that cannot be used; names the field."""


def parse_recipients(value: str | Iterable[str] | None, field: str) -> tuple[str, ...]:
    """Addresses from a list or a comma/semicolon separated string, checked one by one."""
    if value is None:
        return ()
    items = re.split(r"[,;]", value) if isinstance(value, str) else list(value)
    found: list[str] = []
    for index, item in enumerate(items):
        where = field if isinstance(value, str) else f"{field}[{index}]"
        for part in re.split(r"[,;]", item):
            text = part.strip()
            if not text:
                continue
            problem = address_problem(text)
            if problem is not None:
                raise RecipientError(f"{where}: {text!r} is not an e-mail address ({problem})")
            found.append(text)
    if len(found) > MAX_RECIPIENTS:
        raise RecipientError(f"{field}: {len(found)} addresses, at most {MAX_RECIPIENTS}")
    return tuple(found)


def address_problem(text: str) -> str | None:
    """Why ``text`` is not one plain address (``name@domain``), or None."""
    if any(c in text for c in '\r\n<>"') or text.count("@") != 1:
        return "expected name@domain"
    try:
        Address(addr_spec=text)
    except (ValueError, IndexError, HeaderParseError) as exc:
        return str(exc)
    return None

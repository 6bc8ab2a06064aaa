"""Status values cut to what the CRD's status schema takes.

Every string there has maxLength 4096. An error message can be longer (pydantic quotes the
offending input, e.g. 40 tag keys of 128 characters), and a status patch the API server
refuses with 422 is dropped whole: the object would show its old status for ever.
"""

from __future__ import annotations

from typing import Any

MAX_STRING = 4096
MARK = " […] "


def cut(text: str, limit: int = MAX_STRING) -> str:
    """`text`, or its start and its end around MARK, in at most `limit` UTF-8 bytes (so
    characters too). Both ends: what went wrong tends to be said after the quoted input."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    half = (limit - len(MARK.encode())) // 2
    head = raw[:half].decode(errors="ignore")
    tail = raw[len(raw) - half :].decode(errors="ignore")
    return head + MARK + tail


def fit(value: Any) -> Any:
    """A copy of a status (or any part of it) with every string cut to MAX_STRING."""
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, dict):
        return {key: fit(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fit(item) for item in value]
    return value

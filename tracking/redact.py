"""Credentials never shown: every storage or tracking URL is printed through :func:`redact_url`."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str | None) -> str:
    """Replaces the password of ``scheme://user:password@host/...`` with ``***``.

    Anything shown or logged about a storage or tracking URL goes through this first.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


_CREDENTIALS_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^@\s/]*@")


def redact_text(text: str) -> str:
    """:func:`redact_url` for every URL inside ``text`` (an error message, a log line)."""
    return _CREDENTIALS_IN_TEXT.sub(r"\1:***@", text)

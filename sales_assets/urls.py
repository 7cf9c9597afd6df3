"""Database URLs: validated early, and shown without their password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class BadUrlError(ValueError):
    pass


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (for logs, errors and metadata)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def check_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a non-numeric port
    except ValueError as exc:
        raise BadUrlError(f"{what} URL {redact(url)} is malformed: {exc}") from None
    if parts.scheme not in schemes:
        raise BadUrlError(f"{what} URL {redact(url)} must start with one of {', '.join(s + '://' for s in schemes)}")
    if parts.scheme != "chdb" and not parts.hostname:
        raise BadUrlError(f"{what} URL {redact(url)} names no host")
    del port


def location(url: str) -> str:
    """host:port/database, for messages."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return f"chdb:{parts.path}"
    return f"{parts.hostname}:{parts.port or 'default port'}{parts.path}"

"""Secrets the embedded dev services keep under SALES_DATA_DIR, readable by their owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_secret(path: Path, text: str) -> None:
    """Owner-only from the first byte: the data root is readable by others (a server may run as
    another user), so a file chmod'ed after writing would be readable for a moment."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def read_or_create_secret(path: Path) -> str:
    """The secret stored at `path`, generated on first use (callers hold the service's lock)."""
    if not path.is_file():
        write_secret(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()

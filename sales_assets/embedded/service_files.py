"""What the embedded dev services keep under SALES_DATA_DIR: their lock, and secrets only their owner reads."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def exclusive_lock(root: Path) -> Iterator[None]:
    """Held while a service under `root` is started, checked or stopped: two processes starting it
    at the same moment get one server, the second waiting here."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

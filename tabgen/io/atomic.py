"""Atomic writes: a file is replaced only by a complete new version, never left half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from ..errors import TabgenError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` only on success.

    Any exception, KeyboardInterrupt included (the CLI turns SIGTERM and SIGHUP into one), removes the
    temporary file and leaves ``path`` as it was. Only SIGKILL or a power cut, which run no code, can
    leave a stale ``.NAME.*.tmp`` beside it; ``path`` itself is intact even then.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TabgenError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise TabgenError(f"cannot write {path}: {e.strerror}") from None
    try:
        # mkstemp creates the file private (0600); the result should have the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

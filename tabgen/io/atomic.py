"""Atomic writes: a file is replaced only by a complete new version, never left half-written."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

from ..errors import TabgenError

#: A temporary file in the old naming (``.NAME.XXXXXXXX.tmp``, from versions before the writer's PID was
#: in the name) is removed by the next write to NAME once it has not been modified for this long (s):
#: its writer cannot be asked whether it still runs, and one that is alive writes to it far more often.
OLD_TEMPORARY_AGE = 3600.0
# tempfile.mkstemp's random part: 8 characters of this set (the old naming is recognised by it).
_RANDOM = r"[a-z0-9_]{8}"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` only on success.

    Any exception, KeyboardInterrupt included (the CLI turns SIGTERM and SIGHUP into one), removes the
    temporary file and leaves ``path`` as it was. Only SIGKILL or a power cut, which run no code, can
    leave a stale ``.NAME.PID.HOST.*.tmp`` beside it (``path`` itself is intact even then); the next
    write to ``path`` removes it (:func:`remove_stale_temporaries`). After the rename the folder is
    synced too, so that the new file, not only its bytes, survives a power cut.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TabgenError(f"cannot write {path}: folder {folder} does not exist")
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=folder)
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
    _sync_folder(folder)


def temporary_prefix(name: str, pid: int | None = None) -> str:
    """The start of the name of a temporary file that process ``pid`` (default: this one) writes before
    it becomes ``name``: ``.NAME.PID.HOST.``. The host tells whether the PID can be checked here: on a
    folder shared between machines, or between containers, a PID of another one means nothing here."""
    return f".{name}.{os.getpid() if pid is None else pid}.{_host()}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove, and list, the temporary files of writes to ``path`` that a SIGKILL or a power cut left.

    Only files of this naming are touched, and of them only those written on this host (by the name)
    by a process that no longer runs, or, in the naming of earlier versions (without a PID), not
    modified for :data:`OLD_TEMPORARY_AGE`. Another writer's file, alive or on another machine, stays.
    Where processes cannot be probed (Windows: ``os.kill`` would end them), no PID counts as gone.
    Errors (a file another process removed first, a folder that cannot be read) are skipped."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    ours = re.compile(re.escape(f".{path.name}.") + r"(\d+)\." + re.escape(_host()) + r"\.[a-z0-9_]+\.tmp")
    old = re.compile(re.escape(f".{path.name}.") + _RANDOM + r"\.tmp")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = ours.fullmatch(entry.name)
            with contextlib.suppress(OSError):
                if (match and not _alive(int(match.group(1)))) or (
                        old.fullmatch(entry.name) and time.time() - entry.stat().st_mtime > OLD_TEMPORARY_AGE):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
    return removed


def _host() -> str:
    """This machine's name, as it can stand in a file name between dots."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "localhost"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (signal 0 only checks); unknown counts as alive."""
    if os.name == "nt" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no PID can be
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that the rename in it is durable; skipped where a folder cannot be opened or
    synced (Windows, some network file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

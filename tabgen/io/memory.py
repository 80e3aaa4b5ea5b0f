"""How much table text this machine can read: a table is read whole, held as a frame of two to six
times its text's size (six for text columns; measured on the shared tables), and then copied by the
transform, so text larger than a share of the free memory is refused before it is read, or, for a
compressed file, as soon as decompression passes that size (a small archive can expand without bound)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import TabgenError

#: Table text (after decompression) of at most this share of the free memory is read.
TEXT_SHARE_OF_FREE_MEMORY = 1 / 8


def free_memory_bytes() -> int | None:
    """Memory available to a new allocation without swapping (Linux's MemAvailable; elsewhere half
    of the physical memory); ``None`` where neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return None


def table_text_limit() -> int | None:
    free = free_memory_bytes()
    return None if free is None else int(free * TEXT_SHARE_OF_FREE_MEMORY)


def too_large(path: Path, size: int, limit: int, what: str = "of text") -> TabgenError:
    return TabgenError(
        f"{path} holds {_gb(size)} {what}, more than the {_gb(limit)} tabgen reads on this machine (an eighth of its "
        "free memory: a table is held several times over while it is learned); fit a sample of its rows, or free memory"
    )


def _gb(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def refuse_text_larger_than_memory(path: Path, size: int) -> None:
    limit = table_text_limit()
    if limit is not None and size > limit:
        raise too_large(path, size, limit)


class TooLarge(TabgenError):
    """Raised from inside a reader; the table reader lets it through unchanged."""


class BoundedReader(io.RawIOBase):
    """A decompressed stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: io.BufferedIOBase, path: Path, limit: int):
        self.raw, self.path, self.limit, self.count = raw, path, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge(str(too_large(self.path, self.count, self.limit, "of text or more once decompressed")))
        buffer[: len(data)] = data
        return len(data)

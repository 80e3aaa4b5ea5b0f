"""glibc's malloc thresholds, set for a process that allocates the same large tensors over and over.

By default glibc maps each block of over 128 KiB on its own and unmaps it when freed (raising that
threshold only as such blocks come back), and returns the heap's free top to the system beyond
128 KiB. The sampler's activations (10,000 rows × 512 values: 10 MB a tensor in bfloat16, allocated
and freed at each of a batch's 39 denoiser calls) then arrive as fresh pages that the kernel must
fault in and zero. `tabgen sample -n 10000` on adult took 290,000–360,000 page faults, 71,000–79,000
with the thresholds below, and its median wall time fell from 3.25 to 2.52 s (AMX), 4.88 to 4.14 s
(without AMX) and 5.91 to 5.09 s (AVX2), at 30–40 MB more resident memory (docs/speed.md). Fits did
not change.

The CLI sets them for its own process. A library leaves a process's allocator to its owner: in a
pipeline, set ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456`` in the environment
for the same effect.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

#: mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Blocks up to glibc's largest mmap threshold on a 64-bit system come from the heap ...
MMAP_THRESHOLD = 32 * 2**20
#: ... and up to this much of its free top stays with the process (128 MiB measured as well as 1 GiB).
TRIM_THRESHOLD = 256 * 2**20
#: A user who set any of these has chosen for this process.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                 "GLIBC_TUNABLES")


def keep_large_blocks() -> bool:
    """Set the thresholds above; ``False`` (and nothing changed) where the C library is not glibc or the
    environment already sets malloc's parameters."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))

"""The float type of the denoiser's matrix products: bfloat16 where the hardware multiplies it natively.

The weights, the optimizer and the sampler's ODE stay in float32 (autocast); only the products run in
bfloat16. On a CPU with AMX (bfloat16 matrix units) a denoiser training step is about 2.6 times faster
that way. AVX512-BF16 alone, without AMX, differs by CPU: the width-256 step was 1.4 times slower than
in float32 on a 2-core Xeon, and 2.3 times faster on a 2-core AMD EPYC (Zen 4); without either,
bfloat16 is emulated. So ``auto`` measures where there are no such units.
"""

from __future__ import annotations

import contextlib
import functools
from time import perf_counter
from typing import Iterator, Literal, get_args

import torch

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS = get_args(Precision)
#: ``auto`` takes bfloat16 on a CPU without AMX where a product of the denoiser's shape runs at least
#: this many times faster in it than in float32: 2.2 on the EPYC above, 0.5 on the Xeon.
BFLOAT16_MIN_SPEEDUP = 1.5


@functools.lru_cache(maxsize=None)  # asked at every training step; the answer never changes
def native_bfloat16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # A private probe, so guarded: a torch without it is treated as a CPU without AMX.
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def _bfloat16_speedup() -> float:
    """float32's time over bfloat16's for a (1,024 × 512) · (512 × 512) product, best of five each
    (about 40 ms in all on a 2-core CPU)."""

    def seconds(dtype: torch.dtype) -> float:
        a, b = torch.ones(1024, 512, dtype=dtype), torch.ones(512, 512, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(5):
            start = perf_counter()
            a @ b
            best = min(best, perf_counter() - start)
        return best

    return seconds(torch.float32) / seconds(torch.bfloat16)


@functools.lru_cache(maxsize=None)
def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``auto`` takes bfloat16 here: where the hardware multiplies it natively, or, on a CPU
    without such units, where it measures faster (the answer can differ between CPUs; pass
    ``precision="float32"`` or ``"bfloat16"`` to have the same products everywhere)."""
    if native_bfloat16(device):
        return True
    return device.type == "cpu" and _bfloat16_speedup() >= BFLOAT16_MIN_SPEEDUP


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """``None`` for float32, else the dtype to autocast to."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bfloat16" or (precision == "auto" and fast_bfloat16(device)):
        return torch.bfloat16
    return None


@contextlib.contextmanager
def mixed_precision(device: torch.device, precision: str, cache: bool = True) -> Iterator[None]:
    """``cache=False`` casts the weights afresh at each use, as a step recorded in a CUDA graph
    needs; the cache only pays where one block runs the network many times (sampling)."""
    dtype = autocast_dtype(device, precision)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=cache):
        yield

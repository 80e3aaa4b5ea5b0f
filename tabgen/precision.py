"""The float type of the denoiser's matrix products, chosen from what the hardware supports.

The weights, the optimizer and the sampler's ODE stay in float32 (autocast); only the products run in
bfloat16 where they do. ``auto`` is resolved once, at fit time, from the hardware's features alone
(never from a timing, which changes with the machine's load), and the model file keeps the resolved
type, so a loaded model samples with the products it was trained with. The evidence for the rule is in
docs/speed.md ("bfloat16 products").
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path
from typing import Iterator, Literal, get_args

import torch

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS = get_args(Precision)
#: The values of oneDNN's ISA cap (``ONEDNN_MAX_CPU_ISA``, or its older name ``DNNL_MAX_CPU_ISA``) that
#: let its kernels use each kind of bfloat16 unit; any other cap keeps them off it, as on a CPU without.
_AMX_CAPS = ("ALL", "DEFAULT", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16")
_AVX512_BF16_CAPS = _AMX_CAPS + ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")


def _onednn_cap() -> str:
    return (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").strip().upper()


def _cpu_vendor() -> str:
    """The CPUID vendor string (``AuthenticAMD``, ``GenuineIntel``); Windows' processor string ends in it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _cpu_has(feature: str) -> bool:
    # torch's probes are private, so guarded: a torch without one is treated as a CPU without the feature.
    return bool(getattr(torch.cpu, f"_is_{feature}_supported", lambda: False)())


@functools.lru_cache(maxsize=None)  # asked at every training step; the answer never changes
def native_bfloat16(device: torch.device) -> bool:
    """Whether the device multiplies bfloat16 faster than float32 in the kernels torch runs: a GPU with
    native bfloat16, a CPU with AMX, or an AMD CPU with AVX512-BF16 (Zen 4 and later), each where
    oneDNN's ISA cap lets it use them. On Intel cores without AMX, oneDNN's AVX512-BF16 kernels ran the
    denoiser's step 1.4 times slower than float32; on Zen 4, 2.3 times faster."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cap = _onednn_cap()
    if _cpu_has("amx_tile") and cap in _AMX_CAPS:
        return True
    return _cpu_has("avx512_bf16") and cap in _AVX512_BF16_CAPS and "AuthenticAMD" in _cpu_vendor()


def resolved_precision(precision: str, device: torch.device) -> str:
    """``float32`` or ``bfloat16``: ``precision`` itself, or for ``auto`` bfloat16 exactly where the
    device multiplies it faster than float32 (:func:`native_bfloat16`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if native_bfloat16(device) else "float32"


def sampling_precision(precision: str, device: torch.device) -> str:
    """The products a model samples with: its own, except that a model trained with bfloat16 products
    samples in float32 where bfloat16 is only emulated (a denoiser step twenty times slower than in
    float32 on an AVX2 CPU); its weights are float32 either way."""
    resolved = resolved_precision(precision, device)
    return resolved if resolved == "float32" or native_bfloat16(device) else "float32"


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """``None`` for float32, else the dtype to autocast to."""
    return torch.bfloat16 if resolved_precision(precision, device) == "bfloat16" else None


@contextlib.contextmanager
def mixed_precision(device: torch.device, precision: str, cache: bool = True) -> Iterator[None]:
    """``cache=False`` casts the weights afresh at each use, as a step recorded in a CUDA graph
    needs; the cache only pays where one block runs the network many times (sampling)."""
    dtype = autocast_dtype(device, precision)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=cache):
        yield

"""Conditional sampling by inpainting: some coordinates of x are known, the sampler fills in the rest.

At every noise level the known coordinates are replaced by their known value noised to that level
(x_k = y + σ·ε, fresh ε, which is exactly how the forward process noises them), and one Heun step
moves the whole state on (RePaint, Lugmayr et al. 2022, on EDM's sampler). Replacement alone tells the
unknown coordinates too little about the known ones: they only ever see the known values through
noise, and a deterministic step never revisits a choice made when that noise was large. RePaint's
resampling fixes this: after a step from σ to σ', noise the state back to σ and step again, so the
unknown part can move toward agreement with the known part. Resampling is spent only in a band of
noise levels: above it the state is nearly pure noise, and below it the row's modes are already chosen
(resampling there changed nothing in our measurements; see docs/conditional.md).

Where the latents were whitened in groups (:mod:`tabgen.whitening`), a known column fixes a linear
combination of the state, not coordinates: the state moves by the least amount (an orthogonal
projection) that gives those combinations their target value, which for coordinates is replacement.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .edm import EDMProcess
from .process import Denoiser, Process


@torch.inference_mode()
def heun_inpaint(
    D: Denoiser,
    noise: Tensor,
    times: list[float] | Tensor,
    known: Tensor,
    mask: Tensor,
    process: Process | None = None,
    *,
    resamples: int = 0,
    resample_band: tuple[float, float] = (0.0, math.inf),
    generator: torch.Generator | None = None,
    unmix: Tensor | None = None,
) -> Tensor:
    """Sample x from the denoiser's distribution given x[mask] = known[mask] (with ``unmix``, given
    (x @ unmix)[mask] = (known @ unmix)[mask]).

    ``mask`` (bool) broadcasts against ``noise`` (rows, dims): one mask for all rows or one per row.
    ``times`` are ``process``'s sampler times (EDM's σ schedule by default). Each step from a time of
    σ with ``resample_band[0] <= σ <= resample_band[1]`` is taken ``1 + resamples`` times, noising the
    state back in between. Returns x with the known part exactly ``known``.
    """

    def randn() -> Tensor:
        return torch.randn(noise.shape, generator=generator, device=noise.device, dtype=noise.dtype)

    process = process or EDMProcess()
    times = times.tolist() if isinstance(times, Tensor) else list(times)
    low, high = resample_band
    keep = known_replacement(mask, unmix)
    x = process.prior(noise, times[0])
    for t, t_next in zip(times[:-1], times[1:]):
        repeats = resamples if low <= process.sigma(t) <= high and process.sigma(t_next) > 0 else 0
        for r in range(repeats + 1):
            x = keep(x, process.noised(known, t, randn()))
            x = process.step(D, x, t, t_next)
            if r < repeats:  # back to t: the forward process from t_next adds the variance between
                x = process.renoised(x, t_next, t, randn())
    return keep(process.clean(x, times[-1]), known)


def known_replacement(mask: Tensor, unmix: Tensor | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """``keep(x, target)``: x with its known part taken from target. Known are the coordinates under
    ``mask`` of ``x @ unmix``; x moves by the orthogonal projection onto their span, one per distinct
    row of ``mask``, computed here once."""
    if unmix is None:
        return lambda x, target: torch.where(mask, target, x)
    patterns, which = torch.unique(mask.reshape(-1, mask.shape[-1]), dim=0, return_inverse=True)
    projectors = []
    for pattern in patterns:
        c = unmix[:, pattern].double()
        projectors.append((c @ torch.linalg.pinv(c)).to(unmix.dtype))
    rows = [None] if len(patterns) == 1 else [(which == k).nonzero().squeeze(1) for k in range(len(patterns))]

    def keep(x: Tensor, target: Tensor) -> Tensor:
        # Exact in float32: under bfloat16 autocast the known part would move by its rounding.
        with torch.autocast(x.device.type, enabled=False):
            out = x.clone()
            for idx, projector in zip(rows, projectors):
                part = slice(None) if idx is None else idx
                out[part] = x[part] + (target[part] - x[part]).float() @ projector
            return out

    return keep

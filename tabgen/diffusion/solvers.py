"""The sampler a :class:`~tabgen.config.SamplerConfig` selects: Heun's steps in the process's own time
(EDM's Algorithm 1), or, in y = x/s(t) and σ(t) where every process's ODE is EDM's, DPM-Solver++(2M),
or EDM's stochastic Heun (Algorithm 2, with ``s_churn`` > 0); or each process's ancestral steps."""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import SamplerConfig
from .process import Process, ode_sample
from .sampler import Denoiser
from .stochastic import edm_stochastic_sample, standard_normal


@torch.inference_mode()
def solve(D: Denoiser, noise: Tensor, times: list[float], process: Process, config: SamplerConfig,
          generator: torch.Generator | None = None) -> Tensor:
    """Clean latents from standard normal ``noise`` down ``process``'s sampler ``times``; ``generator``
    draws the stochastic samplers' noise."""
    if config.solver == "heun" and config.s_churn == 0:
        return ode_sample(D, noise, times, process)
    if config.solver == "ancestral":
        x = process.prior(noise, times[0])
        for t, t_next in zip(times[:-1], times[1:]):
            x = process.ancestral_step(D, x, t, t_next, standard_normal(x, generator))
        return process.clean(x, times[-1])
    if config.solver == "dpm2m":
        return process.dpm_solver_2m(D, noise, times)
    sigmas = [process.sigma(t) for t in times]
    return edm_stochastic_sample(D, noise * sigmas[0], sigmas, config.s_churn, config.s_tmin, config.s_tmax,
                                 config.s_noise, generator)

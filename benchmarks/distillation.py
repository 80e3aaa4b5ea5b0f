"""A few-step sampler distilled from a fitted model's Heun sampler, for :mod:`benchmarks.solvers`'s
``distilled:K`` settings (issue 34: sampling in a second on CPUs without fast bfloat16).

The student is a copy of the fitted denoiser, trained so that one Euler step of it between K noise
levels lands where the teacher's Heun steps land (Luhman & Luhman 2021; per step, as in progressive
distillation). Levels: given, or the first K of EDM's ρ-spaced schedule of K + 1, then σ = 0, so that no
call is spent at σ_min. Between two levels the teacher takes ``substeps`` Heun steps of their own ρ-spaced
schedule. An Euler step x' = x + (σ' − σ)(x − D)/σ lands on the teacher's x' when D is
x − σ(x' − x)/(σ' − σ), which the student regresses on, weighted by the error its step makes in x'
relative to the scale of x', (1 − σ'/σ)² / (σ'² + σ_d²). The student is held within the training
latents' range as the model is (:func:`tabgen.diffusion.edm.bounded_denoiser`).

Not part of tabgen: on adult it cost C2ST against the training table (docs/speed.md, Tried and not kept).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterator

import torch

#: Trajectories the teacher draws, rows per batch of them, and the student's training.
ROWS, BATCH, STEPS, LEARNING_RATE, SUBSTEPS = 65_536, 10_000, 3_000, 3e-4, 5


def student_levels(K: str, config: Any) -> list[float]:
    """The noise levels of ``K`` calls, then 0: ``"6"``, the first 6 of EDM's ρ-spaced schedule of 7, or
    ``"80/8/2.5/1.2/0.6/0.25/0.06"``, those levels."""
    from tabgen.diffusion.sampler import sigma_schedule

    if "/" in K:
        return [float(level) for level in K.split("/")] + [0.0]
    return sigma_schedule(int(K) + 1, config.sigma_min, config.sigma_max, config.rho).tolist()[:int(K)] + [0.0]


def euler_step(D: Any, x: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    s = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    return x + (sigma_next - sigma) * (x - D(x, s)) / sigma


@torch.inference_mode()
def teacher_pairs(model: Any, levels: list[float], substeps: int = SUBSTEPS, rows: int = ROWS) -> tuple[torch.Tensor, ...]:
    """(x at level k, k, the teacher's x at level k + 1) along ``rows`` teacher trajectories."""
    from tabgen.diffusion.edm import bounded_denoiser
    from tabgen.diffusion.sampler import heun_step, sigma_schedule
    from tabgen.precision import mixed_precision

    sampler, config = model.sampler, model.sampler.config
    D = bounded_denoiser(model.denoiser, model.codec.scaling.low, model.codec.scaling.high)
    xs, ks, ys = [], [], []
    for start in range(0, rows, BATCH):
        x = torch.randn(min(BATCH, rows - start), model.codec.latent_dim, device=model.device) * levels[0]
        for k, (high, low) in enumerate(zip(levels[:-1], levels[1:])):
            sub = sigma_schedule(substeps + 1, max(low, config.sigma_min), high, config.rho).tolist()[:-1]
            sub += [0.0] if low == 0 else []
            y = x
            with mixed_precision(model.device, sampler.precision):
                for a, b in zip(sub[:-1], sub[1:]):
                    y = heun_step(D, y, a, b)
            xs.append(x.float())
            ks.append(torch.full((len(x),), k))
            ys.append(y.float())
            x = y
    return torch.cat(xs), torch.cat(ks), torch.cat(ys)


def distil(model: Any, K: str, steps: int = STEPS, lr: float = LEARNING_RATE) -> tuple[torch.nn.Module, list[float]]:
    """A student of ``model``'s denoiser for Euler steps between the levels ``K`` names
    (:func:`student_levels`), and those levels."""
    from tabgen.precision import mixed_precision
    from tabgen.train import adam, learning_rate

    levels = student_levels(K, model.sampler.config)
    xs, ks, ys = teacher_pairs(model, levels)
    student = copy.deepcopy(model.denoiser)
    for p in student.parameters():
        p.requires_grad_(True)
    sigma = torch.tensor(levels, dtype=torch.float32, device=model.device)
    sd2 = model.denoiser.sigma_data ** 2
    weight = torch.tensor([(1 - b / a) ** 2 / (b**2 + sd2) for a, b in zip(levels[:-1], levels[1:])], device=model.device)
    opt = adam(student.parameters(), lr)
    student.train()
    for step in range(steps):
        opt.param_groups[0]["lr"] = learning_rate(lr, step, step / steps, warmup_steps=0, decay=True)
        i = torch.randint(len(xs), (1024,), device=model.device)
        x, k, y = xs[i], ks[i], ys[i]
        s, s_next = sigma[k, None], sigma[k + 1, None]
        target = x - s * (y - x) / (s_next - s)
        with mixed_precision(model.device, model.sampler.precision):
            out = student(x, sigma[k])
        loss = (weight[k, None] * (out.float() - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
    return student.eval(), levels


@contextlib.contextmanager
def sampling_with(model: Any, student: torch.nn.Module, levels: list[float]) -> Iterator[None]:
    """``model`` samples (and calibrates) with the student's Euler steps while inside."""
    import tabgen.sampling
    from tabgen.diffusion.edm import bounded_denoiser

    D = bounded_denoiser(student, model.codec.scaling.low, model.codec.scaling.high)

    @torch.inference_mode()
    def solve(_D: Any, noise: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
        x = noise * levels[0]
        for a, b in zip(levels[:-1], levels[1:]):
            x = euler_step(D, x, a, b)
        return x

    kept = tabgen.sampling.solve
    tabgen.sampling.solve = solve
    try:
        yield
    finally:
        tabgen.sampling.solve = kept

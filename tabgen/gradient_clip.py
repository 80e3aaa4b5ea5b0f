"""A step's gradient scaled down where it spikes, before the optimizer takes it.

A gradient that spikes to hundreds of times its usual norm moves every weight under Adam by about
three learning rates in one step (Adam's first moment grows with the spike, the square root of its
second only a tenth as fast), and the denoiser may never recover: default's jumped from a validation
loss of 0.447 to 5.79 (docs/speed.md, ``grad_spike_factor``). A fixed norm of 1 stopped that, but it
also scales down every step of a phase whose norms run at 3-12 for a thousand steps, as superstore's
did (superstore lost 0.03-0.07 of C2ST to it at two seeds in bfloat16, nothing in float32); a bound
relative to the recent norms touches only spikes, at any scale of gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The running mean of the norms forgets with this factor a step (about the last 100 steps): fast
#: enough to follow a phase whose norms rise tenfold over a few hundred steps, as superstore's do.
MEAN_DECAY = 0.99
#: The spike bound holds from this step on, once the mean has seen its memory's worth of steps: the
#: first norms swing fivefold from step to step, while the learning rate is still warming up.
SPIKE_FROM_STEP = 100


class GradientClip:
    """``clip(params)`` scales the parameters' gradients (together) down to at most ``max_norm``, and to
    at most ``spike_factor`` times the running mean of earlier steps' norms (each counted as clipped,
    so that a spike does not lift the bound) from step :data:`SPIKE_FROM_STEP` on. Either may be ``None``.

    Everything stays on the gradients' device, so a step on a GPU never waits for the host.
    """

    def __init__(self, max_norm: float | None = None, spike_factor: float | None = None):
        self.max_norm = max_norm
        self.spike_factor = spike_factor
        self.mean: Tensor | None = None
        self.steps = 0

    def __call__(self, params: list[Tensor]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if not grads or (self.max_norm is None and self.spike_factor is None):
            return
        norm = torch.nn.utils.get_total_norm(grads)
        limit: Tensor | float | None = None
        if self.spike_factor is not None:
            if self.mean is None:
                self.mean = norm.detach().clone()
            if self.steps >= SPIKE_FROM_STEP:
                limit = self.spike_factor * self.mean
        self.steps += 1
        if self.max_norm is not None:
            limit = self.max_norm if limit is None else limit.clamp(max=self.max_norm)
        if limit is not None:
            torch._foreach_mul_(grads, (limit / (norm + 1e-6)).clamp(max=1.0))
        if self.mean is not None:
            self.mean.mul_(MEAN_DECAY).add_(norm if limit is None else norm.clamp(max=limit), alpha=1 - MEAN_DECAY)

    def state_dict(self) -> dict[str, Tensor | int | None]:
        return {"mean": self.mean, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Tensor | int | None]) -> None:
        self.mean, self.steps = state.get("mean"), state.get("steps", 0)


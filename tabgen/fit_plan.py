"""The plan of a fit: when each phase must end, how many steps it may take, and what its checkpoint
holds, so that an interrupted fit resumes where it stopped (on the same table only)."""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from . import distributed
from .checkpoint import Checkpointer, load_checkpoint
from .config import SynthesizerConfig
from .errors import TabgenError

#: Of a time budget, the VAE gets at most this share: it converges in few epochs, and every second
#: saved goes to the diffusion model, which is the bottleneck of quality.
VAE_BUDGET_SHARE = 0.3
#: The last share of a time budget is kept for sampling the rows of the calibration.
CALIBRATION_BUDGET_SHARE = 0.04


@dataclass(frozen=True)
class PhaseLimits:
    """When a training phase must stop: at a ``time.monotonic()`` deadline, or after ``max_steps``
    optimizer steps (``None``: no step limit; a time budget ends the phase instead)."""

    deadline: float | None = None
    max_steps: int | None = None


def check_time_budget(seconds: Any) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise TabgenError(f"time_budget must be a positive number of seconds, got {seconds!r}")
    return float(seconds)


def fingerprint(df: pd.DataFrame) -> str:
    """Identifies a table's content, so a checkpoint is never resumed on other data."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    digest.update(",".join(map(str, df.columns)).encode())
    return digest.hexdigest()


class FitPlan:
    """Deadlines and step limits of each phase, from one time budget, and the fit's checkpoint.

    With ``resume``, the checkpoint at ``checkpoint`` must come from the same table (``table``, or the
    :func:`fingerprint` of a table too large to hash); the fit then continues with its configuration,
    its split of the rows, its finished phases and its clock. In a distributed fit every rank reads the
    checkpoint and rank 0 alone writes it.
    """

    def __init__(self, table: pd.DataFrame | str, time_budget: float | None = None,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: float = 60.0, resume: bool = False,
                 started: float | None = None):
        self.time_budget = check_time_budget(time_budget)
        self.path = None if checkpoint is None else Path(checkpoint)
        self.every = checkpoint_every
        self.fingerprint = table if isinstance(table, str) else fingerprint(table)
        self.state = self._resume_state() if resume else None
        # The budget is the fit's from ``started`` (``time.monotonic()``), reading the table included.
        self.start = (started or time.monotonic()) - (self.state["elapsed"] if self.state else 0.0)
        self.checkpointer: Checkpointer | None = None

    def _resume_state(self) -> dict[str, Any]:
        if self.path is None:
            raise TabgenError("resume=True needs the checkpoint path the interrupted fit used (checkpoint=...)")
        state = load_checkpoint(self.path)
        if state["fingerprint"] != self.fingerprint:
            raise TabgenError(f"the checkpoint {self.path} was made from a different table; resume with the same "
                              "data, or start afresh without resume=True")
        return state

    def config(self, default: SynthesizerConfig) -> SynthesizerConfig:
        """The interrupted fit's configuration when resuming, else ``default``."""
        return SynthesizerConfig.from_dict(self.state["config"]) if self.state else default

    def permutation(self, n_rows: int) -> torch.Tensor:
        """The rows in random order (the interrupted fit's order when resuming): validation comes first."""
        return self.state["split"] if self.state else torch.randperm(n_rows)

    def open_checkpoint(self, config: SynthesizerConfig, permutation: torch.Tensor) -> None:
        if self.path is not None and distributed.current().main:
            self.checkpointer = Checkpointer(self.path, self.every, lambda: {
                "config": config.to_dict(), "fingerprint": self.fingerprint, "split": permutation,
                "elapsed": self.elapsed()})

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def deadline(self) -> float | None:
        """When the whole fit, calibration included, must end."""
        return None if self.time_budget is None else self.start + self.time_budget

    def vae_limits(self, config: SynthesizerConfig) -> PhaseLimits:
        deadline = None if self.time_budget is None else self.start + VAE_BUDGET_SHARE * self.time_budget
        return PhaseLimits(deadline, config.vae.max_steps)

    def diffusion_limits(self, config: SynthesizerConfig) -> PhaseLimits:
        """Under a time budget the denoiser trains until the budget, less calibration's share, ends or
        its validation loss stops improving, not to its step limit."""
        if self.time_budget is None:
            return PhaseLimits(None, config.diffusion.max_steps)
        reserve = CALIBRATION_BUDGET_SHARE * self.time_budget if config.sampler.calibration_rows > 0 else 0.0
        # A private fit's noise is chosen for its step count: a budget may end it sooner, never later.
        return PhaseLimits(self.deadline - reserve, None if config.privacy.epsilon is None else config.diffusion.max_steps)

    def resumed(self, phase: str) -> dict[str, Any] | None:
        """The saved state of a phase (``"vae"``, ``"diffusion"``, or ``"vae_done"``) when resuming."""
        return self.state.get(phase) if self.state else None

    def vae_done(self, vae: nn.Module, result: Any) -> None:
        """Carry the finished VAE in every later checkpoint, so that resuming skips its training."""
        if self.checkpointer is not None:
            self.checkpointer.done["vae_done"] = {"model": vae.state_dict(), "result": asdict(result)}

    def finish(self) -> None:
        """The fit completed: nothing is left to resume."""
        if self.path is not None and distributed.current().main:
            self.path.unlink(missing_ok=True)

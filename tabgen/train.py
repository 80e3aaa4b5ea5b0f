"""The two training loops: the VAE on the encoded table, then the EDM denoiser on its latents.

Both validate on rows held out of the training table (never a test split), keep the best epoch
rather than the last, stop early when validation stops improving, and respect a wall-clock deadline.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import distributed
from .batches import Batch, StreamedRows, TensorRows
from .config import DiffusionConfig, VAEConfig
from .diffusion.edm import EDMPrecond
from .diffusion.process import Process
from .dp_sgd import PrivateStep, poisson_batches
from .fit_plan import PhaseLimits
from .gradient_clip import GradientClip
from .graphed_step import GradientStep
from .precision import mixed_precision
from .vae import VAE, BetaSchedule, vae_loss

# On a tiny table one pass is a single step; validating after every step would cost more than
# training and make patience meaninglessly short, so an "epoch" is at least this many steps.
MIN_STEPS_PER_EPOCH = 20
# Validation of the denoiser averages over random noise levels; a few thousand draws make the
# comparison between epochs stable even when the held-out rows are few.
MIN_DIFFUSION_VALIDATION_ROWS = 4096
# With an annealed learning rate, a validation plateau in the first half of the schedule is the noise
# floor of a high rate, not the limit of the model: on adult (seed 1) the best loss of step 2,440 was
# not beaten by step 6,440, and stopping there kept a model scoring Trend 3.46 %, C2ST 0.69, against
# 1.86-1.89 %, 0.82-0.84 for runs that reached the end. So the patience rule waits for this share of it.
EARLY_STOP_AFTER_PROGRESS = 0.5
# ... or for this many passes over the rows, which a small table reaches long before half the schedule.
# By then a plateau is the table's limit: on 500 and 2,000 of adult's rows the best epoch came after
# 1,620 and 4,700 steps, and a 2-row table's after 80; each fit then trained on, unable to stop, to
# step 12,020 (half of the 24,000-step schedule) without doing better (docs/speed.md, "Small tables").
# Every shared table reaches half its schedule first, so its fits are unchanged.
EARLY_STOP_AFTER_PASSES = 1400


def learning_rate(peak: float, step: int, progress: float, warmup_steps: int, decay: bool) -> float:
    """Linear warm-up to ``peak`` over ``warmup_steps``, then (with ``decay``) a cosine down to zero as
    ``progress`` (the share of the step limit or of the time left, whichever is further along) reaches 1.

    On adult (width 512, peak 2e-3, 10,000 steps) annealing gave Trend error 2.46 % against 3.40 % for
    the constant rate: the last steps average out gradient noise instead of adding to it.
    """
    rate = peak * min(1.0, (step + 1) / max(warmup_steps, 1))
    if decay:
        rate *= 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return rate


@dataclass(frozen=True)
class PrivateTraining:
    """DP-SGD's settings for one training (:mod:`tabgen.dp_sgd`)."""

    noise_multiplier: float
    max_grad_norm: float


def planned_steps(n_rows: int, batch_size: int, max_steps: int) -> int:
    """The steps a training of ``max_steps`` takes at most: whole epochs of at least
    :data:`MIN_STEPS_PER_EPOCH` steps (what :class:`_Loop` runs, and what the privacy accountant plans)."""
    per_epoch = max(math.ceil(n_rows / min(batch_size, n_rows)), MIN_STEPS_PER_EPOCH)
    return math.ceil(max_steps / per_epoch) * per_epoch


@dataclass
class TrainResult:
    best_loss: float = math.inf
    best_epoch: int = 0
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    history: list[float] = field(default_factory=list)
    """Validation loss after each epoch."""


#: Called after each epoch with the phase's name and a function returning its resumable state;
#: ``force`` asks for a save now (on interruption) rather than when the interval has passed.
Checkpoint = Callable[..., None]


#: A streamed table's epoch (between two validations) is this many steps at most: one pass over
#: millions of rows would leave the best weights and the stopping rules unused for an hour.
MAX_STREAMED_STEPS_PER_EPOCH = 200

Rows = TensorRows | StreamedRows


class _Loop:
    """Epoch bookkeeping shared by both trainings: batches, best state, stopping rules, progress.

    ``n_rows`` and ``batch_size`` are the whole table's and the whole step's: in a distributed fit each
    rank draws its share of the batch from its share of the rows (``rows``), so that the steps, the
    epochs and the learning rate are those of one process with the same total batch.
    """

    def __init__(self, name: str, n_rows: int, batch_size: int, max_epochs: int, limits: PhaseLimits, patience: int,
                 device: torch.device, progress: bool, resume: dict[str, Any] | None = None, rows: Rows | None = None,
                 private: PrivateTraining | None = None):
        self.name = name
        self.private = private
        self.rows = rows
        self.ranks = distributed.current()
        self.batch_size = min(batch_size, n_rows)
        self.rank_batch = self.ranks.share(self.batch_size)[1]
        self.n_rows = n_rows
        self.steps_per_epoch = max(math.ceil(n_rows / self.batch_size), MIN_STEPS_PER_EPOCH)
        if isinstance(rows, StreamedRows):
            self.steps_per_epoch = min(self.steps_per_epoch, MAX_STREAMED_STEPS_PER_EPOCH)
        step_epochs = max_epochs if limits.max_steps is None else math.ceil(limits.max_steps / self.steps_per_epoch)
        self.max_epochs = max(1, min(max_epochs, step_epochs))
        self.patience = patience
        self.epoch_steps = 0
        self.deadline = limits.deadline
        self.overrun = -math.inf
        """Seconds past the deadline on the furthest rank's clock, as of the step being taken."""
        self.device = device
        self.result = TrainResult(**resume["result"]) if resume else TrainResult()
        self.result.stopped_by = ""
        self.best_state: dict[str, Tensor] | None = resume["best_state"] if resume else None
        self._start = time.monotonic() - self.result.seconds
        # Without a step limit the bar counts epochs and shows the budget left, not a share of a total.
        total = None if limits.max_steps is None else self.max_epochs
        self.bar = tqdm(total=total, initial=self.result.epochs, desc=name, unit="epoch",
                        disable=not progress or not self.ranks.main, leave=False, dynamic_ncols=True)

    def snapshot(self) -> dict[str, Any]:
        self.result.seconds = time.monotonic() - self._start
        return {"result": asdict(self.result), "best_state": self.best_state}

    def past_deadline(self) -> bool:
        """Whether the deadline has passed, on every rank alike (each rank's clock is its own): one
        collective, whose :attr:`overrun` the step's schedule reads too."""
        if self.deadline is None:
            return False
        self.overrun = distributed.largest(time.monotonic() - self.deadline)
        return self.overrun >= 0

    def batches(self) -> Iterator[Batch]:
        """One epoch's batches: ``steps_per_epoch`` of them, or fewer once the deadline has passed (an
        epoch of a table of hundreds of columns takes minutes)."""
        self.epoch_steps = 0
        if self.private is None:
            batches = self.rows.epoch(self.rank_batch)
        else:  # DP-SGD's accountant counts on each row joining each batch independently
            batches = poisson_batches(self.rows.tensors, self.batch_size / self.n_rows)
        for _ in range(self.steps_per_epoch):
            if self.past_deadline() and self.epoch_steps:
                return
            yield next(batches)
            self.epoch_steps += 1

    def end_epoch(self, val_loss: float, module: nn.Module, may_stop_early: bool = True, **shown: float) -> bool:
        """Record the epoch; keep the module's weights if best. Returns True when training should stop;
        ``may_stop_early=False`` suspends the no-improvement rule (the best weights are still kept).
        A private training has no validation (``val_loss`` is NaN): it keeps its last weights."""
        r = self.result
        may_stop_early = may_stop_early and self.private is None
        r.epochs += 1
        r.steps += self.epoch_steps
        r.history.append(val_loss)
        if val_loss < r.best_loss:
            r.best_loss, r.best_epoch = val_loss, r.epochs
            self.best_state = copy.deepcopy(module.state_dict())
        self.bar.update(1)
        postfix = {"val": f"{val_loss:.4f}", "best": f"{r.best_loss:.4f}", **{k: f"{v:.4g}" for k, v in shown.items()}}
        if self.deadline is not None:
            postfix["budget left"] = f"{max(self.deadline - time.monotonic(), 0):.0f}s"
        self.bar.set_postfix(postfix)
        if r.epochs >= self.max_epochs:
            r.stopped_by = "max steps"
        elif may_stop_early and r.epochs - r.best_epoch >= self.patience:
            r.stopped_by = "no improvement"
        elif self.past_deadline():
            r.stopped_by = "time budget"
        return bool(r.stopped_by)

    def run(self, epoch: Callable[[], bool], phase: str, snapshot: Callable[[], dict[str, Any]],
            checkpoint: Checkpoint | None) -> None:
        """Run epochs until one says stop; on Ctrl-C save a checkpoint and re-raise."""
        try:
            while True:
                stop = epoch()
                if checkpoint is not None:
                    checkpoint(phase, snapshot)
                if stop:
                    return
        except KeyboardInterrupt:
            if checkpoint is not None:
                checkpoint(phase, snapshot, force=True)
            self.result.stopped_by = "interrupted"
            raise

    def finish(self, module: nn.Module) -> TrainResult:
        self.bar.close()
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
        self.result.seconds = time.monotonic() - self._start
        return self.result


def adam(params: Any, lr: float) -> torch.optim.Adam:
    """Adam with its fused kernel: one pass over all parameters instead of a dozen small ops per
    tensor, which was 6 % of a VAE step on a CPU (3 ms of 50) and 3 % of a denoiser step."""
    return torch.optim.Adam(params, lr=lr, fused=True)


@torch.no_grad()  # with grad enabled, every update would join an autograd graph that is never freed
def ema_update(ema_params: list[Tensor], params: list[Tensor], decay: float, step: int) -> None:
    """Move the averaged weights towards the current ones; the decay ramps up to ``decay`` because
    averaging from the start would drag in the random initial weights for thousands of steps."""
    torch._foreach_lerp_(ema_params, params, 1 - min(decay, (2 + step) / (11 + step)))


def vae_batch(vae: VAE, x_num: Tensor, num_observed: Tensor, x_cat: Tensor) -> Batch:
    """Rows as the VAE's training step reads them: ``(x_num, x_cat, regressed, targets)``."""
    return (x_num, x_cat, *vae.targets(x_num, num_observed, x_cat))


def _trained(module: nn.Module) -> nn.Module:
    """What a training step calls: the module itself, or in a distributed fit the module wrapped so
    that its gradients are averaged over the ranks (DDP, which also gives every rank rank 0's weights)."""
    if distributed.current().size == 1:
        return module
    # No buffer changes in training (the process's are fitted before it): one message a step less.
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    return DistributedDataParallel(module, **{"forward_sync_buffers" if newer else "broadcast_buffers": False})


def train_vae(vae: VAE, train: tuple[Tensor, Tensor, Tensor] | StreamedRows, val: tuple[Tensor, Tensor, Tensor],
              config: VAEConfig, limits: PhaseLimits | None = None, progress: bool = True,
              checkpoint: Checkpoint | None = None, resume: dict[str, Any] | None = None,
              n_rows: int | None = None, private: PrivateTraining | None = None) -> TrainResult:
    """Fit the VAE on ``(x_num, num_observed, x_cat)`` (or on a streamed table's :func:`vae_batch`
    batches); the best validation reconstruction is kept. ``limits`` default to ``config.max_steps`` and
    no deadline; ``n_rows`` is the whole table's where ``train`` is this rank's share of it. With
    ``private``, DP-SGD's steps, and β decays every ``beta_patience`` epochs as if stalled.

    On Ctrl-C the module holds the best weights so far and ``KeyboardInterrupt`` propagates.
    """
    rows = train if isinstance(train, StreamedRows) else TensorRows(vae_batch(vae, *train))
    device = val[0].device
    val_observed, val_targets = vae.targets(*val)
    limits = limits or PhaseLimits(None, config.max_steps)
    loop = _Loop("VAE", n_rows or rows.n_rows, config.batch_size, config.max_epochs, limits, config.patience,
                 device, progress, resume and resume["loop"], rows, private)
    optimizer = adam(vae.parameters(), config.lr)
    beta = BetaSchedule(config.beta_max, config.beta_min, config.beta_decay, config.beta_patience)
    if resume:
        vae.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        vars(beta).update(resume["beta"])
    # A tensor, so that a step recorded as a CUDA graph reads its current value.
    beta_now = torch.tensor(beta.beta, device=device)
    model = _trained(vae)

    def batch_loss(x_num: Tensor, x_cat: Tensor, observed: Tensor, targets: Tensor) -> Tensor:
        return vae_loss(x_num, observed, targets, *model(x_num, x_cat)).total(beta_now)

    step = _step(batch_loss, vae, device, private, loop.batch_size)

    def epoch() -> bool:
        vae.train()
        beta_now.fill_(beta.beta)
        for batch in loop.batches():
            step(*batch)
            optimizer.step()
        vae.eval()
        if private is not None:
            beta.step(math.nan)
            return loop.end_epoch(math.nan, vae, beta=beta.beta)
        with torch.no_grad():
            mu, logvar = vae.encode(val[0], val[2])
            val_loss = vae_loss(val[0], val_observed, val_targets, *vae.reconstruct(mu), mu, logvar)
        recon = distributed.mean(float(val_loss.reconstruction))
        stop = loop.end_epoch(recon, vae, beta=beta.beta, kl=float(val_loss.kl))
        beta.step(recon)
        return stop

    def snapshot() -> dict[str, Any]:
        return {"loop": loop.snapshot(), "model": vae.state_dict(), "optimizer": optimizer.state_dict(), "beta": dict(vars(beta))}

    try:
        loop.run(epoch, "vae", snapshot, checkpoint)
    finally:
        result = loop.finish(vae)
    return result


def _step(loss: Callable[..., Tensor], module: nn.Module, device: torch.device, private: PrivateTraining | None,
          batch_size: int, clip: GradientClip | None = None) -> GradientStep | PrivateStep:
    """The gradient of a step: of the batch's loss (then ``clip``'s), or DP-SGD's (which clips each row's
    and averages over ``batch_size``)."""
    if private is None:
        return GradientStep(loss, list(module.parameters()), graphed=_graphed(device), clip=clip)
    return PrivateStep(module, loss, private.noise_multiplier, private.max_grad_norm, batch_size)


def _graphed(device: torch.device) -> bool:
    """A step is replayed as a CUDA graph on one GPU; DDP's gradient messages are not recorded in one."""
    return device.type == "cuda" and distributed.current().size == 1


class _ScheduleProgress:
    """How far along its schedule the phase is at a step: the share of its step limit or of its time
    (its seconds so far, a resumed run has some, plus those left), whichever is further along. The
    time is the furthest rank's, read at the step's deadline check, so that the ranks agree on it."""

    def __init__(self, loop: _Loop, limits: PhaseLimits):
        self.loop, self.done = loop, loop.result.seconds
        self.seconds = None if limits.deadline is None else max(self.done + limits.deadline - time.monotonic(), 1e-9)
        self.total_steps = loop.max_epochs * loop.steps_per_epoch

    def __call__(self, step: int) -> float:
        share = step / self.total_steps
        if self.seconds is not None:
            share = max(share, 1 - max(-self.loop.overrun, 0) / self.seconds)
        return share


def _validation_set(z_val: Tensor, process: Process) -> tuple[Tensor, Tensor, Tensor]:
    """The held-out latents, repeated to at least ``MIN_DIFFUSION_VALIDATION_ROWS``, with noise levels
    and noise drawn once, so that every epoch is validated alike."""
    z_val = z_val.repeat(math.ceil(MIN_DIFFUSION_VALIDATION_ROWS / len(z_val)), 1)
    return z_val, process.training_sigma(len(z_val), z_val.device), torch.randn_like(z_val)


def train_diffusion(D: EDMPrecond, z_train: Tensor | StreamedRows, z_val: Tensor, config: DiffusionConfig,
                    limits: PhaseLimits | None = None, progress: bool = True, checkpoint: Checkpoint | None = None,
                    resume: dict[str, Any] | None = None, n_rows: int | None = None,
                    private: PrivateTraining | None = None) -> TrainResult:
    """Fit the denoiser with EDM's loss on latents (or a streamed table's); ``D`` ends holding the best
    EMA weights (also on Ctrl-C). ``limits`` default to ``config.max_steps`` and no deadline;
    ``n_rows`` is the whole table's where ``z_train`` is this rank's share of it. With ``private``,
    DP-SGD's steps, and the last EMA weights are kept."""
    rows = z_train if isinstance(z_train, StreamedRows) else TensorRows((z_train,))
    limits = limits or PhaseLimits(None, config.max_steps)
    loop = _Loop("diffusion", n_rows or rows.n_rows, config.batch_size, config.max_epochs, limits,
                 config.patience, z_val.device, progress, resume and resume["loop"], rows, private)
    model = _trained(D)  # before the average is copied from it: DDP gives every rank rank 0's weights
    ema = copy.deepcopy(D).requires_grad_(False)
    optimizer = adam(D.parameters(), config.lr)
    parts = {"model": D, "ema": ema, "optimizer": optimizer, "clip": GradientClip(config.max_grad_norm, config.grad_spike_factor)}
    for key, part in parts.items() if resume else ():
        part.load_state_dict(resume.get(key, {}))  # a checkpoint of an older version has no "clip"
    process = D.process
    z_val, val_sigma, val_noise = _validation_set(z_val, process)
    params, ema_params = list(D.parameters()), list(ema.parameters())
    progress_of = _ScheduleProgress(loop, limits)

    def batch_loss(x: Tensor) -> Tensor:
        with mixed_precision(x.device, config.precision, cache=False):
            return process.loss(model, x, process.training_sigma(len(x), x.device), torch.randn_like(x))

    gradient_step = _step(batch_loss, D, z_val.device, private, loop.batch_size, parts["clip"])

    def epoch() -> bool:
        D.train()
        # The step count is kept here rather than read from Adam's state, a device tensor whose every
        # read waits for the GPU to finish the previous step.
        for i, (batch,) in enumerate(loop.batches()):
            step = loop.result.steps + i
            schedule_done = progress_of(step)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config.lr, step, schedule_done, config.warmup_steps, config.lr_decay)
            loss = gradient_step(batch)
            optimizer.step()
            ema_update(ema_params, params, config.ema_decay, step)
        if private is not None:
            return loop.end_epoch(math.nan, ema, train=loss.item())
        with torch.no_grad(), mixed_precision(z_val.device, config.precision):
            val_loss = distributed.mean(float(process.loss(ema, z_val, val_sigma, val_noise)))
        passes = (loop.result.steps + loop.epoch_steps) * loop.batch_size / loop.n_rows
        may_stop_early = (not config.lr_decay or schedule_done >= EARLY_STOP_AFTER_PROGRESS
                          or passes >= EARLY_STOP_AFTER_PASSES)
        return loop.end_epoch(val_loss, ema, may_stop_early, train=loss.item())

    def snapshot() -> dict[str, Any]:
        return {"loop": loop.snapshot(), **{key: part.state_dict() for key, part in parts.items()}}

    try:
        loop.run(epoch, "diffusion", snapshot, checkpoint)
    finally:
        result = loop.finish(ema)
        D.load_state_dict(ema.state_dict())
    return result

"""A fit, stage by stage: transform the table, train the VAE, standardise its latents, train the
denoiser on them, then sample the model's own rows once to learn the calibration."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from .calibration import CALIBRATION_BATCH, Calibration, fit_calibration
from .codec import Codec, LatentScaling
from .config import SynthesizerConfig
from .diffusion.denoiser import edm_denoiser
from .diffusion.edm import EDMPrecond
from .diffusion.solvers import resolved_solver
from .errors import TabgenWarning
from .fit_plan import FitPlan
from .precision import resolved_precision
from .rules.ruleset import RuleSet
from .sampling import Sampler
from .schema import Schema
from .train import TrainResult, train_diffusion, train_vae
from .transform import TableTransform
from .vae import VAE

#: Fewer epochs than this, cut by a time budget, earn a warning that the model is undertrained.
MIN_EPOCHS_BEFORE_WARNING = 10
#: ``stopped_by`` of both trainings when every row of the table is the same: they train nothing.
NOTHING_VARIES = "nothing varies"

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class FittedModel:
    """What a fit learns; the denoiser, the calibration and the results fill in as it goes on."""

    codec: Codec
    denoiser: EDMPrecond
    config: SynthesizerConfig
    device: torch.device
    vae_result: TrainResult
    diffusion_result: TrainResult | None = None
    seconds: float = 0.0
    n_rows: int = 0
    rules: RuleSet = field(default_factory=RuleSet)
    schema: Schema | None = None
    """The user's table's schema; the codec's is the model table's (:meth:`RuleSet.model_table`)."""
    sampler: Sampler = field(init=False)

    def __post_init__(self) -> None:
        if self.schema is None:
            self.schema = self.codec.schema
        self.sampler = Sampler(self.codec, self.denoiser, self.config.sampler, self.config.diffusion.precision, self.device)


def validation_split(permutation: torch.Tensor, config: SynthesizerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows to train on and rows to validate on (the first of the permuted rows, a share of the table)."""
    n_val = min(int(len(permutation) * config.validation_fraction), config.validation_max_rows)
    if n_val < 1:  # too few rows to hold any out: validate on the training rows themselves
        return permutation, permutation
    return permutation[n_val:], permutation[:n_val]


def fit_model(table: pd.DataFrame, schema: Schema, rules: RuleSet, config: SynthesizerConfig, device: torch.device,
              plan: FitPlan, progress: bool, ready: Callable[[FittedModel], None]) -> FittedModel:
    """Fit every stage on ``table`` (already validated, ``schema`` of it, ``rules`` kept) under ``plan``.
    ``ready`` gets the model as soon as it can sample (before the denoiser's training), so that a
    caller holds the best weights so far if Ctrl-C stops that training."""
    df, model_schema = rules.model_table(table, schema)
    transform = TableTransform(model_schema).fit(df)
    # Where the token width is left to the table (None), the resolved one is what the model file keeps;
    # so are the float type, so that a loaded model samples with the products it was trained with, and the
    # solver, whose rows the calibration is learned on.
    config = config.for_table(len(model_schema.numerical), transform.layout_.cardinalities)
    config = replace(config, diffusion=replace(config.diffusion,
                                               precision=resolved_precision(config.diffusion.precision, device)),
                     sampler=replace(config.sampler, solver=resolved_solver(config.sampler, config.diffusion.process)))
    tensors = transform.transform(df).to_tensors(device)
    permutation = plan.permutation(len(df))
    train_idx, val_idx = validation_split(permutation, config)
    plan.open_checkpoint(config, permutation)
    codec = Codec(transform, VAE.for_layout(transform.layout_, config.vae).to(device))
    # A table whose rows are all alike (one row, or constant columns without gaps) would train for
    # minutes (the loss of memorising one row keeps falling) to learn what the untrained model writes.
    learn = transform.varies
    vae_result = _fit_vae(codec.vae, tensors, train_idx, val_idx, config, plan, progress) if learn else (
        TrainResult(stopped_by=NOTHING_VARIES))
    codec.vae.eval()
    plan.vae_done(codec.vae, vae_result)
    latents = codec.encode_means(tensors[0], tensors[2])
    codec.scaling = LatentScaling.fit(latents, config.diffusion.latent_std)
    z = codec.scaling.standardise(latents)
    denoiser = edm_denoiser(z.shape[1], config.diffusion, codec.vae.d_token).to(device)
    denoiser.process.fit(z[train_idx])
    model = FittedModel(codec, denoiser, config, device, vae_result, n_rows=len(df), rules=rules, schema=schema)
    ready(model)
    try:
        if learn:
            model.diffusion_result = train_diffusion(
                model.denoiser, z[train_idx], z[val_idx], config.diffusion, plan.diffusion_limits(config), progress,
                plan.checkpointer, plan.resumed("diffusion"))
            model.denoiser.eval()
            codec.calibration = calibrate(model.sampler, tensors, config.sampler.calibration_rows, plan.deadline, progress)
        else:
            model.diffusion_result = TrainResult(stopped_by=NOTHING_VARIES)
    finally:
        model.denoiser.eval()
        model.seconds = plan.elapsed()
    plan.finish()
    warn_if_cut_short(vae_result, model.diffusion_result)
    return model


def _fit_vae(vae: VAE, tensors: Tensors, train_idx: torch.Tensor, val_idx: torch.Tensor, config: SynthesizerConfig,
             plan: FitPlan, progress: bool) -> TrainResult:
    """Train the VAE, or take it finished from the checkpoint being resumed."""
    done = plan.resumed("vae_done")
    if done is not None:
        vae.load_state_dict(done["model"])
        return TrainResult(**done["result"])
    return train_vae(vae, tuple(t[train_idx] for t in tensors), tuple(t[val_idx] for t in tensors), config.vae,
                     plan.vae_limits(config), progress, plan.checkpointer, plan.resumed("vae"))


@torch.inference_mode()
def calibrate(sampler: Sampler, tensors: Tensors, rows: int, deadline: float | None = None,
              progress: bool = False) -> Calibration | None:
    """Learn the calibration from ``rows`` of the model's own rows (at least one batch of them, fewer
    if ``deadline`` comes first); ``tensors`` are the encoded training table's. ``None`` if ``rows`` is 0."""
    if rows <= 0:
        return None
    codec = sampler.codec
    times = sampler.times(sampler.config.num_steps)
    x_num, logits = [], []
    began = time.monotonic()
    with tqdm(total=rows, desc="calibrating", unit="row", disable=not progress, leave=False, dynamic_ncols=True) as bar:
        for start in range(0, rows, CALIBRATION_BATCH):
            noise = torch.randn(min(CALIBRATION_BATCH, rows - start), codec.latent_dim, device=sampler.device)
            scores, heads = codec.vae.reconstruct(codec.tokens(sampler.latents(noise, times)))
            x_num.append(scores.float())
            logits.append([lg.float() for lg in heads])
            bar.update(len(noise))
            # Stop while one more batch and the maps' fitting (about a batch's time) still fit.
            batch_seconds = (time.monotonic() - began) / (start // CALIBRATION_BATCH + 1)
            if deadline is not None and time.monotonic() + 2 * batch_seconds > deadline:
                break
    regressed, real_classes = codec.vae.targets(*tensors)
    return fit_calibration(torch.cat(x_num), [torch.cat(h) for h in zip(*logits)], real_classes, codec.layout,
                           torch.where(regressed, tensors[0], torch.nan), deadline)


def warn_if_cut_short(vae: TrainResult, diffusion: TrainResult) -> None:
    """A time budget on a slow or busy machine can leave too little training for usable rows."""
    for phase, result in (("VAE", vae), ("diffusion", diffusion)):
        if result.stopped_by == "time budget" and result.epochs < MIN_EPOCHS_BEFORE_WARNING:
            warnings.warn(f"the time budget allowed only {result.epochs} epoch(s) of {phase} training "
                          f"({result.steps} steps): expect poor synthetic data; give a larger time budget",
                          TabgenWarning, stacklevel=4)

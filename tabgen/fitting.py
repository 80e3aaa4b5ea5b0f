"""A fit, stage by stage: transform the table, train the VAE, standardise its latents, train the
denoiser on them, then sample the model's own rows once to learn the calibration."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import distributed
from .batches import Batch, StreamedRows
from .calibration import CALIBRATION_BATCH, Calibration, bias_seconds, fit_calibration, noisy_table_counts
from .codec import Codec
from .config import DiffusionConfig, SynthesizerConfig
from .diffusion.denoiser import edm_denoiser
from .diffusion.edm import EDMPrecond
from .diffusion.solvers import resolved_solver
from .dp_sgd import Phase, PrivacySpent, counts_noise, default_delta, noise_multiplier, spent_epsilon
from .errors import TabgenError, TabgenWarning
from .fit_plan import FitPlan
from .io import read_table
from .io.stream import OPEN_PARTS, TableStream, stream_if_too_large
from .precision import resolved_precision
from .protection import ValueProtection
from .rules.ruleset import RuleSet
from .sampling import Sampler
from .schema import Schema, validate_frame
from .train import PrivateTraining, TrainResult, planned_steps, train_diffusion, train_vae, vae_batch
from .transform import TableTransform
from .vae import VAE

#: Fewer epochs than this, cut by a time budget, earn a warning that the model is undertrained.
MIN_EPOCHS_BEFORE_WARNING = 10
#: ``stopped_by`` of both trainings when every row of the table is the same: they train nothing.
NOTHING_VARIES = "nothing varies"

#: Passes the denoiser makes over each pool of a streamed table's latents: encoding a row costs a sixth
#: of a training step's share of it, so one pass would spend 16 % of the time encoding, four 4 %
#: (30 million rows, 2-core EPYC: docs/scale.md).
LATENT_POOL_PASSES = 4
#: Of a streamed table's sample, the training rows whose latents fit the latents' standardisation.
STREAMED_LATENT_ROWS = 100_000

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
    skipped_share: float = 0.0
    """Of a streamed table's rows read in training, the share left out (:class:`Streamed`)."""
    rules: RuleSet = field(default_factory=RuleSet)
    privacy: PrivacySpent | None = None
    """What a private fit spent (``config.privacy.epsilon`` set)."""
    schema: Schema | None = None
    """The user's table's schema; the codec's is the model table's (:meth:`RuleSet.model_table`)."""
    sampler: Sampler = field(init=False)

    def __post_init__(self) -> None:
        if self.schema is None:
            self.schema = self.codec.schema
        self.sampler = Sampler(self.codec, self.denoiser, self.config.sampler, self.config.diffusion.precision, self.device)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch inside the block only, leaving the caller's global random state as it was."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def validation_split(permutation: torch.Tensor, config: SynthesizerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows to train on and rows to validate on (the first of the permuted rows, a share of the table)."""
    n_val = min(int(len(permutation) * config.validation_fraction), config.validation_max_rows)
    if n_val < 1:  # too few rows to hold any out: validate on the training rows themselves
        return permutation, permutation
    return permutation[n_val:], permutation[:n_val]


@dataclass(frozen=True)
class PrivatePlan:
    """DP-SGD's noise for a fit's two trainings, chosen so that their planned steps spend ε at most."""

    training: PrivateTraining
    sample_rates: tuple[float, float]
    delta: float
    counts_noise: float | None = None
    """The calibration's counts' noise multiplier (:func:`tabgen.dp_sgd.counts_noise`); ``None``: no calibration."""

    @classmethod
    def for_fit(cls, config: SynthesizerConfig, n_train: int) -> "PrivatePlan | None":
        dp = config.privacy
        if dp.epsilon is None:
            return None
        rates = tuple(min(c.batch_size / n_train, 1.0) for c in (config.vae, config.diffusion))
        delta = dp.delta or default_delta(n_train)
        counts = counts_noise(dp.epsilon, delta) if config.sampler.calibration_rows > 0 else None
        phases = [Phase(rate, planned_steps(n_train, c.batch_size, c.max_steps))
                  for rate, c in zip(rates, (config.vae, config.diffusion))] + _counts_phase(counts)
        return cls(PrivateTraining(noise_multiplier(dp.epsilon, delta, phases), dp.max_grad_norm), rates, delta, counts)

    def spent(self, vae_steps: int, diffusion_steps: int) -> PrivacySpent:
        """The privacy spent by the steps taken (a time budget may end them before the plan) and the counts."""
        sigma = self.training.noise_multiplier
        phases = [Phase(self.sample_rates[0], vae_steps), Phase(self.sample_rates[1], diffusion_steps)]
        phases += _counts_phase(self.counts_noise)
        return PrivacySpent(spent_epsilon(sigma, phases, self.delta), self.delta, sigma, self.training.max_grad_norm,
                            self.counts_noise)


def _counts_phase(noise: float | None) -> list[Phase]:
    """The calibration's one release of every row's class counts, as the accountant sees it."""
    return [] if noise is None else [Phase(1.0, 1, noise)]


@dataclass
class Streamed:
    """A table too large to hold: ``stream`` it is read from, and the numbers in it of the rows of the
    sample that a fit is given as its table (:meth:`TableStream.sample`)."""

    stream: TableStream
    numbers: np.ndarray
    seed: int
    read: int = 0
    skipped: int = 0
    """Of the rows read, those left out of training: they hold a category, or a gap, that the sample has not."""
    protection: ValueProtection | None = None
    """The sample's rare values, protected in every chunk as in the sample."""

    def rows(self, leave_out: torch.Tensor, encode: Callable[[pd.DataFrame], Batch | None], phase: int,
             passes: int = 1) -> StreamedRows:
        chunks = self.stream.chunks(self.seed + phase, distributed.current(), np.sort(self.numbers[leave_out.cpu().numpy()]))
        return StreamedRows(chunks, encode, self.stream.n_rows, OPEN_PARTS, passes)

    def encoder(self, rules: RuleSet, schema: Schema, transform: TableTransform, device: torch.device,
                then: Callable[..., Batch]) -> Callable[[pd.DataFrame], Batch | None]:
        """Chunk → the model table's encoded rows (those the sample's transform can encode) → ``then``."""
        def encode(chunk: pd.DataFrame) -> Batch | None:
            table = rules.model_frame(chunk if self.protection is None else self.protection.apply(chunk), schema)
            known = transform.known(table)
            self.read += len(known)
            self.skipped += int((~known).sum())
            if not known.any():
                return None
            return then(*transform.transform(table[known].reset_index(drop=True)).to_tensors(device))
        return encode


@dataclass
class TrainingRows:
    """What each network trains on: this rank's share of the training rows of a table held in memory
    (``tensors``, split into ``train_idx`` and ``val_idx``), or of all the rows of a streamed one."""

    tensors: Tensors
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    streamed: Streamed | None
    rules: RuleSet
    schema: Schema
    """The user's table's (a streamed chunk's columns), not the model table's."""

    @property
    def n_train(self) -> int:
        return len(self.train_idx) if self.streamed is None else self.streamed.stream.n_rows - len(self.val_idx)

    def _mine(self, rows: torch.Tensor) -> torch.Tensor:
        ranks = distributed.current()
        return rows[ranks.rank::ranks.size]

    def _streamed(self, codec: Codec, then: Callable[..., Batch], phase: int, passes: int = 1) -> StreamedRows:
        encode = self.streamed.encoder(self.rules, self.schema, codec.transform, self.tensors[0].device, then)
        return self.streamed.rows(self.val_idx, encode, phase, passes)

    def for_vae(self, codec: Codec) -> Tensors | StreamedRows:
        if self.streamed is None:
            return tuple(t[self._mine(self.train_idx)] for t in self.tensors)
        return self._streamed(codec, lambda *t: vae_batch(codec.vae, *t), phase=1)

    def latents(self, codec: Codec, config: DiffusionConfig, axes: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The standardised latents (the scaling fitted on them, with their widest directions where
        ``axes``), and which of them train and validate."""
        encoded, fit, val = slice(None), self.train_idx, self.val_idx
        if self.streamed is not None:  # the statistics need not all of a large sample, whose encoding takes seconds
            encoded = torch.cat([self.val_idx, self.train_idx[:STREAMED_LATENT_ROWS]])
            val, fit = torch.arange(len(self.val_idx)), torch.arange(len(self.val_idx), len(encoded))
        x_num = self.tensors[0][encoded]
        latents = codec.encode_means(x_num, self.tensors[2][encoded])
        codec.fit_scaling(latents, x_num, config.latent_std, config.whiten_correlation, axes)
        return codec.scaling.standardise(latents), fit, val

    def for_denoiser(self, codec: Codec, z: torch.Tensor, fit: torch.Tensor) -> torch.Tensor | StreamedRows:
        if self.streamed is None:
            return z[self._mine(fit)]
        return self._streamed(codec, lambda x_num, _, x_cat: (codec.scaling.standardise(codec.encode_means(x_num, x_cat)),),
                              phase=2, passes=LATENT_POOL_PASSES)


def fit_input(data: pd.DataFrame | str | os.PathLike, sample_rows: int, seed: int | None, sep: str | None,
              encoding: str | None) -> tuple[pd.DataFrame, Streamed | None]:
    """The table a fit learns: ``data`` itself, the table at a path, or a sample of ``sample_rows`` rows of
    a table too large to hold, with the stream its other rows come from."""
    if isinstance(data, pd.DataFrame):
        return validate_frame(data), None
    path = Path(data)
    stream = stream_if_too_large(path, sample_rows, sep, encoding) if path.exists() else None
    if stream is None:
        return validate_frame(read_table(path, sep=sep, encoding=encoding)), None
    df, numbers = stream.sample(sample_rows, seed)
    return validate_frame(df), Streamed(stream, numbers, 0 if seed is None else seed)


def fit_model(table: pd.DataFrame, schema: Schema, rules: RuleSet, config: SynthesizerConfig, device: torch.device,
              plan: FitPlan, progress: bool, ready: Callable[[FittedModel], None],
              streamed: Streamed | None = None) -> FittedModel:
    """Fit every stage on ``table`` (already validated, ``schema`` of it, ``rules`` kept) under ``plan``.
    ``ready`` gets the model as soon as it can sample (before the denoiser's training), so that a
    caller holds the best weights so far if Ctrl-C stops that training.

    With ``streamed``, ``table`` is a sample of a larger table, which the networks train on in chunks.
    In a distributed fit (a process group is open) each rank trains on its share of the rows."""
    df, model_schema = rules.model_table(table, schema)
    transform = TableTransform(model_schema, config.rare_value_rows).fit(df)
    # The width for the table's rows, the token width where left to the table (None), the float type (a loaded
    # model samples with the products it was trained with) and the solver (the calibration's) are kept.
    n_rows = len(df) if streamed is None else streamed.stream.n_rows
    config = _as_private(config.for_table(len(model_schema.numerical), transform.layout_.cardinalities, n_rows), streamed)
    config = replace(config, diffusion=replace(config.diffusion,
                                               precision=resolved_precision(config.diffusion.precision, device)),
                     sampler=replace(config.sampler, solver=resolved_solver(config.sampler, config.diffusion.process)))
    tensors = transform.transform(df).to_tensors(device)
    permutation = plan.permutation(len(df))
    rows = TrainingRows(tensors, *validation_split(permutation, config), streamed, rules, schema)
    plan.open_checkpoint(config, permutation)
    private = PrivatePlan.for_fit(config, rows.n_train)
    codec = Codec(transform, VAE.for_layout(transform.layout_, config.vae).to(device))
    shared_seed = _rank_streams()
    # A table whose rows are all alike (one row, or constant columns without gaps) would train for
    # minutes (the loss of memorising one row keeps falling) to learn what the untrained model writes.
    learn = transform.varies
    vae_result = _fit_vae(codec.vae, rows.for_vae(codec), tuple(t[rows.val_idx] for t in tensors), rows.n_train, config,
                          plan, progress, private and private.training) if learn else TrainResult(stopped_by=NOTHING_VARIES)
    codec.vae.eval()
    plan.vae_done(codec.vae, vae_result)
    z, z_fit, z_val = rows.latents(codec, config.diffusion, axes=config.privacy.epsilon is None)
    denoiser = edm_denoiser(z.shape[1], config.diffusion, codec.vae.d_token).to(device)
    denoiser.process.fit(z[z_fit])
    model = FittedModel(codec, denoiser, config, device, vae_result, rules=rules, schema=schema,
                        n_rows=n_rows)
    ready(model)
    try:
        if learn:
            model.diffusion_result = train_diffusion(
                model.denoiser, rows.for_denoiser(codec, z, z_fit), z[z_val], config.diffusion,
                plan.diffusion_limits(config), progress, plan.checkpointer, plan.resumed("diffusion"), rows.n_train,
                private and private.training)
            model.denoiser.eval()
            if shared_seed is not None:
                torch.manual_seed(shared_seed)
            codec.calibration = calibrate(model.sampler, tensors, config.sampler.calibration_rows, plan.deadline,
                                          progress and distributed.current().main, private and private.counts_noise)
        else:
            model.diffusion_result = TrainResult(stopped_by=NOTHING_VARIES)
    finally:
        model.denoiser.eval()
        model.seconds = plan.elapsed()
        model.skipped_share = 0.0 if streamed is None else streamed.skipped / max(streamed.read, 1)
        if private is not None:
            model.privacy = private.spent(vae_result.steps, getattr(model.diffusion_result, "steps", 0))
    plan.finish()
    warn_if_cut_short(vae_result, model.diffusion_result)
    return model


def _as_private(config: SynthesizerConfig, streamed: Streamed | None) -> SynthesizerConfig:
    """A private fit's config (:meth:`SynthesizerConfig.private`), where ``privacy.epsilon`` is set."""
    if config.privacy.epsilon is None:
        return config
    if streamed is not None or distributed.current().size > 1:
        raise TabgenError("a differentially private fit runs in one process on a table held in memory: "
                          "leave out --distributed, or sample the table down")
    return config.private()


def _rank_streams() -> int | None:
    """In a distributed fit, a random stream for each rank from here (the shared draws, the split and the
    initial weights, are behind), and the seed that brings them back to one stream for the calibration,
    so that every rank ends alike; ``None`` for one process, whose stream goes on unchanged."""
    ranks = distributed.current()
    if ranks.size == 1:
        return None
    shared_seed = int(torch.randint(2**62, (1,)))
    torch.manual_seed(shared_seed + 1 + ranks.rank)
    return shared_seed


def _fit_vae(vae: VAE, train: Tensors | StreamedRows, val: Tensors, n_train: int, config: SynthesizerConfig,
             plan: FitPlan, progress: bool, private: PrivateTraining | None) -> TrainResult:
    """Train the VAE, or take it finished from the checkpoint being resumed."""
    done = plan.resumed("vae_done")
    if done is not None:
        vae.load_state_dict(done["model"])
        return TrainResult(**done["result"])
    return train_vae(vae, train, val, config.vae, plan.vae_limits(config), progress, plan.checkpointer,
                     plan.resumed("vae"), n_train, private)


@torch.inference_mode()
def calibrate(sampler: Sampler, tensors: Tensors, rows: int, deadline: float | None = None,
              progress: bool = False, counts_noise: float | None = None) -> Calibration | None:
    """Learn the calibration from ``rows`` of the model's own rows (at least one batch of them, fewer
    if ``deadline`` comes first); ``tensors`` are the encoded training table's. ``None`` if ``rows`` is 0.
    With ``counts_noise`` (a private fit's), the table is read only as class counts with Gaussian noise of
    that multiplier (:func:`tabgen.calibration.noisy_table_counts`)."""
    if rows <= 0:
        return None
    codec = sampler.codec
    times = sampler.times(sampler.config.num_steps)
    x_num, logits = [], []
    sampling, bias_per_row = 0.0, 0.0
    with tqdm(total=rows, desc="calibrating", unit="row", disable=not progress, leave=False, dynamic_ncols=True) as bar:
        for batch, start in enumerate(range(0, rows, CALIBRATION_BATCH)):
            began = time.monotonic()
            noise = torch.randn(min(CALIBRATION_BATCH, rows - start), codec.latent_dim, device=sampler.device)
            scores, heads = codec.vae.reconstruct(codec.tokens(sampler.latents(noise, times)))
            x_num.append(scores.float())
            logits.append([lg.float() for lg in heads])
            bar.update(len(noise))
            sampling += time.monotonic() - began
            if deadline is None:
                continue
            if not batch and codec.layout.cardinalities:
                bias_per_row = bias_seconds(logits[0][:len(codec.layout.cardinalities)]) / len(noise)
            # Stop while one more batch, and the heads' biases on every row sampled, still fit: the
            # biases of a table of thousands of classes take longer than the sampling (superstore under
            # a 40 s budget: 13 s for 14,336 rows, sampled in 1.4 s).
            more = start + len(noise) + CALIBRATION_BATCH
            if time.monotonic() + sampling / (batch + 1) + bias_per_row * more > deadline:
                break
    regressed, real_classes = codec.vae.targets(*tensors)
    heads = [torch.cat(h) for h in zip(*logits)]
    if counts_noise is not None:
        counts = noisy_table_counts(real_classes.cpu(), [h.shape[1] for h in heads],
                                    len(codec.layout.cardinalities) - len(codec.layout.gappy), counts_noise)
        return fit_calibration(torch.cat(x_num), heads, None, codec.layout, counts=counts)
    return fit_calibration(torch.cat(x_num), heads, real_classes, codec.layout,
                           torch.where(regressed, tensors[0], torch.nan), deadline)


def warn_if_cut_short(vae: TrainResult, diffusion: TrainResult) -> None:
    """A time budget on a slow or busy machine can leave too little training for usable rows."""
    for phase, result in (("VAE", vae), ("diffusion", diffusion)):
        if result.stopped_by == "time budget" and result.epochs < MIN_EPOCHS_BEFORE_WARNING:
            warnings.warn(f"the time budget allowed only {result.epochs} epoch(s) of {phase} training "
                          f"({result.steps} steps): expect poor synthetic data; give a larger time budget",
                          TabgenWarning, stacklevel=4)

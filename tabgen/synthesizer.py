"""The facade: ``Synthesizer(...).fit(df)``, ``.sample(n)``, ``.impute(df)``, ``.save(path)``,
``Synthesizer.load(path)``.

Data flows one way: table → schema → transform → VAE latents → diffusion → Heun sampler →
decoder → inverse transform → table. Conditional sampling (``given``, ``rebalance``, ``impute``)
encodes the fixed cells into their latent tokens and inpaints the rest (``diffusion/inpaint.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import warnings
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import __version__
from .checkpoint import Checkpointer, load_checkpoint
from .conditions import (Givens, Rebalance, allocate, given_from_frame, given_from_mapping, output_values, parent_givens,
                         resolve_rebalance)
from .calibration import CALIBRATION_BATCH, Calibration, fit_calibration
from .config import SynthesizerConfig
from .diffusion.denoiser import edm_denoiser
from .diffusion.edm import Denoiser, bounded_denoiser
from .diffusion.inpaint import heun_inpaint
from .diffusion.sampler import heun_sample, sigma_schedule
from .errors import TabgenError, TabgenWarning
from .imputation import check_columns, combine_draws
from .io import load_model, save_model
from .known_latents import encoder_inputs
from .pairs import find_pairs, write_derived
from .precision import PRECISIONS, mixed_precision
from .schema import Schema, infer_schema, json_scalar, validate_frame
from .train import UNLIMITED_STEPS, TrainResult, train_diffusion, train_vae
from .transform import EncodedTable, TableTransform
from .vae import VAE

# Of a time budget, the VAE gets at most this share: it converges in few epochs, and every
# second saved goes to the diffusion model, which is the bottleneck of quality.
VAE_BUDGET_SHARE = 0.3
#: The last share of a time budget is kept for sampling the rows of the calibration.
CALIBRATION_BUDGET_SHARE = 0.04
#: Column tokens encoded at once when computing the latents of the whole table.
ENCODE_TOKENS_PER_CHUNK = 2**19
#: Fewer epochs than this, cut by a time budget, earn a warning that the model is undertrained.
MIN_EPOCHS_BEFORE_WARNING = 10
#: Rows sampled to learn how the model splits rows among the categories a rebalance does not name.
REBALANCE_PILOT_ROWS = 2000
#: ``stopped_by`` of both trainings when every row of the table is the same: they train nothing.
NOTHING_VARIES = "nothing varies"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise TabgenError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TabgenError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu")
    return resolved


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch inside the block only, leaving the caller's global random state as it was."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


class Synthesizer:
    """Learns a table and generates synthetic rows (TabSyn: VAE + EDM latent diffusion).

    Parameters
    ----------
    categorical, numerical, identifiers:
        Column names whose kind overrides the inferred one. Identifiers are not modelled; the output
        gets fresh unique values in their format.
    exact_pairs:
        Columns that determine each other one-to-one in the table (a code and its label, a value in
        two units) are learned once: one of them is modelled and the others are written from it, so
        every generated row keeps them consistent. ``False`` models each column on its own.
    config:
        Every method setting; by default :meth:`SynthesizerConfig.for_device` of the chosen device.
    time_budget:
        Seconds of training at most (VAE and diffusion together); ``None`` trains until early stopping
        or the configured step limits. With a budget the denoiser trains until the budget ends or its
        validation loss stops improving, not to its step limit, so a budget longer than a default fit
        buys more training. A budget makes the amount of training depend on the machine's speed, so
        only runs without one are reproducible across machines.
    device:
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    seed:
        Makes fitting and sampling reproducible; ``None`` for fresh randomness. On a GPU a fit repeats
        only up to rounding, as some CUDA kernels add in a varying order.
    progress:
        Show progress bars with the current losses.
    checkpoint, checkpoint_every:
        Where to save the training state, and how often (seconds), so that an interrupted fit can
        continue with ``fit(df, resume=True)``. The file is removed when the fit completes.
    """

    def __init__(
        self,
        *,
        categorical: Iterable[str] = (),
        numerical: Iterable[str] = (),
        identifiers: Iterable[str] = (),
        exact_pairs: bool = True,
        config: SynthesizerConfig | None = None,
        time_budget: float | None = None,
        device: str = "auto",
        seed: int | None = 0,
        progress: bool = True,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: float = 60.0,
    ):
        self.categorical = categorical
        self.numerical = numerical
        self.identifiers = identifiers
        self.exact_pairs = exact_pairs
        self.config = config
        self.time_budget = time_budget
        self.device = device
        self.seed = seed
        self.progress = progress
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, *, resume: bool = False) -> "Synthesizer":
        """Learn ``df``'s schema, its VAE and the diffusion model of the VAE's latents.

        With ``checkpoint`` set, the training state is written there every ``checkpoint_every``
        seconds and on Ctrl-C, and ``resume=True`` continues from it (on the same table). Ctrl-C
        raises ``KeyboardInterrupt``; if it came during the diffusion phase, the Synthesizer is left
        usable with the best weights so far.
        """
        if self.time_budget is not None and not self.time_budget > 0:
            raise TabgenError(f"time_budget must be a positive number of seconds, got {self.time_budget!r}")
        df = validate_frame(df)
        device = resolve_device(self.device)
        fingerprint = _fingerprint(df)
        state = self._resume_state(fingerprint) if resume else None
        if state is not None:
            config = SynthesizerConfig.from_dict(state["config"])
        else:
            config = self.config or SynthesizerConfig.for_device(device.type)
        if config.diffusion.precision not in PRECISIONS:
            raise TabgenError(f"config.diffusion.precision must be one of {PRECISIONS}, got {config.diffusion.precision!r}")
        start = time.monotonic() - (state["elapsed"] if state else 0.0)
        self.schema_ = infer_schema(df, self.categorical, self.numerical, self.identifiers)
        if self.exact_pairs:
            self.schema_ = find_pairs(df, self.schema_)
        self.transform_ = TableTransform(self.schema_).fit(df)
        # Where the token width is left to the table (None), the resolved one is what the model file keeps.
        config = config.for_table(len(self.schema_.numerical), len(self.transform_.cardinalities))
        self.config_ = config
        with _seeded(self.seed, device):
            encoded = self.transform_.transform(df)
            perm = state["split"] if state else torch.randperm(len(df))
            train_idx, val_idx = self._split(perm)
            tensors = _to_tensors(encoded, device)
            train = tuple(t[train_idx] for t in tensors)
            val = tuple(t[val_idx] for t in tensors)
            checkpoint = None
            if self.checkpoint is not None:
                checkpoint = Checkpointer(self.checkpoint, self.checkpoint_every, lambda: {
                    "config": config.to_dict(), "fingerprint": fingerprint, "split": perm,
                    "elapsed": time.monotonic() - start,
                })

            vae_deadline = None if self.time_budget is None else start + VAE_BUDGET_SHARE * self.time_budget
            self.vae_ = VAE(encoded.x_num.shape[1], self.transform_.cardinalities, config.vae,
                            self.transform_.value_levels_).to(device)
            # A table whose rows are all alike (one row, or constant columns without gaps) would train
            # for minutes (the loss of memorising one row keeps falling) to learn what the untrained
            # model already writes.
            learn = self.transform_.varies
            if not learn:
                self.vae_result_ = TrainResult(stopped_by=NOTHING_VARIES)
            elif state is not None and "vae_done" in state:
                self.vae_.load_state_dict(state["vae_done"]["model"])
                self.vae_result_ = TrainResult(**state["vae_done"]["result"])
            else:
                self.vae_result_ = train_vae(self.vae_, train, val, config.vae, vae_deadline, self.progress,
                                             checkpoint, state and state.get("vae"))
            self.vae_.eval()
            if checkpoint is not None:
                checkpoint.done["vae_done"] = {"model": self.vae_.state_dict(), "result": asdict(self.vae_result_)}

            c = config.diffusion
            z = self._standardise_latents(_encode_means(self.vae_, tensors[0], tensors[2]))
            self.denoiser_ = edm_denoiser(z.shape[1], c).to(device)
            self.device_ = device
            self.n_rows_ = len(df)
            self._sample_calls = 0
            self.calibration_ = None  # a fit cut short samples uncalibrated rows
            diffusion_deadline = deadline = None
            if self.time_budget is not None:
                deadline = start + self.time_budget
                reserve = CALIBRATION_BUDGET_SHARE * self.time_budget if config.sampler.calibration_rows > 0 else 0.0
                diffusion_deadline = deadline - reserve
                c = replace(c, max_steps=UNLIMITED_STEPS)
            try:
                if learn:
                    self.diffusion_result_ = train_diffusion(self.denoiser_, z[train_idx], z[val_idx], c, diffusion_deadline,
                                                             self.progress, checkpoint, state and state.get("diffusion"))
                    self.denoiser_.eval()
                    self.calibration_ = self._calibrate(tensors, deadline)
                else:
                    self.diffusion_result_ = TrainResult(stopped_by=NOTHING_VARIES)
            finally:
                self.denoiser_.eval()
                self.fit_seconds_ = time.monotonic() - start
        if self.checkpoint is not None:
            Path(self.checkpoint).unlink(missing_ok=True)  # finished: nothing left to resume
        self._warn_if_cut_short()
        return self

    def _warn_if_cut_short(self) -> None:
        """A time budget on a slow or busy machine can leave too little training for usable rows."""
        for phase, result in (("VAE", self.vae_result_), ("diffusion", self.diffusion_result_)):
            if result.stopped_by == "time budget" and result.epochs < MIN_EPOCHS_BEFORE_WARNING:
                warnings.warn(
                    f"the time budget allowed only {result.epochs} epoch(s) of {phase} training "
                    f"({result.steps} steps): expect poor synthetic data; give a larger --time-budget",
                    TabgenWarning,
                    stacklevel=3,
                )

    def _resume_state(self, fingerprint: str) -> dict[str, Any]:
        if self.checkpoint is None:
            raise TabgenError("resume=True needs the checkpoint path the interrupted fit used (checkpoint=...)")
        state = load_checkpoint(self.checkpoint)
        if state["fingerprint"] != fingerprint:
            raise TabgenError(
                f"the checkpoint {self.checkpoint} was made from a different table; resume with the same "
                "data, or start afresh without --resume"
            )
        return state

    @torch.inference_mode()
    def _calibrate(self, tensors: tuple[torch.Tensor, ...], deadline: float | None) -> Calibration | None:
        """Learn the calibration from the model's own rows (at least one batch of them)."""
        rows = self.config_.sampler.calibration_rows
        if rows <= 0:
            return None
        sigmas = self._sigmas(self.config_.sampler.num_steps)
        x_num, logits = [], []
        began = time.monotonic()
        with tqdm(total=rows, desc="calibrating", unit="row", disable=not self.progress, leave=False,
                  dynamic_ncols=True) as bar:
            for start in range(0, rows, CALIBRATION_BATCH):
                noise = torch.randn(min(CALIBRATION_BATCH, rows - start), self.latent_mean_.shape[0], device=self.device_)
                z = self._latents(noise, sigmas)
                scores, heads = self.vae_.reconstruct(z.reshape(len(z), self.vae_.n_tokens, -1))
                x_num.append(scores.float())
                logits.append([lg.float() for lg in heads])
                bar.update(len(noise))
                # Stop while one more batch and the maps' fitting (about a batch's time) still fit.
                batch_seconds = (time.monotonic() - began) / (start // CALIBRATION_BATCH + 1)
                if deadline is not None and time.monotonic() + 2 * batch_seconds > deadline:
                    break
        regressed, real_classes = self.vae_.targets(*tensors)
        gappy = [self.schema_.numerical.index(c) for c in self.transform_.gappy_numerical]
        return fit_calibration(torch.cat(x_num), [torch.cat(h) for h in zip(*logits)], real_classes,
                               len(self.vae_.cardinalities), self.vae_.reconstructor.discrete, gappy,
                               torch.where(regressed, tensors[0], torch.nan))

    def _sigmas(self, num_steps: int) -> torch.Tensor:
        s = self.config_.sampler
        return sigma_schedule(num_steps, s.sigma_min, s.sigma_max, s.rho, self.device_)

    def _latents(self, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
        """Heun-sampled latents from standard normal ``noise``, in the VAE's scale."""
        with mixed_precision(self.device_, self.config_.diffusion.precision):
            z = heun_sample(self._sampling_denoiser(), noise, sigmas)
        return z * self.latent_std_ + self.latent_mean_

    def _standardise_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Learn the per-dimension scaling of the latents (to ``config.diffusion.latent_std``) and apply it."""
        self.latent_mean_ = latents.mean(0)
        # One row has no spread: treat it as unit spread (asked for, torch's std warns and gives NaN).
        spread = latents.std(0) if len(latents) > 1 else torch.ones_like(self.latent_mean_)
        self.latent_std_ = spread.clamp_min(1e-6) / self.config_.diffusion.latent_std
        z = (latents - self.latent_mean_) / self.latent_std_
        self.latent_low_, self.latent_high_ = z.min(0).values, z.max(0).values
        return z

    def _sampling_denoiser(self) -> Denoiser:
        """The denoiser held within the training latents' range (files from before have no range)."""
        if self.latent_low_ is None:
            return self.denoiser_
        return bounded_denoiser(self.denoiser_, self.latent_low_, self.latent_high_)

    def _split(self, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows to train on and rows to validate on (a random share of the training table)."""
        c = self.config_
        n_val = min(int(len(perm) * c.validation_fraction), c.validation_max_rows)
        if n_val < 1:  # too few rows to hold any out: validate on the training rows themselves
            return perm, perm
        return perm[n_val:], perm[:n_val]

    def _check_fitted(self) -> None:
        if not hasattr(self, "denoiser_"):
            raise TabgenError("this Synthesizer is not fitted yet: call fit(df) first, or Synthesizer.load(path)")

    # --------------------------------------------------------------- sample
    def sample(
        self,
        n: int | None = None,
        *,
        given: Mapping[str, Any] | pd.DataFrame | None = None,
        rebalance: Mapping[str, Mapping[Any, float]] | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """``n`` synthetic rows with the fitted columns, order and dtypes.

        ``given`` fixes cells: a dict ``{column: value}`` fixes them in every row; a DataFrame asks for
        one row per row of it (``n`` may be left out), each keeping the frame's non-missing cells.
        ``rebalance={column: {category: share}}`` sets the shares of some categories of one categorical
        column; the other categories share the rest in proportion to the model's own shares. The cells
        not fixed follow the model's distribution given the fixed ones (inpainting in the latent
        space, no rejection: a rare segment costs no more than a common one).

        Without ``seed``, successive calls continue one reproducible stream derived from the
        Synthesizer's own seed; with it, the call is reproducible on its own.
        """
        batches = self.sample_batches(n, given=given, rebalance=rebalance, seed=seed, progress=progress)
        return pd.concat(list(batches), ignore_index=True)

    def sample_batches(
        self,
        n: int | None = None,
        *,
        given: Mapping[str, Any] | pd.DataFrame | None = None,
        rebalance: Mapping[str, Mapping[Any, float]] | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> Iterator[pd.DataFrame]:
        """:meth:`sample`'s rows as frames of at most ``config.sampler.batch_size`` rows each,
        so that memory stays bounded however many rows are asked for."""
        self._check_fitted()
        n = _rows_asked(n, given)
        generator = self._generator(seed)
        givens = self._givens(n, given, rebalance, generator)
        return self._batches(n, givens, generator, self.progress if progress is None else progress)

    def impute(self, df: pd.DataFrame, *, draws: int = 1, seed: int | None = None, progress: bool | None = None) -> pd.DataFrame:
        """``df`` with its missing cells filled and every observed cell as it was.

        Each row with gaps is completed by conditional sampling given its observed cells; a filled cell
        always gets a value (never the "missing" the model may have learned). With ``draws`` > 1 each
        row is completed that many times and a filled number is their mean, a filled category the most
        frequent. ``df`` must have the model's columns; the result has ``df``'s index and column order
        and :meth:`sample`'s dtypes. Numbers beyond the training range are kept, and the model is
        conditioned on the nearest value it knows.
        """
        self._check_fitted()
        check_columns(df, self.schema_)
        if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
            raise TabgenError(f"draws must be a positive integer, got {draws!r}")
        frame = df.rename(columns=str).reset_index(drop=True)
        holes = frame.isna()
        rows = np.flatnonzero(holes.to_numpy().any(axis=1))
        if len(rows):
            givens = given_from_frame(self.schema_, frame.iloc[np.tile(rows, draws)], fill=True)
            generator = self._generator(seed)
            drawn = pd.concat(list(self._batches(len(givens), givens, generator, self.progress if progress is None else progress)))
            filled = combine_draws(drawn, int(draws), self.schema_)
            frame = frame.astype(object)
            for name in frame.columns:
                hole = holes[name].to_numpy()[rows]
                frame.loc[rows[hole], name] = filled[name].to_numpy(dtype=object)[hole]
        out = pd.DataFrame({name: output_values(frame[name], self.schema_[name]) for name in frame.columns})
        out.index = df.index
        return out

    def _generator(self, seed: int | None) -> torch.Generator:
        """A generator of our own, not the global state: the caller may draw random numbers between batches."""
        if seed is None and self.seed is not None:
            seed = int(np.random.SeedSequence([self.seed, self._sample_calls]).generate_state(1)[0])
        self._sample_calls += 1
        generator = torch.Generator(self.device_)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator

    def _givens(self, n: int, given: Mapping[str, Any] | pd.DataFrame | None,
                rebalance: Mapping[str, Mapping[Any, float]] | None, generator: torch.Generator) -> Givens | None:
        """The cells fixed in each of the ``n`` rows; ``None`` for unconditional sampling."""
        if isinstance(given, pd.DataFrame):
            if rebalance is not None:
                raise TabgenError("rebalance works with sample(n) or sample(n, given={...}), not with given rows")
            return given_from_frame(self.schema_, given)
        givens = given_from_mapping(self.schema_, given, n) if given is not None else None
        if rebalance is None:
            return givens
        plan = resolve_rebalance(self.schema_, rebalance, given)
        categories = self._rebalanced_categories(plan, n, given, generator)
        values = pd.DataFrame({plan.column: categories}) if givens is None else givens.values.assign(**{plan.column: categories})
        return Givens(values, pd.DataFrame(True, index=values.index, columns=values.columns))

    def _rebalanced_categories(self, plan: Rebalance, n: int, given: Mapping[str, Any] | None,
                               generator: torch.Generator) -> pd.Series:
        """The rebalanced column's value in each row: exact counts, in random order."""
        rest = object()  # stands for the categories not named
        counts = allocate(n, {**plan.shares, rest: plan.rest})
        if len(plan.others) == 1:
            counts[plan.others[0]] = counts.pop(rest)
        elif plan.others:
            counts |= allocate(counts.pop(rest), self._model_shares(plan, given, generator))
        else:
            counts.pop(rest)
        categories = np.repeat(np.array(list(counts), dtype=object), list(counts.values()))
        order = torch.randperm(n, generator=generator, device=self.device_).cpu().numpy()
        return pd.Series(categories[order], dtype=object)

    def _model_shares(self, plan: Rebalance, given: Mapping[str, Any] | None, generator: torch.Generator) -> dict[Any, float]:
        """How the model splits rows among the categories the rebalance does not name (given the
        ``given`` cells), from a pilot sample; uniform if the pilot saw none of them."""
        rows = min(REBALANCE_PILOT_ROWS, self.config_.sampler.batch_size)
        givens = given_from_mapping(self.schema_, given, rows) if given is not None else None
        pilot = pd.concat(list(self._batches(rows, givens, generator, show=False)))[plan.column]
        seen = Counter(None if pd.isna(v) else json_scalar(v) for v in pilot)
        shares = {c: float(seen[c]) for c in plan.others}
        return shares if sum(shares.values()) > 0 else dict.fromkeys(plan.others, 1.0)

    def _batches(self, n: int, givens: Givens | None, generator: torch.Generator, show: bool) -> Iterator[pd.DataFrame]:
        s = self.config_.sampler
        steps = s.num_steps if givens is None else s.inpaint_steps
        givens = None if givens is None else parent_givens(givens, self.schema_)
        sigmas = self._sigmas(steps)
        with tqdm(total=n, desc="sampling", unit="row", disable=not show, leave=False, dynamic_ncols=True) as bar:
            for start in range(0, n, s.batch_size):
                rows = min(s.batch_size, n - start)
                noise = torch.randn(rows, self.latent_mean_.shape[0], device=self.device_, generator=generator)
                if givens is None:
                    yield self._decode(self._latents(noise, sigmas), generator, start)
                else:
                    batch = givens.rows(start, start + rows)
                    z = self._inpaint(batch, noise, sigmas, generator)
                    frame = self._decode(z * self.latent_std_ + self.latent_mean_, generator, start, fill=batch.fill,
                                         conditional=True)
                    yield write_derived(batch.apply(frame, self.schema_), self.schema_)
                bar.update(rows)

    def _inpaint(self, givens: Givens, noise: torch.Tensor, sigmas: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Standardised latents of rows whose given cells' tokens are held at their encoding."""
        s = self.config_.sampler
        x_num, x_cat, known_tokens = encoder_inputs(givens, self.transform_, *self._typical_row())
        x_num_t = torch.from_numpy(x_num).to(self.device_, torch.float32)
        x_cat_t = torch.from_numpy(x_cat).to(self.device_)
        known = (_encode_means(self.vae_, x_num_t, x_cat_t) - self.latent_mean_) / self.latent_std_
        mask = torch.from_numpy(known_tokens).to(self.device_).repeat_interleave(self.vae_.d_token, dim=1)
        with mixed_precision(self.device_, self.config_.diffusion.precision):
            return heun_inpaint(self._sampling_denoiser(), noise, sigmas, known, mask, resamples=s.inpaint_resamples,
                                resample_band=(s.inpaint_resample_sigma_min, s.inpaint_resample_sigma_max),
                                generator=generator)

    @torch.inference_mode()
    def _typical_row(self) -> tuple[np.ndarray, np.ndarray]:
        """The decoding of the mean latent, as encoder input: it stands in for the cells not given."""
        x_num, logits = self.vae_.decode(self.latent_mean_.reshape(1, self.vae_.n_tokens, -1))
        return x_num[0].cpu().numpy(), np.array([int(lg[0].argmax()) for lg in logits], dtype=np.int64)

    @torch.inference_mode()
    def _decode(self, latents: torch.Tensor, generator: torch.Generator | None = None, row_offset: int = 0,
                fill: bool = False, conditional: bool = False) -> pd.DataFrame:
        """Rows from latents; with ``fill``, no cell comes out missing (each head's "missing" class,
        which is its last one, is never chosen). Rows ``conditional`` on given cells skip the
        calibration: it moves the model's marginals onto the table's, and a conditional sample should
        not have the table's marginals (on a table where x depends on a group, it pulled the mean of x
        given one group from 2.35 to 2.05, away from the table's 2.95)."""
        calibration = None if conditional else self.calibration_
        x_num, logits = self.vae_.decode(latents.reshape(len(latents), self.vae_.n_tokens, -1), generator, calibration)
        if fill:
            may_be_missing = [c.has_missing for c in self.schema_.categorical] + [True] * len(self.transform_.gappy_numerical)
            logits = [lg[:, :-1] if missing else lg for lg, missing in zip(logits, may_be_missing)]
        x_cat = torch.stack([lg.argmax(-1) for lg in logits], 1) if logits else x_num.new_zeros((len(x_num), 0), dtype=torch.long)
        x_num, x_cat = x_num.cpu().numpy(), x_cat.cpu().numpy()
        if calibration is not None:
            x_num = calibration.scores(x_num, x_cat)
        return self.transform_.inverse_transform(x_num, x_cat, row_offset)

    # ------------------------------------------------------------ save/load
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one file, atomically (safetensors + JSON, no pickle)."""
        self._check_fitted()
        header = {
            "tabgen_version": __version__,
            "schema": self.schema_.to_dict(),
            "config": self.config_.to_dict(),
            "seed": self.seed,
            "exact_pairs": self.exact_pairs,
            "n_rows": self.n_rows_,
            "d_numerical": self.vae_.d_numerical,
            "cardinalities": self.vae_.cardinalities,
            "value_levels": self.vae_.value_levels,
            "latent_dim": int(self.latent_mean_.shape[0]),
        }
        tensors = {f"vae.{k}": v for k, v in self.vae_.state_dict().items()}
        tensors |= {f"denoiser.{k}": v for k, v in self.denoiser_.state_dict().items()}
        tensors |= {f"transform.{k}": torch.from_numpy(v) for k, v in self.transform_.state_arrays().items()}
        tensors |= {"latent.mean": self.latent_mean_, "latent.std": self.latent_std_,
                    "latent.low": self.latent_low_, "latent.high": self.latent_high_}
        if self.calibration_ is not None:
            tensors |= {f"calibration.{k}": v for k, v in self.calibration_.state_tensors().items()}
        save_model(path, header, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", progress: bool = True) -> "Synthesizer":
        """Read a model written by :meth:`save`; it never executes code from the file."""
        header, tensors = load_model(path)
        try:
            return cls._from_state(header, tensors, resolve_device(device), progress)
        except TabgenError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise TabgenError(f"{path} is damaged or incomplete ({type(e).__name__}: {e}); fit the model again") from None

    @classmethod
    def _from_state(cls, header: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, progress: bool) -> "Synthesizer":
        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        self = cls(seed=header["seed"], device=str(device), progress=progress)
        self.config_ = self.config = SynthesizerConfig.from_dict(header["config"])
        self.schema_ = Schema.from_dict(header["schema"])
        self.categorical = [c.name for c in self.schema_.columns if c.kind == "categorical"]
        self.numerical = [c.name for c in self.schema_.columns if c.kind == "numerical"]
        self.identifiers = [c.name for c in self.schema_.identifiers]
        self.exact_pairs = header.get("exact_pairs", True)
        self.transform_ = TableTransform.from_state(
            self.schema_, {k: v.numpy() for k, v in part("transform.").items()}
        )
        # Files written before discrete numerical columns had no value levels: every column regressed.
        self.vae_ = VAE(header["d_numerical"], header["cardinalities"], self.config_.vae, header.get("value_levels"))
        self.vae_.load_state_dict(part("vae."))
        c = self.config_.diffusion
        self.denoiser_ = edm_denoiser(header["latent_dim"], c)
        self.denoiser_.load_state_dict(part("denoiser."))
        self.vae_.to(device).eval()
        self.denoiser_.to(device).eval()
        self.latent_mean_ = tensors["latent.mean"].to(device)
        self.latent_std_ = tensors["latent.std"].to(device)
        bounds = [tensors[k].to(device) if k in tensors else None for k in ("latent.low", "latent.high")]
        self.latent_low_, self.latent_high_ = bounds
        # Files written before calibration, or fitted without it, have none.
        calibration = part("calibration.")
        n_heads = len(self.vae_.cardinalities) + len(self.vae_.reconstructor.discrete)
        self.calibration_ = Calibration.from_state(calibration, n_heads, self.vae_.d_numerical) if calibration else None
        self.device_ = device
        self.n_rows_ = header["n_rows"]
        self._sample_calls = 0
        return self

    def __repr__(self) -> str:
        state = "fitted" if hasattr(self, "denoiser_") else "not fitted"
        return f"Synthesizer(seed={self.seed}, device={self.device!r}, {state})"


@torch.no_grad()
def _encode_means(vae: VAE, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
    """The encoder's mean latents of every row, flattened, in chunks: the transformer's feed-forward
    activations of a whole large table at once would need gigabytes."""
    rows = max(1, ENCODE_TOKENS_PER_CHUNK // vae.n_tokens)
    return torch.cat([vae.encode(x_num[i : i + rows], x_cat[i : i + rows])[0].flatten(1) for i in range(0, len(x_num), rows)])


def _rows_asked(n: Any, given: Any) -> int:
    """The number of rows to generate: ``n``, or one per given row."""
    if isinstance(given, pd.DataFrame) and n is None:
        return len(given)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise TabgenError(f"the number of rows must be a positive integer, got {n!r}")
    if isinstance(given, pd.DataFrame) and n != len(given):
        raise TabgenError(f"n is {n} but the given rows are {len(given)}: leave n out to get one row per given row")
    return int(n)


def _fingerprint(df: pd.DataFrame) -> str:
    """Identifies a table's content, so a checkpoint is never resumed on other data."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    digest.update(",".join(map(str, df.columns)).encode())
    return digest.hexdigest()


def _to_tensors(encoded: EncodedTable, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(encoded.x_num).to(device, torch.float32),
        torch.from_numpy(encoded.num_observed).to(device),
        torch.from_numpy(encoded.x_cat).to(device),
    )

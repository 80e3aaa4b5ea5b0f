"""Sampling: noise → Heun's σ schedule → latents → codec → rows, and the conditional paths (given
cells by inpainting, rebalanced shares) on the same model, without retraining or rejection."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .codec import Codec
from .conditions import Givens, Rebalance, allocate, given_from_frame, given_from_mapping, parent_givens, resolve_rebalance
from .config import SamplerConfig
from .diffusion.edm import Denoiser, EDMPrecond, bounded_denoiser
from .diffusion.inpaint import heun_inpaint
from .diffusion.prior import prior_noise
from .diffusion.solvers import solve
from .errors import TabgenError
from .known_latents import encoder_inputs
from .pairs import write_derived
from .precision import mixed_precision, sampling_precision
from .schema import json_scalar

#: Rows sampled to learn how the model splits rows among the categories a rebalance does not name.
REBALANCE_PILOT_ROWS = 2000

Given = Mapping[str, Any] | pd.DataFrame | None
Shares = Mapping[str, Mapping[Any, float]] | None


class Sampler:
    """Draws rows from a fitted codec and denoiser, ``config.batch_size`` rows at a time."""

    def __init__(self, codec: Codec, denoiser: EDMPrecond, config: SamplerConfig, precision: str, device: torch.device):
        self.codec = codec
        self.denoiser = denoiser
        self.config = config
        self.precision = sampling_precision(precision, device)
        self.device = device

    def times(self, steps: int) -> list[float]:
        """The process's sampler times for ``steps`` steps (EDM's: its noise levels σ), then the data's (σ = 0)."""
        return self.denoiser.process.time_steps(steps, self.config)

    def _bounded(self) -> Denoiser:
        """The denoiser held within the training latents' range (files from before have no range)."""
        scaling = self.codec.scaling
        if scaling.low is None:
            return self.denoiser
        return bounded_denoiser(self.denoiser, scaling.low, scaling.high)

    def latents(self, noise: torch.Tensor, times: list[float], generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents from standard normal ``noise`` by the configured solver, in the VAE's scale."""
        noise = self._shaped(noise, times)
        with mixed_precision(self.device, self.precision):
            z = solve(self._bounded(), noise, times, self.denoiser.process, self.config, generator)
        if not torch.isfinite(z).all():  # rather than NaN calibration biases or rows drawn from NaN
            raise TabgenError(f"the {self.config.solver} sampler of the {self.denoiser.process.name} process gave "
                              "non-finite latents; please report this with the model file")
        return self.codec.scaling.unstandardise(z)

    def _shaped(self, noise: torch.Tensor, times: list[float]) -> torch.Tensor:
        """Standard normal ``noise`` shaped with the latents' widest directions for the process's prior
        (:mod:`tabgen.diffusion.prior`), where the model file has them."""
        scaling, process = self.codec.scaling, self.denoiser.process
        if scaling.axes is None or not process.gaussian_prior:
            return noise
        return prior_noise(noise, process.sigma(times[0]), scaling.axes, scaling.axis_variances, float(scaling.rest_variance))

    def givens(self, n: int, given: Given, rebalance: Shares, generator: torch.Generator) -> Givens | None:
        """The cells fixed in each of the ``n`` rows; ``None`` for unconditional sampling."""
        schema = self.codec.schema
        if isinstance(given, pd.DataFrame):
            if rebalance is not None:
                raise TabgenError("rebalance works with sample(n) or sample(n, given={...}), not with given rows")
            return given_from_frame(schema, given)
        givens = given_from_mapping(schema, given, n) if given is not None else None
        if rebalance is None:
            return givens
        plan = resolve_rebalance(schema, rebalance, given)
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
        order = torch.randperm(n, generator=generator, device=self.device).cpu().numpy()
        return pd.Series(categories[order], dtype=object)

    def _model_shares(self, plan: Rebalance, given: Mapping[str, Any] | None, generator: torch.Generator) -> dict[Any, float]:
        """How the model splits rows among the categories the rebalance does not name (given the
        ``given`` cells), from a pilot sample; uniform if the pilot saw none of them."""
        rows = min(REBALANCE_PILOT_ROWS, self.config.batch_size)
        givens = given_from_mapping(self.codec.schema, given, rows) if given is not None else None
        pilot = pd.concat(list(self.rows(rows, givens, generator, show=False)))[plan.column]
        seen = Counter(None if pd.isna(v) else json_scalar(v) for v in pilot)
        shares = {c: float(seen[c]) for c in plan.others}
        return shares if sum(shares.values()) > 0 else dict.fromkeys(plan.others, 1.0)

    def rows(self, n: int, givens: Givens | None, generator: torch.Generator, show: bool,
             steps: int | None = None, *, first_row: int = 0) -> Iterator[pd.DataFrame]:
        """``n`` rows as frames of at most ``config.batch_size`` rows; ``steps`` Heun steps (default: the
        config's, ``num_steps`` or, with given cells, ``inpaint_steps``). ``first_row`` is the position
        of the first row in a sample split between processes: identifiers are numbered from it."""
        s, codec = self.config, self.codec
        if steps is None:
            steps = s.num_steps if givens is None else s.inpaint_steps
        givens = None if givens is None else parent_givens(givens, codec.schema)
        times = self.times(steps)
        with tqdm(total=n, desc="sampling", unit="row", disable=not show, leave=False, dynamic_ncols=True) as bar:
            for start in range(0, n, s.batch_size):
                count = min(s.batch_size, n - start)
                noise = torch.randn(count, codec.latent_dim, device=self.device, generator=generator)
                if givens is None:
                    yield codec.decode(self.latents(noise, times, generator), generator, first_row + start)
                else:
                    batch = givens.rows(start, start + count)
                    z = codec.scaling.unstandardise(self._inpaint(batch, noise, times, generator))
                    frame = codec.decode(z, generator, first_row + start, fill=batch.fill, calibrated=False)
                    yield write_derived(batch.apply(frame, codec.schema), codec.schema)
                bar.update(count)

    def _inpaint(self, givens: Givens, noise: torch.Tensor, times: list[float], generator: torch.Generator) -> torch.Tensor:
        """Standardised latents of rows whose given cells' tokens are held at their encoding."""
        s, codec = self.config, self.codec
        x_num, x_cat, known_tokens = encoder_inputs(givens, codec.transform, *codec.typical_row())
        x_num_t = torch.from_numpy(x_num).to(self.device, torch.float32)
        x_cat_t = torch.from_numpy(x_cat).to(self.device)
        known = codec.scaling.standardise(codec.encode_means(x_num_t, x_cat_t))
        mask = torch.from_numpy(known_tokens).to(self.device).repeat_interleave(codec.vae.d_token, dim=1)
        noise = self._shaped(noise, times)
        with mixed_precision(self.device, self.precision):
            return heun_inpaint(self._bounded(), noise, times, known, mask, self.denoiser.process, resamples=s.inpaint_resamples,
                                resample_band=(s.inpaint_resample_sigma_min, s.inpaint_resample_sigma_max),
                                generator=generator, unmix=codec.scaling.unmix)

"""The facade: ``Synthesizer(...).fit(df)``, ``.sample(n)``, ``.impute(df)``, ``.save(path)``, ``Synthesizer.load(path)``.

Data flows one way: table → schema → protection → rules → transform → VAE latents → diffusion → Heun sampler →
decoder → inverse transform → table. Each stage lives in a module of its own (:mod:`tabgen.fitting` runs them in
order, :mod:`tabgen.sampling` draws rows, :mod:`tabgen.saved_model` writes and reads them); this class holds the
user's parameters, validates them once and delegates.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch

from . import distributed as dist
from .config import SynthesizerConfig
from .device import resolve_device
from .errors import TabgenError
from .fit_plan import FitPlan
from .fitting import FittedModel, fit_input, fit_model, seeded
from .generation import imputed, positive_count, rows_asked, sample_parts, sample_rows
from .imputation import check_columns
from .io import write_batches
from .io.parts import is_parts_path
from .pairs import find_pairs
from .protection import protected
from .rules.kinds import Rule
from .rules.selection import rules_for_table
from .saved_model import read_model, write_model
from .schema import Schema, infer_schema, infer_with_kinds


class FitInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :meth:`Synthesizer.fit_and_save`: ``saved`` says whether the best model so far was
    written, ``kept`` whether a file already at the path was left as it was."""

    def __init__(self, saved: bool, kept: bool):
        super().__init__()
        self.saved, self.kept = saved, kept


class Synthesizer:
    """Learns a table and generates synthetic rows (TabSyn: VAE + EDM latent diffusion).

    Parameters
    ----------
    schema:
        A :class:`Schema` (from :func:`infer_schema` or a fitted ``schema_``, edited) whose column kinds
        the fit uses; what each column holds is measured again on the table. Excludes the three below.
    categorical, numerical, identifiers:
        Column names whose kind overrides the inferred one. Identifiers are not modelled; the output
        gets fresh unique values in their format.
    exact_pairs:
        Columns that determine each other one-to-one in the table (a code and its label, a value in
        two units) are learned once: one of them is modelled and the others are written from it, so
        every generated row keeps them consistent. ``False`` models each column on its own.
    rules, find_rules, drop_rules:
        Rules every generated row keeps (docs/rules.md): ``rules`` declares some, as text (``"total = fare + tip"``,
        ``"end >= start"``, ``"zone -> borough"``, a formula; one ending in ``(with exceptions)`` may be broken in
        up to 5 % of rows) or rule objects, each checked against the table; ``find_rules`` adds those found in
        the table; ``drop_rules`` leaves out rules by name. The kept ones are in ``rules_``.
    config:
        Every method setting; by default :meth:`SynthesizerConfig.for_device` of the chosen device.
    time_budget:
        Seconds of training at most (VAE and diffusion together); ``None`` trains until early stopping
        or the configured step limits. With a budget the denoiser trains until the budget ends or its
        validation loss stops improving, so a budget longer than a default fit buys more training. A
        budget ties the amount of training to the machine's speed: only fits without one repeat.
    device:
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    seed:
        Makes fitting and sampling reproducible; ``None`` for fresh randomness. On a GPU a fit repeats
        only up to rounding, as some CUDA kernels add in a varying order.
    progress: Show progress bars with the current losses.
    checkpoint, checkpoint_every:
        Where to save the training state, and how often (seconds), so that an interrupted fit can
        continue with ``fit(df, resume=True)``. The file is removed when the fit completes.
    distributed:
        Train on every process torchrun started, each on its share of the rows and of each batch (the
        batch sizes are the total over them); every rank ends with the same model (docs/scale.md).
    dp_epsilon:
        Train both networks with (ε, δ)-differential privacy at this ε (DP-SGD; ``config.privacy`` holds
        δ and the rest); exact pairs and rules found in the table are left out. ``privacy_`` reports ε.
    """

    def __init__(self, *, schema: Schema | None = None, categorical: Iterable[str] = (), numerical: Iterable[str] = (),
                 identifiers: Iterable[str] = (), exact_pairs: bool = True, rules: Iterable[str | Rule] = (),
                 find_rules: bool = True, drop_rules: Iterable[str] = (), config: SynthesizerConfig | None = None,
                 time_budget: float | None = None, device: str = "auto", seed: int | None = 0, progress: bool = True,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: float = 60.0, distributed: bool = False,
                 dp_epsilon: float | None = None):
        self.schema, self.categorical, self.numerical, self.identifiers = schema, categorical, numerical, identifiers
        self.exact_pairs, self.rules, self.find_rules, self.drop_rules = exact_pairs, rules, find_rules, drop_rules
        self.config, self.time_budget, self.device, self.seed, self.progress = config, time_budget, device, seed, progress
        self.checkpoint, self.checkpoint_every, self.distributed = checkpoint, checkpoint_every, distributed
        self.dp_epsilon = dp_epsilon

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's estimator protocol, so ``sklearn.base.clone`` works)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"}

    def set_params(self, **params: Any) -> "Synthesizer":
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise TabgenError(f"Synthesizer has no parameter {name!r}; its parameters are {sorted(valid)}")
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame | str | os.PathLike, *, resume: bool = False, sep: str | None = None,
            encoding: str | None = None) -> "Synthesizer":
        """Learn a table's schema, its VAE and the diffusion model of the VAE's latents. ``data`` is a
        DataFrame or a path (``sep``, ``encoding``: :func:`tabgen.io.read_table`'s); a table of more rows
        than ``config.stream_sample_rows``, or a folder of Parquet files, is streamed (docs/scale.md).
        With ``checkpoint`` set, the training state is written there every ``checkpoint_every`` seconds
        and on Ctrl-C, and ``resume=True`` continues from it (on the same table). Ctrl-C raises
        ``KeyboardInterrupt``; during the diffusion phase, it leaves the best weights so far usable."""
        started = time.monotonic()
        for learned in [name for name in vars(self) if name.endswith("_")]:
            delattr(self, learned)  # a fit starts afresh: Ctrl-C must not leave the previous fit's model in place
        device = resolve_device(self.device)
        if self.distributed:
            device = dist.device_for(device, dist.join(device))
        with dist.engaged(self.distributed):
            seed = dist.agreed_seed(self.seed)
            df, streamed = fit_input(data, (self.config or SynthesizerConfig()).stream_sample_rows, seed, sep, encoding)
            plan = FitPlan(df if streamed is None else streamed.stream.fingerprint(), self.time_budget, self.checkpoint,
                           self.checkpoint_every, resume, started)
            config = plan.config(self.config or SynthesizerConfig.for_device(device.type))
            if self.dp_epsilon is not None:
                config = replace(config, privacy=replace(config.privacy, epsilon=self.dp_epsilon))
            config.validate()
            # A private fit's networks alone are private: it finds no pairs nor rules in the rows.
            private, rare = config.privacy.epsilon is not None, config.rare_value_rows
            df, schema = self._schema_of(df, rare, self.exact_pairs and not private)
            rules = rules_for_table(df, schema, self.rules, self.find_rules and not private, self.drop_rules, rare)
            with seeded(seed, device):
                model = fit_model(df, schema, rules, config, device, plan, self.progress, self._adopt,
                                  streamed and replace(streamed, protection=self.protection_))
        self._adopt(model)
        self.vae_result_, self.diffusion_result_ = model.vae_result, model.diffusion_result
        return self

    def fit_and_save(self, data: pd.DataFrame | str | os.PathLike, path: str | os.PathLike, *, resume: bool = False,
                     **read: Any) -> "Synthesizer":
        """:meth:`fit`, then :meth:`save` to ``path`` (by rank 0 alone in a distributed fit). Ctrl-C never
        replaces a file at ``path``; where there is none, the best model so far (of the diffusion phase)
        is saved there. :class:`FitInterrupted` says which; a checkpoint is kept for ``resume=True``."""
        existed, main = Path(path).exists(), not self.distributed or dist.join(resolve_device(self.device)).main
        try:
            self.fit(data, resume=resume, **read)
        except KeyboardInterrupt:
            saved = hasattr(self, "model_") and not existed and main
            if saved:
                self.save(path)
            raise FitInterrupted(saved=saved, kept=existed) from None
        if main:
            self.save(path)
        with dist.engaged(self.distributed):
            dist.barrier()  # no rank returns before the file is there
        return self

    def _schema_of(self, df: pd.DataFrame, rare_rows: int, pairs: bool) -> tuple[pd.DataFrame, Schema]:
        """The table with its rare values protected (``protection_``, as every streamed chunk), and its schema."""
        if self.schema is None:
            schema = infer_schema(df, self.categorical, self.numerical, self.identifiers)
        else:
            if not isinstance(self.schema, Schema):
                raise TabgenError(f"schema must be a tabgen Schema, got {type(self.schema).__name__}")
            if any(map(list, (self.categorical, self.numerical, self.identifiers))):
                raise TabgenError("give either schema or categorical/numerical/identifiers, not both")
            if sorted(self.schema.names) != sorted(map(str, df.columns)):
                raise TabgenError(f"the schema's columns {self.schema.names} are not the table's {list(map(str, df.columns))}")
            schema = infer_with_kinds(df, self.schema)
        df, schema, self.protection_ = protected(df, schema, rare_rows)
        return df, find_pairs(df, schema) if pairs else schema

    def _adopt(self, model: FittedModel) -> None:
        self.model_ = model
        self.codec_, self.denoiser_, self.sampler_ = model.codec, model.denoiser, model.sampler
        self.schema_, self.rules_, self.config_, self.device_ = model.schema, model.rules, model.config, model.device
        self.n_rows_, self.fit_seconds_, self.skipped_share_ = model.n_rows, model.seconds, model.skipped_share
        self.privacy_ = model.privacy
        self._sample_calls = 0

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TabgenError("this Synthesizer is not fitted yet: call fit(df) first, or Synthesizer.load(path)")

    # --------------------------------------------------------------- sample
    def sample(self, n: int | None = None, *, given: Mapping[str, Any] | pd.DataFrame | None = None,
               rebalance: Mapping[str, Mapping[Any, float]] | None = None, steps: int | None = None,
               seed: int | None = None, progress: bool | None = None) -> pd.DataFrame:
        """``n`` synthetic rows (default: as many as the training table had) with the fitted columns,
        order and dtypes.

        ``given`` fixes cells: a dict ``{column: value}`` fixes them in every row; a DataFrame asks for
        one row per row of it (``n`` may be left out), each keeping the frame's non-missing cells.
        ``rebalance={column: {category: share}}`` sets the shares of some categories of one categorical
        column; the other categories share the rest in proportion to the model's own shares. The cells
        not fixed follow the model's distribution given the fixed ones (inpainting in the latent
        space, no rejection: a rare segment costs no more than a common one). ``steps`` sets the Heun
        steps (default: ``config_.sampler.num_steps``, or ``inpaint_steps`` with given cells).

        Without ``seed``, successive calls continue one reproducible stream derived from the
        Synthesizer's own seed; with it, the call is reproducible on its own.
        """
        batches = self.sample_batches(n, given=given, rebalance=rebalance, steps=steps, seed=seed, progress=progress)
        return pd.concat(list(batches), ignore_index=True)

    def sample_batches(self, n: int | None = None, *, given: Mapping[str, Any] | pd.DataFrame | None = None,
                       rebalance: Mapping[str, Mapping[Any, float]] | None = None, steps: int | None = None,
                       seed: int | None = None, progress: bool | None = None, first_row: int = 0) -> Iterator[pd.DataFrame]:
        """:meth:`sample`'s rows as frames of at most ``config_.sampler.batch_size`` rows each, so that
        memory stays bounded however many rows are asked for; identifiers are numbered from ``first_row``."""
        self._check_fitted()
        n, steps = rows_asked(n, given, self.n_rows_), positive_count(steps, "steps")
        generator = self._generator(seed)
        show = self.progress if progress is None else progress
        return sample_rows(self.model_, n, given, rebalance, generator, show, steps, first_row=int(first_row))

    def sample_to(self, path: str | os.PathLike, n: int | None = None, *, ranks: dist.Ranks | None = None,
                  **options: Any) -> int:
        """Write :meth:`sample`'s rows (same options) to ``path``; returns the rows this process wrote.
        A file is CSV or Parquet by its suffix, written atomically; a folder (existing, or a path ending
        in ``/``) must be new or empty and gets Parquet parts, with flat memory. Under torchrun (or given
        ``ranks``) each rank writes its own share of the rows with its own seed (docs/scale.md)."""
        if not is_parts_path(path):
            if (ranks or dist.ranks_from_env()).size > 1:
                raise TabgenError(f"{path} is a file, but under torchrun each process writes its own part files: "
                                  "give a folder, such as out/")
            return write_batches(self.sample_batches(n, **options), path)
        self._check_fitted()
        stream = None if self.seed is None else [self.seed, self._sample_calls]
        return sample_parts(self.sample_batches, Path(path), rows_asked(n, options.get("given"), self.n_rows_),
                            dist.join(self.device_) if ranks is None else ranks, options, stream, self.schema_)

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
        positive_count(draws, "draws")
        show = self.progress if progress is None else progress
        out = imputed(self.model_, df.rename(columns=str).reset_index(drop=True), int(draws), lambda: self._generator(seed), show)
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

    # ------------------------------------------------------------ save/load
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one file, atomically (safetensors + JSON, no pickle)."""
        self._check_fitted()
        write_model(path, self.model_, {"seed": self.seed, "exact_pairs": self.exact_pairs, "find_rules": self.find_rules})

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", progress: bool = True) -> "Synthesizer":
        """Read a model written by :meth:`save`; it never executes code from the file."""
        model, header = read_model(path, resolve_device(device))
        return cls.from_model(model, seed=header["seed"], exact_pairs=header.get("exact_pairs", True), progress=progress)

    @classmethod
    def from_model(cls, model: FittedModel, *, seed: int | None = 0, exact_pairs: bool = True,
                   progress: bool = True) -> "Synthesizer":
        """A fitted Synthesizer around ``model`` (as :func:`tabgen.fitting.fit_model` or a file gives it)."""
        self = cls(schema=model.schema, exact_pairs=exact_pairs, config=model.config, device=str(model.device),
                   seed=seed, progress=progress)
        self._adopt(model)
        if model.diffusion_result is not None:
            self.vae_result_, self.diffusion_result_ = model.vae_result, model.diffusion_result
        return self

    def __repr__(self) -> str:
        return f"Synthesizer(seed={self.seed}, device={self.device!r}, {'fitted' if hasattr(self, 'model_') else 'not fitted'})"

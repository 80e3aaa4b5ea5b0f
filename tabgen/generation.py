"""Rows of the user's table from a fitted model: the conditions put in the model table's terms, the
sampler's rows turned back into the user's columns with every rule written (:mod:`tabgen.rules`)."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch

from .conditions import Givens, given_from_frame, given_from_mapping, output_values
from .fitting import FittedModel
from .imputation import combine_draws

Given = Mapping[str, Any] | pd.DataFrame | None


def sample_rows(model: FittedModel, n: int, given: Given, rebalance: Mapping[str, Mapping[Any, float]] | None,
                generator: torch.Generator, show: bool, steps: int | None = None) -> Iterator[pd.DataFrame]:
    """``n`` rows of the user's table, with the ``given`` cells and the ``rebalance`` shares."""
    sampler, rules, schema = model.sampler, model.rules, model.schema
    if not rules:
        yield from sampler.rows(n, sampler.givens(n, given, rebalance, generator), generator, show, steps)
        return
    givens = sampler.givens(n, None, rebalance, generator) if given is None else None
    if isinstance(given, pd.DataFrame):
        if rebalance is not None:
            sampler.givens(n, given, rebalance, generator)  # refuses it, as without rules
        values, fixed = _model_given(model, given_from_frame(schema, given))
        givens = Givens(values, fixed) if len(values.columns) else None
    elif given is not None:
        values, _ = _model_given(model, given_from_mapping(schema, given, 1))
        givens = sampler.givens(n, {name: values[name].iloc[0] for name in values.columns}, rebalance, generator)
    yield from _restored(model, sampler.rows(n, givens, generator, show, steps), givens, generator)


def _model_given(model: FittedModel, user: Givens) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The user's given cells, refused if they break a rule, with the model table's cells they fix."""
    model.rules.check_given(user.values.where(user.given), model.schema)
    return model.rules.model_given(user.values, user.given, model.schema)


def imputed(model: FittedModel, frame: pd.DataFrame, draws: int, generator: Callable[[], torch.Generator],
            show: bool) -> pd.DataFrame:
    """``frame`` (the user's columns) with its missing cells filled, each from ``draws`` completions of
    its row (a number their mean, a category the most frequent); ``generator`` is called only if a
    row has a gap."""
    holes = frame.isna()
    rows = np.flatnonzero(holes.to_numpy().any(axis=1))
    if len(rows):
        drawn = fill_rows(model, frame.iloc[np.tile(rows, draws)], generator(), show)
        filled = combine_draws(drawn, draws, model.schema)
        frame = frame.astype(object)
        for name in frame.columns:
            hole = holes[name].to_numpy()[rows]
            frame.loc[rows[hole], name] = filled[name].to_numpy(dtype=object)[hole]
    return pd.DataFrame({name: output_values(frame[name], model.schema[name]) for name in frame.columns})


def fill_rows(model: FittedModel, frame: pd.DataFrame, generator: torch.Generator, show: bool) -> pd.DataFrame:
    """A completion of each row of ``frame`` (the user's columns), keeping its observed cells."""
    sampler, rules, schema = model.sampler, model.rules, model.schema
    user = given_from_frame(schema, frame, fill=True)
    if not rules:
        return pd.concat(list(sampler.rows(len(user), user, generator, show)))
    values, fixed = rules.model_given(user.values, user.given, schema)
    givens = Givens(values, fixed, fill=True)
    return pd.concat(list(_restored(model, sampler.rows(len(user), givens, generator, show), givens, generator)))


def _restored(model: FittedModel, frames: Iterator[pd.DataFrame], givens: Givens | None,
              generator: torch.Generator) -> Iterator[pd.DataFrame]:
    """The sampler's frames with every rule written; a cell that ``givens`` fixes (given, or
    rebalanced) is kept, the rule solved for an input instead."""
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    rng, start = np.random.default_rng(seed), 0
    for frame in frames:
        fixed = None if givens is None else givens.given.iloc[start:start + len(frame)]
        yield model.rules.restore(frame.reset_index(drop=True), model.schema, fixed, rng)
        start += len(frame)

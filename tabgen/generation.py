"""Rows of the user's table from a fitted model: the conditions put in the model table's terms, the
sampler's rows turned back into the user's columns with every rule written (:mod:`tabgen.rules`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch

from . import distributed
from .conditions import Givens, given_from_frame, given_from_mapping, output_values
from .errors import TabgenError
from .fitting import FittedModel
from .imputation import combine_draws
from .io.parts import prepare_folder, write_parts
from .schema import Schema

Given = Mapping[str, Any] | pd.DataFrame | None


def positive_count(value: Any, what: str) -> Any:
    """``value``, refused unless a positive integer (or ``None``)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise TabgenError(f"{what} must be a positive integer, got {value!r}")
    return value


def rows_asked(n: Any, given: Given, table_rows: int) -> int:
    """The number of rows to generate: ``n``, one per given row, or as many as the training table's."""
    if n is None:
        return len(given) if isinstance(given, pd.DataFrame) else table_rows
    positive_count(n, "the number of rows")
    if isinstance(given, pd.DataFrame) and n != len(given):
        raise TabgenError(f"n is {n} but the given rows are {len(given)}: leave n out to get one row per given row")
    return int(n)


def sample_rows(model: FittedModel, n: int, given: Given, rebalance: Mapping[str, Mapping[Any, float]] | None,
                generator: torch.Generator, show: bool, steps: int | None = None, *,
                first_row: int = 0) -> Iterator[pd.DataFrame]:
    """``n`` rows of the user's table, with the ``given`` cells and the ``rebalance`` shares; identifiers
    are numbered from ``first_row`` (the rows of the processes before this one)."""
    sampler, rules, schema = model.sampler, model.rules, model.schema
    if not rules:
        givens = sampler.givens(n, given, rebalance, generator)
        yield from sampler.rows(n, givens, generator, show, steps, first_row=first_row)
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
    yield from _restored(model, sampler.rows(n, givens, generator, show, steps, first_row=first_row), givens, generator)


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


def sample_parts(batches: Callable[..., Iterator[pd.DataFrame]], folder: Path, n: int, ranks: distributed.Ranks,
                 options: dict[str, Any], stream: Any, schema: Schema) -> int:
    """This rank's share of ``n`` rows (``batches(count, first_row=..., **options)`` draws them) written
    to ``folder`` as Parquet parts; the rows it wrote. Returns when every rank's parts are complete.

    The shares add up to ``n`` exactly (with given rows, each rank takes its slice of them); rank r's
    seed is child r of the call's seed, or of the ``stream`` a Synthesizer's seed continues; identifiers
    are numbered after the earlier ranks' rows."""
    given = options.get("given")
    if ranks.size > 1:
        options["seed"] = rank_seed(options.get("seed"), stream, ranks)
    created = not folder.exists()
    # Every rank checks the folder before any writes, so that none takes another's parts for a user's files.
    failed = None
    try:
        prepare_folder(folder)
    except TabgenError as e:
        failed = e
    with distributed.engaged(ranks.size > 1):
        refused = distributed.any_rank(failed is not None)
    if refused:
        raise failed or TabgenError(f"another process could not write parts in {folder}: see its message")
    first, count = ranks.share(n)
    if isinstance(given, pd.DataFrame):
        options["given"] = given.iloc[first:first + count]
    if not ranks.main and options.get("progress") is None:
        options["progress"] = False  # one bar, rank 0's, rather than one per process over each other
    # A part file types a column from its categories when its first rows have none of its values.
    values = {spec.name: list(spec.categories) for spec in schema.columns if spec.categories}
    rows = 0
    try:
        if count:
            rows, _ = write_parts(batches(count, first_row=first, **options), folder, rank=ranks.rank, values=values)
    except BaseException:
        if created and ranks.size == 1:
            with contextlib.suppress(OSError):
                folder.rmdir()  # the folder this call made, if no part was completed in it
        raise
    with distributed.engaged(ranks.size > 1):
        distributed.barrier()
    return rows


def rank_seed(seed: int | None, stream: Any, ranks: distributed.Ranks) -> int | None:
    """The seed of this rank's rows: child ``rank`` of the call's ``seed``, or of the ``stream`` a
    Synthesizer's seed continues; ``None`` (fresh entropy on each rank) if there is neither."""
    if seed is None and stream is None:
        return None
    child = np.random.SeedSequence(seed if seed is not None else stream, spawn_key=(ranks.rank,))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))

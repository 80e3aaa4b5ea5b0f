"""Imputation's two table chores: checking the table's columns, and combining several draws into one.

The filling itself is conditional sampling (the observed cells are given); see ``Synthesizer.impute``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import TabgenError
from .pairs import snap_parents, write_derived
from .schema import Schema, as_numbers, from_numbers, refuse_duplicate_columns


def check_columns(df: pd.DataFrame, schema: Schema) -> None:
    """The table must have exactly the model's columns (in any order)."""
    if not isinstance(df, pd.DataFrame):
        raise TabgenError(f"impute expects a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise TabgenError("the table to impute has no rows")
    refuse_duplicate_columns(df, " in the table to impute")
    names = [str(c) for c in df.columns]
    missing = [c for c in schema.names if c not in names]
    if missing:
        raise TabgenError(f"the table to impute lacks the model's column(s) {missing}; add them (empty cells are filled)")
    extra = [c for c in names if c not in schema.names]
    if extra:
        raise TabgenError(f"the table to impute has column(s) {extra} the model does not know; drop them")


def combine_draws(drawn: pd.DataFrame, draws: int, schema: Schema) -> pd.DataFrame:
    """One row per imputed row from ``draws`` blocks of rows (draw after draw, same row order).

    Numbers are averaged over the draws (rounded to the column's decimals, so whole numbers stay
    whole); categories (and identifiers) take the most frequent value, the earliest drawn on a tie.
    Columns written from a paired one follow its combined value.
    """
    m = len(drawn) // draws
    if draws == 1:
        return drawn.reset_index(drop=True)
    out = {}
    for spec in schema.numerical + schema.categorical + schema.identifiers:
        column = drawn[spec.name].reset_index(drop=True)
        if spec.kind == "numerical":
            mean = as_numbers(column, spec).reshape(draws, m).mean(0)
            out[spec.name] = from_numbers(mean if spec.decimals is None else np.round(mean, spec.decimals), spec)
        else:
            out[spec.name] = _most_frequent(column, draws, m)
    # A paired number's mean may fall between the values it pairs with: snap it, then write its partners.
    return write_derived(snap_parents(pd.DataFrame(out), schema), schema)[schema.names]


def _most_frequent(column: pd.Series, draws: int, m: int) -> pd.Series:
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    row = np.tile(np.arange(m), draws)
    draw = np.repeat(np.arange(draws), m)
    counts = np.zeros((m, len(uniques)), dtype=np.int64)
    np.add.at(counts, (row, codes), 1)
    first = np.full((m, len(uniques)), draws, dtype=np.int64)
    np.minimum.at(first, (row, codes), draw)
    # More draws win; among as many, the one drawn first (a smaller ``first`` scores higher).
    best = (counts * (draws + 1) + (draws - first)).argmax(1)
    return pd.Series(np.asarray(uniques, dtype=object)[best]).astype(column.dtype)

"""Rare values kept out of the model (docs/privacy.md, "Rare values").

A value held by few rows points at those rows: a category of one customer, the one house of 40
rooms, the latest admission date. :class:`ValueProtection` is learned on the table once its kinds
are known, before the rules and the transform, so that neither the model file nor the rows it
generates hold a value of fewer than ``rows`` rows:

- a categorical value of fewer rows becomes :data:`RARE` (text) or the nearest kept value (numbers),
  in the table, before the rules are found (a rare parent then says nothing of its children);
- a numerical column, dates included, keeps its values for the rules (an identity holds in every
  row), and its transform learns them protected (:func:`protected_numbers`): on a grid of values, a
  value of fewer rows is learned as the nearest kept one, and the ``rows`` smallest and largest values
  as their means, so that the extremes generated are aggregates of ``rows`` rows.

Missing cells and identifier columns are left as they are.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .errors import TabgenWarning
from .schema import ColumnSpec, Schema, as_numbers, infer_with_kinds, json_scalar, on_grid

#: What a rare category of a text column becomes (the name MOSTLY AI's engine gives it).
RARE = "_RARE_"
#: A column on a grid whose rare values hold more rows than this share is learned as a continuous one
#: rather than with them moved: adult's capital.gain in 1,000 rows has 35 values of under 5 rows (51
#: rows), which all went to its 6 kept values, and the Trend error of one fit went from 5.0 % to 17.4 %.
GRID_RARE_SHARE = 0.01


@dataclass
class ColumnProtection:
    """How one column is protected: ``kept`` categories (the others become :data:`RARE`) or sorted
    numbers (the others become the nearest of them), ``low`` and ``high`` bounds of a numerical column;
    ``values`` distinct values grouped and ``rows`` the rows of the table this changes."""

    spec: ColumnSpec
    kept: np.ndarray | set | None = None
    low: float | None = None
    high: float | None = None
    values: int = 0
    rows: int = 0

    def apply(self, series: pd.Series) -> pd.Series:
        """A categorical ``series`` with its rare values grouped (numbers are protected by the transform)."""
        if isinstance(self.kept, set):
            keys = series.map(lambda v: None if pd.isna(v) else json_scalar(v))
            rare = (series.notna() & ~keys.isin(self.kept)).to_numpy()
            if not rare.any():
                return series
            if series.dtype.name == "category":
                out = series.copy() if RARE in series.cat.categories else series.cat.add_categories([RARE])
            else:
                out = series.astype(object)
            out[rare] = RARE
            return out
        values = pd.to_numeric(series).to_numpy(dtype=float)
        new = nearest(values, self.kept)
        rare = ~np.isnan(values) & (new != values)
        out = series.copy()
        out[rare] = pd.Series(new[rare]).astype(series.dtype).to_numpy()  # a nullable Int64 column too
        return out


@dataclass
class ValueProtection:
    """What :meth:`fit` found to protect in a table (``columns``), for the table or chunks of it (:meth:`apply`):
    the values of fewer than ``min_rows`` rows."""

    min_rows: int
    columns: list[ColumnProtection] = field(default_factory=list)

    @classmethod
    def fit(cls, df: pd.DataFrame, schema: Schema, rows: int) -> "ValueProtection":
        """The protection of values held by fewer than ``rows`` rows of ``df`` (``rows`` ≤ 1: none)."""
        protection = cls(rows)
        if rows <= 1:
            return protection
        for spec in schema.columns:
            if spec.kind == "categorical":
                column = _fit_categorical(df[spec.name], spec, rows)
            elif spec.kind == "numerical":
                column = _fit_numerical(df[spec.name], spec, rows)
            else:
                continue
            if column is not None:
                protection.columns.append(column)
        return protection

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with its categorical columns' rare values grouped."""
        grouped = [c for c in self.columns if c.spec.kind == "categorical"]
        if not grouped:
            return df
        df = df.copy()
        for column in grouped:
            df[column.spec.name] = column.apply(df[column.spec.name])
        return df

    def __str__(self) -> str:
        lines = []
        for c in [c for c in self.columns if c.values]:
            into = f"as {RARE}" if isinstance(c.kept, set) else "with the nearest kept value"
            lines.append(f"  {c.spec.name}: {_count(c.values, 'rare value')} grouped {into} ({_count(c.rows, 'row')})")
        clipped = [c for c in self.columns if not c.values]
        if clipped:
            names = ", ".join(c.spec.name for c in clipped)
            lines.append(f"  {names}: the {self.min_rows} smallest and the {self.min_rows} largest values each learned "
                         f"as their mean ({_count(sum(c.rows for c in clipped), 'row')} changed)")
        return "\n".join(lines)


def protected(df: pd.DataFrame, schema: Schema, rows: int) -> tuple[pd.DataFrame, Schema, ValueProtection]:
    """``df`` with the rare categories grouped, the schema of the columns as they are now (each keeps
    its kind; a numerical one has its protected bounds), and what is protected."""
    protection = ValueProtection.fit(df, schema, rows)
    if not protection.columns:
        return df, schema, protection
    df = protection.apply(df)
    grouped, redone = Schema([c.spec for c in protection.columns if c.spec.kind == "categorical"]), Schema()
    if grouped.columns:
        with warnings.catch_warnings():  # said once, on the table as given
            warnings.simplefilter("ignore", TabgenWarning)
            redone = infer_with_kinds(df[grouped.names], grouped)
    bounds = {c.spec.name: (c.low, c.high) for c in protection.columns if c.spec.kind == "numerical"}
    specs = [redone[s.name] if s.name in redone.names else
             replace(s, min=bounds[s.name][0], max=bounds[s.name][1]) if s.name in bounds else s for s in schema.columns]
    return df, Schema(specs), protection


def protected_numbers(values: np.ndarray, rows: int) -> tuple[np.ndarray, bool]:
    """A numerical column's present ``values`` as the model learns them, and whether it may learn them
    on their grid of values (:func:`tabgen.schema.on_grid`). On a grid, a value of fewer than ``rows``
    rows is moved to the nearest kept one, unless such values hold more than :data:`GRID_RARE_SHARE` of
    the rows: the column is then learned between its quantiles, as a continuous one. Then the ``rows``
    smallest values become their mean, and so do the ``rows`` largest: the extremes are aggregates of
    ``rows`` rows, not the values of any one (clipping them at the ``rows``-th value instead took
    adult's capital.gain = 99,999, held by 4 of 1,000 rows, down to 15,024, and the Trend error of one
    fit from 5.0 % to 15.4 %: a correlation weighs its outliers)."""
    if rows <= 1 or not len(values):
        return values, True
    distinct, counts = np.unique(values, return_counts=True)
    rare = counts < rows
    grid = on_grid(len(distinct), len(values)) and counts[rare].sum() <= GRID_RARE_SHARE * len(values)
    if grid and rare.any() and not rare.all():
        values = nearest(values, distinct[~rare])
    order = np.argsort(values, kind="stable")
    k = min(rows, len(values) // 2)  # fewer than 2·rows values: as many each side as half of them
    values = values.copy()
    if k:
        values[order[:k]], values[order[-k:]] = values[order[:k]].mean(), values[order[-k:]].mean()
    return values, grid


def nearest(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Each value as the nearest of ``kept`` (sorted, not empty; the lower one on a tie), NaN as it is."""
    upper = np.minimum(np.searchsorted(kept, values), len(kept) - 1)
    lower = np.maximum(upper - 1, 0)
    out = np.where(np.abs(values - kept[lower]) <= np.abs(kept[upper] - values), kept[lower], kept[upper])
    return np.where(np.isnan(values), values, out)


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'s' * (n != 1)}"


def _fit_categorical(series: pd.Series, spec: ColumnSpec, rows: int) -> ColumnProtection | None:
    observed = series.dropna()
    counts = observed.map(json_scalar).value_counts()
    rare = counts < rows
    if not rare.any():
        return None
    kept, grouped = counts.index[~rare], {"values": int(rare.sum()), "rows": int(counts[rare].sum())}
    numbers = pd.api.types.is_numeric_dtype(observed.infer_objects()) and not pd.api.types.is_bool_dtype(observed)
    if numbers and len(kept):  # a number is moved to the nearest kept one, keeping the column's dtype
        return ColumnProtection(spec, kept=np.sort(kept.to_numpy(dtype=float)), **grouped)
    return ColumnProtection(spec, kept=set(kept), **grouped)


def _fit_numerical(series: pd.Series, spec: ColumnSpec, rows: int) -> ColumnProtection | None:
    values = as_numbers(series, spec)
    values = values[~np.isnan(values)]
    new, grid = protected_numbers(values, rows)
    changed = new != values
    if not changed.any():
        return None
    distinct = len(np.unique(values))
    return ColumnProtection(spec, low=float(new.min()), high=float(new.max()), rows=int(changed.sum()),
                            values=distinct - len(np.unique(new)) if grid and on_grid(distinct, len(values)) else 0)

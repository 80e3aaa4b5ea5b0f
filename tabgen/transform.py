"""Reversible per-column transforms between a table and the arrays the VAE reads.

Numerical columns go through a quantile transform to a standard normal (as TabSyn; a column of
few values through its exact distribution, so that it comes back on its own values); categorical
columns become integer codes. Missing values are data: a numerical column with gaps gets a
two-class "missing" indicator that the model learns jointly with everything else, and a
categorical column's missing value is one more category. Dates and times are numerical columns,
counted in a unit since 1970-01-01. Identifier columns are not modelled: the inverse transform
writes fresh ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .errors import TabgenError, TabgenWarning
from .layout import TokenLayout
from .pairs import snap_parents, write_derived
from .protection import protected_numbers
from .schema import (
    QUANTILES,
    ColumnSpec,
    Schema,
    as_numbers,
    from_numbers,
    json_scalar,
    on_grid,
    quantile_count,
    quantile_ranks,
    restore_dtype,
)

# Keeps the normal scores finite at the ends of the observed range (sklearn uses the same bound).
_CLIP = 1e-7


# torch's normal CDF and its inverse rather than scipy's, whose import is a tenth of a second of every
# `tabgen sample` (an interactive command).
def ndtr(z: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.tensor(np.asarray(z, dtype=np.float64))).numpy()


def ndtri(p: np.ndarray) -> np.ndarray:
    return torch.special.ndtri(torch.tensor(np.asarray(p, dtype=np.float64))).numpy()


#: Below this many rows tabgen still fits, but warns that the synthetic rows will be rough.
MIN_ROWS_FOR_QUALITY = 100
#: A table learns at most this many tokens (columns, and a flag for each numerical one with gaps) and
#: this many categories in all (each column's at most ``schema.MAX_LEARNED_CATEGORIES``): the batches
#: are cut to keep memory bounded (``config.MAX_ATTENTION_CELLS``), and past these a fit would take hours
#: (300 columns already take 2.9 s a VAE step on 2 cores).
MAX_LEARNED_TOKENS = 1000
MAX_LEARNED_CLASSES = 100_000
#: A numerical column with at most this many distinct values is decoded as a choice among them. A
#: value's window of normal scores is as narrow as its share of rows, so a regressed score of a rare
#: value lands on its frequent neighbour: adult's education.num = 11 (4 % of rows) came back as 10
#: in 95 % of its rows after a 38 s VAE phase.
DISCRETE_MAX_VALUES = 32


class QuantileNumeric:
    """Maps a numerical column to N(0, 1) through its empirical quantiles, and back.

    With ``grid``, a column on a grid of values (:func:`tabgen.schema.on_grid`) is
    mapped through its exact distribution instead: each value to the middle of its share of N(0, 1),
    and back to a value of the table."""

    grid_: np.ndarray | None = None
    """The distinct values of a column on a grid (else None)..."""
    grid_cdf_: np.ndarray | None = None
    """... and the share of rows at or below each."""

    def __init__(self, n_quantiles: int = QUANTILES, grid: bool = False, rare_rows: int = 0):
        self.n_quantiles = n_quantiles
        self.grid = grid
        self.rare_rows = rare_rows

    def fit(self, values: np.ndarray) -> "QuantileNumeric":
        """Learn ``values`` (present ones), protected (:func:`tabgen.protection.protected_numbers`) where
        ``rare_rows`` > 1: each stored quantile then stands for ``rare_rows`` rows or more."""
        values, grid = protected_numbers(np.asarray(values, dtype=np.float64), self.rare_rows)
        n_q = min(max(2, self.n_quantiles), quantile_count(len(values), self.rare_rows))
        self.quantiles_ = np.quantile(values, np.linspace(0, 1, n_q))
        distinct, counts = np.unique(values, return_counts=True)
        if self.grid and grid and on_grid(len(distinct), len(values)):
            self.grid_, self.grid_cdf_ = distinct, np.cumsum(counts) / len(values)
        return self

    @property
    def references_(self) -> np.ndarray:
        return np.linspace(0, 1, len(self.quantiles_))

    def transform(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        if self.grid_ is not None:
            middles = self.grid_cdf_ - 0.5 * np.diff(self.grid_cdf_, prepend=0.0)
            return ndtri(np.clip(np.interp(x, self.grid_, middles), _CLIP, 1 - _CLIP))
        return ndtri(np.clip(quantile_ranks(x, self.quantiles_), _CLIP, 1 - _CLIP))

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        p = ndtr(np.asarray(z, dtype=np.float64))
        if self.grid_ is not None:
            return self.grid_[np.minimum(np.searchsorted(self.grid_cdf_, p), len(self.grid_) - 1)]
        # Scores at the clipping bound stand for the observed extremes exactly, not 1e-7 inside them.
        p[p < 2 * _CLIP] = 0
        p[p > 1 - 2 * _CLIP] = 1
        return np.interp(p, self.references_, self.quantiles_)


class CategoricalCodes:
    """Maps the seen categories to 0..K-1 and back: the learned ones, then (if any) one code for the
    grouped ones (``[category, rows]``), then (if any) the missing value."""

    def __init__(self, categories: list, has_missing: bool, grouped: list[list] | None = None):
        rare = {value for value, _ in grouped or []}
        self.categories = [c for c in categories if c not in rare]
        self.has_missing = has_missing
        self.grouped = [value for value, _ in grouped or []]
        self._shares = np.cumsum([rows for _, rows in grouped or []], dtype=np.float64)
        self._index = pd.Index(self.categories, dtype=object)
        self._group_index = pd.Index(self.grouped, dtype=object)

    @property
    def n_classes(self) -> int:
        return len(self.categories) + int(bool(self.grouped)) + int(self.has_missing)

    def _codes(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The codes, and which values are unseen (negative code)."""
        missing = series.isna().to_numpy()
        values = pd.Series(series.to_numpy(dtype=object)).map(json_scalar)
        codes = self._index.get_indexer(values)
        if self.grouped:
            codes[(codes < 0) & (self._group_index.get_indexer(values) >= 0)] = len(self.categories)
        codes[missing] = self.n_classes - 1
        return codes, (codes < 0) | (missing & (not self.has_missing))

    def transform(self, series: pd.Series, name: str) -> np.ndarray:
        codes, unseen = self._codes(series)
        if unseen.any():
            bad = series[unseen].iloc[0]
            raise TabgenError(f"column {name!r} holds {bad!r}, which the model never saw")
        return codes

    def known(self, series: pd.Series) -> np.ndarray:
        return ~self._codes(series)[1]

    def inverse_transform(self, codes: np.ndarray, draws: np.ndarray | None = None) -> np.ndarray:
        """The categories of ``codes``; a row of the group gets the category its ``draws`` (uniform in
        [0, 1)) falls on by the group's shares, or without draws the group's most frequent."""
        lookup = np.array(self.categories + [None] * bool(self.grouped) + [np.nan], dtype=object)
        out = lookup[codes]
        rows = codes == len(self.categories)
        if self.grouped and rows.any():
            at = np.zeros(int(rows.sum())) if draws is None else draws[rows] * self._shares[-1]
            chosen = np.minimum(np.searchsorted(self._shares, at, side="right"), len(self.grouped) - 1)
            out[rows] = np.array(self.grouped, dtype=object)[chosen]
        return out


@dataclass
class EncodedTable:
    """A table as the VAE reads it."""

    x_num: np.ndarray
    """float64 (rows, numerical columns), normal scores; 0 where the cell is missing.
    Kept in double precision so the round trip is exact; the model reads it as float32."""
    num_observed: np.ndarray
    """bool (rows, numerical columns): which numerical cells hold a value (the loss ignores the rest)."""
    x_cat: np.ndarray
    """int64 (rows, categorical heads): categorical codes, then one 0/1 missing indicator per
    numerical column that has gaps."""

    def to_tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_num, num_observed, x_cat)`` as the VAE reads them (``x_num`` in float32)."""
        return (torch.from_numpy(self.x_num).to(device, torch.float32), torch.from_numpy(self.num_observed).to(device),
                torch.from_numpy(self.x_cat).to(device))


class TableTransform:
    """All columns' transforms, fitted from a schema and a frame; numbers of fewer than ``rare_rows``
    rows are protected (:mod:`tabgen.protection`)."""

    def __init__(self, schema: Schema, rare_rows: int = 0):
        self.schema = schema
        self.rare_rows = rare_rows

    @property
    def gappy_numerical(self) -> list[ColumnSpec]:
        """Numerical columns that need a missing indicator."""
        return [c for c in self.schema.numerical if c.has_missing]

    def fit(self, df: pd.DataFrame) -> "TableTransform":
        if not self.schema.numerical and not self.schema.categorical:
            names = [c.name for c in self.schema.identifiers]
            raise TabgenError(
                f"nothing to learn: every column ({names}) is an identifier; name the ones that carry "
                "information categorical or numerical"
            )
        if len(df) < MIN_ROWS_FOR_QUALITY:
            warnings.warn(
                f"the table has only {len(df)} row{'s' if len(df) != 1 else ''}: tabgen fits it, "
                "but a model learned from so few rows "
                f"gives rough synthetic data (a few hundred rows or more are advised)",
                TabgenWarning,
                stacklevel=2,
            )
        self._build_codes()
        self._refuse_beyond_limits()
        self.numeric_, value_levels = {}, []
        for spec in self.schema.numerical:
            values = as_numbers(df[spec.name], spec)
            values = values[~np.isnan(values)]
            numeric = self.numeric_[spec.name] = QuantileNumeric(grid=True, rare_rows=self.rare_rows).fit(values)
            # Protected, a column off its grid has no levels to choose among: they would be its rare values.
            distinct = numeric.grid_ if numeric.grid_ is not None else np.unique(values) if self.rare_rows <= 1 else []
            discrete = 2 <= len(distinct) <= DISCRETE_MAX_VALUES
            value_levels.append(self.numeric_[spec.name].transform(distinct).tolist() if discrete else [])
        self.layout_ = self._layout(value_levels)
        return self

    def _refuse_beyond_limits(self) -> None:
        tokens = len(self.schema.numerical) + len(self.gappy_numerical) + len(self.schema.categorical)
        classes = sum(codes.n_classes for codes in self.codes_.values())
        if tokens > MAX_LEARNED_TOKENS:
            raise TabgenError(f"the table has {tokens:,} columns to learn (a column with gaps counts twice), more than the "
                              f"{MAX_LEARNED_TOKENS:,} tabgen learns: fit the columns that matter, or mark some as identifiers")
        if classes > MAX_LEARNED_CLASSES:
            raise TabgenError(f"the table's categorical columns hold {classes:,} categories to learn in all, more than the "
                              f"{MAX_LEARNED_CLASSES:,} tabgen learns: mark the columns of many categories as identifiers "
                              "or leave them out")

    def _build_codes(self) -> None:
        self.codes_ = {c.name: CategoricalCodes(c.categories or [], c.has_missing, c.grouped) for c in self.schema.categorical}

    def _layout(self, value_levels: list[list[float]] | None) -> TokenLayout:
        numerical = self.schema.numerical
        return TokenLayout(len(numerical), tuple(self.codes_[c.name].n_classes for c in self.schema.categorical),
                           tuple(numerical.index(c) for c in self.gappy_numerical), tuple(map(tuple, value_levels or ())))

    @property
    def varies(self) -> bool:
        """Whether any learned cell differs between rows. Where none does, every latent decodes to the
        table's one row, so there is nothing for the VAE or the diffusion model to learn."""
        return any(k > 1 for k in self.layout_.cardinalities) or not all(c.is_constant for c in self.schema.numerical)

    def transform(self, df: pd.DataFrame) -> EncodedTable:
        n = len(df)
        num = self.schema.numerical
        x_num = np.zeros((n, len(num)), dtype=np.float64)
        observed = np.ones((n, len(num)), dtype=bool)
        for j, spec in enumerate(num):
            values = as_numbers(df[spec.name], spec)
            observed[:, j] = ~np.isnan(values)
            x_num[observed[:, j], j] = self.numeric_[spec.name].transform(values[observed[:, j]])
        cat_codes = [self.codes_[c.name].transform(df[c.name], c.name) for c in self.schema.categorical]
        indicators = [(~observed[:, j]).astype(np.int64) for j in self.layout_.gappy]
        columns = cat_codes + indicators
        x_cat = np.stack(columns, axis=1).astype(np.int64) if columns else np.zeros((n, 0), dtype=np.int64)
        return EncodedTable(x_num, observed, x_cat)

    def known(self, df: pd.DataFrame) -> np.ndarray:
        """Which rows :meth:`transform` encodes as they are: every category one it was fitted with, and
        gaps only in columns it saw gaps in. A streamed table's rows outside its sample may hold others."""
        known = np.ones(len(df), dtype=bool)
        for spec in self.schema.categorical:
            known &= self.codes_[spec.name].known(df[spec.name])
        for spec in self.schema.numerical:
            if not spec.has_missing:
                known &= df[spec.name].notna().to_numpy()
        return known

    @property
    def grouped_columns(self) -> int:
        """Categorical columns with a group of categories, whose rows :meth:`inverse_transform` draws."""
        return sum(bool(c.grouped) for c in self.schema.categorical)

    def inverse_transform(self, x_num: np.ndarray, x_cat: np.ndarray, row_offset: int = 0,
                          draws: np.ndarray | None = None) -> pd.DataFrame:
        """Rebuild a frame with the fitted columns, order, dtypes and value ranges.

        ``row_offset`` is the position of the first row in the whole sample: identifier columns
        number their fresh values from it, so that batches of one sample never repeat one. ``draws``
        (rows, :attr:`grouped_columns`), uniform in [0, 1), choose the categories of grouped rows.
        """
        n = len(x_num)
        num = self.schema.numerical
        cats = self.schema.categorical
        out: dict[str, pd.Series] = {}
        for j, spec in enumerate(num):
            values = np.clip(self.numeric_[spec.name].inverse_transform(x_num[:, j]), spec.min, spec.max)
            if spec.decimals is not None:
                values = np.round(values, spec.decimals)
            g = self.layout_.indicator(j)
            if g is not None:
                values[x_cat[:, len(cats) + g] == 1] = np.nan
            out[spec.name] = from_numbers(values, spec)
        grouped = [spec.name for spec in cats if spec.grouped]
        for j, spec in enumerate(cats):
            column_draws = None if draws is None or not spec.grouped else draws[:, grouped.index(spec.name)]
            out[spec.name] = restore_dtype(pd.Series(self.codes_[spec.name].inverse_transform(x_cat[:, j], column_draws)), spec)
        for spec in self.schema.identifiers:
            out[spec.name] = restore_dtype(pd.Series(spec.id_format.generate(n, row_offset)), spec)
        frame = write_derived(snap_parents(pd.DataFrame(out), self.schema), self.schema)
        return frame[self.schema.names]

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays, for the model file (the rest lives in the schema)."""
        arrays = {f"quantiles/{name}": qt.quantiles_ for name, qt in self.numeric_.items()}
        for name, qt in self.numeric_.items():
            if qt.grid_ is not None:
                arrays |= {f"grid/{name}": qt.grid_, f"grid_cdf/{name}": qt.grid_cdf_}
        return arrays

    @classmethod
    def from_state(cls, schema: Schema, arrays: dict[str, np.ndarray],
                   value_levels: list[list[float]] | None = None) -> "TableTransform":
        """The fitted transform from :meth:`state_arrays` and its layout's ``value_levels`` (files from
        before discrete numerical columns have none: every number is regressed)."""
        self = cls(schema)
        self.numeric_ = {}
        for spec in schema.numerical:
            qt = QuantileNumeric()
            qt.quantiles_ = np.asarray(arrays[f"quantiles/{spec.name}"], dtype=np.float64)
            if f"grid/{spec.name}" in arrays:  # files from before the grids have none
                qt.grid_ = np.asarray(arrays[f"grid/{spec.name}"], dtype=np.float64)
                qt.grid_cdf_ = np.asarray(arrays[f"grid_cdf/{spec.name}"], dtype=np.float64)
            self.numeric_[spec.name] = qt
        self._build_codes()
        self.layout_ = self._layout(value_levels)
        return self

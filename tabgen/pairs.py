"""Columns that determine each other one-to-one: found in the table, learned once, written exactly.

Real tables often carry one fact twice: a code and its label (adult's ``education`` and
``education.num``), a value in two units, a copied column. Learned as two columns, the pair is
generated as two tokens that the denoiser must keep consistent, and an undertrained one does not:
after a short fit on adult, 9 % of the rows paired an education with another one's number (308 of
them a ``5th-6th`` with a Masters' 14). A classifier spots such rows at once, and the model spends
its capacity relearning a table of sixteen lines.

So tabgen models one column of each such group (its *parent*) and writes the others from it through
the table seen in training; every generated row keeps the pair exact. The parent is a numerical
column if the group has one: its values are ordered (``education.num`` 1 < 2 < ... 16), which the
model learns from, whereas the labels are sixteen unrelated classes. On adult, in 128 s fits, that
choice scored a tree C2ST of 0.67 against 0.61 learning the labels (three seeds; docs/speed.md). A
missing value takes part like any other value.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .schema import ColumnSpec, Schema, as_numbers, from_numbers, json_scalar, restore_dtype

#: Pairs are looked for only in tables with at least this many rows.
MIN_ROWS = 50
#: A column takes part only with at least this many rows per distinct value on average. Two columns
#: whose values are nearly all distinct (names, e-mails) are one-to-one by construction, not because
#: one fact is written twice; and their values would only be copied from the real rows.
MIN_ROWS_PER_VALUE = 5
#: Rows screened for a pair before the whole table is checked.
SCREEN_ROWS = 2_000


def find_pairs(df: pd.DataFrame, schema: Schema) -> Schema:
    """``schema`` with each column that another one determines one-to-one marked as written from it."""
    if len(df) < MIN_ROWS:
        return schema
    values, codes, counts = {}, {}, {}
    for spec in schema.numerical + schema.categorical:
        values[spec.name] = comparable_values(df[spec.name], spec)
        code, uniques = pd.factorize(values[spec.name], use_na_sentinel=False)
        if 2 <= len(uniques) <= len(df) / MIN_ROWS_PER_VALUE:
            codes[spec.name], counts[spec.name] = code.astype(np.int64), len(uniques)
    parent_of: dict[str, str] = {}
    names = list(codes)
    for i, first in enumerate(names):
        if first in parent_of:
            continue
        group = [first] + [other for other in names[i + 1:] if other not in parent_of and counts[other] == counts[first]
                           and _one_to_one(codes[first], codes[other], counts[first])]
        if len(group) > 1:
            parent = next((name for name in group if schema[name].kind == "numerical"), group[0])
            parent_of |= {name: parent for name in group if name != parent}
    columns = []
    for spec in schema.columns:
        if spec.name in parent_of:
            parent = parent_of[spec.name]
            table = pd.DataFrame({"parent": values[parent], "own": values[spec.name]}).drop_duplicates("parent")
            spec = replace(spec, derived_from=parent,
                           derived_pairs=[[_key(p), _key(c)] for p, c in table.itertuples(index=False)])
        columns.append(spec)
    return Schema(columns)


def _one_to_one(a: np.ndarray, b: np.ndarray, count: int) -> bool:
    """Whether two columns of ``count`` distinct codes each form only ``count`` distinct pairs."""
    # Unrelated columns nearly always show it in their first rows: a cheap test before the whole one.
    head = slice(0, SCREEN_ROWS)
    if len(np.unique(a[head] * count + b[head])) > len(np.unique(a[head])):
        return False
    return len(np.unique(a * count + b)) == count


def comparable_values(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Values comparable across the model's output, the user's givens and the training table."""
    if spec.kind == "numerical":
        return pd.Series(as_numbers(series, spec))
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    keys = np.array([_key(v) for v in uniques], dtype=object)
    return pd.Series(keys[codes], dtype=object)


def _key(value: Any) -> Any:
    return None if pd.isna(value) else json_scalar(value)


class PairTable:
    """A derived column's table of values against its parent's (``parent``)."""

    def __init__(self, spec: ColumnSpec, parent: ColumnSpec):
        self.spec, self.parent = spec, parent
        pairs = spec.derived_pairs or []
        self.table = {p: c for p, c in pairs}
        self.inverse = {c: p for p, c in pairs}
        numbers = sorted(p for p, _ in pairs if p is not None) if parent.kind == "numerical" else []
        self.numbers = np.array(numbers, dtype=np.float64)

    def parent_keys(self, values: pd.Series) -> list[Any]:
        """Each parent value as a key of the table (a number snapped to the nearest one seen)."""
        values = comparable_values(values, self.parent)
        if self.parent.kind != "numerical":
            return list(values)
        return [None if k is None else float(k) for k in self.nearest(values.to_numpy(dtype=float))]

    def nearest(self, numbers: np.ndarray) -> np.ndarray:
        """The parent values seen in training nearest to ``numbers``; NaN stays NaN."""
        out = numbers.astype(object)
        known = ~np.isnan(numbers)
        if known.any() and len(self.numbers):
            right = np.clip(np.searchsorted(self.numbers, numbers[known]), 1, len(self.numbers) - 1)
            left = right - 1 if len(self.numbers) > 1 else right
            lo, hi = self.numbers[left], self.numbers[right]
            out[known] = np.where(numbers[known] - lo <= hi - numbers[known], lo, hi)
        out[~known] = None
        return out

    def written(self, parent_values: pd.Series) -> pd.Series:
        """This column's values for the parent's, in its fitted dtype."""
        own = [self.table.get(k) for k in self.parent_keys(parent_values)]
        if self.spec.kind == "numerical":
            return from_numbers(np.array([np.nan if v is None else v for v in own], dtype=np.float64), self.spec)
        return restore_dtype(pd.Series(own, dtype=object), self.spec)


def snap_parents(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Generated numbers of each numerical parent set to the nearest value it had in training, so
    that every one of them has a partner to write."""
    # One written column per parent: all of a parent's tables list the same parent values.
    for spec in {spec.derived_from: spec for spec in schema.derived}.values():
        parent = schema[spec.derived_from]
        if parent.kind == "numerical":
            numbers = PairTable(spec, parent).nearest(as_numbers(frame[parent.name], parent)).astype(np.float64)
            frame[parent.name] = from_numbers(numbers, parent).set_axis(frame.index)
    return frame


def write_derived(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``frame`` with every derived column written from its parent's values."""
    for spec in schema.derived:
        # Aligned as a Series, not as an array: an array would drop a nullable or categorical dtype.
        frame[spec.name] = PairTable(spec, schema[spec.derived_from]).written(frame[spec.derived_from]).set_axis(frame.index)
    return frame

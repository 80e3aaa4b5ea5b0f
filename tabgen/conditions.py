"""Conditions on the rows to generate, checked against the model's schema.

A user fixes cells (``given={"workclass": "Private"}``, or a frame with some cells filled) or asks for
shares of a categorical column's values (``rebalance``). This module turns either into
:class:`Givens`: for every row to generate, which cells are fixed and to what. Whatever the model
cannot satisfy is refused with a message naming the column and the value: a column it does not have
or does not model, a category it never saw, a number outside the range it saw. Values may be text
(as typed on a command line): they are read by the column's kind.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .errors import TabgenError
from .pairs import PairTable, comparable_values
from .protection import RARE
from .schema import ColumnSpec, Schema, as_numbers, from_numbers, json_scalar, refuse_duplicate_columns, restore_dtype

#: Categories an error message lists at most.
SHOWN_CATEGORIES = 12
#: Slack on rebalance shares summing to 1, for decimal shares such as 0.1 + 0.2 + 0.7.
SHARE_TOLERANCE = 1e-9


@dataclass
class Givens:
    """The cells fixed in each row to generate (one row of ``values`` per row)."""

    values: pd.DataFrame
    """The fixed columns only: numbers as float64 (dates as the column's own values), categories as
    the schema lists them. A cell that is not fixed is missing; a fixed cell may be missing too, when
    it is a categorical column's missing category."""
    given: pd.DataFrame
    """bool, like ``values``: which cells are fixed."""
    fill: bool = False
    """Imputation: every cell that is not fixed must come out with a value, never missing."""

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, start: int, stop: int) -> "Givens":
        return Givens(self.values.iloc[start:stop], self.given.iloc[start:stop], self.fill)

    def apply(self, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
        """``frame`` (rows as sampled) with every fixed cell set to its value, in the column's dtype."""
        frame = frame.copy()
        for name in self.values.columns:
            given = self.given[name].to_numpy()
            if given.any():
                column = frame[name].to_numpy(dtype=object, copy=True)
                column[given] = output_values(self.values[name], schema[name]).to_numpy(dtype=object)[given]
                frame[name] = restore_dtype(pd.Series(column, index=frame.index), schema[name])
        return frame


def output_values(values: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Checked values of a column as the sampler writes them (dtype, dates as dates or text)."""
    values = values.reset_index(drop=True)
    if spec.kind == "numerical":
        return from_numbers(as_numbers(values, spec), spec)
    return restore_dtype(values, spec)


# ------------------------------------------------------------------------------------------- given
def given_from_mapping(schema: Schema, given: Mapping[str, Any], n: int) -> Givens:
    """``n`` rows with the same cells fixed: ``{"workclass": "Private", "age": 30}``.

    Values may be text (as typed on a command line): a category matches by its written form, and a
    number is read from it.
    """
    if not isinstance(given, Mapping):
        raise TabgenError(f"given must be a dict of column -> value or a DataFrame, got {type(given).__name__}")
    if not given:
        raise TabgenError("given is empty: name at least one column and its value")
    columns = {}
    for name, value in given.items():
        spec = _modelled_column(schema, name, "given")
        if _is_missing(value):
            raise TabgenError(f"given {name!r} has no value: give one, or leave the column out to have it generated")
        if spec.kind == "categorical":
            columns[spec.name] = pd.Series([_category(spec, value)] * n, dtype=object)
        else:
            columns[spec.name] = _numbers(spec, pd.Series([value] * n, dtype=object), np.ones(n, dtype=bool), strict=True)
    values = pd.DataFrame(columns)
    return Givens(values, pd.DataFrame(True, index=values.index, columns=values.columns))


def given_from_frame(schema: Schema, frame: pd.DataFrame, *, fill: bool = False) -> Givens:
    """One row to generate per row of ``frame``; its non-missing cells are fixed.

    Numbers beyond the range the model learned are accepted (rows of a real table, which hold the
    extremes the model does not: docs/privacy.md) and kept; the model is conditioned on the nearest
    value it knows. With ``fill`` (imputation), identifier columns are allowed and kept too, and a
    category the model does not have, where it grouped rare ones, is completed as one of them.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TabgenError(f"given must be a dict of column -> value or a DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise TabgenError("the given rows are empty: give at least one row")
    refuse_duplicate_columns(frame, " in the given rows")
    frame = frame.reset_index(drop=True)
    values, given = {}, {}
    for name in frame.columns:
        spec = _column(schema, name, "given rows")
        if spec.kind == "id" and not fill:
            raise TabgenError(f"column {name!r} is an identifier, which the model does not learn: it cannot be given; drop it")
        column = frame[name]
        observed = column.notna().to_numpy()
        if spec.kind == "categorical":
            values[spec.name] = _categories(spec, column, observed, rare_ok=fill)
        elif spec.kind == "numerical":
            values[spec.name] = _numbers(spec, column, observed, strict=False)
        else:
            values[spec.name] = column.astype(object)
        given[spec.name] = observed
    return Givens(pd.DataFrame(values), pd.DataFrame(given), fill=fill)


def _column(schema: Schema, name: Any, what: str) -> ColumnSpec:
    try:
        return schema[str(name)]
    except KeyError:
        raise TabgenError(f"{what} names column {name!r}, which the model does not have; "
                          f"its columns are {schema.names}") from None


def _modelled_column(schema: Schema, name: Any, what: str) -> ColumnSpec:
    spec = _column(schema, name, what)
    if spec.kind == "id":
        raise TabgenError(f"column {spec.name!r} is an identifier, which the model does not learn: it cannot be {what}")
    return spec


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _category(spec: ColumnSpec, value: Any, rare_ok: bool = False) -> Any:
    """The seen category ``value`` stands for: equal to it, or written the same (``"2019"`` for 2019);
    with ``rare_ok``, where it is none of them, the one rare values were grouped with (:func:`_categories`)."""
    categories = spec.categories or []
    key = json_scalar(value)
    for category in categories:
        # 2019.0 (an integer code read from a CSV with gaps) is 2019, but True is not 1.
        if category == key and isinstance(category, bool) == isinstance(key, bool):
            return category
    written = [c for c in categories if str(c) == str(value)]
    if len(written) == 1:
        return written[0]
    if rare_ok and RARE in categories:
        return RARE
    numbers = [c for c in categories if _is_number(c)]
    if rare_ok and numbers and _is_number(key):
        return min(numbers, key=lambda c: abs(c - key))
    shown = ", ".join(map(repr, categories[:SHOWN_CATEGORIES])) + (", ..." if len(categories) > SHOWN_CATEGORIES else "")
    raise TabgenError(
        f"column {spec.name!r} never held {value!r} in the training table, or in fewer rows than value protection "
        f"keeps (docs/privacy.md), so the model cannot generate it; "
        f"its values are {shown}"
    )


def _categories(spec: ColumnSpec, column: pd.Series, observed: np.ndarray, rare_ok: bool = False) -> pd.Series:
    """Observed cells as the model's categories; with ``rare_ok``, a category it does not have stands for
    the rare ones grouped (docs/privacy.md): ``_RARE_``, or the nearest number."""
    out = pd.Series([None] * len(column), dtype=object)
    seen = {value: _category(spec, value, rare_ok) for value in pd.unique(column[observed])}
    out[observed] = column[observed].map(seen).to_numpy()
    return out


def _numbers(spec: ColumnSpec, column: pd.Series, observed: np.ndarray, *, strict: bool) -> pd.Series:
    """Observed cells as numbers (dates keep their own values: the transform reads them), checked."""
    if spec.datetime_unit is None:
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        text = observed & np.isnan(numbers)
        if text.any():
            raise TabgenError(f"column {spec.name!r} is numerical, but {column[text].iloc[0]!r} is not a number")
    else:
        try:
            with warnings.catch_warnings():  # pandas warns before it fails to parse text without a format
                warnings.simplefilter("ignore", UserWarning)
                numbers = as_numbers(column, spec)
        except TabgenError:  # text not in the column's format: the message names the format
            raise
        except (ValueError, TypeError):
            raise TabgenError(f"column {spec.name!r} holds dates and times, but the given "
                              f"{_first(column, observed)!r} is not one") from None
    if np.isinf(numbers).any():
        raise TabgenError(f"column {spec.name!r}: {column[np.isinf(numbers)].iloc[0]!r} is not a finite number")
    if spec.datetime_unit is None and spec.is_integer:
        fractional = observed & (numbers != np.round(numbers))
        if fractional.any():
            raise TabgenError(f"column {spec.name!r} holds whole numbers only; {column[fractional].iloc[0]!r} is not one")
    if strict:
        outside = observed & ((numbers < spec.min) | (numbers > spec.max))
        if outside.any():
            low, high = _shown(spec, spec.min), _shown(spec, spec.max)
            raise TabgenError(
                f"column {spec.name!r} = {column[outside].iloc[0]!r} is outside the range the model saw "
                f"({low} to {high}), so it cannot generate it"
            )
    if spec.datetime_unit is not None:
        return column.astype(object).where(observed, None)
    return pd.Series(numbers)


def _first(column: pd.Series, observed: np.ndarray) -> Any:
    """The first observed value that a date parser refused (pandas does not say which one)."""
    for value in column[observed]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                pd.to_datetime(pd.Series([value]))
        except (ValueError, TypeError):
            return value
    return column[observed].iloc[0]


def _shown(spec: ColumnSpec, number: float) -> str:
    if spec.datetime_unit is None:
        return f"{number:g}"
    value = from_numbers(np.array([number]), spec).iloc[0]
    return str(value.date()) if spec.datetime_unit == "D" and isinstance(value, pd.Timestamp) else str(value)


# --------------------------------------------------------------------------------------- rebalance
@dataclass
class Rebalance:
    """Target shares of some categories of one categorical column; the rest of the rows go to the
    other categories in proportion to the model's own shares."""

    column: str
    shares: dict[Any, float]
    """Seen category -> share in [0, 1]; the shares sum to at most 1."""
    others: list[Any]
    """The categories not named (a column's missing category is ``None``), in code order."""

    @property
    def rest(self) -> float:
        return max(0.0, 1.0 - sum(self.shares.values()))


def resolve_rebalance(schema: Schema, rebalance: Mapping[str, Mapping[Any, Any]], given: Mapping[str, Any] | None) -> Rebalance:
    """Check ``{"income": {">50K": 0.5}}`` against the schema (one categorical column at a time)."""
    if not isinstance(rebalance, Mapping) or len(rebalance) != 1:
        raise TabgenError("rebalance takes one column and its target shares, e.g. {'income': {'>50K': 0.5}}")
    (name, shares), = rebalance.items()
    spec = _modelled_column(schema, name, "rebalanced")
    if spec.kind != "categorical":
        raise TabgenError(f"column {spec.name!r} is numerical: only a categorical column can be rebalanced")
    if given is not None and spec.name in map(str, given):
        raise TabgenError(f"column {spec.name!r} is both given and rebalanced: choose one")
    if not isinstance(shares, Mapping) or not shares:
        raise TabgenError(f"rebalance of {spec.name!r} needs target shares, e.g. {{'{spec.name}': {{category: 0.5}}}}")
    checked: dict[Any, float] = {}
    for value, share in shares.items():
        category = _category(spec, value)
        try:
            share = float(share)
        except (TypeError, ValueError):
            raise TabgenError(f"the share of {value!r} in {spec.name!r} is not a number: {share!r}") from None
        if not 0 <= share <= 1:
            raise TabgenError(f"the share of {value!r} in {spec.name!r} must be between 0 and 1, got {share:g}")
        if category in checked:
            raise TabgenError(f"category {value!r} of {spec.name!r} is named twice in the rebalance")
        checked[category] = share
    total = sum(checked.values())
    if total > 1 + SHARE_TOLERANCE:
        raise TabgenError(f"the rebalance shares of {spec.name!r} sum to {total:g}, more than 1")
    others = [c for c in spec.categories or [] if c not in checked] + ([None] if spec.has_missing else [])
    if not others and total < 1 - SHARE_TOLERANCE:
        raise TabgenError(f"every category of {spec.name!r} is named but their shares sum to {total:g}: they must sum to 1")
    return Rebalance(spec.name, checked, others)


def allocate(n: int, shares: Mapping[Any, float]) -> dict[Any, int]:
    """Whole row counts summing to ``n`` whose proportions are ``shares`` (normalised), by largest remainder."""
    keys = list(shares)
    weights = np.array([shares[k] for k in keys], dtype=np.float64)
    exact = n * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return dict(zip(keys, counts.tolist()))


# ------------------------------------------------------------------------------------ paired columns
def parent_givens(givens: Givens, schema: Schema) -> Givens:
    """``givens`` with each given derived cell turned into a given cell of its parent, on which the
    model is conditioned. Sampling refuses a value the pair never held, and a row whose given cells of
    one pair disagree; imputation keeps such data as it is, and conditions on the parent alone."""
    values, given = givens.values.copy(), givens.given.copy()
    for spec in schema.derived:
        parent = schema[spec.derived_from]
        if spec.name not in values and parent.name not in values:
            continue
        table = PairTable(spec, parent)
        if parent.name not in values:
            values[parent.name] = pd.Series(None, index=values.index, dtype=object)
            given[parent.name] = False
        has_parent = given[parent.name].to_numpy()
        keys = table.parent_keys(values[parent.name])
        if parent.kind == "numerical" and not givens.fill:
            numbers = comparable_values(values[parent.name], parent).to_numpy(dtype=float)
            off = has_parent & (numbers != np.array([np.nan if k is None else k for k in keys], dtype=float))
            if off.any():
                raise TabgenError(
                    f"column {parent.name!r} never held {_shown(parent, numbers[off][0])} in the training table, where "
                    f"{spec.name!r} is written from it; its values are {_listed(parent, table.table)}"
                )
        if spec.name not in values:
            continue
        rows = given[spec.name].to_numpy()
        own = comparable_values(values[spec.name], spec)
        wanted = np.array([table.inverse.get(k, _UNSEEN) if r else _UNSEEN for k, r in zip(own, rows)], dtype=object)
        unseen = rows & np.array([w is _UNSEEN for w in wanted], dtype=bool)
        if unseen.any() and not givens.fill:
            raise TabgenError(
                f"column {spec.name!r} never held {_written(spec, values[spec.name][unseen].iloc[0])} "
                f"in the training table, where it is "
                f"{parent.name!r} written another way; its values are {_listed(spec, table.inverse)}"
            )
        clash = rows & ~unseen & has_parent & np.array([k != w for k, w in zip(keys, wanted)], dtype=bool)
        if clash.any() and not givens.fill:
            row = int(np.flatnonzero(clash)[0])
            raise TabgenError(
                f"given {spec.name}={_written(spec, values[spec.name].iloc[row])} and "
                f"{parent.name}={_written(parent, values[parent.name].iloc[row])} disagree: "
                f"in the training table {spec.name!r} is {parent.name!r} written another way; give one of them"
            )
        take = rows & ~unseen & ~has_parent
        if take.any():
            column = values[parent.name].astype(object).to_numpy(copy=True)
            column[take] = [_given_form(w, parent) for w in wanted[take]]
            values[parent.name] = column
            given[parent.name] = has_parent | take
    return Givens(values, given, givens.fill)


def _written(spec: ColumnSpec, value: Any) -> str:
    return _shown(spec, float(value)) if spec.kind == "numerical" and spec.datetime_unit is None else repr(value)


def _listed(spec: ColumnSpec, values: Any) -> str:
    """A column's values for a message: numbers in order, categories as listed; missing left out."""
    values = [v for v in values if v is not None]
    shown = [_shown(spec, v) for v in sorted(values)] if spec.kind == "numerical" else [repr(v) for v in values]
    return ", ".join(shown[:SHOWN_CATEGORIES]) + (", ..." if len(shown) > SHOWN_CATEGORIES else "")


def _given_form(key: Any, spec: ColumnSpec) -> Any:
    """A parent value as :class:`Givens` holds it: numbers as floats, dates as dates."""
    if key is None or spec.kind != "numerical":
        return key
    if spec.datetime_unit is None:
        return float(key)
    return from_numbers(np.array([key], dtype=np.float64), spec).iloc[0]


_UNSEEN = object()

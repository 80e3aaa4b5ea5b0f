"""Column types: inference, user overrides, and what must be remembered to restore a table.

The schema is plain data (a list of :class:`ColumnSpec`), shown to the user, saved with the model as
JSON, and used by every later stage: the transform, the evaluation and the output's dtypes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import TabgenError

Kind = Literal["numerical", "categorical"]

#: Integer columns with at most this many distinct values are treated as categorical
#: (codes such as ``year`` or ``SEX=1/2``): the model then reproduces them exactly.
MAX_INTEGER_LEVELS_AS_CATEGORICAL = 10
#: Generated numbers are rounded to the precision the real ones show, up to this many decimals.
MAX_DECIMALS = 6


@dataclass
class ColumnSpec:
    """What tabgen knows about one column.

    ``categories`` holds the seen values (JSON scalars) of a categorical column, in code order;
    a missing value is not listed here but counted in ``missing_rate``.
    """

    name: str
    kind: Kind
    dtype: str
    is_integer: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[Any] | None = None
    missing_rate: float = 0.0
    decimals: int | None = None
    """Decimal places the observed numbers are written with (None: more than ``MAX_DECIMALS``)."""

    @property
    def has_missing(self) -> bool:
        return self.missing_rate > 0


@dataclass
class Schema:
    """The columns of a table, in order."""

    columns: list[ColumnSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def numerical(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind == "numerical"]

    @property
    def categorical(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind == "categorical"]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Schema":
        return cls([ColumnSpec(**c) for c in data["columns"]])

    def __str__(self) -> str:
        lines = []
        for c in self.columns:
            detail = (
                f"{len(c.categories or [])} categories"
                if c.kind == "categorical"
                else f"[{c.min:g}, {c.max:g}]{' integer' if c.is_integer else ''}"
            )
            missing = f", {100 * c.missing_rate:.1f}% missing" if c.has_missing else ""
            lines.append(f"  {c.name}: {c.kind} ({c.dtype}) {detail}{missing}")
        return "\n".join(lines)


def json_scalar(value: Any) -> Any:
    """A category as a JSON-safe scalar; exotic objects fall back to their text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def _is_integer_valued(values: pd.Series) -> bool:
    if ptypes.is_integer_dtype(values) or ptypes.is_bool_dtype(values):
        return True
    arr = values.to_numpy(dtype=float)
    return bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))


def _default_kind(series: pd.Series, observed: pd.Series) -> Kind:
    if ptypes.is_bool_dtype(series) or not ptypes.is_numeric_dtype(series):
        return "categorical"
    if ptypes.is_integer_dtype(series) or _is_integer_valued(observed):
        if observed.nunique() <= MAX_INTEGER_LEVELS_AS_CATEGORICAL:
            return "categorical"
    return "numerical"


def validate_frame(df: Any) -> pd.DataFrame:
    """Refuse what no schema can describe, naming the problem."""
    if not isinstance(df, pd.DataFrame):
        raise TabgenError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.shape[1] == 0:
        raise TabgenError("the table has no columns")
    if len(df) == 0:
        raise TabgenError("the table has no rows (only a header?): tabgen needs data to learn from")
    if not all(isinstance(c, str) for c in df.columns):
        # Names are stored as JSON text in the model, so they are text from the start.
        df = df.rename(columns=str)
    duplicated = df.columns[df.columns.duplicated()].tolist()
    if duplicated:
        raise TabgenError(f"duplicate column names: {duplicated}; rename them so each is unique")
    empty = [str(c) for c in df.columns if df[c].isna().all()]
    if empty:
        raise TabgenError(
            f"column(s) {empty} are entirely empty: drop them, there is nothing to learn from them"
        )
    return df


def infer_schema(
    df: pd.DataFrame,
    categorical: Iterable[str] = (),
    numerical: Iterable[str] = (),
) -> Schema:
    """Infer each column's kind, with the user's overrides taking precedence."""
    df = validate_frame(df)
    categorical, numerical = list(categorical), list(numerical)
    for name in categorical + numerical:
        if name not in df.columns:
            raise TabgenError(
                f"column {name!r} named as an override is not in the table; columns are {list(map(str, df.columns))}"
            )
    both = sorted(set(categorical) & set(numerical))
    if both:
        raise TabgenError(f"column(s) {both} are named both categorical and numerical")

    columns = []
    for name in df.columns:
        series = df[name]
        observed = series.dropna()
        if name in categorical:
            kind: Kind = "categorical"
        elif name in numerical:
            kind = "numerical"
        else:
            kind = _default_kind(series, observed)
        columns.append(_describe(str(name), series, observed, kind))
    return Schema(columns)


def _describe(name: str, series: pd.Series, observed: pd.Series, kind: Kind) -> ColumnSpec:
    spec = ColumnSpec(
        name=name,
        kind=kind,
        dtype=str(series.dtype),
        missing_rate=float(series.isna().mean()),
    )
    if kind == "categorical":
        spec.categories = sorted({json_scalar(v) for v in observed.unique()}, key=lambda v: (str(type(v)), v))
        return spec
    values = pd.to_numeric(observed, errors="coerce")
    bad = observed[values.isna()]
    if len(bad):
        raise TabgenError(
            f"column {name!r} was asked to be numerical but holds text such as {bad.iloc[0]!r}; "
            "mark it categorical or clean it"
        )
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    if len(finite) < len(values):
        raise TabgenError(f"column {name!r} holds infinite values; replace them with a number or leave the cell empty")
    spec.is_integer = _is_integer_valued(finite)
    spec.min, spec.max = float(finite.min()), float(finite.max())
    spec.decimals = _decimals(finite.to_numpy(dtype=float))
    return spec


def _decimals(values: np.ndarray) -> int | None:
    for d in range(MAX_DECIMALS + 1):
        scaled = values * 10**d
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1, np.abs(scaled))):
            return d
    return None


def restore_dtype(values: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Cast a generated column back to the dtype it had when the model was fitted."""
    if spec.dtype == "category":
        return values.astype(pd.CategoricalDtype(spec.categories))
    try:
        return values.astype(spec.dtype)
    except (TypeError, ValueError):
        # e.g. an int64 column generated with a NaN cannot exist; keep the nearest faithful dtype.
        return values


def columns_missing_from(df: pd.DataFrame, names: Sequence[str]) -> list[str]:
    return [n for n in names if n not in df.columns]

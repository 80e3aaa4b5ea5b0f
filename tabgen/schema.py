"""Column types: inference, user overrides, and what must be remembered to restore a table.

The schema is plain data (a list of :class:`ColumnSpec`), shown to the user, saved with the model as
JSON, and used by every later stage: the transform, the evaluation and the output's dtypes.

Three kinds of column exist. ``numerical`` columns (numbers, and dates and times, which are learned
as numbers) and ``categorical`` ones are modelled; ``id`` columns, whose values name rows rather
than describe them, are not, and get fresh unique values of the same format in the output.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .datetimes import (
    datetime_unit,
    datetimes_to_numbers,
    is_datetime_dtype,
    numbers_to_datetimes,
    text_datetime_format,
)
from .errors import TabgenError, TabgenWarning
from .identifiers import IdFormat, learn_format, looks_like_identifier

Kind = Literal["numerical", "categorical", "id"]

#: Integer columns with at most this many distinct values are treated as categorical
#: (codes such as ``year`` or ``SEX=1/2``): the model then reproduces them exactly.
MAX_INTEGER_LEVELS_AS_CATEGORICAL = 10
#: Generated numbers are rounded to the precision the real ones show, up to this many decimals.
MAX_DECIMALS = 6
#: A categorical column of more categories has its most frequent ``MAX_LEARNED_CATEGORIES - 1`` learned
#: one by one, and the others as one group, drawn from their observed shares: each category costs the
#: model a class in every row it decodes (the calibration holds 16,384 sampled rows × classes), and a
#: category of a few rows cannot be learned on its own anyway.
MAX_LEARNED_CATEGORIES = 1000
#: A numerical column with at most this many distinct values, each in two rows or more on average,
#: is written on its values' grid (:func:`on_grid`): a sampled value is one of the table's, with its
#: share. Interpolating between quantiles instead wrote values the table never has, which a tree
#: classifier finds: on adult (125 s fit) 36 % of the sampled non-zero capital.gain values and half of
#: capital.loss's were such.
GRID_MAX_VALUES = 1000


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
    datetime_unit: str | None = None
    """Set for a numerical column of dates and times, learned as a count of this unit since 1970-01-01
    (``D``, ``h``, ``min``, ``s``, ``ms`` or ``us``); ``min`` and ``max`` are counted in it too."""
    datetime_format: str | None = None
    """The strftime format of a datetime column that is text (as read from a CSV file)."""
    id_format: IdFormat | None = None
    """How an ``id`` column's fresh values are written."""
    derived_from: str | None = None
    """The column this one is written from, not learned: the two determine each other one-to-one in
    the training table (see :mod:`tabgen.pairs`)."""
    derived_pairs: list[list[Any]] | None = None
    """``[parent value, own value]`` for each value of ``derived_from`` (numbers as learned, categories
    as listed, ``None`` for missing)."""
    grouped: list[list[Any]] | None = None
    """``[category, rows]`` of the categories learned as one group (see ``MAX_LEARNED_CATEGORIES``);
    a generated row of the group gets one of them, drawn by their shares. ``None``: none is grouped."""

    @property
    def has_missing(self) -> bool:
        return self.missing_rate > 0

    @property
    def is_constant(self) -> bool:
        if self.kind == "categorical":
            return len(self.categories or []) == 1
        return self.kind == "numerical" and self.min == self.max

    def describe(self) -> str:
        """One line for a person: kind, dtype, range or categories, and flags."""
        if self.kind == "id":
            detail = f"not modelled: fresh values such as {self.id_format.example()!r}"
        elif self.kind == "categorical":
            n = len(self.categories or [])
            detail = f"constant {self.categories[0]!r}" if n == 1 else f"{n} categories"
            if self.grouped:
                detail += f" ({n - len(self.grouped)} most frequent learned, {len(self.grouped):,} as one group)"
        elif self.datetime_unit is not None:
            low, high = numbers_to_datetimes(np.array([self.min, self.max]), self.datetime_unit, None, "datetime64[us]")
            show = (lambda t: str(t.date())) if self.datetime_unit == "D" else str
            written = f" as text {self.datetime_format!r}" if self.datetime_format else ""
            zone = " UTC" if getattr(pd.api.types.pandas_dtype(self.dtype), "tz", None) else ""  # zoned: counted in UTC
            detail = f"datetime [{show(low)}, {show(high)}]{zone}{written}"
        elif self.is_constant:
            detail = f"constant {self.min:g}"
        else:
            detail = f"[{self.min:g}, {self.max:g}]{' integer' if self.is_integer else ''}"
        missing = f", {100 * self.missing_rate:.1f}% missing" if self.has_missing else ""
        written = f"; written from {self.derived_from!r}, one-to-one" if self.derived_from else ""
        return f"{self.name}: {self.kind} ({self.dtype}) {detail}{missing}{written}"


@dataclass
class Schema:
    """The columns of a table, in order."""

    columns: list[ColumnSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def numerical(self) -> list[ColumnSpec]:
        """Numerical columns the model learns (not those written from another column)."""
        return [c for c in self.columns if c.kind == "numerical" and c.derived_from is None]

    @property
    def categorical(self) -> list[ColumnSpec]:
        """Categorical columns the model learns (not those written from another column)."""
        return [c for c in self.columns if c.kind == "categorical" and c.derived_from is None]

    @property
    def derived(self) -> list[ColumnSpec]:
        """Columns written from another one they pair with one-to-one, not learned."""
        return [c for c in self.columns if c.derived_from is not None]

    @property
    def identifiers(self) -> list[ColumnSpec]:
        """Columns left out of the model and regenerated as fresh unique values."""
        return [c for c in self.columns if c.kind == "id"]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Schema":
        # Fields added later have defaults, so model files written before them still load.
        columns = []
        for c in data["columns"]:
            c = dict(c)
            if c.get("id_format") is not None:
                c["id_format"] = IdFormat(**c["id_format"])
            columns.append(ColumnSpec(**c))
        return cls(columns)

    def __str__(self) -> str:
        return "\n".join(f"  {c.describe()}" for c in self.columns)


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


def _default_kind(series: pd.Series, observed: pd.Series, temporal: bool) -> Kind:
    if temporal:
        # A handful of dates (snapshots, report days) is reproduced exactly as categories.
        few = observed.nunique() <= MAX_INTEGER_LEVELS_AS_CATEGORICAL
        return "categorical" if few else "numerical"
    if looks_like_identifier(series, observed):
        return "id"
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
    refuse_duplicate_columns(df)
    empty = [str(c) for c in df.columns if df[c].isna().all()]
    if empty:
        raise TabgenError(
            f"column(s) {empty} are entirely empty: drop them, there is nothing to learn from them"
        )
    return df


def refuse_duplicate_columns(df: pd.DataFrame, where: str = "") -> None:
    """Column names (as text) must be unique; ``where`` names the table in the message."""
    names = pd.Index([str(c) for c in df.columns])
    duplicated = names[names.duplicated()].unique().tolist()
    if duplicated:
        raise TabgenError(f"duplicate column names{where}: {duplicated}; rename them so each is unique")


def infer_schema(
    df: pd.DataFrame,
    categorical: Iterable[str] = (),
    numerical: Iterable[str] = (),
    identifiers: Iterable[str] = (),
) -> Schema:
    """Infer each column's kind, with the user's overrides taking precedence.

    A column detected as an identifier (integer or text, nearly every value distinct) becomes kind
    ``id`` with a :class:`TabgenWarning`; naming it in ``categorical`` models it instead.
    """
    df = validate_frame(df)
    overrides = {"categorical": set(categorical), "numerical": set(numerical), "id": set(identifiers)}
    named = [name for names in overrides.values() for name in names]
    for name in named:
        if name not in df.columns:
            raise TabgenError(
                f"column {name!r} named as an override is not in the table; columns are {list(map(str, df.columns))}"
            )
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:
        raise TabgenError(f"column(s) {twice} are named in more than one of categorical, numerical and identifiers")

    columns = []
    for name in df.columns:
        series = df[name]
        observed = series.dropna()
        forced = next((kind for kind, names in overrides.items() if name in names), None)
        fmt = text_datetime_format(observed) if forced in (None, "numerical") else None
        temporal = fmt is not None or is_datetime_dtype(series)
        kind: Kind = forced or _default_kind(series, observed, temporal)
        spec = _describe(str(name), series, observed, kind, fmt, temporal)
        if kind == "id" and forced is None:
            warnings.warn(
                f"column {spec.name!r} looks like an identifier ({observed.nunique():,} distinct values in "
                f"{len(observed):,}): a model cannot learn an identifier, and as a category it would only "
                f"reproduce the values it saw. tabgen leaves it out of the model and writes fresh unique "
                f"values such as {spec.id_format.example()!r}; name it categorical to model it anyway.",
                TabgenWarning,
                stacklevel=2,
            )
        columns.append(spec)
    return Schema(columns)


def infer_with_kinds(df: pd.DataFrame, schema: Schema) -> Schema:
    """``df``'s schema, each column of the kind ``schema`` gives it."""
    kinds = {kind: [c.name for c in schema.columns if c.kind == kind] for kind in ("categorical", "numerical", "id")}
    return infer_schema(df, kinds["categorical"], kinds["numerical"], kinds["id"])


def _describe(
    name: str, series: pd.Series, observed: pd.Series, kind: Kind, fmt: str | None, temporal: bool
) -> ColumnSpec:
    spec = ColumnSpec(
        name=name,
        kind=kind,
        dtype=str(series.dtype),
        missing_rate=float(series.isna().mean()),
    )
    if kind == "categorical":
        spec.categories = sorted({json_scalar(v) for v in observed.unique()}, key=lambda v: (str(type(v)), v))
        if len(spec.categories) > MAX_LEARNED_CATEGORIES:
            spec.grouped = _rare_categories(name, observed)
        return spec
    if kind == "id":
        spec.id_format = learn_format(name, observed)
        spec.is_integer = spec.id_format.style == "integer"
        return spec
    if temporal:
        spec.datetime_unit = datetime_unit(observed, fmt, name)
        spec.datetime_format = fmt
    values = as_numbers(observed, spec)
    infinite = int(np.isinf(values).sum())
    if infinite:
        raise TabgenError(
            f"column {name!r} holds {infinite:,} infinite value(s) (inf or -inf), which tabgen does not learn: "
            f"replace them with a number, or leave those cells empty (df[{name!r}].replace([np.inf, -np.inf], np.nan)) "
            "to have them learned as missing"
        )
    spec.is_integer = _is_integer_valued(pd.Series(values))
    spec.min, spec.max = float(values.min()), float(values.max())
    spec.decimals = written_decimals(values)
    return spec


def _rare_categories(name: str, observed: pd.Series) -> list[list[Any]]:
    """``[category, rows]`` of all but the ``MAX_LEARNED_CATEGORIES - 1`` most frequent, with a warning."""
    counts = observed.map(json_scalar).value_counts(sort=True)
    rare = counts.iloc[MAX_LEARNED_CATEGORIES - 1:]
    warnings.warn(
        f"column {name!r} has {len(counts):,} categories: tabgen learns the {MAX_LEARNED_CATEGORIES - 1:,} most frequent "
        f"one by one and the other {len(rare):,} ({100 * rare.sum() / len(observed):.1f} % of rows) as one group, "
        "whose rows get one of them by their shares in the table",
        TabgenWarning,
        stacklevel=4,
    )
    return [[value, int(rows)] for value, rows in rare.items()]


#: Quantiles through which the transform learns a numerical column off its grid.
QUANTILES = 1000


def quantile_count(values: int, rare_rows: int = 0) -> int:
    """How many quantiles learn a column of ``values`` present values, each standing for ``rare_rows``
    rows or more (:func:`tabgen.protection.protected_numbers`)."""
    return max(2, min(QUANTILES, values // max(rare_rows, 1)))


def quantile_ranks(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Where ``values`` lie among evenly spaced ``quantiles``, in [0, 1]. Averaging the interpolation from
    both ends puts a repeated value (a spike such as capital.gain = 0) in the middle of its quantile range
    rather than at one edge."""
    ref = np.linspace(0, 1, len(quantiles))
    return 0.5 * (np.interp(values, quantiles, ref) - np.interp(-values, -quantiles[::-1], -ref[::-1]))


def on_grid(distinct: int, rows: int) -> bool:
    """Whether a numerical column of ``distinct`` values in ``rows`` present rows is learned on its grid
    of values (the transform), so that it is generated on them, granularity included (the rules)."""
    return 2 <= distinct <= GRID_MAX_VALUES and 2 * distinct <= rows


def as_numbers(series: pd.Series, spec: ColumnSpec) -> np.ndarray:
    """A numerical column's values as float64, NaN where missing (datetimes as counts of their unit)."""
    if spec.datetime_unit is not None:
        return datetimes_to_numbers(series, spec.datetime_unit, spec.datetime_format, spec.name)
    numbers = pd.to_numeric(series, errors="coerce")
    bad = series[numbers.isna() & series.notna()]
    if len(bad):
        raise TabgenError(
            f"column {spec.name!r} was asked to be numerical but holds text such as {bad.iloc[0]!r}; "
            "mark it categorical or clean it"
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def from_numbers(values: np.ndarray, spec: ColumnSpec) -> pd.Series:
    """The inverse of :func:`as_numbers`: a column in the dtype (or date format) it was fitted with."""
    if spec.datetime_unit is not None:
        return numbers_to_datetimes(values, spec.datetime_unit, spec.datetime_format, spec.dtype)
    return restore_dtype(pd.Series(values), spec)


def written_decimals(values: np.ndarray) -> int | None:
    """The decimals ``values`` (finite) are written with; ``None`` beyond ``MAX_DECIMALS``."""
    with np.errstate(over="ignore", invalid="ignore"):  # beyond ~1e302, scaling overflows: no fixed decimals
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

"""Bring the tables to one canonical form before any metric sees them.

Every metric reads frames produced here: the schema's columns in its order, numericals as float64,
categoricals as Python strings (object dtype) with missing values kept as NaN. Without this, a frame
with ``Int64``/``string``/``category`` dtypes and the same frame read back from CSV score
differently, because sdmetrics and scikit-learn read pandas extension dtypes their own way.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ..errors import TabgenError
from ..schema import Schema, as_numbers, infer_schema


def resolve_schema(real: pd.DataFrame, schema: Schema | None) -> Schema:
    """The user's schema, or one inferred from the real table, without its identifier columns:
    synthetic identifiers are fresh by design, so comparing them with the real ones measures nothing.
    Columns a model writes from another are scored like any other."""
    schema = schema if schema is not None else infer_schema(real)
    return Schema([replace(spec, derived_from=None, derived_pairs=None) for spec in schema.columns if spec.kind != "id"])


def normalise(df: pd.DataFrame, schema: Schema, label: str) -> pd.DataFrame:
    """The schema's columns of ``df`` in canonical dtypes; ``label`` names the table in errors."""
    if not isinstance(df, pd.DataFrame):
        raise TabgenError(f"the {label} table must be a pandas DataFrame, got {type(df).__name__}")
    df = df.reset_index(drop=True)  # a sampled or filtered frame must not realign on its old labels
    df = df.rename(columns=str)  # the schema names columns by their text, as validate_frame does
    missing = [name for name in schema.names if name not in df.columns]
    if missing:
        raise TabgenError(f"the {label} table lacks column(s) {missing} that the real table has")
    if len(df) == 0:
        raise TabgenError(f"the {label} table has no rows")
    columns = {}
    for spec in schema.columns:
        values = df[spec.name]
        if spec.datetime_unit is not None:  # dates compare as the counts tabgen learned them as
            columns[spec.name] = pd.Series(as_numbers(values, spec))
        elif spec.kind == "numerical":
            columns[spec.name] = _as_float(values, spec.name, label)
        else:
            columns[spec.name] = _as_text(values)
    return pd.DataFrame(columns)


def _as_float(values: pd.Series, name: str, label: str) -> pd.Series:
    if ptypes.is_bool_dtype(values):
        values = values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    if len(bad):
        raise TabgenError(
            f"column {name!r} of the {label} table should be numerical but holds text such as {bad.iloc[0]!r}"
        )
    return numbers.astype("float64")


def category_text(value: Any) -> str:
    """One spelling per category, whatever dtype carried it.

    An integer code read from CSV next to a missing value becomes ``1.0``; written as ``1`` it
    matches the same code held in an ``Int64`` column.
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _as_text(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    observed = values[values.notna()]
    spelling = {v: category_text(v) for v in pd.unique(observed)}
    text = values.map(spelling, na_action="ignore")
    # map leaves missing cells as whatever NA they were (pd.NA, None); one NaN for all.
    return text.where(values.notna(), np.nan).astype(object)


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """A random stream for one purpose, independent of every other purpose and of call order.

    Drawing the detection rows and the detection folds from separate streams is what keeps the
    folds from inheriting the order of a sorted table.
    """
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def seed_for(seed: int, purpose: str) -> int:
    """An integer seed for libraries that take one (scikit-learn, xgboost)."""
    return int(rng_for(seed, purpose).integers(2**31 - 1))


def subsample(df: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows drawn without replacement, in random order, index reset."""
    if n is None or n >= len(df):
        order = rng.permutation(len(df))
    else:
        order = rng.choice(len(df), size=n, replace=False)
    return df.iloc[order].reset_index(drop=True)

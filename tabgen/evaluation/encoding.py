"""Turn canonical frames (see :mod:`.prepare`) into the numeric matrices the models and distances need.

Two encodings, both scikit-learn transformers so that cross-validation refits them per fold:

* :func:`one_hot_encoder` — numerics imputed with the mean, a missing-indicator beside each numeric
  column that has gaps, then scaled; categoricals one-hot with "missing" as a category of its own.
  For logistic regression, α-precision/β-recall and distances.
* :func:`tree_encoder` — numerics passed through with NaN (gradient-boosted trees route missing
  values themselves), categoricals as integer codes. Compact, so xgboost stays fast on wide tables.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
)

from ..schema import Schema

Scaling = Literal["minmax", "quantile"]

MISSING_CATEGORY = "\x00missing"

#: One-hot columns per categorical at most; rarer levels share one "infrequent" column, so an
#: identifier-like column cannot blow the matrix up to rows x rows.
MAX_ONE_HOT_LEVELS = 100


def columns_with_missing(schema: Schema, *frames: pd.DataFrame) -> list[str]:
    """Numerical columns with a gap in any of the frames: these get a missing-indicator."""
    return [
        spec.name for spec in schema.numerical if any(frame[spec.name].isna().any() for frame in frames)
    ]


def _scaler(scaling: Scaling, n_rows: int):
    if scaling == "minmax":
        return MinMaxScaler()
    # Heavy tails (incomes, counts) would otherwise dominate a linear model's view of the column.
    return QuantileTransformer(n_quantiles=max(2, min(1000, n_rows)), output_distribution="normal")


def _fill_missing_category(x):
    # OneHotEncoder/OrdinalEncoder want one type per column; NaN beside strings is not that.
    return pd.DataFrame(x).fillna(MISSING_CATEGORY).astype(str)


def _times(x, factor: float):
    return x * factor


def one_hot_encoder(
    schema: Schema,
    scaling: Scaling,
    indicate_missing: list[str],
    n_rows: int,
    exclude: tuple[str, ...] = (),
    category_weight: float = 1.0,
) -> ColumnTransformer:
    """Numerics scaled (plus missing-indicators for ``indicate_missing``), categoricals one-hot.

    ``category_weight`` scales the one-hot block: 0.5 makes a category mismatch cost 1 in an L1
    distance, the same as a numeric difference of a whole range under min-max scaling.
    """
    numerical = [s.name for s in schema.numerical if s.name not in exclude]
    categorical = [s.name for s in schema.categorical if s.name not in exclude]
    indicate_missing = [name for name in indicate_missing if name in numerical]
    parts = []
    if numerical:
        imputer = SimpleImputer(strategy="mean", keep_empty_features=True)
        parts.append(("numerical", make_pipeline(imputer, _scaler(scaling, n_rows)), numerical))
    if indicate_missing:
        parts.append(("missing", MissingIndicator(features="all"), indicate_missing))
    if categorical:
        one_hot = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT_LEVELS, sparse_output=False
        )
        weight = FunctionTransformer(_times, kw_args={"factor": category_weight})
        fill = FunctionTransformer(_fill_missing_category)
        parts.append(("categorical", make_pipeline(fill, one_hot, weight), categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def tree_encoder(schema: Schema, exclude: tuple[str, ...] = ()) -> ColumnTransformer:
    """Numerics as they are (NaN included), categoricals as integer codes (-1 for unseen levels)."""
    numerical = [s.name for s in schema.numerical if s.name not in exclude]
    categorical = [s.name for s in schema.categorical if s.name not in exclude]
    parts = []
    if numerical:
        parts.append(("numerical", "passthrough", numerical))
    if categorical:
        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64)
        fill = FunctionTransformer(_fill_missing_category)
        parts.append(("categorical", make_pipeline(fill, codes), categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0)

"""Shape and Trend errors: TabSyn's column-wise and pair-wise density errors, with sdmetrics' metrics.

Shape error = 100·(1 − mean column score): the KS complement of a numerical column, the
total-variation complement of a categorical one — exactly the "Column Shapes" property of
sdmetrics' ``QualityReport``.

Trend error = 100·(1 − mean pair score) over ALL column pairs, as TabSyn averaged them:
``CorrelationSimilarity`` (1 − |Pearson r real − r synthetic| / 2) for two numerical columns,
``ContingencySimilarity`` (total-variation complement of the joint frequency table) otherwise, with
a numerical column cut into 10 bins. This is the "Column Pair Trends" property with one correction:
sdmetrics 0.32's ``QualityReport`` bins the real and the synthetic column each on its own range, so
one outlier in either table moves every bin edge and a fresh sample from the real distribution
scores a Trend error of several percent. We bin both on the real column's edges (open-ended at
both sides), as sdmetrics' ``ContingencySimilarity`` itself does. Where the two tables share each
numerical column's range the two definitions agree (up to the report putting the rows at a
column's maximum in a bin of their own; a test pins that). We also keep every
pair in the average, whereas ``QualityReport`` 0.32 by default averages only pairs with a strong
real association.

Missing values are ignored by these metrics, as sdmetrics defines them, except in contingency
tables, where "missing" is a category of its own.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
from sdmetrics.single_column import KSComplement, TVComplement

from ..schema import Schema

#: Bins of a numerical column when paired with a categorical one (sdmetrics' default).
TREND_BINS = 10


@dataclass
class Fidelity:
    shape_error: float | None
    trend_error: float | None
    column_shapes: dict[str, float]
    pair_trends: list[dict]
    failures: list[str]


def sdmetrics_metadata(schema: Schema) -> dict:
    """sdmetrics' single-table metadata: each column's sdtype from tabgen's kind."""
    return {"columns": {spec.name: {"sdtype": spec.kind} for spec in schema.columns}}


def column_shape(real: pd.Series, synthetic: pd.Series, kind: str) -> float:
    metric = KSComplement if kind == "numerical" else TVComplement
    return float(metric.compute(real, synthetic))


def pair_trend(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: tuple[str, str]) -> tuple[str, float]:
    """(metric name, score) for the two columns of ``real``/``synthetic``."""
    if kinds == ("numerical", "numerical"):
        return "CorrelationSimilarity", float(CorrelationSimilarity.compute(real, synthetic))
    continuous = [name for name, kind in zip(real.columns, kinds) if kind == "numerical"]
    score = ContingencySimilarity.compute(
        real, synthetic, continuous_column_names=continuous or None, num_discrete_bins=TREND_BINS
    )
    return "ContingencySimilarity", float(score)


def shape_and_trend(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> Fidelity:
    """Shape and Trend errors (percent) of canonical frames; subsample them beforehand for speed."""
    failures: dict[str, list[str]] = {}  # message -> what failed with it, so one cause is one note
    # sdmetrics gives no score (or NaN) for a synthetic column without values, which would drop it
    # from the averages and flatter the generator; it reproduced nothing, so it scores 0.
    empty = [spec.name for spec in schema.columns if synthetic[spec.name].isna().all()]

    column_shapes = {}
    for spec in schema.columns:
        if spec.name in empty:
            column_shapes[spec.name] = 0.0
            continue
        try:
            with warnings.catch_warnings():
                # scipy's KS falls back from its exact to its asymptotic p-value; we use the statistic only.
                warnings.simplefilter("ignore", RuntimeWarning)
                column_shapes[spec.name] = column_shape(real[spec.name], synthetic[spec.name], spec.kind)
        except Exception as error:  # sdmetrics reports a column it cannot score; so do we
            column_shapes[spec.name] = float("nan")
            failures.setdefault(f"{type(error).__name__}: {error}", []).append(f"shape of {spec.name!r}")

    pair_trends = []
    for first, second in itertools.combinations(schema.columns, 2):
        names = [first.name, second.name]
        kinds = (first.kind, second.kind)
        metric = "CorrelationSimilarity" if kinds == ("numerical", "numerical") else "ContingencySimilarity"
        if metric == "CorrelationSimilarity" and (first.name in empty or second.name in empty):
            score = 0.0
        else:
            try:
                with warnings.catch_warnings():
                    # sdmetrics bins by assigning into a slice of its own copy; harmless, and noisy.
                    warnings.simplefilter("ignore")
                    metric, score = pair_trend(real[names], synthetic[names], kinds)
            except Exception as error:  # e.g. a constant column has no correlation
                score = float("nan")
                failures.setdefault(f"{type(error).__name__}: {error}", []).append(
                    f"trend of {first.name!r}–{second.name!r}"
                )
        pair_trends.append({"column_1": first.name, "column_2": second.name, "metric": metric, "score": score})

    return Fidelity(
        shape_error=_error(list(column_shapes.values())),
        trend_error=_error([pair["score"] for pair in pair_trends]),
        column_shapes=column_shapes,
        pair_trends=pair_trends,
        failures=([f"synthetic column(s) {empty} hold no values: their shape and correlation scores count as 0"]
                  if empty else []) + [f"{_listing(what)}: {message}" for message, what in failures.items()],
    )


def _listing(items: list[str], shown: int = 4) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _error(scores: list[float]) -> float | None:
    finite = [s for s in scores if np.isfinite(s)]
    return 100 * (1 - float(np.mean(finite))) if finite else None

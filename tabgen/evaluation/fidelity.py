"""Shape and Trend errors: TabSyn's column-wise and pair-wise density errors, with sdmetrics' metrics.

Shape error = 100·(1 − "Column Shapes") and Trend error = 100·(1 − "Column Pair Trends") of
sdmetrics' ``QualityReport``, exactly as TabSyn computes them, so the figures compare with published
tables (on adult, real held-out rows score 0.61 % and 1.36 %). Column Shapes is the KS complement
of a numerical column and the total-variation complement of a categorical one. Column Pair Trends
averages ``CorrelationSimilarity`` / ``ContingencySimilarity`` over the pairs whose real
association passes sdmetrics' threshold.

For diagnosis (the report's heat map, the worst pairs), ``pair_trends`` scores *every* pair, binning a
numerical column on the real column's edges for both tables: the report bins each table on its own
range, which makes per-pair scores jump with a single outlier.

The report's own binning has a known artifact: a numerical column is cut on each table's own range,
so a synthetic column whose extremes differ from the real ones loses Trend even with the right
relations. tabgen keeps generated numbers inside the observed range, which limits this.

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
from sdmetrics.reports import QualityReport
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

    shape_error, trend_error = _quality_report(real, synthetic, schema)
    return Fidelity(
        shape_error=shape_error,
        trend_error=trend_error,
        column_shapes=column_shapes,
        pair_trends=pair_trends,
        failures=([f"synthetic column(s) {empty} hold no values: their shape and correlation scores count as 0"]
                  if empty else []) + [f"{_listing(what)}: {message}" for message, what in failures.items()],
    )


def _quality_report(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> tuple[float | None, float | None]:
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({"t": real[schema.names]}, {"t": synthetic[schema.names]},
                        {"tables": {"t": sdmetrics_metadata(schema)}}, verbose=False)
    scores = report.get_properties().set_index("Property")["Score"]
    return _error([scores["Column Shapes"]]), _error([scores["Column Pair Trends"]])


def _listing(items: list[str], shown: int = 4) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _error(scores: list[float]) -> float | None:
    finite = [s for s in scores if np.isfinite(s)]
    return 100 * (1 - float(np.mean(finite))) if finite else None

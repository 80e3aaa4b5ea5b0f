"""``evaluate``: every metric of the package on one synthetic table, in one call."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..errors import TabgenError
from ..schema import Schema, infer_schema
from .alpha_precision import alpha_precision
from .detection import N_FOLDS, Classifier, detect
from .fidelity import shape_and_trend
from .ml_efficiency import ml_efficiency
from .prepare import normalise, resolve_schema, rng_for, subsample
from .privacy import dcr_overfitting_protection, dcr_share, exact_copy_rate, membership_inference
from .result import EvaluationResult
from .rules_kept import rules_kept

#: Shape and Trend read whole tables up to this size whatever ``max_rows`` says: they are cheap per
#: row, and subsampling inflates them (adult's real-data floor is 0.61 % / 1.36 % on the whole tables,
#: 0.99 % / 2.48 % on 10,000 rows of each).
FIDELITY_MIN_ROWS = 100_000

#: C2ST reads whole tables up to this size whatever ``max_rows`` says: a sample flatters it (the same
#: synthetic adult rows score 0.888 on 10,000 rows of each table, 0.822 on all 32,561).
DETECTION_MIN_ROWS = 100_000

METRICS = ("fidelity", "detection", "alpha_precision", "ml_efficiency", "privacy", "rules")

#: Threads for numpy/scikit-learn's BLAS while the metrics run. The matrices are small; on a machine
#: where other work competes for the cores, threaded BLAS oversubscribes them and made the logistic
#: detector 30 times slower in our measurements, while one thread loses little on an idle machine.
BLAS_THREADS = 1


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    schema: Schema | None = None,
    *,
    seed: int = 0,
    max_rows: int | None = 10_000,
    metrics: Iterable[str] | None = None,
    floor: bool | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Score ``synthetic`` against ``real`` (the table the generator was fitted on).

    Args:
        real: the training table.
        synthetic: the generated table; columns beyond the schema's are ignored.
        holdout: real rows the generator never saw; needed for ML efficiency and the DCR metrics.
        target: column to predict for ML efficiency (classification if categorical, else regression).
        schema: column kinds; inferred from ``real`` when not given.
        seed: makes every sample, fold and model reproducible.
        max_rows: each metric draws at most this many rows from each table (None: all rows), which
            keeps the nearest-neighbour metrics fast. Shape and Trend read up to
            :data:`FIDELITY_MIN_ROWS` rows regardless, the C2ST detectors up to
            :data:`DETECTION_MIN_ROWS`; ML efficiency and the exact-copy rate use whole tables;
            sdmetrics' DCR overfitting protection, being slow, at most ``privacy.SDMETRICS_DCR_ROWS``.
            With a holdout, Shape, Trend and C2ST are also scored against it (``against_holdout``).
        metrics: the groups to compute, from :data:`METRICS`; all by default.
        floor: also score the holdout in place of the synthetic table (fidelity, detection,
            α-precision/β-recall): the values real data itself reaches. ``None``: when there is a holdout.
        progress: show a progress bar on stderr.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TabgenError(f"seed must be a non-negative integer, got {seed!r}")
    given_schema, schema = schema, resolve_schema(real, schema)
    wanted = _wanted_metrics(metrics)
    if target is not None and target not in schema.names:
        raise TabgenError(f"target column {target!r} is not in the real table; columns are {schema.names}")
    run = _Run(
        real=normalise(real, schema, "real"),
        synthetic=normalise(synthetic, schema, "synthetic"),
        holdout=normalise(holdout, schema, "holdout") if holdout is not None else None,
        schema=schema, target=target, seed=seed, max_rows=max_rows,
    )

    result = _new_result(run, synthetic, wanted, {str(c) for c in real.columns})
    result.rules = _rules(real, synthetic, holdout, given_schema) if "rules" in wanted else []
    steps = _steps(run, result, wanted, run.holdout is not None if floor is None else floor)
    with threadpool_limits(limits=BLAS_THREADS), \
            tqdm(steps, desc="evaluating", file=sys.stderr, disable=not progress, leave=False) as bar:
        for label, step in bar:
            bar.set_postfix_str(label)
            step(run, result)
    return result


def _steps(run: "_Run", result: EvaluationResult, wanted: set[str], floor: bool) -> list[tuple[str, Callable]]:
    """(progress label, step) of each metric asked for, then the scores against the holdout and the floor."""
    steps = [(label, step) for group, label, step in _STEPS if group in wanted]
    if run.holdout is not None and wanted & {"fidelity", "detection"}:
        steps.append(("against the holdout", partial(_against_holdout, wanted=wanted)))
    if floor and run.holdout is None:
        result.notes.append("real-data floor not computed: it needs a holdout table")
    elif floor:
        steps.append(("real-data floor", partial(_floor, wanted=wanted)))
    return steps


def _rules(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None, schema: Schema | None) -> list[dict]:
    """On the tables as given, not as the other metrics normalise them: rules compare values as a fit reads them."""
    real, synthetic = real.rename(columns=str), synthetic.rename(columns=str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rules_kept(real, synthetic, None if holdout is None else holdout.rename(columns=str),
                          schema or infer_schema(real))


def _new_result(run: "_Run", synthetic: pd.DataFrame, wanted: set[str], real_columns: set[str]) -> EvaluationResult:
    """The result before any metric: the tables' sizes, and notes on what is left out."""
    result = EvaluationResult(seed=run.seed, max_rows=run.max_rows)
    result.rows = {"real": len(run.real), "synthetic": len(run.synthetic)}
    if run.holdout is not None:
        result.rows["holdout"] = len(run.holdout)
    extra = [str(c) for c in synthetic.columns if str(c) not in real_columns]
    if extra:
        result.notes.append(f"synthetic column(s) {extra} are not in the real table and were ignored")
    identifiers = [str(c) for c in synthetic.columns if str(c) in real_columns and str(c) not in run.schema.names]
    if identifiers:  # fresh by design (resolve_schema): comparing them measures nothing
        result.notes.append(f"identifier column(s) {identifiers} were not compared")
    skipped = [name for name in METRICS if name not in wanted]
    if skipped:
        result.notes.append(f"not computed, as asked: {', '.join(skipped)}")
    return result


@dataclass(frozen=True)
class _Run:
    """The canonical tables and settings every metric step reads."""

    real: pd.DataFrame
    synthetic: pd.DataFrame
    holdout: pd.DataFrame | None
    schema: Schema
    target: str | None
    seed: int
    max_rows: int | None


def _wanted_metrics(metrics: Iterable[str] | None) -> set[str]:
    if metrics is None:
        return set(METRICS)
    wanted = set(metrics)
    unknown = sorted(wanted - set(METRICS))
    if unknown:
        raise TabgenError(f"unknown metric group(s) {unknown}; choose from {list(METRICS)}")
    return wanted


def _fidelity(run: _Run, result: EvaluationResult) -> None:
    rows = rng_for(run.seed, "fidelity.rows")
    cap = None if run.max_rows is None else max(run.max_rows, FIDELITY_MIN_ROWS)
    fidelity = shape_and_trend(subsample(run.real, cap, rows), subsample(run.synthetic, cap, rows), run.schema)
    result.shape_error, result.trend_error = fidelity.shape_error, fidelity.trend_error
    result.column_shapes, result.pair_trends = fidelity.column_shapes, fidelity.pair_trends
    result.notes += [f"Shape/Trend: {failure}" for failure in fidelity.failures]
    if result.trend_error is None:
        result.notes.append("Trend error not computed: it needs at least two columns")


def _detection(run: _Run, result: EvaluationResult, classifier: Classifier) -> None:
    if min(len(run.real), len(run.synthetic)) < N_FOLDS:
        result.notes.append(f"C2ST ({classifier}) not computed: it needs at least {N_FOLDS} rows in each table")
        return
    cap = None if run.max_rows is None else max(run.max_rows, DETECTION_MIN_ROWS)
    detection = detect(run.real, run.synthetic, run.schema, classifier, run.seed, cap)
    setattr(result, f"c2st_{classifier}", detection)
    if detection.warning:
        result.notes.append(detection.warning)


def _alpha_precision(run: _Run, result: EvaluationResult) -> None:
    if min(len(run.real), len(run.synthetic)) < 2:
        result.notes.append("α-precision/β-recall not computed: they need at least two rows in each table")
        return
    scores = alpha_precision(run.real, run.synthetic, run.schema, run.seed, run.max_rows)
    result.alpha_precision, result.beta_recall = scores.alpha_precision, scores.beta_recall


def _ml_efficiency(run: _Run, result: EvaluationResult) -> None:
    absent = [what for what, value in (("a target column", run.target), ("a holdout table", run.holdout))
              if value is None]
    if absent:
        result.notes.append(f"ML efficiency not computed: it needs {' and '.join(absent)}")
        return
    outcome = ml_efficiency(run.real, run.synthetic, run.holdout, run.target, run.schema, run.seed)
    if isinstance(outcome, str):
        result.notes.append(outcome)
        return
    result.ml_efficiency = outcome
    result.notes += outcome.notes


def _privacy(run: _Run, result: EvaluationResult) -> None:
    result.exact_copy_rate = exact_copy_rate(run.synthetic, run.real)
    if run.holdout is None:
        result.notes.append("DCR share and DCR overfitting protection not computed: they need a holdout table")
        return
    result.holdout_copy_rate = exact_copy_rate(run.holdout, run.real)
    result.dcr_share = dcr_share(run.real, run.synthetic, run.holdout, run.schema, run.seed, run.max_rows).share
    result.dcr_overfitting_protection = dcr_overfitting_protection(
        run.real, run.synthetic, run.holdout, run.schema, run.seed
    )
    attack = membership_inference(run.real, run.synthetic, run.holdout, run.schema, run.seed, run.max_rows)
    if attack is None:
        result.notes.append("membership inference not scored: the holdout has too few rows")
    else:
        result.membership_auc, result.rows["membership candidates"] = attack.auc, attack.candidates


#: (group in METRICS, progress label, step), in the order they run.
_STEPS = [
    ("fidelity", "shape & trend", _fidelity),
    ("detection", "C2ST logistic", partial(_detection, classifier="logistic")),
    ("detection", "C2ST xgboost", partial(_detection, classifier="xgboost")),
    ("alpha_precision", "α-precision/β-recall", _alpha_precision),
    ("ml_efficiency", "ML efficiency", _ml_efficiency),
    ("privacy", "privacy", _privacy),
]


def _against_holdout(run: _Run, result: EvaluationResult, wanted: set[str]) -> None:
    """The synthetic table scored against the holdout in place of the training table: rows that
    copy or hug the training table score worse here than against it."""
    result.against_holdout = _rescored(replace(run, real=run.holdout), result, wanted, ("fidelity", "detection"),
                                       "against the holdout")


def _floor(run: _Run, result: EvaluationResult, wanted: set[str]) -> None:
    """The holdout scored as if it were synthetic: the best a generator can hope for at this size."""
    # Scores that compare distributions, and so have a meaning for the holdout in place of the synthetic table.
    result.floor = _rescored(replace(run, synthetic=run.holdout), result, wanted,
                             ("fidelity", "detection", "alpha_precision"), "real-data floor")


def _rescored(run: _Run, result: EvaluationResult, wanted: set[str], groups: tuple[str, ...],
              label: str) -> dict[str, float | None]:
    """The headline scores of ``groups`` on another pair of tables; their notes go to ``result``'s."""
    scores = EvaluationResult(seed=run.seed)
    for group, _, step in _STEPS:
        if group in wanted and group in groups:
            step(run, scores)
    result.notes += [f"{label}: {note}" for note in scores.notes]
    keys = [key for group in groups for key in _HEADLINE_KEYS[group]]
    return {key: scores.headline()[key] for key in keys}


_HEADLINE_KEYS = {"fidelity": ("shape_error", "trend_error"), "detection": ("c2st_logistic", "c2st_xgboost"),
                  "alpha_precision": ("alpha_precision", "beta_recall")}

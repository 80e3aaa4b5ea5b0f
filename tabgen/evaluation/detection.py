"""Detection (C2ST): can a classifier tell real rows from synthetic ones?

Balanced samples of both tables (the larger cut to the smaller, both capped), labelled real = 0 /
synthetic = 1, 5-fold cross-validated ROC AUC. Score = 1 − 2·max(AUC − 0.5, 0): 1 when the classifier
does no better than chance, 0 when it separates the tables perfectly. (sdmetrics' LogisticDetection,
which TabSyn ran, uses 3 folds and clips each fold's AUC at 0.5 before averaging; clipping the mean
instead keeps a systematically wrong classifier visible.)

Rows and folds come from independent random streams: tables often arrive sorted, and folds cut from
a sorted table test the classifier on a region it never trained on, which says nothing about the
synthetic data. An AUC well below 0.5 does not come from honest folds, so it is reported (``auc``
beside the score, a warning, a note in the result), not silently turned into a perfect score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from xgboost import XGBClassifier

from ..schema import Schema
from .encoding import columns_with_missing, one_hot_encoder, tree_encoder
from .prepare import rng_for, seed_for, subsample

Classifier = Literal["logistic", "xgboost"]

N_FOLDS = 5
#: A cross-validated AUC this far below chance is not chance: copied rows, or a broken evaluation.
SUSPICIOUS_AUC = 0.4
#: One thread: the models are small, and on a shared or busy machine extra threads oversubscribe
#: the cores and make each fit several times slower, not faster.
XGBOOST_THREADS = 1


@dataclass
class Detection:
    classifier: str
    score: float
    auc: float
    fold_aucs: list[float]
    rows_per_table: int
    warning: str | None = None


def detection_score(auc: float) -> float:
    """1 − 2·max(AUC − 0.5, 0)."""
    return 1.0 - 2.0 * max(auc - 0.5, 0.0)


def _classifier(kind: Classifier, schema: Schema, indicate_missing: list[str], n_rows: int, seed: int):
    if kind == "logistic":
        encoder = one_hot_encoder(schema, "quantile", indicate_missing, n_rows)
        return make_pipeline(encoder, LogisticRegression(max_iter=2000))
    if kind != "xgboost":
        raise ValueError(f"unknown classifier {kind!r}; choose 'logistic' or 'xgboost'")
    model = XGBClassifier(
        n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist",
        n_jobs=XGBOOST_THREADS, random_state=seed, verbosity=0,
    )
    return make_pipeline(tree_encoder(schema), model)


def detect(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    classifier: Classifier,
    seed: int = 0,
    max_rows: int | None = 10_000,
) -> Detection:
    """C2ST of canonical frames with one classifier; ``max_rows`` caps the rows taken from each table."""
    n = int(min(len(real), len(synthetic), max_rows or np.inf))
    rows = rng_for(seed, "detection.rows")
    both = pd.concat([subsample(real, n, rows), subsample(synthetic, n, rows)], ignore_index=True)
    label = np.repeat([0, 1], n)
    # Shuffle the stacked sample too, so no model ever sees the real block before the synthetic one.
    order = rows.permutation(2 * n)
    both, label = both.iloc[order].reset_index(drop=True), label[order]

    folds = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed_for(seed, "detection.folds"))
    indicate_missing = columns_with_missing(schema, both)
    model_seed = seed_for(seed, f"detection.model.{classifier}")
    fold_aucs = []
    for train, test in folds.split(both, label):
        model = _classifier(classifier, schema, indicate_missing, len(train), model_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # infrequent one-hot levels, quantile counts
            model.fit(both.iloc[train], label[train])
            proba = model.predict_proba(both.iloc[test])[:, 1]
        fold_aucs.append(float(roc_auc_score(label[test], proba)))

    auc = float(np.mean(fold_aucs))
    warning = None
    if auc < SUSPICIOUS_AUC:
        warning = (
            f"C2ST ({classifier}) cross-validated AUC is {auc:.3f}, far below 0.5: the classifier is "
            "systematically wrong, which honest folds do not produce. It happens when synthetic rows "
            "copy real rows (a copy's twin in the training folds carries the other label; see the "
            "exact-copy rate) or when the evaluation is broken. Do not read the score as perfect"
        )
        warnings.warn(warning, RuntimeWarning, stacklevel=2)
    return Detection(classifier, detection_score(auc), auc, fold_aucs, n, warning)

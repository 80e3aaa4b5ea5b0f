"""Machine-learning efficiency: does a model trained on synthetic rows predict real ones as well?

Gradient-boosted trees are trained once on the real table and once on the synthetic table, and both
are tested on the holdout. Classification (categorical target) is scored by ROC AUC — macro
one-vs-rest over the holdout's classes when there are more than two, which for two classes is the
plain AUC — and regression (numerical target) by RMSE. ``gap`` is signed so that positive always
means "training on synthetic data is worse".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.pipeline import make_pipeline
from xgboost import XGBClassifier, XGBRegressor

from ..schema import Schema
from .detection import XGBOOST_THREADS
from .encoding import tree_encoder
from .prepare import seed_for


@dataclass
class MLEfficiency:
    target: str
    task: str
    metric: str
    real: float
    synthetic: float
    gap: float
    notes: list[str] = field(default_factory=list)


def _booster(task: str, seed: int):
    settings = dict(
        n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist",
        n_jobs=XGBOOST_THREADS, random_state=seed, verbosity=0,
    )
    return XGBClassifier(**settings) if task == "classification" else XGBRegressor(**settings)


def _class_probabilities(train: pd.DataFrame, test: pd.DataFrame, target: str, classes: list[str],
                         schema: Schema, seed: int) -> np.ndarray:
    """P(class | row) for the holdout, one column per entry of ``classes``.

    xgboost wants the labels it trains on to be 0..k−1, and a synthetic table may lack a class;
    classes the training table does not hold get probability 0.
    """
    seen = sorted(train[target].unique())
    probabilities = np.zeros((len(test), len(classes)))
    if len(seen) == 1:
        probabilities[:, classes.index(seen[0])] = 1.0
        return probabilities
    code = {c: i for i, c in enumerate(seen)}
    model = make_pipeline(tree_encoder(schema, exclude=(target,)), _booster("classification", seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unseen categories become code −1, by design
        model.fit(train.drop(columns=[target]), train[target].map(code).to_numpy())
        predicted = model.predict_proba(test.drop(columns=[target]))
    for i, c in enumerate(seen):
        probabilities[:, classes.index(c)] = predicted[:, i]
    return probabilities


def _macro_auc(truth: pd.Series, probabilities: np.ndarray, classes: list[str]) -> float:
    aucs = []
    for i, c in enumerate(classes):
        positive = (truth == c).to_numpy()
        if 0 < positive.sum() < len(positive):
            aucs.append(roc_auc_score(positive, probabilities[:, i]))
    # For two classes both one-vs-rest AUCs equal the plain AUC, so the mean is that AUC.
    return float(np.mean(aucs))


def _rmse(train: pd.DataFrame, test: pd.DataFrame, target: str, schema: Schema, seed: int) -> float:
    model = make_pipeline(tree_encoder(schema, exclude=(target,)), _booster("regression", seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(train.drop(columns=[target]), train[target].to_numpy())
        predicted = model.predict(test.drop(columns=[target]))
    return float(np.sqrt(mean_squared_error(test[target].to_numpy(), predicted)))


def ml_efficiency(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    target: str,
    schema: Schema,
    seed: int = 0,
) -> MLEfficiency | str:
    """Train-on-real vs train-on-synthetic, tested on ``holdout``; a string says why it cannot be computed."""
    notes = []
    labelled = {}
    for name, df in {"real": real, "synthetic": synthetic, "holdout": holdout}.items():
        labelled[name] = df[df[target].notna()].reset_index(drop=True)
        if len(labelled[name]) == 0:
            return f"ML efficiency not computed: the {name} table has no row with a {target!r} value"
        if len(labelled[name]) < len(df):
            dropped = len(df) - len(labelled[name])
            notes.append(f"ML efficiency: {dropped} {name} row(s) without a {target!r} value left out")
    real, synthetic, holdout = labelled["real"], labelled["synthetic"], labelled["holdout"]
    model_seed = seed_for(seed, "ml_efficiency.model")

    if schema[target].kind == "numerical":
        rmse_real = _rmse(real, holdout, target, schema, model_seed)
        rmse_synthetic = _rmse(synthetic, holdout, target, schema, model_seed)
        gap = rmse_synthetic - rmse_real
        return MLEfficiency(target, "regression", "rmse", rmse_real, rmse_synthetic, gap, notes)

    if holdout[target].nunique() < 2:
        return f"ML efficiency not computed: the holdout holds a single {target!r} class, so AUC is undefined"
    classes = sorted(set(real[target]) | set(synthetic[target]) | set(holdout[target]))
    aucs = {}
    for name, train in {"real": real, "synthetic": synthetic}.items():
        if train[target].nunique() < 2:
            notes.append(
                f"ML efficiency: the {name} table holds a single {target!r} class; its model predicts that class"
            )
        probabilities = _class_probabilities(train, holdout, target, classes, schema, model_seed)
        aucs[name] = _macro_auc(holdout[target], probabilities, classes)
    task = "binary classification" if holdout[target].nunique() == 2 else "multiclass classification"
    metric = "roc_auc" if task.startswith("binary") else "roc_auc_macro_ovr"
    gap = aucs["real"] - aucs["synthetic"]
    return MLEfficiency(target, task, metric, aucs["real"], aucs["synthetic"], gap, notes)

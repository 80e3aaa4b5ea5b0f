"""Issue 7's acceptance on real data: adult's own train/test split scores near perfect, a table of
independent marginals does not. About 40 s; run with ``-m slow``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabgen.evaluation import evaluate
from tabgen.schema import infer_schema

ADULT = Path("/work/shared/datasets/adult")
ROWS = 5_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ADULT / "adult_train.csv").exists(), reason="adult dataset not available"),
]


@pytest.fixture(scope="module")
def adult():
    info = json.loads((ADULT / "info.json").read_text())
    train = pd.read_csv(ADULT / "adult_train.csv")
    test = pd.read_csv(ADULT / "adult_test.csv")
    kinds = {c["name"]: c["type"] for c in info["columns"]}
    schema = infer_schema(
        train,
        categorical=[name for name, kind in kinds.items() if kind == "categorical"],
        numerical=[name for name, kind in kinds.items() if kind == "numerical"],
    )
    real = train.sample(ROWS, random_state=0).reset_index(drop=True)
    # Disjoint test rows as "synthetic" and as holdout, so the DCR share is not skewed by shared rows.
    test = test.sample(2 * ROWS, random_state=1).reset_index(drop=True)
    return real, test.iloc[:ROWS], test.iloc[ROWS:], schema, info["target"]


def test_train_versus_test_is_near_perfect(adult):
    real, synthetic, holdout, schema, target = adult
    result = evaluate(real, synthetic, holdout=holdout, target=target, schema=schema, progress=False)
    print(result)
    assert result.shape_error < 3
    assert result.trend_error < 5
    assert result.c2st_logistic.score > 0.9
    assert result.c2st_xgboost.score > 0.9
    assert result.alpha_precision > 0.95
    assert abs(result.ml_efficiency.gap) < 0.03
    assert 0.45 < result.dcr_share < 0.55


def test_independent_marginals_are_caught(adult):
    real, _, holdout, schema, target = adult
    rng = np.random.default_rng(2)
    independent = pd.DataFrame({c: rng.choice(real[c].to_numpy(), size=len(real)) for c in real.columns})
    result = evaluate(real, independent, holdout=holdout, target=target, schema=schema, progress=False,
                      metrics=["fidelity", "detection", "ml_efficiency"])
    print(result)
    assert result.shape_error < 3  # Shape alone is fooled ...
    assert result.trend_error > 6  # ... Trend and the tree detector are not.
    assert result.c2st_xgboost.score < 0.2
    assert result.ml_efficiency.gap > 0.2

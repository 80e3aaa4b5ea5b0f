"""α-precision and β-recall (Alaa et al., ICML 2022), the "naive" variants TabSyn reports.

TabSyn takes them from synthcity's ``AlphaPrecision`` (keys ``delta_precision_alpha_naive`` and
``delta_coverage_beta_naive``); this is the same computation in numpy/scikit-learn. The naive
variant embeds rows by identity (one-hot categoricals, min-max scaled numerics) instead of a learned
one-class network, and takes the real table's mean as the centre of its support.

For α in a grid over [0, 1]:

* the α-support of the real data is the ball around the centre holding a fraction α of real rows;
  α-precision(α) = share of synthetic rows inside it. Ideal curve: precision(α) = α.
* β-coverage(β) = share of real rows whose nearest synthetic row is closer than the real row's
  nearest real neighbour AND lies in the synthetic data's own β-support (around the synthetic mean,
  measured over those nearest synthetic rows). Ideal curve: coverage(β) = β.

Each score is 1 − Σ|curve − α| / Σα: 1 when the curve is the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from ..schema import Schema
from .encoding import columns_with_missing, one_hot_encoder
from .prepare import rng_for, subsample

N_ALPHAS = 30


@dataclass
class AlphaPrecision:
    alpha_precision: float
    beta_recall: float
    rows_per_table: int


def alpha_precision_beta_recall(real: np.ndarray, synthetic: np.ndarray) -> tuple[float, float]:
    """Naive α-precision and β-recall of two encoded samples of equal size."""
    alphas = np.linspace(0, 1, N_ALPHAS)
    real_center = real.mean(axis=0)
    synthetic_center = synthetic.mean(axis=0)

    real_radii = np.quantile(np.linalg.norm(real - real_center, axis=1), alphas)
    synthetic_to_center = np.linalg.norm(synthetic - real_center, axis=1)
    precision_curve = np.array([np.mean(synthetic_to_center <= r) for r in real_radii])

    # Nearest *other* real row: the first neighbour of a real row is itself.
    real_to_real = NearestNeighbors(n_neighbors=2).fit(real).kneighbors(real)[0][:, 1]
    real_to_synthetic, nearest = NearestNeighbors(n_neighbors=1).fit(synthetic).kneighbors(real)
    real_to_synthetic, nearest = real_to_synthetic[:, 0], nearest[:, 0]
    nearest_to_center = np.linalg.norm(synthetic[nearest] - synthetic_center, axis=1)
    synthetic_radii = np.quantile(nearest_to_center, alphas)
    covered = real_to_synthetic <= real_to_real
    coverage_curve = np.array([np.mean(covered & (nearest_to_center <= r)) for r in synthetic_radii])

    alpha_precision = 1 - np.abs(alphas - precision_curve).sum() / alphas.sum()
    beta_recall = 1 - np.abs(alphas - coverage_curve).sum() / alphas.sum()
    return float(alpha_precision), float(beta_recall)


def alpha_precision(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    seed: int = 0,
    max_rows: int | None = 10_000,
) -> AlphaPrecision:
    """α-precision/β-recall of canonical frames, on equal-size samples of at most ``max_rows`` rows."""
    n = int(min(len(real), len(synthetic), max_rows or np.inf))
    rows = rng_for(seed, "alpha_precision.rows")
    real, synthetic = subsample(real, n, rows), subsample(synthetic, n, rows)
    # Scaled on the real table, as synthcity does: the real support defines the unit of distance.
    encoder = one_hot_encoder(schema, "minmax", columns_with_missing(schema, real, synthetic), n)
    encoder.fit(real)
    precision, recall = alpha_precision_beta_recall(encoder.transform(real), encoder.transform(synthetic))
    return AlphaPrecision(precision, recall, n)

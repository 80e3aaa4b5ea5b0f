"""Privacy: are synthetic rows closer to the training rows than fresh real rows would be?

* DCR share — for each synthetic row, the distance to its closest training row and to its closest
  holdout row; the share of synthetic rows closer to training. The training table is first cut to the
  holdout's size, so a generator that never saw either table lands at 50 %; well above 50 % means
  it memorised. The distance is L1 on min-max scaled numerics (plus a missing-indicator) and
  categorical mismatches counting 1, as in a Gower distance; ties count half to each side, so
  discrete tables with many duplicate rows still centre on 50 %.
* Exact-copy rate — share of synthetic rows identical (all columns, missing equal to missing) to a
  training row. ``holdout_copy_rate`` is the same share for holdout rows: what real data shows
  without any copying (high for tables with few, discrete columns).
* Membership inference AUC — an attack in the spirit of DOMIAS (van Breugel et al., AISTATS 2023):
  a row is taken for a training row where the synthetic rows are denser around it than real rows
  of the population are. Both densities come from the distance to the nearest row (of the synthetic
  table, and of a reference half of the holdout), so a copied or hugged training row scores high.
  Candidates are as many training rows as held-out rows from the holdout's other half; the AUC of
  telling them apart is 0.5 when the synthetic rows say nothing about who was in training.
* sdmetrics' ``DCROverfittingProtection`` — its own DCR share, turned into
  min(2·(1 − share), 1). Its pandas implementation is quadratic and slow, so it runs on
  :data:`SDMETRICS_DCR_ROWS` rows of each table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sdmetrics.single_table import DCROverfittingProtection
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from ..schema import Schema
from .encoding import columns_with_missing, one_hot_encoder
from .fidelity import sdmetrics_metadata
from .prepare import rng_for, subsample

#: Rows of each table given to sdmetrics' DCROverfittingProtection (~8 s for 1,000 rows of adult).
SDMETRICS_DCR_ROWS = 1_000


#: Fewer held-out rows than this leave the membership attack too few candidates to score.
MIN_MEMBERSHIP_ROWS = 20


@dataclass
class DCRShare:
    share: float
    rows: int


def _row_hashes(df: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(df, index=False).to_numpy()


def exact_copy_rate(candidates: pd.DataFrame, training: pd.DataFrame) -> float:
    """Share of ``candidates`` rows that equal some row of ``training`` (canonical frames)."""
    return float(np.isin(_row_hashes(candidates), _row_hashes(training)).mean())


def dcr_share(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    seed: int = 0,
    max_rows: int | None = 10_000,
) -> DCRShare:
    """Share of synthetic rows closer to a training row than to a holdout row (0.5 is ideal)."""
    n_reference = int(min(len(real), len(holdout), max_rows or np.inf))
    rows = rng_for(seed, "privacy.dcr.rows")
    training = subsample(real, n_reference, rows)
    holdout = subsample(holdout, n_reference, rows)
    synthetic = subsample(synthetic, max_rows, rows)

    encoder = _distance_encoder(real, synthetic, holdout, schema)
    encoded_synthetic = encoder.transform(synthetic)
    to_training = _closest_distance(encoder.transform(training), encoded_synthetic)
    to_holdout = _closest_distance(encoder.transform(holdout), encoded_synthetic)
    tie = np.isclose(to_training, to_holdout, rtol=1e-9, atol=1e-12)
    share = np.mean((to_training < to_holdout) & ~tie) + 0.5 * np.mean(tie)
    return DCRShare(float(share), len(synthetic))


@dataclass
class MembershipInference:
    auc: float
    candidates: int
    """Training rows attacked, and as many held-out rows."""


def membership_inference(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    seed: int = 0,
    max_rows: int | None = 10_000,
) -> MembershipInference | None:
    """The AUC of a density-ratio membership attack (module docstring); ``None`` with fewer than
    :data:`MIN_MEMBERSHIP_ROWS` held-out rows."""
    half = len(holdout) // 2
    n = int(min(half, len(real), max_rows or np.inf))
    if n < MIN_MEMBERSHIP_ROWS // 2:
        return None
    rows = rng_for(seed, "privacy.membership.rows")
    order = rows.permutation(len(holdout))
    outsiders = holdout.iloc[order[:n]]
    reference = subsample(holdout.iloc[order[half:]], max_rows, rows)
    members = subsample(real, n, rows)
    synthetic = subsample(synthetic, max_rows, rows)
    encoder = _distance_encoder(real, synthetic, holdout, schema)
    candidates = encoder.transform(pd.concat([members, outsiders], ignore_index=True))
    to_synthetic = _closest_distance(encoder.transform(synthetic), candidates)
    to_reference = _closest_distance(encoder.transform(reference), candidates)
    # A copy sits at distance 0; the floor keeps its log finite and still the highest score.
    floor = 1e-9 * max(float(np.median(to_reference)), 1e-12)
    score = np.log(to_reference + floor) - np.log(to_synthetic + floor)
    labels = np.r_[np.ones(n), np.zeros(n)]
    return MembershipInference(float(roc_auc_score(labels, score)), n)


def _distance_encoder(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, schema: Schema):
    """The Gower-like encoding the distances are measured in, fitted on the training table."""
    encoder = one_hot_encoder(
        schema, "minmax", columns_with_missing(schema, real, synthetic, holdout), len(real), category_weight=0.5
    )
    return encoder.fit(real)


def _closest_distance(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return NearestNeighbors(n_neighbors=1, metric="manhattan").fit(reference).kneighbors(queries)[0][:, 0]


def dcr_overfitting_protection(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    seed: int = 0,
    max_rows: int = SDMETRICS_DCR_ROWS,
) -> float:
    """sdmetrics' DCROverfittingProtection score on samples of at most ``max_rows`` rows of each table."""
    n_reference = min(len(real), len(holdout), max_rows)
    rows = rng_for(seed, "privacy.sdmetrics.rows")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(
            DCROverfittingProtection.compute(
                real_training_data=subsample(real, n_reference, rows),
                synthetic_data=subsample(synthetic, max_rows, rows),
                real_validation_data=subsample(holdout, n_reference, rows),
                metadata=sdmetrics_metadata(schema),
                table_name=None,
            )
        )

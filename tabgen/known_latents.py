"""Which encoder inputs and latent tokens the fixed cells of :class:`Givens` determine.

The VAE gives each column one token, in the order of the transform's :class:`TokenLayout`. A fixed
cell fixes its column's token; a fixed number in a column with gaps also fixes its indicator's token
(the cell is observed).

The encoder is a transformer, so a column's token depends a little on the other columns of its row.
The cells that are not fixed are therefore set to a typical row, the decoding of the mean latent (the
model's own central row: medians and modal categories on adult), rather than to arbitrary values.
"""

from __future__ import annotations

import numpy as np

from .conditions import Givens
from .schema import as_numbers
from .transform import TableTransform


def encoder_inputs(givens: Givens, transform: TableTransform, typical_num: np.ndarray, typical_cat: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x_num`` and ``x_cat`` for the encoder, and which tokens (rows, tokens) are known.

    ``typical_num`` and ``typical_cat`` are one encoded row that stands in for the cells not fixed.
    With ``givens.fill`` every missing-indicator is known to say "observed": the cells to fill must get
    a value.
    """
    n = len(givens)
    schema, layout = transform.schema, transform.layout_
    x_num = np.broadcast_to(typical_num, (n, layout.n_numerical)).astype(np.float64)
    x_cat = np.broadcast_to(typical_cat, (n, len(layout.cardinalities))).astype(np.int64)
    known = np.zeros((n, layout.n_tokens), dtype=bool)
    if givens.fill:
        for g in range(len(layout.gappy)):
            x_cat[:, layout.n_categorical + g] = 0
            known[:, layout.indicator_token(g)] = True
    for j, spec in enumerate(schema.numerical):
        if spec.name not in givens.values:
            continue
        rows = givens.given[spec.name].to_numpy()
        numbers = as_numbers(givens.values[spec.name][rows], spec)
        x_num[rows, j] = transform.numeric_[spec.name].transform(numbers)
        known[rows, j] = True
        g = layout.indicator(j)
        if g is not None:
            x_cat[rows, layout.n_categorical + g] = 0
            known[rows, layout.indicator_token(g)] = True
    for k, spec in enumerate(schema.categorical):
        if spec.name not in givens.values:
            continue
        rows = givens.given[spec.name].to_numpy()
        x_cat[rows, k] = transform.codes_[spec.name].transform(givens.values[spec.name][rows], spec.name)
        known[rows, layout.categorical_token(k)] = True
    return x_num, x_cat, known

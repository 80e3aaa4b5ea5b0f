import numpy as np
import pandas as pd

from tabgen.schema import infer_schema
from tabgen.transform import QuantileNumeric, TableTransform


def test_quantile_round_trip_and_normal_scores():
    rng = np.random.default_rng(0)
    values = rng.exponential(3.0, 5000)
    qt = QuantileNumeric().fit(values)
    z = qt.transform(values)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    assert np.allclose(qt.inverse_transform(z), values, rtol=1e-3, atol=1e-2)


def test_quantile_handles_a_spike_and_a_constant():
    spike = np.r_[np.zeros(900), np.arange(1, 101)]
    qt = QuantileNumeric().fit(spike)
    assert np.allclose(qt.inverse_transform(qt.transform(spike)), spike, atol=1e-6)
    const = np.full(50, 7.0)
    qt = QuantileNumeric().fit(const)
    assert np.allclose(qt.inverse_transform(qt.transform(const)), 7.0)


def test_a_column_of_few_values_is_sampled_on_its_grid_with_its_shares():
    rng = np.random.default_rng(0)
    grid = np.r_[0.0, np.arange(1, 100) * 37.0]
    values = np.where(rng.random(20_000) < 0.9, 0.0, rng.choice(grid[1:], 20_000, p=np.arange(1, 100) / 4950))
    qt = QuantileNumeric(grid=True).fit(values)
    grid = np.unique(values)
    assert np.array_equal(qt.inverse_transform(qt.transform(grid)), grid)  # each value's score is its own
    sampled = qt.inverse_transform(rng.standard_normal(200_000))
    assert np.isin(sampled, grid).all()  # never a value between two of the table's
    shares = [np.bincount(np.searchsorted(grid, v), minlength=len(grid)) / len(v) for v in (values, sampled)]
    assert 0.5 * np.abs(shares[0] - shares[1]).sum() < 0.02
    assert QuantileNumeric(grid=True).fit(rng.normal(size=1500)).grid_ is None  # values not repeated
    assert QuantileNumeric().fit(values).grid_ is None  # only where asked for


def test_the_grid_is_kept_in_the_state_and_older_states_interpolate():
    df = pd.DataFrame({"x": np.arange(3000) % 40 * 2.5, "y": np.linspace(0, 1, 3000)})
    t = TableTransform(infer_schema(df)).fit(df)
    arrays = t.state_arrays()
    assert {"grid/x", "grid_cdf/x"} <= arrays.keys() and "grid/y" not in arrays
    z = t.transform(df).x_num
    for state in (arrays, {k: v for k, v in arrays.items() if not k.startswith("grid")}):
        loaded = TableTransform.from_state(t.schema, state)
        pd.testing.assert_frame_equal(loaded.inverse_transform(z, np.zeros((len(df), 0), dtype=np.int64)), df,
                                      check_exact=False, atol=1e-6)


def _nan_for_none(df):
    """Missing categories come back as NaN, pandas' marker, whatever null the input used."""
    out = df.copy()
    for col in out.columns[out.dtypes == "object"]:
        out[col] = out[col].astype(object).where(out[col].notna(), np.nan)
    return out


def _round_trip(df):
    schema = infer_schema(df)
    t = TableTransform(schema).fit(df)
    enc = t.transform(df)
    return schema, t.inverse_transform(enc.x_num, enc.x_cat), enc


def test_table_round_trip_keeps_values_nans_and_dtypes(mixed_frame):
    schema, back, enc = _round_trip(mixed_frame)
    assert list(back.columns) == list(mixed_frame.columns)
    assert (back.dtypes == mixed_frame.dtypes).all()
    pd.testing.assert_frame_equal(back, _nan_for_none(mixed_frame), check_exact=False, atol=1e-6)
    # numeric gaps are learned through an indicator head; they are not fed as values
    assert enc.x_cat.shape[1] == len(schema.categorical) + 1
    assert not enc.num_observed.all()


def test_inverse_stays_in_range_and_rounds_integers(mixed_frame):
    schema = infer_schema(mixed_frame)
    t = TableTransform(schema).fit(mixed_frame)
    enc = t.transform(mixed_frame)
    wild = enc.x_num * 5 + 3  # far beyond anything seen
    back = t.inverse_transform(wild, enc.x_cat)
    assert back["count"].between(mixed_frame["count"].min(), mixed_frame["count"].max()).all()
    assert (back["count"] == back["count"].round()).all()


# Round trips of random messy frames (every dtype, gaps, unicode): tests/test_properties.py

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


def _nan_for_none(df):
    """Missing categories come back as NaN, pandas' marker, whatever null the input used."""
    out = df.copy()
    for col in out.columns[out.dtypes == object]:
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

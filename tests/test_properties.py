"""Property tests on random messy tables: the transform is an exact round trip, and fit/sample never crash."""

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tabgen import Synthesizer
from tabgen.errors import TabgenWarning
from tabgen.protection import RARE
from tabgen.schema import infer_schema
from tabgen.transform import TableTransform

from conftest import fast_config

KINDS = ["float", "int", "Int64", "bool", "boolean", "text", "category", "datetime", "date_text", "key", "number"]
# Unicode, commas, quotes and blanks: what breaks CSV writers and naive encoders.
CATEGORY = st.text(alphabet="ab,é中 \"'\n", max_size=4)
EPOCH = pd.Timestamp("2000-01-01")


def _column(draw, kind: str, n: int) -> pd.Series:
    gappy = draw(st.booleans())

    def _maybe(values):
        return st.one_of(st.none(), values) if gappy else values

    def cells(values):
        return draw(st.lists(values, min_size=n, max_size=n))

    if kind == "float":
        return pd.Series(cells(_maybe(st.floats(-1e6, 1e6).map(lambda v: round(v, 3)))), dtype="float64")
    if kind == "int":
        return pd.Series(cells(st.integers(-1000, 1000)), dtype="int64")
    if kind == "Int64":
        return pd.Series(cells(_maybe(st.integers(-1000, 1000))), dtype="Int64")
    if kind == "bool":
        return pd.Series(cells(st.booleans()), dtype=bool)
    if kind == "boolean":
        return pd.Series(cells(_maybe(st.booleans())), dtype="boolean")
    if kind in ("text", "category"):
        levels = draw(st.lists(CATEGORY, min_size=1, max_size=6, unique=True))
        return pd.Series(cells(_maybe(st.sampled_from(levels))), dtype=object if kind == "text" else "category")
    # Identifiers once the table has more than 50 rows:
    if kind == "key":
        return pd.Series([f"K{i:04d}" for i in draw(st.permutations(range(n)))], dtype=object)
    if kind == "number":
        return pd.Series(draw(st.permutations(range(1000, 1000 + n))), dtype="int64")
    seconds = draw(st.sampled_from([86_400, 1]))  # whole days or whole seconds
    stamps = pd.Series(cells(_maybe(st.integers(0, 10_000)))).map(
        lambda k: pd.NaT if pd.isna(k) else EPOCH + pd.Timedelta(seconds=int(k) * seconds)
    )
    stamps = pd.to_datetime(stamps)
    return stamps if kind == "datetime" else stamps.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)


@st.composite
def messy_frames(draw, max_rows: int = 70) -> pd.DataFrame:
    n = draw(st.one_of(st.integers(1, 30), st.integers(51, max_rows)))  # below and above identifier detection
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    df = pd.DataFrame({f"{kind}_{j}": _column(draw, kind, n) for j, kind in enumerate(kinds)})
    df = df.loc[:, df.notna().any()]  # an entirely empty column is refused by design
    if df.shape[1] == 0:
        df = pd.DataFrame({"zero": np.zeros(n)})
    return df


def _quiet_schema(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        return infer_schema(df)


def _same_missing_marker(series: pd.Series) -> pd.Series:
    """Missing text comes back as NaN, pandas' marker, whatever null the input used."""
    if series.dtype == object:
        return series.where(series.notna(), np.nan)
    return series


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_frames())
def test_random_frames_round_trip_exactly(df):
    schema = _quiet_schema(df)
    assume(schema.numerical or schema.categorical)  # a table of identifiers alone is refused by design
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        transform = TableTransform(schema).fit(df)
    encoded = transform.transform(df)
    back = transform.inverse_transform(encoded.x_num, encoded.x_cat)
    assert list(back.columns) == list(df.columns)
    assert (back.dtypes == df.dtypes).all(), pd.concat([df.dtypes, back.dtypes], axis=1)
    for spec in schema.columns:
        real, fake = df[spec.name], back[spec.name]
        if spec.kind == "id":
            assert fake.is_unique and not set(fake) & set(real)
            continue
        assert (fake.isna() == real.isna()).all(), spec.name
        if spec.is_integer and spec.datetime_unit is None and spec.kind == "numerical":
            values = fake.dropna().astype(float)
            assert (values == values.round()).all()
        pd.testing.assert_series_equal(fake, _same_missing_marker(real), check_exact=False, rtol=1e-6, atol=1e-6)


def _tiny_config():
    config = fast_config()
    config.vae.max_steps = 3
    config.diffusion.max_steps = 3
    config.diffusion.width = 16
    config.sampler.num_steps = 2
    return config


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_frames(), st.integers(1, 30))
def test_fit_and_sample_never_crash(df, n):
    # One row has no spread: the latents' std is NaN and numbers come back missing (see synthesizer.fit).
    assume(len(df) >= 2)
    schema = _quiet_schema(df)
    assume(schema.numerical or schema.categorical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        syn = Synthesizer(config=_tiny_config(), progress=False, seed=0).fit(df)
        fake = syn.sample(n)
    assert len(fake) == n and list(fake.columns) == list(df.columns)
    # A column whose rare values are grouped as _RARE_ is text, unless it had numbers to keep instead.
    grouped = {c.spec.name for c in syn.protection_.columns if isinstance(c.kept, set)}
    assert all(fake[c].dtype == df[c].dtype or c in grouped for c in df.columns)
    for spec in schema.columns:
        assert spec.has_missing or spec.kind == "id" or fake[spec.name].notna().all(), spec.name
    for spec in schema.categorical:
        seen = {str(v) for v in df[spec.name].dropna()} | {RARE}
        assert {str(v) for v in fake[spec.name].dropna()} <= seen, spec.name

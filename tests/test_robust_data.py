"""Messy tables that real users bring: each kind of mess fits, samples, and keeps its columns' nature."""

import re
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest

from tabgen import Schema, Synthesizer, TabgenError, infer_schema
from tabgen.datetimes import datetimes_to_numbers
from tabgen.errors import TabgenWarning
from tabgen.identifiers import IdFormat, learn_format
from tabgen.transform import TableTransform

from conftest import fast_config


def fit_sample(df, n=300, config=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        syn = Synthesizer(config=config or fast_config(), progress=False, **kwargs).fit(df)
    fake = syn.sample(n)
    assert list(fake.columns) == list(df.columns)
    assert (fake.dtypes == df.dtypes).all(), pd.concat([df.dtypes, fake.dtypes], axis=1)
    return syn, fake


def quiet_schema(df, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        return infer_schema(df, **kwargs)


# ---------------------------------------------------------------- cardinality and identifiers
def test_high_cardinality_categorical_is_modelled():
    rng = np.random.default_rng(0)
    level = rng.permutation(np.repeat(np.arange(5000), 2))
    df = pd.DataFrame({"level": [f"L{i}" for i in level], "x": level / 5000 + rng.normal(0, 0.1, len(level))})
    with pytest.warns(TabgenWarning, match="'level' has 5,000 categories: tabgen learns the 999 most frequent"):
        infer_schema(df)
    syn, fake = fit_sample(df, n=200, config=fast_config(rare_value_rows=0))  # each level has 2 rows
    spec = syn.schema_["level"]
    assert spec.kind == "categorical" and len(spec.categories) == 5000 and len(spec.grouped) == 4001
    assert syn.codec_.layout.categories == (1000,)  # 999 learned, one group: the model's size is bounded
    assert set(fake["level"]) <= set(df["level"])


def test_grouped_categories_are_drawn_by_their_shares_given_and_saved(monkeypatch, tmp_path):
    monkeypatch.setattr("tabgen.schema.MAX_LEARNED_CATEGORIES", 4)
    rng = np.random.default_rng(0)
    n = 800
    rare = np.array([f"r{i}" for i in rng.integers(0, 30, n)])
    df = pd.DataFrame({"city": np.where(rng.random(n) < 0.25, rare, rng.choice(["a", "b", "c"], n)),
                       "x": rng.normal(size=n)})
    with pytest.warns(TabgenWarning, match="learns the 3 most frequent one by one and the other 30"):
        syn = Synthesizer(config=fast_config(rare_value_rows=0), progress=False, seed=0).fit(df)
    assert sorted(v for v, _ in syn.schema_["city"].grouped) == sorted(set(rare))
    fake = syn.sample(4000, seed=1)
    drawn = fake["city"][fake["city"].str.startswith("r")]
    assert set(fake["city"]) <= set(df["city"]) and drawn.nunique() > 20  # the group's rows spread over its values
    assert (syn.sample(20, given={"city": "r7"}, seed=2)["city"] == "r7").all()
    syn.save(tmp_path / "m.tabgen")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.tabgen", progress=False).sample(50, seed=3),
                                  syn.sample(50, seed=3))


def id_frame(n=300):
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "uid": np.arange(1, n + 1),
            "code": [f"C{i:05d}" for i in rng.permutation(n)],
            "token": [str(uuid.UUID(int=int(rng.integers(2**62)) << 64 | int(rng.integers(2**62)), version=4)) for _ in range(n)],
            "weight": rng.normal(70, 10, n),  # nearly unique floats: a measurement, not a key
            "cents": rng.integers(0, 10**8, n),  # nearly unique integers spread thinly: a measurement
            "group": rng.choice(["a", "b"], n),
        }
    )


def test_identifiers_are_detected_with_a_warning_naming_them():
    df = id_frame()
    with pytest.warns(TabgenWarning) as caught:
        schema = infer_schema(df)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"uid": "id", "code": "id", "token": "id", "weight": "numerical", "cents": "numerical",
                     "group": "categorical"}
    messages = " ".join(str(w.message) for w in caught)
    for name in ("'uid'", "'code'", "'token'"):
        assert name in messages
    assert "cannot learn an identifier" in messages and "only reproduce" in messages
    assert Schema.from_dict(schema.to_dict()) == schema


def test_identifier_override_models_it_or_forces_it():
    df = id_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TabgenWarning)  # an explicit choice is not warned about
        schema = infer_schema(df.drop(columns=["code", "token"]), categorical=["uid"], identifiers=["group"])
    assert schema["uid"].kind == "categorical" and schema["group"].kind == "id"
    with pytest.raises(TabgenError, match="'uid'"):
        infer_schema(df, categorical=["uid"], identifiers=["uid"])


def test_identifiers_come_back_fresh_unique_and_in_format():
    df = id_frame()
    syn, fake = fit_sample(df, n=400)
    for name in ("uid", "code", "token"):
        assert fake[name].is_unique and not set(fake[name]) & set(df[name]), name
    assert fake["uid"].min() == df["uid"].max() + 1
    assert fake["code"].str.fullmatch(r"C\d{5}").all()
    assert fake["token"].str.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}").all()
    assert "id (int64) not modelled" in str(syn.schema_)


def test_all_identifier_table_is_refused():
    with pytest.raises(TabgenError, match="nothing to learn.*'uid'"):
        fit_sample(id_frame()[["uid", "code"]])


def test_identifier_batches_continue_the_numbering():
    df = id_frame()
    schema = quiet_schema(df)
    t = TableTransform(schema).fit(df)
    enc = t.transform(df)
    first = t.inverse_transform(enc.x_num[:10], enc.x_cat[:10], row_offset=0)
    second = t.inverse_transform(enc.x_num[:10], enc.x_cat[:10], row_offset=10)
    for name in ("uid", "code", "token"):
        assert pd.concat([first[name], second[name]]).is_unique


def test_identifiers_stay_unique_across_sampling_batches():
    syn, _ = fit_sample(id_frame(), n=10)
    syn.config_.sampler.batch_size = 7
    fake = syn.sample(20)
    assert fake["uid"].is_unique and fake["code"].is_unique and fake["token"].is_unique


def test_identifier_formats():
    numbered = learn_format("k", pd.Series(["user_7", "user_12", "user_3"]))
    assert numbered == IdFormat("numbered", start=13, prefix="user_", width=0)
    assert list(numbered.generate(2, offset=5)) == ["user_18", "user_19"]
    template = learn_format("k", pd.Series([f"{a}{b}-{i:03d}x" for a in "AB" for b in "XYZ" for i in (5, 17, 123)]))
    tokens = template.generate(1000)
    assert len(set(tokens)) == 1000 and all(re.fullmatch(r"[A-Z]{2}-\d{3}x", t) for t in tokens)
    prose = pd.Series([f"a remark of {'some ' * i}length" for i in range(60)])
    assert learn_format("note", prose) == IdFormat("numbered", start=1, prefix="note_")


# ---------------------------------------------------------------- constants, gaps, booleans, integers
def test_constant_columns_are_generated_constant():
    n = 200
    gaps = np.random.default_rng(2).random(n) < 0.3
    df = pd.DataFrame(
        {
            "int": np.full(n, 7),
            "float": np.full(n, 3.25),
            "text": ["same"] * n,
            "float_gaps": np.where(gaps, np.nan, 3.25),
            "text_gaps": np.where(gaps, None, "same"),
            "x": np.random.default_rng(3).normal(size=n),
        }
    )
    syn, fake = fit_sample(df)
    assert all(syn.schema_[c].is_constant for c in ("int", "float", "text", "float_gaps", "text_gaps"))
    assert (fake["int"] == 7).all() and (fake["float"] == 3.25).all() and (fake["text"] == "same").all()
    assert set(fake["float_gaps"].dropna()) <= {3.25} and set(fake["text_gaps"].dropna()) <= {"same"}
    assert "constant 3.25" in str(syn.schema_) and "constant 'same'" in str(syn.schema_)


@pytest.mark.parametrize("n", [1, 500])
def test_a_table_whose_rows_are_all_alike_trains_nothing(n, tmp_path):
    df = pd.DataFrame({"int": np.full(n, 7), "float": np.full(n, 3.25), "text": ["same"] * n,
                       "flag": np.full(n, True)})
    syn, fake = fit_sample(df, n=40, config=fast_config(rare_value_rows=0))  # a row alone would be grouped
    assert syn.vae_result_.steps == syn.diffusion_result_.steps == 0
    assert syn.diffusion_result_.stopped_by == "nothing varies"
    pd.testing.assert_frame_equal(fake, pd.concat([df.iloc[:1]] * 40, ignore_index=True))
    syn.save(tmp_path / "m.tabgen")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.tabgen", progress=False).sample(40), fake)
    gap = pd.DataFrame({"float": [3.25, np.nan]})  # a constant with gaps varies: its gaps are learned
    with pytest.warns(TabgenWarning, match="only 2 rows"):
        assert TableTransform(quiet_schema(gap)).fit(gap).varies


def test_nearly_empty_columns_come_back_mostly_missing():
    n = 500
    rng = np.random.default_rng(4)
    sparse = rng.random(n) < 0.99
    sparse[:3] = False  # at least a few values
    df = pd.DataFrame(
        {
            "num": np.where(sparse, np.nan, rng.normal(size=n)),
            "cat": np.where(sparse, None, rng.choice(["a", "b"], n)),
            "x": rng.normal(size=n),
        }
    )
    syn, fake = fit_sample(df)
    assert syn.schema_["num"].missing_rate > 0.98
    assert fake["num"].isna().mean() > 0.9 and fake["cat"].isna().mean() > 0.9


def test_booleans_come_back_as_booleans():
    n = 200
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {
            "flag": rng.random(n) < 0.4,
            "maybe": pd.array(np.where(rng.random(n) < 0.2, None, rng.random(n) < 0.5), dtype="boolean"),
        }
    )
    _, fake = fit_sample(df)
    assert fake["flag"].dtype == bool and fake["maybe"].dtype == "boolean"
    assert set(fake["maybe"].dropna()) <= {True, False}


def test_integers_stored_as_floats_and_nullable_integers():
    n = 300
    rng = np.random.default_rng(6)
    gaps = rng.random(n) < 0.2
    df = pd.DataFrame(
        {
            "float_ints": np.where(gaps, np.nan, rng.integers(0, 500, n)).astype(float),
            "float_codes": np.where(gaps, np.nan, rng.integers(1, 4, n)).astype(float),
            "nullable": pd.array(np.where(gaps, None, rng.integers(0, 500, n)), dtype="Int64"),
            "nullable_codes": pd.array(np.where(gaps, None, rng.integers(1, 4, n)), dtype="Int64"),
        }
    )
    syn, fake = fit_sample(df)
    assert syn.schema_["float_ints"].kind == "numerical" and syn.schema_["float_codes"].kind == "categorical"
    for name in ("float_ints", "float_codes"):
        values = fake[name].dropna()
        assert fake[name].dtype == np.float64 and (values == values.round()).all()
    assert fake["nullable"].dtype == "Int64" and fake["nullable_codes"].dtype == "Int64"
    assert set(fake["nullable_codes"].dropna()) <= {1, 2, 3}


def test_heavy_tails_and_large_negatives_stay_finite_and_in_range():
    n = 400
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "cauchy": rng.standard_cauchy(n),
            "lognormal": rng.lognormal(0, 3, n),
            "negative": -rng.uniform(0, 1e9, n).round(2),
        }
    )
    _, fake = fit_sample(df)
    for name in df.columns:
        assert np.isfinite(fake[name]).all()
        assert fake[name].between(df[name].min(), df[name].max()).all(), name
    assert (fake["negative"] == fake["negative"].round(2)).all()


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_values_are_refused_with_the_fix(bad):
    df = pd.DataFrame({"ok": np.arange(20.0), "speed": np.r_[np.arange(19.0), bad]})
    with pytest.raises(TabgenError, match=r"'speed' holds 1 infinite value.*leave those cells empty") as e:
        infer_schema(df)
    # the suggested fix works: infinities as missing values
    fixed = df.replace([np.inf, -np.inf], np.nan)
    assert infer_schema(fixed)["speed"].missing_rate == pytest.approx(0.05)
    assert "df['speed'].replace" in str(e.value)


# ---------------------------------------------------------------- dates and times
def date_frame(n=300):
    rng = np.random.default_rng(8)
    start = pd.Timestamp("2021-01-01")
    days = start + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    moments = start + pd.to_timedelta(rng.integers(0, 10**7, n) * 60, unit="s")
    df = pd.DataFrame(
        {
            "day": days,
            "moment": moments,
            "zoned": moments.tz_localize("UTC").tz_convert("Asia/Tokyo"),
            "iso_text": days.strftime("%Y-%m-%d"),
            "eu_text": moments.strftime("%d/%m/%Y %H:%M"),
            "x": rng.normal(size=n),
        }
    )
    df.loc[::9, "iso_text"] = np.nan
    df.loc[::11, "moment"] = pd.NaT
    return df


def test_datetimes_are_learned_as_numbers_with_their_unit_and_format():
    schema = infer_schema(date_frame())
    assert all(schema[c].kind == "numerical" for c in ("day", "moment", "zoned", "iso_text", "eu_text"))
    assert schema["day"].datetime_unit == "D" and schema["moment"].datetime_unit == "min"
    assert schema["iso_text"].datetime_format == "%Y-%m-%d"
    assert schema["eu_text"].datetime_format == "%d/%m/%Y %H:%M"
    assert schema["day"].datetime_format is None and schema["x"].datetime_unit is None
    assert "datetime [2021-" in str(schema) and "as text '%Y-%m-%d'" in str(schema)
    assert Schema.from_dict(schema.to_dict()) == schema


def test_datetimes_come_back_as_datetimes_and_text_in_its_format():
    df = date_frame()
    _, fake = fit_sample(df)
    assert (fake["day"] == fake["day"].dt.normalize()).all()  # dates stay dates, no random time of day
    assert fake["day"].between(df["day"].min(), df["day"].max()).all()
    assert str(fake["zoned"].dt.tz) == "Asia/Tokyo"
    assert (fake["moment"].dropna().dt.second == 0).all()
    for name, fmt in (("iso_text", "%Y-%m-%d"), ("eu_text", "%d/%m/%Y %H:%M")):
        text = fake[name].dropna()
        parsed = pd.to_datetime(text, format=fmt)
        assert (parsed.dt.strftime(fmt) == text).all()
        real = pd.to_datetime(df[name], format=fmt)
        assert parsed.between(real.min(), real.max()).all()


def test_a_date_column_of_one_format_reads_iso_dates_too():
    days = datetimes_to_numbers(pd.Series(["31/01/21", "2021-02-01", None]), "D", "%d/%m/%y", "when")
    assert days[1] - days[0] == 1
    with pytest.raises(TabgenError, match=r"'01-02-21', which is not a date in the format '%d/%m/%y' nor in ISO 8601"):
        datetimes_to_numbers(pd.Series(["31/01/21", "01-02-21"]), "D", "%d/%m/%y", "when")


@pytest.mark.parametrize("fmt", ["%Y-%m-%dT%H:%M:%S", "%b %d, %Y", "%d.%m.%Y", "%Y/%m/%d %H:%M:%S.%f", "%d/%m/%y", "%m-%d-%y"])
def test_text_dates_in_other_formats_round_trip(fmt):
    stamps = pd.Timestamp("2020-02-29") + pd.to_timedelta(np.arange(120) * 97_531, unit="s")
    df = pd.DataFrame({"when": stamps.strftime(fmt)})
    schema = infer_schema(df)
    assert schema["when"].datetime_format == fmt
    t = TableTransform(schema).fit(df)
    enc = t.transform(df)
    pd.testing.assert_frame_equal(t.inverse_transform(enc.x_num, enc.x_cat), df)


@pytest.mark.parametrize(
    "values",
    [
        [str(20210301 + i) for i in range(20)],  # dates without separators are as likely codes
        [str(1990 + i) for i in range(20)],  # years alone
        [f"A-{i}" for i in range(20)],
        [f"{1 + i % 9}.{i % 7}.{10 + i}" for i in range(20)],  # versions
        [f"{10 + i % 12}:{i % 60:02d}" for i in range(20)],  # times of day
        ["2021-03-04", "2021-03-05 10:00"] * 10,  # two formats in one column
        ["2021-03-04"] * 19 + ["not a date"],
    ],
)
def test_text_that_is_not_one_date_format_stays_text(values):
    spec = infer_schema(pd.DataFrame({"v": values}))["v"]
    assert spec.datetime_unit is None and spec.kind == "categorical"


def test_dates_in_a_category_column_stay_categories():
    days = pd.date_range("2021-01-01", periods=30).strftime("%Y-%m-%d")
    spec = infer_schema(pd.DataFrame({"v": pd.Series(days, dtype="category")}))["v"]
    assert spec.kind == "categorical" and spec.datetime_unit is None


def test_a_few_distinct_dates_are_categories():
    df = pd.DataFrame({"snapshot": pd.to_datetime(["2021-01-31", "2021-02-28", "2021-03-31"] * 20),
                       "x": np.arange(60.0)})
    syn, fake = fit_sample(df)
    assert syn.schema_["snapshot"].kind == "categorical"
    assert set(fake["snapshot"]) <= set(df["snapshot"])


# ---------------------------------------------------------------- shapes
def test_wide_table():
    rng = np.random.default_rng(9)
    n = 100
    columns = {}
    for j in range(100):
        columns[f"num{j}"] = rng.normal(j, 1, n).round(2)
        columns[f"cat{j}"] = rng.choice(["a", "b", "c"], n)
        columns[f"int{j}"] = rng.integers(0, 1000, n)
    df = pd.DataFrame(columns)
    config = fast_config()
    config.vae.max_steps = 20  # attention over 300 column tokens: each step costs
    config.diffusion.max_steps = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        fake = Synthesizer(config=config, progress=False).fit(df).sample(50)
    assert fake.shape == (50, 300) and list(fake.columns) == list(df.columns)
    assert (fake.dtypes == df.dtypes).all()


def test_tiny_table_fits_with_a_warning_naming_its_size():
    from conftest import make_mixed_frame

    df = make_mixed_frame(20)
    with pytest.warns(TabgenWarning, match="only 20 rows"):
        syn = Synthesizer(config=fast_config(rare_value_rows=0), progress=False).fit(df)
    fake = syn.sample(30)
    assert (fake.dtypes == df.dtypes).all() and len(fake) == 30


# ---------------------------------------------------------------- model files
def test_schema_of_an_older_model_file_loads():
    old = {"columns": [{"name": "x", "kind": "numerical", "dtype": "float64", "is_integer": False, "min": 0.0,
                        "max": 1.0, "categories": None, "missing_rate": 0.0, "decimals": 2}]}
    spec = Schema.from_dict(old)["x"]
    assert spec.datetime_unit is None and spec.id_format is None


def test_save_and_load_keep_identifiers_and_dates(tmp_path):
    df = pd.concat([id_frame(), date_frame()], axis=1)
    syn, _ = fit_sample(df, n=10)
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen", progress=False)
    assert loaded.schema_ == syn.schema_
    pd.testing.assert_frame_equal(loaded.sample(20, seed=1), syn.sample(20, seed=1))

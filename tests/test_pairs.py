import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tabgen import Synthesizer, TabgenError
from tabgen.cli import main
from tabgen.evaluation import evaluate
from tabgen.pairs import find_pairs
from tabgen.schema import Schema, infer_schema

from conftest import fast_config, make_mixed_frame

LABELS = [f"grade {i}" for i in range(12)]


def with_codes(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """The mixed frame plus a label and its numeric code (12 levels: numerical), and a copied column."""
    df = make_mixed_frame(n, seed)
    code = np.random.default_rng(seed).integers(0, 12, n)
    df["label"] = np.array(LABELS, dtype=object)[code]
    df["code"] = code * 5 + 1
    df["city_copy"] = df["city"]
    return df


def pairs_of(df: pd.DataFrame) -> dict[str, str]:
    schema = find_pairs(df, infer_schema(df))
    return {spec.name: spec.derived_from for spec in schema.derived}


def test_one_to_one_columns_are_paired_with_a_number_as_parent():
    # The code is numerical: its order is something the model can use, sixteen labels are not.
    assert pairs_of(with_codes()) == {"label": "code", "city_copy": "city"}


def test_missing_values_take_part_and_the_table_round_trips_through_json():
    df = with_codes()
    schema = find_pairs(df, infer_schema(df))
    copy = schema["city_copy"]
    assert [None, None] in copy.derived_pairs and len(copy.derived_pairs) == 4
    assert Schema.from_dict(schema.to_dict()) == schema
    assert "written from 'city'" in copy.describe()


@pytest.mark.parametrize("change", ["many-to-one", "one-disagreeing-row", "small-table", "nearly-unique"])
def test_columns_that_are_not_one_to_one_stay_modelled(change):
    df = with_codes()[["group", "x", "label", "code"]]
    if change == "many-to-one":  # each code has one label, but two codes share one
        df["label"] = df["label"].replace({"grade 1": "grade 0"})
    elif change == "one-disagreeing-row":
        df.loc[0, "label"] = "grade 11" if df.loc[0, "label"] != "grade 11" else "grade 10"
    elif change == "small-table":
        df = df.head(40)
    else:  # a name and an e-mail are one-to-one by construction, not a fact written twice
        df = df.assign(name=[f"n{i}" for i in range(len(df))], email=[f"n{i}@x" for i in range(len(df))])
        df = df.drop(columns="code")
    assert pairs_of(df) == {}


@pytest.fixture(scope="module")
def fitted():
    return Synthesizer(config=fast_config(), seed=0, progress=False).fit(with_codes())


def consistent(frame: pd.DataFrame) -> bool:
    """Every row's label matches its code, and the copy its city."""
    labels = frame["code"].map(lambda c: LABELS[(c - 1) // 5])
    return bool((labels == frame["label"]).all() and frame["city"].fillna("?").equals(frame["city_copy"].fillna("?")))


def test_sampled_rows_keep_every_pair_exact_and_the_dtypes(fitted):
    out = fitted.sample(300)
    assert consistent(out)
    assert out["code"].dtype == np.int64 and set(out["code"]) <= set(range(1, 57, 5))
    assert fitted.codec_.layout.n_tokens < out.shape[1]  # fewer tokens than columns


def test_a_given_written_column_conditions_its_parent(fitted):
    out = fitted.sample(20, given={"label": "grade 3"})
    assert (out["label"] == "grade 3").all() and (out["code"] == 16).all()
    rows = fitted.sample(given=pd.DataFrame({"label": ["grade 1", None], "code": [None, 56]}))
    assert rows["label"].tolist() == ["grade 1", "grade 11"] and rows["code"].tolist() == [6, 56]
    rebalanced = fitted.sample(100, rebalance={"label": {"grade 7": 0.5}})
    assert (rebalanced["label"] == "grade 7").sum() == 50 and consistent(rebalanced)


@pytest.mark.parametrize("given, message", [
    ({"label": "grade 3", "code": 21}, "disagree"),
    ({"label": "grade 99"}, "never held 'grade 99'"),
    ({"code": 17}, "never held 17"),
])
def test_givens_a_pair_cannot_hold_are_refused(fitted, given, message):
    with pytest.raises(TabgenError, match=message):
        fitted.sample(5, given=given)


def test_imputation_fills_a_pair_from_its_observed_half(fitted):
    df = with_codes().head(12)
    holes = df.copy()
    holes.loc[:5, "label"] = None
    holes.loc[6:, "code"] = np.nan
    filled = fitted.impute(holes, draws=3)
    assert filled["label"].tolist() == df["label"].tolist()
    assert filled["code"].tolist() == df["code"].tolist()


def test_save_load_keeps_the_pairs(fitted, tmp_path):
    fitted.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen", progress=False)
    assert loaded.schema_ == fitted.schema_ and loaded.exact_pairs
    assert loaded.sample(50, seed=3).equals(fitted.sample(50, seed=3))


def test_written_columns_keep_nullable_and_categorical_dtypes():
    codes = np.random.default_rng(0).integers(0, 2, 200)
    df = pd.DataFrame({"code": codes, "nullable": pd.array(codes, dtype="Int64"),
                       "label": pd.Categorical(np.where(codes == 1, "yes", "no"))})
    syn = Synthesizer(config=fast_config(), progress=False, seed=0).fit(df)
    assert len(syn.schema_.derived) == 2
    assert syn.sample(20).dtypes.to_dict() == df.dtypes.to_dict()


def test_exact_pairs_off_models_every_column():
    syn = Synthesizer(config=fast_config(), seed=0, progress=False, exact_pairs=False).fit(with_codes())
    assert syn.schema_.derived == []


def test_evaluation_scores_written_columns_like_the_others(fitted):
    real = with_codes()
    result = evaluate(real, fitted.sample(400), schema=fitted.schema_, metrics=["fidelity"], progress=False)
    scored = {p["column_1"] for p in result.pair_trends} | {p["column_2"] for p in result.pair_trends}
    assert {"label", "city_copy"} <= scored


def test_cli_can_turn_pairs_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with_codes().to_csv("codes.csv", index=False)
    r = CliRunner().invoke(main, ["fit", "codes.csv", "--no-exact-pairs", "--time-budget", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert Synthesizer.load("codes.tabgen", progress=False).schema_.derived == []

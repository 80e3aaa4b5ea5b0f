import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tabgen import Synthesizer, TabgenError
from tabgen.cli import main, parse_given_option, parse_rebalance_option
from tabgen.conditions import allocate
from tabgen.imputation import combine_draws

from conftest import fast_config, make_mixed_frame


def conditional_frame() -> pd.DataFrame:
    """The mixed frame (group b has x ≈ 3, group c has x ≈ −2), an identifier, and a city in 0.75 % of rows."""
    df = make_mixed_frame(800, seed=0)
    df.insert(0, "id", np.arange(1000, 1000 + len(df)))
    df.loc[:5, "city"] = "Rome"
    return df


@pytest.fixture(scope="module")
def fitted():
    # Enough training for the group -> x dependency to be learned (about ten seconds on one thread).
    config = fast_config()
    config.vae.max_steps = 300
    config.diffusion.max_steps = 800
    config.diffusion.width = 96
    df = conditional_frame()
    return df, Synthesizer(config=config, identifiers=["id"], progress=False).fit(df)


@pytest.fixture(scope="module")
def model_path(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.tabgen"
    fitted[1].save(path)
    return path


def test_given_cells_come_out_exactly_with_the_usual_dtypes(fitted):
    _, syn = fitted
    given = {"group": "b", "x": 1.23, "count": 20, "flag": True, "city": "Lima"}
    fake = syn.sample(200, given=given, seed=1)
    assert len(fake) == 200
    for name, value in given.items():
        assert (fake[name] == value).all(), name
    assert (fake.dtypes == syn.sample(5).dtypes).all() and fake["id"].is_unique


def test_a_conditioned_category_is_the_only_one_and_a_rare_one_costs_nothing(fitted):
    df, syn = fitted
    assert (df["city"] == "Rome").mean() < 0.01
    fake = syn.sample(300, given={"city": "Rome"})
    assert len(fake) == 300 and (fake["city"] == "Rome").all()
    assert set(syn.sample(100, given={"group": "c"})["group"]) == {"c"}


def test_conditioning_follows_the_learned_dependency(fitted):
    _, syn = fitted
    unconditional = syn.sample(1000, seed=2)["x"].mean()
    given_b = syn.sample(500, given={"group": "b"}, seed=2)["x"].mean()
    given_c = syn.sample(500, given={"group": "c"}, seed=2)["x"].mean()
    assert abs(given_b - 3) < 0.3 * abs(unconditional - 3)
    assert abs(given_c + 2) < 0.3 * abs(unconditional + 2)


def test_text_values_are_read_by_the_column_kind(fitted):
    _, syn = fitted
    fake = syn.sample(20, given={"count": "20", "flag": "True", "x": "-1.5"})
    assert (fake["count"] == 20).all() and fake["flag"].all() and (fake["x"] == -1.5).all()


def test_given_rows_keep_their_cells_and_give_one_row_each(fitted):
    df, syn = fitted
    partial = df.drop(columns="id").sample(40, random_state=1).reset_index(drop=True)
    partial = partial.mask(np.random.default_rng(0).random(partial.shape) < 0.5)
    fake = syn.sample(given=partial, seed=3)
    assert len(fake) == 40 and list(fake.columns) == list(df.columns)
    kept = partial.notna()
    for name in partial.columns:
        assert (fake[name][kept[name]] == partial[name][kept[name]]).all(), name
    pd.testing.assert_frame_equal(fake, syn.sample(40, given=partial, seed=3))
    with pytest.raises(TabgenError, match="given rows are 40"):
        syn.sample(10, given=partial)


def test_rebalance_hits_the_asked_shares(fitted):
    _, syn = fitted
    fake = syn.sample(1000, rebalance={"group": {"c": 0.5}}, seed=4)
    shares = fake["group"].value_counts(normalize=True)
    assert shares["c"] == 0.5
    # The other half is split as the model splits a and b (about 5:3 in the training table).
    assert 0.45 < shares["a"] / (shares["a"] + shares["b"]) < 0.80
    both = syn.sample(400, given={"flag": True}, rebalance={"city": {"Oslo": 0.25, "Rome": 0.25}})
    assert both["flag"].all()
    assert (both["city"] == "Oslo").mean() == 0.25 and (both["city"] == "Rome").mean() == 0.25
    assert both["city"].isna().any()  # the missing category is one of the rest


def test_impute_fills_every_hole_and_keeps_every_observed_cell(fitted):
    df, syn = fitted
    truth = df.iloc[100:200]
    holes = truth.mask(np.random.default_rng(1).random(truth.shape) < 0.2)
    for draws in (1, 3):
        filled = syn.impute(holes, draws=draws, seed=5)
        assert filled.notna().all().all()  # income and city had gaps in training, yet every hole gets a value
        assert filled.index.equals(holes.index) and list(filled.columns) == list(holes.columns)
        assert (filled.dtypes == syn.sample(3).dtypes).all()
        observed = holes.notna()
        for name in holes.columns:
            assert (filled[name][observed[name]] == holes[name][observed[name]]).all(), name
    whole = syn.impute(truth.dropna())
    pd.testing.assert_frame_equal(whole, truth.dropna())


def test_impute_keeps_numbers_beyond_the_training_range(fitted):
    df, syn = fitted
    row = df.iloc[[0]].copy()
    row["x"] = 99.0
    row["group"] = None
    filled = syn.impute(row)
    assert filled["x"].iloc[0] == 99.0 and filled["group"].iloc[0] in {"a", "b", "c"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"given": {"group": "zzz"}}, "'group' never held 'zzz'"),
        ({"given": {"x": 1e6}}, "'x' = 1000000.0 is outside the range"),
        ({"given": {"count": 20.5}}, "whole numbers"),
        ({"given": {"x": "abc"}}, "'abc' is not a number"),
        ({"given": {"nope": 1}}, "'nope', which the model does not have"),
        ({"given": {"id": 1005}}, "'id' is an identifier"),
        ({"given": {"group": None}}, "has no value"),
        ({"given": {}}, "given is empty"),
        ({"rebalance": {"group": {"c": -0.1}}}, "between 0 and 1"),
        ({"rebalance": {"group": {"a": 0.7, "b": 0.6}}}, "sum to 1.3"),
        ({"rebalance": {"group": {"a": 0.2, "b": 0.2, "c": 0.2}}}, "must sum to 1"),
        ({"rebalance": {"x": {"1": 0.5}}}, "'x' is numerical"),
        ({"rebalance": {"group": {"zzz": 0.5}}}, "never held 'zzz'"),
        ({"rebalance": {"group": {"a": 0.5}, "city": {"Oslo": 0.5}}}, "one column"),
        ({"given": {"group": "a"}, "rebalance": {"group": {"a": 0.5}}}, "both given and rebalanced"),
    ],
)
def test_conditions_the_model_cannot_satisfy_are_refused(fitted, kwargs, message):
    with pytest.raises(TabgenError, match=message):
        fitted[1].sample(10, **kwargs)


def test_impute_refuses_other_columns_and_bad_draws(fitted):
    df, syn = fitted
    with pytest.raises(TabgenError, match=r"lacks the model's column\(s\) \['x'\]"):
        syn.impute(df.drop(columns="x"))
    with pytest.raises(TabgenError, match=r"column\(s\) \['extra'\] the model does not know"):
        syn.impute(df.assign(extra=1))
    with pytest.raises(TabgenError, match="draws"):
        syn.impute(df, draws=0)
    with pytest.raises(TabgenError, match="never held 'Paris'"):
        syn.impute(df.head(3).assign(city="Paris", x=np.nan))


def test_cli_given_rebalance_given_file_and_impute(fitted, model_path, tmp_path, monkeypatch):
    df, _ = fitted
    monkeypatch.chdir(tmp_path)

    def run(*args):
        return CliRunner().invoke(main, list(args))

    r = run("sample", "-m", str(model_path), "-n", "30", "--given", "group=b", "--given", "x=1.5", "-o", "g.csv", "-q")
    assert r.exit_code == 0, r.output
    fake = pd.read_csv("g.csv")
    assert len(fake) == 30 and (fake["group"] == "b").all() and (fake["x"] == 1.5).all()

    r = run("sample", "-m", str(model_path), "-n", "40", "--rebalance", "group=c:0.5,a:0.25", "-o", "r.csv", "-q")
    assert r.exit_code == 0, r.output
    assert pd.read_csv("r.csv")["group"].value_counts().to_dict() == {"c": 20, "a": 10, "b": 10}

    df.drop(columns="id").head(12).assign(x=np.nan, count=np.nan).to_csv("partial.csv", index=False)
    r = run("sample", "-m", str(model_path), "--given-file", "partial.csv", "-o", "completed.csv", "-q")
    assert r.exit_code == 0, r.output
    completed = pd.read_csv("completed.csv")
    assert len(completed) == 12 and (completed["group"] == df["group"].head(12)).all()

    df.head(20).mask(np.random.default_rng(2).random((20, df.shape[1])) < 0.3).to_csv("holes.csv", index=False)
    r = run("impute", "holes.csv", "-m", str(model_path), "-o", "filled.csv", "--draws", "2", "-q")
    assert r.exit_code == 0, r.output
    assert pd.read_csv("filled.csv").notna().all().all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "-n", "5", "--given", "group=zzz"], "never held 'zzz'"),
        (["sample", "-n", "5", "--given", "nope=1"], "does not have"),
        (["sample", "-n", "5", "--given", "group"], "COLUMN=VALUE"),
        (["sample", "-n", "5", "--rebalance", "x=1:0.5"], "numerical"),
        (["sample", "-n", "5", "--rebalance", "group=c:lots"], "not a number"),
        (["sample", "--given", "group=a", "--given-file", "extra.csv"], "not both"),
        (["impute", "extra.csv"], "does not know"),
        (["impute", "extra.csv", "--draws", "0"], "--draws"),
    ],
)
def test_cli_bad_conditions_exit_2_with_a_message(fitted, model_path, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    fitted[0].head(5).assign(extra=1).to_csv("extra.csv", index=False)
    r = CliRunner().invoke(main, [*args, "-m", str(model_path), "-q"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and message in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extra.csv"]


def test_cli_text_forms():
    assert parse_given_option(["a=b=c", "income=>50K"]) == {"a": "b=c", "income": ">50K"}
    assert parse_rebalance_option("income=>50K:0.5,<=50K:0.25") == {"income": {">50K": 0.5, "<=50K": 0.25}}
    assert parse_rebalance_option("t=12:30:0.4") == {"t": {"12:30": 0.4}}
    with pytest.raises(TabgenError, match="twice"):
        parse_given_option(["a=1", "a=2"])


def test_allocate_and_combine_draws(fitted):
    counts = allocate(10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert sum(counts.values()) == 10 and sorted(counts.values()) == [3, 3, 4]
    _, syn = fitted
    drawn = syn.sample(6, seed=1)
    drawn["group"] = ["a", "b", "b", "c", "b", "a"]  # draw after draw: row 0 gets a, b, b; row 1 gets b, c, a
    drawn["x"] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    combined = combine_draws(drawn, 3, syn.schema_)
    # Row 0: b twice. Row 1: a three-way tie, won by its first draw (b), though a was drawn first overall.
    assert combined["group"].tolist() == ["b", "b"] and combined["x"].tolist() == [3.0, 4.0]

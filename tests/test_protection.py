"""Rare values kept out of the model (tabgen.protection): a value held by fewer than k rows is never
generated nor written to the model file, and the rules a table keeps are still found and kept."""

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tabgen import Synthesizer
from tabgen.cli import main
from tabgen.errors import TabgenError, TabgenWarning
from tabgen.protection import RARE, protected
from tabgen.schema import infer_schema
from tabgen.transform import QuantileNumeric

from conftest import fast_config


def planted_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A table with one unique row (a city, a number of rooms, a price and a date no other row has),
    a few rare zones that determine their borough, and a total that is the sum of two parts."""
    rng = np.random.default_rng(seed)
    zone = rng.choice(np.array([f"z{i}" for i in range(12)], dtype=object), n)
    zone[:6] = ["rare1", "rare1", "rare2", "rare3", "rare3", "rare3"]
    borough = pd.Series(zone).map(lambda z: "north" if z in ("z0", "z1", "z2", "rare1", "rare3") else
                                  "south" if z[-1] in "3456" else "east").to_numpy()
    a, b = rng.integers(10, 500, n), rng.integers(0, 200, n)
    df = pd.DataFrame({
        "city": rng.choice(["Lyon", "Nice", "Metz"], n), "zone": zone, "borough": borough,
        "rooms": rng.integers(1, 8, n), "price": rng.lognormal(12, 0.5, n).round(0),
        "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "part_a": a, "part_b": b, "total": a + b,
    })
    df.loc[n - 1, ["city", "rooms", "price", "day"]] = ["Zanzibar", 40, 9.87654e7, pd.Timestamp("2031-07-04")]
    return df


def quiet_schema(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        return infer_schema(df)


def test_a_rare_category_is_grouped_and_a_rare_number_learned_as_its_neighbour():
    df = planted_frame()
    out, schema, protection = protected(df, quiet_schema(df), 5)
    assert out["city"].iloc[-1] == RARE and "Zanzibar" not in schema["city"].categories
    assert set(out.loc[:5, "zone"]) == {RARE} and "rare1" not in schema["zone"].categories
    assert out["rooms"].iloc[-1] == 7 and schema["rooms"].categories == [1, 2, 3, 4, 5, 6, 7]  # few-valued: categorical
    # Numbers keep their values in the table (the rules read them); their extremes are the means of 5 rows.
    assert out["price"].iloc[-1] == 9.87654e7
    assert schema["price"].max == np.sort(df["price"])[-5:].mean() and schema["price"].min == np.sort(df["price"])[:5].mean()
    assert "city: 1 rare value grouped as _RARE_ (1 row)" in str(protection)
    assert "rooms: 1 rare value grouped with the nearest kept value (1 row)" in str(protection)
    assert protected(df, quiet_schema(df), 0)[0] is df  # 0 keeps every value


def test_a_planted_unique_row_never_comes_back_nor_reaches_the_model_file(tmp_path):
    df = planted_frame()
    syn = Synthesizer(config=fast_config(), progress=False, seed=0).fit(df)
    rows = syn.sample(3000)
    assert "Zanzibar" not in set(rows["city"]) and not {"rare1", "rare2"} & set(rows["zone"])
    assert set(rows["rooms"]) <= set(range(1, 8)) and rows["price"].max() <= np.sort(df["price"])[-5:].mean() + 0.5
    assert rows["day"].max() < pd.Timestamp("2030-01-01")
    syn.save(tmp_path / "m.tabgen")
    raw = (tmp_path / "m.tabgen").read_bytes()
    assert not any(planted in raw for planted in (b"Zanzibar", b"rare1", b"rare2", b"98765400", b"2031"))
    assert syn.codec_.transform.numeric_["price"].quantiles_.max() < 9.87654e7
    # The rules are found in spite of the grouped zones, and kept: a rare zone says nothing of its borough.
    names = {r.name for r in syn.rules_}
    assert {"zone -> borough", "total = part_a + part_b"} <= names, names
    assert (rows["total"] == rows["part_a"] + rows["part_b"]).all()
    known = rows["zone"] != RARE
    expected = df.drop_duplicates("zone").set_index("zone")["borough"]
    assert (rows.loc[known, "borough"] == rows.loc[known, "zone"].map(expected)).all()


def test_declared_rules_and_given_rows_work_with_grouped_values():
    df = planted_frame()
    syn = Synthesizer(config=fast_config(), progress=False, seed=0, rules=["zone -> borough"], find_rules=False).fit(df)
    assert [r.name for r in syn.rules_] == ["zone -> borough"]
    # Real rows hold the extremes the model does not: given, they are kept as they are.
    given = df.nlargest(3, "price")[["price", "day"]].reset_index(drop=True)
    out = syn.sample(given=given, seed=1)
    pd.testing.assert_frame_equal(out[given.columns], given)
    with pytest.raises(TabgenError, match="never held 'Zanzibar' in the training table, or in fewer rows than value"):
        syn.sample(given={"city": "Zanzibar"})
    holes = df.tail(2).copy()  # the table's own rows, its unique one among them: completed, never refused
    holes.loc[:, "borough"] = np.nan
    filled = syn.impute(holes, seed=0)
    assert filled["city"].tolist() == holes["city"].tolist() and filled["borough"].notna().all()


def test_numbers_as_categories_keep_their_dtype_and_a_table_of_few_rows_is_grouped_whole():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"code": rng.choice([1, 2, 3], 300), "x": rng.normal(size=300)})
    df.loc[0, "code"] = 9
    out, schema, _ = protected(df, infer_schema(df, categorical=["code"]), 5)
    assert out["code"].dtype == df["code"].dtype and out["code"].iloc[0] == 3 and schema["code"].categories == [1, 2, 3]
    tiny = pd.DataFrame({"t": ["a", "b", "c", "d"], "n": [1.5, 2.5, 3.5, 4.5]})
    out, schema, _ = protected(tiny, quiet_schema(tiny), 5)
    assert out["t"].tolist() == [RARE] * 4 and (schema["n"].min, schema["n"].max) == (2.0, 4.0)  # each half its mean


def test_the_cli_lists_what_it_protects_and_can_keep_every_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted_frame(600).to_csv("t.csv", index=False)
    runner = CliRunner()
    r = runner.invoke(main, ["fit", "t.csv", "--time-budget", "3s", "--no-rules"])
    assert r.exit_code == 0, r.output
    assert "Values of fewer than 5 rows, never learned nor generated" in r.output and "city: 1 rare value" in r.output
    r = runner.invoke(main, ["fit", "t.csv", "-o", "all.tabgen", "--time-budget", "3s", "--no-value-protection", "-q"])
    assert r.exit_code == 0, r.output
    model = Synthesizer.load("all.tabgen", progress=False)
    assert "Zanzibar" in model.schema_["city"].categories and model.config_.rare_value_rows == 0
    with pytest.raises(TabgenError, match="rare_value_rows must not be negative"):
        fast_config(rare_value_rows=-1)


def test_a_grid_column_keeps_its_grid_unless_rare_values_hold_more_than_a_small_share():
    rng = np.random.default_rng(2)
    common = rng.choice([0.0, 10.0, 20.0], 2000)
    few_rare = np.concatenate([common, [13.0, 37.0]])  # 2 rows of 2,002: moved to the nearest kept value
    numeric = QuantileNumeric(grid=True, rare_rows=5).fit(few_rare)
    assert numeric.grid_.tolist() == [0.0, 10.0, 20.0]
    many_rare = np.concatenate([common, np.arange(100, 160.0)])  # 3 % of rows: learned as a continuous column
    assert QuantileNumeric(grid=True, rare_rows=5).fit(many_rare).grid_ is None
    assert QuantileNumeric(grid=True).fit(many_rare).grid_ is not None  # without protection: every value

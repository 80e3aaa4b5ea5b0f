"""Rules kept by construction: the model table and back, and every row generated on every path."""

import numpy as np
import pandas as pd
import pytest

from tabgen import Synthesizer
from tabgen.errors import TabgenError
from tabgen.evaluation.result import EvaluationResult
from tabgen.evaluation.rules_kept import rules_kept
from tabgen.pairs import find_pairs
from tabgen.rules.kinds import Determines, Granularity, LinearIdentity, Order, Tie
from tabgen.rules.ruleset import RuleSet
from tabgen.schema import infer_schema

from conftest import fast_config

ZONES = {f"z{i}": b for i, b in enumerate(["north"] * 4 + ["south"] * 3 + ["east"] * 5)}


def ruled_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Planted rules: total = fare + tip + a surcharge of 0 or 2.5, end ≥ start, a zone in one borough,
    lot15 = lot in about 30 % of rows, prices mostly in whole hundreds."""
    rng = np.random.default_rng(seed)
    fare = np.round(rng.gamma(3, 5, n), 2)
    tip = np.round(fare * rng.uniform(0, 0.3, n), 2)
    surcharge = rng.choice([0.0, 2.5], n, p=[0.7, 0.3])
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90 * 24 * 60, n), unit="min")
    zone = rng.choice(list(ZONES), n)
    lot = rng.integers(1000, 9000, n).astype(float)
    lot15 = np.where(rng.random(n) < 0.3, lot, rng.integers(1000, 9000, n))
    price = np.where(rng.random(n) < 0.7, rng.integers(10, 90, n) * 100, rng.integers(1000, 9000, n)).astype(float)
    return pd.DataFrame({
        "fare": fare, "tip": tip, "total": np.round(fare + tip + surcharge, 2),
        "start": start, "end": start + pd.to_timedelta(rng.integers(3, 120, n), unit="min"),
        "zone": zone, "borough": [ZONES[z] for z in zone], "lot": lot, "lot15": lot15.astype(float), "price": price,
    })


def planted_rules(df: pd.DataFrame) -> list:
    counts = df.groupby(["zone", "borough"]).size()
    return [
        LinearIdentity("total", [[1, "fare"], [1, "tip"]], remainder=[0.0, 2.5], remainder_rows=[1, 1], tolerance=0.005),
        Order("start", "end"),
        Determines("zone", "borough", [[z, b, int(c)] for (z, b), c in counts.items()]),
        Tie("lot15", "lot", share=0.3),
        Granularity("price", [1000.0, 100.0, 1.0], [0.07, 0.63, 0.3]),
    ]


def kept(rule, rows: pd.DataFrame, schema) -> float:
    return float(rule.holds(rows, schema).mean())


def test_the_model_table_round_trips_to_the_table():
    df = ruled_frame()
    schema = infer_schema(df)
    rules = RuleSet.for_table(planted_rules(df), schema)
    table, model_schema = rules.model_table(df, schema)
    assert {"end - start (gap)", "total (remainder)", "lot15 == lot", "price (step)"} <= set(table) and len(table.columns) == 14
    assert (table["end - start (gap)"] >= 3).all() and model_schema["end - start (gap)"].kind == "numerical"
    back = rules.restore(table, schema)
    pd.testing.assert_frame_equal(back[df.columns], df, check_dtype=False)
    assert back["end"].dtype == df["end"].dtype


def test_the_rules_categorical_tokens_are_packed_into_one_column():
    df = ruled_frame()
    schema = infer_schema(df)
    rules = RuleSet.for_table(planted_rules(df), schema, df)
    table, model_schema = rules.model_table(df, schema)
    # remainder, tie and step in one categorical column of their combinations; the gap stays a number
    assert list(table.columns[len(df.columns):]) == ["rules", "end - start (gap)"]
    assert model_schema["rules"].kind == "categorical" and table["rules"].nunique() <= 2 * 2 * 3
    pd.testing.assert_frame_equal(rules.restore(table, schema)[df.columns], df, check_dtype=False)
    values, given = rules.model_given(df.head(2), df.head(2).notna().assign(tip=[True, False]), schema)
    assert given["rules"].tolist() == [True, False]  # a part unknown (the second row's tip): the pack is not given
    assert RuleSet.from_list(rules.to_list()).added == rules.added


def test_a_rule_that_would_write_a_column_twice_or_in_a_cycle_is_not_kept():
    df = ruled_frame(100)
    schema = infer_schema(df)
    rules = RuleSet.for_table([Order("start", "end"), Order("fare", "end"), Tie("fare", "tip", 0.1), Tie("tip", "fare", 0.1)],
                              schema)
    assert [r.name for r in rules] == ["end >= start", "fare == tip (10 % of rows)"]


def twice_tied_frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """A payment equal to the bill in 30 % of rows and to the last payment in another 20 %."""
    rng = np.random.default_rng(seed)
    bill, last = rng.integers(100, 5000, n).astype(float), rng.integers(100, 5000, n).astype(float)
    draw = rng.random(n)
    paid = np.where(draw < 0.3, bill, np.where(draw < 0.5, last, rng.integers(100, 5000, n)))
    return pd.DataFrame({"bill": bill, "last": last, "paid": paid.astype(float), "group": rng.choice(list("ab"), n)})


def test_a_column_tied_to_two_sources_learns_one_token_for_both():
    df = twice_tied_frame()
    ties = [Tie("paid", "bill", 0.3), Tie("paid", "last", 0.2)]
    rules = RuleSet.for_table(ties, infer_schema(df))
    assert len(rules) == 2 and set(rules.added.values()) == {"paid (tie)"}
    table, _ = rules.model_table(df, infer_schema(df))
    assert list(table.columns) == [*df.columns, "paid (tie)"]
    assert sorted(table["paid (tie)"].value_counts(normalize=True).round(1).to_dict().items()) == [(0, 0.5), (1, 0.3), (2, 0.2)]
    pd.testing.assert_frame_equal(rules.restore(table, infer_schema(df))[df.columns], df, check_dtype=False)

    syn = Synthesizer(config=fast_config(), progress=False, seed=0).fit(df)
    assert {r.name for r in syn.rules_} >= {t.name for t in ties}
    rows = syn.sample(2000)
    for tie in ties:  # both near the table's share, not one of them lost
        assert tie.share - 0.15 < kept(tie, rows, syn.schema_) < tie.share + 0.15, tie.name


@pytest.fixture(scope="module")
def fitted():
    df = ruled_frame()
    syn = Synthesizer(config=fast_config(), rules=planted_rules(df), find_rules=False, progress=False, seed=0).fit(df)
    return df, syn


def test_every_generated_row_keeps_every_rule(fitted):
    df, syn = fitted
    rows = syn.sample(2000)
    assert list(rows.columns) == list(df.columns) and rows["end"].dtype == df["end"].dtype
    for rule in syn.rules_:
        if isinstance(rule, (Tie, Granularity)):
            continue
        assert kept(rule, rows, syn.schema_) == 1.0, rule.name
    tie = kept(syn.rules_.rules[3], rows, syn.schema_)
    assert 0.1 < tie < 0.6  # learned as a token: near the table's 30 %, not 0 % as two columns drawn apart
    assert (rows["price"] % 100 == 0).mean() > 0.4


def test_given_cells_that_a_rule_writes_are_kept_and_the_rule_too(fitted):
    df, syn = fitted
    rows = syn.sample(200, given={"total": 30.0, "borough": "south"}, seed=1)
    assert (rows["total"] == 30.0).all() and (rows["borough"] == "south").all()
    assert set(rows["zone"]) <= {z for z, b in ZONES.items() if b == "south"}
    print("solved tips within the table's range:", rows["tip"].between(df["tip"].min(), df["tip"].max()).mean())
    for rule in syn.rules_.rules[:3]:
        assert kept(rule, rows, syn.schema_) == 1.0, rule.name
    ends = syn.sample(100, given={"end": "2024-02-01 12:00:00"}, seed=2)
    assert (ends["end"] == pd.Timestamp("2024-02-01 12:00")).all() and (ends["end"] >= ends["start"]).all()


def test_given_cells_that_break_a_rule_are_refused_naming_it(fitted):
    _, syn = fitted
    with pytest.raises(TabgenError, match="break the table's rule 'end >= start'"):
        syn.sample(5, given={"start": "2024-02-01 12:00:00", "end": "2024-02-01 11:00:00"})
    with pytest.raises(TabgenError, match="zone -> borough"):
        syn.sample(5, given={"zone": "z0", "borough": "east"})


def test_imputed_rows_keep_the_rules_and_their_observed_cells(fitted):
    df, syn = fitted
    holes = df.head(50).copy()
    holes.loc[::2, "total"] = np.nan
    holes.loc[1::2, "borough"] = np.nan
    filled = syn.impute(holes, seed=0)
    assert filled["total"].notna().all() and filled["borough"].notna().all()
    for rule in syn.rules_.rules[:3]:
        assert kept(rule, filled, syn.schema_) == 1.0, rule.name
    observed = holes.notna()
    assert (filled[observed] == holes[observed]).sum().sum() == observed.sum().sum()


def test_rules_survive_save_and_load(fitted, tmp_path):
    _, syn = fitted
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen", progress=False)
    assert [r.name for r in loaded.rules_] == [r.name for r in syn.rules_]
    pd.testing.assert_frame_equal(loaded.sample(300, seed=3), syn.sample(300, seed=3))


def test_the_cli_declares_shows_drops_and_refuses_rules(tmp_path):
    from click.testing import CliRunner

    from tabgen.cli import main

    ruled_frame(300).to_csv(tmp_path / "rides.csv", index=False)

    def fit(*args):
        return CliRunner().invoke(main, ["fit", str(tmp_path / "rides.csv"), "-o", str(tmp_path / "m.tabgen"),
                                         "--time-budget", "2", *args], catch_exceptions=False)

    shown = fit()
    assert shown.exit_code == 0, shown.output
    assert "Rules kept in generated rows" in shown.output and "order: end >= start" in shown.output
    dropped = fit("--drop-rule", "end >= start", "--rule", "fare <= total")
    assert dropped.exit_code == 0 and "order: end >= start" not in dropped.output and "total >= fare" in dropped.output
    assert "order: end >= start" not in fit("--no-rules").output
    broken = fit("--rule", "tip >= fare")
    assert broken.exit_code == 2 and broken.output.startswith("error: rule 'tip >= fare' does not hold in the table")
    assert "granularity: price steps" in shown.output and "price steps" not in fit("--drop-rule", "price steps").output
    unknown = fit("--drop-rule", "a -> b")
    assert unknown.exit_code == 2 and "no rule named 'a -> b' to drop; the rules are:" in unknown.output


def test_a_rebalanced_column_that_a_rule_writes_keeps_its_shares_and_the_rule(fitted):
    _, syn = fitted
    rows = syn.sample(400, rebalance={"borough": {"east": 0.5}}, seed=4)
    assert (rows["borough"] == "east").mean() == 0.5
    assert kept(syn.rules_.rules[2], rows, syn.schema_) == 1.0


def test_a_column_two_parents_determine_keeps_both_by_drawing_the_second_parent():
    rng = np.random.default_rng(0)
    customer = rng.choice([f"c{i}" for i in range(40)], 400)
    df = pd.DataFrame({"order": [f"o{i // 2}" for i in range(400)], "customer": customer,
                       "name": [f"n{int(c[1:]) // 2}" for c in customer]})
    df["name"] = df.groupby("order")["name"].transform("first")  # an order has one name
    df["customer"] = [c if n == f"n{int(c[1:]) // 2}" else f"c{2 * int(n[1:])}" for c, n in zip(df.customer, df.name)]
    schema = infer_schema(df)

    def pairs(parent, child):
        return [[p, c, int(k)] for (p, c), k in df.groupby([parent, child]).size().items()]

    rules = RuleSet.for_table([Determines("order", "name", pairs("order", "name")),
                               Determines("customer", "name", pairs("customer", "name"))], schema)
    assert rules.drawn == {"customer -> name"}
    shuffled = df.assign(customer=rng.permutation(df["customer"].to_numpy()))
    restored = rules.restore(shuffled, schema, rng=rng)
    for rule in rules:
        assert rule.holds(restored, schema).all(), rule.name
    assert RuleSet.from_list(rules.to_list()).drawn == rules.drawn


def test_an_order_s_later_column_keeps_its_steps_and_its_order():
    rng = np.random.default_rng(1)
    cost = np.round(rng.uniform(10, 500, 600), 2)
    price = np.where(rng.random(600) < 0.7, np.ceil(cost / 100 + 1) * 100, np.round(cost + rng.uniform(1, 50, 600)))
    df = pd.DataFrame({"cost": cost, "price": price})
    schema = infer_schema(df)
    rules = RuleSet.for_table([Order("cost", "price"), Granularity("price", [100.0, 1.0], [0.7, 0.3])], schema)
    assert [r.kind for r in rules] == ["order", "granularity"]
    table, _ = rules.model_table(df, schema)
    table["price - cost (gap)"] += rng.uniform(-0.3, 0.3, 600)  # a generated gap is not exact
    back = rules.restore(table, schema)
    assert (back["price"] >= back["cost"]).all()
    assert abs((back["price"] % 100 == 0).mean() - (df["price"] % 100 == 0).mean()) < 0.05
    assert (back["price"] == back["price"].round()).all()


def test_an_order_s_later_column_beyond_the_tables_widest_gap_is_written_from_the_gap():
    df = ruled_frame()[["start", "end"]]  # ends 3 to 119 minutes after their starts
    schema = infer_schema(df)
    rules = RuleSet.for_table([Order("start", "end")], schema, df)
    (order,) = rules.rules
    assert 100 < order.widest_gap <= 119 * 60 / pd.Timedelta(1, schema["end"].datetime_unit).total_seconds()
    table, _ = rules.model_table(df, schema)
    far = np.arange(len(df)) % 2 == 0
    table.loc[far, "end"] = table.loc[far, "start"] + pd.Timedelta(days=30)  # a model's own end, far off
    back = rules.restore(table, schema)
    assert (back["end"] == df["end"]).all()  # the far ends from the learned gap, the others the model's own
    assert RuleSet.from_list(rules.to_list()).rules == [order]


def mistyped_totals(n: int = 1500, seed: int = 0, share: float = 0.04) -> pd.DataFrame:
    """total = fare + tip + a surcharge of 0 or 2.5, and end ≥ start, except in ``share`` of rows each (a
    total mistyped, the times swapped)."""
    rng = np.random.default_rng(seed)
    fare = np.round(rng.gamma(3, 5, n), 2)
    tip = np.round(fare * rng.uniform(0, 0.3, n), 2)
    total = np.round(fare + tip + rng.choice([0.0, 2.5], n, p=[0.7, 0.3]), 2)
    odd = rng.random(n) < share
    total[odd] = np.round(total[odd] + rng.uniform(1, 9, odd.sum()), 2)
    start = (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90 * 24 * 60, n), unit="min")).to_numpy()
    end = start + pd.to_timedelta(rng.integers(3, 120, n), unit="min").to_numpy()
    swapped = rng.random(n) < share
    start[swapped], end[swapped] = end[swapped], start[swapped]
    zone = rng.choice(list(ZONES), n)
    borough = np.array([ZONES[z] for z in zone], dtype=object)
    elsewhere = rng.random(n) < share
    borough[elsewhere] = [{"north": "south", "south": "east", "east": "north"}[b] for b in borough[elsewhere]]
    return pd.DataFrame({"fare": fare, "tip": tip, "total": total, "kind": rng.choice(list("ab"), n), "start": start, "end": end,
                         "zone": zone, "borough": borough})


def test_an_identity_with_exceptions_learns_them_as_a_class_of_its_remainder():
    df = mistyped_totals()
    schema = infer_schema(df)
    odd = ~LinearIdentity("total", [[1, "fare"], [1, "tip"]], [0.0, 2.5], tolerance=0.005).holds(df, schema)
    identity = LinearIdentity("total", [[1, "fare"], [1, "tip"]], [0.0, 2.5], [1000, 440], 0.005, other_rows=int(odd.sum()))
    rules = RuleSet.for_table([identity], schema)
    table, model_schema = rules.model_table(df, schema)
    assert (table.loc[odd, "total (remainder)"] == "other").all() and not (table.loc[~odd, "total (remainder)"] == "other").any()
    pd.testing.assert_frame_equal(rules.restore(table, schema)[df.columns], df, check_dtype=False)
    # a generated exception keeps the model's own total; a generated remainder writes it
    table["total"] += 0.5
    back = rules.restore(table, schema)
    assert np.allclose(back.loc[odd, "total"], df.loc[odd, "total"] + 0.5)
    assert (back.loc[~odd, "total"] == df.loc[~odd, "total"]).all()
    assert identity.name == f"total = fare + tip + one of 0, 2.5 ({np.floor(1000 * identity.share) / 10:g} % of rows)"


def test_an_order_with_exceptions_learns_them_as_negative_gaps():
    df = mistyped_totals()
    schema = infer_schema(df)
    swapped = df["end"] < df["start"]
    order = Order("start", "end", other_rows=int(swapped.sum()), held_rows=int((~swapped).sum()))
    rules = RuleSet.for_table([order], schema)
    table, _ = rules.model_table(df, schema)
    assert ((table["end - start (gap)"] < 0) == swapped).all()
    pd.testing.assert_frame_equal(rules.restore(table, schema)[df.columns], df, check_dtype=False)
    # a negative gap writes the exception; elsewhere the model's own end stays where it keeps the order
    table["end"] = table["start"] + pd.Timedelta("5min")
    back = rules.restore(table, schema)
    assert (back.loc[swapped, "end"] == df.loc[swapped, "end"]).all()
    assert (back.loc[~swapped, "end"] == table.loc[~swapped, "end"]).all()
    assert order.name == f"end >= start ({np.floor(1000 * (~swapped).mean()) / 10:g} % of rows)"
    assert not RuleSet.for_table([order], schema).check_given(df.head(50), schema)  # swapped given times are one


def test_a_lookup_with_exceptions_learns_them_as_a_class_of_its_own():
    df = mistyped_totals()
    schema = infer_schema(df)
    pairs = [[z, b, int((df["zone"] == z).sum())] for z, b in ZONES.items()]
    odd = ~Determines("zone", "borough", pairs).holds(df, schema)
    rule = Determines("zone", "borough", pairs, other_rows=int(odd.sum()))
    rules = RuleSet.for_table([rule], schema)
    table, _ = rules.model_table(df, schema)
    assert ((table["borough (from zone)"] == "other") == odd).all()
    pd.testing.assert_frame_equal(rules.restore(table, schema)[df.columns], df, check_dtype=False)
    # a generated exception keeps the model's own borough; elsewhere the zone's is written
    table["borough"] = "west"
    back = rules.restore(table, schema)
    assert (back.loc[odd, "borough"] == "west").all() and (back.loc[~odd, "borough"] == df.loc[~odd, "borough"]).all()
    # a given borough no zone has keeps its zone; the token is known only where both cells are given
    given = pd.DataFrame({"borough": np.ones(len(df), dtype=bool)})
    assert (rules.restore(table, schema, given=given)["zone"] == df["zone"]).all()
    values = pd.DataFrame({"zone": ["z0", "z0", None], "borough": ["north", "east", "east"]})
    cells, _ = rules.model_given(values, values.notna(), schema)
    assert cells["borough (from zone)"].tolist() == [1, "other", None]
    assert rule.name == f"zone -> borough ({np.floor(1000 * rule.share) / 10:g} % of rows)" and rule.partial


def test_a_column_a_lookup_with_exceptions_writes_is_drawn_where_it_leaves_the_model_s_own():
    rng = np.random.default_rng(5)
    product = rng.integers(0, 60, 1200)
    df = pd.DataFrame({"product": [f"p{p}" for p in product], "name": [f"n{p // 2}" for p in product],
                       "category": [f"c{p // 20}" for p in product]})
    odd = rng.random(len(df)) < 0.02  # another name of the same category
    df.loc[odd, "name"] = [f"n{(p // 20) * 10 + (p // 2 + 1) % 10}" for p in product[odd]]
    schema = infer_schema(df)

    def pairs(parent, child):
        return [[p, g[child].mode()[0], len(g)] for p, g in df.groupby(parent)]

    lookup = Determines("product", "name", pairs("product", "name"), other_rows=int(odd.sum()))
    rules = RuleSet.for_table([Determines("product", "category", pairs("product", "category")), lookup,
                               Determines("name", "category", pairs("name", "category"))], schema)
    assert len(rules) == 3 and rules.drawn == {"name -> category"}
    table, _ = rules.model_table(df, schema)
    table["name"] = rng.choice([f"n{i}" for i in range(30)], len(df))  # the model's own names, in exceptions too
    back = rules.restore(table, schema, rng=rng)
    exceptions = (table["name (from product)"] == "other").to_numpy()
    assert (back.loc[~exceptions, "name"] == df.loc[~exceptions, "name"]).all()
    for rule in rules.rules[::2]:  # the exact ones, in every row
        assert rule.holds(back, schema).all(), rule.name


def test_generated_rows_keep_rules_with_exceptions_near_their_share():
    df = mistyped_totals()
    syn = Synthesizer(config=fast_config(), progress=False, seed=0).fit(df)
    identity, = [r for r in syn.rules_ if isinstance(r, LinearIdentity)]
    order, = [r for r in syn.rules_ if isinstance(r, Order)]
    lookup, = [r for r in syn.rules_ if isinstance(r, Determines)]
    assert identity.other_rows > 0 and 0.94 < identity.share < 0.98 and order.name.startswith("end >= start (9")
    assert lookup.name.startswith("zone -> borough (9")
    rows = syn.sample(2000, seed=1)
    unruled = Synthesizer(config=fast_config(), progress=False, seed=0, find_rules=False).fit(df).sample(2000, seed=1)
    for rule in (identity, order, lookup):
        assert rule.share - 0.06 < kept(rule, rows, syn.schema_) < 1.0, rule.name  # exceptions too, at about their share
    assert kept(identity, unruled, syn.schema_) < 0.5  # without the rule, most totals are the model's own
    assert kept(lookup, unruled, syn.schema_) < lookup.share - 0.06
    # given cells off the identity are one of its exceptions, not refused; a given total is kept
    off = syn.sample(20, given={"fare": 10.0, "tip": 1.0, "total": 20.0}, seed=2)
    assert (off["total"] == 20.0).all()
    solved = syn.sample(200, given={"total": 30.0}, seed=3)
    assert (solved["total"] == 30.0).all() and solved["tip"].notna().all()


def test_a_given_total_is_solved_for_its_widest_term():
    rng = np.random.default_rng(2)
    fare = np.round(rng.gamma(3, 5, 400), 2)
    tolls = np.where(rng.random(400) < 0.2, 6.12, 0.0)
    df = pd.DataFrame({"fare": fare, "tolls": tolls, "total": np.round(fare + tolls, 2)})
    schema = infer_schema(df)
    rules = RuleSet.for_table([LinearIdentity("total", [[1, "fare"], [1, "tolls"]], tolerance=0.005)], schema)
    generated = df.head(20).assign(total=30.0)  # the model conditioned on total = 30 leaves a difference
    back = rules.restore(generated, schema, given=pd.DataFrame({"total": np.ones(20, dtype=bool)}))
    assert (back["total"] == 30.0).all() and (back["tolls"] == generated["tolls"]).all()
    assert np.allclose(back["fare"] + back["tolls"], 30.0)


def test_evaluate_lists_each_rule_of_the_real_table_with_the_share_each_table_keeps():
    real = mistyped_totals()
    synthetic = real.assign(borough=real["borough"].sample(frac=1, random_state=0).to_numpy())
    rows = rules_kept(real, synthetic, None, infer_schema(real))
    lookup, = [r for r in rows if r["rule"].startswith("zone -> borough (")]
    assert lookup["partial"] and lookup["holdout"] is None and lookup["synthetic"] < 0.6 < 0.9 < lookup["real"] < 1
    # a share is shown rounded down, as in the rule's name: 100 % only where every row keeps it
    text = "\n".join(EvaluationResult(rules=[{**lookup, "real": 0.9996}]).rules_table())
    assert "99.9%" in text and "100.0%" not in text


def test_a_parent_drawn_for_a_given_child_carries_its_one_to_one_partner():
    rng = np.random.default_rng(6)
    zone = rng.integers(0, 12, 600)
    df = pd.DataFrame({"zone": [f"z{z}" for z in zone], "code": zone + 100, "borough": [ZONES[f"z{z}"] for z in zone]})
    schema = find_pairs(df, infer_schema(df, categorical=["code"]))
    partner, = schema.derived
    parent = partner.derived_from
    pairs = [[p, ZONES[f"z{int(p) - 100}" if parent == "code" else p], int(k)] for p, k in df[parent].value_counts().items()]
    rules = RuleSet.for_table([Determines(parent, "borough", pairs)], schema)
    back = rules.restore(df.assign(borough="south"), schema, given=pd.DataFrame({"borough": np.ones(600, dtype=bool)}), rng=rng)
    assert (back["borough"] == "south").all() and rules.rules[0].holds(back, schema).all()
    assert (back["code"].astype(int) == back["zone"].str[1:].astype(int) + 100).all()  # the partner follows the drawn zone


def test_a_formula_declared_with_exceptions_is_kept_at_its_share_and_saved(tmp_path):
    rng = np.random.default_rng(3)
    n = 1500
    x = np.round(rng.uniform(4, 9, n), 2)
    y, z = np.round(x * rng.uniform(0.98, 1.02, n), 2), np.round(x * rng.uniform(0.58, 0.64, n), 2)
    depth = np.round(2 * z / (x + y) * 100, 1)
    z[rng.choice(n, 15, replace=False)] = 0.0  # measured 0: 1 % of rows break the formula
    df = pd.DataFrame({"x": x, "y": y, "z": z, "depth": depth, "cut": rng.choice(["good", "ideal"], n)})
    with pytest.raises(TabgenError, match="or end it with '\\(with exceptions\\)' to keep it in the 99 % of rows"):
        Synthesizer(config=fast_config(), progress=False, rules=["depth = 2*z/(x+y)*100 ± 0.1"]).fit(df)
    syn = Synthesizer(config=fast_config(), progress=False, seed=0, find_rules=False,
                      rules=["depth = 2*z/(x+y)*100 ± 0.1 (with exceptions)"]).fit(df)
    (rule,) = syn.rules_.rules
    assert rule.name == "depth = 2*z/(x+y)*100 (99 % of rows)" and rule.partial
    rows = syn.sample(2000, seed=1)
    assert kept(rule, rows, syn.schema_) > 0.95
    syn.save(tmp_path / "m.tabgen")
    assert Synthesizer.load(tmp_path / "m.tabgen", progress=False).rules_.rules == [rule]

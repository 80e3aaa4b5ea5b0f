"""Declared rules: the grammar parse_rule reads, the expressions it refuses, formulas computed with numpy,
and check_declared filling in what the table gives and refusing a table that breaks a rule."""

import warnings

import numpy as np
import pandas as pd
import pytest

from tabgen.errors import TabgenError
from tabgen.rules.declared import check_declared, evaluate_expression, expression_columns, parse_rule, split_exceptions
from tabgen.rules.kinds import Determines, Formula, LinearIdentity, Order, Tie
from tabgen.schema import infer_schema


def _table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Trips: amounts in cents that add up, integer counts, dates in order, zones within boroughs."""
    rng = np.random.default_rng(seed)
    fare, tip, tolls = (np.round(rng.uniform(lo, hi, n), 2) for lo, hi in ((5, 60), (0, 12), (0, 6)))
    a, b = rng.integers(0, 500, n), rng.integers(0, 500, n)
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    zone = rng.choice(["z1", "z2", "z3", "z4", "z5"], n)
    x, y = np.round(rng.uniform(3, 9, n), 2), np.round(rng.uniform(3, 9, n), 2)
    z = np.round(rng.uniform(2, 5, n), 2)
    return pd.DataFrame({
        "fare paid": fare, "tip": tip, "tolls": tolls, "total amount": np.round(fare + tip + tolls, 2),
        "a": a, "b": b, "c": 2 * a - b, "start": start, "end": start + pd.to_timedelta(rng.integers(0, 9, n), unit="D"),
        "zone": zone, "borough": pd.Series(zone).map({"z1": "M", "z2": "M", "z3": "Q", "z4": "Q", "z5": "B"}),
        "x": x, "y": y, "z": z, "depth": np.round(2 * z / (x + y) * 100, 1),
    })


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def schema(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # integer columns of distinct values look like identifiers
        return infer_schema(table, numerical=["a", "b", "c"])


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize("text, terms", [
    ("c = 2*a - b", [[2, "a"], [-1, "b"]]),
    ("c=a*2-b", [[2, "a"], [-1, "b"]]),
    ("c = -b + 2 * a", [[-1, "b"], [2, "a"]]),
    ("c = -2*b + a", [[-2, "b"], [1, "a"]]),
    ("c = 3*(a - b)", [[3, "a"], [-3, "b"]]),
    ("total amount = fare paid + tip + tolls", [[1, "fare paid"], [1, "tip"], [1, "tolls"]]),
    ("`total amount` = `fare paid` + tip + `tolls`", [[1, "fare paid"], [1, "tip"], [1, "tolls"]]),
    ("  total amount=fare paid+tip  ", [[1, "fare paid"], [1, "tip"]]),
])
def test_a_sum_of_columns_with_whole_coefficients_is_an_identity(text, terms, schema):
    rule = parse_rule(text, schema)
    assert isinstance(rule, LinearIdentity)
    assert rule.terms == terms and rule.remainder == [0.0] and rule.remainder_rows == [] and rule.tolerance == 0.0
    assert rule.target_column == ("c" if text.strip().startswith("c") else "total amount")


@pytest.mark.parametrize("text, low, high, zero_exempt", [
    ("end >= start", "start", "end", False),
    ("start <= end", "start", "end", False),
    ("end > start", "start", "end", False),  # strict is read as >=
    ("start<end", "start", "end", False),
    ("b >= a (or 0)", "a", "b", True),
    ("`end` >= `start`", "start", "end", False),
])
def test_orders(text, low, high, zero_exempt, schema):
    assert parse_rule(text, schema) == Order(low=low, high=high, zero_exempt=zero_exempt)


def test_determines(schema):
    assert parse_rule("zone -> borough", schema) == Determines(parent="zone", child="borough", pairs=[])
    assert parse_rule("`zone`->`borough`", schema) == Determines(parent="zone", child="borough", pairs=[])


@pytest.mark.parametrize("text, expression, tolerance", [
    ("depth = 2*z/(x+y)*100", "2*z/(x+y)*100", 0.0),
    ("depth = 2*z/(x+y)*100 ± 0.05", "2*z/(x+y)*100", 0.05),
    ("depth = 2*z/(x+y)*100 +- 0.05", "2*z/(x+y)*100", 0.05),
    ("depth = 2*z/(x+y)*100 +/- 5e-2", "2*z/(x+y)*100", 0.05),
    ("c = a + a - b", "a + a - b", 0.0),  # a column twice: not a sum of distinct columns
    ("c = 1.5*a", "1.5*a", 0.0),
    ("c = a + 1", "a + 1", 0.0),
    ("total amount = round(fare paid * 1.1, 2) + max(tip, tolls)", "round(`fare paid` * 1.1, 2) + max(tip, tolls)", 0.0),
])
def test_other_equations_are_formulas(text, expression, tolerance, schema):
    rule = parse_rule(text, schema)
    assert isinstance(rule, Formula)
    assert (rule.expression, rule.tolerance) == (expression, pytest.approx(tolerance))


def test_a_tolerance_on_an_identity_is_kept(schema):
    assert parse_rule("c = 2*a - b ± 0.5", schema).tolerance == 0.5


def test_bare_names_take_the_longest_column_and_are_stored_in_backticks():
    df = pd.DataFrame({"total": [1.0, 2.0], "total amount": [3.0, 4.0], "class": [5.0, 6.0], "y": [7.0, 8.0]})
    schema = infer_schema(df, numerical=list(df.columns))
    rule = parse_rule("y = total amount * 2 + total / class", schema)
    assert rule.expression == "`total amount` * 2 + total / `class`"  # `class` is a keyword
    assert rule.columns == ["y", "total amount", "total", "class"]
    assert parse_rule("y = total + 2*total amount", schema).terms == [[1, "total"], [2, "total amount"]]
    assert parse_rule(rule.name, schema) == rule  # a formula's name reads back as itself


def test_names_read_back_as_their_rules(schema):
    for text in ["total amount = fare paid + tip + tolls", "c = 2*a - b", "end >= start", "b >= a (or 0)",
                 "zone -> borough", "depth = 2*z/(x+y)*100"]:
        rule = parse_rule(text, schema)
        assert parse_rule(rule.name, schema) == rule


def test_a_bare_name_that_also_reads_as_an_expression_must_be_backticked():
    df = pd.DataFrame({"a": [1.5, 2.5], "b": [0.5, 1.5], "a-b": [1.0, 1.0], "c": [1.0, 1.0]})
    schema = infer_schema(df, numerical=list(df.columns))
    with pytest.raises(TabgenError, match=r"'a-b' is a column and also reads as an expression.*`a-b`"):
        parse_rule("c = a-b", schema)
    assert parse_rule("c = a - b", schema).terms == [[1, "a"], [-1, "b"]]
    assert parse_rule("c = `a`-`b`", schema).terms == [[1, "a"], [-1, "b"]]
    assert parse_rule("c = `a-b` * 1.5", schema).columns == ["c", "a-b"]


def test_a_number_is_a_number_unless_backticked():
    schema = infer_schema(pd.DataFrame({"2019": np.arange(12.0) + 0.5, "y": np.arange(12.0)}))
    with pytest.raises(TabgenError, match="names no column"):
        parse_rule("y = 2019 * 2", schema)
    assert parse_rule("y = `2019` - 0.5", schema).columns == ["y", "2019"]


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("text, message", [
    ("c = a + bb", r"rule 'c = a \+ bb': no column 'bb' \(did you mean 'b'\? columns are \['fare paid', "),
    ("cc = a + b", "no column 'cc'"),
    ("zone -> boro", "no column 'boro'"),
    ("c = c + a", "'c' is on both sides"),
    ("a >= a", "'a' is on both sides"),
    ("zone = a + b", "'zone' is categorical"),
    ("a >= zone", "'zone' is categorical"),
    ("end >= a", "'end' is a datetime and 'a' a number"),
    ("c = 5", "names no column"),
    ("c == a", "not a rule"),
    ("c >= a + b", "an order compares two columns"),
    ("a -> b -> c", "one '->' per rule"),
    ("c = a = b", "one '=' per rule"),
    ("end >= start ± 1", "a tolerance belongs to an identity or a formula"),
    ("c = a + b (or 0)", r"'\(or 0\)' belongs to an order"),
    ("c = a + b ± -1", "a tolerance is a number at the end"),
    ("c = `a + b", "a backtick is not closed"),
    ("`` = a", "empty backticks"),
    ("x y = a", "'x y' is not a column name"),
    ("c = 2a", "not an expression"),
])
def test_rules_that_cannot_be_kept_are_refused(text, message, schema):
    with pytest.raises(TabgenError, match=message):
        parse_rule(text, schema)


@pytest.mark.parametrize("expression, what", [
    ("__import__('os').system('x')", "calling \"__import__\\('os'\\).system\""),
    ("a.b", r"attribute access \('.'\)"),
    ("[1][0]", r"indexing \('\[...\]'\)"),
    ("'text'", r"text \('text'\)"),
    ("a if b else 1", "'if ... else'"),
    ("a < b", "a comparison"),
    ("a and b", "'and' / 'or'"),
    ("lambda: 1", "a lambda"),
    ("[x for x in a]", "a comprehension"),
    ("open(a)", "calling 'open'"),
    ("a ^ 2", r"'\^' \(a power is \*\*\)"),
    ("a // 2", "'//'"),
    ("True + a", "the constant True"),
    ("max(a, *b)", r"'\*' unpacking"),
])
def test_unsafe_expressions_are_refused_naming_what(expression, what, schema):
    with pytest.raises(TabgenError, match=f"{what} is not allowed"):
        parse_rule(f"c = {expression}", schema)
    with pytest.raises(TabgenError, match=f"{what} is not allowed"):
        evaluate_expression(expression, {"a": np.ones(2), "b": np.ones(2)})


@pytest.mark.parametrize("expression, message", [
    ("max(a)", r"max\(\) takes 2 or more argument\(s\), got 1"),
    ("sqrt(a, b)", r"sqrt\(\) takes 1 argument\(s\), got 2"),
    ("round(a, b)", "a whole number of digits"),
    ("round(a, 1.5)", "a whole number of digits"),
    ("1" + "0" * 400 + " + a", "too large for a float"),
])
def test_functions_take_what_they_take(expression, message):
    with pytest.raises(TabgenError, match=message):
        expression_columns(expression)


def test_datetimes_of_different_units_are_refused():
    df = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=15, freq="D"),
                       "at": pd.date_range("2024-01-01 00:00:07", periods=15, freq="37s")})
    with pytest.raises(TabgenError, match=r"'day' is counted in days and 'at' in seconds"):
        parse_rule("at >= day", infer_schema(df))


# ------------------------------------------------------------------ expressions


def test_expression_columns_in_order_of_first_appearance():
    assert expression_columns("`total amount` * 2 + log(tip) - `total amount` + max(a, b, `a b`)") == [
        "total amount", "tip", "a", "b", "a b"]
    assert expression_columns("abs + log(abs)") == ["abs"]  # a function's name is a column where not called
    assert expression_columns("2 + 3") == []


def test_formulas_are_computed_elementwise_in_float64():
    x = np.array([1.0, 4.0, np.nan, -2.0])
    z = np.array([2, 0, 3, 5])
    out = evaluate_expression("`x y` ** 2 / z + sqrt(abs(`x y`)) % 3 - -min(z, 1, `x y`) + exp(log(z))",
                              {"x y": x, "z": z})
    with np.errstate(all="ignore"):
        expected = x**2 / z + np.sqrt(np.abs(x)) % 3 + np.minimum(np.minimum(z, 1), x) + np.exp(np.log(z))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected)
    np.testing.assert_array_equal(evaluate_expression("round(v, -2) + round(w)", {"v": np.array([1250.0]), "w": np.array([2.5])}),
                                  [1202.0])  # halves to even, as numpy rounds
    np.testing.assert_array_equal(evaluate_expression("+a - 1", {"a": [1, 2]}), [0.0, 1.0])


def test_division_by_zero_gives_what_numpy_gives_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = evaluate_expression("a / b", {"a": np.array([1.0, 0.0, 1.0]), "b": np.array([0.0, 0.0, 2.0])})
        odd = evaluate_expression("log(b) + sqrt(b - 1) + b % 0", {"b": np.array([0.0])})
    assert np.isinf(out[0]) and np.isnan(out[1]) and out[2] == 0.5 and np.isnan(odd[0])


def test_a_constant_expression_takes_the_columns_length():
    np.testing.assert_array_equal(evaluate_expression("2 ** 3 - 1", {"a": np.zeros(3)}), [7.0, 7.0, 7.0])


def test_evaluating_needs_every_column():
    with pytest.raises(TabgenError, match="no column 'b'"):
        evaluate_expression("a + b", {"a": np.ones(2)})


# ------------------------------------------------------------------ checking against the table


def test_check_fills_a_determinations_pairs(schema):
    df = pd.DataFrame({"zone": ["z1", "z2", None, "z1", "z3", None], "borough": ["M", "M", "Q", "M", None, "Q"]})
    rule = check_declared(parse_rule("zone -> borough", schema), df, infer_schema(df))
    assert rule.pairs == [["z1", "M", 2], ["z2", "M", 1], [None, "Q", 2], ["z3", None, 1]]
    numbers = pd.DataFrame({"code": [10, 20, 10, 30] * 3, "borough": ["M", "Q", "M", "B"] * 3})
    rule = check_declared(Determines("code", "borough"), numbers, infer_schema(numbers, numerical=["code"]))
    assert rule.pairs == [[10.0, "M", 6], [20.0, "Q", 3], [30.0, "B", 3]]  # numbers as floats


def test_check_fills_tolerances_from_the_columns_decimals(table, schema):
    cents = check_declared(parse_rule("total amount = fare paid + tip + tolls", schema), table, schema)
    assert cents.tolerance == pytest.approx(0.005) and cents.remainder_rows == [len(table)]
    integers = check_declared(parse_rule("c = 2*a - b", schema), table, schema)
    assert integers.tolerance == 0.0  # integers add up exactly: 0.5 would take a 7.4 for a 7
    formula = check_declared(parse_rule("depth = 2*z/(x+y)*100", schema), table, schema)
    assert formula.tolerance == pytest.approx(0.05)  # depth is written to 0.1
    given = check_declared(parse_rule("depth = 2*z/(x+y)*100 ± 0.2", schema), table, schema)
    assert given.tolerance == 0.2
    assert check_declared(parse_rule("end >= start", schema), table, schema) == Order(low="start", high="end")


def test_check_refuses_a_broken_identity_naming_rows_and_values(table, schema):
    broken = table.copy()
    broken.loc[[2, 16, 20, 30], "total amount"] += 1.0
    rule = parse_rule("total amount = fare paid + tip + tolls", schema)
    row = broken.iloc[2][["total amount", "fare paid", "tip", "tolls"]].map(lambda v: repr(float(v)))
    with pytest.raises(TabgenError) as error:
        check_declared(rule, broken, schema)
    assert str(error.value) == (
        f"rule 'total amount = fare paid + tip + tolls' does not hold in the table (within 0.005): rows 3, 17 and 2 others "
        f"break it (e.g. row 3: total amount={row['total amount']}, fare paid={row['fare paid']}, tip={row['tip']}, "
        f"tolls={row['tolls']}; the right side gives {round(float(row['total amount']) - 1, 2)!r}); correct those rows, or "
        "give a tolerance if it holds only up to rounding ('... ± 0.05')")


def test_check_refuses_broken_orders_and_formulas(table, schema):
    broken = table.copy()
    broken.loc[5, "end"] = broken.loc[5, "start"] - pd.Timedelta(days=1)
    with pytest.raises(TabgenError, match=r"'end >= start' does not hold in the table: row 6 breaks it \(e.g. row 6: start=2024"):
        check_declared(parse_rule("end >= start", schema), broken, schema)
    with pytest.raises(TabgenError, match=r"'depth = 2\*z/\(x\+y\)\*99' does not hold in the table \(within 0.05\): rows 1, 2 "):
        check_declared(parse_rule("depth = 2*z/(x+y)*99", schema), table, schema)


def test_a_rule_declared_with_exceptions_counts_the_rows_that_break_it(table, schema):
    broken = table.copy()
    broken.loc[5, "end"] = broken.loc[5, "start"] - pd.Timedelta(days=1)
    broken.loc[7, "z"] = 0.0  # a diamond measured 0
    broken.loc[9, "total amount"] += 1.0
    with pytest.raises(TabgenError, match=r"or end it with '\(with exceptions\)' to keep it in the 97.5 % of rows"):
        check_declared(parse_rule("end >= start", schema), broken, schema)
    text, exceptions = split_exceptions("end >= start  ( with exceptions ) ")
    assert (text, exceptions) == ("end >= start", True) and split_exceptions("end >= start") == ("end >= start", False)
    order = check_declared(parse_rule(text, schema), broken, schema, exceptions)
    assert (order.held_rows, order.other_rows, order.name) == (39, 1, "end >= start (97.5 % of rows)")
    formula = check_declared(parse_rule("depth = 2*z/(x+y)*100", schema), broken, schema, True)
    assert (formula.held_rows, formula.other_rows, formula.name) == (39, 1, "depth = 2*z/(x+y)*100 (97.5 % of rows)")
    identity = check_declared(parse_rule("total amount = fare paid + tip + tolls", schema), broken, schema, True)
    assert (identity.remainder_rows, identity.other_rows, identity.partial) == ([39], 1, True)
    broken.loc[[2, 16, 20], "total amount"] += 1.0
    with pytest.raises(TabgenError, match=r"that is 10.0 % of the rows, and a rule with exceptions allows 5 %"):
        check_declared(parse_rule("total amount = fare paid + tip + tolls", schema), broken, schema, True)
    first, later = np.flatnonzero(broken["zone"] == "z3")[:2]
    broken.loc[later, "borough"] = "X"  # a zone filed once under another borough
    with pytest.raises(TabgenError, match=r"if a few rows are mistyped, end it with '\(with exceptions\)'"):
        check_declared(parse_rule("zone -> borough", schema), broken, schema)
    lookup = check_declared(parse_rule("zone -> borough", schema), broken, schema, True)
    assert (lookup.other_rows, lookup.name) == (1, "zone -> borough (97.5 % of rows)")
    assert dict((z, b) for z, b, _ in lookup.pairs)["z3"] == "Q"


def test_check_refuses_a_parent_with_two_children(table, schema):
    broken = table.copy()
    first = int(np.flatnonzero(broken["zone"] == "z3")[0])
    later = int(np.flatnonzero(broken["zone"] == "z3")[1])
    broken.loc[later, "borough"] = "X"
    message = rf"zone='z3' goes with borough='Q' \(row {first + 1}\) and borough='X' \(row {later + 1}\)"
    with pytest.raises(TabgenError, match=message):
        check_declared(parse_rule("zone -> borough", schema), broken, schema)


def test_rows_with_a_missing_value_are_not_checked(table, schema):
    holes = table.copy()
    holes.loc[[1, 4], "tip"] = np.nan
    rule = check_declared(parse_rule("total amount = fare paid + tip + tolls", schema), holes, schema)
    assert rule.remainder_rows == [len(table) - 2]


def test_a_datetime_identity_counts_its_unit():
    df = pd.DataFrame({"start": pd.date_range("2024-01-01", periods=20, freq="D"), "days": np.arange(20) % 4})
    df["end"] = df["start"] + pd.to_timedelta(df["days"], unit="D")
    schema = infer_schema(df, numerical=["days"])
    assert check_declared(parse_rule("end = start + days", schema), df, schema).tolerance == 0.0
    df.loc[3, "end"] += pd.Timedelta(days=1)
    with pytest.raises(TabgenError, match=r"row 4 breaks it \(e.g. row 4: end=2024-01-08 00:00:00, .*side gives 2024-01-07"):
        check_declared(parse_rule("end = start + days", schema), df, schema)


def test_rule_objects_are_checked_as_text_is(table, schema):
    with pytest.raises(TabgenError, match="no column 'fare'"):
        check_declared(LinearIdentity("total amount", [[1, "fare"], [1, "tip"]]), table, schema)
    with pytest.raises(TabgenError, match="'zone' is categorical"):
        check_declared(Order(low="zone", high="a"), table, schema)
    tie = Tie(column="c", source="a", share=0.1)
    assert check_declared(tie, table, schema) is tie  # shares of rows: nothing each row keeps

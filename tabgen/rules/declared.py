"""Rules the user declares (``--rule "total = fare + tip"``): parsed from text, checked against the table.

Grammar
-------
A rule is one of these forms (spaces are free)::

    target = a + b - c            an identity (LinearIdentity): a sum of distinct columns with integer
                                  coefficients (2*a, a*2, -b, 3*(a - b)) and no constant
    target = expression           a formula (Formula): any other expression of the grammar below
    target = ... ± 0.05           either of the two within a tolerance (also written +- or +/-)
    end >= start                  an order (Order); also start <= end. A strict > or < is read as
                                  >= or <=: a generated gap may be 0, and keeping 0 out buys nothing
    end >= start (or 0)           an order that a high value of 0 also keeps (a year of renovation)
    zone -> borough               zone determines borough (Determines)
    ... (with exceptions)         a rule that at most 5 % of the table's rows break (a mistyped total,
                                  a diamond measured 0, a zone filed under two boroughs): kept at its
                                  share; a dependency takes each parent value's commonest child

An *expression* is numbers, column names, ``+ - * / ** %``, unary ``-`` and ``+``, parentheses and the
functions ``abs(x)``, ``round(x)`` or ``round(x, digits)`` (digits a whole number; halves round to even,
as numpy does), ``min(x, y, ...)``, ``max(x, y, ...)``, ``sqrt(x)``, ``log(x)`` (natural) and ``exp(x)``.
Nothing else is read: no attributes, no other calls, no indexing, no text, no comparisons. It is
parsed with :mod:`ast` and computed with numpy in float64, row by row; ``eval`` never sees it. A
missing value gives a missing result, and division by zero NaN or ±inf, as numpy gives them.

Column names
------------
- A name that is a Python identifier (``fare_paid``, not a keyword such as ``class``) is written bare.
- Any name may be written in backticks: ```total amount` = `fare paid` + tip``. A column whose name holds
  a backtick cannot be named in a rule.
- :func:`parse_rule` knows the table's columns, so other names may be written bare as well: the text is
  read left to right, and where a column name starts (and does not cut a word in two) the longest one
  is taken: ``total amount = fare paid + tip``. A name that is a number (``2019``) is read as the number;
  a bare name that would also read as an expression of the columns (a column ``a-b`` beside ``a`` and
  ``b``) is refused as ambiguous: write it in backticks.
- A formula keeps its expression as written, with each name that is not an identifier in backticks, so
  that :func:`expression_columns` and :func:`evaluate_expression` need no schema.

Checking against the table
--------------------------
:func:`check_declared` fills in what the table gives and refuses a rule the table breaks, naming its
first rows ("row 3" is the table's third data row, the CSV's fourth line under a header) and their
values, unless it is declared ``(with exceptions)`` and those rows are at most ``MAX_OTHER_SHARE`` of
the rows checked: the model then learns which rows break it, as it does for the rules found with
exceptions (:mod:`tabgen.rules.discovery`). A determination gets the child value of every parent value
(missing counts as a value). An identity or formula of tolerance 0 gets the tolerance its columns'
rounding allows (``± 0`` means the same):

- identity: half the finest decimal step among its columns (amounts in cents: 0.005), enough for the
  float rounding of values read from text (0.1 + 0.2 is not 0.3 in floats) and still less than any gap
  between two values the columns hold. Integers add up exactly in floats, so an identity of integers
  gets 0, not 0.5, which would take a generated 7.4 for a 7. Values of more than six decimals (full
  floats) give 0 as well: :meth:`Rule.holds` already allows 1e-9 relative for float rounding;
- formula: half the step of the target (a depth written to 0.1: 0.05), since the table writes the
  formula's value rounded to the target's decimals; an integer target gets 0.5 (the rounded value). A
  formula whose inputs were rounded after it was computed can miss by more: give it a tolerance.

Rows where any column of an identity or formula is missing are not checked (an order is not checked
there either): they neither keep nor break it.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TabgenError
from ..protection import RARE
from ..schema import Schema, as_numbers, from_numbers, written_decimals
from .discovery import MAX_OTHER_SHARE, commonest_pairs
from .expressions import (
    _needs_backticks,
    _protect,
    _shown,
    _tree,
    _unprotect,
    _whole_number,
    evaluate_expression,
    expression_columns,
)
from .kinds import Determines, Formula, LinearIdentity, Order, Rule, _column_keys, _same, floored_percent

__all__ = ["check_declared", "evaluate_expression", "expression_columns", "parse_rule", "split_exceptions"]

_FORMS = "a rule is 'c = a + b', 'c = expression [± tolerance]', 'end >= start' or 'zone -> borough'"
_UNITS = {"D": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds"}
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


# ------------------------------------------------------------------ rules


def parse_rule(text: str, schema: Schema) -> Rule:
    """The rule ``text`` states (see the module's grammar), its columns checked against ``schema``. An
    identity's tolerance, and a determination's pairs, are left for :func:`check_declared` to fill."""
    where = f"rule {_shown(text)}"
    protected, quoted = _protect(text.strip(), schema.names, where)
    body, tolerance = _split_tolerance(protected, where)
    body, zero_exempt = re.subn(r"\(\s*or\s+0\s*\)\s*$", "", body)
    equals = [m.start() for m in re.finditer(r"(?<![<>=!])=(?!=)", body)]
    if "->" in body:
        sides = body.split("->")
        if len(sides) != 2:
            raise TabgenError(f"{where}: one '->' per rule; write 'a -> b' and 'b -> c' as two rules")
        rule: Rule = Determines(_column(sides[0], quoted, where), _column(sides[1], quoted, where), [])
    elif equals:
        if len(equals) > 1:
            raise TabgenError(f"{where}: one '=' per rule; {_FORMS}")
        rule = _equation(body[:equals[0]], body[equals[0] + 1:], quoted, where, tolerance)
    else:
        rule = _order(body, quoted, where, bool(zero_exempt))
    if tolerance and not isinstance(rule, (LinearIdentity, Formula)):
        raise TabgenError(f"{where}: a tolerance belongs to an identity or a formula ('c = a + b ± 0.01')")
    if zero_exempt and not isinstance(rule, Order):
        raise TabgenError(f"{where}: '(or 0)' belongs to an order ('renovated >= built (or 0)')")
    _check_columns(rule, schema, where)
    return rule


def split_exceptions(text: str) -> tuple[str, bool]:
    """The rule without its ``(with exceptions)`` suffix, and whether it had one."""
    body, found = re.subn(r"\s*\(\s*with\s+exceptions\s*\)\s*$", "", text)
    return body, bool(found)


def _split_tolerance(body: str, where: str) -> tuple[str, float]:
    """The rule without its ``± tolerance`` suffix, and the tolerance (0 if none)."""
    match = re.search(rf"\s*(?:±|\+/-|\+-)\s*({_NUMBER})\s*$", body)
    if match:
        body = body[:match.start()]
    if "±" in body or "+/-" in body:
        raise TabgenError(f"{where}: a tolerance is a number at the end of the rule: 'c = a * b ± 0.05'")
    return body, float(match.group(1)) if match else 0.0


def _column(side: str, quoted: dict[str, str], where: str) -> str:
    """The column one side of a rule names (it must name one column and nothing else)."""
    side = side.strip()
    if side in quoted:
        return quoted[side]
    if side and not _needs_backticks(side):
        return side
    shown = _unprotect(side, quoted).strip()
    raise TabgenError(f"{where}: {_shown(shown)} is not a column name; {_FORMS} (a name of several words may be in "
                      "backticks: `total amount`)" if shown else f"{where}: a side is empty; {_FORMS}")


def _equation(left: str, right: str, quoted: dict[str, str], where: str, tolerance: float) -> Rule:
    """``target = expression``: an identity where the expression is one, a formula otherwise."""
    target = _column(left, quoted, where)
    tree, names = _tree(right, quoted, where)
    if not names:
        raise TabgenError(f"{where}: the right side names no column; a rule writes a column from others")
    coefficients: dict[str, int] = {}
    if _linear(tree, 1, names, coefficients):
        terms = [[k, column] for column, k in coefficients.items()]
        return LinearIdentity(target_column=target, terms=terms, remainder=[0.0], remainder_rows=[], tolerance=tolerance)
    return Formula(target_column=target, expression=_unprotect(right, quoted).strip(), tolerance=tolerance)


def _linear(node: ast.AST, k: int, names: dict[str, str], out: dict[str, int]) -> bool:
    """Add to ``out`` the coefficient of each column in ``k · node``; False unless ``node`` is a sum of
    distinct columns with whole, non-zero coefficients (then the rule is a formula)."""
    if isinstance(node, ast.Name):
        column = names[node.id]
        if column in out:  # a column twice (a + a, a - a) is a formula
            return False
        out[column] = k
        return True
    if isinstance(node, ast.UnaryOp):
        return _linear(node.operand, -k if isinstance(node.op, ast.USub) else k, names, out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        sign = -1 if isinstance(node.op, ast.Sub) else 1
        return _linear(node.left, k, names, out) and _linear(node.right, sign * k, names, out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for factor, rest in ((node.left, node.right), (node.right, node.left)):
            number = _whole_number(factor)
            if number is not None:
                return number != 0 and _linear(rest, k * number, names, out)
    return False


def _order(body: str, quoted: dict[str, str], where: str, zero_exempt: bool) -> Order:
    """``high >= low`` or ``low <= high`` (a strict ``>`` or ``<`` read as its non-strict twin)."""
    try:
        node = ast.parse(body.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        node = None
    orders = (ast.GtE, ast.Gt, ast.LtE, ast.Lt)
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], orders)):
        raise TabgenError(f"{where}: not a rule; {_FORMS}")
    if not (isinstance(node.left, ast.Name) and isinstance(node.comparators[0], ast.Name)):
        raise TabgenError(f"{where}: an order compares two columns ('end >= start'), not expressions")
    first, second = (quoted.get(n.id, n.id) for n in (node.left, node.comparators[0]))
    low, high = (second, first) if isinstance(node.ops[0], (ast.GtE, ast.Gt)) else (first, second)
    return Order(low=low, high=high, zero_exempt=zero_exempt)


def _check_columns(rule: Rule, schema: Schema, where: str) -> None:
    """Refuse a rule on columns the table lacks, or of kinds it cannot relate."""
    for column in rule.columns:
        if column not in schema.names:
            close = difflib.get_close_matches(column, schema.names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            shown = schema.names if len(schema.names) <= 30 else schema.names[:30] + [f"... {len(schema.names)} in all"]
            raise TabgenError(f"{where}: no column {column!r} ({hint}columns are {shown})")
        spec = schema[column]
        if spec.kind == "id":
            raise TabgenError(f"{where}: {column!r} is an identifier, which tabgen writes fresh rather than learns; "
                              "a rule cannot use it (name it categorical to have it learned)")
        if spec.kind != "numerical" and not isinstance(rule, Determines):
            raise TabgenError(f"{where}: {column!r} is {spec.kind}; a sum, an order or a formula relates numerical "
                              "columns (name it numerical to have it learned as numbers)")
    twice = [c for i, c in enumerate(rule.columns) if c in rule.columns[:i]]
    if twice:
        raise TabgenError(f"{where}: {twice[0]!r} is on both sides; a rule relates a column to other columns")
    _check_units(rule, schema, where)


def _check_units(rule: Rule, schema: Schema, where: str) -> None:
    """Datetimes are compared as counts of their unit, so a rule's datetimes must share one."""
    if isinstance(rule, Determines):
        return
    dated = [(c, schema[c].datetime_unit) for c in rule.columns if schema[c].datetime_unit is not None]
    units = {unit for _, unit in dated}
    if len(units) > 1:
        (a, unit_a), (b, unit_b) = dated[0], next(d for d in dated if d[1] != dated[0][1])
        raise TabgenError(f"{where}: {a!r} is counted in {_UNITS.get(unit_a, unit_a)} and {b!r} in "
                          f"{_UNITS.get(unit_b, unit_b)} (the finest unit each column's values use); a rule "
                          "relates datetimes of one unit")
    if isinstance(rule, Order) and len(dated) == 1:
        dates, number = dated[0][0], next(c for c in rule.columns if c != dated[0][0])
        raise TabgenError(f"{where}: {dates!r} is a datetime and {number!r} a number; an order compares two numbers "
                          "or two datetimes")


# ------------------------------------------------------------------ checking against the table


def check_declared(rule: Rule, df: pd.DataFrame, schema: Schema, exceptions: bool = False) -> Rule:
    """``rule`` with what the table gives filled in (a determination's pairs, an identity's or formula's
    tolerance where 0, an identity's rows), once ``df`` is seen to keep it; a rule it breaks is refused
    with its first rows and their values. With ``exceptions`` a rule that at most ``MAX_OTHER_SHARE`` of
    the rows checked break comes back with those rows counted. A tie or a granularity states shares of
    rows, not something each row keeps: it comes back as it is."""
    _check_columns(rule, schema, f"rule {_shown(rule.name)}")
    absent = [c for c in rule.columns if c not in df.columns]
    if absent:
        raise TabgenError(f"rule {rule.name!r}: the table has no column {absent[0]!r}")
    if not isinstance(rule, (Determines, LinearIdentity, Order, Formula)):
        return rule
    if isinstance(rule, Determines) and not rule.pairs:
        rule = replace(rule, pairs=_told_pairs(rule, df, schema) if exceptions else _pair_table(rule, df, schema))
    if isinstance(rule, (LinearIdentity, Formula)) and rule.tolerance == 0:
        rule = replace(rule, tolerance=_tolerance(rule, df, schema))
    unchecked = _unchecked(rule, df, schema)
    broken = np.flatnonzero(~rule.holds(df, schema) & ~unchecked)
    checked = int((~unchecked).sum())
    if len(broken) and not (exceptions and len(broken) <= MAX_OTHER_SHARE * checked):
        raise TabgenError(_broken(rule, df, schema, broken, checked, exceptions))
    if isinstance(rule, LinearIdentity) and not rule.remainder_rows and rule.remainder == [0.0]:
        rule = replace(rule, remainder_rows=[checked - len(broken)], other_rows=len(broken))
    elif isinstance(rule, (Formula, Order)) and len(broken):
        rule = replace(rule, held_rows=checked - len(broken), other_rows=len(broken))
    elif isinstance(rule, Determines):
        rule = replace(rule, other_rows=len(broken))
    return rule


def _told_pairs(rule: Determines, df: pd.DataFrame, schema: Schema) -> list[list[Any]]:
    """``[parent value, child value, rows]`` for each parent value, its child the commonest: a lookup
    with exceptions. Rare values grouped as one say nothing of the child."""
    parents, children = _column_keys(df, schema, rule.parent), _column_keys(df, schema, rule.child)
    told = (parents != RARE).to_numpy()
    parent, parent_values = pd.factorize(parents[told], use_na_sentinel=False)
    child, child_values = pd.factorize(children[told], use_na_sentinel=False)
    return commonest_pairs(parent.astype(np.int64), parent_values, child.astype(np.int64), child_values)


def _unchecked(rule: Rule, df: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Rows a rule is not checked in: those where any of its columns is missing (a determination is
    checked everywhere: missing is a value)."""
    if isinstance(rule, Determines):
        return np.zeros(len(df), dtype=bool)
    return np.column_stack([np.isnan(as_numbers(df[c], schema[c])) for c in rule.columns]).any(axis=1)


def _pair_table(rule: Determines, df: pd.DataFrame, schema: Schema) -> list[list[Any]]:
    """``[parent value, child value, rows]`` for each parent value, in the order they first appear;
    refused where a parent value goes with two child values."""
    parents, children = _column_keys(df, schema, rule.parent), _column_keys(df, schema, rule.child)
    seen: dict[Any, list[Any]] = {}  # parent value: [child value, first row, rows]
    for row, (parent, child) in enumerate(zip(parents, children)):
        if parent == RARE:  # rare values grouped as one (tabgen.protection) say nothing of the child
            continue
        entry = seen.get(parent)
        if entry is None:
            seen[parent] = [child, row, 1]
        elif _same(entry[0], child):
            entry[2] += 1
        else:
            p, first = rule.parent, entry[1]
            raise TabgenError(
                f"rule {rule.name!r} does not hold in the table: {p}={_show(df[p].iloc[row])} goes with "
                f"{rule.child}={_show(df[rule.child].iloc[first])} (row {first + 1}) and "
                f"{rule.child}={_show(df[rule.child].iloc[row])} (row {row + 1}); if a few rows are mistyped, end it "
                "with '(with exceptions)'")
    return [[parent, child, rows] for parent, (child, _, rows) in seen.items()]


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _tolerance(rule: LinearIdentity | Formula, df: pd.DataFrame, schema: Schema) -> float:
    """What the columns' rounding allows (see the module's docstring)."""
    columns = [rule.target_column] if isinstance(rule, Formula) else rule.columns
    decimals = [written_decimals(_finite(as_numbers(df[c], schema[c]))) for c in columns]
    if any(d is None for d in decimals):
        return 0.0
    finest = max(decimals)
    return 0.0 if finest == 0 and isinstance(rule, LinearIdentity) else 0.5 * 10.0**-finest


def _broken(rule: Rule, df: pd.DataFrame, schema: Schema, rows: np.ndarray, checked: int, exceptions: bool) -> str:
    """The message for a rule that ``rows`` (positions) of the table break, of the ``checked`` rows."""
    named = [str(r + 1) for r in rows[: 3 if len(rows) <= 3 else 2]]
    if len(rows) == 1:
        which = f"row {named[0]} breaks it"
    elif len(rows) <= 3:
        which = f"rows {', '.join(named[:-1])} and {named[-1]} break it"
    else:
        which = f"rows {', '.join(named)} and {len(rows) - 2:,} others break it"
    first = int(rows[0])
    cells = ", ".join(f"{c}={_show(df[c].iloc[first])}" for c in rule.columns)
    within, hint = "", ""
    if isinstance(rule, (LinearIdentity, Formula)):
        within = f" (within {rule.tolerance:g})" if rule.tolerance else ""
        cells += f"; the right side gives {_right_side(rule, df, schema, first)}"
        hint = "; correct those rows, or give a tolerance if it holds only up to rounding ('... ± 0.05')"
    share = len(rows) / max(checked, 1)
    if exceptions:
        hint = f"; that is {100 * share:.1f} % of the rows, and a rule with exceptions allows {100 * MAX_OTHER_SHARE:g} %"
    elif share <= MAX_OTHER_SHARE:
        hint += f"; or end it with '(with exceptions)' to keep it in the {floored_percent(1 - share):g} % of rows that keep it"
    return f"rule {rule.name!r} does not hold in the table{within}: {which} (e.g. row {first + 1}: {cells}){hint}"


def _right_side(rule: LinearIdentity | Formula, df: pd.DataFrame, schema: Schema, row: int) -> str:
    """The value the right side of an identity or formula gives in ``row``, written as the target is."""
    one = df.iloc[[row]]
    target = as_numbers(one[rule.target_column], schema[rule.target_column])
    if isinstance(rule, LinearIdentity):
        value = target - rule.rest(one, schema)
    else:
        value = evaluate_expression(rule.expression, {c: as_numbers(one[c], schema[c]) for c in rule.columns[1:]})
    spec = schema[rule.target_column]
    if spec.datetime_unit is not None and np.isfinite(value[0]):
        return _show(from_numbers(np.round(value), spec).iloc[0])
    return _show(value[0])


def _show(value: Any) -> str:
    """A cell as a message shows it: numbers in full, text quoted."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "missing"
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return repr(value) if isinstance(value, str) else str(value)

"""The rules of the real table, and the share of real, held-out and synthetic rows that keep each.

The rules are found in the real table as a fit finds them (:func:`tabgen.rules.discovery.find_rules`),
plus its one-to-one pairs (:mod:`tabgen.pairs`), so a generator that knows nothing of rules is scored
on the same list. A rule that holds in every real row is kept by a row or not; a partial one (a tie,
a granularity, a rule with exceptions) is a share to match: its row says what share of each table shows it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import TabgenError
from ..pairs import find_pairs
from ..rules.discovery import find_rules
from ..rules.kinds import Determines, Granularity, Rule, Tie
from ..schema import Schema, as_numbers


def rules_kept(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None, schema: Schema) -> list[dict]:
    """One row per rule: ``kind``, ``rule`` (its name), ``partial``, and the shares ``real``,
    ``holdout`` (``None`` without one) and ``synthetic`` (``None`` where a table's values cannot be read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit's warnings (identifiers, small tables) were shown already
        schema = find_pairs(real.reset_index(drop=True), schema)
        rules = _pair_rules(schema) + find_rules(real.reset_index(drop=True), schema)
    rows = []
    for rule in rules:
        name, share = _measure(rule)
        row = {"kind": rule.kind, "rule": name, "partial": rule.partial}
        for label, table in (("real", real), ("holdout", holdout), ("synthetic", synthetic)):
            row[label] = None if table is None else _share(share, table.reset_index(drop=True), schema)
        rows.append(row)
    return rows


def _pair_rules(schema: Schema) -> list[Rule]:
    return [Determines(spec.derived_from, spec.name, [[p, c, 0] for p, c in spec.derived_pairs or []])
            for spec in schema.derived]


def _measure(rule: Rule):
    """The rule's name as reported, and the function of a table that gives its share of rows."""
    if isinstance(rule, Granularity):
        coarse = [i for i in range(len(rule.steps) - 1)]
        step = rule.steps[max(coarse, key=lambda i: rule.shares[i])] if coarse else rule.steps[0]

        def multiples(df: pd.DataFrame, schema: Schema) -> float:
            values = as_numbers(df[rule.column], schema[rule.column])
            values = values[~np.isnan(values)]
            return float(np.mean(np.abs(values / step - np.round(values / step)) < 1e-6)) if len(values) else float("nan")

        return f"{rule.column} in multiples of {step:g}", multiples
    if isinstance(rule, Tie):
        return f"{rule.column} == {rule.source}", lambda df, schema: float(rule.holds(df, schema).mean())
    return rule.name, lambda df, schema: float(rule.holds(df, schema).mean())


def _share(share, table: pd.DataFrame, schema: Schema) -> float | None:
    try:
        return share(table, schema)
    except (TabgenError, KeyError, ValueError, TypeError):
        return None

"""Which rules a fit keeps: the user's declared ones first, then those found in the table, less those
the user removed by name."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from ..errors import TabgenError
from ..schema import Schema
from .discovery import find_rules
from .kinds import Granularity, Rule, Tie
from .ruleset import RuleSet


def rules_for_table(df: pd.DataFrame, schema: Schema, declared: Iterable[str | Rule] = (), find: bool = True,
                    drop: Iterable[str] = ()) -> RuleSet:
    """The rules kept for ``df``: each declared one (text such as ``"total = fare + tip"`` or a rule
    object) checked against the table, then, with ``find``, those found in it; ``drop`` names rules
    (as :attr:`Rule.name` shows them, or their column list) to leave out."""
    if isinstance(declared, (str, Rule)):
        declared = [declared]
    if isinstance(drop, str):
        drop = [drop]
    declared = list(declared)
    if declared:
        from .declared import check_declared, parse_rule

    rules = [parse_rule(r, schema) if isinstance(r, str) else r for r in declared]
    # Ties and granularities hold in a share of rows: there is nothing to check them against.
    rules = [r if isinstance(r, (Tie, Granularity)) else check_declared(r, df, schema) for r in rules]
    found = find_rules(df, schema) if find else []
    names = {r.name for r in rules}
    rules += [r for r in found if r.name not in names]
    drop = list(drop)
    unknown = [d for d in drop if not any(_named(r, d) for r in rules)]
    if unknown:
        listed = "; ".join(r.name for r in rules) or "none"
        raise TabgenError(f"no rule named {unknown[0]!r} to drop; the rules are: {listed}")
    return RuleSet.for_table([r for r in rules if not any(_named(r, d) for d in drop)], schema)


def _named(rule: Rule, name: str) -> bool:
    """A rule is named by its full name, or by the name before its detail in parentheses."""
    return name.strip() in (rule.name, rule.name.split(" (")[0])

"""Which rules a fit keeps: the user's declared ones first, then those found in the table, less those
the user removed by name. Rules that hold in every row but that too few rows cannot tell from chance
are not kept, and a warning names them."""

from __future__ import annotations

import warnings
from typing import Iterable

import pandas as pd

from ..errors import TabgenError, TabgenWarning
from ..schema import Schema
from .discovery import find_rules_and_near_misses
from .kinds import Granularity, Rule, Tie
from .ruleset import RuleSet

#: The near misses a warning names; it counts the rest.
NEAR_MISSES_NAMED = 3


def rules_for_table(df: pd.DataFrame, schema: Schema, declared: Iterable[str | Rule] = (), find: bool = True,
                    drop: Iterable[str] = (), rare_rows: int = 0) -> RuleSet:
    """The rules kept for ``df``: each declared one (text such as ``"total = fare + tip"`` or a rule
    object) checked against the table, then, with ``find``, those found in it; ``drop`` names rules
    (as :attr:`Rule.name` shows them, or their column list) to leave out; ``rare_rows`` is the fit's value
    protection (:func:`tabgen.rules.discovery.find_rules`)."""
    if isinstance(declared, (str, Rule)):
        declared = [declared]
    if isinstance(drop, str):
        drop = [drop]
    declared = list(declared)
    if declared:
        from .declared import check_declared, parse_rule, split_exceptions

    texts = [split_exceptions(r) if isinstance(r, str) else (r, False) for r in declared]
    rules = [(parse_rule(r, schema) if isinstance(r, str) else r, exceptions) for r, exceptions in texts]
    # Ties and granularities hold in a share of rows: there is nothing to check them against.
    rules = [r if isinstance(r, (Tie, Granularity)) else check_declared(r, df, schema, exceptions) for r, exceptions in rules]
    found, near = find_rules_and_near_misses(df, schema, rare_rows=rare_rows) if find else ([], [])
    names = {r.name for r in rules}
    rules += [r for r in found if r.name not in names]
    _warn_near_misses([r for r in near if r.name not in names], len(df))
    drop = list(drop)
    unknown = [d for d in drop if not any(_named(r, d) for r in rules)]
    if unknown:
        listed = "; ".join(r.name for r in rules) or "none"
        raise TabgenError(f"no rule named {unknown[0]!r} to drop; the rules are: {listed}")
    return RuleSet.for_table([r for r in rules if not any(_named(r, d) for d in drop)], schema, df)


def _named(rule: Rule, name: str) -> bool:
    """A rule is named by its full name, or by the name before its detail: its share in parentheses, or a
    granularity's steps after the colon (``price steps``)."""
    return name.strip() in (rule.name, rule.name.split(" (")[0], rule.name.split(": ")[0])


def _warn_near_misses(near: list[Rule], rows: int) -> None:
    """One warning naming the rules the table obeys but is too small to support (see
    :func:`tabgen.rules.discovery.find_rules_and_near_misses`)."""
    if not near:
        return
    listed = ", ".join(repr(r.name) for r in near[:NEAR_MISSES_NAMED]) + (", ..." if len(near) > NEAR_MISSES_NAMED else "")
    if len(near) == 1:
        message = (f"1 rule holds in every one of the {rows:,} rows but so few rows cannot tell it from chance, so "
                   f"it is not kept: {listed}; declare it with rules=[...] if it is real")
    else:
        message = (f"{len(near)} rules hold in every one of the {rows:,} rows but so few rows cannot tell them from "
                   f"chance, so they are not kept: {listed}; declare the ones that are real with rules=[...]")
    warnings.warn(message, TabgenWarning, stacklevel=4)

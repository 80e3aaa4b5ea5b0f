"""The rules a table obeys, one dataclass per kind: what each states, and which rows keep it.

Every rule is plain data (column names, small tables of values, a few numbers) so that it is shown to
the user, saved in the model file as JSON and read back. ``name`` is how a user refers to a rule (to
remove it); ``target`` is the column the rule writes (``None`` where it writes none: an order is kept
by learning a gap, a tie or a granularity by learning a token, and none of those writes a column from
nothing). ``holds(df)`` is a boolean mask of the rows of ``df`` that keep it: what ``evaluate`` reports
and what a declared rule is checked with. Numbers are compared as :func:`tabgen.schema.as_numbers`
gives them (datetimes as counts of their unit), so ``holds`` needs the column specs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..schema import Schema, as_numbers, json_scalar


def _numbers(df: pd.DataFrame, schema: Schema, name: str) -> np.ndarray:
    return as_numbers(df[name], schema[name])


def _keys(series: pd.Series) -> pd.Series:
    """Values as the JSON keys a rule stores them by; ``None`` for missing."""
    return series.map(lambda v: None if pd.isna(v) else json_scalar(v)).astype(object)


def _column_keys(df: pd.DataFrame, schema: Schema, name: str) -> pd.Series:
    """A column's keys; a numerical column's are its numbers as :func:`tabgen.schema.as_numbers` gives
    them (a date as a count of its unit, as a lookup stores it, not its text)."""
    spec = schema[name]
    return _keys(pd.Series(as_numbers(df[name], spec)) if spec.kind == "numerical" else df[name])


@dataclass
class Rule:
    kind: ClassVar[str] = ""

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def target(self) -> str | None:
        return None

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    @property
    def partial(self) -> bool:
        """Whether it holds in a share of the rows only (a tie, a granularity, a rule with exceptions): a
        share to match, which a given row may break."""
        return bool(getattr(self, "other_rows", 0))

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def __str__(self) -> str:
        return self.name


@dataclass
class Determines(Rule):
    """``child`` is a function of ``parent`` (a zone determines its borough): ``pairs`` lists
    ``[parent value, child value, rows]`` for every parent value seen (``None`` for missing), but in
    ``other_rows`` rows of exceptions (a postal code mistyped), whose share the model learns."""

    parent: str
    child: str
    pairs: list[list[Any]] = field(default_factory=list)
    other_rows: int = 0
    kind: ClassVar[str] = "determines"

    @property
    def share(self) -> float:
        """The share of the rows that keep it."""
        rows = sum(r for _, _, r in self.pairs)
        return 1 - self.other_rows / rows if rows else 1.0

    @property
    def name(self) -> str:
        return f"{self.parent} -> {self.child}{_held_share(self.share, self.other_rows)}"

    @property
    def target(self) -> str:
        return self.child

    @property
    def columns(self) -> list[str]:
        return [self.parent, self.child]

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        table = {p: c for p, c, _ in self.pairs}
        parent, child = _column_keys(df, schema, self.parent), _column_keys(df, schema, self.child)
        expected = parent.map(lambda p: table.get(p, _UNSEEN))
        # A parent value the table did not show (a held-out zone, rare values grouped as one) says nothing.
        return np.array([e is _UNSEEN or _same(e, c) for e, c in zip(expected, child)], dtype=bool)


_UNSEEN = object()


def floored_percent(share: float) -> float:
    """A share as a percent rounded down to 0.1 (one exception in 3,000 rows is not 100 %)."""
    return math.floor(1000 * share + 1e-9) / 10


def _held_share(share: float, exceptions: int) -> str:
    """`` (98.2 % of rows)`` for a rule with exceptions; nothing for one without."""
    return f" ({floored_percent(share):g} % of rows)" if exceptions else ""


def _same(expected: Any, value: Any) -> bool:
    if isinstance(expected, float) and isinstance(value, (int, float)) and value is not None:
        return abs(expected - value) <= 1e-9 * max(1.0, abs(expected))
    return expected == value


@dataclass
class LinearIdentity(Rule):
    """``target = Σ coefficient·term + remainder``, exact within ``tolerance`` (half the finest
    rounding of the columns involved); ``remainder`` holds the few values the rest takes (``[0.0]``
    for a plain sum; several for ``total = fare + tip + s`` with ``s`` one of a few surcharges), and
    ``remainder_rows`` how many rows take each. ``other_rows`` counts the rows, every column present,
    whose rest is none of them: the table's exceptions (a total mistyped), whose share the model learns
    as it learns which remainder a row takes."""

    target_column: str
    terms: list[list[Any]]  # [[coefficient (int), column], ...]
    remainder: list[float] = field(default_factory=lambda: [0.0])
    remainder_rows: list[int] = field(default_factory=list)
    tolerance: float = 0.0
    other_rows: int = 0
    kind: ClassVar[str] = "identity"

    @property
    def share(self) -> float:
        """The share of the rows with every column present that keep it."""
        held = sum(self.remainder_rows)
        return held / (held + self.other_rows) if held + self.other_rows else 1.0

    @property
    def name(self) -> str:
        parts = []
        for i, (k, column) in enumerate(self.terms):
            sign = "-" if k < 0 else "+"
            size = "" if abs(k) == 1 else f"{abs(k)}*"
            parts.append(f"{'-' if k < 0 else ''}{size}{column}" if i == 0 else f" {sign} {size}{column}")
        if self.remainder == [0.0]:
            rest = ""
        elif len(self.remainder) == 1:
            rest = f" {'-' if self.remainder[0] < 0 else '+'} {abs(self.remainder[0]):g}"
        else:
            rest = " + one of " + ", ".join(f"{r:g}" for r in self.remainder)
        return f"{self.target_column} = {''.join(parts)}{rest}{_held_share(self.share, self.other_rows)}"

    @property
    def target(self) -> str:
        return self.target_column

    @property
    def columns(self) -> list[str]:
        return [self.target_column] + [c for _, c in self.terms]

    def rest(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        """``target − Σ coefficient·term`` per row (NaN where any is missing)."""
        total = _numbers(df, schema, self.target_column).copy()
        for k, column in self.terms:
            total -= k * _numbers(df, schema, column)
        return total

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        """Rows where every column is present and the identity is exact, or some column is missing
        (the identity says nothing of those rows)."""
        rest = self.rest(df, schema)
        return np.isnan(rest) | self.on_remainder(rest, _numbers(df, schema, self.target_column))

    def on_remainder(self, rest: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Where ``rest`` (:meth:`rest`) is one of the remainder values, within the tolerance and the
        float rounding of ``target``'s size (False where it is missing)."""
        near = np.abs(np.nan_to_num(rest, nan=np.inf)[:, None] - np.asarray(self.remainder)[None, :]).min(axis=1)
        return near <= self.tolerance + 1e-9 * np.maximum(1.0, np.abs(target))


@dataclass
class Order(Rule):
    """``high ≥ low`` in every row where both are present (an end after its start), but ``other_rows``
    rows of exceptions, whose share the model learns as negative gaps. With ``zero_exempt``, a ``high``
    of 0 also keeps it (a year of renovation is 0 or not before the build)."""

    low: str
    high: str
    zero_exempt: bool = False
    other_rows: int = 0
    held_rows: int = 0
    """The rows it was found to hold in, of those where both are present (as :meth:`holds` counts them)."""
    widest_gap: float | None = None
    """``high − low`` in the table, at most (its 99.9th percentile), set with the model's table; a generated
    ``high`` further from ``low`` is written from the learned gap."""
    kind: ClassVar[str] = "order"

    @property
    def share(self) -> float:
        """The share of the rows where both are present that keep it."""
        return self.held_rows / (self.held_rows + self.other_rows) if self.other_rows else 1.0

    @property
    def name(self) -> str:
        return f"{self.high} >= {self.low}" + (" (or 0)" if self.zero_exempt else "") + _held_share(self.share, self.other_rows)

    @property
    def columns(self) -> list[str]:
        return [self.low, self.high]

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        low, high = _numbers(df, schema, self.low), _numbers(df, schema, self.high)
        keeps = np.isnan(low) | np.isnan(high) | (high >= low)
        return keeps | (high == 0) if self.zero_exempt else keeps


@dataclass
class Tie(Rule):
    """``column`` equals ``source`` in ``share`` of the rows (a copied amount, ``lot15 == lot``). Rows where
    both are 0 do not count: two often-zero columns are equal there by chance, and nothing is copied."""

    column: str
    source: str
    share: float
    kind: ClassVar[str] = "tie"

    @property
    def name(self) -> str:
        return f"{self.column} == {self.source} ({100 * self.share:.0f} % of rows)"

    @property
    def partial(self) -> bool:
        return True

    @property
    def columns(self) -> list[str]:
        return [self.source, self.column]

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        """The rows where the two are equal and not 0 (a partial rule: compare the share with ``share``)."""
        column = _numbers(df, schema, self.column)
        return (column == _numbers(df, schema, self.source)) & (column != 0)


@dataclass
class Granularity(Rule):
    """The share of ``column``'s values whose coarsest step is each of ``steps`` (1000 for whole
    thousands, 0.01 for cents): ``shares[i]`` of the present values are multiples of ``steps[i]`` and
    not of any coarser step listed."""

    column: str
    steps: list[float]
    shares: list[float]
    kind: ClassVar[str] = "granularity"

    @property
    def name(self) -> str:
        coarse = ", ".join(f"{100 * s:.0f} % multiples of {step:g}" for step, s in zip(self.steps, self.shares) if s >= 0.005)
        return f"{self.column} steps: {coarse}"

    @property
    def partial(self) -> bool:
        return True

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def step_of(self, values: np.ndarray) -> np.ndarray:
        """Index in ``steps`` of each value's coarsest step (−1 for missing)."""
        out = np.full(len(values), -1, dtype=np.int64)
        present = ~np.isnan(values)
        for i in range(len(self.steps) - 1, -1, -1):  # finest first, so the coarsest multiple wins
            out[present & _is_multiple(values, self.steps[i])] = i
        return out

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        """The rows whose value is on the finest step (every present value is; the rule is in the shares)."""
        values = _numbers(df, schema, self.column)
        return np.isnan(values) | (self.step_of(values) >= 0)


def _is_multiple(values: np.ndarray, step: float) -> np.ndarray:
    ratio = values / step
    with np.errstate(invalid="ignore"):
        return np.abs(ratio - np.round(ratio)) <= 1e-6 + 1e-12 * np.abs(ratio)


@dataclass
class Formula(Rule):
    """``target = expression`` over other columns, within ``tolerance``: declared by the user
    (``depth = 2*z/(x+y)*100``), never found. Declared with exceptions, ``other_rows`` of the ``held_rows
    + other_rows`` rows with every column present break it: the model learns which, and keeps its own
    target there."""

    target_column: str
    expression: str
    tolerance: float = 0.0
    other_rows: int = 0
    held_rows: int = 0
    kind: ClassVar[str] = "formula"

    @property
    def share(self) -> float:
        return self.held_rows / (self.held_rows + self.other_rows) if self.other_rows else 1.0

    @property
    def name(self) -> str:
        return f"{self.target_column} = {self.expression}{_held_share(self.share, self.other_rows)}"

    @property
    def target(self) -> str:
        return self.target_column

    @property
    def columns(self) -> list[str]:
        from .expressions import expression_columns

        return [self.target_column] + expression_columns(self.expression)

    def holds(self, df: pd.DataFrame, schema: Schema) -> np.ndarray:
        from .expressions import evaluate_expression

        values = evaluate_expression(self.expression, {c: _numbers(df, schema, c) for c in self.columns[1:]})
        target = _numbers(df, schema, self.target_column)
        slack = self.tolerance + 1e-9 * np.maximum(1.0, np.abs(target))
        return np.nan_to_num(np.abs(values - target), nan=np.inf) <= slack


KINDS: dict[str, type[Rule]] = {k.kind: k for k in (Determines, LinearIdentity, Order, Tie, Granularity, Formula)}


def rule_from_dict(data: dict[str, Any]) -> Rule:
    data = dict(data)
    return KINDS[data.pop("kind")](**data)

"""Rules kept by construction: the table the model learns (the *model table*), and back.

The model learns every column of the user's table, and beside them a token for each rule that needs
one: an order's non-negative gap, an identity's remainder (which of its few values), a tie's yes/no, a
granularity's step, whether a row follows a lookup with exceptions. In each generated row every rule
then writes its column from its inputs: a total from its terms, an end that the model put before its
start from the start and the gap, a tied column from its source, a rounded value from its step, a
borough from its zone. So every row keeps every rule (a rule with exceptions: at the share the model
learns), on every path, by construction. A written column stays in the model so that a given total or
end conditions the other columns; the rule is then solved for one input (a given total sets its widest
term not given, a given end its start, a given borough draws a zone of it), never met by rejection.

Each column is written by one rule at most (see :func:`kept_in_order` for the two exceptions); rules are
applied inputs first (``zone → borough`` before ``borough → region``). A rule that would write a column
another rule writes, or form a cycle, or write a column of a one-to-one pair (:mod:`tabgen.pairs` writes
those), is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TabgenError
from ..pairs import write_derived
from ..schema import ColumnSpec, Schema, as_numbers, from_numbers, infer_schema, json_scalar, restore_dtype
from .kinds import Determines, Formula, Granularity, LinearIdentity, Order, Rule, Tie, rule_from_dict


def _writes(rule: Rule, drawn: set[str] | frozenset = frozenset()) -> str:
    """The column a rule writes (or rounds) in generated rows; a dependency in ``drawn`` writes its parent."""
    if rule.name in drawn:
        return rule.parent
    return {Order: lambda r: r.high, Tie: lambda r: r.column, Granularity: lambda r: r.column}.get(
        type(rule), lambda r: r.target)(rule)


def _reads(rule: Rule, drawn: set[str] | frozenset = frozenset()) -> list[str]:
    return [c for c in rule.columns if c != _writes(rule, drawn)]


def kept_in_order(rules: list[Rule], schema: Schema) -> tuple[list[Rule], set[str]]:
    """The rules that can be kept together (in the order given: earlier ones win), inputs first, and
    the dependencies whose parent is drawn to agree with a child that another rule writes (an order's
    customer name, written from its order ID, draws the customer ID that has that name).

    A column is written by one rule, except a column tied to several sources (a payment equal to
    last month's bill in some rows and to last month's payment in others): its ties share one token;
    and a column a lookup with exceptions writes, which a dependency may then draw where the lookup
    leaves the model's own value (its exceptions, its parent's rare values): a product's name, written
    from its product ID, drawn among the names of its sub-category there."""
    paired = {c.name for c in schema.derived} | {c.derived_from for c in schema.derived}
    kept: dict[str, list[Rule]] = {}
    drawn: set[str] = set()
    rounded: dict[str, Granularity] = {}  # steps of an order's later column: rounded after the order writes it

    def partly_written(column: str) -> bool:
        return column in kept and all(isinstance(r, Determines) and r.partial and r.name not in drawn for r in kept[column])

    for rule in rules:
        if isinstance(rule, Granularity) and isinstance(kept.get(rule.column, [None])[0], Order):
            rounded.setdefault(rule.column, rule)
            continue
        if (isinstance(rule, Determines) and rule.child in kept and not rule.partial
                and (rule.parent not in kept or partly_written(rule.parent))):
            drawn.add(rule.name)
        target = _writes(rule, drawn)
        another_tie = isinstance(rule, Tie) and all(isinstance(r, Tie) for r in kept.get(target, [None]))
        shared = another_tie or (rule.name in drawn and partly_written(target))
        zero_ambiguous = isinstance(rule, Order) and rule.zero_exempt and schema[rule.high].has_missing
        if (target in kept and not shared) or target in paired or zero_ambiguous or not _acyclic(kept, rule, drawn):
            drawn.discard(rule.name)  # a zero-exempt order's gap marks a 0 as missing: missing could not be told
            continue
        kept.setdefault(target, []).append(rule)
    order, done = [], set()
    while len(done) < len(kept):
        for target, group in kept.items():
            reads = {c for rule in group for c in _reads(rule, drawn)}
            if target not in done and all(c not in kept or c in done for c in reads):
                order += group + ([rounded[target]] if target in rounded and isinstance(group[0], Order) else [])
                done.add(target)
    return order, drawn


def _acyclic(kept: dict[str, list[Rule]], rule: Rule, drawn: set[str]) -> bool:
    """Whether adding ``rule`` keeps "column written from columns" free of cycles."""
    target, stack, seen = _writes(rule, drawn), list(_reads(rule, drawn)), set()
    while stack:
        column = stack.pop()
        if column == target:
            return False
        if column in kept and column not in seen:
            seen.add(column)
            stack.extend(c for r in kept[column] for c in _reads(r, drawn))
    return True


def _column_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "'"
    taken.add(name)
    return name


@dataclass
class RuleSet:
    """The rules a model keeps, in the order they are applied, and the model table's added columns."""

    rules: list[Rule] = field(default_factory=list)
    added: dict[str, str] = field(default_factory=dict)
    """Each added column of the model table, by the name of the rule it serves."""
    drawn: set[str] = field(default_factory=set)
    """The dependencies whose parent is drawn to agree with their child (see :func:`kept_in_order`)."""

    @classmethod
    def for_table(cls, rules: list[Rule], schema: Schema, df: pd.DataFrame | None = None) -> "RuleSet":
        """The rules of ``rules`` that can be kept together, and the model table's added columns. With
        ``df``, the rules' categorical columns (ties, steps, remainders) are packed into as few columns
        as keep each under :data:`MAX_PACKED_CLASSES` combinations in ``df``: every column is a token
        of the model, and a token costs the VAE more than the classes of one."""
        rules, drawn = kept_in_order(rules, schema)
        numbers = None if df is None else _Numbers(df, schema)
        if numbers is not None:
            rules = [_with_widest_gap(r, numbers) if isinstance(r, Order) and r.widest_gap is None else r for r in rules]
        taken, added, ties = set(schema.names), {}, {}
        for rule in rules:
            if isinstance(rule, Tie) and rule.column in ties:  # one token for all of a column's ties
                added[rule.name] = ties[rule.column]
                continue
            base = _added_base(rule, rules)
            if base is not None:
                added[rule.name] = _column_name(base, taken)
                if isinstance(rule, Tie):
                    ties[rule.column] = added[rule.name]
        ruleset = cls(rules, added, drawn)
        if numbers is not None:
            ruleset._pack(df, schema, taken, numbers)
        return ruleset

    def _pack(self, df: pd.DataFrame, schema: Schema, taken: set[str], numbers: _Numbers) -> None:
        packs: list[list[str]] = []
        combined: pd.Series | None = None
        for column in dict.fromkeys(self.added.values()):
            if isinstance(self._owners(column)[0], Order):
                continue
            values = self._value(column, numbers, df).map(_key_text)
            joined = values if combined is None else combined + _SEPARATOR + values
            if combined is not None and joined.nunique() <= MAX_PACKED_CLASSES:
                packs[-1].append(column)
                combined = joined
            else:
                packs.append([column])
                combined = values
        for i, pack in enumerate(p for p in packs if len(p) > 1):
            name = _column_name("rules" if i == 0 else f"rules {i + 1}", taken)
            for rule_name, column in list(self.added.items()):
                if column in pack:
                    self.added[rule_name] = name

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def __str__(self) -> str:
        return "\n".join(f"  {rule.kind}: {rule.name}" for rule in self.rules) or "  (none)"

    def to_list(self) -> list[dict[str, Any]]:
        return [{**rule.to_dict(), "added": self.added.get(rule.name), "drawn": rule.name in self.drawn} for rule in self.rules]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> "RuleSet":
        rules, added, drawn = [], {}, set()
        for item in items:
            item = dict(item)
            column, parent_drawn = item.pop("added", None), item.pop("drawn", False)
            rules.append(rule_from_dict(item))
            if column is not None:
                added[rules[-1].name] = column
            if parent_drawn:
                drawn.add(rules[-1].name)
        return cls(rules, added, drawn)

    # ------------------------------------------------------------ model table
    def model_table(self, df: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, Schema]:
        """The table the model learns, and its schema (the user's columns' specs, kept as they are)."""
        table = self.model_frame(df, schema)
        added = [name for name in table.columns if name not in schema.names]
        if not added:
            return table, schema
        numerical = [self.added[r.name] for r in self.rules if isinstance(r, Order)]
        inferred = infer_schema(table[added], categorical=[c for c in added if c not in numerical], numerical=numerical)
        return table, Schema(schema.columns + inferred.columns)

    def model_frame(self, df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
        """:meth:`model_table`'s table alone (``schema`` is the user's): what a streamed table's chunks
        become, their columns' specs being the sample's."""
        if not self.rules:
            return df
        numbers = _Numbers(df, schema)
        added = {column: self._value(column, numbers, df) for column in dict.fromkeys(self.added.values())}
        if not added:
            return df
        return pd.concat([df[schema.names], pd.DataFrame(added, index=df.index)], axis=1)

    # ------------------------------------------------------------ restore
    def restore(self, frame: pd.DataFrame, schema: Schema, given: pd.DataFrame | None = None,
                rng: np.random.Generator | None = None) -> pd.DataFrame:
        """Generated rows of the model table as rows of the user's table, every rule written. A cell
        that ``given`` (bool, by the user's columns, aligned with ``frame``) marks as fixed, and that a
        rule writes, is kept: the rule is solved for an input instead."""
        if not self.rules:
            return frame
        frame = frame.copy()
        given = pd.DataFrame(index=frame.index) if given is None else given.set_axis(frame.index)
        numbers = _Numbers(frame, schema)
        rng = rng or np.random.default_rng(0)
        for rule in self.rules:
            restorer = _restore_drawn_parent if rule.name in self.drawn else _RESTORERS[type(rule)]
            restorer(self, rule, numbers, frame, schema, given, rng)
        out = {}
        for spec in schema.columns:
            out[spec.name] = numbers.output(spec.name) if spec.name in numbers.changed else frame[spec.name]
        # A column a rule wrote or drew may be a one-to-one pair's parent (tabgen.pairs): its partner follows.
        written = {_writes(r, self.drawn) for r in self.rules} | {r.parent for r in self.rules if isinstance(r, Determines)}
        partners = Schema([s for s in schema.columns if s.name in written or s.derived_from in written])
        return write_derived(pd.DataFrame(out, index=frame.index), partners)

    def check_given(self, given: pd.DataFrame, schema: Schema) -> None:
        """Refuse given rows (the user's columns, NaN where not given) that break a rule in the cells
        given: a given end before a given start, a zone with another borough."""
        for rule in self.rules:
            columns = [c for c in rule.columns if c in given.columns]
            if len(columns) < len(rule.columns) or rule.partial:
                continue  # given cells may be a row the rule does not hold in
            complete = given[columns].notna().all(axis=1).to_numpy()
            if complete.any():
                rows = given[complete]
                broken = ~rule.holds(rows, schema)
                if broken.any():
                    first = rows[broken].iloc[0]
                    cells = ", ".join(f"{c}={first[c]!r}" for c in columns)
                    raise TabgenError(f"the given cells {cells} break the table's rule {rule.name!r}; give values that keep it")

    def model_given(self, values: pd.DataFrame, given: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Given cells of the user's columns (``values``, with ``given`` saying which are fixed) and of
        the model table's added columns: a gap where both ends are given, a remainder where all of an
        identity's columns are, a tie where both columns are, a step where the value is, whether a lookup
        with exceptions is followed where its parent and child are."""
        cells = values.where(given)
        numbers = _Numbers(cells, schema)
        values, given = values.copy(), given.copy()
        for column in dict.fromkeys(self.added.values()):
            values[column] = self._value(column, numbers, cells, given_only=True)
            given[column] = values[column].notna()
        keep = [c for c in values.columns if given[c].any()]
        return values[keep], given[keep]

    # ------------------------------------------------------------ added columns
    def _owners(self, column: str) -> list[Rule]:
        """The rules whose token ``column`` holds, one per part (a column's ties are one part)."""
        owners: dict[Any, Rule] = {}
        for rule in self.rules:
            if self.added.get(rule.name) == column:
                owners.setdefault(_part(rule), rule)
        return list(owners.values())

    def _value(self, column: str, numbers: "_Numbers", df: pd.DataFrame, given_only: bool = False) -> pd.Series:
        """``column``'s cells for the rows of ``df``: its one part, or its parts packed as text. With
        ``given_only`` a packed cell is known only where every part is (a missing part is otherwise data)."""
        owners = self._owners(column)
        if len(owners) == 1:
            return _given_added(owners[0], numbers, df, self.rules, given_only)
        parts = [_given_added(rule, numbers, df, self.rules, given_only) for rule in owners]
        packed = parts[0].map(_key_text)
        for part in parts[1:]:
            packed = packed + _SEPARATOR + part.map(_key_text)
        if given_only:
            packed[pd.concat(parts, axis=1).isna().any(axis=1)] = None
        return packed

    def token(self, rule: Rule, frame: pd.DataFrame) -> np.ndarray:
        """The value of ``rule``'s part of its added column in generated rows, as numbers (NaN: none)."""
        column = self.added[rule.name]
        values = frame[column].astype(object)
        owners = self._owners(column)
        if len(owners) > 1:
            part = [_part(r) for r in owners].index(_part(rule))
            values = values.map(lambda v: v.split(_SEPARATOR)[part] if isinstance(v, str) else None)
        return pd.to_numeric(values, errors="coerce").to_numpy(float)


def _part(rule: Rule) -> Any:
    """What names a rule's part of a packed column: a column's ties share one."""
    return ("tie", rule.column) if isinstance(rule, Tie) else rule.name


def _tie_sources(rules: list[Rule], column: str) -> list[str]:
    """The sources ``column`` is tied to; its tie token holds 0 (none) or which one (1, 2, ...) it equals."""
    return [r.source for r in rules if isinstance(r, Tie) and r.column == column]


def _added_base(rule: Rule, rules: list[Rule]) -> str | None:
    if isinstance(rule, LinearIdentity):
        return f"{rule.target_column} (remainder)" if len(rule.remainder) > 1 or rule.other_rows else None
    if isinstance(rule, Order):
        return f"{rule.high} - {rule.low} (gap)"
    if isinstance(rule, Tie):
        return f"{rule.column} == {rule.source}" if len(_tie_sources(rules, rule.column)) == 1 else f"{rule.column} (tie)"
    if isinstance(rule, Granularity):
        return f"{rule.column} (step)"
    if isinstance(rule, Determines) and rule.other_rows:
        return f"{rule.child} (from {rule.parent})"
    if isinstance(rule, Formula) and rule.other_rows:
        return f"{rule.target_column} (formula)"
    return None


def _given_added(rule: Rule, numbers: "_Numbers", df: pd.DataFrame, rules: list[Rule], given_only: bool = False) -> pd.Series:
    index = df.index
    if isinstance(rule, Determines):  # 1 where the child is its parent's, the exceptions' class elsewhere
        if any(c not in df.columns for c in rule.columns):
            return pd.Series(None, index=index, dtype=object)
        cells = pd.Series(OTHER, index=index, dtype=object)
        cells[rule.holds(df, numbers.schema)] = 1
        # A given cell is never missing: missing there is not given, and the token then unknown.
        return cells.where(~(df[rule.parent].isna() | df[rule.child].isna()).to_numpy(), None) if given_only else cells
    if isinstance(rule, Formula):  # 1 where it holds, the exceptions' class where it does not
        cells = pd.Series(OTHER, index=index, dtype=object)
        cells[rule.holds(df, numbers.schema)] = 1
        return cells.where(~np.column_stack([np.isnan(numbers.get(c)) for c in rule.columns]).any(axis=1), None)
    if isinstance(rule, LinearIdentity):
        rest = numbers.get(rule.target_column).copy()
        for k, column in rule.terms:
            rest -= k * numbers.get(column)
        remainder = np.asarray(rule.remainder)
        nearest = np.abs(np.nan_to_num(rest, nan=np.inf)[:, None] - remainder[None, :]).argmin(axis=1)
        cells = pd.Series(remainder[nearest], index=index).map(_number_key).astype(object)
        if rule.other_rows:  # a row of the table's exceptions takes a class of its own
            cells[~rule.on_remainder(rest, numbers.get(rule.target_column))] = OTHER
        return cells.where(~np.isnan(rest), None)
    if isinstance(rule, Order):
        gap = numbers.get(rule.high) - numbers.get(rule.low)
        if rule.zero_exempt:
            gap = np.where(numbers.get(rule.high) == 0, np.nan, gap)
        return pd.Series(gap, index=index)
    if isinstance(rule, Tie):
        column, which, unknown = numbers.get(rule.column), 0, np.isnan(numbers.get(rule.column))
        for i, source in reversed(list(enumerate(_tie_sources(rules, rule.column), 1))):  # the first source tied wins
            which = np.where((column == numbers.get(source)) & (column != 0), i, which)
            unknown |= np.isnan(numbers.get(source))
        # Untied beside a missing source is unknown (a given payment whose bill is not given).
        return pd.Series(np.where(unknown & (which == 0), None, which), index=index, dtype=object)
    steps = np.asarray(rule.steps)
    index_of = rule.step_of(numbers.get(rule.column))
    return pd.Series(np.where(index_of >= 0, steps[np.maximum(index_of, 0)], np.nan), index=index, dtype=object).map(_number_key)


#: The remainder class of an identity's exceptions (rows where no remainder value adds up): the model's
#: own total stays there.
OTHER = "other"
#: Most combinations one packed column of rule tokens may take in the table (see :meth:`RuleSet.for_table`).
MAX_PACKED_CLASSES = 100
_SEPARATOR = "|"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _key_text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _number_key(value: Any) -> Any:
    return None if _missing(value) else json_scalar(float(value))


class _Numbers:
    """The numerical columns of a frame as float64 (datetimes as counts of their unit), read once,
    written back in the column's dtype only where a rule changed them."""

    def __init__(self, frame: pd.DataFrame, schema: Schema):
        self.frame, self.schema, self.values, self.changed = frame, schema, {}, set()

    def get(self, name: str) -> np.ndarray:
        if name not in self.values:
            spec = self.schema[name] if name in self.schema.names else None
            column = self.frame[name] if name in self.frame.columns else pd.Series(np.nan, index=self.frame.index)
            numeric = spec is not None and spec.kind == "numerical"
            self.values[name] = as_numbers(column, spec) if numeric else pd.to_numeric(column, errors="coerce").to_numpy(float)
        return self.values[name]

    def set(self, name: str, values: np.ndarray, where: np.ndarray | None = None) -> None:
        current = self.get(name).copy()
        if where is None:
            current = values
        else:
            current[where] = values[where]
        spec = self.schema[name]
        if spec.decimals is not None:
            current = np.round(current, spec.decimals)
        self.values[name] = current
        self.changed.add(name)

    def output(self, name: str) -> pd.Series:
        return from_numbers(self.values[name], self.schema[name]).set_axis(self.frame.index)


def _fixed(given: pd.DataFrame, name: str) -> np.ndarray:
    """Which rows have ``name`` given (none where the column is not in ``given``)."""
    return given[name].to_numpy(bool) if name in given.columns else np.zeros(len(given), dtype=bool)


def _restore_identity(rules: RuleSet, rule: LinearIdentity, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                      given: pd.DataFrame, rng: np.random.Generator) -> None:
    column = rules.added.get(rule.name)
    rest = rules.token(rule, frame) if column is not None else np.full(len(frame), rule.remainder[0])
    total = rest.copy()
    for k, term in rule.terms:
        total += k * numbers.get(term)
    target_given = _fixed(given, rule.target_column)
    # Where a term is missing the identity says nothing: the model's own value stays.
    numbers.set(rule.target_column, total, ~target_given & ~np.isnan(total))
    if target_given.any():
        # Solve for the term of widest range that is not given (the fare, not the tolls of 0 or 6.12): the
        # difference the model leaves is then smallest in that column's own scale.
        target = numbers.get(rule.target_column)
        for k, term in sorted(reversed(rule.terms), key=lambda kt: -_span(schema[kt[1]])):
            free = target_given & ~_fixed(given, term) & ~np.isnan(rest)
            if free.any():
                others = rest + sum(kk * numbers.get(t) for kk, t in rule.terms if t != term)
                numbers.set(term, (target - others) / k, free)
                target_given = target_given & ~free


def _span(spec: ColumnSpec) -> float:
    return 0.0 if spec.min is None or spec.max is None else spec.max - spec.min


#: The share of an order's gaps in the table that its widest kept gap leaves out (:attr:`Order.widest_gap`).
WIDEST_GAP_LEFT_OUT = 0.001


def _with_widest_gap(rule: Order, numbers: _Numbers) -> Order:
    low, high = numbers.get(rule.low), numbers.get(rule.high)
    gap = high - low
    bites = ~np.isnan(gap) & (gap >= 0) & ~((high == 0) & rule.zero_exempt)
    return replace(rule, widest_gap=float(np.quantile(gap[bites], 1 - WIDEST_GAP_LEFT_OUT))) if bites.any() else rule


def _restore_order(rules: RuleSet, rule: Order, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                   given: pd.DataFrame, rng: np.random.Generator) -> None:
    gap = rules.token(rule, frame)
    low, own = numbers.get(rule.low), numbers.get(rule.high)
    # The model's own later value where it keeps the order within the table's widest gap (its ties to the
    # other columns are the model's), the earlier one plus the learned gap where it does not, or where the
    # gap is one of the table's exceptions (negative): a model that has not learned how close two columns
    # are (superstore's ship dates, 0 to 11 days after the order) would place the later one anywhere after.
    keeps = (own >= low) if rule.widest_gap is None else (own >= low) & (own - low <= rule.widest_gap)
    high = np.where(~np.isnan(gap) & keeps & ~(gap < 0), own, low + gap)
    if rule.zero_exempt:
        high = np.where(np.isnan(gap) & ~np.isnan(low), 0.0, high)
    high_given = _fixed(given, rule.high)
    numbers.set(rule.high, high, ~high_given & ~np.isnan(low))
    free = high_given & ~_fixed(given, rule.low) & ~np.isnan(gap)
    if free.any():  # a given end with its start generated: the start is the end less the learned gap
        numbers.set(rule.low, numbers.get(rule.high) - gap, free)


def _restore_formula(rules: RuleSet, rule: Formula, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                     given: pd.DataFrame, rng: np.random.Generator) -> None:
    from .declared import evaluate_expression

    values = evaluate_expression(rule.expression, {c: numbers.get(c) for c in rule.columns[1:]})
    # Where the formula gives no number (an input missing, a division by zero), or the model drew one of
    # the table's exceptions, the model's own value stays.
    written = ~_fixed(given, rule.target_column) & np.isfinite(values)
    if rule.name in rules.added:
        written &= rules.token(rule, frame) == 1
    numbers.set(rule.target_column, values, written)


def _restore_tie(rules: RuleSet, rule: Tie, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                 given: pd.DataFrame, rng: np.random.Generator) -> None:
    which = rules.token(rule, frame)
    tied = (which == _tie_sources(rules.rules, rule.column).index(rule.source) + 1) & ~_fixed(given, rule.column)
    # A tie drawn beside a source value the column never takes (a negative bill copied into a
    # payment) is not copied: the column keeps its own value, within its range.
    source, spec = numbers.get(rule.source), schema[rule.column]
    if spec.min is not None and spec.max is not None:
        tied &= (source >= spec.min) & (source <= spec.max)
    numbers.set(rule.column, source, tied)


def _restore_granularity(rules: RuleSet, rule: Granularity, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                         given: pd.DataFrame, rng: np.random.Generator) -> None:
    step = rules.token(rule, frame)
    values = numbers.get(rule.column)
    known = ~np.isnan(step) & ~np.isnan(values)
    known &= ~_fixed(given, rule.column)
    rounded = values.copy()
    rounded[known] = np.round(values[known] / step[known]) * step[known]
    # A value rounded to its step may land on a coarser one (a hundred on a thousand): move it a step
    # towards where it was, so that each step keeps its share.
    coarse = known & (rule.step_of(rounded) < rule.step_of(np.where(known, step, np.nan)))
    direction = np.where(values >= rounded, 1.0, -1.0)
    rounded[coarse] += direction[coarse] * step[coarse]
    spec = schema[rule.column]
    if spec.min is not None:  # moved out of the column's range: the other way instead
        outside = coarse & ((rounded < spec.min) | (rounded > spec.max))
        rounded[outside] -= 2 * direction[outside] * step[outside]
    for order in [r for r in rules.rules if isinstance(r, Order) and r.high == rule.column]:
        below = known & (rounded < numbers.get(order.low))  # rounded under its order's lower column: a step up
        rounded[below] += step[below]
    numbers.set(rule.column, rounded, known)


def _restore_determines(rules: RuleSet, rule: Determines, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                        given: pd.DataFrame, rng: np.random.Generator) -> None:
    parent_spec, child_spec = schema[rule.parent], schema[rule.child]
    child_given = _fixed(given, rule.child)
    parent_given = _fixed(given, rule.parent)
    # A row the model made one of the table's exceptions keeps its own child.
    follows = ~np.isnan(rules.token(rule, frame)) if rule.name in rules.added else np.ones(len(frame), dtype=bool)
    choose = child_given & ~parent_given & follows
    if choose.any():  # a given child: its parent is drawn among those of that child, by their rows
        _draw_parents(rule, frame, schema, choose, rng, numbers)
    parents = _keys_of(frame[rule.parent], parent_spec, numbers if parent_spec.kind == "numerical" else None, rule.parent)
    table = {p: c for p, c, _ in rule.pairs}
    written = [table.get(p, _KEEP) for p in parents]
    keep = np.array([w is _KEEP for w in written]) | ~follows
    values = np.array([None if w is _KEEP else w for w in written], dtype=object)
    if child_spec.kind == "numerical":
        numbers.set(rule.child, np.array([np.nan if v is None else v for v in values], dtype=float), ~keep & ~child_given)
    else:
        column = frame[rule.child].to_numpy(dtype=object, copy=True)
        mask = ~keep & ~child_given
        column[mask] = values[mask]
        frame[rule.child] = restore_dtype(pd.Series(column, index=frame.index), child_spec)


_KEEP = object()


def _restore_drawn_parent(rules: RuleSet, rule: Determines, numbers: _Numbers, frame: pd.DataFrame, schema: Schema,
                          given: pd.DataFrame, rng: np.random.Generator) -> None:
    """Where the parent disagrees with the child another rule wrote, a parent of that child is drawn."""
    keys = _keys_of(frame[rule.parent], schema[rule.parent], numbers if schema[rule.parent].kind == "numerical" else None,
                    rule.parent)
    children = _keys_of(frame[rule.child], schema[rule.child], numbers if schema[rule.child].kind == "numerical" else None,
                        rule.child)
    table = {p: c for p, c, _ in rule.pairs}
    known = {c for _, c, _ in rule.pairs}
    wrong = np.array([table.get(p, _KEEP) != c and c in known for p, c in zip(keys, children)], dtype=bool)
    wrong &= ~_fixed(given, rule.parent)
    if wrong.any():
        _draw_parents(rule, frame, schema, wrong, rng, numbers)


def _keys_of(column: pd.Series, spec: ColumnSpec, numbers: _Numbers | None, name: str) -> list[Any]:
    if numbers is not None:
        return [None if np.isnan(v) else float(v) for v in numbers.get(name)]
    return [None if pd.isna(v) else json_scalar(v) for v in column]


def _draw_parents(rule: Determines, frame: pd.DataFrame, schema: Schema, rows: np.ndarray,
                  rng: np.random.Generator, numbers: _Numbers) -> None:
    children = _keys_of(frame[rule.child], schema[rule.child], numbers if schema[rule.child].kind == "numerical" else None,
                        rule.child)
    by_child: dict[Any, tuple[list[Any], np.ndarray]] = {}
    for parent, child, count in rule.pairs:
        parents, counts = by_child.setdefault(child, ([], np.zeros(0)))
        by_child[child] = (parents + [parent], np.append(counts, count))
    rows = rows & np.array([c in by_child for c in children], dtype=bool)  # a child no parent has keeps its own
    chosen = []
    for i in np.flatnonzero(rows):
        parents, counts = by_child[children[i]]
        chosen.append(parents[rng.choice(len(parents), p=counts / counts.sum())])
    parent_spec = schema[rule.parent]
    if parent_spec.kind == "numerical":
        values = numbers.get(rule.parent).copy()
        values[np.flatnonzero(rows)] = np.array([np.nan if v is None else v for v in chosen], dtype=float)
        numbers.set(rule.parent, values, rows)
    else:
        column = frame[rule.parent].to_numpy(dtype=object, copy=True)
        column[np.flatnonzero(rows)] = np.array(chosen, dtype=object)
        frame[rule.parent] = restore_dtype(pd.Series(column, index=frame.index), parent_spec)


_RESTORERS = {LinearIdentity: _restore_identity, Order: _restore_order, Formula: _restore_formula, Tie: _restore_tie,
              Granularity: _restore_granularity, Determines: _restore_determines}

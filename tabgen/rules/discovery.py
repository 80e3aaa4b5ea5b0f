"""Rules found in a table alone: what determines what, exact sums, orders, ties and round numbers.

Every learned column (not an identifier, not one written from its one-to-one partner by
:mod:`tabgen.pairs`) takes part. A candidate rule must hold in every row (a tie: in its share of
them), and then pass a *support test*: ``P``, the probability that columns with the same marginal
distributions but paired at random would keep it, must satisfy ``log P < log(alpha / tests)``, where
``tests`` counts the candidates of that kind the table offers (Bonferroni). A table of independent
columns therefore yields a rule of a given kind with probability ``alpha`` at most, up to the error
of estimating the marginals from the table itself; docs/rules.md gives each test and the rate
measured on independent columns.

- ``Determines``: every parent group of two rows or more has one child value; by chance each would
  with probability ``Σ_c q_c^n`` (``q`` the child's shares, ``n`` the group's rows). With exceptions,
  the binomial tail of the rows on their group's commonest child, against the share a child shuffled
  apart from the parent keeps. A parent must repeat its values (an identifier determines everything,
  and says nothing), and only the transitive reduction is kept (zone -> borough -> region, not zone ->
  region), through exact links.
- ``LinearIdentity``: the columns are scaled to integers on their finest decimal, so a sum is exact
  or not. Candidates come from a hash that is linear in the columns (weighted sums of a few rows'
  differences, mod 2^64): ``target − k1·a`` is matched against ``k2·b + k3·c`` by sorting, which costs
  O(m²) hashes instead of O(m⁴) sums. Differences cancel a constant remainder; a remainder of a few
  values is caught by repeating the hash on small sets of rows that happen to share one.
- ``Order``: ``high ≥ low`` wherever both are present, against ``P(H ≥ L)^n`` for independent draws.
- ``Tie``: equal in a share of rows, against a binomial tail with the chance of equal non-zero
  values (two often-zero columns are equal in their zeros by chance, and those rows are not counted).
- ``Granularity``: multiples of ten times a step, among the multiples of that step, against the
  10 % that smooth values give.

A *near miss* is a ``Determines``, ``LinearIdentity`` or ``Order`` candidate that holds in every row
and fails only its support test, but would pass it at ``NEAR_ALPHA`` in place of ``alpha``: too few
rows to tell it from chance, yet more support than independent columns give one of its kind in 95
tables of 100. :func:`find_rules_and_near_misses` returns them beside the rules; none is kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..pairs import comparable_values
from ..protection import RARE
from ..schema import ColumnSpec, Schema, as_numbers, json_scalar, on_grid, quantile_count, quantile_ranks
from .kinds import Determines, Granularity, LinearIdentity, Order, Rule, Tie

#: The chance, per kind of rule, that a table of independent columns yields one (before the error of
#: estimating marginals from the table; docs/rules.md has the rates measured).
ALPHA = 1e-3
#: Rows sampled for screening candidates and estimating chance: checks on them are cheap, and every
#: survivor is then checked on all rows.
SCREEN_ROWS = 2_000
#: A parent's rows outside its commonest value must repeat a value of an earlier row this often: an
#: identifier, or a measurement whose only repeated value is 0, determines everything and says nothing.
MIN_REPEAT_SHARE = 0.4
#: Coefficients of an identity's terms; an identity has at most three terms.
COEFFICIENTS = (1, -1, 2, -2)
#: An identity's remainder takes at most this many values, each in at least ``MIN_REMAINDER_ROWS``
#: rows and ``MIN_REMAINDER_SHARE`` of them: a value of one row is an exception, not a rule.
MAX_REMAINDER_VALUES = 8
MIN_REMAINDER_ROWS = 5
MIN_REMAINDER_SHARE = 0.005
#: Rows with a missing value in an identity's columns are not tested; at most this share of them.
MAX_MISSING_SHARE = 0.05
#: Of the rows tested, at most this share may take a remainder outside its values: real tables hold a
#: few mistyped totals, and a rule that must hold in every row is then not found, and broken in most of
#: the rows generated.
MAX_OTHER_SHARE = 0.05
#: The same holds for orders. A rule with exceptions is reported only where the columns' values shuffled
#: apart keep it in at most this share of rows (an identity: its rest on one of its values; an order:
#: ``P(H ≥ L)``, about 0.5 for an end and its start). Otherwise the columns' values make it: columns of few
#: values (default's payment statuses, −2 to 8) differ by one of a few values in 82–89 % of shuffled rows
#: and 98.6 % of the table's, as correlated columns do; columns 0 in the same 95 % of rows add up there
#: (shuffled, in 0.95⁴ = 81 % of rows or more); a credit limit above the bills (86 %, 97 % in the table)
#: or pm2.5 above the dew point (95 %, 98 %) follow from the columns' ranges.
MAX_EXCEPTION_CHANCE = 2 / 3
#: ... unless its exceptions are at most this many times rarer than the shuffled values' breaks: one
#: mistyped row in 43,824 (beijing's whole table, where TEMP < DEWP once) does not make an order that
#: shuffled values keep in 95 % of rows any less of a rule than it is in the rows without it. The
#: candidates of the shared tables that the bound above refuses break 1.7 to 16 times rarer than chance.
EXCEPTION_LIFT = 100


def _few_enough_exceptions(p: float, other: int, n: int) -> bool:
    """Whether ``other`` exceptions in ``n`` rows still make a rule that shuffled values keep in a share
    ``p`` of rows (see ``MAX_EXCEPTION_CHANCE``)."""
    return other == 0 or p <= MAX_EXCEPTION_CHANCE or other * EXCEPTION_LIFT <= (1 - p) * n
#: Rows of the hash that finds identities with a constant remainder; and the rows of the one repeated
#: for a remainder of a few values, which finds it when all its rows share one value: as many repetitions
#: as ``TRIAL_BUDGET / columns²`` allows (a repetition costs columns²), from ``TRIALS`` to 8 times that.
#: With 4 columns, a remainder over 70/20/10 % of rows was found in 40 tables of 40, over 50/30/20 % in
#: 97 of 100 (as 256 draws of 6 rows make likely), over 40/30/20/10 % in 70 of 100.
HASH_ROWS = 24
TRIAL_ROWS = 6
TRIALS = 32
TRIAL_BUDGET = TRIALS * 60**2
#: A hash matching more candidates than this does not tell columns apart (rows of zeros): skipped.
MAX_MATCHES = 20_000
#: An order is reported only if independent draws of its columns would break it in one row in twenty
#: or more: one that random pairs keep anyway (durations in seconds against counts of pages) comes
#: from the columns' scales, not from a relation between them.
MAX_ORDER_CHANCE = 0.95
#: A tie is reported from this share of rows (below 1: an equal column is a copy).
MIN_TIE_SHARE = 0.02
#: ... and where it is at least this many times as frequent as between independent columns (columns
#: merely correlated, such as age and hours worked, are equal a little more often than by chance).
MIN_TIE_LIFT = 3
#: Among multiples of a step, smooth values are multiples of ten steps in 10 % of rows; a coarser step
#: counts from three times that, on at least ``MIN_STEP_ROWS`` values spread over ten of its periods or more.
STEP_CHANCE = 0.1
MIN_STEP_SHARE = 0.3
MIN_STEP_ROWS = 20
STEP_SPREAD = 10
#: A candidate that holds in every row but fails its support test is a near miss when it would pass it
#: at this ``alpha`` (``log P < log(NEAR_ALPHA / tests)``): independent columns give one of a kind in 5 %
#: of tables at most, and every near miss would pass at ``alpha`` in a table ten times as large.
NEAR_ALPHA = 0.05


def find_rules(df: pd.DataFrame, schema: Schema, *, alpha: float = ALPHA, rare_rows: int = 0) -> list[Rule]:
    """The rules ``df`` obeys: ``Determines``, ``LinearIdentity``, ``Order``, ``Tie`` and ``Granularity``,
    in that order, each kind in the table's column order (Determines first by the rows their parent tells).

    ``schema`` is the table's (after :func:`tabgen.pairs.find_pairs`: columns written from a partner
    take no part). ``alpha`` bounds the chance, per kind, that independent columns yield a rule.
    ``rare_rows`` is the fit's value protection (:mod:`tabgen.protection`), which sets how finely the
    transform learns a column, and so which round values come back without a rule.
    """
    return find_rules_and_near_misses(df, schema, alpha=alpha, rare_rows=rare_rows)[0]


def find_rules_and_near_misses(df: pd.DataFrame, schema: Schema, *, alpha: float = ALPHA,
                               rare_rows: int = 0) -> tuple[list[Rule], list[Rule]]:
    """As :func:`find_rules`, and beside the rules the near misses, which are not kept: ``Determines``,
    ``LinearIdentity`` and ``Order`` candidates that hold in every row but fail their support test at
    ``alpha`` while passing it at ``NEAR_ALPHA`` (in that order of kinds; none implied by the rules or
    by an earlier near miss). They are what a table too small to tell its rules from chance leaves out.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    learned = [s for s in schema.columns if s.kind != "id" and s.derived_from is None and s.name in df.columns]
    if len(df) < 2 or not learned:
        return [], []
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(df), size=min(SCREEN_ROWS, len(df)), replace=False))
    near: list[Rule] = []
    determines = _determines(df, learned, alpha, near)
    numbers = _Numbers(df, [s for s in learned if s.kind == "numerical"], sample)
    identities = _identities(numbers, determines, alpha, rng, near)
    orders = _orders(numbers, identities, alpha, near)
    ties = _ties(numbers, [*determines, *identities], alpha)
    return [*determines, *identities, *orders, *ties, *_granularities(numbers, alpha, rare_rows)], near


def _log_limit(alpha: float, tests: int) -> float:
    return math.log(alpha) - math.log(max(tests, 1))


def _near_limit(tests: int) -> float:
    """The support test's limit at ``NEAR_ALPHA``: a candidate between the two limits is a near miss."""
    return _log_limit(NEAR_ALPHA, tests)


def _log_binomial_tail(k: int, n: int, p: float) -> float:
    """An upper bound on ``log P(X ≥ k)`` for ``X ~ Binomial(n, p)`` (Chernoff: ``−n·KL(k/n ‖ p)``)."""
    x = k / n if n else 0.0
    if x <= p:
        return 0.0
    if p <= 0:
        return -math.inf
    if x >= 1:
        return n * math.log(p)
    return -n * (x * math.log(x / p) + (1 - x) * math.log((1 - x) / (1 - p)))


def _key(value: Any) -> Any:
    return None if value is None or pd.isna(value) else json_scalar(value)


# Determines


def _determines(df: pd.DataFrame, learned: list[ColumnSpec], alpha: float, near: list[Rule]) -> list[Determines]:
    """The lookups found; near misses are added to ``near``."""
    names, codes, values = [], [], []
    for spec in learned:
        code, unique = pd.factorize(comparable_values(df[spec.name], spec), use_na_sentinel=False)
        if len(unique) >= 2:  # a missing value counts as a value, as in tabgen.pairs
            names.append(spec.name)
            codes.append(code.astype(np.int64))
            values.append(unique)
    counts = [len(v) for v in values]
    parents = [p for p in range(len(names)) if _repeats(codes[p], counts[p])]
    # One-to-one pairs (equal counts) are tabgen.pairs' business; a child has fewer values than its parent,
    # or as many where it has exceptions (a zip code and its latitude, mistyped in a few rows).
    children_of = {p: [c for c in range(len(names)) if counts[c] <= counts[p] and c != p] for p in parents}
    tests = sum(len(c) for c in children_of.values())
    limit, near_limit = _log_limit(alpha, tests), _near_limit(tests)
    found, close, other = set(), set(), {}
    # A parent's rare values, grouped as one (tabgen.protection), say nothing of its children.
    told = {p: np.flatnonzero(codes[p] != _code_of(values[p], RARE)) for p in parents}
    rng = np.random.default_rng(0)
    for p, children in children_of.items():
        rows = told[p]
        fewer = [c for c in children if counts[c] < counts[p]]
        exact = _functional(codes[p][rows], [codes[c][rows] for c in fewer], fewer)
        for c in exact:
            chance = _log_chance_pure(codes[p][rows], codes[c][rows])
            if chance < limit:
                found.add((p, c))
            elif chance < near_limit:
                close.add((p, c))
        for c, exceptions in _nearly_functional(codes[p][rows], {c: codes[c] for c in children if c not in exact}, rows, rng,
                                                limit):
            found.add((p, c))
            other[p, c] = exceptions

    def implied(p: int, c: int, among: set) -> bool:
        # Through an exact link only, and an exact rule not through a link with exceptions.
        return any((p, q) in among and (q, c) in among and not other.get((p, q)) and (other.get((p, c)) or not other.get((q, c)))
                   for q in range(len(names)))

    def reduced(pairs: set, among: set) -> list[Determines]:
        # The parent telling the most rows first: of two writing one child, it writes it (a postal code
        # its city, not an order ID that is rare in most rows).
        kept = sorted(((p, c) for p, c in pairs if not implied(p, c, among)), key=lambda pc: (-len(told[pc[0]]), pc))
        return [Determines(names[p], names[c], commonest_pairs(codes[p][told[p]], values[p], codes[c][told[p]], values[c]),
                           other.get((p, c), 0)) for p, c in kept]

    near += reduced(close, found | close)
    return reduced(found, found)


def _code_of(values: Any, value: Any) -> int:
    """The code of ``value`` among a column's factorized ``values``; -1 where it is not one of them."""
    at = np.flatnonzero(np.asarray([v == value if isinstance(v, str) else False for v in values]))
    return int(at[0]) if len(at) else -1


def _repeats(code: np.ndarray, count: int) -> bool:
    """Whether the rows outside the commonest value repeat values of other rows often enough."""
    sizes = np.bincount(code)
    rest = len(code) - int(sizes.max())
    return count >= 3 and rest > 0 and rest - (count - 1) >= MIN_REPEAT_SHARE * rest


def _functional(parent: np.ndarray, children: list[np.ndarray], ids: list[int]) -> list[int]:
    """The ``ids`` of the children that take one value in every group of ``parent``."""
    if not children:
        return []
    matrix = np.vstack(children)
    # A child that is not a function of the parent nearly always shows it in the first rows.
    survivors = _constant_within(parent[:SCREEN_ROWS], matrix[:, :SCREEN_ROWS])
    if len(parent) > SCREEN_ROWS and survivors.any():
        survivors[survivors] = _constant_within(parent, matrix[survivors])
    return [i for i, ok in zip(ids, survivors) if ok]


def _constant_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row of ``values`` (children × rows), whether it is constant within each group of ``groups``."""
    order = np.argsort(groups, kind="stable")
    same = groups[order][1:] == groups[order][:-1]
    ordered = values[:, order]
    return ~((ordered[:, 1:] != ordered[:, :-1]) & same).any(axis=1)


def _off_commonest(parent: np.ndarray, child: np.ndarray) -> tuple[int, int]:
    """The rows whose child is not the commonest of their parent group, and the rows of groups of two
    rows or more (a group of one row keeps any lookup)."""
    if len(child) == 0:
        return 0, 0
    width = int(child.max()) + 1
    keys, counts = np.unique(parent * width + child, return_counts=True)
    groups = keys // width
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes, commonest = np.add.reduceat(counts, starts), np.maximum.reduceat(counts, starts)
    grouped = sizes >= 2
    return int((sizes - commonest)[grouped].sum()), int(sizes[grouped].sum())


def _nearly_functional(parent: np.ndarray, children: dict[int, np.ndarray], rows: np.ndarray, rng: np.random.Generator,
                       limit: float) -> list[tuple[int, int]]:
    """The children (their codes in every row; ``parent``'s in ``rows``), with their exceptions, that take
    their group's commonest value in all but ``MAX_OTHER_SHARE`` of the grouped rows, where a child
    shuffled apart from the parent would do so in few enough rows (:func:`_few_enough_exceptions`) and the
    binomial tail of the rows kept is below ``limit``."""
    kept = []
    if not children:
        return kept
    # Screened on the first rows: a child far from a function of its parent shows it there. An exception
    # breaks two neighbours at most in its group, so the count of neighbours that differ screens them all at once.
    head, first = parent[:SCREEN_ROWS], rows[:SCREEN_ROWS]
    sizes = np.bincount(head)
    order = np.argsort(head, kind="stable")
    same = head[order][1:] == head[order][:-1]
    ordered = np.vstack([child[first] for child in children.values()])[:, order]
    differ = ((ordered[:, 1:] != ordered[:, :-1]) & same).sum(axis=1)
    bound = 2 * (2 * MAX_OTHER_SHARE * sizes[sizes >= 2].sum() + 2)
    for (c, child), far in zip(children.items(), differ > bound):
        if far:
            continue
        off, grouped = _off_commonest(head, child[first])
        if off > 2 * MAX_OTHER_SHARE * grouped + 2:
            continue
        child = child[rows]
        off, grouped = _off_commonest(parent, child)
        if off == 0 or off > MAX_OTHER_SHARE * grouped:
            continue
        p = 1 - _off_commonest(parent, rng.permutation(child))[0] / grouped
        if _few_enough_exceptions(p, off, grouped) and _log_binomial_tail(grouped - off, grouped, p) < limit:
            kept.append((c, off))
    return kept


def _log_chance_pure(parent: np.ndarray, child: np.ndarray) -> float:
    """``log Π_g Σ_c q_c^{n_g}`` over the parent's groups of two rows or more: the chance that a child
    of the same shares, independent of the parent, would take one value in each of them."""
    sizes = np.bincount(parent)
    sizes, groups = np.unique(sizes[sizes >= 2], return_counts=True)
    shares = np.bincount(child) / len(child)
    log_q = np.log(shares[shares > 0])
    per_group = np.array([_log_sum_exp(size * log_q) for size in sizes])
    return float(np.dot(groups, per_group)) if len(sizes) else 0.0


def _log_sum_exp(x: np.ndarray) -> float:
    top = float(x.max())
    return top + math.log(float(np.exp(x - top).sum()))


def commonest_pairs(parent: np.ndarray, parent_values: Any, child: np.ndarray, child_values: Any) -> list[list[Any]]:
    """``[parent value, child value, rows]`` for each parent value, in the order they first appear; the
    child value is the parent's commonest (the first to appear among equally common ones)."""
    codes, first, rows = np.unique(parent, return_index=True, return_counts=True)
    # Rows sorted by parent, then by how common their child is in the group, then by first appearance.
    width = int(child.max()) + 1
    pair_rows = np.bincount(parent * width + child)[parent * width + child]
    best = np.lexsort((np.arange(len(parent)), -pair_rows, parent))
    commonest = child[best[np.searchsorted(parent[best], codes)]]
    order = np.argsort(first)
    return [[_key(parent_values[codes[i]]), _key(child_values[commonest[i]]), int(rows[i])] for i in order]


# The numerical columns, shared by the other kinds


class _Numbers:
    """The numerical columns as float64 (NaN for missing), in table order; a column equal to an earlier
    one in every row takes no part (it is a copy, not a rule), nor does a constant one."""

    def __init__(self, df: pd.DataFrame, specs: list[ColumnSpec], sample: np.ndarray):
        self.specs: list[ColumnSpec] = []
        columns: list[np.ndarray] = []
        for spec in specs:
            values = as_numbers(df[spec.name], spec)
            present = values[~np.isnan(values)]
            if len(present) == 0 or present.min() == present.max():
                continue
            if any(np.array_equal(values[:64], other[:64], equal_nan=True) and np.array_equal(values, other, equal_nan=True)
                   for other in columns):
                continue
            self.specs.append(spec)
            columns.append(values)
        self.values = np.column_stack(columns) if columns else np.zeros((len(df), 0))
        self.sample = sample
        self.names = [s.name for s in self.specs]

    @property
    def width(self) -> int:
        return len(self.specs)

    def same_unit_pairs(self) -> list[tuple[int, int]]:
        """Column pairs whose numbers compare: both plain numbers, or datetimes of one unit."""
        units = [s.datetime_unit for s in self.specs]
        return [(i, j) for i in range(self.width) for j in range(i + 1, self.width) if units[i] == units[j]]


# LinearIdentity


def _identities(numbers: _Numbers, determines: list[Determines], alpha: float, rng: np.random.Generator,
                near: list[Rule]) -> list[LinearIdentity]:
    """The identities found; near misses, none a combination of identities found or of earlier near
    misses, are added to ``near``."""
    columns = [j for j, s in enumerate(numbers.specs)
               if s.decimals is not None and np.isnan(numbers.values[:, j]).mean() <= MAX_MISSING_SHARE]
    scale = 10.0 ** max((numbers.specs[j].decimals for j in columns), default=0)
    # Scaled to integers, sums are exact in int64 while every value stays within float64's integers.
    columns = [j for j in columns if np.nanmax(np.abs(numbers.values[:, j])) * scale < 2.0**53]
    m = len(columns)
    if m < 2:
        return []
    present = ~np.isnan(numbers.values[:, columns])
    ints = np.where(present, np.round(np.nan_to_num(numbers.values[:, columns]) * scale), 0).astype(np.int64)
    tests = m * sum(math.comb(m - 1, t) * len(COEFFICIENTS) ** t for t in range(1, 4))
    space = _Space(numbers, columns, ints, present, scale, _log_limit(alpha, tests))
    near_limit = max(space.limit, _near_limit(tests))
    linked = {frozenset((numbers.names.index(d.parent), numbers.names.index(d.child))) for d in determines
              if d.parent in numbers.names and d.child in numbers.names}
    found, basis, close, either = [], np.zeros((0, m)), [], np.zeros((0, m))
    for vector in _simplest_first([space.grown(v) for v in _candidates(ints[numbers.sample], present[numbers.sample], rng)]):
        if _in_span(basis, vector) or frozenset(columns[j] for j in np.flatnonzero(vector)) in linked:
            continue
        tested = space.identity(vector, rng, near_limit)
        if tested is None:
            continue
        if tested[1] < space.limit:
            found.append(tested[0])
            basis = np.vstack([basis, vector])
        elif _in_span(either, vector):
            continue
        else:
            close.append((tested[0], vector))
        either = np.vstack([either, vector])
    near += [rule for rule, vector in close if not _in_span(basis, vector)]
    return found


def _in_span(basis: np.ndarray, vector: np.ndarray) -> bool:
    """Whether ``vector`` is a combination of identities already found (and so implied by them)."""
    if len(basis) == 0:
        return False
    return np.linalg.matrix_rank(np.vstack([basis, vector])) == np.linalg.matrix_rank(basis)


def _remainders(rest: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The values an identity's ``rest`` (one per row) keeps as its remainder: the most frequent, at most
    ``MAX_REMAINDER_VALUES``, each of ``MIN_REMAINDER_ROWS`` rows and ``MIN_REMAINDER_SHARE`` of them or
    more; with their rows, and the rows of none of them (exceptions)."""
    values, counts = np.unique(rest, return_counts=True)
    frequent = np.argsort(-counts, kind="stable")[:MAX_REMAINDER_VALUES]
    frequent = np.sort(frequent[counts[frequent] >= max(MIN_REMAINDER_ROWS, MIN_REMAINDER_SHARE * len(rest))])
    return values[frequent], counts[frequent], int(len(rest) - counts[frequent].sum())


def _candidates(ints: np.ndarray, present: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Coefficient vectors (one per column, sign of the first nonzero positive) whose hashes match: a
    hash of many rows finds constant remainders, repeated hashes of a few rows the remainders of a few
    values (when the rows share one)."""
    hashes = [_row_hash(ints, present, _varied_rows(ints, present, rng), rng)]
    complete = np.flatnonzero(present.all(axis=1))
    pool = complete if len(complete) >= 2 * TRIAL_ROWS else np.arange(len(ints))
    trials = int(np.clip(TRIAL_BUDGET / ints.shape[1] ** 2, TRIALS, 8 * TRIALS)) if len(pool) >= TRIAL_ROWS else 0
    hashes += [_row_hash(ints, present, rng.choice(pool, TRIAL_ROWS, replace=False), rng) for _ in range(trials)]
    combinations = _Combinations(ints.shape[1])
    batch = int(np.clip(2_000_000 // len(combinations.b), 1, 255))
    found: set[tuple[int, ...]] = set()
    for start in range(0, len(hashes), batch):
        found |= combinations.matches(np.vstack(hashes[start:start + batch]))
    return [np.array(v, dtype=np.int64) for v in found]


def _simplest_first(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """Of identities that imply each other, the first found is kept: the one of fewest columns, then of
    smallest coefficients (gross = net + tax rather than net = 2·fare + 1 − tax)."""
    distinct = {tuple(v): v for v in vectors}.values()
    return sorted(distinct, key=lambda v: (np.count_nonzero(v), int(np.abs(v).sum()), tuple(np.flatnonzero(v))))


def _varied_rows(ints: np.ndarray, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``HASH_ROWS`` rows, complete ones first, plus a row for each column constant on them (a column
    constant on the hashed rows has a zero hash, which would match anything)."""
    missing = (~present).sum(axis=1)
    pool = np.lexsort((rng.random(len(ints)), missing))
    rows = list(pool[:HASH_ROWS])
    for j in range(ints.shape[1]):
        chosen = ints[rows, j]
        if (chosen == chosen[0]).all():
            other = pool[(ints[pool, j] != chosen[0]) & present[pool, j]]
            rows += list(other[:1])
    return np.array(rows)


def _row_hash(ints: np.ndarray, present: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each column's weighted sum of its differences from the first row, mod 2^64: linear, so an identity
    between columns holds between their hashes. A column missing in these rows, or constant on them
    (its hash 0 would match anything), gets a random hash, which matches nothing."""
    differences = ints[rows[1:]] - ints[rows[0]]
    weights = rng.integers(0, 2**62, size=len(rows) - 1, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    hashes = (differences.astype(np.uint64) * weights[:, None]).sum(axis=0, dtype=np.uint64)
    usable = present[rows].all(axis=0) & (differences != 0).any(axis=0)
    return np.where(usable, hashes, rng.integers(0, 2**63, size=len(hashes), dtype=np.uint64) * np.uint64(2))


class _Combinations:
    """Every ``t − k1·a`` (the left side) and ``k2·b + k3·c`` (the right side) of ``m`` columns, where
    column ``m`` stands for none: an identity ``t = k1·a + k2·b + k3·c`` makes the two sides' hashes equal."""

    def __init__(self, m: int):
        self.m = m
        k = np.array(COEFFICIENTS, dtype=np.int64)
        t, a, k1 = (x.ravel() for x in np.meshgrid(np.arange(m), np.arange(m + 1), k, indexing="ij"))
        keep = (t != a) & ((a < m) | (k1 == 1))
        self.t, self.a, self.k1 = t[keep], a[keep], k1[keep]
        b, c, k2, k3 = (x.ravel() for x in np.meshgrid(np.arange(m + 1), np.arange(m + 1), k, k, indexing="ij"))
        keep = ((b < c) | ((b == m) & (c == m))) & ((b < m) | (k2 == 1)) & ((c < m) | (k3 == 1))
        self.b, self.c, self.k2, self.k3 = b[keep], c[keep], k2[keep], k3[keep]

    def matches(self, hashes: np.ndarray) -> set[tuple[int, ...]]:
        """The vectors whose two sides match in a row of ``hashes`` (one row per hash of at most 255;
        one matching more than ``MAX_MATCHES`` does not tell columns apart and is left out)."""
        h = np.hstack([hashes, np.zeros((len(hashes), 1), dtype=np.uint64)])
        u = np.uint64
        left = h[:, self.t] - self.k1.astype(u) * h[:, self.a]
        right = self.k2.astype(u) * h[:, self.b] + self.k3.astype(u) * h[:, self.c]
        # One sort for all the hashes: each row's number in the top 8 bits, its hash below.
        tag = (np.arange(len(h), dtype=u) << u(56))[:, None]
        left, right = (tag | (left >> u(8))).ravel(), (tag | (right >> u(8))).ravel()
        order = np.argsort(right)
        low = np.searchsorted(right[order], left, side="left")
        counts = (np.searchsorted(right[order], left, side="right") - low).reshape(len(h), -1)
        counts[counts.sum(axis=1) > MAX_MATCHES] = 0
        counts = counts.ravel()
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        li = np.repeat(np.arange(len(left)), counts) % len(self.t)
        ri = order[np.arange(counts.sum()) - starts + np.repeat(low, counts)] % len(self.b)
        return self._vectors(li, ri)

    def _vectors(self, li: np.ndarray, ri: np.ndarray) -> set[tuple[int, ...]]:
        m = self.m
        t, a, k1, b, c, k2, k3 = self.t[li], self.a[li], self.k1[li], self.b[ri], self.c[ri], self.k2[ri], self.k3[ri]
        distinct = (t != b) & (t != c) & ((a == m) | ((a != b) & (a != c))) & ((a < m) | (b < m))
        vectors = np.zeros((int(distinct.sum()), m + 1), dtype=np.int64)  # column m: none, dropped below
        rows = np.arange(len(vectors))
        for index, coefficient in ((t, np.ones_like(t)), (a, -k1), (b, -k2), (c, -k3)):
            np.add.at(vectors, (rows, index[distinct]), coefficient[distinct])
        vectors = vectors[:, :m]
        signs = np.sign(vectors[rows, np.argmax(vectors != 0, axis=1)]) if len(vectors) else np.zeros(0, dtype=np.int64)
        return {tuple(v) for v in np.unique(vectors * signs[:, None], axis=0)}


class _Space:
    """The numerical columns an identity may use, scaled to integers, and its support test."""

    def __init__(self, numbers: _Numbers, columns: list[int], ints: np.ndarray, present: np.ndarray, scale: float, limit: float):
        self.numbers, self.columns, self.ints, self.present = numbers, columns, ints, present
        self.scale, self.limit = scale, limit
        self.specs = [numbers.specs[j] for j in columns]
        self.sample_ints, self.sample_present = ints[numbers.sample], present[numbers.sample]

    def coverage(self, vector: np.ndarray) -> tuple[float, int]:
        """The share of the sampled rows (with ``vector``'s columns present) whose rest takes one of the
        remainder values it would keep (:func:`_remainders`), and how many values those are."""
        used = np.flatnonzero(vector)
        rest = self.sample_ints[:, used] @ vector[used]
        rest = rest[self.sample_present[:, used].all(axis=1)]
        if len(rest) == 0:
            return 0.0, 0
        values, _, other = _remainders(rest)
        return 1 - other / len(rest), len(values)

    def grown(self, vector: np.ndarray) -> np.ndarray:
        """``vector``, or it with one column more where that covers more sampled rows, each value counted
        as the ``MIN_REMAINDER_SHARE`` of rows it must hold: a hash of a few rows misses a term that is 0
        in most of them (tolls), and finds the identity without it, whose rest then takes the term's
        values too (surcharges, and surcharges plus tolls)."""
        share, values = self.coverage(vector)
        best, top = vector, share - MIN_REMAINDER_SHARE * values
        if (share, values) == (1.0, 1) or top < 0.5 or np.count_nonzero(vector) > 3:
            return vector
        for j in np.flatnonzero(vector == 0):
            for k in COEFFICIENTS:
                wider = vector.copy()
                wider[j] = k
                wider = wider * np.sign(wider[np.flatnonzero(wider)[0]])
                share, values = self.coverage(wider)
                score = share - MIN_REMAINDER_SHARE * values
                if score > top:
                    best, top = wider, score
        return best

    def identity(self, vector: np.ndarray, rng: np.random.Generator,
                 near_limit: float) -> tuple[LinearIdentity, float] | None:
        """The rule for ``vector`` and its log chance, if it holds in every row with its columns present
        (or in all but ``MAX_OTHER_SHARE`` of them) and its log chance is below ``near_limit``
        (``self.limit`` or above: a near miss's; one with exceptions is never a near miss)."""
        used = np.flatnonzero(vector)
        coefficients = vector[used]
        dated = [i for i, j in enumerate(used) if self.specs[j].datetime_unit is not None]
        # Dates add up only as differences: end = start + days, days = end − start.
        if dated and (len({self.specs[used[i]].datetime_unit for i in dated}) > 1 or coefficients[dated].sum() != 0):
            return None
        if self.coverage(vector)[0] < 1 - 2 * MAX_OTHER_SHARE:
            return None  # a hash's chance match: cheap to refuse on the sampled rows
        rows = self.present[:, used].all(axis=1)
        if rows.mean() < 1 - MAX_MISSING_SHARE:
            return None
        ints = self.ints[rows][:, used]
        values, counts, other = _remainders(ints @ coefficients)
        if len(values) == 0 or other > MAX_OTHER_SHARE * len(ints):
            return None
        if len(used) == 2 and values.tolist() == [0] and sorted(coefficients.tolist()) == [-1, 1]:
            return None  # a copy where both are present, a tie where it has exceptions: not an identity
        chance = self._log_chance(used, coefficients, values, len(ints) - other, len(ints), rng)
        if chance >= (self.limit if other else near_limit):
            return None
        return self._rule(used, coefficients, values, counts, other), chance

    def _log_chance(self, used: np.ndarray, coefficients: np.ndarray, values: np.ndarray, held: int, n: int,
                    rng: np.random.Generator) -> float:
        """``log P(X ≥ held)``, ``X ~ Binomial(n, p)`` (``n·log p`` where every row holds), plus the choice of
        the remainder values: ``p`` the share of rows whose remainder is one of them when each column's
        sampled values are shuffled apart. 0 where it has too many exceptions (:func:`_few_enough_exceptions`)."""
        sample = self.sample_ints[self.sample_present[:, used].all(axis=1)]
        shuffled = np.column_stack([rng.permutation(sample[:, j]) for j in used])
        rest = (shuffled * coefficients).sum(axis=1)
        p = (np.isin(rest, values).sum() + 1) / (len(rest) + 1)
        if not _few_enough_exceptions(p, n - held, n):
            return 0.0
        return _log_binomial_tail(held, n, p) + len(values) * math.log(max(len(np.unique(rest)), 1))

    def _rule(self, used: np.ndarray, coefficients: np.ndarray, values: np.ndarray, counts: np.ndarray,
              other: int) -> LinearIdentity:
        """Written with the total on the left: of the columns of coefficient ±1, the one of the largest
        values (the later one on a tie), so that ``c = a + b`` rather than ``a = c − b``."""
        sample = self.numbers.values[self.numbers.sample][:, [self.columns[j] for j in used]]
        size = np.nanmean(np.abs(sample), axis=0)
        unit = [i for i in range(len(used)) if abs(coefficients[i]) == 1]
        target = max(unit, key=lambda i: (size[i], i))
        sign = int(coefficients[target])
        terms = [[int(-coefficients[i] * sign), self.specs[used[i]].name] for i in range(len(used)) if i != target]
        decimals = max(self.specs[j].decimals for j in used)
        remainder = np.round(values * sign / self.scale, decimals)
        order = np.argsort(remainder)
        return LinearIdentity(
            target_column=self.specs[used[target]].name, terms=terms,
            remainder=[float(r) + 0.0 for r in remainder[order]], remainder_rows=[int(c) for c in counts[order]],
            tolerance=0.5 * 10.0**-decimals, other_rows=int(other),
        )


# Order


def _orders(numbers: _Numbers, identities: list[LinearIdentity], alpha: float, near: list[Rule]) -> list[Order]:
    """The orders found; near misses, none implied by orders found or by identities, are added to ``near``."""
    pairs = numbers.same_unit_pairs()
    tests = 4 * len(pairs)  # either way round, with or without the zero exemption
    limit, near_limit = _log_limit(alpha, tests), _near_limit(tests)
    x = numbers.values
    found: dict[tuple[int, int], bool] = {}
    close: dict[tuple[int, int], bool] = {}
    counts: dict[tuple[int, int], tuple[int, int]] = {}
    for i, j in _order_screen(x[numbers.sample], pairs):
        ways = [(low, high, _order_holds(x[:, low], x[:, high])) for low, high in ((i, j), (j, i))]
        holding = [(low, high, *held) for low, high, held in ways if held is not None]
        if len(holding) == 2:
            # One way exact and the other with exceptions (a year renovated, 0 in most rows, and the year
            # built): the exact one. Both exact (equal wherever both are present) or both not: neither.
            holding = [way for way in holding if not way[4]] if bool(holding[0][4]) != bool(holding[1][4]) else []
        if not holding:
            continue
        low, high, exempt, held, other = holding[0]
        chance = _log_chance_order(x[:, low], x[:, high], exempt, other)
        counts[(low, high)] = (held, other)
        if chance < limit:
            found[(low, high)] = exempt
        elif chance < near_limit and not other:
            close[(low, high)] = exempt
    implied = _implied_by_identities(numbers, identities)

    def reduced(pairs: dict[tuple[int, int], bool], among: dict[tuple[int, int], bool]) -> list[Order]:
        exact = {pair: exempt for pair, exempt in among.items() if not counts[pair][1]}  # a chain of exact orders
        kept = [(low, high) for low, high in sorted(pairs)
                if not _through(exact, low, high, x) and (numbers.names[low], numbers.names[high]) not in implied]
        return [Order(numbers.names[low], numbers.names[high], zero_exempt=pairs[(low, high)],
                      held_rows=counts[(low, high)][0], other_rows=counts[(low, high)][1]) for low, high in kept]

    near += reduced(close, {**found, **close})
    return reduced(found, found)


def _order_screen(sample: np.ndarray, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pairs ordered one way or the other (0 exempt) in the sampled rows; or in all but twice
    ``MAX_OTHER_SHARE`` of them where independent draws would keep that order in few enough rows to
    make it a rule with exceptions (a column of larger values is above another in most rows)."""
    kept = []
    with np.errstate(invalid="ignore"):
        for i, j in pairs:
            a, b = sample[:, i], sample[:, j]
            gone = np.isnan(a) | np.isnan(b)
            up, down = (gone | (b >= a) | (b == 0)).mean(), (gone | (a >= b) | (a == 0)).mean()
            if max(up, down) == 1:
                kept.append((i, j))
            elif max(up, down) >= 1 - 2 * MAX_OTHER_SHARE:
                low, high = (a, b) if up >= down else (b, a)
                exempt = bool(((high == 0) & (high < low)).any())
                p = _chance_above(low, high, _biting(low, high, exempt))
                if p <= MAX_EXCEPTION_CHANCE + 2 * MAX_OTHER_SHARE or (1 - max(up, down)) * EXCEPTION_LIFT <= 2 * (1 - p):
                    kept.append((i, j))
    return kept


def _biting(low: np.ndarray, high: np.ndarray, exempt: bool) -> np.ndarray:
    """The rows where an order bites: both present, and ``high ≠ 0`` when exempt."""
    rows = ~np.isnan(low) & ~np.isnan(high)
    return rows & (high != 0) if exempt else rows


def _chance_above(low: np.ndarray, high: np.ndarray, rows: np.ndarray) -> float:
    """``P(H ≥ L)`` for independent draws of the two columns' values over ``rows``, those where the order
    bites (:func:`_biting`); 1 where there are none."""
    if not rows.any():
        return 1.0
    lows = np.sort(low[rows])
    return float((np.searchsorted(lows, high[rows], side="right") / len(lows)).mean())


def _order_holds(low: np.ndarray, high: np.ndarray) -> tuple[bool, int, int] | None:
    """Whether ``high ≥ low`` needs ``high == 0`` exempt, and of the rows where both are present how many
    keep it and how many do not (at most ``MAX_OTHER_SHARE`` of them); ``None`` where it does not hold."""
    both = ~np.isnan(low) & ~np.isnan(high)
    if not both.any():
        return None
    below = high[both] < low[both]
    zero = below & (high[both] == 0)
    other = int((below & ~zero).sum())
    if other > MAX_OTHER_SHARE * both.sum():
        return None
    return bool(zero.any()), int(both.sum()) - other, other


def _log_chance_order(low: np.ndarray, high: np.ndarray, exempt: bool, other: int = 0) -> float:
    """``log P(X ≥ n − other)``, ``X ~ Binomial(n, P(H ≥ L))`` (:func:`_chance_above`), over the ``n`` rows
    where the order bites: 0 where the columns' ranges alone nearly keep it (snow hours, when not 0,
    exceed a dew point that is then below zero), or where it has too many exceptions
    (:func:`_few_enough_exceptions`)."""
    rows = _biting(low, high, exempt)
    n, p = int(rows.sum()), _chance_above(low, high, rows)
    return _log_binomial_tail(n - other, n, p) if n and p <= MAX_ORDER_CHANCE and _few_enough_exceptions(p, other, n) else 0.0


def _through(found: dict[tuple[int, int], bool], low: int, high: int, x: np.ndarray) -> bool:
    """Whether ``low ≤ high`` follows from ``low ≤ m ≤ high`` for a column ``m`` present wherever the two
    are (a missing ``m`` would leave such rows unconstrained)."""
    both = ~np.isnan(x[:, low]) & ~np.isnan(x[:, high])
    for (a, middle), first_exempt in found.items():
        if a != low or middle == high or (middle, high) not in found or first_exempt:
            continue
        if (found[(middle, high)] and not found.get((low, high), False)) or np.isnan(x[both, middle]).any():
            continue
        return True
    return False


def _implied_by_identities(numbers: _Numbers, identities: list[LinearIdentity]) -> set[tuple[str, str]]:
    """``(low, high)`` orders that an identity states already: ``c = a + b`` with ``b ≥ 0`` (and a
    remainder ≥ 0) has ``c ≥ a`` in every row it writes."""
    sign_of = {}
    for spec in numbers.specs:  # +1 if never negative, −1 if never positive
        sign_of[spec.name] = 1 if spec.min >= 0 else -1 if spec.max <= 0 else 0
    implied = set()
    # One with exceptions states the order where it holds; in its exceptions the model's own values stay.
    for rule in identities:
        vector = {rule.target_column: 1, **{name: -k for k, name in rule.terms}}
        for flip in (1, -1):  # Σ v·x = r, and −Σ v·x = −r
            v = {name: flip * k for name, k in vector.items()}
            rest_low = min(flip * r for r in rule.remainder)
            for high in (n for n, k in v.items() if k == 1):
                for low in (n for n, k in v.items() if k == -1):
                    # high − low = r − Σ_others v·x, which is ≥ 0 if r ≥ 0 and each −v·x ≥ 0
                    others = [n for n in v if n not in (high, low)]
                    if rest_low >= 0 and all(-v[n] * sign_of.get(n, 0) > 0 for n in others):
                        implied.add((low, high))
    return implied


# Tie


def _ties(numbers: _Numbers, linked_rules: list[Rule], alpha: float) -> list[Tie]:
    # Two columns of one identity or lookup are equal when the rest is 0: the rule says so already.
    linked = [set(r.columns) for r in linked_rules]
    pairs = [(i, j) for i, j in numbers.same_unit_pairs()
             if not any({numbers.names[i], numbers.names[j]} <= cols for cols in linked)]
    limit = _log_limit(alpha, len(pairs))
    x, n = numbers.values, len(numbers.values)
    counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    candidates = []
    for i, j in pairs:
        if _tied(x[numbers.sample, i], x[numbers.sample, j]).mean() < MIN_TIE_SHARE / 2:
            continue  # far from a tie in the sampled rows
        tied = _tied(x[:, i], x[:, j])
        if not MIN_TIE_SHARE <= tied.mean() < 1:
            continue
        for column in (i, j):
            if column not in counts:
                counts[column] = np.unique(x[~np.isnan(x[:, column]), column], return_counts=True)
        chance = _chance_equal(counts[i], counts[j], n)
        if tied.mean() >= MIN_TIE_LIFT * chance:
            candidates.append((i, j, tied, chance))
    # Strongest first; a tie is kept only for the rows that ties kept before it do not explain
    # (a == b and b == c make a == c in the rows where all three are equal).
    kept: list[tuple[int, int]] = []
    for i, j, tied, chance in sorted(candidates, key=lambda c: -c[2].sum()):
        alone = int((tied & ~_joined(x, kept, i, j, tied)).sum())
        if alone >= max(MIN_TIE_SHARE, MIN_TIE_LIFT * chance) * n and _log_binomial_tail(alone, n, chance) < limit:
            kept.append((i, j))
    shares = {(i, j): float(tied.mean()) for i, j, tied, _ in candidates}
    return [Tie(column=numbers.names[j], source=numbers.names[i], share=shares[(i, j)])
            for i, j in sorted(kept, key=lambda e: (e[1], e[0]))]


def _tied(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rows where the two are equal and not 0 (as :meth:`Tie.holds` counts them)."""
    return (a == b) & (a != 0)


def _joined(x: np.ndarray, kept: list[tuple[int, int]], i: int, j: int, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` link ``i`` to ``j`` through kept ties whose columns all hold ``i``'s value there."""
    where = np.flatnonzero(rows)
    value = x[where, i]
    reach = {i: np.ones(len(where), dtype=bool)}
    grown = True
    while grown:
        grown = False
        for a, b in kept:
            for u, v in ((a, b), (b, a)):
                if u in reach:
                    more = reach[u] & (x[where, v] == value) & ~reach.get(v, np.zeros(len(where), dtype=bool))
                    if more.any():
                        reach[v] = reach.get(v, np.zeros(len(where), dtype=bool)) | more
                        grown = True
    joined = np.zeros(len(x), dtype=bool)
    joined[where] = reach.get(j, False)
    return joined


def _chance_equal(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], n: int) -> float:
    """The chance that a row of independent columns holds one non-zero value in both."""
    common, a, b = np.intersect1d(first[0], second[0], return_indices=True)
    nonzero = common != 0
    return float((first[1][a][nonzero] / n * second[1][b][nonzero] / n).sum())


# Granularity


def _granularities(numbers: _Numbers, alpha: float, rare_rows: int) -> list[Granularity]:
    levels: dict[int, list[tuple[int, int, int]]] = {}
    for j, spec in enumerate(numbers.specs):
        if spec.datetime_unit is None and spec.decimals is not None:
            present = numbers.values[~np.isnan(numbers.values[:, j]), j]
            if not _on_grid(present) and np.abs(present).max() * 10.0**spec.decimals < 2.0**53:
                levels[j] = _step_levels(present, spec.decimals)
    limit = _log_limit(alpha, sum(len(v) for v in levels.values()))
    found = []
    for j, tested in levels.items():
        # Round numbers lift every finer level too (whole thousands are whole tens): the levels from the
        # finest up must all stand out, and the last that does is the coarsest step.
        coarsest = 0
        for level, hits, base in tested:
            if hits < MIN_STEP_SHARE * base or _log_binomial_tail(hits, base, STEP_CHANCE) >= limit:
                break
            coarsest = level
        if coarsest:
            decimals = numbers.specs[j].decimals
            steps = [float(f"1e{level - decimals}") for level in range(coarsest, -1, -1)]
            rule = Granularity(column=numbers.names[j], steps=steps, shares=[])
            present = numbers.values[~np.isnan(numbers.values[:, j]), j]
            step_of = rule.step_of(present)
            rule.shares = [float(s) for s in np.bincount(step_of, minlength=len(steps)) / len(present)]
            # The coarser step most rows are rounded to (prices in whole hundreds, a few in thousands), as
            # a share of all its multiples (the thousands among them).
            most = int(np.argmax(rule.shares[:-1]))
            given_back = _quantiles_reproduce(rule, present, decimals, rare_rows, most)
            if abs(given_back - sum(rule.shares[:most + 1])) > REPRODUCED_TOLERANCE:
                found.append(rule)
    return found


#: A column whose round values (at the step most rows are rounded to) its quantile transform gives back
#: within this share of rows needs no rule (the issue's tolerance for the share of a partial rule).
REPRODUCED_TOLERANCE = 0.02


def _quantiles_reproduce(rule: Granularity, present: np.ndarray, decimals: int, rare_rows: int, level: int) -> float:
    """The share of multiples of the rule's ``level``-th step that the column's quantile transform gives back
    from the table's own scores, each moved by up to one quantile's width (a generated row lies near a real
    one, not on it). A round value repeated across several quantiles comes back as it is (default's whole
    thousands of payments, about 100 rows each among 24,000: 34.8 % against the table's 35.6 %; 36.2 % of
    a fit's rows without the rule, whose step columns cost Trend there); one repeated less is smoothed
    over (house prices in whole thousands, 6 rows each among 8,000: 19 % against 79 %; 15 % of a fit's
    rows). Finer steps than the one most rows are rounded to are not compared: default's hundreds come
    back less often than the table's."""
    n_q = quantile_count(len(present), rare_rows)
    q = np.quantile(present, np.linspace(0, 1, n_q))
    p = np.clip(quantile_ranks(present, q) + np.random.default_rng(0).uniform(-1, 1, len(present)) / (n_q - 1), 0, 1)
    return float(np.mean(rule.step_of(np.round(np.interp(p, np.linspace(0, 1, n_q), q), decimals)) <= level))


def _on_grid(present: np.ndarray) -> bool:
    """As the transform decides: such a column is generated on its own values, granularity included."""
    return on_grid(len(np.unique(present)), len(present))


def _step_levels(present: np.ndarray, decimals: int) -> list[tuple[int, int, int]]:
    """``(level, multiples of 10^level, multiples of 10^(level−1))`` in units of the finest step, among
    the non-zero values (0 is a multiple of everything), for each level the values' spread can test."""
    digits = np.round(np.abs(present[present != 0]) * 10.0**decimals).astype(np.int64)
    if len(digits) == 0:
        return []
    low, high = np.quantile(digits, [0.1, 0.9])
    tested, base, level = [], len(digits), 1
    while 10**level <= digits.max() and high - low >= STEP_SPREAD * 10**level and base >= MIN_STEP_ROWS:
        hits = int((digits % 10**level == 0).sum())
        tested.append((level, hits, base))
        base, level = hits, level + 1
    return tested

"""Calibration: each decoded column is given the training table's distribution, each categorical
column its shares given the column it depends on most, and each number its distribution given the
categorical columns it depends on most.

A denoiser trained for minutes leaves every column's distribution a little off: on adult after a
113 s fit, occupation's shares were 3.7 % (total variation) from the table's, and a tree classifier
told real rows from synthetic ones largely by such one-column differences. Once the model is
trained, its own rows are sampled once, and four small maps are learned from them:

- each head (a categorical column, a gap indicator, a numerical column decoded as a choice of its
  values) gets a bias on its logits so that the decoded classes take the table's shares;
- each regressed numerical column's score goes through the sampled scores' own quantile map to
  N(0, 1), which the column's quantile transform then turns into the table's distribution;
- each categorical column with a parent in the Chow-Liu tree (the spanning tree of the categorical
  columns of most mutual information in the table) gets, per class of its parent, the biases that
  give it the table's shares given that class, where enough sampled and real rows have it;
- each regressed numerical column gets, per joint class of the one or two categorical columns it
  depends on most, the quantile map of its sampled scores onto the table's scores in that class.

The first two maps are monotone per column, so which rows get the high values or the frequent
classes stay the model's; the pair biases and the conditional maps move classes or values only
within the rows of one parent class.
On adult (113 s fits, seeds 0 and 1) the first two, learned from 16,384 rows and applied to fresh
ones, moved Shape · Trend · C2ST from 1.49 · 3.53 · 0.741 to 0.87 · 2.87 · 0.791 and from
1.38 · 3.10 · 0.703 to 0.75 · 2.49 · 0.754; on two 125 s fits (another CPU) the pair biases then
moved them from 0.68 · 3.04 · 0.757 to 0.73 · 2.14 · 0.761 (two draws each), and the
conditional maps of the numbers from there to 0.74 · 2.14 · 0.808 (one parent: 0.790; three: 0.802).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .layout import TokenLayout
from .transform import QuantileNumeric
from .vae import IGNORED

#: Rows sampled at a time, so that a time budget is checked often.
CALIBRATION_BATCH = 2048
#: Sweeps over the classes of a head in :func:`argmax_bias` and iterations of :func:`drawn_bias`;
#: both stop once the shares are matched to this total variation. On adult's native.country (42
#: classes, 16,384 rows) five sweeps took the gap from 1.9 % to 0.36 %, at 80 ms a sweep.
ARGMAX_SWEEPS = 5
DRAWN_ITERATIONS = 30
BIAS_TOLERANCE = 1e-3
#: A parent's class gets its own biases on its child's logits only where at least this many sampled
#: and this many of the table's rows have it; elsewhere the child keeps its marginal biases.
PAIR_MIN_ROWS = 200
#: A link of the tree with less mutual information than this (nats) is dropped: its child keeps its
#: marginal biases.
PAIR_MIN_INFORMATION = 1e-3
#: Rows of the table read to measure mutual information (evenly spaced, so that a sorted table is read whole).
PAIR_INFORMATION_ROWS = 20_000
#: Equal-share bins of a regressed number's table scores, for its mutual information with each
#: categorical column (which picks the column its scores are mapped given).
SCORE_BINS = 16
#: Probability levels at which a number's sampled and table scores are compared, per parent class.
SCORE_LEVELS = 257
#: At most this many categorical columns, whose joint class a number's scores are mapped given, and
#: at most this many joint classes (a class needs ``PAIR_MIN_ROWS`` rows to get its own map anyway).
SCORE_PARENTS = 2
SCORE_MAX_CLASSES = 4096
#: Joint-count cells (and row × column cells) computed at once; more are split into several calls.
MAX_JOINT_CELLS = 2**24
#: Floor of a class's share in the log-ratio, so that a class never decoded still gets a finite step.
_SHARE_FLOOR = 1e-5


@dataclass
class ConditionalScores:
    """A regressed number's quantile maps given the joint class of one or two categorical columns
    (its parents): a sampled score at level p among its parents' class's sampled scores becomes the
    table's score at level p among that class's rows."""

    parents: tuple[int, ...]
    group: np.ndarray
    """Per joint class of the parents (an array of their shape), its row of ``sampled`` and
    ``table``, or -1 where the marginal map is used."""
    sampled: np.ndarray
    table: np.ndarray

    def apply(self, raw: np.ndarray, classes: np.ndarray, out: np.ndarray) -> None:
        """Write the mapped scores of the rows (whose categorical columns came out as ``classes``)
        whose parents' class has a map into ``out``."""
        levels = np.linspace(0, 1, self.sampled.shape[1])
        groups = self.group[tuple(classes[:, p] for p in self.parents)]
        for g in range(len(self.sampled)):
            rows = groups == g
            out[rows] = np.interp(np.interp(raw[rows], self.sampled[g], levels), levels, self.table[g])


@dataclass
class Calibration:
    """The learned maps: one bias per head's class, one quantile map per regressed numerical column,
    and a table of biases per (child, parent) pair of categorical heads."""

    logit_bias: list[Tensor]
    """Per head, in the VAE's order (categorical heads, gap indicators, then discrete numerical columns)."""
    score_quantiles: list[np.ndarray]
    """Per numerical column, the sampled scores' quantiles; empty for a column decoded as a choice of
    its values (its head's bias calibrates it) or with too few sampled values."""
    pairs: list[tuple[int, int]] = field(default_factory=list)
    """(child, parent) heads, each parent before its children."""
    pair_bias: list[Tensor] = field(default_factory=list)
    """Per pair, the child's biases for each class of its parent (parent classes × child classes)."""
    conditional_scores: list[ConditionalScores | None] = field(default_factory=list)
    """Per numerical column, its maps given its parents' class, or None (the marginal map only)."""

    def shift(self, logits: list[Tensor]) -> list[Tensor]:
        out = [lg + b.to(lg.device, lg.dtype) for lg, b in zip(logits, self.logit_bias)]
        for (child, parent), table in zip(self.pairs, self.pair_bias):
            out[child] = logits[child] + table.to(logits[child].device, logits[child].dtype)[out[parent].argmax(-1)]
        return out

    def scores(self, x_num: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Mapped scores of rows whose categorical columns came out as ``classes``."""
        out = x_num.copy()
        for j, q in enumerate(self.score_quantiles):
            if len(q):
                mapped = QuantileNumeric()
                mapped.quantiles_ = q
                out[:, j] = mapped.transform(x_num[:, j])
        for j, cond in enumerate(self.conditional_scores):
            if cond is not None:
                cond.apply(x_num[:, j], classes, out[:, j])
        return out

    def state_tensors(self) -> dict[str, Tensor]:
        """The maps, for the model file."""
        tensors = {f"bias.{h}": b.cpu() for h, b in enumerate(self.logit_bias)}
        tensors |= {f"quantiles.{j}": torch.from_numpy(q) for j, q in enumerate(self.score_quantiles)}
        tensors |= {f"pair.{i}": t.cpu() for i, t in enumerate(self.pair_bias)}
        for j, cond in enumerate(self.conditional_scores):
            if cond is not None:
                tensors |= {f"given.{j}.parents": torch.tensor(cond.parents, dtype=torch.int64),
                            f"given.{j}.group": torch.from_numpy(cond.group),
                            f"given.{j}.sampled": torch.from_numpy(cond.sampled),
                            f"given.{j}.table": torch.from_numpy(cond.table)}
        return tensors | {"pairs": torch.tensor(self.pairs, dtype=torch.int64).reshape(-1, 2)}

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], layout: TokenLayout) -> "Calibration":
        n_heads, n_numerical = len(layout.cardinalities) + len(layout.discrete), layout.n_numerical
        # Files from before the pair biases have no "pairs", and from before the conditional maps no "given".
        pairs = [tuple(p) for p in tensors["pairs"].tolist()] if "pairs" in tensors else []
        conditional = [ConditionalScores(tuple(tensors[f"given.{j}.parents"].tolist()), tensors[f"given.{j}.group"].numpy(),
                                         tensors[f"given.{j}.sampled"].numpy(), tensors[f"given.{j}.table"].numpy())
                       if f"given.{j}.parents" in tensors else None for j in range(n_numerical)]
        return cls([tensors[f"bias.{h}"] for h in range(n_heads)],
                   [tensors[f"quantiles.{j}"].numpy().astype(np.float64) for j in range(n_numerical)],
                   pairs, [tensors[f"pair.{i}"] for i in range(len(pairs))], conditional)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def argmax_bias(logits: Tensor, shares: Tensor) -> Tensor:
    """Biases with which the rows' most likely classes take ``shares`` (as near as the rows allow).

    Coordinate ascent: class c wins a row where its biased logit beats the best other one, so the
    bias that gives it its share, the others held, lies between two order statistics of that gap. A
    decoder's logits are far apart (a median margin of 18 on a 20 s fit), so steps on the log-ratio
    of shares, or a softmax's fixed point, left most of the gap in place.
    """
    n, k = logits.shape
    bias = torch.zeros(k, dtype=logits.dtype)
    if k < 2:
        return bias
    wins = (shares * n).round().long().tolist()
    # A class's logits as one contiguous row: a column of the rows × classes table is read at a stride,
    # which cost superstore's four columns of 1,000 classes 25 s of a fit.
    columns = logits.t().contiguous()
    # Each row's two best classes, renewed only in the rows a step can change: a full top-2 per class
    # made a sweep cost rows × classes² (476 s to calibrate a test table's column of 5,000 classes).
    top = logits.topk(2, -1)
    values, indices = top.values, top.indices
    for _ in range(ARGMAX_SWEEPS):
        for c in range(k):
            rival = torch.where(indices[:, 0] == c, values[:, 1], values[:, 0])
            gap = rival - columns[c]
            if wins[c] == 0:
                new = gap.min() - 1
            elif wins[c] == n:
                new = gap.max() + 1
            else:  # halfway between the last row won and the first one lost
                new = _midway(gap, wins[c])
            bias[c] = new
            stale = (indices == c).any(-1) | (columns[c] + new > values[:, 1])
            if stale.any():
                top = (logits[stale] + bias).topk(2, -1)
                values[stale], indices[stale] = top.values, top.indices
        if _gap(torch.bincount((logits + bias).argmax(-1), minlength=k) / n, shares) < BIAS_TOLERANCE:
            break
    return bias


def bias_seconds(logits: list[Tensor]) -> float:
    """Seconds that :func:`argmax_bias` takes on these heads' logits (a batch of rows), read from one timed
    run on the head of most classes: the cost grows with rows × classes (on superstore's 14,336 rows,
    heads of 321 to 1,000 classes took 0.77 to 2.6 s)."""
    widest = max(logits, key=lambda lg: lg.shape[1]).detach().double().cpu()
    k = widest.shape[1]
    began = time.perf_counter()
    argmax_bias(widest, torch.full((k,), 1 / k, dtype=widest.dtype))
    return (time.perf_counter() - began) * sum(lg.shape[1] for lg in logits) / k


def _midway(gap: Tensor, k: int) -> Tensor:
    """Halfway between the ``k``-th and the ``k+1``-th smallest of ``gap`` (1 ≤ k < len): one partial
    sort from the nearer end, as most classes win few rows."""
    if 2 * k < len(gap):
        low = gap.topk(k + 1, largest=False).values
        return 0.5 * (low[-2] + low[-1])
    high = gap.topk(len(gap) - k + 1).values
    return 0.5 * (high[-2] + high[-1])


def drawn_bias(logits: Tensor, shares: Tensor) -> Tensor:
    """Biases with which classes drawn from the softmax take ``shares`` on average."""
    bias = torch.zeros(logits.shape[1], dtype=logits.dtype)
    target = shares.clamp_min(_SHARE_FLOOR).log()
    for _ in range(DRAWN_ITERATIONS):
        drawn = torch.softmax(logits + bias, -1).mean(0)
        if _gap(drawn, shares) < BIAS_TOLERANCE:
            break
        bias += target - drawn.clamp_min(_SHARE_FLOOR).log()
    return bias


def _shares(classes: Tensor, k: int) -> Tensor:
    """Each of ``k`` classes' share of ``classes`` (zeros where there are none)."""
    return torch.bincount(classes, minlength=k).double() / max(len(classes), 1)


def _gap(a: Tensor, b: Tensor) -> float:
    """Total variation between two share vectors."""
    return 0.5 * float((a - b).abs().sum())


#: In a private fit, a parent class gets its own biases on its child's logits only where its noisy rows number
#: at least this many times the child's classes times the counts' noise std.
NOISY_ROWS_PER_CLASS = 1.0
#: A pair of categorical columns gets noisy joint counts in a private fit only where its table has at most
#: this many cells: wider ones would spend the counts' budget on cells too noisy to read.
MAX_PRIVATE_PAIR_CELLS = 4096


@dataclass
class TableCounts:
    """The table as a private fit's calibration reads it (:func:`noisy_table_counts`): each head's class
    counts, and each pair of categorical columns' joint counts (``joints[i, j]``, i < j, rows the classes
    of i), every cell with Gaussian noise of std ``noise_std`` (negative cells set to 0)."""

    marginals: list[Tensor]
    joints: dict[tuple[int, int], Tensor]
    noise_std: float

    def joint(self, parent: int, child: int) -> Tensor:
        """The counts of (parent class, child class)."""
        return self.joints[parent, child] if parent < child else self.joints[child, parent].T

    def information(self, n: int) -> Tensor:
        """The mutual information of each pair of the first ``n`` columns (0 for a pair without counts)."""
        info = torch.zeros(n, n, dtype=torch.float64)
        for (i, j), joint in self.joints.items():
            info[i, j] = info[j, i] = _information(joint)
        return info


def noisy_table_counts(classes: Tensor, cardinalities: list[int], n_categorical: int, noise: float) -> TableCounts:
    """The Gaussian mechanism on the table's counts: each head's class counts (``classes`` holds each row's
    class per head, ``IGNORED`` where missing) and the joint counts of each pair of the first
    ``n_categorical`` heads of at most :data:`MAX_PRIVATE_PAIR_CELLS` cells. A row added or removed moves
    one cell of each of these tables by one, so their L2 sensitivity is √tables, and each cell gets noise
    of std ``noise · √tables`` (``noise`` is the mechanism's noise multiplier)."""
    pairs = [(i, j) for i in range(n_categorical) for j in range(i + 1, n_categorical)
             if cardinalities[i] * cardinalities[j] <= MAX_PRIVATE_PAIR_CELLS]
    std = noise * math.sqrt(len(cardinalities) + len(pairs))

    def noisy(counts: Tensor) -> Tensor:
        return (counts.double() + std * torch.randn(counts.shape, dtype=torch.float64)).clamp(min=0)

    marginals = []
    for h, k in enumerate(cardinalities):
        column = classes[:, h]
        marginals.append(noisy(torch.bincount(column[column != IGNORED].long(), minlength=k)[:k]))
    joints = {(i, j): noisy(_joint_counts(classes[:, [i, j]], cardinalities[i], cardinalities[j])) for i, j in pairs}
    return TableCounts(marginals, joints, std)


def _information(joint: Tensor) -> float:
    """The mutual information (nats) of a table of joint counts."""
    total = joint.sum()
    if total <= 0:
        return 0.0
    p = joint / total
    outer = p.sum(1, keepdim=True) * p.sum(0, keepdim=True)
    return float(torch.where(p > 0, p * (p / outer.clamp_min(1e-300)).log(), 0).sum())


def mutual_information(a: Tensor, b: Tensor, ka: int, kb: list[int]) -> Tensor:
    """Of one head's classes ``a`` (rows,) with each column of ``b`` (rows, columns; ``kb[j]`` classes
    in column j), in nats, over the rows where both are known, less its bias on independent columns
    (Miller-Madow), which would otherwise link unrelated columns of many classes.

    Every column's joint counts come from one ``bincount``: the searches below ask for all pairs of
    hundreds of columns, which one call per pair (twelve small ops each) made minutes long.
    """
    n_rows, n = b.shape
    if n > 1 and max(ka * sum(kb), n_rows * n) > MAX_JOINT_CELLS:
        half = n // 2
        return torch.cat([mutual_information(a, b[:, :half], ka, kb[:half]), mutual_information(a, b[:, half:], ka, kb[half:])])
    kb_ = torch.tensor(kb, dtype=torch.long)
    sizes = ka * kb_
    total = int(sizes.sum())
    first = sizes.cumsum(0) - sizes  # each column's first joint cell
    # In place and in 32 bits where the cells allow: these row × column passes are the whole cost.
    index = torch.int32 if total < 2**31 else torch.long
    cells = a.to(index)[:, None] * kb_.to(index)
    cells += first.to(index)
    cells += b
    cells.masked_fill_((a == IGNORED)[:, None] | (b == IGNORED), total)  # unknown: a bin left out
    joint = torch.bincount(cells.flatten(), minlength=total + 1)[:total].double()
    column = torch.repeat_interleave(torch.arange(n), sizes)
    within = torch.arange(total) - first[column]
    x, y = within // kb_[column], within % kb_[column]  # each cell's class in a and in b
    a_cell = column * ka + x
    b_cell = (kb_.cumsum(0) - kb_)[column] + y
    pa = torch.zeros(n * ka, dtype=joint.dtype).index_add_(0, a_cell, joint)
    pb = torch.zeros(int(kb_.sum()), dtype=joint.dtype).index_add_(0, b_cell, joint)
    count = torch.zeros(n, dtype=joint.dtype).index_add_(0, column, joint)
    nonzero = joint > 0
    terms = torch.where(nonzero, joint * (joint * count[column] / (pa[a_cell] * pb[b_cell])).log(), 0)
    info = torch.zeros(n, dtype=joint.dtype).index_add_(0, column, terms)
    classes_a = (pa > 0).double().reshape(n, ka).sum(1)
    classes_b = torch.zeros(n, dtype=joint.dtype).index_add_(0, torch.repeat_interleave(torch.arange(n), kb_), (pb > 0).double())
    n_known = count.clamp_min(1)
    return torch.where(count > 0, info / n_known - (classes_a - 1) * (classes_b - 1) / (2 * n_known), 0)


def chow_liu_pairs(classes: Tensor, cardinalities: list[int]) -> list[tuple[int, int]]:
    """(child, parent) edges of the spanning tree of most mutual information (Prim's), each parent
    before its children; edges below ``PAIR_MIN_INFORMATION`` are left out."""
    n = len(cardinalities)
    if n < 2:
        return []
    classes = classes[:: max(1, len(classes) // PAIR_INFORMATION_ROWS)]
    info = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n - 1):
        info[i, i + 1 :] = mutual_information(classes[:, i], classes[:, i + 1 :], cardinalities[i], cardinalities[i + 1 :])
    return _spanning_tree(info + info.T)


def _spanning_tree(info: Tensor) -> list[tuple[int, int]]:
    """:func:`chow_liu_pairs`' tree of a symmetric matrix of mutual information."""
    n = len(info)
    pairs = []
    best, link = info[0].clone(), torch.zeros(n, dtype=torch.long)
    best[0] = -torch.inf  # in the tree
    for _ in range(n - 1):
        child = int(best.argmax())
        if best[child] >= PAIR_MIN_INFORMATION:
            pairs.append((child, int(link[child])))
        best[child] = -torch.inf
        closer = (info[child] > best) & (best > -torch.inf)
        best[closer], link[closer] = info[child][closer], child
    return pairs


def score_parents(scores: Tensor, classes: Tensor, cardinalities: list[int]) -> tuple[int, ...]:
    """Up to ``SCORE_PARENTS`` categorical columns whose joint class (of at most ``SCORE_MAX_CLASSES``)
    has the most mutual information with a number's ``scores`` (``nan`` where not regressed), binned
    into equal shares; each is taken only if it adds at least ``PAIR_MIN_INFORMATION``."""
    step = max(1, len(scores) // PAIR_INFORMATION_ROWS)
    scores, classes = scores[::step].double(), classes[::step]
    known = ~scores.isnan()
    if known.sum() < 2 or not cardinalities:
        return ()
    edges = torch.quantile(scores[known], torch.linspace(0, 1, SCORE_BINS + 1, dtype=scores.dtype)[1:-1]).unique()
    bins = torch.where(known, torch.bucketize(scores.nan_to_num(), edges), IGNORED)
    cards = torch.tensor(cardinalities, dtype=torch.long)
    parents, joint, k_joint, info = (), torch.zeros_like(bins), 1, 0.0
    for _ in range(SCORE_PARENTS):
        # A column already taken, or one whose joint classes would be too many, is scored as all unknown.
        free = torch.tensor([p not in parents and k_joint * k <= SCORE_MAX_CLASSES for p, k in enumerate(cardinalities)],
                            dtype=torch.bool)
        k_with = torch.where(free, k_joint * cards, 1)
        with_joint = joint[:, None] * cards + classes
        with_joint.masked_fill_((classes == IGNORED) | (joint == IGNORED)[:, None] | ~free, IGNORED)
        gains = mutual_information(bins, with_joint, len(edges) + 1, k_with.tolist()) - info
        gains[~free] = -torch.inf
        p = int(gains.argmax())
        if gains[p] < PAIR_MIN_INFORMATION:
            break
        parents, joint, k_joint, info = parents + (p,), with_joint[:, p], k_joint * cardinalities[p], info + float(gains[p])
    return parents


def fit_conditional_scores(sampled: np.ndarray, sampled_classes: np.ndarray, table: np.ndarray,
                           table_classes: np.ndarray, parents: tuple[int, ...],
                           shape: tuple[int, ...]) -> ConditionalScores | None:
    """Maps of a number's sampled scores (``nan`` where not observed) onto its ``table`` scores,
    given each joint class of its ``parents`` (columns of ``*_classes``, of ``shape`` classes) that
    at least ``PAIR_MIN_ROWS`` sampled and table rows have. The rarer classes share one map, fitted
    on their rows together (the number's marginal then stays the table's), or keep the marginal map
    if they are too few even together."""
    sampled_joint = np.ravel_multi_index(tuple(sampled_classes[:, parents].T), shape)
    table_joint = np.ravel_multi_index(tuple(table_classes[:, parents].T), shape)
    sampled_known, table_known = ~np.isnan(sampled), ~np.isnan(table)
    k = int(np.prod(shape))
    sampled_count = np.bincount(sampled_joint[sampled_known], minlength=k)
    table_count = np.bincount(table_joint[table_known], minlength=k)
    own = (sampled_count >= PAIR_MIN_ROWS) & (table_count >= PAIR_MIN_ROWS)
    if not own.any():
        return None
    group = np.where(own, np.cumsum(own) - 1, -1)
    rare = ~own
    if sampled_count[rare].sum() >= PAIR_MIN_ROWS and table_count[rare].sum() >= PAIR_MIN_ROWS:
        group[rare] = own.sum()
    levels = np.linspace(0, 1, SCORE_LEVELS)
    maps = [[np.quantile(values[known & (group[joint] == g)], levels) for g in range(group.max() + 1)]
            for values, known, joint in ((sampled, sampled_known, sampled_joint), (table, table_known, table_joint))]
    return ConditionalScores(parents, group.reshape(shape), np.array(maps[0]), np.array(maps[1]))


def _joint_counts(real: Tensor, k_parent: int, k_child: int) -> Tensor:
    """The table's counts of (parent class, child class) from its rows (``real``: parent, child)."""
    known = (real[:, 0] != IGNORED) & (real[:, 1] != IGNORED)
    cells = real[known, 0].long() * k_child + real[known, 1].long()
    return torch.bincount(cells, minlength=k_parent * k_child).reshape(k_parent, k_child).double()


def _pair_table(lg: Tensor, joint: Tensor, bias: Tensor, parent: Tensor, shares: Tensor, min_rows: float = PAIR_MIN_ROWS,
                deadline: float | None = None) -> Tensor:
    """A child head's biases per class of its parent: the table's shares given the class, where at
    least ``PAIR_MIN_ROWS`` sampled rows (whose parent came out as ``parent``) and ``min_rows`` table rows
    (``joint``: counts of parent class × child class) have it. ``bias`` and ``shares`` are the child's
    marginal biases and table shares."""
    k_parent = len(joint)
    table = bias.double().repeat(k_parent, 1)
    own = torch.zeros(k_parent, dtype=torch.bool)
    for k in range(k_parent):
        rows = parent == k
        real_k = joint[k]
        if rows.sum() >= PAIR_MIN_ROWS and real_k.sum() >= min_rows and not _past(deadline):
            table[k] = argmax_bias(lg[rows], real_k / real_k.sum())
            own[k] = True
    fitted = own[parent]
    if fitted.any() and not fitted.all():
        # The parent's rare classes share one set of biases, chosen so that the child's marginal
        # over all rows stays the table's.
        won = torch.bincount((lg[fitted] + table[parent[fitted]]).argmax(-1), minlength=lg.shape[1])
        left = (shares * len(lg) - won).clamp_min(0)
        table[~own] = argmax_bias(lg[~fitted], left / left.sum().clamp_min(1))
    return table


def _table_shares(head: int, k: int, real_classes: Tensor | None, counts: TableCounts | None) -> Tensor:
    """A head's class shares in the table: from its rows, or from a private fit's noisy counts."""
    if counts is not None:
        return counts.marginals[head] / counts.marginals[head].sum().clamp_min(1e-300)
    real = real_classes[:, head].cpu()
    return _shares(real[real != IGNORED], k)


def _tree_links(cardinalities: list[int], real_categorical: Tensor | None, counts: TableCounts | None) -> list[tuple[int, int]]:
    """The Chow-Liu tree of the categorical columns: from the rows, or from a private fit's noisy counts."""
    if counts is not None:
        return _spanning_tree(counts.information(len(cardinalities)))
    return chow_liu_pairs(real_categorical, cardinalities)


def _pair_counts(parent: int, child: int, cardinalities: list[int], real_categorical: Tensor | None,
                 counts: TableCounts | None) -> tuple[Tensor, float]:
    """The table's joint counts of a tree link, and the rows a parent class needs for biases of its own:
    from the rows, or from a private fit's noisy counts (then also the child's classes times their noise)."""
    if counts is None:
        return _joint_counts(real_categorical[:, [parent, child]], cardinalities[parent], cardinalities[child]), PAIR_MIN_ROWS
    return counts.joint(parent, child), max(PAIR_MIN_ROWS, NOISY_ROWS_PER_CLASS * cardinalities[child] * counts.noise_std)


def fit_calibration(x_num: Tensor, logits: list[Tensor], real_classes: Tensor | None, layout: TokenLayout,
                    real_scores: Tensor | None = None, deadline: float | None = None,
                    counts: TableCounts | None = None) -> Calibration:
    """Learn the maps from the model's own rows.

    ``x_num`` and ``logits`` are the VAE's raw reconstruction of the sampled latents, heads in the
    ``layout``'s order: the argmax heads (categories, then gap indicators), then the drawn ones (the
    discrete numerical columns). ``real_classes`` holds the table's class for every head (:meth:`VAE.targets`,
    ``IGNORED`` where a cell is missing). The categorical heads' pairs are fitted in the tree's
    order, each on its parent's classes as finally decoded. ``real_scores`` holds the table's score
    of every regressed number (``nan`` elsewhere); with it, each such number also gets maps given the
    one or two categorical columns it depends on most (:func:`fit_conditional_scores`). Past
    ``deadline`` (a time budget's end) the pair tables' parent classes and the conditional maps not
    yet fitted are left out (columns of thousands of classes take seconds each); each column's own
    biases are always fitted: without them an undertrained decoder writes one or two classes.
    ``counts`` (a private fit's, :func:`noisy_table_counts`) replace ``real_classes``, then not read: the
    biases, the tree and its pair biases come from them; the conditional maps, which would read the table's
    scores, are left out (each number's own map reads only the sampled scores).
    """
    n_argmax, discrete, gappy = len(layout.cardinalities), layout.discrete, layout.gappy
    biases, table_shares, decoded = [], [], []
    for h, lg in enumerate(logits):
        lg = lg.detach().double().cpu()
        head_shares = _table_shares(h, lg.shape[1], real_classes, counts)
        if not head_shares.sum() > 0:  # no cell of the table to match
            bias = torch.zeros(lg.shape[1], dtype=lg.dtype)
        else:
            bias = argmax_bias(lg, head_shares) if h < n_argmax else drawn_bias(lg, head_shares)
        biases.append(bias.float())
        table_shares.append(head_shares)
        decoded.append((lg + bias).argmax(-1))
    n_categorical = n_argmax - len(gappy)
    cardinalities = [lg.shape[1] for lg in logits[:n_categorical]]
    real_categorical = None if counts is not None else real_classes[:, :n_categorical].cpu()
    pairs = [] if _past(deadline) else _tree_links(cardinalities, real_categorical, counts)
    pair_bias = []
    for child, parent in pairs:
        lg = logits[child].detach().double().cpu()
        joint, min_rows = _pair_counts(parent, child, cardinalities, real_categorical, counts)
        table = _pair_table(lg, joint, biases[child], decoded[parent], table_shares[child], min_rows, deadline)
        pair_bias.append(table.float())
        decoded[child] = (lg + table[decoded[parent]]).argmax(-1)
    scores = x_num.detach().double().cpu().numpy()
    observed = np.ones(scores.shape, dtype=bool)
    for i, j in enumerate(gappy):
        observed[:, j] = (decoded[n_categorical + i] == 0).numpy()
    decoded_classes = torch.stack(decoded[:n_categorical], 1).numpy() if n_categorical else None
    if real_scores is not None:
        real_scores = real_scores.double().cpu()
    quantiles, conditional = [], []
    for j in range(scores.shape[1]):
        values = scores[observed[:, j], j]
        usable = j not in discrete and len(np.unique(values)) > 1
        quantiles.append(QuantileNumeric().fit(values).quantiles_ if usable else np.zeros(0))
        parents = () if real_scores is None or not usable or _past(deadline) else (
            score_parents(real_scores[:, j], real_categorical, cardinalities))
        conditional.append(fit_conditional_scores(
            np.where(observed[:, j], scores[:, j], np.nan), decoded_classes, real_scores[:, j].numpy(),
            real_categorical.numpy(), parents, tuple(cardinalities[p] for p in parents)) if parents else None)
    return Calibration(biases, quantiles, pairs, pair_bias, conditional)

"""Identifier columns: detection, and fresh values in the same format.

A column that names its rows (a customer number, an order code, a UUID) has no pattern a model can
learn: modelled as a category it could only reproduce the identifiers it saw, copying real keys into
the synthetic table at the cost of one output class per row. tabgen leaves such a column out of the
model and writes fresh unique values of the same format in its place: integers continue after the
largest one seen, ``C00123``-style codes continue their numbering, and other text (UUIDs, hashes)
gets new tokens with the same kind of character in each position.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

#: Only columns with more observed values than this are judged: in a small table many columns are unique.
MIN_ROWS = 50
#: Share of distinct values among the observed ones from which a text or integer column is an identifier.
MIN_UNIQUE_SHARE = 0.95
#: An integer column is an identifier only if its values fill at least this share of the range they
#: span. Keys are numbered (1, 2, 3...), whereas nearly unique integer measurements (incomes in
#: cents, timestamps) are spread thinly over a wide range and must stay numerical.
MIN_INTEGER_DENSITY = 0.2
#: A template must hold this many times more tokens than were seen, or text falls back to numbering
#: (free text, whose template would be mostly the literal characters of a few values).
MIN_TEMPLATE_ROOM = 100

# Character classes a template position widens to, narrowest first.
_CLASSES = [
    string.digits,
    string.ascii_lowercase,
    string.ascii_uppercase,
    "0123456789abcdef",
    "0123456789ABCDEF",
    string.digits + string.ascii_lowercase,
    string.digits + string.ascii_uppercase,
    string.ascii_letters,
    string.digits + string.ascii_letters,
]
# Fibonacci hashing: token k is (k + 1) * stride modulo the number of tokens, with the stride near
# that number over the golden ratio and coprime with it. That is a permutation, so tokens are unique,
# and it scatters consecutive k over the whole space, so rows do not get 000...1, 000...2.
_GOLDEN = (6_180_339_887_498_948, 10**16)


@dataclass
class IdFormat:
    """How to write fresh identifiers that look like the column's own."""

    style: Literal["integer", "numbered", "template"]
    start: int = 0
    """First number issued (``integer`` and ``numbered``): one past the largest seen, so none repeats a real key."""
    prefix: str = ""
    """Text before the number (``numbered``)."""
    width: int = 0
    """Zero-padded width of the number (``numbered``); 0 when the seen widths vary."""
    alphabets: list[str] | None = None
    """Per character position, the characters it may hold (``template``); one character is a literal."""

    def generate(self, n: int, offset: int = 0) -> np.ndarray:
        """Identifiers number ``offset`` to ``offset + n - 1``: int64 or text, unique for one offset range."""
        if self.style == "integer":
            return np.arange(self.start + offset, self.start + offset + n, dtype=np.int64)
        if self.style == "numbered":  # Python ints: codes may have more digits than an int64 holds
            numbers = range(self.start + offset, self.start + offset + n)
            return np.array([f"{self.prefix}{k:0{self.width}d}" for k in numbers], dtype=object)
        capacity = self.capacity
        stride = capacity * _GOLDEN[0] // _GOLDEN[1]
        while math.gcd(stride, capacity) != 1:
            stride += 1
        return np.array([self._token((k + 1) * stride % capacity) for k in range(offset, offset + n)], dtype=object)

    @property
    def capacity(self) -> int:
        return math.prod(len(a) for a in self.alphabets or [""])

    def _token(self, index: int) -> str:
        """The index-th token in mixed radix, one alphabet per position."""
        chars = []
        for alphabet in reversed(self.alphabets or []):
            index, r = divmod(index, len(alphabet))
            chars.append(alphabet[r])
        return "".join(reversed(chars))

    def example(self) -> str:
        return str(self.generate(1)[0])


def looks_like_identifier(series: pd.Series, observed: pd.Series) -> bool:
    """Integer or text, nearly every value distinct, and (for integers) numbered densely."""
    integer = ptypes.is_integer_dtype(series) and not ptypes.is_bool_dtype(series)
    # A category dtype is the user's own statement that the column is categorical.
    categorical = isinstance(series.dtype, pd.CategoricalDtype)
    text = (ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)) and not categorical
    if len(observed) <= MIN_ROWS or not (integer or text):
        return False
    n_unique = observed.nunique()
    if n_unique < MIN_UNIQUE_SHARE * len(observed):
        return False
    if integer:
        span = int(observed.max()) - int(observed.min()) + 1
        return n_unique >= MIN_INTEGER_DENSITY * span
    return True


def learn_format(name: str, observed: pd.Series) -> IdFormat:
    """The format of a column's identifiers, from its observed values."""
    if ptypes.is_integer_dtype(observed):
        return IdFormat("integer", start=int(observed.max()) + 1)
    text = observed.astype(str)
    parts = text.str.extract(r"^(.*?)(\d+)$")
    if parts[1].notna().all() and parts[0].nunique() == 1:
        widths = parts[1].str.len()
        return IdFormat(
            "numbered",
            start=max(map(int, parts[1])) + 1,
            prefix=str(parts[0].iloc[0]),
            width=int(widths.iloc[0]) if widths.nunique() == 1 else 0,
        )
    lengths = text.str.len()
    modal = text[lengths == lengths.mode().iloc[0]]
    positions = zip(*modal)  # the characters seen at each position of the most common length
    template = IdFormat("template", alphabets=[_alphabet(set(chars)) for chars in positions])
    if template.capacity >= MIN_TEMPLATE_ROOM * len(observed):
        return template
    return IdFormat("numbered", start=1, prefix=f"{name}_")


def _alphabet(seen: set[str]) -> str:
    if len(seen) == 1:
        return seen.pop()
    for alphabet in _CLASSES:
        if seen <= set(alphabet):
            return alphabet
    return "".join(sorted(seen))

"""The order of a row's tokens and of the decoder's heads: built once by the transform, saved in the
model file, and read by every later stage (VAE, calibration, conditional sampling).

Tokens: one per numerical column, then one per categorical column, then one per gap indicator (a
numerical column with missing cells). Heads: one classifier per categorical column, then one per gap
indicator (these are decoded by argmax), then one per discrete numerical column (a number with few
values, decoded by drawing one of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenLayout:
    n_numerical: int
    categories: tuple[int, ...] = ()
    """Classes of each categorical column's head (its missing value counts as one)."""
    gappy: tuple[int, ...] = ()
    """The numerical column of each gap indicator, in order."""
    value_levels: tuple[tuple[float, ...], ...] = ()
    """Per numerical column, the normal scores of its values when it has few (empty: regressed)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(int(k) for k in self.categories))
        object.__setattr__(self, "gappy", tuple(int(j) for j in self.gappy))
        levels = tuple(tuple(float(v) for v in lv) for lv in self.value_levels) or ((),) * self.n_numerical
        if len(levels) != self.n_numerical:
            raise ValueError(f"value_levels has {len(levels)} columns, the layout {self.n_numerical} numerical ones")
        object.__setattr__(self, "value_levels", levels)

    @property
    def n_categorical(self) -> int:
        return len(self.categories)

    @property
    def cardinalities(self) -> list[int]:
        """Classes of each argmax head, in ``x_cat`` order: categorical columns, then gap indicators."""
        return list(self.categories) + [2] * len(self.gappy)

    @property
    def n_tokens(self) -> int:
        return self.n_numerical + len(self.cardinalities)

    @property
    def discrete(self) -> list[int]:
        """Numerical columns decoded as a choice of their values."""
        return [j for j, levels in enumerate(self.value_levels) if levels]

    def indicator(self, column: int) -> int | None:
        """The gap indicator of numerical ``column`` (its position among the indicators), if it has one."""
        return self.gappy.index(column) if column in self.gappy else None

    def categorical_token(self, k: int) -> int:
        return self.n_numerical + k

    def indicator_token(self, g: int) -> int:
        return self.n_numerical + self.n_categorical + g

    def to_dict(self) -> dict[str, Any]:
        return {"n_numerical": self.n_numerical, "categories": list(self.categories), "gappy": list(self.gappy),
                "value_levels": [list(v) for v in self.value_levels]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TokenLayout":
        return cls(data["n_numerical"], tuple(data["categories"]), tuple(data["gappy"]),
                   tuple(tuple(v) for v in data.get("value_levels") or ()))

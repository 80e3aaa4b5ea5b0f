"""A quick side-by-side of real and synthetic columns, for a person to read at a glance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import ColumnSpec, Schema, as_numbers, from_numbers


def compare_text(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> str:
    """Per column: mean ± std (numerical) or the most common value's share (categorical), and missing %."""
    rows = []
    for spec in schema.columns:
        r, s = real[spec.name], synthetic[spec.name]
        if spec.kind == "numerical":
            real_text, syn_text = _spread(r, spec), _spread(s, spec)
        else:
            top = r.astype(str).value_counts(normalize=True, dropna=False)
            value = top.index[0]
            real_text = f"{value}: {100 * top.iloc[0]:.1f}%"
            syn_text = f"{value}: {100 * (s.astype(str) == value).mean():.1f}%"
        rows.append((spec.name, spec.kind[:3], real_text, syn_text,
                     f"{100 * r.isna().mean():.1f} / {100 * s.isna().mean():.1f}"))
    header = ("column", "kind", "real", "synthetic", "missing % real / syn")
    widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line("-" * w for w in widths)] + [line(r) for r in rows])


def _spread(values: pd.Series, spec: ColumnSpec) -> str:
    numbers = pd.Series(as_numbers(values, spec))
    if numbers.isna().all():
        return "all missing"
    if spec.datetime_unit is None:
        return f"{numbers.mean():.4g} ± {numbers.std():.3g}"
    mean = from_numbers(np.array([round(numbers.mean())]), spec).iloc[0]
    unit = "days" if spec.datetime_unit == "D" else spec.datetime_unit
    return f"{mean} ± {numbers.std():.3g} {unit}"

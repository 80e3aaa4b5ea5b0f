"""The report's figures, each returned as PNG bytes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..schema import ColumnSpec  # noqa: E402

REAL_COLOUR = "#4C72B0"
SYNTHETIC_COLOUR = "#DD8452"
#: Categories drawn per categorical column; the rest are pooled into one "other" bar.
MAX_CATEGORIES_SHOWN = 20
#: Histograms span the real values between these quantiles, so one outlier cannot squash the plot.
HISTOGRAM_QUANTILES = (0.005, 0.995)
HISTOGRAM_BINS = 40
MISSING_LABEL = "(missing)"


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _title(axes: plt.Axes, spec: ColumnSpec, shape_score: float | None) -> None:
    score = "" if shape_score is None or not np.isfinite(shape_score) else f"  —  shape score {shape_score:.3f}"
    axes.set_title(f"{spec.name}{score}", fontsize=10, loc="left")


def _bins(values: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    """Bins over the bulk of the real values; one bin per integer when the range is narrow, so
    integer columns (ages, hours) do not alias into a comb."""
    low, high = np.quantile(values, HISTOGRAM_QUANTILES)
    if spec.is_integer and high - low <= 2 * HISTOGRAM_BINS:
        return np.arange(np.floor(low), np.ceil(high) + 2) - 0.5
    if low == high:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, HISTOGRAM_BINS + 1)


def numerical_figure(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec, shape_score: float | None) -> bytes:
    """Real as filled density histogram, synthetic as an outline over it; what falls outside is counted."""
    figure, axes = plt.subplots(figsize=(4.2, 2.8))
    real_values, synthetic_values = real.dropna().to_numpy(), synthetic.dropna().to_numpy()
    bins = _bins(real_values, spec)
    low, high = bins[0], bins[-1]
    real_density, _, _ = axes.hist(real_values, bins=bins, density=True, color=REAL_COLOUR, alpha=0.55,
                                   label="real")
    if len(synthetic_values):
        axes.hist(synthetic_values, bins=bins, density=True, histtype="step", color=SYNTHETIC_COLOUR,
                  linewidth=1.6, label="synthetic")
    # A spike (a zero-inflated amount) would flatten everything else: switch to a log scale.
    spiky = real_density.max() * np.diff(bins).max() > 0.5 and len(bins) > 3
    if spiky:
        axes.set_yscale("log")
    axes.set_yticks([])
    axes.minorticks_off()
    axes.tick_params(labelsize=8)
    _title(axes, spec, shape_score)
    outside = [
        f"{name} {100 * np.mean((values < low) | (values > high)):.1f}%" for name, values in
        (("real", real_values), ("synthetic", synthetic_values)) if len(values)
    ]
    missing = f"missing: real {100 * real.isna().mean():.1f}%, synthetic {100 * synthetic.isna().mean():.1f}%"
    scale = "  ·  log scale" if spiky else ""
    axes.text(0, -0.22, f"outside the shown range: {', '.join(outside)}{scale}\n{missing}",
              transform=axes.transAxes, fontsize=7, va="top", color="#555555")
    axes.legend(fontsize=7, frameon=False)
    return _png(figure)


def _frequencies(values: pd.Series) -> pd.Series:
    return values.fillna(MISSING_LABEL).value_counts(normalize=True)


def categorical_figure(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec, shape_score: float | None) -> bytes:
    """Side-by-side frequency bars of the most common categories (by real frequency), the rest pooled."""
    real_share, synthetic_share = _frequencies(real), _frequencies(synthetic)
    shares = pd.DataFrame({"real": real_share, "synthetic": synthetic_share}).fillna(0.0)
    shares = shares.sort_values(["real", "synthetic"], ascending=False)
    if len(shares) > MAX_CATEGORIES_SHOWN:
        shown, rest = shares.iloc[: MAX_CATEGORIES_SHOWN - 1], shares.iloc[MAX_CATEGORIES_SHOWN - 1:]
        other = rest.sum().rename(f"other ({len(rest)} levels)")
        shares = pd.concat([shown, other.to_frame().T])
    labels = [_shorten(str(label)) for label in shares.index]
    height = 0.9 + 0.2 * len(shares)
    figure, axes = plt.subplots(figsize=(4.2, max(2.2, height)))
    positions = np.arange(len(shares))
    axes.barh(positions - 0.2, shares["real"], height=0.4, color=REAL_COLOUR, label="real")
    axes.barh(positions + 0.2, shares["synthetic"], height=0.4, color=SYNTHETIC_COLOUR, label="synthetic")
    axes.set_yticks(positions, labels, fontsize=7)
    # Top to bottom, and at least six slots so that two categories do not become two slabs.
    axes.set_ylim(max(len(shares), 6) - 0.5, -0.5)
    axes.tick_params(axis="x", labelsize=7)
    axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    _title(axes, spec, shape_score)
    axes.legend(fontsize=7, frameon=False, loc="lower right")
    return _png(figure)


def _shorten(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def pair_error_heatmap(pair_trends: list[dict], names: list[str]) -> bytes | None:
    """1 − sdmetrics' pair score for each column pair (lower triangle): where the synthetic
    relationships go wrong."""
    if not pair_trends:
        return None
    position = {name: i for i, name in enumerate(names)}
    error = np.full((len(names), len(names)), np.nan)
    for pair in pair_trends:
        i, j = sorted((position[pair["column_1"]], position[pair["column_2"]]), reverse=True)
        error[i, j] = 1 - pair["score"]
    # The first row and last column of a lower triangle are empty: drop them.
    error = error[1:, :-1]
    rows, columns = names[1:], names[:-1]
    size = min(13.0, 3.0 + 0.45 * len(names))
    figure, axes = plt.subplots(figsize=(size, size * 0.8))
    finite = error[np.isfinite(error)]
    top = max(0.1, float(finite.max())) if finite.size else 0.1
    image = axes.imshow(np.ma.masked_invalid(error), cmap="Reds", vmin=0, vmax=top)
    font = 8 if len(names) <= 25 else 6
    axes.set_xticks(range(len(columns)), [_shorten(n, 20) for n in columns], rotation=60, ha="right", fontsize=font)
    axes.set_yticks(range(len(rows)), [_shorten(n, 20) for n in rows], fontsize=font)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if len(names) <= 16:
        for i in range(len(rows)):
            for j in range(len(columns)):
                if np.isfinite(error[i, j]):
                    axes.text(j, i, f"{error[i, j]:.2f}", ha="center", va="center", fontsize=7,
                              color="white" if error[i, j] > 0.6 * top else "#333333")
    colour_bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    colour_bar.set_label("pair trend error (1 − pair score)", fontsize=8)
    colour_bar.ax.tick_params(labelsize=7)
    return _png(figure)

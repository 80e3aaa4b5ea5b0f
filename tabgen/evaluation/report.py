"""One self-contained HTML file: the scores, every column's real-vs-synthetic distribution and the
pairwise relationship errors. Images are embedded as base64 PNG so the file can be mailed or attached.
"""

from __future__ import annotations

import base64
import html
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from ..io import atomic_write
from ..rules.kinds import floored_percent
from ..schema import Schema
from .plots import categorical_figure, numerical_figure, pair_error_heatmap
from .prepare import normalise, resolve_schema, rng_for, subsample
from .result import EvaluationResult

#: Rows of each table drawn for the figures; histograms and bars need no more to look right.
PLOT_ROWS = 50_000

READING_GUIDE = (
    "Real data is not perfect either: a fresh sample from the same population scores a Shape and Trend "
    "error of a percent or two and a C2ST a little below 1 (the real-data floor, shown beside the scores "
    "when there is a holdout), so read every figure against that floor, and against the holdout too "
    "(\"vs holdout\": rows that hug the training table score worse there). Trend error and the "
    "xgboost C2ST are the headline scores: Shape error alone is fooled by a table whose columns are each "
    "right but independent of one another."
)

METRIC_MEANINGS = {
    "Shape error": "per-column distribution distance (KS / total variation), averaged",
    "Trend error": "per-pair difference of correlation or contingency table, averaged over associated pairs",
    "C2ST logistic": "1 − 2·max(AUC − 0.5, 0) of a logistic regression telling real from synthetic",
    "C2ST xgboost": "the same with gradient-boosted trees, which also see interactions",
    "alpha-precision": "synthetic rows falling in the real data's α-supports (fidelity)",
    "beta-recall": "real rows covered by the synthetic data's β-supports (diversity)",
    "DCR share": "synthetic rows closer to a training row than to a holdout row; above 50 % means memorising",
    "Exact copies": "synthetic rows identical to a training row",
    "DCR overfitting prot.": "sdmetrics' DCROverfittingProtection, min(2·(1 − DCR share), 1)",
}

ML_EFFICIENCY_MEANING = "xgboost trained on real / on synthetic rows, tested on the holdout"

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1180px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
table.scores { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
table.scores th, table.scores td { padding: 0.35em 0.9em; border-bottom: 1px solid #e5e5e5; text-align: left; }
table.scores th { white-space: nowrap; }
table.scores td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.scores tr.headline td { font-weight: 600; }
table.scores td.meaning { color: #555; }
.guide { background: #f5f7fa; border-left: 4px solid #4C72B0; padding: 0.7em 1em; max-width: 60em; }
.notes li { color: #8a5a00; }
.grid { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1.2em 1em; align-items: start; }
.grid img { width: 100%; }
img.wide { max-width: 100%; }
"""

HEADLINE = {"Trend error", "C2ST xgboost"}


def write_report(
    result: EvaluationResult,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    path: str | os.PathLike,
    schema: Schema | None = None,
) -> Path:
    """Write the HTML report for ``result`` (from :func:`evaluate` on the same tables) to ``path``."""
    schema = resolve_schema(real, schema)
    rows = rng_for(result.seed, "report.rows")
    real = subsample(normalise(real, schema, "real"), PLOT_ROWS, rows)
    synthetic = subsample(normalise(synthetic, schema, "synthetic"), PLOT_ROWS, rows)
    body = [
        "<h1>Synthetic data evaluation</h1>",
        f'<p class="meta">{_table_sizes(result)} · seed {result.seed} · {_versions()}</p>',
        "<h2>Scores</h2>",
        _scores_table(result),
        f'<p class="guide">{html.escape(READING_GUIDE)}</p>',
        _rules_table(result),
        _notes(result.notes),
        "<h2>Column distributions</h2>",
        "<p>Real (blue) and synthetic (orange) values of each column. Numerical columns show the real "
        "values' central 99 %; categorical columns the most frequent categories.</p>",
        _column_grid(real, synthetic, schema, result.column_shapes),
        "<h2>Pairwise relationships</h2>",
        _heatmap(result, schema),
    ]
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>tabgen evaluation report</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    # Bytes, so the file is UTF-8 whatever the locale; atomic, so a crash never leaves half a page.
    with atomic_write(path, "wb") as handle:
        handle.write(page.encode("utf-8"))
    return Path(path)


def _image(png: bytes, alt: str, css_class: str = "") -> str:
    encoded = base64.b64encode(png).decode("ascii")
    attribute = f' class="{css_class}"' if css_class else ""
    return f'<img{attribute} alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _table_sizes(result: EvaluationResult) -> str:
    return " · ".join(f"{name} {count:,} rows" for name, count in result.rows.items())


def _versions() -> str:
    parts = []
    for package in ("tabgen", "sdmetrics"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


def _scores_table(result: EvaluationResult) -> str:
    titles = ["metric", "value", "ideal"] + [title for title, _ in result.beside()] + ["what it measures"]
    lines = ["<tr>" + "".join(f"<th>{title}</th>" for title in titles) + "</tr>"]
    for label, value, unit, ideal, floor_key, remark in result.summary_rows():
        meaning = METRIC_MEANINGS.get(label, ML_EFFICIENCY_MEANING if label.startswith("ML eff") else "")
        if remark:
            meaning = f"{meaning} ({remark})" if meaning else remark
        numbers = [_format(value, unit), ideal]
        numbers += [_format(scores[floor_key], unit) if floor_key in scores else "" for _, scores in result.beside()]
        cells = [f"<td>{html.escape(label)}</td>"]
        cells += [f'<td class="num">{number}</td>' for number in numbers]
        cells.append(f'<td class="meaning">{html.escape(meaning)}</td>')
        row_class = ' class="headline"' if label in HEADLINE else ""
        lines.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return '<table class="scores">' + "".join(lines) + "</table>"


def _rules_table(result: EvaluationResult) -> str:
    if not result.rules:
        return ""
    tables = [t for t in ("real", "holdout", "synthetic") if any(r[t] is not None for r in result.rules)]
    lines = ["<tr><th>rule of the real table</th>" + "".join(f"<th>{t}</th>" for t in tables) + "</tr>"]
    for r in result.rules:
        cells = "".join(f'<td class="num">{"" if r[t] is None else f"{floored_percent(r[t]):.1f} %"}</td>' for t in tables)
        partial = " (a share to match)" if r["partial"] else ""
        lines.append(f"<tr><td>{html.escape(r['kind'] + ': ' + r['rule'] + partial)}</td>{cells}</tr>")
    return ('<h2>Rules</h2><p>Rules found in the real table, and the share of each table\'s rows that keep them.</p>'
            '<table class="scores">' + "".join(lines) + "</table>")


def _format(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.2f} %" if unit == "%" else f"{value:.4f}"


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return f'<h2>Notes</h2><ul class="notes">{items}</ul>'


def _column_grid(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, shapes: dict[str, float]) -> str:
    figures = []
    for spec in schema.columns:
        draw = numerical_figure if spec.kind == "numerical" else categorical_figure
        png = draw(real[spec.name], synthetic[spec.name], spec, shapes.get(spec.name))
        figures.append(f"<div>{_image(png, f'{spec.name}: real vs synthetic')}</div>")
    return '<div class="grid">' + "".join(figures) + "</div>"


def _heatmap(result: EvaluationResult, schema: Schema) -> str:
    png = pair_error_heatmap(result.pair_trends, schema.names)
    if png is None:
        return "<p>No pair scores: the table has a single column, or Trend was not computed.</p>"
    explanation = (
        "<p>Each cell is one column pair's contribution to the Trend error: 1 − sdmetrics' pair score "
        "(correlation similarity for two numerical columns, contingency similarity otherwise). 0 means "
        "the synthetic pair relates exactly as the real one; dark cells show relationships the generator "
        "missed.</p>"
    )
    return explanation + _image(png, "pair trend error heat map", "wide")

"""What :func:`tabgen.evaluation.evaluate` returns: the scores, how they were obtained, and why any is missing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..rules.kinds import floored_percent
from .detection import Detection
from .ml_efficiency import MLEfficiency


@dataclass
class EvaluationResult:
    """Scores of a synthetic table against the real one. A ``None`` score could not be computed;
    ``notes`` says why.

    Errors are percentages (0 is ideal); C2ST, α-precision, β-recall and DCR overfitting protection are
    in [0, 1] (1 is ideal); ``dcr_share`` is a fraction and ``membership_auc`` an AUC, both ideal at 0.5.
    """

    shape_error: float | None = None
    trend_error: float | None = None
    c2st_logistic: Detection | None = None
    c2st_xgboost: Detection | None = None
    alpha_precision: float | None = None
    beta_recall: float | None = None
    ml_efficiency: MLEfficiency | None = None
    dcr_share: float | None = None
    exact_copy_rate: float | None = None
    holdout_copy_rate: float | None = None
    dcr_overfitting_protection: float | None = None
    #: AUC of a membership attack telling training rows from held-out ones by the synthetic rows (0.5 ideal).
    membership_auc: float | None = None
    #: The same fidelity and detection scores for the holdout in place of the synthetic table:
    #: what real data itself achieves (computed when asked for with ``floor=True``).
    floor: dict[str, float | None] | None = None
    #: Shape, Trend and C2ST of the synthetic table against the holdout (when there is one).
    against_holdout: dict[str, float | None] | None = None
    #: The real table's rules and the share of each table's rows keeping them (:mod:`.rules_kept`).
    rules: list[dict] = field(default_factory=list)
    column_shapes: dict[str, float] = field(default_factory=dict)
    pair_trends: list[dict] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    max_rows: int | None = None
    notes: list[str] = field(default_factory=list)

    def headline(self) -> dict[str, float | None]:
        """The single figure per metric, as in TabSyn's tables."""
        return {
            "shape_error": self.shape_error,
            "trend_error": self.trend_error,
            "c2st_logistic": self.c2st_logistic.score if self.c2st_logistic else None,
            "c2st_xgboost": self.c2st_xgboost.score if self.c2st_xgboost else None,
            "alpha_precision": self.alpha_precision,
            "beta_recall": self.beta_recall,
            "ml_efficiency_gap": self.ml_efficiency.gap if self.ml_efficiency else None,
            "dcr_share": self.dcr_share,
            "exact_copy_rate": self.exact_copy_rate,
            "dcr_overfitting_protection": self.dcr_overfitting_protection,
            "membership_auc": self.membership_auc,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain floats, NaN and infinities as ``None``."""
        return _json_safe(asdict(self))

    def to_table(self) -> str:
        """A compact text table of the headline scores, their ideal values and the notes."""
        header = ["metric", "value", "ideal"] + [title for title, _ in self.beside()] + [""]
        rows = []
        for label, value, unit, ideal, floor_key, extra in self.summary_rows():
            row = [label, _format(value, unit), ideal]
            row += [_format(scores[floor_key], unit) if floor_key in scores else "" for _, scores in self.beside()]
            rows.append(row + [extra])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        lines = []
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:-1], widths[1:])]
            lines.append("  ".join(cells + [row[-1]]).rstrip())
        lines += self.rules_table()
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def beside(self) -> list[tuple[str, dict[str, float | None]]]:
        """The columns shown beside the scores: against the holdout, and the real floor, where computed."""
        return [(title, scores) for title, scores in (("vs holdout", self.against_holdout), ("real floor", self.floor))
                if scores is not None]

    def rules_table(self) -> list[str]:
        """Lines of text: each rule of the real table, and the share of each table's rows keeping it."""
        if not self.rules:
            return []
        tables = [t for t in ("real", "holdout", "synthetic") if any(r[t] is not None for r in self.rules)]
        title = "rules of the real table (rows keeping each)"
        width = max(len(title), *(len(r["rule"]) for r in self.rules))
        lines = ["", f"{title.ljust(width)}  " + "  ".join(t.rjust(9) for t in tables)]
        for r in self.rules:
            shares = "  ".join(("" if r[t] is None else f"{floored_percent(r[t]):.1f}%").rjust(9) for t in tables)
            lines.append(f"{r['rule'].ljust(width)}  {shares}" + ("  (a share to match)" if r["partial"] else ""))
        return lines

    def __str__(self) -> str:
        return self.to_table()

    def summary_rows(self) -> list[tuple[str, float | None, str, str, str | None, str]]:
        """(label, value, unit, ideal, key in ``floor``, remark) per line of the table."""
        ml = self.ml_efficiency
        rows = [
            ("Shape error", self.shape_error, "%", "0", "shape_error", ""),
            ("Trend error", self.trend_error, "%", "0", "trend_error", ""),
            ("C2ST logistic", _score(self.c2st_logistic), "", "1", "c2st_logistic", _auc(self.c2st_logistic)),
            ("C2ST xgboost", _score(self.c2st_xgboost), "", "1", "c2st_xgboost", _auc(self.c2st_xgboost)),
            ("alpha-precision", self.alpha_precision, "", "1", "alpha_precision", ""),
            ("beta-recall", self.beta_recall, "", "1", "beta_recall", ""),
        ]
        if ml is not None:
            name = "AUC" if ml.metric.startswith("roc_auc") else "RMSE"
            rows.append((f"ML eff. {name}, train real", ml.real, "", "", None, f"target {ml.target!r}"))
            rows.append((f"ML eff. {name}, train synth.", ml.synthetic, "", "", None,
                         f"gap {ml.gap:+.4f} (>0: synthetic worse)"))
        else:
            rows.append(("ML efficiency", None, "", "", None, ""))
        copies_remark = (
            f"holdout itself: {100 * self.holdout_copy_rate:.2f}%" if self.holdout_copy_rate is not None else ""
        )
        rows += [
            ("DCR share", _percent(self.dcr_share), "%", "50", None, ""),
            ("Exact copies", _percent(self.exact_copy_rate), "%", "0", None, copies_remark),
            ("DCR overfitting prot.", self.dcr_overfitting_protection, "", "1", None, ""),
            ("Membership inference AUC", self.membership_auc, "", "0.5", None, _attacked(self.rows)),
        ]
        return rows


def _score(detection: Detection | None) -> float | None:
    return detection.score if detection else None


def _auc(detection: Detection | None) -> str:
    return f"AUC {detection.auc:.3f}, {detection.rows_per_table:,} rows of each table" if detection else ""


def _attacked(rows: dict[str, int]) -> str:
    n = rows.get("membership candidates")
    return f"{n:,} training and {n:,} held-out rows attacked" if n else ""


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _format(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.2f}" if unit == "%" else f"{value:.4f}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

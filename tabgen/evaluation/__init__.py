"""How good is a synthetic table? TabSyn's metrics, a text summary and an HTML report.

>>> scores = evaluate(real, synthetic, holdout=test, target="income")
>>> print(scores)                      # compact table
>>> scores.to_dict()                   # JSON-safe
>>> write_report(scores, real, synthetic, "report.html")

See docs/evaluation.md for what each figure means and what real data itself scores.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .detection import Detection
    from .evaluator import METRICS, evaluate
    from .ml_efficiency import MLEfficiency
    from .report import write_report
    from .result import EvaluationResult

# Loaded on first use: sdmetrics, xgboost and matplotlib cost a second at import, which the CLI's
# other commands (they register `tabgen evaluate` by importing this package) should not pay.
_EXPORTS = {
    "METRICS": ".evaluator",
    "Detection": ".detection",
    "EvaluationResult": ".result",
    "MLEfficiency": ".ml_efficiency",
    "evaluate": ".evaluator",
    "write_report": ".report",
}

__all__ = ["Detection", "EvaluationResult", "METRICS", "MLEfficiency", "evaluate", "write_report"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)

"""tabgen: synthetic tabular data with TabSyn's method (VAE + EDM latent diffusion)."""

__version__ = "0.1.0"

from .config import DiffusionConfig, SamplerConfig, SynthesizerConfig, VAEConfig  # noqa: E402
from .errors import TabgenError, TabgenWarning  # noqa: E402
from .schema import ColumnSpec, Schema, infer_schema  # noqa: E402
from .synthesizer import Synthesizer  # noqa: E402

__all__ = [
    "ColumnSpec",
    "EvaluationResult",
    "DiffusionConfig",
    "SamplerConfig",
    "Schema",
    "Synthesizer",
    "SynthesizerConfig",
    "TabgenError",
    "TabgenWarning",
    "VAEConfig",
    "evaluate",
    "infer_schema",
    "write_report",
]


def __getattr__(name: str):
    # The evaluation pulls in sdmetrics, xgboost and matplotlib (a second to import): only on use.
    if name in ("evaluate", "write_report", "EvaluationResult"):
        from . import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module 'tabgen' has no attribute {name!r}")

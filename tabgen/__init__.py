"""tabgen: synthetic tabular data with TabSyn's method (VAE + EDM latent diffusion)."""

from .config import DiffusionConfig, SamplerConfig, SynthesizerConfig, VAEConfig
from .errors import TabgenError, TabgenWarning
from .schema import ColumnSpec, Schema, infer_schema
from .synthesizer import FitInterrupted, Synthesizer
from .version import __version__

__all__ = [
    "ColumnSpec",
    "DiffusionConfig",
    "EvaluationResult",
    "FitInterrupted",
    "SamplerConfig",
    "Schema",
    "Synthesizer",
    "SynthesizerConfig",
    "TabgenError",
    "TabgenWarning",
    "VAEConfig",
    "__version__",
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

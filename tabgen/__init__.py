"""tabgen: synthetic tabular data with TabSyn's method (VAE + EDM latent diffusion)."""

import gc as _gc

# Importing torch and pandas makes about a million objects that live as long as the process. Collections
# during the import, and every full collection after it (the last one at exit), would walk them for
# nothing: frozen out of the collector, ``tabgen sample`` took 0.3-0.4 s less (docs/speed.md).
_collecting = _gc.isenabled()
_gc.disable()
try:
    from .config import DiffusionConfig, SamplerConfig, SynthesizerConfig, VAEConfig
    from .errors import TabgenError, TabgenWarning
    from .schema import ColumnSpec, Schema, infer_schema
    from .synthesizer import FitInterrupted, Synthesizer
    from .version import __version__
finally:
    _gc.freeze()
    if _collecting:
        _gc.enable()

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

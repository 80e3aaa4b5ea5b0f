"""tabgen: synthetic tabular data with TabSyn's method (VAE + EDM latent diffusion)."""

__version__ = "0.1.0"

from .config import DiffusionConfig, SamplerConfig, SynthesizerConfig, VAEConfig  # noqa: E402
from .errors import TabgenError  # noqa: E402
from .schema import ColumnSpec, Schema, infer_schema  # noqa: E402
from .synthesizer import Synthesizer  # noqa: E402

__all__ = [
    "ColumnSpec",
    "DiffusionConfig",
    "SamplerConfig",
    "Schema",
    "Synthesizer",
    "SynthesizerConfig",
    "TabgenError",
    "VAEConfig",
    "infer_schema",
]

"""The forward processes a fit can choose (``DiffusionConfig.process``), by name."""

from __future__ import annotations

from ..config import PROCESSES, DiffusionConfig
from .ddpm import DDPMProcess
from .edm import EDMProcess
from .graph import GraphProcess
from .process import Process
from .ve import VEProcess
from .vp import VPProcess

__all__ = ["PROCESSES", "process_for"]


def process_for(config: DiffusionConfig, latent_dim: int, d_token: int) -> Process:
    """The process ``config`` names, for latent rows of ``latent_dim`` in tokens of ``d_token``."""
    if config.process == "graph":
        return GraphProcess(latent_dim // d_token, d_token, config.sigma_data, smoothness=config.graph_smoothness,
                            energy=config.graph_energy, alignment=config.graph_alignment)
    if config.process == "vp":
        return VPProcess()
    if config.process == "ve":
        return VEProcess()
    if config.process == "ddpm":
        return DDPMProcess()
    return EDMProcess.from_config(config)

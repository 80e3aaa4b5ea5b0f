"""The forward processes a fit can choose (``DiffusionConfig.process``), by name."""

from __future__ import annotations

from ..config import PROCESSES, DiffusionConfig
from .ddpm import DDPMProcess
from .edm import EDMProcess
from .process import Process
from .ve import VEProcess
from .vp import VPProcess

__all__ = ["PROCESSES", "process_for"]


def process_for(config: DiffusionConfig) -> Process:
    if config.process == "vp":
        return VPProcess()
    if config.process == "ve":
        return VEProcess()
    if config.process == "ddpm":
        return DDPMProcess()
    return EDMProcess.from_config(config)

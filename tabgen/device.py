"""Which device a fit or a sample runs on."""

from __future__ import annotations

import torch

from .errors import TabgenError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise TabgenError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TabgenError(f"device {str(device)!r} was asked for but CUDA is not available here; use device='cpu'")
    return resolved

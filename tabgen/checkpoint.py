"""Training checkpoints: nested state (weights, optimizer moments, loop counters) in a safe file.

A checkpoint is written with the model file's format (safetensors + JSON, atomic, no pickle): the
nested state is split into its tensors and a JSON skeleton that points at them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import TabgenError
from .io import load_model, save_model

CHECKPOINT_KIND = "tabgen-checkpoint"


def pack(obj: Any, tensors: dict[str, torch.Tensor] | None = None, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a JSON-safe skeleton and the tensors it held."""
    tensors = {} if tensors is None else tensors
    if isinstance(obj, torch.Tensor):
        key = prefix or "root"
        tensors[key] = obj
        return {"$tensor": key}, tensors
    if isinstance(obj, dict):
        # Optimizer state is keyed by parameter index; JSON would turn those ints into text.
        int_keys = bool(obj) and all(isinstance(k, int) for k in obj)
        packed = {str(k): pack(v, tensors, f"{prefix}.{k}" if prefix else str(k))[0] for k, v in obj.items()}
        return ({"$intkeys": packed} if int_keys else packed), tensors
    if isinstance(obj, (list, tuple)):
        return [pack(v, tensors, f"{prefix}.{i}")[0] for i, v in enumerate(obj)], tensors
    return obj, tensors


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"$tensor"}:
            return tensors[skeleton["$tensor"]]
        if set(skeleton) == {"$intkeys"}:
            return {int(k): unpack(v, tensors) for k, v in skeleton["$intkeys"].items()}
        return {k: unpack(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unpack(v, tensors) for v in skeleton]
    return skeleton


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    skeleton, tensors = pack(state)
    save_model(path, {"kind": CHECKPOINT_KIND, "state": skeleton}, tensors)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    if not Path(path).is_file():
        raise TabgenError(f"no checkpoint at {path} to resume from; start the fit without resume=True")
    header, tensors = load_model(path)
    if header.get("kind") != CHECKPOINT_KIND:
        raise TabgenError(f"{path} is a model, not a training checkpoint")
    return unpack(header["state"], tensors)


class Checkpointer:
    """Saves the state returned by a snapshot function at most every ``every`` seconds."""

    def __init__(self, path: str | os.PathLike, every: float, base: Callable[[], dict[str, Any]]):
        self.path = Path(path)
        self.every = every
        self.base = base
        self.done: dict[str, Any] = {}
        """Results of finished phases, carried in every later checkpoint."""
        self._last = time.monotonic()

    def __call__(self, phase: str, snapshot: Callable[[], dict[str, Any]], force: bool = False) -> None:
        if force or time.monotonic() - self._last >= self.every:
            save_checkpoint(self.path, {**self.base(), **self.done, phase: snapshot()})
            self._last = time.monotonic()

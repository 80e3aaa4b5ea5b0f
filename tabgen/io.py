"""Reading and writing tables and model files: atomic writes, safe loads, clear errors.

A model file is a safetensors file: tensors only, plus a JSON header. Loading it cannot execute code,
unlike a pickle. Every write goes to a temporary file in the target's folder and is renamed over the
target only once complete, so a crash leaves either the old file or the new one, never a half.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .errors import TabgenError

MODEL_FORMAT = "tabgen"
MODEL_FORMAT_VERSION = 1
MODEL_SUFFIX = ".tabgen"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` only on success."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TabgenError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise TabgenError(f"cannot write {path}: {e.strerror}") from None
    try:
        # mkstemp creates the file private (0600); the result should have the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV (or, by suffix, Parquet) file, turning every failure into a message about the file."""
    path = Path(path)
    if not path.exists():
        raise TabgenError(f"{path}: no such file")
    if path.is_dir():
        raise TabgenError(f"{path} is a folder; give the path of a CSV file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TabgenError(f"{path} is empty: expected a header line and rows of data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, ImportError) as e:
        raise TabgenError(f"{path} could not be read as a table: {str(e).strip().splitlines()[0]}") from None


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV (or Parquet by suffix) atomically; ``-`` writes CSV to standard output."""
    if str(path) == "-":
        df.to_csv(sys.stdout, index=False)
        return
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        with atomic_write(path, "wb") as f:
            df.to_parquet(f, index=False)
    else:
        with atomic_write(path, "w") as f:
            df.to_csv(f, index=False)


def save_model(path: str | os.PathLike, header: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors and a JSON-serialisable header as one safetensors file, atomically."""
    metadata = {"format": MODEL_FORMAT, "format_version": str(MODEL_FORMAT_VERSION), "header": json.dumps(header)}
    blob = save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    with atomic_write(path, "wb") as f:
        f.write(blob)


def load_model(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a file written by :func:`save_model`; anything else is refused with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise TabgenError(f"{path}: no such model file")
    blob = path.read_bytes()
    not_ours = f"{path} is not a tabgen model file (or it is damaged); fit one with `tabgen fit data.csv`"
    try:
        tensors = load_safetensors(blob)
        metadata = _safetensors_metadata(blob)
    except (SafetensorError, ValueError, OverflowError):
        raise TabgenError(not_ours) from None
    if metadata.get("format") != MODEL_FORMAT:
        raise TabgenError(not_ours)
    version = int(metadata.get("format_version", "0"))
    if version > MODEL_FORMAT_VERSION:
        raise TabgenError(
            f"{path} was written by a newer tabgen (model format {version}, this one reads up to "
            f"{MODEL_FORMAT_VERSION}); upgrade tabgen to load it"
        )
    try:
        header = json.loads(metadata["header"])
    except (KeyError, json.JSONDecodeError):
        raise TabgenError(not_ours) from None
    return header, tensors


def _safetensors_metadata(blob: bytes) -> dict[str, str]:
    # The format: 8-byte little-endian header length, then a JSON header holding "__metadata__".
    n = int.from_bytes(blob[:8], "little")
    if n <= 0 or n > len(blob) - 8:
        raise ValueError("bad header length")
    return json.loads(blob[8 : 8 + n]).get("__metadata__") or {}


def find_model(folder: str | os.PathLike = ".") -> Path:
    """The most recently written model file in ``folder``."""
    candidates = sorted(Path(folder).glob(f"*{MODEL_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise TabgenError(
            f"no model ({MODEL_SUFFIX} file) in {Path(folder).resolve()}: run `tabgen fit data.csv` "
            "here first, or pass the model with -m PATH"
        )
    return candidates[-1]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()

"""Model files: safetensors (tensors only, no pickle, so loading cannot run code) plus a JSON
header, with a SHA-256 of the whole file stored in that header so any changed byte shows."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..errors import TabgenError
from .atomic import atomic_write

MODEL_FORMAT = "tabgen"
#: 3: the header holds the token layout; 2 (still read) had its value levels as a field of their own;
#: from 2 on the file carries a SHA-256 of itself; 1 (still read) had none.
MODEL_FORMAT_VERSION = 3
MODEL_SUFFIX = ".tabgen"

_CHECKSUM_KEY = "sha256"
# The checksum covers the file as written with this in its place, so it can be stored inside the file.
_CHECKSUM_UNSET = "0" * 64


def save_model(path: str | os.PathLike, header: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors and a JSON-serialisable header as one safetensors file, atomically.

    The file's SHA-256, computed with the checksum field set to zeros, is then written into that field:
    :func:`load_model` recomputes it the same way, so any byte changed anywhere in the file shows.
    """
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": str(MODEL_FORMAT_VERSION),
        "header": json.dumps(header),
        _CHECKSUM_KEY: _CHECKSUM_UNSET,
    }
    blob = bytearray(save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata))
    at = _checksum_offset(blob, _CHECKSUM_UNSET)
    if at is None:
        raise RuntimeError("the checksum field is not where save_model put it")
    blob[at : at + len(_CHECKSUM_UNSET)] = hashlib.sha256(blob).hexdigest().encode()
    with atomic_write(path, "wb") as f:
        f.write(blob)


def load_model(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a file written by :func:`save_model`; anything else is refused with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise TabgenError(f"{path}: no such model file")
    blob = path.read_bytes()
    not_ours = f"{path} is not a tabgen model file (or it is damaged); fit one with `tabgen fit data.csv`"
    damaged = (
        f"{path} is damaged or was modified after tabgen wrote it (its checksum does not match); "
        "restore it from a copy or fit the model again"
    )
    try:
        tensors = load_safetensors(blob)
        metadata = _safetensors_metadata(blob)
    except (SafetensorError, ValueError, OverflowError):
        raise TabgenError(not_ours) from None
    if metadata.get("format") != MODEL_FORMAT:
        raise TabgenError(not_ours)
    try:
        version = int(metadata.get("format_version", "0"))
    except ValueError:
        raise TabgenError(damaged) from None
    if version > MODEL_FORMAT_VERSION:
        raise TabgenError(
            f"{path} was written by a newer tabgen (model format {version}, this one reads up to "
            f"{MODEL_FORMAT_VERSION}); upgrade tabgen to load it"
        )
    checksum = metadata.get(_CHECKSUM_KEY)
    # Format 1 predates the checksum; from 2 on, a missing one is itself damage (a changed key name).
    if (checksum is not None or version >= 2) and not _checksum_matches(blob, checksum):
        raise TabgenError(damaged)
    try:
        header = json.loads(metadata["header"])
    except (KeyError, json.JSONDecodeError):
        raise TabgenError(not_ours) from None
    return header, tensors


def looks_like_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts as a model file does (safetensors: an 8-byte header length, then its
    JSON), without reading the rest: what a fit may replace."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < os.path.getsize(path)


def find_model(folder: str | os.PathLike = ".") -> Path:
    """The most recently written model file in ``folder``."""
    candidates = sorted(Path(folder).glob(f"*{MODEL_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise TabgenError(
            f"no model ({MODEL_SUFFIX} file) in {Path(folder).resolve()}: run `tabgen fit data.csv` "
            "here first, or pass the model with -m PATH"
        )
    return candidates[-1]


def _safetensors_metadata(blob: bytes | bytearray) -> dict[str, str]:
    # The format: 8-byte little-endian header length, then a JSON header holding "__metadata__".
    n = int.from_bytes(blob[:8], "little")
    if n <= 0 or n > len(blob) - 8:
        raise ValueError("bad header length")
    return json.loads(blob[8 : 8 + n]).get("__metadata__") or {}


def _checksum_offset(blob: bytes | bytearray, value: str) -> int | None:
    """Where the quoted ``value`` sits in the JSON header, if exactly once."""
    n = int.from_bytes(blob[:8], "little")
    needle = b'"' + value.encode() + b'"'
    first = blob.find(needle, 8, 8 + n)
    if first < 0 or blob.find(needle, first + 1, 8 + n) >= 0:
        return None
    return first + 1


def _checksum_matches(blob: bytes, checksum: Any) -> bool:
    if not isinstance(checksum, str) or not re.fullmatch(r"[0-9a-f]{64}", checksum):
        return False
    at = _checksum_offset(blob, checksum)
    if at is None:
        return False
    digest = hashlib.sha256()
    digest.update(memoryview(blob)[:at])
    digest.update(_CHECKSUM_UNSET.encode())
    digest.update(memoryview(blob)[at + len(checksum) :])
    return digest.hexdigest() == checksum

"""Tables too large to hold in memory, read in chunks and never whole (docs/scale.md).

A Parquet file, a folder of Parquet partitions (hive-style ``key=value`` folders become columns) or a
large CSV is a :class:`TableStream`. One pass draws a uniform sample of its rows (the rows with the
smallest of one random key each, so the pass needs neither the row count nor more memory than the
sample); training then reads it again and again in chunks, from several places at once and in a
fresh random order each pass, each rank of a distributed fit its own share.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..distributed import SINGLE, Ranks
from ..errors import TabgenError
from .memory import table_text_limit
from .tables import PARQUET_SUFFIXES, _read_decimal_commas, _read_head, _starts_with, _text_encoding, sniff_separator

#: Rows read at a time. A chunk is converted to pandas and encoded as one piece.
CHUNK_ROWS = 65_536
#: Parts of the table read at the same time (row groups of Parquet), their chunks taken in turn, so
#: that a batch mixes rows from far apart even when the file is sorted (by date, by region...).
OPEN_PARTS = 4
#: A folder of these is refused with advice: only Parquet folders are streamed.
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


@dataclass(frozen=True)
class _Part:
    """A piece of the table that can be read on its own: a Parquet row group (``fragment``), or the
    whole of a CSV file (``fragment`` None); ``offset`` is the number of its first row in the table."""

    fragment: Any
    offset: int
    rows: int


class TableStream:
    """A table on disk, read in chunks of :data:`CHUNK_ROWS` rows."""

    def __init__(self, path: str | os.PathLike, sep: str | None = None, encoding: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise TabgenError(f"{self.path}: no such file or folder")
        self.parquet = self.path.is_dir() or is_parquet(self.path)
        if self.parquet:
            self._open_parquet()
        else:
            head, whole = _read_head(self.path)
            self.encoding = _text_encoding(self.path, head, encoding)
            text = head.decode(self.encoding, errors="replace")
            self.sep = sep or sniff_separator(text[: text.rfind("\n") + 1] if not whole else text)
            self.parts = [_Part(None, 0, -1)]
            self.n_rows: int | None = None  # counted by the first pass

    def _open_parquet(self) -> None:
        import pyarrow.dataset as ds

        try:
            self.dataset = ds.dataset(self.path, format="parquet", partitioning="hive")
            fragments = sorted(self.dataset.get_fragments(), key=lambda f: f.path)
            parts, offset = [], 0
            for fragment in fragments:
                for group in fragment.split_by_row_group():
                    rows = group.row_groups[0].num_rows
                    parts.append(_Part(group, offset, rows))
                    offset += rows
        except (OSError, ValueError) as e:
            texts = sorted(p.name for p in self.path.rglob("*") if p.suffix.lower() in _TEXT_SUFFIXES)
            if texts:
                raise TabgenError(f"{self.path} is a folder holding text tables such as {texts[0]}: tabgen reads a folder of "
                                  "Parquet files; join the text files into one (a large one is read in chunks), or "
                                  "write them as Parquet") from None
            raise TabgenError(f"{self.path} could not be read as Parquet: {str(e).splitlines()[0]}") from None
        if not parts or offset == 0:
            raise TabgenError(f"{self.path} holds no rows")
        self.parts, self.n_rows = [p for p in parts if p.rows], offset

    def fingerprint(self) -> str:
        """Identifies the files (names, sizes, modification times), so that a checkpoint is never
        resumed on other data without reading the table to hash it."""
        files = sorted(p for p in self.path.rglob("*") if p.is_file()) if self.path.is_dir() else [self.path]
        digest = hashlib.sha256()
        for file in files:
            stat = file.stat()
            digest.update(f"{file.relative_to(self.path.parent)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()

    # --------------------------------------------------------------- reading
    def _read(self, part: _Part) -> Iterator[pd.DataFrame]:
        if part.fragment is None:
            yield from self._csv_chunks()
            return
        for batch in part.fragment.to_batches(schema=self.dataset.schema, batch_size=CHUNK_ROWS):
            yield batch.to_pandas()

    def _csv_chunks(self) -> Iterator[pd.DataFrame]:
        options = dict(sep=self.sep, encoding=self.encoding, index_col=False, chunksize=CHUNK_ROWS)
        try:
            with warnings.catch_warnings(), pd.read_csv(self.path, **options) as reader:
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                for chunk in reader:
                    yield _read_decimal_commas(chunk) if self.sep == ";" else chunk
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise TabgenError(f"{self.path} could not be read as a table: {str(e).splitlines()[0]}") from None

    def sample(self, rows: int, seed: int | None) -> tuple[pd.DataFrame, np.ndarray]:
        """A uniform sample of ``rows`` rows (all of them if the table has fewer), in random order, and
        their numbers in the table; one pass. Counts the rows of a CSV on the way."""
        rng = np.random.default_rng(seed)
        keys = np.empty(0)
        numbers = np.empty(0, dtype=np.int64)
        frames: list[pd.DataFrame] = []
        seen = 0
        for part in self.parts:
            offset = part.offset if part.fragment is not None else 0
            for chunk in self._read(part):
                chunk_keys = rng.random(len(chunk))
                take = np.flatnonzero(chunk_keys < keys.max()) if len(keys) >= rows else np.arange(len(chunk))
                if len(take):
                    frames.append(chunk.iloc[take].reset_index(drop=True))
                    keys = np.concatenate([keys, chunk_keys[take]])
                    numbers = np.concatenate([numbers, offset + take])
                    if len(keys) > 2 * rows:  # keep the smallest keys only now and then: each keeping copies
                        frames, keys, numbers = _smallest(frames, keys, numbers, rows)
                offset += len(chunk)
                seen += len(chunk)
        if self.n_rows is None:
            self.n_rows = seen
            self.parts = [_Part(None, 0, seen)]
        if not seen:
            raise TabgenError(f"{self.path} holds no rows")
        frames, keys, numbers = _smallest(frames, keys, numbers, rows)
        order = np.argsort(keys, kind="stable")
        return frames[0].iloc[order].reset_index(drop=True), numbers[order]

    def chunks(self, seed: int, ranks: Ranks = SINGLE, leave_out: np.ndarray | None = None
               ) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """Chunks of this rank's share of the rows, forever: ``(row numbers, frame)``, pass after pass,
        the parts in a fresh random order each pass and :data:`OPEN_PARTS` of them read in turn.
        Rows numbered in ``leave_out`` (sorted: the validation rows) are never given."""
        rng = np.random.default_rng([seed, ranks.rank])
        by_part = ranks.size > 1 and len(self.parts) >= ranks.size
        mine = self.parts[ranks.rank::ranks.size] if by_part else self.parts
        while True:
            order = [mine[i] for i in rng.permutation(len(mine))]
            readers = [(p, self._read(p)) for p in order[:OPEN_PARTS]]
            waiting = order[OPEN_PARTS:]
            starts = {id(p): p.offset for p, _ in readers}
            while readers:
                part, reader = readers.pop(0)
                chunk = next(reader, None)
                if chunk is None:
                    if waiting:
                        part = waiting.pop(0)
                        starts[id(part)] = part.offset
                        readers.append((part, self._read(part)))
                    continue
                numbers = starts[id(part)] + np.arange(len(chunk))
                starts[id(part)] += len(chunk)
                readers.append((part, reader))
                keep = np.ones(len(chunk), dtype=bool)
                if ranks.size > 1 and not by_part:
                    keep &= numbers % ranks.size == ranks.rank
                if leave_out is not None and len(leave_out):
                    keep &= ~_contains(leave_out, numbers)
                if keep.any():
                    yield numbers[keep], chunk[keep].reset_index(drop=True)


def _smallest(frames: list[pd.DataFrame], keys: np.ndarray, numbers: np.ndarray, rows: int
              ) -> tuple[list[pd.DataFrame], np.ndarray, np.ndarray]:
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(keys) > rows:
        keep = np.sort(np.argpartition(keys, rows - 1)[:rows])
        frame, keys, numbers = frame.iloc[keep].reset_index(drop=True), keys[keep], numbers[keep]
    return [frame], keys, numbers


def _contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    at = np.clip(np.searchsorted(sorted_values, values), 0, len(sorted_values) - 1)
    return sorted_values[at] == values


def is_parquet(path: Path) -> bool:
    """By suffix or content, as :func:`~tabgen.io.tables.read_table` tells Parquet from text."""
    return path.suffix.lower() in PARQUET_SUFFIXES or _starts_with(path, b"PAR1")


def estimated_csv_rows(path: Path) -> int:
    """A CSV's rows from its size and the length of its first lines (no need to be exact: it decides
    whether the table is streamed)."""
    head, whole = _read_head(path)
    lines = max(head.count(b"\n"), 1)
    return int(path.stat().st_size / (len(head) / lines)) if not whole else lines


def stream_if_too_large(path: Path, sample_rows: int, sep: str | None = None,
                        encoding: str | None = None) -> "TableStream | None":
    """``path`` opened as a stream where a fit should stream it rather than read it whole (a folder of
    partitions, or a table of more rows than the sample or larger than tabgen reads whole on this
    machine), else None. A Parquet file's metadata is read once, for both the decision and the stream.
    A compressed CSV is read whole, with its own checks on its size once decompressed."""
    if path.is_dir():
        return TableStream(path, sep, encoding)
    if path.suffix.lower() in (".gz", ".bz2", ".xz", ".zip"):
        return None
    limit = table_text_limit()
    if is_parquet(path):
        try:
            stream = TableStream(path)
        except TabgenError:
            return None  # reading it whole says what is wrong with it
        rows, size = stream.n_rows, sum(part.fragment.row_groups[0].total_byte_size for part in stream.parts)
    else:
        stream, rows, size = None, estimated_csv_rows(path), path.stat().st_size
    if rows <= sample_rows and (limit is None or size <= limit):
        return None
    return stream or TableStream(path, sep, encoding)

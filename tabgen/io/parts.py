"""A table too large for one file: a folder of Parquet part files, written with flat memory.

``out/part-RRRRR-IIIII.parquet``: part ``I`` of process (rank) ``R``, each of at most
:data:`ROWS_PER_PART` rows, in row groups of at most :data:`ROWS_PER_GROUP`. Only one row group is
held in memory at a time, however many rows come. Each part is written under a hidden temporary name
and renamed when complete (:func:`~tabgen.io.atomic.atomic_write`), so a reader of the folder never
sees half a part, and an interrupted write leaves only the parts already complete. Every part has the
same Arrow schema: readers such as ``pd.read_parquet("out/")`` refuse parts that disagree.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pandas as pd

from ..errors import TabgenError
from .atomic import atomic_write

#: Rows in one part file (the last of each rank's parts may have fewer): about 20–100 MB for a table
#: of tens of columns, a size that tools reading a folder of parts handle well.
ROWS_PER_PART = 1_000_000
#: Rows in one Parquet row group, the unit held in memory while writing (and while reading back).
ROWS_PER_GROUP = 100_000
PART_GLOB = "part-*.parquet"


def is_parts_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a folder of parts: an existing folder, or a path ending in a separator."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def prepare_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` for parts, or accept it if it exists and is empty; never write among a user's
    files (nor beside the parts of an earlier run, which a reader would take as one table)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TabgenError(f"{folder} is a file, not a folder: give a new or empty folder for the part files")
    if folder.is_dir():
        try:
            entries = sorted(os.listdir(folder))
        except OSError as e:
            raise TabgenError(f"cannot write parts in {folder}: {e.strerror}") from None
        if entries:
            raise TabgenError(f"{folder} is not empty ({len(entries)} entries, such as {entries[0]!r}): "
                              "give a new or empty folder for the part files")
        return folder
    if not folder.parent.is_dir():
        raise TabgenError(f"cannot write {folder}: folder {folder.parent} does not exist")
    try:
        folder.mkdir(exist_ok=True)  # another rank may create it at the same moment
    except OSError as e:
        raise TabgenError(f"cannot create folder {folder}: {e.strerror}") from None
    return folder


def part_name(rank: int, index: int) -> str:
    return f"part-{rank:05d}-{index:05d}.parquet"


def part_files(folder: str | os.PathLike) -> list[Path]:
    """The complete parts in ``folder``, in rank and part order (temporary files are hidden, not listed)."""
    return sorted(Path(folder).glob(PART_GLOB))


def rows_in(parts: Iterable[Path]) -> int:
    """The rows of complete parts, from their footers (no data is read)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(part).metadata.num_rows for part in parts)


def write_parts(batches: Iterable[pd.DataFrame], folder: str | os.PathLike, *, rank: int = 0,
                values: Mapping[str, Sequence[Any]] | None = None) -> tuple[int, list[Path]]:
    """Write the frames of one table as parts ``part-{rank}-*.parquet`` in ``folder`` (which
    :func:`prepare_folder` has checked); returns the rows written and the parts, in order.

    The schema is the first row group's. A column entirely missing there has no type pyarrow can see
    (``null``), and a later row group with values would not fit it: it takes the type of ``values``
    (some values the column may hold, such as a categorical column's categories) or else text.
    """
    folder, rows, parts, schema = Path(folder), 0, [], None
    groups = _row_groups(batches, ROWS_PER_GROUP, ROWS_PER_PART)
    while (head := next(groups, None)) is not None:
        path = folder / part_name(rank, len(parts))
        written, schema = _write_part(path, _until_full(itertools.chain([head], groups)), schema, values or {})
        rows += written
        parts.append(path)
    return rows, parts


def _write_part(path: Path, frames: Iterator[pd.DataFrame], schema: Any,
                values: Mapping[str, Sequence[Any]]) -> tuple[int, Any]:
    """One part of ``frames``, one row group each; returns its rows and the schema."""
    import pyarrow.parquet as pq

    rows = 0
    with atomic_write(path, "wb") as f:
        writer = None
        try:
            for frame in frames:
                table, schema = _arrow(frame, schema, values, path)
                writer = writer or pq.ParquetWriter(f, schema)
                writer.write_table(table)
                rows += len(frame)
        finally:
            if writer is not None:
                writer.close()
    return rows, schema


def _until_full(groups: Iterator[tuple[pd.DataFrame, bool]]) -> Iterator[pd.DataFrame]:
    # Stop at the group that fills the part, not at the next one: the part is then complete (and
    # renamed) before more rows are drawn, so that Ctrl-C during them keeps it.
    for frame, fills_part in groups:
        yield frame
        if fills_part:
            return


def _row_groups(batches: Iterable[pd.DataFrame], group_rows: int, part_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    """The batches' rows regrouped into frames of ``group_rows`` at most, none across a part boundary
    (every ``part_rows`` rows), each with whether it ends a part."""
    pending: list[pd.DataFrame] = []
    held = done = 0  # rows pending, rows yielded before them
    for batch in batches:
        start = 0
        while start < len(batch):
            room = min(group_rows - held, part_rows - (done + held) % part_rows)
            piece = batch.iloc[start:start + room]
            pending.append(piece)
            held, start = held + len(piece), start + len(piece)
            if len(piece) == room:  # the group, or the part, is full
                done, held = done + held, 0
                yield pd.concat(pending, ignore_index=True), done % part_rows == 0
                pending = []
    if pending:
        yield pd.concat(pending, ignore_index=True), False


def _arrow(frame: pd.DataFrame, schema: Any, values: Mapping[str, Sequence[Any]], path: Path) -> tuple[Any, Any]:
    """``frame`` as an Arrow table of ``schema`` (the first frame's when ``None``) and that schema."""
    import pyarrow as pa

    try:
        if schema is not None:
            return pa.Table.from_pandas(frame, schema=schema, preserve_index=False), schema
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [field.with_type(_type_of(values.get(field.name))) if pa.types.is_null(field.type) else field
                  for field in table.schema]
        schema = pa.schema(fields, metadata=table.schema.metadata)
        return table.cast(schema), schema
    except (ValueError, TypeError, NotImplementedError, pa.ArrowException) as e:
        # pyarrow refuses some pandas objects (mixed-type columns); the temporary file is removed.
        lines = str(e).strip().splitlines()
        raise TabgenError(f"cannot write {path} as Parquet: {lines[0] if lines else type(e).__name__}; "
                          "write a .csv instead") from None


def _type_of(values: Sequence[Any] | None) -> Any:
    import pyarrow as pa

    seen = [v for v in values or [] if v is not None]
    try:
        return pa.array(seen).type if seen else pa.string()
    except (pa.ArrowException, TypeError, ValueError):  # values of several types: text holds them all
        return pa.string()

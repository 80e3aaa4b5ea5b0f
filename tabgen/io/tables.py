"""Reading and writing tables as real exports come: CSV, semicolon-, tab- or pipe-separated text (the
separator sniffed from the first lines), UTF-8 with or without a byte-order mark, UTF-16 with one,
compressed, or Parquet. Anything else is refused with a message naming the file and what to do,
never read as garbage."""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import gzip
import io
import lzma
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path
from typing import IO, Iterable, Iterator

import pandas as pd

from ..errors import TabgenError, TabgenWarning
from .atomic import atomic_write
from .memory import BoundedReader, TooLarge, refuse_text_larger_than_memory, table_text_limit, too_large
from .modelfile import MODEL_SUFFIX

PARQUET_SUFFIXES = (".parquet", ".pq")
#: The separators a table may use; ``read_table`` sniffs which one from the first lines.
SEPARATORS = ",;\t|"

# Enough of a file to see what it is and sniff its separator, without reading all of a large one.
_HEAD_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 16 * 1024 * 1024
_SNIFF_CHARS = 8 * 1024
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an Excel or other Office file?)",
    b"\xd0\xcf\x11\xe0": "an old Office file (Excel .xls?)",
    b"SQLite format 3": "an SQLite database",
    b"\x1f\x8b": "gzip-compressed (name it .gz)",
}


def read_table(path: str | os.PathLike, sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV-like text table or (by suffix or content) a Parquet file, refusing anything else.

    ``sep`` overrides the separator sniffed from the first lines; ``encoding`` overrides the default
    of UTF-8 (or UTF-16 when the file starts with its byte-order mark). Both apply to text only.
    """
    path = Path(path)
    if not path.exists():
        raise TabgenError(f"{path}: no such file")
    if path.is_dir():
        raise TabgenError(f"{path} is a folder; give the path of a CSV file")
    suffix = path.suffix.lower()
    if suffix == MODEL_SUFFIX:
        raise TabgenError(f"{path} is a tabgen model, not a table; give the CSV file it was fitted on")
    if suffix in _SPREADSHEET_SUFFIXES:
        raise TabgenError(
            f"{path} is a spreadsheet, not a text table: save it as 'CSV UTF-8' (or Parquet) and give that file"
        )
    if suffix in _JSON_SUFFIXES:
        raise _json_error(path)
    if suffix in PARQUET_SUFFIXES or _starts_with(path, b"PAR1"):
        return _read_parquet(path)
    if not _is_compressed(path):
        refuse_text_larger_than_memory(path, path.stat().st_size)

    head, whole = _read_head(path)
    encoding = _text_encoding(path, head, encoding)
    text = _decode_head(path, head, encoding, whole)
    if not text.strip():
        raise TabgenError(f"{path} is empty: expected a header line and rows of data")
    if re.match(r"\s*(\{|\[\s*[\[{\"]|\[\s*$)", text):  # not "[id],[name]", a header some databases write
        raise _json_error(path)
    if not whole:
        # The sniffer and the header parser need whole lines; the last one read may be cut.
        text = text[: text.rfind("\n") + 1]
    sep = sep or sniff_separator(text)
    header = _header_names(text, sep)
    if header is not None:
        _refuse_duplicate_names(path, header)
    df = _read_csv(path, sep, encoding, len(header) if header else None)
    if header is not None and len(header) > 1 and df.iloc[:, -1].isna().any():
        _warn_short_rows(path, sep, encoding, len(header))
    if sep == ";":
        df = _read_decimal_commas(df)
    return df


def sniff_separator(text: str) -> str:
    """The separator of the table whose first lines are ``text``: one of :data:`SEPARATORS`.

    ``csv.Sniffer`` looks for the character that splits every line into the same number of fields;
    its pick is kept only if it splits the header, the line that decides how many columns there are.
    A single-column table splits on none of them and reads the same with any: ``,`` is returned.
    """
    sample = "".join(text.splitlines(keepends=True)[:50])
    if len(sample) > _SNIFF_CHARS:
        # The sniffer's quote regex takes quadratic time on some inputs: seconds for 64 KiB.
        cut = sample.rfind("\n", 0, _SNIFF_CHARS)
        sample = sample[: cut + 1] if cut > 0 else sample[:_SNIFF_CHARS]
    candidates = list(SEPARATORS)
    with contextlib.suppress(csv.Error):
        candidates.insert(0, csv.Sniffer().sniff(sample, delimiters=SEPARATORS).delimiter)
    for sep in candidates:
        header = _header_names(text, sep)
        if header is not None and len(header) > 1:
            return sep
    return ","


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV (or Parquet by suffix) atomically; ``-`` writes CSV to standard output."""
    if str(path) == "-":
        df.to_csv(sys.stdout, index=False)
        return
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            with atomic_write(path, "wb") as f:
                df.to_parquet(f, index=False)
        except ImportError:
            raise TabgenError(f"cannot write {path}: Parquet needs pyarrow (pip install pyarrow); or write a .csv") from None
        except (ValueError, TypeError, NotImplementedError) as e:
            # pyarrow refuses some pandas objects (mixed-type columns); the temporary file is gone.
            raise TabgenError(f"cannot write {path} as Parquet: {_first_line(e)}; write a .csv instead") from None
    else:
        with atomic_write(path, "w") as f:
            df.to_csv(f, index=False)


def write_batches(batches: Iterable[pd.DataFrame], path: str | os.PathLike) -> int:
    """Write frames of one table as CSV (or Parquet by suffix), atomically; ``-`` writes CSV to standard
    output. CSV is streamed batch by batch, so memory stays flat however many rows come. Returns the rows written."""
    if str(path) != "-" and Path(path).suffix.lower() in PARQUET_SUFFIXES:
        frame = pd.concat(list(batches), ignore_index=True)
        write_table(frame, path)
        return len(frame)
    rows = 0
    with contextlib.nullcontext(sys.stdout) if str(path) == "-" else atomic_write(path, "w") as f:
        for batch in batches:
            batch.to_csv(f, index=False, header=rows == 0)
            rows += len(batch)
    return rows


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _json_error(path: Path) -> TabgenError:
    return TabgenError(
        f"{path} is JSON, not a table: convert it first, e.g. pd.read_json(...).to_csv('data.csv', index=False)"
    )


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError as e:
        raise TabgenError(f"{path} could not be read: {e.strerror}") from None


def _is_compressed(path: Path) -> bool:
    return path.suffix.lower() in _OPENERS or path.suffix.lower() == ".zip"


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        _refuse_parquet_larger_than_memory(path)
        return pd.read_parquet(path)
    except TabgenError:
        raise
    except ImportError:
        raise TabgenError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except (ValueError, OSError, TypeError, NotImplementedError) as e:
        if "magic bytes" in str(e):
            raise TabgenError(f"{path} is not a Parquet file, though its name says so; "
                              "if it is a CSV, rename it to .csv") from None
        raise TabgenError(f"{path} could not be read as Parquet: {_first_line(e)}") from None


def _refuse_parquet_larger_than_memory(path: Path) -> None:
    import pyarrow.parquet as pq

    limit = table_text_limit()
    if limit is not None:
        metadata = pq.ParquetFile(path).metadata
        size = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        if size > limit:  # the uncompressed size the row groups declare
            raise too_large(path, size, limit, "once decompressed")


@contextlib.contextmanager
def _open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed as pandas will by suffix (.gz, .bz2, .xz, a one-file .zip)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise TabgenError(f"{path} holds {len(names)} files; give a ZIP with exactly one table in it")
                with archive.open(names[0]) as f:
                    yield f
        else:
            with _OPENERS.get(suffix, open)(path, "rb") as f:
                yield f
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as e:
        what = "read" if suffix not in _OPENERS and suffix != ".zip" else "decompressed"
        raise TabgenError(f"{path} could not be {what}: {getattr(e, 'strerror', None) or _first_line(e)}") from None


def _read_head(path: Path) -> tuple[bytes, bool]:
    """The first bytes of the (decompressed) file, through its first line; and whether that is all."""
    with _open_binary(path) as f:
        return _read_through_first_line(f)


def _read_through_first_line(f: IO[bytes]) -> tuple[bytes, bool]:
    head = f.read(_HEAD_BYTES)
    # A very wide table's header can be longer than the usual sample.
    while b"\n" not in head and len(head) < _MAX_HEADER_BYTES:
        more = f.read(_HEAD_BYTES)
        if not more:
            return head, True
        head += more
    return head, not f.read(1)


def _text_encoding(path: Path, head: bytes, encoding: str | None) -> str:
    if encoding is not None:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise TabgenError(f"unknown encoding {encoding!r}: use a name such as utf-8, cp1252, latin-1 or utf-16") from None
        # A byte-order mark is not data even when the user names plain UTF-8.
        name = "utf-8-sig" if name == "utf-8" else name
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        name = "utf-16"  # what Excel's "Unicode text" export writes
    else:
        name = "utf-8-sig"
    if name.startswith(("utf-16", "utf-32")):
        return name  # NUL bytes are part of every ASCII character there
    kind = next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None and _looks_binary(head):
        kind = "it holds binary data"
    if kind is not None:
        raise TabgenError(f"{path} is not a text table ({kind}): give a CSV or TSV text file, or a Parquet file")
    return name


def _looks_binary(head: bytes) -> bool:
    # Text has no NUL bytes and few control characters besides tab, newline, carriage return, form feed.
    if b"\x00" in head:
        return True
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
    return controls > 0.05 * max(len(head), 1)


def _decode_head(path: Path, head: bytes, encoding: str, whole: bool) -> str:
    try:
        return codecs.getincrementaldecoder(encoding)().decode(head, final=whole)
    except UnicodeDecodeError as e:
        raise _encoding_error(path, encoding, head[: e.start].count(b"\n") + 1, head[e.start]) from None


def _encoding_error(path: Path, encoding: str, line: int, byte: int) -> TabgenError:
    name = "UTF-8" if encoding == "utf-8-sig" else encoding
    return TabgenError(
        f"{path} is not {name} text (byte 0x{byte:02x} on line {line}); if it was saved by Excel or another "
        "Windows program, pass encoding='cp1252' (or the encoding it was saved in), or re-save it as UTF-8"
    )


def _locate_encoding_error(path: Path, encoding: str) -> TabgenError:
    """The first undecodable byte of the whole file, looked for only once pandas has met one."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with _open_binary(path) as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                # e.object starts with the bytes of a character cut at the end of the previous chunk.
                start = max(e.start - (len(e.object) - len(chunk)), 0)
                return _encoding_error(path, encoding, line + chunk[:start].count(b"\n"), e.object[e.start])
            line += chunk.count(b"\n")
    return TabgenError(f"{path} is not {encoding} text")


def _header_names(text: str, sep: str) -> list[str] | None:
    """The first record of ``text`` split on ``sep``, as the csv module (and pandas) parses it."""
    try:
        return next(csv.reader(io.StringIO(text), delimiter=sep), None)
    except csv.Error:
        return None


def _refuse_duplicate_names(path: Path, names: list[str]) -> None:
    # pandas renames a repeated name to "a.1" without a word; a model of such a table would silently
    # produce a column the user never had.
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(i)
    for name, where in positions.items():
        if len(where) > 1:
            columns = ", ".join(map(str, where[:-1])) + f" and {where[-1]}"
            if not name.strip():
                raise TabgenError(f"{path}: columns {columns} have no name in the header; give each a name")
            raise TabgenError(
                f"{path}: column name {name!r} is repeated in the header (columns {columns}); "
                "rename them so that each is unique"
            )


def _read_csv(path: Path, sep: str, encoding: str, n_columns: int | None) -> pd.DataFrame:
    # index_col=False: by default pandas takes the first column as the index when rows have one
    # field more than the header, shifting every value one column to the right without a word.
    options = dict(sep=sep, encoding=encoding, index_col=False, low_memory=False)
    try:
        with warnings.catch_warnings():
            # With index_col=False, pandas drops the extra fields of a longer row with only a warning.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            limit = table_text_limit()
            if not _is_compressed(path) or limit is None:
                return pd.read_csv(path, **options)
            with _open_binary(path) as raw:
                return pd.read_csv(BoundedReader(raw, path, limit), compression=None, **options)
    except TooLarge as e:
        raise TabgenError(str(e)) from None
    except pd.errors.ParserWarning:
        raise _long_row_error(path, sep, encoding, n_columns) from None
    except pd.errors.EmptyDataError:
        raise TabgenError(f"{path} is empty: expected a header line and rows of data") from None
    except UnicodeDecodeError:
        raise _locate_encoding_error(path, encoding) from None
    except pd.errors.ParserError as e:
        raise _parser_error(path, sep, e) from None
    except (ValueError, OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as e:
        raise TabgenError(f"{path} could not be read as a table: {_first_line(e)}") from None


def _separator_name(sep: str) -> str:
    return "tab" if sep == "\t" else repr(sep)


def _parser_error(path: Path, sep: str, e: Exception) -> TabgenError:
    message = _first_line(e)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m:
        expected, line, saw = m.groups()
        return TabgenError(
            f"{path}, line {line}: {saw} fields where the header has {expected}; quote values that contain "
            f"the separator ({_separator_name(sep)}), or pass sep= if that is not the separator"
        )
    m = re.search(r"EOF inside string starting at row (\d+)", message)
    if m:
        return TabgenError(f"{path}: a quote (\") opened in data row {m.group(1)} is never closed")
    return TabgenError(f"{path} could not be read as a table: {message}")


def _long_row_error(path: Path, sep: str, encoding: str, n_columns: int | None) -> TabgenError:
    with _open_binary(path) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=sep)
        for fields in reader:
            if n_columns is not None and len(fields) > n_columns and any(v.strip() for v in fields[n_columns:]):
                return TabgenError(
                    f"{path}, line {reader.line_num}: {len(fields)} fields where the header has {n_columns}; "
                    f"quote values that contain the separator ({_separator_name(sep)}), or pass sep= if that is not the separator"
                )
    return TabgenError(f"{path}: some rows have more fields than the header; quote values that contain the separator")


def _warn_short_rows(path: Path, sep: str, encoding: str, n_columns: int) -> None:
    # pandas reads a row with fewer fields than the header as one whose last cells are empty. That is
    # how some writers leave out trailing empty cells, so it is not refused; but it is also how a cut-off
    # file ends, and tabgen learns gaps as data, so the user hears of it.
    lines = []
    with _open_binary(path) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=sep)
        next(reader, None)
        start = reader.line_num + 1  # a quoted cell may span lines: name the line a row starts on
        for fields in reader:
            if 0 < len(fields) < n_columns and any(v.strip() for v in fields):
                lines.append(start)
            start = reader.line_num + 1
    if lines:
        many = len(lines) > 1
        where = ", ".join(map(str, lines[:3])) + (", …" if len(lines) > 3 else "")
        warnings.warn(
            f"{path}: {len(lines)} row{'s' if many else ''} {'have' if many else 'has'} fewer fields than the "
            f"header's {n_columns} (line{'s' if many else ''} {where}); their missing trailing cells are read as empty",
            TabgenWarning,
            stacklevel=3,
        )


_DECIMAL_COMMA = re.compile(r"\s*[+-]?(\d+,\d*|,\d+|\d+)\s*")


def _read_decimal_commas(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers written ``1,5``: semicolon-separated files are what Excel writes where comma is the
    decimal mark. Only whole columns of such numbers are converted; ``1.234,5`` stays text."""
    for name in df.columns:
        values = df[name]
        # pandas 3 reads text as its own string dtype, earlier versions as object.
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        seen = values.dropna()
        if len(seen) == 0 or not all(isinstance(v, str) for v in seen):
            continue
        if seen.str.fullmatch(_DECIMAL_COMMA).all() and seen.str.contains(",", regex=False).any():
            df[name] = pd.to_numeric(values.str.replace(",", ".", regex=False).str.strip())
    return df

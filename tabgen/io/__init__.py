"""Files: tables in and out, model files, and the atomic writes both rely on."""

from .atomic import atomic_write
from .modelfile import MODEL_FORMAT_VERSION, MODEL_SUFFIX, find_model, load_model, looks_like_model, save_model
from .tables import PARQUET_SUFFIXES, SEPARATORS, read_table, sniff_separator, write_batches, write_table

__all__ = [
    "MODEL_FORMAT_VERSION",
    "MODEL_SUFFIX",
    "PARQUET_SUFFIXES",
    "SEPARATORS",
    "atomic_write",
    "find_model",
    "load_model",
    "looks_like_model",
    "read_table",
    "save_model",
    "sniff_separator",
    "write_batches",
    "write_table",
]

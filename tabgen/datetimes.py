"""Dates and times as numbers: detection, and the conversions both ways.

A datetime column (a ``datetime64`` column, or text that is a date in one format, as read from a
CSV file) is learned as a number: a count of days, hours, minutes, seconds, milliseconds or
microseconds since 1970-01-01, in the coarsest of those units that holds every observed value exactly. Generated
numbers are rounded to whole units, so a column of dates gets dates back, not dates with a random
time of day; the output is a ``datetime64`` column again, or text written in the input's format.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from pandas.tseries.api import guess_datetime_format

from .errors import TabgenError

#: Microseconds in each unit a datetime column can be counted in, coarsest first. Counting in
#: microseconds rather than pandas' nanoseconds keeps every count below 2**53, where float64 is exact.
UNIT_MICROSECONDS = {"D": 86_400_000_000, "h": 3_600_000_000, "min": 60_000_000, "s": 1_000_000, "ms": 1_000, "us": 1}

# Values the format is guessed from; each guess is then checked against every value.
_GUESSES_FROM = 5


def is_datetime_dtype(series: pd.Series) -> bool:
    return ptypes.is_datetime64_any_dtype(series)


def text_datetime_format(observed: pd.Series) -> str | None:
    """The strftime format in which every (non-missing) text value is a date, or ``None``.

    Conservative on purpose: the values must all be text, one format must parse all of them, and
    the format must name a four-digit year, a month and a day with separators between fields (or be
    day, month and two-digit year as numbers between ``/`` or ``-``: 03/01/19); so
    plain integers, codes such as ``20210304``, version numbers and times of day stay what they were.
    A ``category`` column is the user's statement that the column is categorical, and stays so.
    """
    text = ptypes.is_object_dtype(observed) or ptypes.is_string_dtype(observed)
    if len(observed) == 0 or not text or isinstance(observed.dtype, pd.CategoricalDtype):
        return None
    if not observed.map(type).eq(str).all():
        return None
    picks = observed.iloc[np.linspace(0, len(observed) - 1, min(_GUESSES_FROM, len(observed))).astype(int)]
    candidates: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when a day-first guess contradicts dayfirst=False
        for value in picks:
            for dayfirst in (False, True):  # month first wins for values such as 04/03/2021, as in pandas
                fmt = guess_datetime_format(value.strip(), dayfirst=dayfirst)
                if fmt and fmt not in candidates and _is_calendar_date(fmt):
                    candidates.append(fmt)
    candidates += _two_digit_year_formats(picks)
    for fmt in candidates:
        parsed = pd.to_datetime(observed, format=fmt, errors="coerce")
        if parsed.notna().all():
            return fmt
    return None


_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}([/-])\d{1,2}\1\d{2}")


def _two_digit_year_formats(picks: pd.Series) -> list[str]:
    """Month-first then day-first formats for dates such as 03/01/19 (pandas guesses none with a
    two-digit year). Only with ``/`` or ``-`` between three numbers: ``1.2.3`` is a version."""
    matches = [_TWO_DIGIT_YEAR.fullmatch(value.strip()) for value in picks]
    if not all(matches) or len({m.group(1) for m in matches}) != 1:
        return []
    sep = matches[0].group(1)
    return [f"%m{sep}%d{sep}%y", f"%d{sep}%m{sep}%y"]


def _is_calendar_date(fmt: str) -> bool:
    has_year = "%Y" in fmt
    has_month = any(d in fmt for d in ("%m", "%b", "%B"))
    # An offset would make one column hold several time zones; such text stays categorical.
    has_zone = "%z" in fmt or "%Z" in fmt
    separated = re.sub(r"%.", "", fmt) != ""
    return has_year and has_month and "%d" in fmt and separated and not has_zone


def _microseconds(series: pd.Series, fmt: str | None, name: str) -> np.ndarray:
    """Microseconds since 1970-01-01 (UTC for zoned columns) as int64, and NaT's sentinel for missing."""
    if fmt is not None:
        stamps = pd.to_datetime(series, format=fmt, errors="coerce")
        bad = stamps.isna() & series.notna()
        if bad.any():  # an ISO 8601 date (2019-01-31) is read whatever the column's format: it is unambiguous
            stamps[bad] = pd.to_datetime(series[bad], format="ISO8601", errors="coerce")
            bad = stamps.isna() & series.notna()
        if bad.any():
            raise TabgenError(f"column {name!r} holds {series[bad].iloc[0]!r}, which is not a date in the format {fmt!r} "
                              "nor in ISO 8601 (2019-01-31)")
    else:
        stamps = pd.to_datetime(series)
    if getattr(stamps.dtype, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[us]").view(np.int64)


def datetime_unit(series: pd.Series, fmt: str | None, name: str) -> str:
    """The coarsest unit in which every observed datetime is a whole number."""
    us = _microseconds(series.dropna(), fmt, name)
    for unit, size in UNIT_MICROSECONDS.items():
        if np.all(us % size == 0):
            return unit
    return "us"


def datetimes_to_numbers(series: pd.Series, unit: str, fmt: str | None, name: str) -> np.ndarray:
    """float64 counts of ``unit`` since 1970-01-01; NaN where the cell is missing."""
    missing = series.isna().to_numpy()
    us = _microseconds(series, fmt, name)
    size = UNIT_MICROSECONDS[unit]
    # Dividing the int64 in two steps keeps it exact; one float division would round large counts.
    numbers = (us // size).astype(np.float64) + (us % size) / size
    numbers[missing] = np.nan
    return numbers


def numbers_to_datetimes(values: np.ndarray, unit: str, fmt: str | None, dtype: str) -> pd.Series:
    """The inverse of :func:`datetimes_to_numbers`: a ``dtype`` column, or text in ``fmt``."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    us = np.zeros(len(values), dtype=np.int64)
    us[~missing] = np.round(values[~missing] * UNIT_MICROSECONDS[unit]).astype(np.int64)
    stamps = us.astype("datetime64[us]")
    stamps[missing] = np.datetime64("NaT")
    out = pd.Series(stamps)
    if fmt is not None:
        text = out.dt.strftime(fmt).astype(object).where(~missing, np.nan)
        return text.astype(dtype) if dtype != "object" else text
    tz = getattr(pd.api.types.pandas_dtype(dtype), "tz", None)
    if tz is not None:
        out = out.dt.tz_localize("UTC").dt.tz_convert(tz)
    return out.astype(dtype)

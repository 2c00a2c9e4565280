"""How purchase times are read: one set of rules for every engine.

Times are local wall time. Datetime columns are taken as they are: tz-aware ones (and
Python datetimes with zones, and strings with UTC offsets) keep their own local time of
day, so 23:00 in New York on January 1 is January 1, even in a column whose values carry
several offsets.

Text is parsed with ``date_format`` when one is given, on every engine. Without one,
the format is *inferred from the whole column*, the same way on every engine:

1. each value is trimmed of spaces, and a UTC offset after a time of day (``Z``,
   ``UTC``, ``+05:30``, ``-0400``) is removed;
2. the value's *shape* is its text with every digit replaced by ``0``; the shapes
   recognised are a date ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD``, or
   ``DD?MM?YYYY`` / ``MM?DD?YYYY`` with ``/``, ``.`` or ``-`` between (one- or
   two-digit fields), optionally followed by a space or ``T`` and ``HH:MM``,
   ``HH:MM:SS`` or ``HH:MM:SS.ffffff`` (one to six decimals);
3. day-first or month-first is decided for the whole column per separator: by a first
   field above 12 (day first) or a second field above 12 (month first). A column with
   evidence of both, or of neither (every field 12 or less), is an error that asks for
   ``date_format``: such dates cannot be read without guessing;
4. values of any other shape, and values of a recognised shape that are not a real
   date (2024-02-30), are unparseable: an error counts them.

The engines share :func:`choose_formats`; each computes the :class:`Shape` profile of
its column (pandas here in :func:`shape_profile`, SQL in :mod:`clvmodels.data._sql`).
"""

from __future__ import annotations

import contextlib
import datetime
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validation import bad_rows_error
from ..exceptions import InvalidDataError

__all__ = [
    "DATE_RANGE", "MAX_NS", "MIN_NS", "OFFSET_PATTERN", "Shape", "choose_formats",
    "dates_to_ns", "shape_profile",
]  # fmt: skip

# Representable times: int64 ns since the epoch. The lower bound is rounded up to a year
# so that the start of any window (up to a calendar year) of a valid time is valid too.
MIN_NS = int(pd.Timestamp("1678-01-01").value)
MAX_NS = int(pd.Timestamp.max.value)
DATE_RANGE = "1678-01-01 .. 2262-04-11"

# A UTC offset after a time of day. Written without backslashes and without
# non-capturing groups, so that Python, RE2 (DuckDB) and Java (Spark) read it alike;
# group 1 is what is kept.
OFFSET_PATTERN = (
    "^(.*[0-9]:[0-9][0-9](:[0-9][0-9]([.][0-9]+)?)?) *"
    "(Z|UTC|[+-][0-9][0-9](:?[0-9][0-9])?)$"
)
#: the first and the second run of digits of a value, for the day/month decision
FIRST_FIELD = "^([0-9]+)"
SECOND_FIELD = "^[0-9]+[^0-9]([0-9]+)"

_DATES: list[tuple[str, str | None]] = [  # shape pattern, format (None: day/month)
    (r"0000-00?-00?", "%Y-%m-%d"),
    (r"0000/00?/00?", "%Y/%m/%d"),
    (r"00?([/.-])00?\1(?:0000)", None),
]
_TIMES: list[tuple[str, str]] = [
    (r"", ""),
    (r"([ T])00?:00", "%H:%M"),
    (r"([ T])00?:00:00", "%H:%M:%S"),
    (r"([ T])00?:00:00\.0{1,6}", "%H:%M:%S.%f"),
]
_COMPACT = "00000000"  # YYYYMMDD


@dataclass(frozen=True)
class Shape:
    """The values of one shape in a column: how many, and the largest first and second
    fields (for the day/month decision), with an example value."""

    shape: str
    count: int
    max_first: int | None
    max_second: int | None
    example: Any = None


def _recognise(shape: str) -> tuple[str, str | None, str] | None:
    """``(date format or None, day/month separator, time part)`` of a shape, or None."""
    if shape == _COMPACT:
        return "%Y%m%d", None, ""
    for date_pattern, date_format in _DATES:
        for time_pattern, time_format in _TIMES:
            match = re.fullmatch(date_pattern + time_pattern, shape)
            if match is None:
                continue
            separator = match.group(1) if date_format is None else None
            time_part = ""
            if time_format:
                time_part = match.group(match.re.groups) + time_format
            return date_format, separator, time_part  # type: ignore[return-value]
    return None


def choose_formats(shapes: list[Shape], column: str) -> dict[str, str]:
    """The ``strptime`` format of each recognised shape (unrecognised ones are left
    out: their values are unparseable).

    Raises
    ------
    InvalidDataError
        When day-first or month-first cannot be told from the data, or both occur.

    Examples
    --------
    >>> choose_formats([Shape("00/00/0000", 3, 31, 12)], "date")
    {'00/00/0000': '%d/%m/%Y'}
    """
    recognised = {s.shape: r for s in shapes if (r := _recognise(s.shape)) is not None}
    by_separator: dict[str, list[Shape]] = {}
    for s in shapes:
        if s.shape in recognised and recognised[s.shape][1] is not None:
            by_separator.setdefault(recognised[s.shape][1], []).append(s)  # type: ignore[index]
    order: dict[str, str] = {}
    for separator, group in by_separator.items():
        day_first = any((s.max_first or 0) > 12 for s in group)
        month_first = any((s.max_second or 0) > 12 for s in group)
        count = sum(s.count for s in group)
        example = group[0].example
        formats = f"'%d{separator}%m{separator}%Y' or '%m{separator}%d{separator}%Y'"
        if day_first and month_first:
            raise InvalidDataError(
                f"column '{column}': {count:,} dates like {example!r} have a day above 12 "
                "in the first field in some rows and in the second field in others, so "
                f"the column mixes two formats. Pass date_format= ({formats}) and fix the "
                "rows that do not match it."
            )
        if not (day_first or month_first):
            raise InvalidDataError(
                f"column '{column}': {count:,} dates like {example!r} could be day/month "
                "or month/day: no field above 12 tells which. Pass date_format= "
                f"({formats})."
            )
        d, m = ("%d", "%m") if day_first else ("%m", "%d")
        order[separator] = f"{d}{separator}{m}{separator}%Y"
    formats: dict[str, str] = {}
    for shape, (date_format, separator, time_part) in recognised.items():
        text = date_format if date_format is not None else order[separator]  # type: ignore[index]
        formats[shape] = text + time_part
    return formats


def split_zone(date_format: str) -> tuple[str, bool]:
    """A ``date_format`` without a trailing ``%z`` / ``%Z``, and whether it had one:
    the offset is then removed from the text, so the wall time is kept."""
    for suffix in (" %z", "%z", " %Z", "%Z"):
        if date_format.endswith(suffix) and not date_format.endswith("%" + suffix):
            return date_format[: -len(suffix)], True
    return date_format, False


# ------------------------------------------------------------------ pandas


def strip_text(values: pd.Series, strip_offset: bool = True) -> pd.Series:
    """Trim spaces and (``strip_offset``) remove a UTC offset after a time of day."""
    values = values.astype(str).str.strip(" ")
    if strip_offset:
        values = values.str.replace(OFFSET_PATTERN, r"\1", regex=True)
    return values


def shape_profile(text: pd.Series, rows: np.ndarray | None = None) -> list[Shape]:
    """The :class:`Shape` profile of stripped text values; ``rows`` counts the rows
    each value stands for (distinct values suffice to profile a column)."""
    shapes = text.str.replace("[0-9]", "0", regex=True)
    first = pd.to_numeric(text.str.extract(FIRST_FIELD, expand=False), errors="coerce")
    second = pd.to_numeric(text.str.extract(SECOND_FIELD, expand=False), errors="coerce")
    frame = pd.DataFrame({"shape": shapes, "first": first, "second": second, "text": text,
                          "rows": np.ones(len(text)) if rows is None else rows})  # fmt: skip
    grouped = frame.groupby("shape", sort=True).agg(
        n=("rows", "sum"), max_first=("first", "max"), max_second=("second", "max"),
        example=("text", "min"),
    )  # fmt: skip
    return [
        Shape(str(shape), int(row.n), _int(row.max_first), _int(row.max_second), row.example)
        for shape, row in grouped.iterrows()
    ]


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def _parse_text(series: pd.Series, column: str, date_format: str | None) -> pd.Series:
    """Text to naive datetimes by the rules above; unparseable values become NaT."""
    codes, uniques = pd.factorize(series, sort=False)
    unique = pd.Series(uniques, dtype=object)
    if date_format is not None:
        fmt, zoned = split_zone(date_format)
        text = strip_text(unique, strip_offset=zoned)
        formats = {fmt: np.ones(len(text), dtype=bool)}
    else:
        text = strip_text(unique)
        rows = np.bincount(codes, minlength=len(unique))
        chosen = choose_formats(shape_profile(text, rows), column)
        shape_of = text.str.replace("[0-9]", "0", regex=True).to_numpy()
        formats = {}
        for shape, fmt in chosen.items():
            formats.setdefault(fmt, np.zeros(len(text), dtype=bool))
            formats[fmt] |= shape_of == shape
    parsed = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    for fmt, rows in formats.items():
        if rows.any():
            parsed[rows] = _strptime(text[rows], fmt, column)
    # microseconds span years 1..9999, so out-of-range times are reported, not wrapped
    return pd.Series(parsed[codes], index=series.index)


def _strptime(text: pd.Series, fmt: str, column: str) -> np.ndarray:
    """``text`` parsed with ``fmt`` as naive datetime64[us] (NaT where it does not fit)."""
    try:
        values = pd.to_datetime(text, format=fmt, errors="coerce")
        return np.asarray(_naive(values).to_numpy()).astype("datetime64[us]")
    except pd.errors.OutOfBoundsDatetime:  # e.g. 9999-12-31: value by value
        pass
    except (ValueError, TypeError):
        raise InvalidDataError(
            f"column '{column}': date_format={fmt!r} is not a format pandas can use."
        ) from None
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    for k, value in enumerate(text):
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            out[k] = np.datetime64(datetime.datetime.strptime(value, fmt).replace(tzinfo=None))
    return out


def _naive(parsed: pd.Series) -> pd.Series:
    return parsed.dt.tz_localize(None) if isinstance(parsed.dtype, pd.DatetimeTZDtype) else parsed


def unparsed_dates_fix(date_format: str | None) -> str:
    """What to do about dates that do not parse (every engine says the same)."""
    if date_format:
        return (f"They do not match date_format={date_format!r}: correct the format, or "
                "fix or drop these rows.")  # fmt: skip
    return "Fix or drop these rows, or pass date_format= (e.g. '%Y-%m-%d')."


def dates_to_ns(series: pd.Series, column: str, ids: Any, date_format: str | None) -> np.ndarray:
    """Timestamps as int64 ns since the epoch, in local wall time.

    ``ids`` maps a row position to its customer id (for error messages). Times outside
    the int64 ns range are an error, not a wrap-around.
    """
    fix = unparsed_dates_fix(date_format)
    missing = series.isna().to_numpy()
    if missing.any():
        raise bad_rows_error(
            column, missing, ids, "have a missing date (NaT/None)", "Fix or drop these rows."
        )
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        series = _as_text_or_datetimes(series, column, date_format)
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            parsed = series
        else:
            parsed = _parse_text(series, column, date_format)
            bad = parsed.isna().to_numpy()
            if bad.any():
                raise bad_rows_error(column, bad, ids, "are not dates that can be parsed", fix)
    ns, outside = _datetimes_to_ns(_wall_time(parsed))
    if outside.any():
        raise bad_rows_error(
            column, outside, ids, f"are outside {DATE_RANGE}, the dates that can be used",
            "Placeholder dates such as 9999-12-31 or 0001-01-01 are not purchase times: "
            "fix or drop these rows.",
        )  # fmt: skip
    return ns


def _as_text_or_datetimes(series: pd.Series, column: str, date_format: str | None) -> pd.Series:
    """Python datetimes and dates as datetime64 (each keeping its own wall time), numbers
    with a ``date_format`` as their digits, anything else as text."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        if date_format is None or pd.api.types.is_bool_dtype(series.dtype):
            raise InvalidDataError(
                f"column '{column}' holds numbers ({series.dtype}), not dates. Pass "
                "date_format= (e.g. '%Y%m%d' for 19970101) or convert it with "
                "pandas.to_datetime."
            )
        values = series.to_numpy()
        if values.dtype.kind == "f":
            whole = np.isfinite(values) & (values == np.floor(values))
            text = pd.Series(np.where(whole, values, np.nan), index=series.index)
            return text.map(lambda v: "" if np.isnan(v) else str(int(v)))
        return series.astype(np.int64).astype(str)
    if series.dtype == object:
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind in ("datetime", "datetime64", "date"):
            stripped = _strip_object_timezones(series)
            return pd.Series(pd.to_datetime(stripped.to_numpy()), index=series.index)
    return series


def _wall_time(parsed: pd.Series) -> np.ndarray:
    """Naive numpy datetime64 values of a datetime-like series, in local wall time."""
    dtype = parsed.dtype
    if isinstance(dtype, pd.ArrowDtype):
        if getattr(dtype.pyarrow_dtype, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        values = np.asarray(parsed.to_numpy())
        if values.dtype.kind != "M":  # date32 / date64 come out as datetime.date objects
            values = np.asarray(pd.to_datetime(parsed).to_numpy())
        return values
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return np.asarray(parsed.to_numpy())


_UNIT_NS = {"D": 86_400 * 10**9, "h": 3_600 * 10**9, "m": 60 * 10**9, "s": 10**9,
            "ms": 10**6, "us": 10**3, "ns": 1}  # fmt: skip


def _datetimes_to_ns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 ns of datetime64 values of any unit, and the mask of those out of range.

    Converting with ``astype("datetime64[ns]")`` would silently wrap around for times
    after 2262, so the bounds are checked in the values' own unit first.
    """
    unit, count = np.datetime_data(values.dtype)
    if unit not in _UNIT_NS:  # weeks, months, years: whole seconds are exact
        values = values.astype("datetime64[s]")
        unit, count = "s", 1
    factor = count * _UNIT_NS[unit]
    raw = values.view(np.int64)
    lowest, highest = -(-MIN_NS // factor), MAX_NS // factor
    outside = (raw < lowest) | (raw > highest)
    if outside.any():
        return raw, outside
    return raw * np.int64(factor), outside


def _strip_object_timezones(series: pd.Series) -> pd.Series:
    """Python datetimes with time zones -> their local wall time, each its own zone.

    pandas would turn a mix of zones into NaT; the caller's series is not modified.
    """
    if all(getattr(v, "tzinfo", None) is None for v in series):
        return series
    return series.map(
        lambda v: v.replace(tzinfo=None) if getattr(v, "tzinfo", None) is not None else v
    )

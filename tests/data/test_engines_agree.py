"""Every way in gives the same summary: property tests over generated transaction logs.

Hypothesis draws small logs: text ids (leading zeros, Unicode, delimiters, quotes, tabs
and newlines) or integer ids (up to 18 digits); naive, tz-aware or text dates with times
of day; amounts in cents; sometimes an exact duplicate row, sometimes one bad row. From
each log every input clvmodels accepts is built: the pandas frame, polars, a CSV file
(comma, semicolon or tab), a Parquet file, a DuckDB relation, the frame scanned with
``engine="duckdb"``, one more way drawn per log (files split in two, gzipped CSV,
Parquet written by DuckDB, files loaded with ``engine="pandas"``, polars or
pyarrow-backed pandas columns, scanned by DuckDB or not) and, in a smaller test, a Spark
DataFrame and the CSV file read by Spark. CSV files vary in quoting, line ends and
byte-order mark. Each must give what the pandas frame gives: the same summary (values,
index values and dtype, ``attrs``) and the same data warnings in the same order, or the
same :class:`InvalidDataError` (up to the example customer, which engines may pick
differently).

The disagreements left are pinned by the ``xfail(strict=True)`` tests at the end, and
the generators stay clear of them until they are fixed: two limits of DuckDB's CSV
sniffer (a carriage return inside a quoted field, a byte-order mark before a quoted
first column name that holds the separator: both refused with an error, not misread;
see ``TEXT_ID`` and ``logs``), and missing ids or dates reported after ambiguous
day/month dates by the SQL engines, before them by pandas.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clvmodels
from clvmodels.data.reader import read_log
from clvmodels.exceptions import DataWarning, InvalidDataError

polars = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

SLOW_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
ZONES = ("America/New_York", "Asia/Kolkata", "Pacific/Chatham")  # -5/-4, +5:30, +12:45/+13:45
# zoned nanoseconds: TIMESTAMPTZ_NS in Parquet (test_zoned_nanosecond_parquet_is_read)
UNITS = ("s", "ms", "us", "ns")
# Text dates as the frame (and so every file) holds them. "%z": ISO 8601 with the UTC
# offset of a drawn zone, which every reader strips to keep the wall time. Day and month
# first are told by the data, or not: then every input must refuse them alike.
UNAMBIGUOUS_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d",
    "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%z",
)  # fmt: skip
TEXT_FORMATS = (*UNAMBIGUOUS_FORMATS, "%d.%m.%Y %H:%M:%S", "%m/%d/%Y %H:%M")
SEPARATORS = (",", ";", "\t")
# How else the CSV is written: quoting (0 minimal, 1 all, 2 non-numeric), Windows line
# ends, a byte-order mark as Excel writes it.
CSV_DIALECTS = st.fixed_dictionaries({
    "quoting": st.sampled_from((csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC)),
    "lineterminator": st.sampled_from(("\n", "\r\n")),
    "encoding": st.sampled_from(("utf-8", "utf-8-sig")),
})  # fmt: skip
# One more way in per log, besides the six every log gets.
EXTRAS = (
    "csv parts", "csv.gz", "parquet parts", "parquet by duckdb", "csv, engine=pandas",
    "parquet, engine=pandas", "polars, engine=duckdb", "arrow dtypes",
    "arrow dtypes, engine=duckdb",
)  # fmt: skip
DEFECTS = ("negative amount", "missing amount", "missing id", "missing date", "far date",
           "bad text date")  # fmt: skip
# Column names: quoting in SQL (DuckDB and Spark) and in CSV headers.
ID_NAMES = ("customer_id", "Kunde Nr.", "id;x", 'a"b', "ü", "{src}")
DATE_NAMES = ("date", "when", "Datum/Zeit")
AMOUNT_NAMES = ("amount", "value €")
PLAIN_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
START = datetime(1990, 1, 1)
MAX_DAYS = 800

# ------------------------------------------------------------------ strategies

INTEGER_ID = st.one_of(st.integers(0, 50), st.integers(0, 10**18 - 1))
# Text ids never look like a plain integer (a CSV would read those as numbers, by rule).
# Left out, because they disagree: the empty id (a CSV has no empty text: a missing id)
# and a carriage return (DuckDB's sniffer gives up: test_carriage_return_in_a_csv_id).
# A leading apostrophe is in (test_apostrophes_in_csv_ids_are_kept).
_ID_CHARACTER = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")),
    st.sampled_from(list(',;"\t\n |\\#\'')),
)
TEXT_ID = st.one_of(
    st.from_regex(r"-?0[0-9]{1,12}", fullmatch=True),  # "007": leading zeros kept
    st.text(_ID_CHARACTER, min_size=1, max_size=8),
).filter(lambda s: not PLAIN_INTEGER.fullmatch(s))


@dataclass
class Log:
    """A transaction log as the caller's pandas frame, and how to write it."""

    frame: pd.DataFrame
    names: dict[str, str]  # customer_id=, date=, amount=
    wall: list[datetime]  # wall times of the rows without a defect
    ids: list[Any]  # the distinct customer ids drawn
    separator: str
    extra: str
    defect: str | None = None
    date_format: str | None = None  # of text dates
    dialect: dict[str, Any] = field(default_factory=dict)  # to_csv's arguments

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis shows it
        printer.text(repr(self))

    def __repr__(self) -> str:
        columns = {name: self.frame[name].tolist() for name in self.frame.columns}
        dtypes = {name: str(dtype) for name, dtype in self.frame.dtypes.items()}
        return (
            f"Log(columns={columns!r}, dtypes={dtypes!r}, separator={self.separator!r}, "
            f"extra={self.extra!r}, defect={self.defect!r}, date_format={self.date_format!r}, "
            f"dialect={self.dialect!r})"
        )


def _offsets() -> st.SearchStrategy[int]:
    """Seconds after the first purchase: often the same or the next days, else months."""
    return st.one_of(st.integers(0, 3 * 86_400), st.integers(0, MAX_DAYS * 86_400))


def _formatted(wall: datetime, fmt: str, zone: str) -> str:
    if fmt.endswith("%z"):  # as pandas writes a zoned time: "+05:30"
        local = pd.Timestamp(wall).tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
        return local.isoformat(sep=fmt[len("%Y-%m-%d")])
    return wall.strftime(fmt)


def date_format(log: Log, wanted: bool) -> str | None:
    """The ``date_format=`` to pass: the log's when wanted, else None (inferred)."""
    return log.date_format if wanted else None


@st.composite
def logs(
    draw, *, duplicate: bool | None = None, defects: bool = True, extras: tuple = EXTRAS,
    formats: tuple = TEXT_FORMATS,
) -> Log:  # fmt: skip
    """A log of 1 to 30 rows (31 with a duplicate) of at most 6 customers."""
    integer_ids = draw(st.booleans())
    pool = draw(st.lists(INTEGER_ID if integer_ids else TEXT_ID, min_size=1, max_size=6,
                         unique=True))  # fmt: skip
    base = draw(st.datetimes(START, datetime(2028, 10, 1))).replace(microsecond=0)
    rows = draw(st.lists(
        st.tuples(st.integers(0, len(pool) - 1), _offsets(), st.integers(0, 10**6)),
        min_size=1, max_size=30,
    ))  # fmt: skip
    if duplicate if duplicate is not None else draw(st.integers(0, 3)) == 0:
        rows.append(rows[draw(st.integers(0, len(rows) - 1))])
    ids = [pool[k] for k, _, _ in rows]
    moments = [base + timedelta(seconds=s) for _, s, _ in rows]
    whole = draw(st.integers(0, 4)) == 0  # amounts as integers (whole units)
    amounts = [float(c // 100) if whole else c / 100 for _, _, c in rows]

    kind = draw(st.sampled_from(("naive", "zoned", "text")))
    zone = draw(st.sampled_from(ZONES))
    if kind == "zoned":  # instants, shown in the zone: wall times of every kind
        unit = draw(st.sampled_from(UNITS))
        utc = pd.Series(moments, dtype=f"datetime64[{unit}]").dt.tz_localize("UTC")
        dates: pd.Series = utc.dt.tz_convert(zone)
        wall = [t.to_pydatetime() for t in dates.dt.tz_localize(None)]
    else:
        unit = draw(st.sampled_from(UNITS))
        wall = list(moments)
        dates = pd.Series(moments, dtype=f"datetime64[{unit}]")
    fmt = draw(st.sampled_from(formats))
    if kind == "text":
        dates = pd.Series([_formatted(t, fmt, zone) for t in wall], dtype=object)

    defect = draw(st.sampled_from((None,) * 6 + DEFECTS)) if defects else None
    if defect == "far date" and unit == "ns" and kind != "text":
        defect = None  # nanoseconds cannot hold 2263
    if defect == "bad text date" and kind != "text":
        defect = None
    if defect in ("missing id", "missing date") and kind == "text" and (
            fmt not in UNAMBIGUOUS_FORMATS):  # fmt: skip
        defect = None  # test_missing_values_are_reported_before_ambiguous_dates
    bad = draw(st.integers(0, len(rows) - 1))
    valid_wall = list(wall)
    if defect is not None:
        ids, amounts = list(ids), list(amounts)
        if defect == "negative amount":
            amounts[bad] = -amounts[bad] - 0.01
        elif defect == "missing amount":
            amounts[bad] = np.nan
        elif defect == "missing id":
            ids[bad] = None
        else:
            del valid_wall[bad]
            values = dates.tolist()
            if defect == "missing date":
                values[bad] = None
            elif defect == "far date":
                far = datetime(2263, 1, 1, 12)
                values[bad] = _formatted(far, fmt, zone) if kind == "text" else far
            else:
                values[bad] = draw(st.sampled_from(("soon", "2021-02-29 10:00:00", "31/31/2020")))
            if kind == "text":
                dates = pd.Series(values, dtype=object)
            elif kind == "zoned":
                if defect == "far date":  # a wall time of the zone
                    values[bad] = pd.Timestamp(values[bad]).tz_localize(zone)
                dates = pd.Series(values, dtype=f"datetime64[{unit}, {zone}]")
            else:
                dates = pd.Series(values, dtype=f"datetime64[{unit}]")
    names = {
        "customer_id": draw(st.sampled_from(ID_NAMES)),
        "date": draw(st.sampled_from(DATE_NAMES)),
        "amount": draw(st.sampled_from(AMOUNT_NAMES)),
    }
    frame = pd.DataFrame({names["customer_id"]: ids, names["date"]: dates,
                          names["amount"]: amounts})  # fmt: skip
    if whole and defect != "missing amount":
        frame[names["amount"]] = frame[names["amount"]].astype(np.int64)
    separator, dialect = draw(st.sampled_from(SEPARATORS)), draw(CSV_DIALECTS)
    first = names["customer_id"]
    if separator in first:
        dialect["encoding"] = "utf-8"  # test_byte_order_mark_before_a_quoted_column_name
    return Log(
        frame, names, valid_wall, pool, separator, draw(st.sampled_from(extras)), defect,
        fmt if kind == "text" else None, dialect,
    )  # fmt: skip


# --------------------------------------------------------------------- inputs

_FILES = itertools.count()


def csv_frame(frame: pd.DataFrame, date: str) -> pd.DataFrame:
    """The frame as a CSV holds it: naive times as "YYYY-MM-DD HH:MM:SS", zoned ones as
    ISO 8601 with their UTC offset, text as it is."""
    dates = frame[date]
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        text = [None if pd.isna(t) else t.isoformat(sep=" ") for t in dates]
        return frame.assign(**{date: pd.Series(text, index=frame.index, dtype=object)})
    if dates.dtype.kind == "M":
        return frame.assign(**{date: dates.dt.strftime("%Y-%m-%d %H:%M:%S")})
    return frame


def wall_frame(frame: pd.DataFrame, date: str) -> pd.DataFrame:
    """The frame with a zoned date column as its naive local wall times."""
    if isinstance(frame[date].dtype, pd.DatetimeTZDtype):
        return frame.assign(**{date: frame[date].dt.tz_localize(None)})
    return frame


@contextlib.contextmanager
def every_input(log: Log, folder: Path) -> Iterator[dict[str, tuple[Any, dict[str, Any]]]]:
    """Name -> (data, extra keyword arguments) of every input built from ``log``; the
    files are removed afterwards."""
    frame, date = log.frame, log.names["date"]
    stem = folder / f"log-{next(_FILES)}"
    stem.mkdir()
    suffix = ".tsv" if log.separator == "\t" else ".csv"
    text = csv_frame(frame, date)

    def write_csv(part: pd.DataFrame, name: str, compression: str = "") -> str:
        path = stem / (name + suffix + compression)
        text.loc[part.index].to_csv(path, sep=log.separator, index=False, **log.dialect)
        return str(path)

    def write_parquet(part: pd.DataFrame, name: str) -> str:
        path = stem / (name + ".parquet")
        part.to_parquet(path, index=False)
        return str(path)

    csv_path, parquet = write_csv(frame, "log"), write_parquet(frame, "log")
    connection = duckdb.connect()
    inputs: dict[str, tuple[Any, dict[str, Any]]] = {
        "pandas": (frame, {}),
        "polars": (polars.from_pandas(frame), {}),
        f"csv sep={log.separator!r}": (csv_path, {}),
        "parquet": (parquet, {}),
        "duckdb relation": (connection.from_df(wall_frame(frame, date)), {}),
        "pandas, engine=duckdb": (frame, {"engine": "duckdb"}),
    }
    half = (len(frame) + 1) // 2
    parts = [frame.iloc[:half], frame.iloc[half:]] if len(frame) > 1 else [frame]
    if log.extra == "csv parts":
        paths = [write_csv(part, f"part-{k}") for k, part in enumerate(parts)]
        inputs[f"{len(paths)} csv files sep={log.separator!r}"] = (paths, {})
    elif log.extra == "parquet parts":
        for k, part in enumerate(parts):
            write_parquet(part, f"part-{k}")
        inputs["parquet glob"] = (str(stem / "part-*.parquet"), {})
    elif log.extra == "csv.gz":
        inputs[f"csv.gz sep={log.separator!r}"] = (write_csv(frame, "log", ".gz"), {})
    elif log.extra == "parquet by duckdb":
        path = stem / "duckdb.parquet"
        connection.register("log", wall_frame(frame, date))
        connection.execute(f"COPY log TO '{path}' (FORMAT parquet)")
        inputs["parquet by duckdb"] = (str(path), {})
    elif log.extra == "csv, engine=pandas":
        inputs[f"csv sep={log.separator!r}, engine=pandas"] = (csv_path, {"engine": "pandas"})
    elif log.extra == "parquet, engine=pandas":
        inputs["parquet, engine=pandas"] = (parquet, {"engine": "pandas"})
    elif log.extra == "polars, engine=duckdb":
        inputs[log.extra] = (polars.from_pandas(frame), {"engine": "duckdb"})
    else:  # pyarrow-backed pandas columns: string[pyarrow], timestamp[us, tz=...][pyarrow]
        arrow = frame.convert_dtypes(dtype_backend="pyarrow")
        inputs[log.extra] = (arrow, {"engine": "duckdb"} if "duckdb" in log.extra else {})
    try:
        yield inputs
    finally:
        connection.close()
        shutil.rmtree(stem, ignore_errors=True)


# ---------------------------------------------------------------- comparing


@dataclass
class Outcome:
    """A summary, or the message of the InvalidDataError raised; the data warnings."""

    summary: pd.DataFrame | None
    error: str | None
    warned: list[tuple[str, str]]


def normalised(message: str, ids: list[Any]) -> str:
    """The message without the example customer: each engine may name another one."""
    for example in [*ids, None]:
        message = message.replace(f" (e.g. customer {example!r})", "")
    return message


def outcome(call: Callable[[], Any], ids: list[Any],
            collect: Callable[[Any], pd.DataFrame] | None = None) -> Outcome:  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
            if collect is not None:
                result = collect(result)
        except InvalidDataError as error:
            result, message = None, normalised(str(error), ids)
        else:
            message = None
    warned = [(type(w.message).__name__, normalised(str(w.message), ids))
              for w in caught if issubclass(w.category, DataWarning)]  # fmt: skip
    return Outcome(result, message, warned)


def assert_same(expected: Outcome, actual: Outcome, name: str) -> None:
    """``actual`` (from input ``name``) is what the pandas frame gave."""
    if expected.error is not None:
        assert actual.error == expected.error, (
            f"{name}: pandas raised\n  {expected.error}\nbut {name} "
            + (f"raised\n  {actual.error}" if actual.error else "returned a summary")
        )
    else:
        assert actual.error is None, f"{name} raised, pandas did not:\n  {actual.error}"
        got, want = actual.summary, expected.summary
        assert got is not None and want is not None
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, obj=name)
        assert got.index.dtype == want.index.dtype, name
        assert got.index.name == want.index.name, name
        assert got.index.tolist() == want.index.tolist(), name
        assert got.attrs == want.attrs, name
    # the same warnings in the same order (test_warnings_come_in_the_same_order)
    assert actual.warned == expected.warned, name


def assert_all_agree(log: Log, folder: Path, function: Callable[..., Any],
                     **settings: Any) -> Outcome:  # fmt: skip
    """Every input of ``log`` gives what its pandas frame gives; returns that."""
    settings = {**log.names, **settings}
    with every_input(log, folder) as inputs:
        outcomes = {
            name: outcome(lambda data=data, extra=extra: function(data, **settings, **extra),
                          log.ids)
            for name, (data, extra) in inputs.items()
        }  # fmt: skip
    expected = outcomes.pop("pandas")
    for name, actual in outcomes.items():
        assert_same(expected, actual, name)
    return expected


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("engines_agree")


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


# ------------------------------------------------------------------ the tests


@settings(max_examples=50, deadline=None, suppress_health_check=SLOW_HEALTH)
@given(
    log=logs(),
    granularity=st.sampled_from(("D", "D", "W", "h", "M")),
    time_unit=st.sampled_from(("D", "W")),
    end=st.one_of(st.none(), st.integers(-3, 40)),
    after_end=st.sampled_from(("raise", "drop")),
    with_format=st.booleans(),
)
def test_summarize_agrees_on_every_input(folder, log, granularity, time_unit, end, after_end,
                                         with_format):  # fmt: skip
    observation_end = None
    if end is not None and log.wall:  # days after the last valid purchase
        observation_end = _day(max(log.wall) + timedelta(days=end))
    assert_all_agree(
        log, folder, clvmodels.summarize, duplicates="keep", granularity=granularity,
        time_unit=time_unit, observation_end=observation_end, after_end=after_end,
        date_format=date_format(log, with_format),
    )  # fmt: skip


@settings(max_examples=35, deadline=None, suppress_health_check=SLOW_HEALTH)
@given(log=logs(), data=st.data())
def test_calibration_holdout_agrees_on_every_input(folder, log, data):
    if not log.wall:  # the only row is the bad one: the error is all there is to compare
        calibration_end, holdout_end = "2000-01-01", "2001-01-01"
    else:
        first, last = min(log.wall), max(log.wall)
        cut = data.draw(st.datetimes(first, last), label="calibration_end")
        cut = cut.replace(microsecond=0)
        with_time = data.draw(st.booleans(), label="calibration_end with a time")
        calibration_end = str(cut) if with_time else _day(cut)
        days = data.draw(st.integers(1, 400), label="holdout days")
        holdout_end = _day(cut + timedelta(days=days))
    assert_all_agree(
        log, folder, clvmodels.calibration_holdout, duplicates="keep",
        calibration_end=calibration_end, holdout_end=holdout_end, holdout_past_data="allow",
        granularity=data.draw(st.sampled_from(("D", "W", "M")), label="granularity"),
        time_unit=data.draw(st.sampled_from(("D", "W")), label="time_unit"),
        after_end=data.draw(st.sampled_from(("raise", "drop")), label="after_end"),
        date_format=date_format(log, data.draw(st.booleans(), label="with date_format")),
    )  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=SLOW_HEALTH)
@given(
    log=logs(duplicate=True, defects=False, formats=UNAMBIGUOUS_FORMATS),
    duplicates=st.sampled_from(("warn", "drop", "error")),
)  # fmt: skip
def test_duplicates_are_counted_alike(folder, log, duplicates):
    fmt = date_format(log, False)
    expected = assert_all_agree(log, folder, clvmodels.summarize, duplicates=duplicates,
                                date_format=fmt)  # fmt: skip
    # exact duplicates in wall time (two instants of a DST fall-back hour are one)
    typed = read_log(log.frame, **log.names, date_format=fmt, duplicates="keep")
    repeated = int(typed.duplicated().sum())
    assert repeated >= 1
    if duplicates == "error":
        assert expected.error is not None and "are exact duplicates" in expected.error
        return
    assert expected.error is None
    if duplicates == "warn":
        assert [kind for kind, _ in expected.warned] == ["DuplicateRowsWarning"]
        assert expected.warned[0][1].startswith(f"{repeated:,} of {len(log.frame):,} ")
    else:  # dropped: the summary of the log without them
        assert expected.warned == []
        unique = clvmodels.summarize(typed.drop_duplicates(), duplicates="error", **log.names)
        pd.testing.assert_frame_equal(expected.summary, unique)


@st.composite
def day_month_logs(draw) -> tuple[Log, str | None]:
    """A log whose text dates are DD/MM/YYYY (with or without a time of day) with every
    day and month at most 12: day-first or month-first cannot be told. Also returned:
    the format of every date, None when some have a time and some do not."""
    pool = draw(st.lists(TEXT_ID | INTEGER_ID, min_size=1, max_size=4, unique_by=repr))
    pool = [str(i) if isinstance(i, int) else i for i in pool]  # one type: text
    pool = [i for i in pool if not PLAIN_INTEGER.fullmatch(i)] or ["007"]
    day = st.tuples(st.integers(1990, 2030), st.integers(1, 12), st.integers(1, 12),
                    st.integers(0, 86_399))  # fmt: skip
    rows = draw(st.lists(st.tuples(st.integers(0, len(pool) - 1), day, st.integers(0, 10**4)),
                         min_size=1, max_size=20))  # fmt: skip
    # two shapes in one column: the example date (test_ambiguous_date_error_names_...)
    shapes = draw(st.sampled_from((("%d/%m/%Y",), ("%d/%m/%Y %H:%M:%S",),
                                   ("%d/%m/%Y", "%d/%m/%Y %H:%M:%S"))))  # fmt: skip
    formats = [draw(st.sampled_from(shapes)) for _ in rows]
    wall = [datetime(y, m, d) + timedelta(seconds=s if " " in fmt else 0)
            for fmt, (_, (y, m, d, s), _) in zip(formats, rows, strict=True)]  # fmt: skip
    frame = pd.DataFrame({
        "customer_id": [pool[k] for k, _, _ in rows],
        "date": pd.Series([t.strftime(f) for t, f in zip(wall, formats, strict=True)],
                          dtype=object),
        "amount": [c / 100 for _, _, c in rows],
    })  # fmt: skip
    names = {"customer_id": "customer_id", "date": "date", "amount": "amount"}
    separator, extra = draw(st.sampled_from(SEPARATORS)), draw(st.sampled_from(EXTRAS))
    return Log(frame, names, wall, pool, separator, extra), (
        formats[0] if len(set(formats)) == 1 else None
    )


@settings(max_examples=10, deadline=None, suppress_health_check=SLOW_HEALTH)
@given(drawn=day_month_logs())
def test_ambiguous_day_month_dates_are_refused_alike(folder, drawn):
    log, fmt = drawn
    refused = assert_all_agree(log, folder, clvmodels.summarize, duplicates="keep")
    assert refused.error is not None
    assert "could be day/month or month/day" in refused.error
    assert "Pass date_format= ('%d/%m/%Y' or '%m/%d/%Y')" in refused.error
    if fmt is None:  # dates with and without a time: no one format reads them all
        return
    read = assert_all_agree(log, folder, clvmodels.summarize, duplicates="keep",
                            date_format=fmt)  # fmt: skip
    assert read.error is None
    # ... and as if the dates had been datetimes all along
    datetimes = log.frame.assign(date=pd.Series(log.wall, dtype="datetime64[s]"))
    expected = clvmodels.summarize(datetimes, amount="amount", duplicates="keep")
    pd.testing.assert_frame_equal(read.summary, expected, check_exact=False, rtol=1e-12)


# ----------------------------------------------------------------------- Spark

SPARK_ZONE = "Asia/Kolkata"


@pytest.fixture(scope="module")
def spark():
    """A local Spark session in a session time zone that is not UTC (Asia/Kolkata: no
    daylight-saving gaps since 1945, see the note in test_spark_agrees_with_pandas)."""
    pytest.importorskip("pyspark", reason="the Spark test needs pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark test needs Java (java not on PATH, JAVA_HOME not set)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this interpreter
    session = (
        SparkSession.builder.master("local[2]")
        .appName("clvmodels-engines-agree")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", SPARK_ZONE)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.conf.set("spark.sql.session.timeZone", SPARK_ZONE)
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning",
    "ignore::DeprecationWarning:pyspark.*",
)
@settings(max_examples=10, deadline=None, suppress_health_check=SLOW_HEALTH)
@given(log=logs(), calibration=st.booleans(), with_format=st.booleans())
def test_spark_agrees_with_pandas(spark, folder, log, calibration, with_format):
    """A Spark DataFrame of the frame's naive wall times, and the CSV file read by Spark
    (every column text, typed by clvmodels as DuckDB types a CSV), give the pandas
    summary.

    Spark's ``createDataFrame`` reads naive pandas times as wall times of the session
    time zone. In a zone with daylight saving (America/New_York), a wall time in the
    spring gap makes PySpark's Arrow conversion fail, and its fallback then reads *every*
    time in the Python process's local zone: all wall times shift (not a clvmodels
    matter: the summary is that of ``df.toPandas()``, as documented).
    """
    from clvmodels.data.spark_engine import collect_summary

    settings: dict[str, Any] = {**log.names, "date_format": date_format(log, with_format)}
    if calibration and log.wall:
        first, last = min(log.wall), max(log.wall)
        cut = first + (last - first) / 2
        function: Callable[..., Any] = clvmodels.calibration_holdout
        settings.update(calibration_end=str(cut.replace(microsecond=0)),
                        holdout_end=_day(last + timedelta(days=30)),
                        holdout_past_data="allow", duplicates="warn")  # fmt: skip
    else:
        function = clvmodels.summarize
        settings.update(duplicates="warn", granularity="W", time_unit="W")
    expected = outcome(lambda: function(log.frame, **settings), log.ids)
    path = folder / f"spark-{next(_FILES)}.csv"
    csv_frame(log.frame, log.names["date"]).to_csv(path, sep=log.separator, index=False,
                                                   **log.dialect)  # fmt: skip
    inputs = {
        "spark frame": spark.createDataFrame(wall_frame(log.frame, log.names["date"])),
        f"spark csv sep={log.separator!r}": spark.read.csv(
            str(path), header=True, sep=log.separator, quote='"', escape='"', multiLine=True
        ),
    }
    for name, data in inputs.items():
        actual = outcome(lambda data=data: function(data, **settings), log.ids,
                         lambda result: collect_summary(result, log.names["customer_id"]))
        assert_same(expected, actual, name)
    path.unlink()


# ------------------------- each disagreement found, small (strict xfail while open)


def _write_csv(folder: Path, frame: pd.DataFrame, name: str, sep: str = ",") -> str:
    path = folder / name
    frame.to_csv(path, sep=sep, index=False)
    return str(path)


def _log(ids: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ids,
        "date": [f"2020-01-{k + 1:02d} 10:00:00" for k in range(len(ids))],
        "amount": [1.0] * len(ids),
    })  # fmt: skip


@pytest.mark.parametrize("ids", [["'x'", "y"], ["'x", "y'"]])
def test_apostrophes_in_csv_ids_are_kept(folder, ids):
    frame = _log(ids)
    expected = clvmodels.summarize(frame)
    actual = clvmodels.summarize(_write_csv(folder, frame, "apostrophes.csv"))
    assert actual.index.tolist() == expected.index.tolist() == sorted(ids)


@pytest.mark.xfail(strict=True, reason="DuckDB's CSV sniffer cannot read a quoted "
                   "field with a carriage return, which pandas writes")
def test_carriage_return_in_a_csv_id(folder):
    frame = _log(["x\r", "y"])
    actual = clvmodels.summarize(_write_csv(folder, frame, "cr.csv"))
    assert actual.index.tolist() == ["x\r", "y"]


def test_zoned_nanosecond_parquet_is_read(folder):
    frame = pd.DataFrame({
        "customer_id": [1, 2],
        "date": pd.Series(pd.to_datetime(["2020-01-01 23:30", "2020-01-02 01:00"]))
        .dt.tz_localize("Asia/Kolkata").astype("datetime64[ns, Asia/Kolkata]"),
    })  # fmt: skip
    path = folder / "zoned-ns.parquet"
    frame.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(clvmodels.summarize(path), clvmodels.summarize(frame))


def test_ambiguous_date_error_names_the_same_example(folder):
    frame = _log(["a", "b"]).assign(date=["01/02/2020 10:00", "03/04/2021 11:00:00"])
    messages = []
    for data in (frame, _write_csv(folder, frame, "ambiguous.csv")):
        with pytest.raises(InvalidDataError, match="could be day/month") as error:
            clvmodels.summarize(data)
        messages.append(str(error.value))
    assert messages[1] == messages[0]


@pytest.mark.parametrize("past", ["error", "allow"])
def test_calibration_holdout_checks_in_the_same_order(folder, past):
    frame = _log(["a", "b"])
    settings = dict(calibration_end="2019-12-01", holdout_end="2021-01-01",
                    holdout_past_data=past)  # fmt: skip
    outcomes = [outcome(lambda data=data: clvmodels.calibration_holdout(data, **settings),
                        ["a", "b"])
                for data in (frame, _write_csv(folder, frame, "early.csv"))]  # fmt: skip
    assert outcomes[0].error is not None
    assert outcomes[1].error == outcomes[0].error
    assert outcomes[1].warned == outcomes[0].warned


@pytest.mark.parametrize("source", ["relation", "engine=duckdb", "parquet"])
def test_integer_ids_with_text_dates(folder, source):
    frame = pd.DataFrame({"customer_id": [1, 2], "date": ["2020-01-01", "2020-01-02"]})
    expected = clvmodels.summarize(frame)
    path = folder / "integer-ids.parquet"
    frame.to_parquet(path, index=False)
    data, extra = {"relation": (duckdb.from_df(frame), {}),
                   "engine=duckdb": (frame, {"engine": "duckdb"}),
                   "parquet": (path, {})}[source]  # fmt: skip
    pd.testing.assert_frame_equal(clvmodels.summarize(data, **extra), expected)


@pytest.mark.parametrize("kind", ["polars", "pyarrow-backed pandas"])
def test_zoned_arrow_columns_with_engine_duckdb(kind):
    frame = pd.DataFrame({
        "customer_id": [1, 1],
        "date": pd.to_datetime(["2020-01-01 10:00", "2020-01-01 20:00"])
        .tz_localize("America/New_York"),
    })  # fmt: skip
    expected = clvmodels.summarize(frame)  # one day in New York, two in UTC
    assert expected["frequency"].tolist() == [0]
    data = (polars.from_pandas(frame) if kind == "polars"
            else frame.convert_dtypes(dtype_backend="pyarrow"))  # fmt: skip
    assert clvmodels.summarize(data).equals(expected)  # the pandas engine keeps wall times
    actual = clvmodels.summarize(data, engine="duckdb")
    pd.testing.assert_frame_equal(actual, expected)


@pytest.mark.parametrize(("dates", "given"), [
    (pd.to_datetime(["2020-01-01", None]), None),  # missing dates: SQL does not advise
    (["2020-01-01", "soon"], "%Y-%m-%d"),  # SQL advises what was given
])  # fmt: skip
def test_bad_dates_get_the_same_advice(folder, dates, given):
    frame = pd.DataFrame({"customer_id": [1, 2], "date": dates})
    messages = []
    for data in (frame, _write_csv(folder, frame, "bad-date.csv")):
        with pytest.raises(InvalidDataError, match=r"have a missing date|not dates") as error:
            clvmodels.summarize(data, date_format=given)
        messages.append(str(error.value))
    assert messages[1] == messages[0]


def test_calibration_holdout_checks_data_before_settings(folder):
    frame = _log(["a", "b"]).assign(amount=[1.0, np.nan])
    settings = dict(calibration_end="2020-01-01", holdout_end="2020-01-02", granularity="W",
                    amount="amount")  # fmt: skip
    outcomes = [outcome(lambda data=data: clvmodels.calibration_holdout(data, **settings),
                        ["a", "b"])
                for data in (frame, _write_csv(folder, frame, "nan.csv"))]  # fmt: skip
    assert outcomes[0].error is not None and "missing (NaN)" in outcomes[0].error
    assert outcomes[1].error == outcomes[0].error


@pytest.mark.parametrize("duplicates", ["warn", "drop"])
def test_duplicates_of_files_loaded_by_pandas_are_counted(folder, duplicates):
    frame = _log(["a", "b", "b"]).assign(date=["2020-01-01", "2020-01-02", "2020-01-02"])
    path = _write_csv(folder, frame, "duplicates.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        expected = clvmodels.summarize(frame, amount="amount", duplicates=duplicates)
        actual = clvmodels.summarize(path, amount="amount", duplicates=duplicates,
                                     engine="pandas")  # fmt: skip
    assert expected.attrs["clvmodels_rows"]["duplicate_rows"] == 1
    assert actual.attrs == expected.attrs


def test_day_month_errors_count_the_same_dates(folder):
    frame = _log(["a", "b"]).assign(date=["01/02/2020", "01/02/2020"])
    messages = []
    for data in (frame, _write_csv(folder, frame, "repeated.csv")):
        with pytest.raises(InvalidDataError, match="could be day/month") as error:
            clvmodels.summarize(data)
        messages.append(str(error.value))
    assert messages[1] == messages[0]


def test_warnings_come_in_the_same_order(folder):
    frame = _log(["a", "a"]).assign(date="2020-01-01")
    settings = dict(amount="amount", observation_end="2020-03-01")
    outcomes = [outcome(lambda data=data: clvmodels.summarize(data, **settings), ["a"])
                for data in (frame, _write_csv(folder, frame, "order.csv"))]  # fmt: skip
    assert sorted(outcomes[1].warned) == sorted(outcomes[0].warned)
    assert [kind for kind, _ in outcomes[0].warned] == ["DuplicateRowsWarning",
                                                         "EndDateWarning"]  # fmt: skip
    assert outcomes[1].warned == outcomes[0].warned


@pytest.mark.parametrize("source", ["parquet", "relation", "engine=duckdb"])
def test_a_date_column_of_nulls_only(folder, source):
    frame = pd.DataFrame({"customer_id": ["a", "b"], "date": pd.Series([None, None], dtype=object)})
    path = folder / "nulls.parquet"
    frame.to_parquet(path, index=False)
    data, extra = {"parquet": (path, {}), "relation": (duckdb.from_df(frame), {}),
                   "engine=duckdb": (frame, {"engine": "duckdb"})}[source]  # fmt: skip
    with pytest.raises(InvalidDataError, match="2 of 2 rows have a missing date"):
        clvmodels.summarize(data, **extra)


@pytest.mark.parametrize("name", [
    pytest.param("id;x", marks=pytest.mark.xfail(
        strict=True, reason="DuckDB's sniffer reads the header as one column when a "
        "byte-order mark precedes a quoted first name holding the separator")),
    'a"b',
])  # fmt: skip
def test_byte_order_mark_before_a_quoted_column_name(folder, name):
    frame = pd.DataFrame({name: [1, 2], "date": ["2020-01-01", "2020-01-02"]})
    path = folder / "bom.csv"
    frame.to_csv(path, sep=";", index=False, encoding="utf-8-sig")  # as Excel saves
    pd.testing.assert_frame_equal(clvmodels.summarize(path, customer_id=name),
                                  clvmodels.summarize(frame, customer_id=name))


@pytest.mark.xfail(strict=True, reason="SQL engines infer the date format while planning, "
                   "before the data checks: ambiguous dates are reported before missing "
                   "ids and dates")
@pytest.mark.parametrize("source", ["csv", "engine=duckdb"])
@pytest.mark.parametrize(("ids", "dates", "message"), [
    ([None, "a"], ["01/02/2020", "01/02/2020"], "rows have no customer id"),
    (["a", "b"], [None, "01/02/2020"], "rows have a missing date"),
])  # fmt: skip
def test_missing_values_are_reported_before_ambiguous_dates(folder, source, ids, dates,
                                                            message):  # fmt: skip
    frame = pd.DataFrame({"customer_id": ids, "date": pd.Series(dates, dtype=object)})
    data, extra = {"csv": (_write_csv(folder, frame, "missing-first.csv"), {}),
                   "engine=duckdb": (frame, {"engine": "duckdb"})}[source]  # fmt: skip
    with pytest.raises(InvalidDataError, match=message):
        clvmodels.summarize(frame)
    with pytest.raises(InvalidDataError, match=message):
        clvmodels.summarize(data, **extra)


def test_a_callers_attrs_are_not_taken_for_counts():
    frame = _log(["a", "b"])
    frame.attrs["duplicate_rows"] = 7  # the caller's own bookkeeping
    summary = clvmodels.summarize(frame, amount="amount")
    assert summary.attrs["clvmodels_rows"]["duplicate_rows"] == 0

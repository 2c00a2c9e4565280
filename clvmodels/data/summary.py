"""Per-customer summaries of transaction logs: the statistics every BTYD model consumes.

The semantics live here and nowhere else. An engine (pandas below; DuckDB and Spark
later) only has to produce, per customer, the :class:`CustomerAggregates` of the
transactions it is given; :func:`finalize` turns those into the published quantities:

* transactions are grouped into windows of ``granularity`` (one calendar day by
  default): several purchases in one window count as one transaction whose value is
  their sum, and whose time is the window's start;
* ``frequency`` is the number of windows with a purchase after the first one (repeat
  transactions); ``recency`` the time from the first to the last window; ``T`` the time
  from the first window to the window of the observation end; all measured in
  ``time_unit`` (see :mod:`clvmodels.data.timeunits`);
* ``monetary_value`` is the mean value of the repeat transactions: the first purchase is
  excluded (Fader, Hardie & Lee 2005, "RFM and CLV", section on monetary value; Fader &
  Hardie 2013, Gamma-Gamma note), and it is 0 for customers without repeat purchases;
* end dates are inclusive and cut the raw purchase times, not the windows: an end
  without a time of day (``"1997-09-30"``, a ``datetime.date``, or midnight) means
  through the end of that day (a transaction counts when it is before the next
  midnight), an end with a time of day (``"1997-09-30 15:00"``) counts transactions at
  or before that instant. This is the calibration period 1997-01-01 .. 1997-09-30 of
  the CDNOW papers. ``T`` and ``duration_holdout`` are still measured between window
  starts: to the start of the window that contains the end;
* times are local wall time: tz-aware datetimes and strings with UTC offsets keep their
  own local time of day (23:00 in New York on January 1 is January 1, even in a column
  whose strings carry several offsets), and they must lie within 1678-01-01 ..
  2262-04-11, the range of int64 nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._validation import (
    as_pandas,
    bad_rows_error,
    require_columns,
    require_numeric,
    validate_summary,
)
from ..exceptions import InvalidDataError
from .timeunits import NS_PER_DAY, Granularity, parse_granularity, time_unit_nanoseconds

__all__ = ["calibration_holdout", "compress", "summarize"]

AfterEnd = Literal["raise", "drop"]
_NAT = np.iinfo(np.int64).min
# Representable times: int64 ns since the epoch. The lower bound is rounded up to a year
# so that the start of any window (up to a calendar year) of a valid time is valid too.
_MIN_NS = int(pd.Timestamp("1678-01-01").value)
_MAX_NS = int(pd.Timestamp.max.value)
_DATE_RANGE = "1678-01-01 .. 2262-04-11"
_UNIT_NS = {"D": NS_PER_DAY, "h": 3_600 * 10**9, "m": 60 * 10**9, "s": 10**9,
            "ms": 10**6, "us": 10**3, "ns": 1}  # fmt: skip


@dataclass
class Transactions:
    """Validated transactions as plain arrays, one element per row.

    ``codes`` index into ``customers`` (the sorted distinct customer ids), ``time_ns``
    is the raw timestamp (int64 ns since the epoch) and ``window`` the number of its
    granularity window (see :meth:`Granularity.index`).
    """

    customers: pd.Index
    codes: np.ndarray
    time_ns: np.ndarray
    window: np.ndarray
    amount: np.ndarray | None
    granularity: Granularity
    date_column: str = "date"

    def subset(self, mask: np.ndarray) -> Transactions:
        return Transactions(
            self.customers,
            self.codes[mask],
            self.time_ns[mask],
            self.window[mask],
            None if self.amount is None else self.amount[mask],
            self.granularity,
            self.date_column,
        )

    def row_ids(self) -> np.ndarray:
        """Customer id of each row, for error messages."""
        return self.customers.take(self.codes)


@dataclass
class CustomerAggregates:
    """What an engine computes per customer; everything else follows from it.

    Arrays are aligned with ``customers``. ``n_windows`` is 0 for a customer without
    transactions in the rows aggregated.
    """

    customers: pd.Index
    n_windows: np.ndarray
    first_window_ns: np.ndarray
    last_window_ns: np.ndarray
    total_amount: np.ndarray | None = None
    first_window_amount: np.ndarray | None = None
    first_time_ns: np.ndarray | None = None
    last_time_ns: np.ndarray | None = None


# --------------------------------------------------------------------------- parsing


def _customer_codes(series: pd.Series, column: str) -> tuple[np.ndarray, pd.Index]:
    missing = series.isna().to_numpy()
    if missing.any():
        position = int(np.argmax(missing))
        raise InvalidDataError(
            f"column '{column}': {int(missing.sum()):,} of {len(series):,} rows have no "
            f"customer id (first at row {position}). Drop them or fill in the id."
        )
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:  # ids of mixed types cannot be sorted; keep first-seen order
        codes, uniques = pd.factorize(series, sort=False)
    return codes.astype(np.int64, copy=False), pd.Index(uniques, name=column)


def _dates_to_ns(series: pd.Series, column: str, ids: Any, date_format: str | None) -> np.ndarray:
    """Timestamps as int64 ns since the epoch, in local wall time.

    tz-aware times (numpy or pyarrow backed) and strings with UTC offsets keep their own
    local time of day; times outside the int64 ns range are an error, not a wrap-around.
    """
    fix = (
        "Fix or drop these rows"
        + ("" if date_format else ", or pass date_format= (e.g. '%Y-%m-%d')")
        + "."
    )
    missing = series.isna().to_numpy()
    if missing.any():
        raise bad_rows_error(column, missing, ids, "have a missing date (NaT/None)", fix)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            if date_format is None:
                raise InvalidDataError(
                    f"column '{column}' holds numbers ({series.dtype}), not dates. Pass "
                    "date_format= (e.g. '%Y%m%d' for 19970101) or convert it with "
                    "pandas.to_datetime."
                )
            series = series.astype(str)
        parsed = _parse_dates(series, date_format, column)
        bad = parsed.isna().to_numpy()
        if bad.any():
            raise bad_rows_error(column, bad, ids, "are not dates that can be parsed", fix)
    ns, outside = _datetimes_to_ns(_wall_time(parsed))
    if outside.any():
        raise bad_rows_error(
            column, outside, ids, f"are outside {_DATE_RANGE}, the dates that can be used",
            "Placeholder dates such as 9999-12-31 or 0001-01-01 are not purchase times: "
            "fix or drop these rows.",
        )  # fmt: skip
    return ns


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
    lowest, highest = -(-_MIN_NS // factor), _MAX_NS // factor
    outside = (raw < lowest) | (raw > highest)
    if outside.any():
        return raw, outside
    return raw * np.int64(factor), outside


def _parse_dates(series: pd.Series, date_format: str | None, column: str) -> pd.Series:
    """Parse strings to naive local wall times; unparseable ones become NaT."""
    series = _strip_object_timezones(series)
    # ISO 8601 first, so that "2024-01-01" and "2024-01-01 09:30" mix; then pandas'
    # inference from the first value (e.g. "01/31/2024"), whichever reads more rows.
    formats = [date_format] if date_format else ["ISO8601", None]
    best = None
    for fmt in formats:
        try:
            parsed = _to_local_datetime(series, fmt)
        except (ValueError, TypeError):
            continue
        if best is None or parsed.isna().sum() < best.isna().sum():
            best = parsed
        if not best.isna().any():
            break
    if best is None:
        raise InvalidDataError(
            f"column '{column}' cannot be read as dates. Convert it with pandas.to_datetime "
            "or pass date_format=."
        )
    return best


def _strip_object_timezones(series: pd.Series) -> pd.Series:
    """Python datetimes with time zones -> their local wall time, each its own zone.

    pandas would turn a mix of zones into NaT; the caller's series is not modified.
    """
    if series.dtype != object or pd.api.types.infer_dtype(series, skipna=True) != "datetime":
        return series
    if all(getattr(v, "tzinfo", None) is None for v in series):
        return series
    return series.map(lambda v: v.replace(tzinfo=None) if v.tzinfo is not None else v)


# A trailing UTC offset ("Z", "+05:30", "-0400"); only used to group strings.
_OFFSET = r"(Z|[+-]\d{2}:?\d{2})\s*$"


def _to_local_datetime(series: pd.Series, fmt: str | None) -> pd.Series:
    """``pandas.to_datetime`` in local wall time, also when UTC offsets differ by row."""
    try:
        return _naive(pd.to_datetime(series, format=fmt, errors="coerce"))
    except (ValueError, TypeError):  # several UTC offsets, e.g. across a DST change
        pass
    # Parse the strings of each offset together, so that each keeps its own local time
    # (pandas would convert them all to UTC); values it still cannot mix one by one.
    plain = series.reset_index(drop=True)
    keys = plain.astype(str).str.extract(_OFFSET, expand=False).fillna("").to_numpy()
    parts = []
    for key in pd.unique(keys):
        group = plain[keys == key]
        try:
            parts.append(_naive(pd.to_datetime(group, format=fmt, errors="coerce")))
        except (ValueError, TypeError):
            parsed = {value: _parse_one(value, fmt) for value in pd.unique(group)}
            parts.append(pd.to_datetime(group.map(parsed)))
    result = pd.concat(parts).sort_index()
    result.index = series.index
    return result


def _parse_one(value: Any, fmt: str | None) -> pd.Timestamp:
    try:
        stamp = pd.to_datetime(value, format=fmt)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if stamp is pd.NaT:
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _naive(parsed: pd.Series) -> pd.Series:
    return parsed.dt.tz_localize(None) if isinstance(parsed.dtype, pd.DatetimeTZDtype) else parsed


def _amounts(series: pd.Series, column: str, ids: Any) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype) or (
        series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "boolean"
    ):
        raise InvalidDataError(
            f"column '{column}' is boolean (dtype {series.dtype}), not purchase values. "
            "Pass the column with the amounts as amount=, or convert it to numbers "
            "explicitly if True/False really are 1/0."
        )
    if not pd.api.types.is_numeric_dtype(series.dtype):
        numeric = pd.to_numeric(series, errors="coerce")
        bad = (numeric.isna() & series.notna()).to_numpy()
        if bad.any():
            raise bad_rows_error(
                column, bad, ids, "are not numbers",
                "Clean the column (e.g. remove currency symbols) and convert it with "
                "pandas.to_numeric.",
            )
        series = numeric
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    checks = (
        (np.isnan(values), "are missing (NaN)", "Fill or drop them; zero is allowed."),
        (np.isinf(values), "are infinite", "Fix or drop them."),
        (
            values < 0,
            "are negative",
            "Refunds and returns are not purchases: net them out or drop them first.",
        ),
    )
    for mask, problem, fix in checks:
        if mask.any():
            raise bad_rows_error(column, mask, ids, problem, fix)
    return values


@dataclass(frozen=True)
class EndDate:
    """An inclusive end date as given, and the last instant it includes.

    ``last_ns`` (int64 ns since the epoch, local wall time) is the end of the day for a
    date without a time of day, else the instant itself; ``label`` is its normalised
    text ("1997-09-30" or "1997-09-30 15:00:00"), which parses back to the same end.
    """

    given: Any
    last_ns: int
    label: str


def parse_end(value: Any, name: str) -> EndDate:
    """Read an end date (``observation_end``, ``calibration_end``, ...).

    Only real dates are accepted: strings, ``datetime``/``date`` objects, numpy
    datetime64 and pandas Timestamps; not numbers, and not relative words such as
    ``"now"`` or ``"today"``, which would make the result depend on when it is run.
    tz-aware values keep their local wall time, like the transaction times.
    """
    how = (
        "Use a date such as '1997-09-30' (through the end of that day), a date and time, "
        "a datetime or a pandas Timestamp."
    )
    if value is None or isinstance(value, (bool, int, float, np.bool_, np.number)):
        raise InvalidDataError(f"{name}={value!r} is not a date. {how}")
    if isinstance(value, str) and not any(ch.isdigit() for ch in value):
        raise InvalidDataError(
            f"{name}={value!r} is not a date; relative words such as 'now' or 'today' are "
            f"not accepted, so that a summary can be reproduced. {how}"
        )
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise InvalidDataError(f"{name}={value!r} is not a date. {how}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    try:
        start_ns = int(stamp.as_unit("ns").value)
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        start_ns = _NAT
    if not _MIN_NS <= start_ns <= _MAX_NS:
        raise InvalidDataError(
            f"{name}={value!r} is outside {_DATE_RANGE}, the dates that can be used. Pass "
            "the real end of the period (not a placeholder such as 9999-12-31)."
        )
    if stamp == stamp.normalize():
        return EndDate(value, min(start_ns + NS_PER_DAY - 1, _MAX_NS), stamp.strftime("%Y-%m-%d"))
    return EndDate(value, start_ns, str(stamp))


def _check_after_end(after_end: Any) -> None:
    if not (isinstance(after_end, str) and after_end in ("raise", "drop")):
        raise InvalidDataError(f"after_end={after_end!r}: use 'raise' or 'drop'.")


def prepare_transactions(
    transactions: Any,
    *,
    customer_id: str,
    date: str,
    amount: str | None,
    granularity: str,
    date_format: str | None,
) -> Transactions:
    """Validate a transaction log and reduce it to arrays (the caller's frame is only read)."""
    columns = [customer_id, date] + ([amount] if amount is not None else [])
    frame = as_pandas(transactions, columns, "transactions")
    if len(frame) == 0:
        raise InvalidDataError(
            "transactions are empty: there are no rows to summarise. Check the filter "
            "or the file that produced them."
        )
    window = parse_granularity(granularity)
    codes, customers = _customer_codes(frame[customer_id], customer_id)
    row_ids = _LazyIds(customers, codes)
    time_ns = _dates_to_ns(frame[date], date, row_ids, date_format)
    values = _amounts(frame[amount], amount, row_ids) if amount is not None else None
    return Transactions(
        customers, codes, time_ns, window.index(time_ns), values, window, str(date)
    )


class _LazyIds:
    """Row -> customer id, computed only for the row an error message shows."""

    def __init__(self, customers: pd.Index, codes: np.ndarray) -> None:
        self._customers, self._codes = customers, codes

    def __getitem__(self, position: int) -> Any:
        return self._customers[self._codes[position]]


# --------------------------------------------------------------------- aggregation


def aggregate(tx: Transactions, *, with_amount: bool) -> CustomerAggregates:
    """Per-customer aggregates of ``tx`` with numpy: the in-memory engine.

    Cost: one sort of an int64 (customer, window) key, to count distinct windows, plus
    a few linear passes; no hashing of the rows.
    """
    n_customers = len(tx.customers)
    n_windows = np.zeros(n_customers, dtype=np.int64)
    first = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_customers, np.iinfo(np.int64).min, dtype=np.int64)
    result = CustomerAggregates(
        tx.customers, n_windows, np.full(n_customers, _NAT), np.full(n_customers, _NAT)
    )
    if len(tx.codes) == 0:
        if with_amount:
            result.total_amount = np.zeros(n_customers)
            result.first_window_amount = np.zeros(n_customers)
            result.first_time_ns = np.full(n_customers, _NAT)
            result.last_time_ns = np.full(n_customers, _NAT)
        return result
    np.minimum.at(first, tx.codes, tx.window)
    np.maximum.at(last, tx.codes, tx.window)
    present = np.zeros(n_customers, dtype=bool)
    present[tx.codes] = True

    lowest = int(tx.window.min())
    span = int(tx.window.max()) - lowest + 1
    if n_customers * span < 2**62:
        key = np.sort(tx.codes * span + (tx.window - lowest))
        new_pair = np.empty(len(key), dtype=bool)
        new_pair[0] = True
        np.not_equal(key[1:], key[:-1], out=new_pair[1:])
        n_windows += np.bincount(key[new_pair] // span, minlength=n_customers)
    else:  # windows too fine to pack with the customer into one int64: sort pairs
        pairs = pd.MultiIndex.from_arrays([tx.codes, tx.window]).unique()
        n_windows += np.bincount(pairs.get_level_values(0), minlength=n_customers)
    result.first_window_ns[present] = tx.granularity.start_ns(first[present])
    result.last_window_ns[present] = tx.granularity.start_ns(last[present])
    if not with_amount:
        return result

    amount = tx.amount if tx.amount is not None else np.zeros(len(tx.codes))
    result.total_amount = np.bincount(tx.codes, weights=amount, minlength=n_customers)
    in_first = tx.window == first[tx.codes]
    result.first_window_amount = np.bincount(
        tx.codes[in_first], weights=amount[in_first], minlength=n_customers
    )
    first_time = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last_time = np.full(n_customers, _NAT, dtype=np.int64)
    np.minimum.at(first_time, tx.codes, tx.time_ns)
    np.maximum.at(last_time, tx.codes, tx.time_ns)
    first_time[~present] = _NAT
    result.first_time_ns, result.last_time_ns = first_time, last_time
    return result


def finalize(
    agg: CustomerAggregates,
    *,
    end_window_ns: int,
    unit_ns: float,
    with_amount: bool,
    suffix: str = "",
) -> pd.DataFrame:
    """The published summary columns from per-customer aggregates (one definition)."""
    frequency = agg.n_windows - 1
    data: dict[str, Any] = {
        "frequency": frequency.astype(np.int64),
        "recency": _elapsed(agg.first_window_ns, agg.last_window_ns, unit_ns),
        "T": _elapsed(agg.first_window_ns, np.int64(end_window_ns), unit_ns),
    }
    if with_amount:
        repeat_total = agg.total_amount - agg.first_window_amount
        data["monetary_value"] = np.divide(
            repeat_total, frequency, out=np.zeros(len(frequency)), where=frequency > 0
        )
        data["n_purchases"] = agg.n_windows.astype(np.int64)
        data["total_amount"] = agg.total_amount
        data["first_purchase"] = agg.first_time_ns.view("datetime64[ns]")
        data["last_purchase"] = agg.last_time_ns.view("datetime64[ns]")
    frame = pd.DataFrame(data, index=agg.customers, copy=False)  # fresh arrays: no copy
    if suffix:
        frame = frame.add_suffix(suffix)
    return frame


def _elapsed(start_ns: np.ndarray, end_ns: Any, unit_ns: float) -> np.ndarray:
    """``(end_ns - start_ns) / unit_ns`` without int64 overflow for spans over 292 years."""
    start_ns, end_ns = np.asarray(start_ns), np.asarray(end_ns)
    if start_ns.size == 0 or int(end_ns.max()) - int(start_ns.min()) <= _MAX_NS:
        return (end_ns - start_ns) / unit_ns
    # Whole days and the remainder separately: both differences fit in int64.
    days = end_ns // NS_PER_DAY - start_ns // NS_PER_DAY
    rest = end_ns % NS_PER_DAY - start_ns % NS_PER_DAY
    return days / (unit_ns / NS_PER_DAY) + rest / unit_ns


# ------------------------------------------------------------------------- public


def _split_after(tx: Transactions, end: EndDate, name: str, after_end: AfterEnd) -> Transactions:
    """The transactions at or before ``end`` (raw times); the others raise or are dropped."""
    after = tx.time_ns > end.last_ns
    if not after.any():
        return tx
    if after_end == "drop":
        return tx.subset(~after)
    raise bad_rows_error(
        tx.date_column, after, tx.row_ids(), f"are after {name}={end.given!r}",
        f"Pass a later {name}, filter the transactions, or pass after_end='drop' to "
        "ignore them.",
    )


def _window_of(granularity: Granularity, ns: int) -> int:
    return int(granularity.index(np.array([ns], dtype=np.int64))[0])


def _time_label(ns: int) -> str:
    """Normalised text of an instant: the date alone at midnight (see :class:`EndDate`)."""
    stamp = pd.Timestamp(ns)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)


def _metadata(**settings: Any) -> dict[str, Any]:
    return {"clvmodels": {k: (str(v) if v is not None else None) for k, v in settings.items()}}


def summarize(
    transactions: Any,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    observation_end: Any = None,
    time_unit: str = "D",
    granularity: str = "D",
    date_format: str | None = None,
    after_end: AfterEnd = "raise",
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> Any:
    """Summarise a transaction log into one row per customer.

    Parameters
    ----------
    transactions : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        One row per purchase. Only read, never modified. A pandas or polars DataFrame;
        CSV or Parquet files (``"sales/2024-*.parquet"``, or a list of paths), read by
        DuckDB out of core; a ``duckdb.DuckDBPyRelation``; or a PySpark DataFrame
        (summarised in Spark; the result is then a PySpark DataFrame).
    customer_id, date : str
        Names of the customer id and purchase time columns. Dates may be datetimes
        (tz-aware ones keep their local wall time), ``datetime.date`` objects or strings.
    amount : str, optional
        Name of the (non-negative) purchase value column; adds ``monetary_value`` and the
        historical columns.
    observation_end : date-like, optional
        End of observation, inclusive: a date means through the end of that day, a date
        and time that instant (see the module docstring). Defaults to the latest
        transaction. ``T`` runs to the start of the window that contains it.
    time_unit : str, default "D"
        Unit of ``recency`` and ``T``: "D", "W", "M" (30.4375 days), "Y" (365.25 days),
        or a multiple such as "7D". See :mod:`clvmodels.data.timeunits`.
    granularity : str, default "D"
        Window within which several purchases count as one: a calendar day by
        default; "h", "W" (calendar week from Monday), "M" (calendar month), ...
    date_format : str, optional
        ``strptime`` format of string (or integer, e.g. 19970131) dates.
    after_end : {"raise", "drop"}, default "raise"
        What to do with transactions after ``observation_end`` (checked first, even
        when there are none).
    engine : {"auto", "pandas", "duckdb", "spark"}, default "auto"
        Who computes: "auto" keeps DataFrames in memory (pandas), sends files and DuckDB
        relations to DuckDB and PySpark DataFrames to Spark. "duckdb" on a DataFrame
        scans it with DuckDB; "pandas" on a file loads it first. Every engine gives the
        same summary (amount sums agree to rounding).
    engine_options : dict, optional
        DuckDB: ``memory_limit`` (default ``"750MB"``; e.g. ``"4GB"`` or ``"80%"`` of
        RAM; beyond it DuckDB spills to disk), ``temp_directory`` (where it spills;
        default the system's temporary folder) and ``threads``. See
        ``docs/scaling.md``.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted), with ``frequency`` (repeat transactions),
        ``recency`` and ``T``; with ``amount`` also ``monetary_value`` (mean of the
        repeat transactions, 0 when there are none), ``n_purchases`` (transactions,
        i.e. windows with a purchase, first included), ``total_amount`` (all
        purchases), ``first_purchase`` and ``last_purchase`` (raw timestamps).
        ``frame.attrs["clvmodels"]`` records the settings, ``observation_end`` as its
        normalised text ("2024-01-29" for the whole day, else date and time; by default
        that of the latest transaction).

    Raises
    ------
    InvalidDataError
        Missing columns, empty input, missing or unparseable dates, dates outside
        1678-01-01 .. 2262-04-11, NaN, negative or boolean amounts, transactions after
        ``observation_end``, an ``observation_end`` that is not a date.

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "date": ["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"],
    ...     "amount": [10.0, 5.0, 20.0, 7.0],
    ... })
    >>> clvmodels.summarize(tx, amount="amount", observation_end="2024-01-29",
    ...                     time_unit="W")[["frequency", "recency", "T", "monetary_value"]]
                 frequency  recency    T  monetary_value
    customer_id                                         
    a                    1      2.0  4.0            20.0
    b                    0      0.0  3.0             0.0
    """  # noqa: W291
    _check_after_end(after_end)
    unit_ns = time_unit_nanoseconds(time_unit)
    settings = dict(
        customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
        granularity=granularity, date_format=date_format, after_end=after_end,
    )  # fmt: skip
    transactions, sql_engine = _engine_input(
        transactions, engine, engine_options, [customer_id, date, amount]
    )
    if sql_engine is not None:
        return _run_sql(sql_engine, transactions, engine_options, "summarize_sql",
                        observation_end=observation_end, **settings)  # fmt: skip
    end = None if observation_end is None else parse_end(observation_end, "observation_end")
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=granularity, date_format=date_format,
    )  # fmt: skip
    if end is None:
        last_ns = int(tx.time_ns.max())
        end = EndDate(None, last_ns, _time_label(last_ns))
    else:
        tx = cut_at_observation_end(tx, end, observation_end, after_end)
    end_ns = int(tx.granularity.start_ns(_window_of(tx.granularity, end.last_ns)))
    agg = aggregate(tx, with_amount=amount is not None)
    summary = finalize(agg, end_window_ns=end_ns, unit_ns=unit_ns, with_amount=amount is not None)
    summary.attrs.update(
        _metadata(time_unit=time_unit, granularity=granularity, observation_end=end.label)
    )
    return summary


def cut_at_observation_end(
    tx: Transactions, end: EndDate, observation_end: Any, after_end: AfterEnd
) -> Transactions:
    """The transactions through ``end`` (``after_end`` says what to do with later
    ones), customer codes renumbered over those left; none left is an error."""
    kept = _split_after(tx, end, "observation_end", after_end)
    if len(kept.codes) == 0:
        raise InvalidDataError(
            f"no transactions on or before observation_end={observation_end!r}; "
            "check the date."
        )
    if len(kept.codes) < len(tx.codes):
        kept.customers, kept.codes = _recode(kept.customers, kept.codes)
    return kept


def acquired_by_calibration_end(
    tx: Transactions, in_calibration: np.ndarray, calibration_end: Any
) -> Transactions:
    """The transactions of customers with a purchase in the calibration period
    (``in_calibration`` marks its rows), codes renumbered in sorted id order."""
    if not in_calibration.any():
        raise InvalidDataError(
            f"no transactions on or before calibration_end={calibration_end!r}; check "
            "the date."
        )
    acquired = np.zeros(len(tx.customers), dtype=bool)
    acquired[tx.codes[in_calibration]] = True
    tx = tx.subset(acquired[tx.codes])
    tx.customers, tx.codes = _recode(tx.customers, tx.codes)
    return tx


def _recode(customers: pd.Index, codes: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """Drop customers left without rows, keeping the sorted order."""
    used = np.zeros(len(customers), dtype=bool)
    used[codes] = True
    new_position = np.cumsum(used) - 1
    return customers[used], new_position[codes]


def calibration_holdout(
    transactions: Any,
    *,
    calibration_end: Any,
    holdout_end: Any,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    time_unit: str = "D",
    granularity: str = "D",
    date_format: str | None = None,
    after_end: AfterEnd = "raise",
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> Any:
    """Split a transaction log into a calibration summary and holdout outcomes.

    Both end dates are inclusive and cut the raw purchase times (see the module
    docstring): the calibration period holds the transactions up to ``calibration_end``
    (a date: through the end of that day; a date and time: up to that instant), the
    holdout those after it up to ``holdout_end``, like the CDNOW papers (1997-01-01 ..
    1997-09-30 and 1997-10-01 .. 1998-06-30). With weekly or monthly windows a window
    can thus straddle ``calibration_end``; its purchases still go to the period they
    belong to. Only customers whose first purchase falls in the calibration period are
    kept.

    Parameters
    ----------
    transactions : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        One row per purchase; only read. As in :func:`summarize`.
    calibration_end, holdout_end : date-like
        Ends of the two periods; ``calibration_end`` must be earlier, and in an earlier
        window of ``granularity``. ``T_cal`` and ``duration_holdout`` are measured
        between the starts of the windows that contain them (and the first purchase).
    customer_id, date, amount, time_unit, granularity, date_format, after_end
        As in :func:`summarize`; ``after_end`` applies to transactions after
        ``holdout_end``.
    engine, engine_options
        As in :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`summarize` suffixed ``_cal`` (``frequency_cal``,
        ``recency_cal``, ``T_cal``, ...), plus ``frequency_holdout`` (transactions in
        the holdout, each window counted once), ``duration_holdout`` (in
        ``time_unit``) and, with ``amount``, ``monetary_value_holdout`` (mean value
        of the holdout transactions, 0 when there are none).
        ``frame.attrs["clvmodels"]`` records the settings, the ends as normalised text.

    Examples
    --------
    >>> import clvmodels
    >>> tx = clvmodels.datasets.load_cdnow()
    >>> frame = clvmodels.calibration_holdout(
    ...     tx, calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")
    >>> len(frame), int(frame["frequency_holdout"].sum())
    (2357, 1882)
    """
    _check_after_end(after_end)
    unit_ns = time_unit_nanoseconds(time_unit)
    transactions, sql_engine = _engine_input(
        transactions, engine, engine_options, [customer_id, date, amount]
    )
    if sql_engine is not None:
        return _run_sql(
            sql_engine, transactions, engine_options, "calibration_holdout_sql",
            calibration_end=calibration_end, holdout_end=holdout_end,
            customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
            granularity=granularity, date_format=date_format, after_end=after_end,
        )  # fmt: skip
    cal, hold = parse_period_ends(calibration_end, holdout_end)
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=granularity, date_format=date_format,
    )  # fmt: skip
    cal_window, hold_window = period_windows(cal, hold, tx.granularity, granularity)
    tx = _split_after(tx, hold, "holdout_end", after_end)
    in_calibration = tx.time_ns <= cal.last_ns
    tx = acquired_by_calibration_end(tx, in_calibration, calibration_end)
    in_calibration = tx.time_ns <= cal.last_ns

    with_amount = amount is not None
    cal_end_ns, hold_end_ns = (
        int(v) for v in tx.granularity.start_ns([cal_window, hold_window])
    )
    calibration = finalize(
        aggregate(tx.subset(in_calibration), with_amount=with_amount),
        end_window_ns=cal_end_ns, unit_ns=unit_ns, with_amount=with_amount, suffix="_cal",
    )  # fmt: skip
    holdout = aggregate(tx.subset(~in_calibration), with_amount=with_amount)
    calibration["frequency_holdout"] = holdout.n_windows.astype(np.int64)
    if with_amount:
        calibration["monetary_value_holdout"] = np.divide(
            holdout.total_amount, holdout.n_windows,
            out=np.zeros(len(holdout.n_windows)), where=holdout.n_windows > 0,
        )  # fmt: skip
    calibration["duration_holdout"] = (hold_end_ns - cal_end_ns) / unit_ns
    calibration.attrs.update(
        _metadata(
            time_unit=time_unit, granularity=granularity,
            calibration_end=cal.label, holdout_end=hold.label,
        )
    )  # fmt: skip
    return calibration


def _engine_input(
    data: Any, engine: str, options: dict[str, Any] | None, columns: list[Any]
) -> tuple[Any, str | None]:
    """``(data, None)`` for the pandas engine (files loaded first when it is asked
    for), else ``(data, "duckdb" | "spark")``."""
    from .duckdb_engine import is_path_like
    from .engines import is_duckdb_relation, read_with_duckdb, resolve_engine

    chosen = resolve_engine(data, engine)
    if chosen == "pandas":
        if is_path_like(data) or is_duckdb_relation(data):
            wanted = [c for c in columns if c is not None]
            return read_with_duckdb(data, wanted, options), None
        return data, None
    return data, chosen


def _run_sql(engine: str, data: Any, options: dict[str, Any] | None, function: str,
             **settings: Any) -> Any:  # fmt: skip
    if engine == "spark":
        from . import spark_engine

        return getattr(spark_engine, function)(data, options, **settings)
    from . import _sql
    from .engines import open_duckdb

    planner = {"summarize_sql": _sql.plan_summary,
               "calibration_holdout_sql": _sql.plan_calibration_holdout}[function]  # fmt: skip
    with open_duckdb(data, options) as source:
        plan = planner(source, **settings)
        rows = source.fetch(plan.sql)
    # Closing the connection first returns DuckDB's buffers (about 1.5 GB at 100M rows)
    # before the pandas frame is built: the peak is the larger of the two, not their sum.
    return plan.publish(rows)


def parse_period_ends(calibration_end: Any, holdout_end: Any) -> tuple[EndDate, EndDate]:
    """The calibration and holdout ends; the first must be earlier."""
    cal = parse_end(calibration_end, "calibration_end")
    hold = parse_end(holdout_end, "holdout_end")
    if cal.last_ns >= hold.last_ns:
        raise InvalidDataError(
            f"calibration_end={calibration_end!r} is not before holdout_end="
            f"{holdout_end!r}; the holdout period would be empty. Pass a calibration_end "
            "earlier than holdout_end."
        )
    return cal, hold


def period_windows(
    cal: EndDate, hold: EndDate, window: Granularity, granularity: str
) -> tuple[int, int]:
    """Numbers of the windows that contain the two ends; the holdout must not be empty."""
    cal_window = _window_of(window, cal.last_ns)
    hold_window = _window_of(window, hold.last_ns)
    if cal_window >= hold_window:
        raise InvalidDataError(
            f"calibration_end={cal.given!r} is not before holdout_end={hold.given!r} at "
            f"granularity {granularity!r}: both fall in the same window, so the holdout "
            "period would have length 0. Pass a calibration_end in an earlier window, or a "
            "finer granularity."
        )
    return cal_window, hold_window


_PATTERN_COLUMNS = (
    "frequency", "recency", "T", "n_periods", "frequency_cal", "recency_cal", "T_cal",
)  # fmt: skip


def compress(
    summary: Any,
    columns: str | list[str] | None = None,
    *,
    weight: str = "weight",
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Collapse identical customers into patterns with a ``weight`` (their count).

    Every likelihood in clvmodels is a sum over customers of a function of these
    columns, so a model fitted on the compressed frame (with its weights) is the same
    as one fitted on all customers, at a cost that grows with distinct patterns.

    Parameters
    ----------
    summary : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        Per-customer summary (from :func:`summarize` or :func:`calibration_holdout`),
        or an already compressed frame, whose ``weight`` column is then summed. In
        files, relations and Spark, the patterns are grouped by the engine and only
        they are collected.
    columns : str or list of str, optional
        Column(s) that define a pattern; by default those of ``frequency``, ``recency``,
        ``T``, ``n_periods`` (or their ``_cal`` forms) present in ``summary``. These
        must be numeric.
    weight : str, default "weight"
        Name of the weight column (read if present, written in the result).
    engine, engine_options
        As in :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        One row per distinct pattern, sorted, with the pattern columns and ``weight``
        (int64 when counting customers or summing whole-number weights, else float64).

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> s = pd.DataFrame({"frequency": [0, 0, 2], "recency": [0.0, 0.0, 3.0],
    ...                   "T": [5.0, 5.0, 5.0]})
    >>> clvmodels.compress(s).to_numpy().tolist()
    [[0.0, 0.0, 5.0, 2.0], [2.0, 3.0, 5.0, 1.0]]
    """
    if isinstance(columns, str):
        columns = [columns]
    elif columns is not None:
        columns = list(columns)
    summary, sql_engine = _engine_input(summary, engine, engine_options, [])
    if sql_engine == "spark":
        from .spark_engine import compress_spark

        return compress_spark(summary, columns, weight)
    if sql_engine is not None:
        from ._sql import compress_sql
        from .engines import open_duckdb

        with open_duckdb(summary, engine_options) as source:
            return compress_sql(source, columns, weight)
    hint = "Name the pattern columns with columns= and the weight column with weight=."
    if not isinstance(summary, pd.DataFrame):
        present = list(getattr(summary, "columns", []))
        wanted = [c for c in _PATTERN_COLUMNS if c in present] if columns is None else columns
        extra = [weight] if weight in present else []
        summary = as_pandas(summary, wanted + extra, "summary", hint=hint)
    if columns is None:
        columns = [c for c in _PATTERN_COLUMNS if c in summary.columns]
        if not columns:
            raise InvalidDataError(
                "compress: none of the columns frequency, recency, T, n_periods (or their "
                "_cal forms) is in the summary; name the pattern columns with columns=."
            )
    require_columns(summary.columns, columns, "summary", hint=hint)
    for column in columns:
        if column in _PATTERN_COLUMNS:
            require_numeric(summary, column, "summary")
    for suffix in ("", "_cal"):
        names = [f"frequency{suffix}", f"recency{suffix}", f"T{suffix}"]
        if all(n in columns for n in names):
            validate_summary(summary, frequency=names[0], recency=names[1], T=names[2])
    for column in columns:
        values = summary[column]
        if values.isna().any():
            raise bad_rows_error(
                column, values.isna().to_numpy(), summary.index, "are missing (NaN)",
                "Drop or fill them before compressing.",
            )  # fmt: skip
    patterns = summary[columns].reset_index(drop=True)  # a new frame: the caller's is kept
    if weight in summary.columns:
        require_columns(summary.columns, [weight], "summary", hint=hint)
        try:
            weights = summary[weight].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise InvalidDataError(
                f"column {weight!r} of the summary is not numeric (dtype "
                f"{summary[weight].dtype}). Convert it with pandas.to_numeric."
            ) from None
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            raise bad_rows_error(
                weight, bad, summary.index, "are negative, NaN or infinite",
                "Weights count customers: fix or drop these rows.",
            )  # fmt: skip
        if np.all(weights == np.floor(weights)) and weights.max(initial=0.0) < 2.0**63:
            patterns[weight] = weights.astype(np.int64)
        else:
            patterns[weight] = weights
        grouped = patterns.groupby(columns, sort=True)[weight].sum()
    else:
        grouped = patterns.groupby(columns, sort=True).size().astype(np.int64)
    result = grouped.rename(weight).reset_index()
    result.index.name = "pattern"
    result.attrs.update(summary.attrs)
    return result

"""The summary semantics, written once: what every engine's numbers mean.

An engine (the numpy one in :func:`aggregate`; DuckDB and Spark in
:mod:`clvmodels.data._sql`) only has to produce, per customer, the
:class:`CustomerAggregates` of the transactions it is given; :func:`finalize` turns
those into the published quantities:

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
* times are local wall time (see :mod:`clvmodels.data.dates`) and must lie within
  1678-01-01 .. 2262-04-11, the range of int64 nanoseconds.

This module reads no input: :mod:`clvmodels.data.reader` turns any input into
:class:`Transactions`, and :mod:`clvmodels.data.summary` is the public API above both.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._validation import bad_rows_error
from ..exceptions import DuplicateRowsWarning, EndDateWarning, InvalidDataError
from .dates import DATE_RANGE, MAX_NS, MIN_NS
from .timeunits import NS_PER_DAY, Granularity

AfterEnd = Literal["raise", "drop"]
#: the summary columns that define a pattern, when compress is not told
PATTERN_COLUMNS = (
    "frequency", "recency", "T", "n_periods", "frequency_cal", "recency_cal", "T_cal",
)  # fmt: skip
NAT = np.iinfo(np.int64).min


_TEXT = pd.Index(["text"]).dtype  # pandas' default for text ("str" in pandas 3, else object)


def canonical_index(values: Any, name: str) -> pd.Index:
    """Customer ids as an Index of one dtype per kind, whoever read them: int64 for
    integers, float64 for other numbers, pandas' default string dtype for text."""
    index = pd.Index(values)
    dtype = index.dtype
    if pd.api.types.is_bool_dtype(dtype):
        pass
    elif pd.api.types.is_integer_dtype(dtype):
        if not (pd.api.types.is_unsigned_integer_dtype(dtype) and len(index)
                and index.max() > np.iinfo(np.int64).max):  # fmt: skip
            index = index.astype(np.int64)
    elif pd.api.types.is_float_dtype(dtype):
        index = index.astype(np.float64)
    elif pd.api.types.is_string_dtype(dtype) and dtype != _TEXT:
        index = index.astype(_TEXT)
    return index.rename(name)


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
    duplicate_rows: int = 0  # exact duplicates found by the reader
    dropped_rows: int = 0  # of them, removed (duplicates="drop")
    order: Any = None  # the rows' TimeOrder when the reader sorted them (not subsets)

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
        start_ns = NAT
    if not MIN_NS <= start_ns <= MAX_NS:
        raise InvalidDataError(
            f"{name}={value!r} is outside {DATE_RANGE}, the dates that can be used. Pass "
            "the real end of the period (not a placeholder such as 9999-12-31)."
        )
    if stamp == stamp.normalize():
        return EndDate(value, min(start_ns + NS_PER_DAY - 1, MAX_NS), stamp.strftime("%Y-%m-%d"))
    return EndDate(value, start_ns, str(stamp))


def check_after_end(after_end: Any) -> None:
    if not (isinstance(after_end, str) and after_end in ("raise", "drop")):
        raise InvalidDataError(f"after_end={after_end!r}: use 'raise' or 'drop'.")


@dataclass(frozen=True)
class TimeOrder:
    """The rows sorted by customer and time, packed into one int64 each:
    ``code * span + (time_ns - origin) // resolution``.

    One sort serves both the duplicate check (rows equal in customer and time are
    neighbours) and the count of distinct windows (a customer's windows then come in
    order). ``resolution`` divides every window's length and ``origin``, so a packed
    time falls in the window of the time it stands for; ``exact`` says it is that time
    (no time is finer than ``resolution``).
    """

    sorted_key: np.ndarray
    span: int
    origin: int
    resolution: int
    exact: bool

    def key(self, codes: np.ndarray, time_ns: np.ndarray) -> np.ndarray:
        """The packed key of rows in their own order."""
        return codes * self.span + (time_ns // self.resolution - self.origin // self.resolution)

    def codes(self) -> np.ndarray:
        return self.sorted_key // self.span

    def times(self) -> np.ndarray:
        return (self.sorted_key % self.span) * self.resolution + self.origin


_UNITS = (1, 10**3, 10**6, 10**9)  # ns, us, ms, s


def time_order(
    codes: np.ndarray, time_ns: np.ndarray, granularity: Granularity
) -> TimeOrder | None:
    """:class:`TimeOrder` of the rows at the finest resolution that packs with the
    customers into one int64 (and divides the windows of ``granularity``), or None."""
    if len(codes) == 0:
        return None
    low, high = int(time_ns.min()), int(time_ns.max())
    exact_unit = 1
    for unit in reversed(_UNITS):  # the coarsest unit that every time is a multiple of
        if unit == 1 or not (time_ns % unit).any():
            exact_unit = unit
            break
    window = granularity.width_ns if granularity.kind == "fixed" else NS_PER_DAY
    n_codes = int(codes.max()) + 1
    for unit in _UNITS:
        if unit < exact_unit or window % unit:
            continue
        origin = low // unit * unit
        span = (high - origin) // unit + 1
        if n_codes * span < 2**62:
            order = TimeOrder(np.empty(0, dtype=np.int64), span, origin, unit, unit == exact_unit)
            return TimeOrder(np.sort(order.key(codes, time_ns)), span, origin, unit,
                             unit == exact_unit)  # fmt: skip
    return None


def aggregate(
    tx: Transactions, *, with_amount: bool, order: TimeOrder | None = None
) -> CustomerAggregates:
    """Per-customer aggregates of ``tx`` with numpy: the in-memory engine.

    Cost: one sort of a packed int64 (customer, time) key (``order``, when the caller
    has it already, e.g. from the duplicate check), then linear passes: a customer's
    first and last rows are the ends of its run in that order, and a new window starts
    wherever the customer or the window changes. No hashing of the rows.
    """
    n_customers = len(tx.customers)
    result = CustomerAggregates(
        tx.customers, np.zeros(n_customers, dtype=np.int64), np.full(n_customers, NAT),
        np.full(n_customers, NAT),
    )  # fmt: skip
    if len(tx.codes) == 0:
        if with_amount:
            result.total_amount = np.zeros(n_customers)
            result.first_window_amount = np.zeros(n_customers)
            result.first_time_ns = np.full(n_customers, NAT)
            result.last_time_ns = np.full(n_customers, NAT)
        return result
    order = order if order is not None else time_order(tx.codes, tx.time_ns, tx.granularity)
    if order is None:  # customer and time do not pack into one int64
        return _aggregate_by_window(tx, result, with_amount)
    codes, times = order.codes(), order.times()
    windows = tx.granularity.index(times)
    starts = np.empty(len(codes), dtype=bool)  # first row of a customer's run
    starts[0] = True
    np.not_equal(codes[1:], codes[:-1], out=starts[1:])
    ends = np.empty(len(codes), dtype=bool)
    ends[-1] = True
    ends[:-1] = starts[1:]
    new_window = starts.copy()
    new_window[1:] |= windows[1:] != windows[:-1]
    result.n_windows += np.bincount(codes[new_window], minlength=n_customers)
    present = codes[starts]
    first_window = np.zeros(n_customers, dtype=np.int64)
    first_window[present] = windows[starts]
    result.first_window_ns[present] = tx.granularity.start_ns(windows[starts])
    result.last_window_ns[present] = tx.granularity.start_ns(windows[ends])
    if not with_amount:
        return result

    _add_amounts(tx, result, first_window)
    if order.exact:  # the ends of each customer's run
        result.first_time_ns = np.full(n_customers, NAT, dtype=np.int64)
        result.last_time_ns = np.full(n_customers, NAT, dtype=np.int64)
        result.first_time_ns[present] = times[starts]
        result.last_time_ns[present] = times[ends]
    else:  # packed times are rounded: the raw ones, customer by customer
        _add_raw_time_bounds(tx, result)
    return result


def _add_amounts(tx: Transactions, result: CustomerAggregates, first_window: np.ndarray) -> None:
    """Each customer's total amount and the amount of its first window."""
    n_customers = len(tx.customers)
    amount = tx.amount if tx.amount is not None else np.zeros(len(tx.codes))
    result.total_amount = np.bincount(tx.codes, weights=amount, minlength=n_customers)
    in_first = tx.window == first_window[tx.codes]
    result.first_window_amount = np.bincount(
        tx.codes[in_first], weights=amount[in_first], minlength=n_customers
    )


def _add_raw_time_bounds(tx: Transactions, result: CustomerAggregates) -> None:
    """Each customer's first and last raw time (NaT for customers without rows)."""
    n_customers = len(tx.customers)
    first_time = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last_time = np.full(n_customers, NAT, dtype=np.int64)
    np.minimum.at(first_time, tx.codes, tx.time_ns)
    np.maximum.at(last_time, tx.codes, tx.time_ns)
    first_time[result.n_windows == 0] = NAT
    result.first_time_ns, result.last_time_ns = first_time, last_time


def _aggregate_by_window(
    tx: Transactions, result: CustomerAggregates, with_amount: bool
) -> CustomerAggregates:
    """:func:`aggregate` through one sort of a packed (customer, window) key, for times
    too fine to pack with the customer (microseconds over years): first and last
    times by ``ufunc.at`` instead of the ends of sorted runs."""
    n_customers = len(tx.customers)
    first = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_customers, np.iinfo(np.int64).min, dtype=np.int64)
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
        result.n_windows += np.bincount(key[new_pair] // span, minlength=n_customers)
    else:  # windows too fine to pack with the customer into one int64: sort pairs
        pairs = pd.MultiIndex.from_arrays([tx.codes, tx.window]).unique()
        result.n_windows += np.bincount(pairs.get_level_values(0), minlength=n_customers)
    result.first_window_ns[present] = tx.granularity.start_ns(first[present])
    result.last_window_ns[present] = tx.granularity.start_ns(last[present])
    if with_amount:
        _add_amounts(tx, result, first)
        _add_raw_time_bounds(tx, result)
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
    if start_ns.size == 0 or int(end_ns.max()) - int(start_ns.min()) <= MAX_NS:
        return (end_ns - start_ns) / unit_ns
    # Whole days and the remainder separately: both differences fit in int64.
    days = end_ns // NS_PER_DAY - start_ns // NS_PER_DAY
    rest = end_ns % NS_PER_DAY - start_ns % NS_PER_DAY
    return days / (unit_ns / NS_PER_DAY) + rest / unit_ns


def split_after(tx: Transactions, end: EndDate, name: str, after_end: AfterEnd) -> Transactions:
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


def window_of(granularity: Granularity, ns: int) -> int:
    return int(granularity.index(np.array([ns], dtype=np.int64))[0])


def time_label(ns: int) -> str:
    """Normalised text of an instant: the date alone at midnight (see :class:`EndDate`)."""
    stamp = pd.Timestamp(ns)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)


def row_counts(rows: int, duplicates_found: int, duplicates: str, after_end: int) -> dict:
    """``attrs["clvmodels_rows"]`` of a summary: the rows read, the exact duplicates
    found (and dropped) and the rows left out after the end date."""
    return {"clvmodels_rows": {
        "rows_read": int(rows), "duplicate_rows": int(duplicates_found),
        "duplicates_dropped": int(duplicates_found) if duplicates == "drop" else 0,
        "rows_after_end": int(after_end),
    }}  # fmt: skip


def summary_metadata(**settings: Any) -> dict[str, Any]:
    return {"clvmodels": {k: (str(v) if v is not None else None) for k, v in settings.items()}}


def cut_at_observation_end(
    tx: Transactions, end: EndDate, observation_end: Any, after_end: AfterEnd
) -> Transactions:
    """The transactions through ``end`` (``after_end`` says what to do with later
    ones), customer codes renumbered over those left; none left is an error."""
    kept = split_after(tx, end, "observation_end", after_end)
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
    cal_window = window_of(window, cal.last_ns)
    hold_window = window_of(window, hold.last_ns)
    if cal_window >= hold_window:
        raise InvalidDataError(
            f"calibration_end={cal.given!r} is not before holdout_end={hold.given!r} at "
            f"granularity {granularity!r}: both fall in the same window, so the holdout "
            "period would have length 0. Pass a calibration_end in an earlier window, or a "
            "finer granularity."
        )
    return cal_window, hold_window


# ------------------------------------------------------------ ends after the data

#: an end date this long after the last transaction is normal (a weekly export, today)
END_SLACK_NS = 7 * NS_PER_DAY
#: a holdout may run past the last transaction by this share of its length (or a day)
HOLDOUT_SLACK = 0.05
HoldoutPastData = Literal["error", "allow"]


def _day(ns: int) -> str:
    return pd.Timestamp(ns).strftime("%Y-%m-%d")


def _days_after(end: EndDate, last_ns: int) -> int:
    """Whole calendar days from the day of the last transaction to the end's day."""
    return int(end.last_ns // NS_PER_DAY - last_ns // NS_PER_DAY)


def warn_if_end_after_data(name: str, end: EndDate, first_ns: int, last_ns: int) -> None:
    """An :class:`~clvmodels.exceptions.EndDateWarning` when ``end`` lies more than a
    week, and more than 2 % of the observed span, after the day of the last
    transaction."""
    gap = _days_after(end, last_ns) * NS_PER_DAY
    if gap <= max(END_SLACK_NS, 0.02 * (end.last_ns - first_ns)):
        return
    warnings.warn(
        f"{name}={end.label} is {gap / NS_PER_DAY:,.0f} days after the last transaction "
        f"of the log ({_day(last_ns)}): that time counts as inactivity of every "
        f"customer, which was never observed. Pass {name}={_day(last_ns)!r} (or the "
        "real end of the export) unless no customer bought anything since.",
        EndDateWarning,
        stacklevel=4,
    )


def check_holdout_within_data(
    cal: EndDate, hold: EndDate, first_ns: int, last_ns: int, holdout_past_data: str
) -> None:
    """A holdout that runs past the last transaction by more than a day and more than
    5 % of its length is an error (``holdout_past_data="error"``) or a warning
    (``"allow"``); a calibration period past the data gets the warning of
    :func:`warn_if_end_after_data`."""
    if holdout_past_data not in ("error", "allow"):
        raise InvalidDataError(
            f"holdout_past_data={holdout_past_data!r}: use 'error' or 'allow'."
        )
    beyond = _days_after(hold, last_ns) * NS_PER_DAY
    length = hold.last_ns - cal.last_ns
    if beyond <= max(NS_PER_DAY, HOLDOUT_SLACK * length):
        return
    share = min(beyond / length, 1.0)
    message = (
        f"holdout_end={hold.label} is {beyond / NS_PER_DAY:,.0f} days after the last "
        f"transaction of the log ({_day(last_ns)}): {share:.0%} of the holdout period has "
        "no data, so every customer would be scored on inactivity that was never "
        f"observed. Pass holdout_end={_day(last_ns)!r} (or earlier)"
    )
    if holdout_past_data == "error":
        raise InvalidDataError(
            message + ", or holdout_past_data='allow' if the log is complete and nobody "
            "bought anything after it."
        )
    warnings.warn(message + ".", EndDateWarning, stacklevel=4)
    if cal.last_ns > last_ns:
        warn_if_end_after_data("calibration_end", cal, first_ns, last_ns)


# ------------------------------------------------------------------ duplicates

Duplicates = Literal["warn", "keep", "drop", "error"]
DUPLICATE_CHOICES = ("warn", "keep", "drop", "error")


def check_duplicates_choice(duplicates: Any) -> None:
    if not (isinstance(duplicates, str) and duplicates in DUPLICATE_CHOICES):
        raise InvalidDataError(
            f"duplicates={duplicates!r}: use 'warn' (keep them, with a warning), 'keep', "
            "'drop' or 'error'."
        )


def duplicate_message(count: int, total: int, column: str, example: Any) -> str:
    where = "" if example is None else f" (e.g. customer {example!r})"
    return (
        f"{count:,} of {total:,} transactions are exact duplicates of another row (same "
        f"{column}, time and amount){where}; a log exported twice doubles every "
        "customer's spend. Pass duplicates='drop' to remove them, 'keep' if they are "
        "real repeat purchases, or 'error' to refuse such data."
    )


def handle_duplicates(
    count: int, total: int, column: str, example: Any, duplicates: str
) -> None:
    """Warn about or refuse ``count`` duplicate rows, as ``duplicates`` says."""
    if count == 0 or duplicates in ("keep", "drop"):
        return
    message = duplicate_message(count, total, column, example)
    if duplicates == "error":
        raise InvalidDataError(message)
    warnings.warn(message, DuplicateRowsWarning, stacklevel=4)

"""Time-varying covariates: each customer's covariate path and the covariates at their
purchases, from a transaction log and a long covariate table.

The table has one row per period: ``date`` (the start of the period), the covariates,
and ``customer_id`` unless the covariates are the same for every customer (contextual
factors such as a campaign calendar). A row applies from its date until the next row's
date of the same customer; rows may be at most 1.1 time units apart (calendar months
with ``time_unit="M"`` are), and the last row applies for one time unit. Each customer
needs rows from their first purchase to the end of the time a model is asked about (the
calibration end for fitting, the end of the horizon for predictions); the first
customer and period without values are named in the error.

Times follow the summaries (:mod:`clvmodels.data.semantics`): a customer's clock starts
at the start of their first purchase's granularity window, and a repeat purchase counts
at the start of its window, so the path and the purchases line up with ``frequency``,
``recency`` and ``T`` of :func:`clvmodels.calibration_holdout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._validation import require_columns
from ..exceptions import InvalidDataError
from .dates import dates_to_ns
from .reader import prepare_transactions
from .semantics import parse_end, window_of
from .summary import calibration_holdout, summarize
from .timeunits import time_unit_nanoseconds

__all__ = ["CovariateHistory", "CovariateRows", "Segments", "covariate_history",
           "read_covariate_rows"]

# how errors name the customer of a table common to every customer
_ALL = "(all customers)"
# The largest spacing of two rows of one customer, in time units, before the time
# between them counts as missing.
_MAX_SPACING = 1.1


class Segments(NamedTuple):
    """Each customer's time cut into pieces of constant covariates (customers in order,
    pieces in time order): ``customer`` (row of the customer), ``start``, ``end``
    (model time units since their first purchase; contiguous from 0), ``z`` (pieces x
    purchase covariates) and ``w`` (pieces x dropout covariates)."""

    customer: np.ndarray
    start: np.ndarray
    end: np.ndarray
    z: np.ndarray
    w: np.ndarray


@dataclass
class CovariateHistory:
    """Customers' summaries with their time-varying covariates (made by
    :func:`covariate_history`; a model's ``fit`` and predictions read it).

    ``frame`` is the per-customer summary (as :func:`clvmodels.calibration_holdout` or
    :func:`clvmodels.summarize` make it); the rest are arrays in its row order.
    """

    frame: pd.DataFrame
    columns: tuple[str, ...]
    time_unit: str
    origin_ns: np.ndarray  # each customer's clock start (their first window)
    row_customer: np.ndarray  # covariate rows: customer (row of frame), sorted by time
    row_start_ns: np.ndarray
    row_end_ns: np.ndarray
    row_values: np.ndarray  # rows x columns
    purchase_values: np.ndarray  # customers x columns: sum over repeat purchases
    common: bool = False  # one table for every customer (then paths differ by origin only)

    @property
    def T(self) -> np.ndarray:
        column = "T_cal" if "T_cal" in self.frame.columns else "T"
        return self.frame[column].to_numpy(dtype=np.float64)

    def column_moments(self, name: str) -> tuple[float, float]:
        """Mean and standard deviation of a covariate over the table's rows."""
        values = self.row_values[:, self.columns.index(name)]
        return float(values.mean()), float(values.std())

    def purchase_sum(self, names: Sequence[str]) -> np.ndarray:
        """customers x len(names): the covariates summed over each customer's repeat
        purchases of the calibration period."""
        return self.purchase_values[:, [self.columns.index(n) for n in names]]

    def segments(self, purchase: Sequence[str], dropout: Sequence[str],
                 until: np.ndarray, what: str = "the fit") -> Segments:  # fmt: skip
        """The pieces of every customer from 0 to ``until`` (model units, per customer),
        consecutive periods with the same values of these covariates merged."""
        unit = time_unit_nanoseconds(self.time_unit)
        end_ns = self.origin_ns + np.round(np.asarray(until, dtype=np.float64) * unit)
        owner = self.row_customer
        keep = (self.row_end_ns > self.origin_ns[owner]) & (self.row_start_ns < end_ns[owner])
        self._check_coverage(keep, end_ns, what)
        owner = owner[keep]
        start = (np.maximum(self.row_start_ns[keep], self.origin_ns[owner])
                 - self.origin_ns[owner]) / unit  # fmt: skip
        values = self.row_values[keep]
        z = values[:, [self.columns.index(c) for c in purchase]]
        w = values[:, [self.columns.index(c) for c in dropout]]
        # merge a piece into the previous one when the customer and every value agree
        both = np.concatenate([z, w], axis=1)
        same = np.r_[False, (owner[1:] == owner[:-1]) & np.all(both[1:] == both[:-1], axis=1)]
        first = ~same
        owner, start, z, w = owner[first], start[first], z[first], w[first]
        last = np.r_[owner[1:] != owner[:-1], True]
        end = np.empty_like(start)
        end[:-1] = start[1:]
        end[last] = np.maximum(np.asarray(until, dtype=np.float64)[owner[last]], start[last])
        return Segments(owner, start, end, z, w)

    def _check_coverage(self, keep: np.ndarray, end_ns: np.ndarray, what: str) -> None:
        n = len(self.frame)
        owner = self.row_customer[keep]
        first_start = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(first_start, owner, self.row_start_ns[keep])
        last_end = np.full(n, np.iinfo(np.int64).min)
        np.maximum.at(last_end, owner, self.row_end_ns[keep])
        late = first_start > self.origin_ns
        if late.any():
            i = int(np.argmax(late))
            raise InvalidDataError(
                f"covariates: customer {_label(self.frame.index[i])!r} has no covariate "
                f"values for the period starting {_day(self.origin_ns[i])} (their first "
                f"purchase); {int(late.sum()):,} customers lack rows from their first "
                "purchase on. Give every customer rows from the period of their first "
                "purchase."
            )
        short = last_end < end_ns
        if short.any():
            i = int(np.argmax(short))
            raise InvalidDataError(
                f"covariates: customer {_label(self.frame.index[i])!r} has no covariate "
                f"values for the period starting {_day(last_end[i])}, which {what} needs "
                f"(through {_day(end_ns[i])}); {int(short.sum()):,} customers lack them. "
                "Extend the covariate table to the end of the period predicted."
            )


def covariate_history(
    transactions: Any,
    covariates: pd.DataFrame,
    *,
    calibration_end: Any,
    holdout_end: Any = None,
    time_unit: str = "W",
    granularity: str = "D",
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    covariate_date: str = "date",
    date_format: str | None = None,
    duplicates: str = "warn",
    after_end: str = "raise",
    holdout_past_data: str = "error",
) -> CovariateHistory:
    """Customers' summaries with their time-varying covariates, for the Pareto/NBD model
    with time-varying covariates (Bachmann, Meierer & Näf 2021).

    Parameters
    ----------
    transactions : DataFrame or path
        The transaction log, read as by :func:`clvmodels.calibration_holdout`.
    covariates : pandas.DataFrame
        One row per period: ``covariate_date`` (the period's start), the covariates
        (numbers), and ``customer_id`` unless they are common to every customer.
    calibration_end, holdout_end, time_unit, granularity, customer_id, date, amount,
    date_format, duplicates
        As for :func:`clvmodels.calibration_holdout` (without ``holdout_end``: as
        :func:`clvmodels.summarize` with ``observation_end=calibration_end``).
    after_end : {"raise", "drop"}, default "raise"
        What to do with transactions after the last end date, as
        :func:`clvmodels.summarize` and :func:`clvmodels.calibration_holdout` do.
    holdout_past_data : str, default "error"
        As for :func:`clvmodels.calibration_holdout`.
    covariate_date : str, default "date"
        The date column of ``covariates``.

    Returns
    -------
    CovariateHistory

    Examples
    --------
    >>> import clvmodels, pandas as pd
    >>> log = clvmodels.datasets.load_cdnow()
    >>> weeks = pd.date_range("1996-12-30", "1998-07-06", freq="7D")
    >>> table = pd.DataFrame({"date": weeks, "promotion": (weeks.month == 12) * 1.0})
    >>> history = clvmodels.covariate_history(log, table, calibration_end="1997-09-30",
    ...                                       time_unit="W", duplicates="keep",
    ...                                       after_end="drop")
    >>> len(history.frame), history.columns
    (2357, ('promotion',))
    """
    common = {"time_unit": time_unit, "granularity": granularity, "customer_id": customer_id,
              "date": date, "amount": amount, "date_format": date_format,
              "duplicates": duplicates}  # fmt: skip
    if holdout_end is None:
        frame = summarize(transactions, observation_end=calibration_end,
                          after_end=after_end, **common)  # fmt: skip
    else:
        frame = calibration_holdout(transactions, calibration_end=calibration_end,
                                    holdout_end=holdout_end, after_end=after_end,
                                    holdout_past_data=holdout_past_data, **common)  # fmt: skip
    tx = prepare_transactions(transactions, customer_id=customer_id, date=date, amount=None,
                              granularity=granularity, date_format=date_format,
                              duplicates="keep")  # fmt: skip
    window = tx.granularity
    cal_window = window_of(window, parse_end(calibration_end, "calibration_end").last_ns)
    rows = tx.window <= cal_window
    codes, windows = tx.codes[rows], tx.window[rows]
    first = np.full(len(tx.customers), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, windows)
    position = pd.Index(tx.customers).get_indexer(frame.index)
    if np.any(position < 0):
        raise InvalidDataError("covariate_history: the summary and the log disagree on customers.")
    origin = window.start_ns(first[position]).astype(np.int64)
    rows = read_covariate_rows(covariates, frame.index, customer_id=customer_id,
                               covariate_date=covariate_date, time_unit=time_unit)  # fmt: skip
    columns, row_customer, row_start, row_end, row_values = rows.for_customers(len(frame))
    # repeat purchases: distinct windows after each customer's first (calibration only)
    pairs = np.unique(np.stack([codes, windows]), axis=1)
    repeat = pairs[1] > first[pairs[0]]
    row_of_code = np.full(len(tx.customers), -1)
    row_of_code[position] = np.arange(len(frame))
    buyer = row_of_code[pairs[0][repeat]]
    times = window.start_ns(pairs[1][repeat]).astype(np.int64)
    purchase = _values_at(row_customer, row_start, row_end, row_values, buyer, times,
                          frame.index)  # fmt: skip
    sums = np.zeros((len(frame), len(columns)))
    np.add.at(sums, buyer, purchase)
    history = CovariateHistory(frame, columns, time_unit, origin, row_customer, row_start,
                               row_end, row_values, sums, rows.common)  # fmt: skip
    # every customer's rows must cover the calibration period: said now, not at the fit
    history.segments(columns[:1], columns[:1], history.T, "the calibration period")
    return history


class CovariateRows(NamedTuple):
    """A covariate table read and checked: rows sorted by path and date, each with the
    end of the time it applies to. A path is a customer (row of the customers given), or
    the one calendar of a table common to every customer (``common``, path 0)."""

    columns: tuple[str, ...]
    path: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    values: np.ndarray  # rows x columns
    common: bool

    def for_customers(self, n: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray,
                                             np.ndarray, np.ndarray]:  # fmt: skip
        """(columns, customer, start_ns, end_ns, values) with a common calendar repeated
        for each of ``n`` customers."""
        if not self.common:
            return self.columns, self.path, self.start_ns, self.end_ns, self.values
        count = self.start_ns.size
        return (self.columns, np.repeat(np.arange(n), count), np.tile(self.start_ns, n),
                np.tile(self.end_ns, n), np.tile(self.values, (n, 1)))  # fmt: skip


def read_covariate_rows(table: pd.DataFrame, customers: pd.Index, *, customer_id: str,
                        covariate_date: str, time_unit: str) -> CovariateRows:  # fmt: skip
    """Read a long covariate table: one row per period and customer (or per period, for
    a table without ``customer_id``); rows of customers not in ``customers`` are
    ignored. Text columns, missing values, repeated periods and gaps of more than one
    time unit are errors naming the first customer and period."""
    if not isinstance(table, pd.DataFrame):
        raise InvalidDataError("covariates must be a pandas DataFrame (one row per period).")
    require_columns(table.columns, [covariate_date], "covariates",
                    hint="Name the date column with covariate_date=.")  # fmt: skip
    per_customer = customer_id in table.columns
    columns = tuple(c for c in table.columns if c not in (covariate_date, customer_id))
    if not columns:
        raise InvalidDataError("covariates has no covariate columns besides the date and id.")
    for column in columns:
        values = table[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            raise InvalidDataError(
                f"covariates: column '{column}' is {values.dtype}; time-varying covariates "
                "are numbers (code a category as 0/1 columns)."
            )
    ids = table[customer_id] if per_customer else pd.Series([_ALL] * len(table))
    starts = dates_to_ns(table[covariate_date], covariate_date, ids.to_numpy(), None)
    values = table[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidDataError(
            f"covariates: {int(bad.sum()):,} rows have missing or infinite values (e.g. "
            f"customer {_label(ids.iloc[i])!r}, period {_day(starts[i])}); fill them."
        )
    if per_customer:
        owner = customers.get_indexer(pd.Index(ids))
        known = owner >= 0  # rows of customers not in the summary are not needed
        if len(customers) and not known.any():
            table_id, own_id = _label(ids.iloc[0]), _label(customers[0])
            raise InvalidDataError(
                f"covariates: no customer id of the table is a customer of the log (e.g. "
                f"{table_id!r}, {type(table_id).__name__}, against {own_id!r}, "
                f"{type(own_id).__name__}); write the ids alike in both."
            )
        owner, starts, values = owner[known], starts[known], values[known]
        names = customers
    else:
        owner = np.zeros(len(starts), dtype=np.int64)
        names = pd.Index([_ALL])
    order = np.lexsort((starts, owner))
    owner, starts, values = owner[order], starts[order], values[order]
    repeated = np.r_[False, (owner[1:] == owner[:-1]) & (starts[1:] == starts[:-1])]
    if repeated.any():
        i = int(np.argmax(repeated))
        raise InvalidDataError(
            f"covariates: {int(repeated.sum()):,} rows repeat a period (e.g. customer "
            f"{_label(names[owner[i]])!r}, {_day(starts[i])}); give one row per period."
        )
    unit = time_unit_nanoseconds(time_unit)
    last = np.r_[owner[1:] != owner[:-1], True]
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[last] = starts[last] + int(unit)
    gap = ~last & (ends - starts > _MAX_SPACING * unit)
    if gap.any():
        i = int(np.argmax(gap))
        raise InvalidDataError(
            f"covariates: customer {_label(names[owner[i]])!r} has no covariate values "
            f"for the period starting {_day(starts[i] + int(unit))} (rows "
            f"{_day(starts[i])} and {_day(ends[i])} are more than one time unit apart); "
            f"{int(gap.sum()):,} such gaps. Give a row for every period."
        )
    return CovariateRows(columns, owner, starts, ends, values, not per_customer)


def _values_at(owner: np.ndarray, starts: np.ndarray, ends: np.ndarray, values: np.ndarray,
               who: np.ndarray, when: np.ndarray, customers: pd.Index) -> np.ndarray:  # fmt: skip
    """The covariate row values of customer ``who`` at time ``when`` (ns), for each
    purchase; a purchase outside every row of its customer is an error."""
    if who.size == 0:
        return np.zeros((0, values.shape[1]))
    # rows and purchases sorted together by (customer, time, rows first)
    kind = np.r_[np.zeros(owner.size, np.int8), np.ones(who.size, np.int8)]
    key_owner = np.r_[owner, who]
    key_time = np.r_[starts, when]
    order = np.lexsort((kind, key_time, key_owner))
    position = np.r_[np.arange(owner.size), np.zeros(who.size, dtype=np.int64)][order]
    latest = np.maximum.accumulate(np.where(kind[order] == 0, position, -1))
    purchases = kind[order] == 1
    found = np.empty(who.size, dtype=np.int64)
    found[order[purchases] - owner.size] = latest[purchases]
    valid = found >= 0
    valid[valid] &= (owner[found[valid]] == who[valid]) & (ends[found[valid]] > when[valid])
    if not valid.all():
        i = int(np.argmax(~valid))
        raise InvalidDataError(
            f"covariates: customer {_label(customers[who[i]])!r} has no covariate values "
            f"for their purchase on {_day(when[i])}; give rows for every period from "
            "their first purchase."
        )
    return values[found]


def _day(ns: Any) -> str:
    return pd.Timestamp(int(ns)).strftime("%Y-%m-%d")


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

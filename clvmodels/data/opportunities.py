"""Transaction logs to discrete transaction opportunities: the data of the BG/BB model.

Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). "Customer-base analysis in a
discrete-time noncontractual setting". Marketing Science 29(6), 1086-1108 (FHS below).

In FHS's setting transactions can only happen at discrete, equally spaced opportunities
(their donations data: one gift a year at most, for a cohort that first gave in 1995).
A customer's history is (x, t_x, n): after the initial transaction there are n
opportunities, x of them have a transaction and the last of those is opportunity t_x
(0 if there is none). From a dated log these are computed per calendar window of
``period`` (the windows of :class:`~clvmodels.data.timeunits.Granularity`: a day, a
calendar week from Monday, a month, a quarter, a year, or a fixed width such as "7D"
aligned on the Unix epoch):

* the window of a customer's first purchase is their period 0; several purchases in one
  window count as one transaction (the window has a purchase or not);
* the opportunities are the windows 1, 2, ..., n after period 0 that are *complete* on
  ``observation_end``, i.e. end on or before it; ``n_periods`` = n;
* ``frequency`` = x, the number of those windows with at least one purchase;
  ``recency`` = t_x, the index (1 .. n) of the last of them, 0 if none;
* with ``amount``, ``monetary_value`` is the mean value of the repeat transactions, the
  definition of :func:`~clvmodels.data.summary.summarize`: the amounts of the counted
  windows after period 0, divided by x (0 when x = 0); the first window is excluded, so
  that :class:`~clvmodels.models.gamma_gamma.GammaGamma` can be fitted on it.

Why only complete windows: a window that is still running when observation ends is an
opportunity whose outcome is not known yet. Counting it would add an opportunity to
every customer, but a transaction only for those who have already bought in the part of
the window observed, so the share of opportunities with a transaction, and with it the
estimate of p, would be biased downward (and the dropout probability theta upward). Its
purchases are therefore ignored; they are counted once the window is complete.

Customers acquired late: a customer whose first window is the last complete one has
n = 0, and so does one whose first purchase falls in the incomplete window after it
(their period 0 is still running, so none of their opportunities has begun). Both are
kept, with x = t_x = n = 0: such a row is valid BG/BB data whose likelihood is 1 (it
adds nothing to a fit), and the model's predictions for it are those of a newly
acquired customer (FHS eqs. 7 and 8), which is what predictive CLV needs. Every
customer with a purchase on or before ``observation_end`` thus has a row, as in
:func:`~clvmodels.data.summary.summarize`.

Input checks, date parsing, the end-date rule (a date means through the end of that
day) and the error messages are those of :mod:`clvmodels.data.summary`, whose
aggregation engine also counts the windows here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InvalidDataError
from .dates import MAX_NS
from .reader import prepare_transactions
from .semantics import (
    AfterEnd,
    EndDate,
    Transactions,
    acquired_by_calibration_end,
    aggregate,
    check_after_end,
    cut_at_observation_end,
    parse_end,
    parse_period_ends,
    split_after,
    summary_metadata,
    window_of,
)
from .timeunits import NS_PER_DAY, Granularity, parse_granularity

__all__ = ["calibration_holdout_opportunities", "summarize_opportunities"]


# ------------------------------------------------------------------------ windows


def _parse_period(period: Any) -> Granularity:
    """The window of ``period``, or an error that names ``period=``."""
    how = (
        "Use 'D' (day), 'W' (calendar week from Monday), 'M' (calendar month), 'Q' "
        "(calendar quarter) or 'Y' (calendar year), or a fixed window such as '7D'."
    )
    if not isinstance(period, str):
        raise InvalidDataError(f"period={period!r} is not a period. {how}")
    try:
        return parse_granularity(period)
    except InvalidDataError as err:
        raise InvalidDataError(f"period={period!r} is not a period ({err}) {how}") from None


def _start(granularity: Granularity, index: int) -> int:
    return int(granularity.start_ns(np.array([index], dtype=np.int64))[0])


def _last_complete_window(granularity: Granularity, last_ns: int) -> int:
    """Number of the last window that ends on or before ``last_ns`` (inclusive end).

    The window containing ``last_ns`` is complete only when ``last_ns`` is its last
    nanosecond (e.g. the end of December 31 for calendar years); otherwise it is the
    one before. The window of the latest representable time never ends within range.
    """
    window = window_of(granularity, last_ns)
    if window >= window_of(granularity, MAX_NS):
        return window - 1
    return window if _start(granularity, window + 1) <= last_ns + 1 else window - 1


def _label(ns: int) -> str:
    stamp = pd.Timestamp(ns)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)


def _end_label(granularity: Granularity, window: int) -> str:
    """An end date that closes ``window``: its last day, or its last instant."""
    following = _start(granularity, window + 1)
    stamp = pd.Timestamp(following)
    if stamp == stamp.normalize():
        return (stamp - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return str(pd.Timestamp(following - 1))


def _span(granularity: Granularity, window: int) -> str:
    """``window`` as text for messages, e.g. "2001-01-01 .. 2001-12-31"."""
    return f"{_label(_start(granularity, window))} .. {_end_label(granularity, window)}"


# -------------------------------------------------------------------- histories


def _histories(
    tx: Transactions, last_complete: int, *, with_amount: bool, suffix: str = ""
) -> pd.DataFrame:
    """x, t_x, n (and monetary value) of every customer of ``tx`` (FHS's (x, t_x, n)).

    Only the windows up to ``last_complete`` are counted; customers without a purchase
    in them (first purchase in a later, incomplete window) get x = t_x = n = 0.
    """
    granularity = tx.granularity
    counted = aggregate(tx.subset(tx.window <= last_complete), with_amount=with_amount)
    present = counted.n_windows > 0
    first = np.zeros(len(present), dtype=np.int64)
    last = np.zeros(len(present), dtype=np.int64)
    first[present] = granularity.index(counted.first_window_ns[present])
    last[present] = granularity.index(counted.last_window_ns[present])
    frequency = np.where(present, counted.n_windows - 1, 0).astype(np.int64)
    data: dict[str, Any] = {
        "frequency": frequency,
        "recency": np.where(present, last - first, 0).astype(np.int64),
        "n_periods": np.where(present, last_complete - first, 0).astype(np.int64),
    }
    if with_amount:
        repeat_total = counted.total_amount - counted.first_window_amount
        data["monetary_value"] = np.divide(
            repeat_total, frequency, out=np.zeros(len(frequency)), where=frequency > 0
        )
    frame = pd.DataFrame(data, index=tx.customers)
    return frame.add_suffix(suffix) if suffix else frame


def _require_complete_window(tx: Transactions, last_complete: int, end: EndDate, name: str) -> None:
    if not (tx.window <= last_complete).any():
        first = int(tx.window.min())
        raise InvalidDataError(
            f"no period is complete on {name}={end.given!r}: the first purchase falls in "
            f"the period {_span(tx.granularity, first)}, which ends later. Pass a later "
            f"{name} (e.g. {_end_label(tx.granularity, first)!r}) or a shorter period."
        )


def _default_end(tx: Transactions) -> EndDate:
    """Through the end of the day of the latest transaction."""
    latest = int(tx.time_ns.max())
    day = latest - latest % NS_PER_DAY
    last_ns = min(day + NS_PER_DAY - 1, MAX_NS)
    return EndDate(None, last_ns, pd.Timestamp(day).strftime("%Y-%m-%d"))


# ------------------------------------------------------------------------- public


def summarize_opportunities(
    transactions: Any,
    *,
    period: str = "Y",
    observation_end: Any = None,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    date_format: str | None = None,
    duplicates: str = "warn",
    after_end: AfterEnd = "raise",
) -> pd.DataFrame:
    """Summarise a transaction log into BG/BB histories (x, t_x, n), one row per customer.

    Discrete transaction opportunities as in Fader, Hardie & Shang (2010), "Customer-base
    analysis in a discrete-time noncontractual setting", Marketing Science 29(6): each
    calendar window of ``period`` is one opportunity, the window of the first purchase
    is period 0, and only windows complete on ``observation_end`` count (see the module
    docstring for why, and for customers acquired in the last windows).

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per purchase. Only read, never modified.
    period : str, default "Y"
        The opportunity: "Y" (calendar year), "Q", "M" (calendar month), "W" (calendar
        week from Monday), "D" (day) or a fixed window such as "7D" (aligned on
        1970-01-01). It is also the time unit recorded for the models, so that
        :func:`~clvmodels.predictive_clv` converts horizons and discount rates into
        opportunities.
    observation_end : date-like, optional
        End of observation, inclusive: a date means through the end of that day, a date
        and time that instant. Windows that end later are not counted. Defaults to the
        end of the day of the latest transaction (with a ``UserWarning`` when that day
        does not complete its window, whose purchases are then ignored); pass the real
        end of the data, e.g. "2001-12-31".
    customer_id, date : str
        Names of the customer id and purchase time columns, read as by
        :func:`~clvmodels.summarize`.
    amount : str, optional
        Name of the (non-negative) purchase value column; adds ``monetary_value``.
    date_format : str, optional
        ``strptime`` format of string (or integer) dates.
    after_end : {"raise", "drop"}, default "raise"
        What to do with transactions after ``observation_end``. Transactions on or
        before it in an incomplete window are not "after the end": they are ignored.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted): ``frequency`` (x, opportunities with a
        transaction), ``recency`` (t_x, index of the last one, 0 if none) and
        ``n_periods`` (n, complete opportunities after period 0), all int64; with
        ``amount`` also ``monetary_value`` (mean value of the repeat transactions, 0
        when there are none). ``frame.attrs["clvmodels"]`` records ``time_unit`` (the
        period), ``period`` and ``observation_end`` (normalised text).

    Raises
    ------
    InvalidDataError
        Missing columns, empty input, unparseable or missing dates, bad amounts,
        transactions after ``observation_end``, an unknown ``period``, or no complete
        window on ``observation_end``.

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "a", "b", "b"],
    ...     "date": ["2020-03-01", "2020-08-01", "2022-02-01", "2022-05-01",
    ...              "2021-06-01", "2023-01-10"],
    ...     "amount": [10.0, 5.0, 20.0, 30.0, 8.0, 9.0],
    ... })
    >>> clvmodels.summarize_opportunities(tx, period="Y", amount="amount",
    ...                                   observation_end="2023-06-30")
                 frequency  recency  n_periods  monetary_value
    customer_id                                               
    a                    1        2          2            50.0
    b                    0        0          1             0.0

    Customer a's opportunities are 2021 and 2022 (2023 is not over on 2023-06-30), with
    one transaction, in 2022, worth 20 + 30.
    """  # noqa: W291
    check_after_end(after_end)
    granularity = _parse_period(period)
    end = None if observation_end is None else parse_end(observation_end, "observation_end")
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=granularity.spec, date_format=date_format, duplicates=duplicates,
    )  # fmt: skip
    if end is None:
        end = _default_end(tx)
    else:
        tx = cut_at_observation_end(tx, end, observation_end, after_end)
    last_complete = _last_complete_window(granularity, end.last_ns)
    _require_complete_window(tx, last_complete, end, "observation_end")
    if observation_end is None:
        ignored = int((tx.window > last_complete).sum())
        if ignored:
            warnings.warn(
                f"observation_end defaults to the day of the latest transaction, "
                f"{end.label}, which does not complete its period "
                f"({_span(granularity, last_complete + 1)}): its {ignored:,} transactions "
                "are not counted. Pass observation_end= the real end of the data, e.g. "
                f"{_end_label(granularity, last_complete + 1)!r} if the log covers that "
                "whole period.",
                UserWarning,
                stacklevel=2,
            )
    summary = _histories(tx, last_complete, with_amount=amount is not None)
    summary.attrs.update(
        summary_metadata(time_unit=period, period=period, observation_end=end.label)
    )
    return summary


def calibration_holdout_opportunities(
    transactions: Any,
    *,
    calibration_end: Any,
    holdout_end: Any,
    period: str = "Y",
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    date_format: str | None = None,
    duplicates: str = "warn",
    after_end: AfterEnd = "raise",
) -> pd.DataFrame:
    """Split a transaction log into BG/BB calibration histories and holdout outcomes.

    The calibration histories are those of :func:`summarize_opportunities` with
    ``observation_end=calibration_end``, for the customers acquired by then; the holdout
    opportunities are the following windows complete on ``holdout_end``, as FHS (2010)
    calibrate on 1996-2001 and hold out 2002-2006. The model's prediction for them is
    E[X(n, n + n*) | x, t_x, n] with n* = ``duration_holdout`` (FHS eq. 13).

    Parameters
    ----------
    transactions : pandas.DataFrame or polars.DataFrame
        One row per purchase; only read.
    calibration_end : date-like
        Last day (or instant) of the calibration period. It must end a window of
        ``period`` (e.g. "1998-12-31" for years): a window split between the two periods
        would be an opportunity belonging to neither.
    holdout_end : date-like
        End of the holdout period, later than ``calibration_end``; as in
        :func:`summarize_opportunities` only windows complete on it count.
    period, customer_id, date, amount, date_format
        As in :func:`summarize_opportunities`.
    after_end : {"raise", "drop"}, default "raise"
        What to do with transactions after ``holdout_end``.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted), the customers with a purchase on or before
        ``calibration_end``: ``frequency_cal``, ``recency_cal``, ``n_periods_cal``,
        ``T_cal`` (the calibration span in periods, equal to ``n_periods_cal``; the
        column that :func:`~clvmodels.evaluate` and its naive baseline read), with
        ``amount`` ``monetary_value_cal``; then ``frequency_holdout`` (holdout windows
        with a purchase), with ``amount`` ``monetary_value_holdout`` (mean value of
        those transactions, 0 when there are none) and ``duration_holdout`` (n*, the
        number of holdout opportunities). Counts are int64.
        ``frame.attrs["clvmodels"]`` records ``time_unit`` (the period), ``period``,
        ``calibration_end`` and ``holdout_end``.

    Raises
    ------
    InvalidDataError
        As :func:`summarize_opportunities`; also a ``calibration_end`` that is not
        before ``holdout_end`` or does not end a window, no complete holdout window,
        and no transaction on or before ``calibration_end``.

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 2, 2, 3],
    ...     "date": ["2019-05-01", "2020-01-02", "2021-07-07", "2020-02-02",
    ...              "2020-03-03", "2021-01-01"],
    ... })
    >>> frame = clvmodels.calibration_holdout_opportunities(
    ...     tx, calibration_end="2020-12-31", holdout_end="2021-12-31", period="Y")
    >>> frame[["frequency_cal", "recency_cal", "n_periods_cal", "frequency_holdout"]]
                 frequency_cal  recency_cal  n_periods_cal  frequency_holdout
    customer_id                                                              
    1                        1            1              1                  1
    2                        0            0              0                  0
    >>> frame["duration_holdout"].tolist()
    [1, 1]

    Customer 3, first seen in 2021, is not in the calibration cohort; customer 2 was
    acquired in 2020, the last calibration period, so has no calibration opportunity.
    """  # noqa: W291
    check_after_end(after_end)
    granularity = _parse_period(period)
    cal, hold = parse_period_ends(calibration_end, holdout_end)
    cal_window = _last_complete_window(granularity, cal.last_ns)
    if cal_window != window_of(granularity, cal.last_ns):
        raise InvalidDataError(
            f"calibration_end={calibration_end!r} falls inside the period "
            f"{_span(granularity, cal_window + 1)} (period={period!r}), which would be "
            "split between calibration and holdout. BG/BB counts whole periods: pass the "
            f"end of a period, e.g. {_end_label(granularity, cal_window)!r} or "
            f"{_end_label(granularity, cal_window + 1)!r}."
        )
    hold_window = _last_complete_window(granularity, hold.last_ns)
    if hold_window <= cal_window:
        raise InvalidDataError(
            f"no period after calibration_end={calibration_end!r} is complete on "
            f"holdout_end={holdout_end!r}, so there is no holdout opportunity. Pass a "
            f"holdout_end at the end of a later period, e.g. "
            f"{_end_label(granularity, cal_window + 1)!r}."
        )
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=granularity.spec, date_format=date_format, duplicates=duplicates,
    )  # fmt: skip
    tx = split_after(tx, hold, "holdout_end", after_end)
    in_calibration = tx.window <= cal_window  # the same rows as time <= calibration_end
    tx = acquired_by_calibration_end(tx, in_calibration, calibration_end)

    with_amount = amount is not None
    frame = _histories(tx, cal_window, with_amount=with_amount, suffix="_cal")
    frame.insert(3, "T_cal", frame["n_periods_cal"].to_numpy(copy=True))
    in_holdout = (tx.window > cal_window) & (tx.window <= hold_window)
    holdout = aggregate(tx.subset(in_holdout), with_amount=with_amount)
    frame["frequency_holdout"] = holdout.n_windows.astype(np.int64)
    if with_amount:
        frame["monetary_value_holdout"] = np.divide(
            holdout.total_amount, holdout.n_windows,
            out=np.zeros(len(holdout.n_windows)), where=holdout.n_windows > 0,
        )  # fmt: skip
    frame["duration_holdout"] = np.int64(hold_window - cal_window)
    frame.attrs.update(
        summary_metadata(
            time_unit=period, period=period, calibration_end=cal.label,
            holdout_end=hold.label,
        )
    )  # fmt: skip
    return frame

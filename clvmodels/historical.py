"""Historical customer value, cohort tables, and historical vs predictive CLV.

What each customer has been worth is read straight off the transactions, with the same
definitions as :func:`clvmodels.summarize` (granularity windows, inclusive end dates), so
it sits next to model predictions without translation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .data.reader import is_in_memory, prepare_transactions
from .data.semantics import aggregate, finalize, parse_end
from .data.timeunits import parse_granularity, time_unit_nanoseconds
from .exceptions import InvalidDataError

__all__ = ["ClvComparison", "cohort_table", "compare_clv", "historical_clv"]

_NS_PER_YEAR = 365.25 * 86_400 * 10**9


def _through(tx, as_of: Any) -> tuple[np.ndarray, int]:
    """Rows on or before ``as_of`` (a date means through its end, as in summarize) and
    the window that contains the end."""
    last_ns = int(tx.time_ns.max()) if as_of is None else parse_end(as_of, "as_of").last_ns
    keep = tx.time_ns <= last_ns
    if not keep.any():
        raise InvalidDataError(f"no transactions on or before as_of={as_of!r}.")
    return keep, int(tx.granularity.index(np.array([last_ns]))[0])


def _engine_totals(transactions: Any, *, as_of: Any, **settings: Any) -> tuple[pd.DataFrame, int]:
    """Per-customer totals through ``as_of`` computed by the data's engine (DuckDB,
    Spark): :func:`clvmodels.summarize` with the amounts, and the start of the window
    that contains the end."""
    from .data.engines import is_spark_frame
    from .data.summary import summarize

    if as_of is not None:
        parse_end(as_of, "as_of")  # named as this function's argument when it is wrong
    summary = summarize(transactions, observation_end=as_of, after_end="drop", **settings)
    if is_spark_frame(summary):
        from .data.spark_engine import collect_summary

        summary = collect_summary(summary, settings["customer_id"])
    label = summary.attrs["clvmodels"]["observation_end"]
    window = parse_granularity(settings["granularity"])
    last_ns = parse_end(label, "as_of").last_ns
    return summary, int(window.start_ns(window.index(np.array([last_ns], dtype=np.int64)))[0])


def historical_clv(
    transactions: Any,
    *,
    as_of: Any = None,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    margin: float = 1.0,
    discount_rate: float | None = None,
    time_unit: str = "D",
    granularity: str = "D",
    date_format: str | None = None,
    duplicates: str = "warn",
) -> pd.DataFrame:
    """What each customer has been worth up to ``as_of``.

    Parameters
    ----------
    transactions : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        The transaction log (only read), any input :func:`clvmodels.summarize` takes;
        files, relations and Spark frames are totalled by their engine (only the
        per-customer result is collected). Transactions after ``as_of`` are ignored.
    as_of : date-like, optional
        Last day counted, inclusive; by default the latest transaction.
    margin : float, default 1
        Share of revenue that is profit; ``value = margin * revenue``.
    discount_rate : float, optional
        Annual rate at which past cash flows are compounded forward to ``as_of``
        (each purchase's value times (1 + rate) ** years before ``as_of``).
    time_unit, granularity, date_format
        As in :func:`clvmodels.summarize`: ``tenure`` is measured in ``time_unit``,
        purchases in one ``granularity`` window count as one.

    Returns
    -------
    pandas.DataFrame
        Per customer: ``revenue`` (sum of amounts), ``value`` (margin-adjusted),
        ``n_purchases``, ``average_order_value`` (revenue / purchases),
        ``first_purchase``, ``last_purchase``, ``tenure`` (first purchase to ``as_of``)
        and, with ``discount_rate``, ``value_compounded``.

    Examples
    --------
    >>> import clvmodels
    >>> tx = clvmodels.datasets.load_cdnow()
    >>> past = clvmodels.historical_clv(tx, as_of="1997-09-30", time_unit="W")
    >>> round(float(past["revenue"].sum()), 2)
    173115.55
    """
    if discount_rate is None and not is_in_memory(transactions):
        # files, relations and Spark: the engine computes the totals where the data are
        summary, end_ns = _engine_totals(
            transactions, as_of=as_of, customer_id=customer_id, date=date, amount=amount,
            time_unit=time_unit, granularity=granularity, date_format=date_format,
            duplicates=duplicates,
        )  # fmt: skip
    else:
        tx = prepare_transactions(
            transactions, customer_id=customer_id, date=date, amount=amount,
            granularity=granularity, date_format=date_format, duplicates=duplicates,
        )  # fmt: skip
        keep, end = _through(tx, as_of)
        tx = tx.subset(keep)
        used = np.zeros(len(tx.customers), dtype=bool)
        used[tx.codes] = True
        positions = np.cumsum(used) - 1
        tx.customers, tx.codes = tx.customers[used], positions[tx.codes]
        end_ns = int(tx.granularity.start_ns(end))
        summary = finalize(
            aggregate(tx, with_amount=True), end_window_ns=end_ns,
            unit_ns=time_unit_nanoseconds(time_unit), with_amount=True,
        )  # fmt: skip
    result = pd.DataFrame(
        {
            "revenue": summary["total_amount"],
            "value": margin * summary["total_amount"],
            "n_purchases": summary["n_purchases"],
            "average_order_value": summary["total_amount"] / summary["n_purchases"],
            "first_purchase": summary["first_purchase"],
            "last_purchase": summary["last_purchase"],
            "tenure": summary["T"],
        },
        index=summary.index,
    )
    if discount_rate is not None:
        if not np.isfinite(discount_rate) or discount_rate <= -1:
            raise InvalidDataError(f"discount_rate={discount_rate!r}: use a rate > -1.")
        years = (end_ns - tx.granularity.start_ns(tx.window)) / _NS_PER_YEAR
        grown = tx.amount * np.exp(np.log1p(discount_rate) * years)
        result["value_compounded"] = margin * np.bincount(
            tx.codes, weights=grown, minlength=len(tx.customers)
        )
    result.attrs["clvmodels"] = {"as_of": str(pd.Timestamp(end_ns)), "time_unit": time_unit}
    return result


def cohort_table(
    transactions: Any,
    *,
    period: str = "M",
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    as_of: Any = None,
    margin: float = 1.0,
    date_format: str | None = None,
    duplicates: str = "warn",
) -> pd.DataFrame:
    """Customers by acquisition period: size, revenue and cumulative value by age.

    Parameters
    ----------
    period : {"W", "M", "Q", "Y"}, default "M"
        Calendar period that defines a cohort and the age steps.
    as_of : date-like, optional
        Last day counted; ages a cohort has not reached yet are left empty (NaN).

    Returns
    -------
    pandas.DataFrame
        Index: cohort (start of the acquisition period); columns ``customers``,
        ``revenue`` (all purchases to ``as_of``), then ``age 0``, ``age 1``, ...:
        cumulative value (margin x revenue) per acquired customer by the end of each
        period of age.

    Examples
    --------
    >>> import clvmodels
    >>> table = clvmodels.cohort_table(clvmodels.datasets.load_cdnow(), period="M")
    >>> table["customers"].tolist()
    [781, 857, 719]
    """
    cohorts = parse_granularity(period)
    if cohorts.kind == "fixed":
        raise InvalidDataError(
            f"period={period!r}: use a calendar period 'W', 'M', 'Q' or 'Y' for cohorts."
        )
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=period, date_format=date_format, duplicates=duplicates,
    )  # fmt: skip
    keep, end = _through(tx, as_of)
    codes, windows, amounts = tx.codes[keep], tx.window[keep], tx.amount[keep]
    first = np.full(len(tx.customers), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, windows)
    present = first < np.iinfo(np.int64).max
    cohort_of_row = first[codes]
    age = windows - cohort_of_row
    cohort_ids = np.unique(first[present])
    n_ages = int(end - cohort_ids.min()) + 1
    row_cohort = np.searchsorted(cohort_ids, cohort_of_row)
    value = np.zeros((len(cohort_ids), n_ages))
    np.add.at(value, (row_cohort, age), margin * amounts)
    size = np.bincount(np.searchsorted(cohort_ids, first[present]), minlength=len(cohort_ids))
    cumulative = np.cumsum(value, axis=1) / size[:, None]
    reached = (end - cohort_ids)[:, None] >= np.arange(n_ages)[None, :]
    cumulative = np.where(reached, cumulative, np.nan)
    table = pd.DataFrame(
        cumulative, columns=[f"age {k}" for k in range(n_ages)],
        index=pd.DatetimeIndex(cohorts.start_ns(cohort_ids).astype("datetime64[ns]"),
                               name="cohort"),
    )  # fmt: skip
    revenue = np.bincount(row_cohort, weights=amounts, minlength=len(cohort_ids))
    table.insert(0, "revenue", revenue)
    table.insert(0, "customers", size)
    return table


@dataclass
class ClvComparison:
    """Historical next to predicted CLV.

    Attributes
    ----------
    customers : pandas.DataFrame
        Per customer: ``historical``, ``predicted``, their percentile ranks, ``quadrant``
        (``"high/low"`` = high historical, low predicted, ...), ``segment`` (``"at risk"``,
        ``"rising"`` or ``""``) and ``probability_alive`` when given.
    segments : pandas.DataFrame
        Per quadrant and segment: customers, share of customers, totals and means.
    rank_correlation : float
        Spearman correlation between historical and predicted value.
    concentration : pandas.DataFrame
        Share of total value held by the top 10 % and 20 % of customers, for each.
    """

    customers: pd.DataFrame
    segments: pd.DataFrame
    rank_correlation: float
    concentration: pd.DataFrame


def _values(values: Any, name: str) -> pd.Series:
    if isinstance(values, pd.DataFrame):
        for column in ("value", "estimate", "mean", "clv"):
            if column in values.columns:
                return values[column].astype(np.float64)
        raise InvalidDataError(
            f"{name}: a DataFrame needs a 'value' (historical_clv) or 'estimate' "
            "(predictive_clv with interval) column; pass a Series instead."
        )
    if isinstance(values, pd.Series):
        return values.astype(np.float64)
    raise InvalidDataError(f"{name} must be a pandas Series or DataFrame indexed by customer.")


def _share_of_top(values: pd.Series, share: float) -> float:
    ordered = np.sort(values.to_numpy())[::-1]
    n_top = max(1, round(share * len(ordered)))
    total = ordered.sum()
    return float(ordered[:n_top].sum() / total) if total > 0 else float("nan")


def compare_clv(
    historical: Any,
    predicted: Any,
    *,
    probability_alive: pd.Series | None = None,
    quantile: float = 0.5,
    alive_threshold: float = 0.5,
) -> ClvComparison:
    """Put what customers have been worth next to what they are predicted to be worth.

    Parameters
    ----------
    historical : pandas.Series or DataFrame
        Historical value per customer (e.g. ``historical_clv(...)["value"]``).
    predicted : pandas.Series or DataFrame
        Predicted CLV per customer (``predictive_clv``; its ``estimate`` column if it
        has intervals).
    probability_alive : pandas.Series, optional
        P(alive) per customer; defines the "at risk" segment.
    quantile : float, default 0.5
        A customer is "high" on a measure above this quantile of it (the median).
    alive_threshold : float, default 0.5
        "At risk": high historical value and P(alive) below this.

    Returns
    -------
    ClvComparison
        "rising" customers have low historical and high predicted value.

    Examples
    --------
    >>> import pandas as pd
    >>> past = pd.Series([10.0, 200.0, 5.0, 300.0], index=list("abcd"))
    >>> future = pd.Series([50.0, 1.0, 2.0, 400.0], index=list("abcd"))
    >>> result = compare_clv(past, future)
    >>> result.customers["quadrant"].tolist()
    ['low/high', 'high/low', 'low/low', 'high/high']
    >>> result.customers.loc["a", "segment"]
    'rising'
    """
    past = _values(historical, "historical")
    future = _values(predicted, "predicted")
    common = past.index.intersection(future.index)
    if len(common) == 0:
        raise InvalidDataError(
            "historical and predicted share no customer id; check that both are indexed "
            "by the same customer id."
        )
    missing = len(past.index.union(future.index)) - len(common)
    past, future = past.loc[common], future.loc[common]
    for name, values in (("historical", past), ("predicted", future)):
        if not np.all(np.isfinite(values.to_numpy())):
            raise InvalidDataError(f"{name} has NaN or infinite values; drop or fill them.")
    past_cut = float(past.quantile(quantile))
    future_cut = float(future.quantile(quantile))
    high_past = past > past_cut
    high_future = future > future_cut
    quadrant = np.where(high_past, "high", "low").astype(object) + "/" + np.where(
        high_future, "high", "low"
    )
    customers = pd.DataFrame(
        {
            "historical": past,
            "predicted": future,
            "historical_rank": past.rank(pct=True),
            "predicted_rank": future.rank(pct=True),
            "quadrant": quadrant,
        }
    )
    segment = np.where(~high_past & high_future, "rising", "")
    if probability_alive is not None:
        if isinstance(probability_alive, pd.DataFrame):
            probability_alive = _values(probability_alive, "probability_alive")
        alive = probability_alive.reindex(common).astype(np.float64)
        customers["probability_alive"] = alive
        segment = np.where(high_past & (alive < alive_threshold), "at risk", segment)
    customers["segment"] = segment
    customers.attrs.update(
        {"historical_threshold": past_cut, "predicted_threshold": future_cut,
         "customers_not_in_both": missing}
    )
    groups = []
    for label, mask in [(q, customers["quadrant"] == q) for q in
                        ("high/high", "high/low", "low/high", "low/low")] + [
        (s, customers["segment"] == s) for s in ("at risk", "rising")
    ]:  # fmt: skip
        part = customers[mask]
        groups.append({
            "group": label, "customers": len(part), "share": len(part) / len(customers),
            "historical_total": part["historical"].sum(),
            "predicted_total": part["predicted"].sum(),
            "historical_mean": part["historical"].mean() if len(part) else np.nan,
            "predicted_mean": part["predicted"].mean() if len(part) else np.nan,
        })  # fmt: skip
    segments = pd.DataFrame(groups).set_index("group")
    concentration = pd.DataFrame(
        {
            "historical": [_share_of_top(past, 0.1), _share_of_top(past, 0.2)],
            "predicted": [_share_of_top(future, 0.1), _share_of_top(future, 0.2)],
        },
        index=pd.Index(["top 10%", "top 20%"], name="customers"),
    )
    correlation = float(stats.spearmanr(past, future).statistic)
    return ClvComparison(customers, segments, correlation, concentration)

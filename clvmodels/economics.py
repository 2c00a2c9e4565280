"""Acquisition economics: what a segment of customers (an acquisition channel, a cohort
of first purchases) has been and will be worth, against what it cost to win.

For each segment :func:`segment_value` adds up, over its customers:

* ``historical_value``: margin x revenue of every purchase through the end of
  observation (:func:`clvmodels.historical_clv`, not discounted);
* ``predicted_value``: margin x expected spend x the expected purchases of the horizon,
  discounted to the end of observation (:func:`clvmodels.predictive_clv`);
* ``clv``: the two together, what the segment's customers are worth from their
  acquisition to the end of the horizon (the quantity to set against what acquiring
  them cost);
* ``cac``: the acquisition cost (a total per segment, or a sum of costs per customer),
  and ``clv_to_cac`` = clv / cac (infinite for a segment that cost nothing and is worth
  something, 0 / 0 refused);
* ``share_alive``: the mean P(alive) at the end of observation;
* ``payback_period``: the customer age (time since first purchase, in the purchase
  model's time unit) at which the segment's cumulative margin, undiscounted as payback
  periods are, first covers its acquisition cost, with ``payback_from`` saying whether
  history alone shows it ("history"), it needs the model's expected purchases
  ("model"), or it does not happen by the end of the horizon ("not within the horizon",
  with an infinite period).

Intervals aggregate honestly: the bounds of a segment's total come from joint draws of
the models' parameters (the asymptotic normal of a maximum-likelihood fit, the
posterior of a Bayesian one), each draw summed over the segment's customers, so
customers move together as the parameters do. Adding up customers' own bounds would
treat their errors as perfectly correlated, or, with quadrature sums, as independent;
neither is right (``tests/test_economics.py`` shows the difference).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_interval, is_real
from .exceptions import InvalidDataError

__all__ = ["segment_value"]

# values (draws x customers) held at once by the P(alive) draws
_HELD_VALUES = 5_000_000
# most points of the customer-age grid on which the payback curve is evaluated
_PAYBACK_POINTS = 120
_COHORTS = ("D", "W", "M", "Q", "Y")


class _Segments(NamedTuple):
    """Each customer's segment as a code into ``names`` (sorted labels)."""

    codes: np.ndarray
    names: pd.Index

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.names))

    def totals(self, values: Any) -> np.ndarray:
        weights = np.asarray(values, dtype=np.float64)
        return np.bincount(self.codes, weights, minlength=len(self.names))


def segment_value(
    purchase_model: Any,
    spend_model: Any,
    data: pd.DataFrame,
    *,
    transactions: Any,
    acquisition_costs: Mapping[Any, float] | pd.Series,
    segments: str | pd.Series | None = None,
    cohort: str | None = None,
    horizon: Any = "12M",
    discount_rate: float = 0.1,
    margin: float = 1.0,
    interval: float | None = None,
    n_draws: int = 500,
    random_state: Any = 0,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
) -> pd.DataFrame:
    """Value, acquisition cost and payback of each segment of customers.

    Parameters
    ----------
    purchase_model : fitted BGNBD, MBGNBD or ParetoNBD (maximum likelihood or Bayesian)
    spend_model : fitted GammaGamma (maximum likelihood or Bayesian)
    data : pandas.DataFrame
        The customers, as :func:`clvmodels.calibration_holdout` or
        :func:`clvmodels.summarize` made them (their observation end is read from
        ``data.attrs``), with the columns both models read.
    transactions : DataFrame or path
        The log ``data`` was made from: historical value and payback from history.
    acquisition_costs : mapping or pandas.Series
        What winning the customers cost: a total per segment (``{"search": 52_000.0}``),
        covering every segment, or a cost per customer (a Series indexed like ``data``).
        Costs are numbers >= 0 in the currency of ``amount``. A Series whose index
        holds only segment names is read as totals per segment.
    segments : str or pandas.Series, optional
        A column of ``data`` (an acquisition channel, say) or a Series customer ->
        segment. Give this or ``cohort``.
    cohort : {"D", "W", "M", "Q", "Y"}, optional
        Segments by the period of the first purchase (``"M"``: calendar months).
    horizon, discount_rate, margin
        As for :func:`clvmodels.predictive_clv` (an annual effective rate; margin the
        share of revenue that is profit, applied to history too).
    interval : float, optional
        Level of the intervals of the predicted value, CLV, CLV / CAC and the share
        alive (``_lower`` / ``_upper`` columns), from joint parameter draws.
    n_draws, random_state
        Parameter draws (or posterior draws kept) and their seed.
    customer_id, date, amount
        Columns of ``transactions``.

    Returns
    -------
    pandas.DataFrame
        Index ``segment``; columns ``customers``, ``historical_value``,
        ``predicted_value``, ``clv``, ``cac``, ``clv_to_cac``, ``payback_period``,
        ``payback_from``, ``share_alive``, and with ``interval`` the bounds.
        ``attrs["time_unit"]`` is the unit of ``payback_period``.

    Examples
    --------
    >>> import clvmodels
    >>> log = clvmodels.datasets.load_cdnow()
    >>> frame = clvmodels.calibration_holdout(log, calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W", amount="amount", duplicates="keep")
    >>> bgnbd, spend = clvmodels.BGNBD().fit(frame), clvmodels.GammaGamma().fit(frame)
    >>> costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    >>> table = clvmodels.segment_value(bgnbd, spend, frame, transactions=log,
    ...                                 cohort="M", acquisition_costs=costs)
    >>> table["customers"].tolist()
    [781, 857, 719]
    """
    from .clv import predictive_clv
    from .models._base import point_estimate

    _check_inputs(purchase_model, spend_model, data, margin, interval)
    end = _observation_end(data)
    from .data.reader import read_log

    # read once: the historical value and the payback curve both use it
    log = read_log(transactions, customer_id=customer_id, date=date, amount=amount,
                   duplicates="keep")  # fmt: skip
    past = _history(log, data, end, margin, customer_id, date, amount, purchase_model)
    groups = _segments(data, segments, cohort, past["first_purchase"])
    cac = _costs(acquisition_costs, groups, data.index)
    options = {"horizon": horizon, "discount_rate": discount_rate, "margin": margin}
    predicted = point_estimate(predictive_clv(purchase_model, spend_model, data, **options,
                                              n_draws=n_draws, random_state=random_state))
    alive = point_estimate(purchase_model.probability_alive(data))
    table = pd.DataFrame(index=pd.Index(groups.names, name="segment"))
    table["customers"] = groups.sizes
    table["historical_value"] = groups.totals(past["value"])
    table["predicted_value"] = groups.totals(predicted)
    table["clv"] = table["historical_value"] + table["predicted_value"]
    table["cac"] = cac
    table["clv_to_cac"] = _ratio(table["clv"].to_numpy(), cac)
    payback, source = _payback(purchase_model, spend_model, data, log, groups,
                               cac, margin, horizon, end, customer_id, date, amount)  # fmt: skip
    table["payback_period"] = payback
    table["payback_from"] = source
    table["share_alive"] = groups.totals(alive) / groups.sizes
    if interval is not None:
        _add_intervals(table, purchase_model, spend_model, data, groups, options, interval,
                       n_draws, random_state)  # fmt: skip
    table.attrs["time_unit"] = _time_unit(purchase_model, data)
    return table


# ------------------------------------------------------------------ the inputs


def _check_inputs(purchase_model: Any, spend_model: Any, data: Any, margin: Any,
                  interval: Any) -> None:  # fmt: skip
    from . import registry

    for model, role in ((purchase_model, "purchase"), (spend_model, "spend")):
        spec = registry.MODELS.get(getattr(model, "kind", None))
        if spec is None or spec.role != role or (role == "purchase" and spec.discrete):
            expected = "BGNBD, MBGNBD or ParetoNBD" if role == "purchase" else "GammaGamma"
            raise InvalidDataError(
                f"segment_value: the {role} model must be a fitted {expected}, not "
                f"{type(model).__name__}."
            )
        model._check_fitted()
    if getattr(purchase_model, "time_varying_", False):
        raise InvalidDataError(
            "segment_value: the purchase model was fitted with time-varying covariates; "
            "segment economics on a covariate history are not available yet."
        )
    if not isinstance(data, pd.DataFrame):
        raise InvalidDataError("segment_value: data must be the customers' summary frame.")
    if not (is_real(margin) and 0 < margin <= 1):
        raise InvalidDataError(f"margin={margin!r}: give the share of revenue that is "
                               "profit, in (0, 1].")  # fmt: skip
    if interval is not None:
        check_interval(interval)


def _observation_end(data: pd.DataFrame) -> str:
    settings = data.attrs.get("clvmodels", {})
    end = settings.get("calibration_end") or settings.get("observation_end")
    if end is None:
        raise InvalidDataError(
            "segment_value: data does not record its observation end "
            "(data.attrs['clvmodels']); build it with clvmodels.calibration_holdout or "
            "clvmodels.summarize(..., observation_end=...)."
        )
    return str(end)


def _time_unit(model: Any, data: pd.DataFrame) -> str:
    unit = getattr(model, "time_unit_", None) or data.attrs.get("clvmodels", {}).get("time_unit")
    if unit is None:
        raise InvalidDataError(
            "segment_value: neither the purchase model nor data records its time unit; fit "
            "the model on a frame made by clvmodels.calibration_holdout or summarize."
        )
    return str(unit)


def _history(transactions: Any, data: pd.DataFrame, end: str, margin: float,
             customer_id: str, date: str, amount: str, model: Any) -> pd.DataFrame:  # fmt: skip
    """Each customer's margin-adjusted value through ``end`` and first purchase; every
    customer of ``data`` must have a history (a missing one means the ids were read
    two ways, never a zero to fill in)."""
    from .historical import historical_clv

    settings = data.attrs.get("clvmodels", {})
    past = historical_clv(transactions, as_of=end, customer_id=customer_id, date=date,
                          amount=amount, margin=margin, time_unit=_time_unit(model, data),
                          granularity=settings.get("granularity") or "D",
                          duplicates="keep")  # fmt: skip
    missing = data.index.difference(past.index)
    if len(missing):
        raise InvalidDataError(
            f"segment_value: {len(missing):,} of {len(data):,} customers of data have no "
            f"transactions through {end} (e.g. customer {_plain(missing[0])!r}); pass the "
            "log data was made from, with the same customer_id column."
        )
    return past.reindex(data.index)


def _segments(data: pd.DataFrame, segments: Any, cohort: Any,
              first_purchase: pd.Series) -> _Segments:  # fmt: skip
    if (segments is None) == (cohort is None):
        raise InvalidDataError(
            "segment_value: give segments= (a column of data or a Series customer -> "
            "segment) or cohort= (a period of first purchases such as 'M'), one of them."
        )
    if cohort is not None:
        if cohort not in _COHORTS:
            raise InvalidDataError(f"cohort={cohort!r}: give one of {', '.join(_COHORTS)}.")
        labels = pd.Series(pd.DatetimeIndex(first_purchase).to_period(cohort).astype(str),
                           index=data.index)  # fmt: skip
        what = f"cohort={cohort!r}"
    elif isinstance(segments, str):
        if segments not in data.columns:
            columns = ", ".join(map(str, data.columns))
            raise InvalidDataError(f"segments={segments!r} is not a column of data ({columns}).")
        labels, what = data[segments], f"column {segments!r}"
    elif isinstance(segments, pd.Series):
        labels, what = segments.reindex(data.index), "segments"
    else:
        raise InvalidDataError("segments= must be a column name or a pandas Series.")
    missing = labels.isna().to_numpy()
    if missing.any():
        example = data.index[np.argmax(missing)]
        raise InvalidDataError(
            f"segment_value: {int(missing.sum()):,} customers have no segment in {what} "
            f"(e.g. customer {_plain(example)!r}); give every customer one."
        )
    codes, names = pd.factorize(labels, sort=True)
    return _Segments(np.asarray(codes, dtype=np.int64), pd.Index(names))


def _costs(costs: Any, groups: _Segments, customers: pd.Index) -> np.ndarray:
    """Each segment's acquisition cost: from totals per segment or costs per customer."""
    by_segment = isinstance(costs, pd.Series) and costs.index.isin(groups.names).all()
    if isinstance(costs, pd.Series) and not by_segment:
        if not costs.index.isin(customers).any():
            raise InvalidDataError(
                "acquisition_costs: a Series is either a cost per customer (indexed like "
                f"data, e.g. {_plain(customers[0])!r}) or a total per segment (indexed by "
                f"segment, e.g. {_plain(groups.names[0])!r}); its index "
                f"({_plain(costs.index[0])!r}, ...) is neither."
            )
        per_customer = costs.reindex(customers)
        values = per_customer.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            example = customers[np.argmax(bad)]
            raise InvalidDataError(
                f"acquisition_costs: {int(bad.sum()):,} customers have a missing, negative "
                f"or infinite cost (e.g. customer {_plain(example)!r}); give each a cost "
                ">= 0."
            )
        return groups.totals(values)
    if not isinstance(costs, Mapping | pd.Series):
        raise InvalidDataError(
            "acquisition_costs: give a mapping segment -> total cost, or a Series of "
            "costs per customer indexed like data."
        )
    given = {key: value for key, value in costs.items()}
    unknown = [key for key in given if key not in set(groups.names)]
    if unknown:
        shown = ", ".join(map(str, groups.names[:10]))
        shown += " ..." if len(groups.names) > 10 else ""
        raise InvalidDataError(
            f"acquisition_costs: segment {unknown[0]!r} has no customers (the segments are "
            f"{shown}); check its spelling."
        )
    absent = [name for name in groups.names if name not in given]
    if absent:
        raise InvalidDataError(
            f"acquisition_costs: no cost for {len(absent)} segment(s), e.g. {absent[0]!r}; "
            "give every segment a cost (0 if it cost nothing)."
        )
    totals = np.empty(len(groups.names))
    for j, name in enumerate(groups.names):
        value = given[name]
        if not (is_real(value) and np.isfinite(value) and value >= 0):
            raise InvalidDataError(
                f"acquisition_costs[{name!r}] = {value!r}: give a finite cost >= 0."
            )
        totals[j] = float(value)
    return totals


def _ratio(value: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """value / cost: infinite for a free segment worth something; 0 / 0 refused."""
    both_zero = (cost == 0) & (value == 0)
    if np.any(both_zero):
        raise InvalidDataError(
            "segment_value: a segment cost nothing and is worth nothing: CLV / CAC is "
            "undefined; drop the segment or give its cost."
        )
    with np.errstate(divide="ignore"):
        return np.where(cost == 0, np.inf, value / np.where(cost == 0, 1.0, cost))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------- payback


def _payback(purchase_model: Any, spend_model: Any, data: pd.DataFrame, log: pd.DataFrame,
             groups: _Segments, cac: np.ndarray, margin: float, horizon: Any, end: str,
             customer_id: str, date: str,
             amount: str) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per segment, the first customer age at which cumulative margin covers the cost.

    The segment's cumulative margin at age a (time since each customer's first
    purchase) is the margin of every purchase made at an age <= a, plus, for a customer
    observed for less than a (T_i < a), margin x expected spend x E[X(T_i, a)] from the
    model at its estimates: history where there is one, the model beyond. The curve is
    evaluated on a grid of ages up to the longest observation plus the horizon (each
    customer's model part capped at their horizon); see :func:`_crossings`. ``log`` is
    the typed transaction log (:func:`clvmodels.data.reader.read_log`)."""
    from .data.semantics import parse_end
    from .data.timeunits import time_unit_nanoseconds
    from .models._base import horizon_in_units, point_estimate

    unit = _time_unit(purchase_model, data)
    unit_ns = time_unit_nanoseconds(unit)
    stamps = log[date].to_numpy().astype("datetime64[ns]").astype(np.int64)
    position = data.index.get_indexer(pd.Index(log[customer_id]))
    inside = (position >= 0) & (stamps <= parse_end(end, "end").last_ns)
    position, stamps = position[inside], stamps[inside]
    value = margin * log[amount].to_numpy(dtype=np.float64)[inside]
    first = np.full(len(data), np.iinfo(np.int64).max)
    np.minimum.at(first, position, stamps)
    ages = (stamps - first[position]) / unit_ns
    observed = _observed_lengths(purchase_model, data)
    length = horizon_in_units(horizon, unit, positive=True)
    top = float(observed.max()) + length
    step = max(top / _PAYBACK_POINTS, 1e-9)
    grid = step * np.arange(1, int(np.ceil(top / step)) + 1)
    # the model, beyond each customer's observation and up to the CLV horizon
    spend = margin * point_estimate(spend_model.expected_spend(data)).to_numpy()
    arrays, _ = purchase_model._read(data)
    params = purchase_model._param_dict(purchase_model.params_.to_numpy())
    ahead = np.zeros((len(groups.names), len(grid)))
    for k, age in enumerate(grid):
        later = observed < age
        if not later.any():
            continue
        part = {name: values[later] for name, values in arrays.items()}
        span = np.minimum(age - observed[later], length)
        expected = purchase_model._cumulative_purchases(part, params, span)
        ahead[:, k] = np.bincount(groups.codes[later], spend[later] * expected,
                                  minlength=len(groups.names))  # fmt: skip
    shortest = np.full(len(groups.names), np.inf)
    np.minimum.at(shortest, groups.codes, observed)
    history = _History.of(groups.codes[position], ages, value, len(groups.names))
    return _crossings(history, ahead, grid, cac, shortest)


def _observed_lengths(model: Any, data: pd.DataFrame) -> np.ndarray:
    names = model._column_names(data)
    return data[names["T"]].to_numpy(dtype=np.float64)


class _History(NamedTuple):
    """Each segment's purchases in order of customer age: ``ages`` and the cumulative
    margin ``total`` after each, the segment's rows from ``starts`` to ``ends``."""

    ages: np.ndarray
    total: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, segment: np.ndarray, ages: np.ndarray, value: np.ndarray, n: int) -> _History:
        order = np.lexsort((ages, segment))
        segment, ages, value = segment[order], ages[order], value[order]
        starts = np.searchsorted(segment, np.arange(n))
        ends = np.searchsorted(segment, np.arange(n), side="right")
        total = np.cumsum(value)
        # cumulative within each segment
        before = np.r_[0.0, total][starts]
        total = total - np.repeat(before, ends - starts)
        return cls(ages, total, starts, ends)

    def at(self, s: int, age: np.ndarray) -> np.ndarray:
        """Segment ``s``'s cumulative margin of purchases made by ``age``."""
        ages = self.ages[self.starts[s]:self.ends[s]]
        total = np.r_[0.0, self.total[self.starts[s]:self.ends[s]]]
        return total[np.searchsorted(ages, age, side="right")]

    def jumps(self, s: int, lo: float, hi: float) -> np.ndarray:
        ages = self.ages[self.starts[s]:self.ends[s]]
        return ages[(ages > lo) & (ages < hi)]


def _crossings(history: _History, ahead: np.ndarray, grid: np.ndarray, cost: np.ndarray,
               shortest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The first age at which each segment's cumulative margin, the purchases made by
    then (exact, a step at each purchase) plus the model's part (linear between grid
    points, 0 at age 0), reaches its cost, and where that comes from: "history" when
    every customer of the segment was still observed then."""
    periods = np.full(len(cost), np.inf)
    source = np.full(len(cost), "not within the horizon", dtype=object)
    ages = np.r_[0.0, grid]
    for s in range(len(cost)):
        if cost[s] <= 0:
            periods[s], source[s] = 0.0, "history"
            continue
        model = np.r_[0.0, ahead[s]]
        reached = np.nonzero(history.at(s, ages) + model >= cost[s])[0]
        if not len(reached):
            continue
        k = int(reached[0])
        lo, hi = ages[k - 1], ages[k]
        # within (lo, hi]: steps at the purchases, the model's part linear
        for left, right in zip(np.r_[lo, history.jumps(s, lo, hi)],
                               np.r_[history.jumps(s, lo, hi), hi], strict=True):  # fmt: skip
            base = history.at(s, np.array([left]))[0]
            m_left = model[k - 1] + (left - lo) / (hi - lo) * (model[k] - model[k - 1])
            m_right = model[k - 1] + (right - lo) / (hi - lo) * (model[k] - model[k - 1])
            if base + m_left >= cost[s]:
                periods[s] = left
                break
            if base + m_right >= cost[s]:
                periods[s] = left + (cost[s] - base - m_left) / (m_right - m_left) * (right - left)
                break
        else:
            periods[s] = hi
        source[s] = "history" if periods[s] <= shortest[s] else "model"
    return periods, source


# ------------------------------------------------------------------- intervals


def _add_intervals(table: pd.DataFrame, purchase_model: Any, spend_model: Any,
                   data: pd.DataFrame, groups: _Segments, options: dict[str, Any],
                   interval: float, n_draws: int, random_state: Any) -> None:  # fmt: skip
    """Bounds of the segment totals from joint draws, each draw summed per segment."""
    from .clv import clv_group_draws
    from .models._base import quantiles

    predicted = clv_group_draws(purchase_model, spend_model, data, groups.codes,
                                len(groups.names), n_draws=n_draws,
                                random_state=random_state, **options)  # fmt: skip
    history = table["historical_value"].to_numpy()
    cac = table["cac"].to_numpy()
    clv = history[None, :] + predicted
    ratio = np.stack([_ratio(row, cac) for row in clv])
    alive = _alive_draws(purchase_model, data, groups, n_draws, random_state)
    for name, draws in (("predicted_value", predicted), ("clv", clv), ("clv_to_cac", ratio),
                        ("share_alive", alive / groups.sizes[None, :])):  # fmt: skip
        lower, upper = quantiles(draws, interval)
        at = table.columns.get_loc(name) + 1
        table.insert(at, f"{name}_lower", lower)
        table.insert(at + 1, f"{name}_upper", upper)
    table.attrs["interval"] = interval


def _alive_draws(model: Any, data: pd.DataFrame, groups: _Segments, n_draws: int,
                 random_state: Any) -> np.ndarray:  # fmt: skip
    """(draws, segments): P(alive) summed over each segment's customers at each joint
    draw (a posterior thinned evenly to at most ``n_draws``). Evaluated once per
    distinct customer (``pattern_codes`` of what the model reads), in blocks of bounded
    memory with the same draws for every block, and summed with the customers' counts
    per segment."""
    from scipy import sparse

    from .models._base import pattern_codes

    bayesian = hasattr(model, "posterior_samples")
    options = {} if bayesian else {"n_draws": n_draws, "random_state": random_state}
    held = len(model.posterior_samples()) if bayesian else n_draws
    keep = np.unique(np.linspace(0, held - 1, min(held, n_draws)).round().astype(np.int64))
    codes, first = pattern_codes(model._read(data)[0])
    distinct = data.iloc[first]
    counts = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, groups.codes)), shape=(len(first), len(groups.names))
    )  # fmt: skip
    block = max(1, _HELD_VALUES // held)
    total = np.zeros((len(keep), len(groups.names)))
    for start in range(0, len(distinct), block):
        rows = slice(start, start + block)
        values = model.draws("probability_alive", distinct.iloc[rows], **options).to_numpy()
        values = values.reshape(-1, values.shape[-1])[keep]
        total += np.asarray((counts[rows].T @ values.T).T)
    return total

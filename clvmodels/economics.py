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
neither is right (``tests/test_economics.py`` shows the difference). The payback
period's bounds come from the same draws: at each, the payback of the models set to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_interval, is_real
from .exceptions import InvalidDataError
from .models._base import _plain

__all__ = [
    "check_segments",
    "cohort_retention",
    "payback_curves",
    "segment_value",
    "subscription_retention",
]

# values (draws x customers) held at once by the P(alive) draws of the customer route
_ALIVE_BLOCK_VALUES = 5_000_000
# most points of the customer-age grid on which the payback curve is evaluated
_PAYBACK_POINTS = 120
_COHORTS = ("D", "W", "M", "Q", "Y")
# ages within this many periods of a period's end count as at its end (rounding of a / d)
_PERIOD_SLACK = 1e-9


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
        Level of the intervals of the predicted value, CLV, CLV / CAC, the payback
        period and the share alive (``_lower`` / ``_upper`` columns), from joint
        parameter draws.
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
    from .clv import FactoredClv, predictive_clv
    from .models._base import point_estimate

    _check_inputs(purchase_model, spend_model, data, margin, interval)
    setup = _Setup.of(purchase_model, data, transactions, segments, cohort,
                      (customer_id, date, amount), "segment_value")  # fmt: skip
    bought, groups, unit = setup.bought, setup.groups, setup.unit
    cac = _costs(acquisition_costs, groups, data.index)
    options = {"horizon": horizon, "discount_rate": discount_rate, "margin": margin}
    # cost by distinct history, not by customer, where the model allows it
    factored = FactoredClv.of(purchase_model, spend_model, data, horizon, discount_rate)
    bayesian = any(hasattr(m, "posterior_samples") for m in (purchase_model, spend_model))
    if factored is None or bayesian:  # a Bayesian CLV is its posterior mean
        predicted = point_estimate(predictive_clv(purchase_model, spend_model, data, **options))
    else:
        predicted = factored.customer_values(spend_model, margin)
    alive = point_estimate(purchase_model.probability_alive(data))
    table = pd.DataFrame(index=pd.Index(groups.names, name="segment"))
    table["customers"] = groups.sizes
    table["historical_value"] = groups.totals(_historical_value(bought, margin, len(data)))
    table["predicted_value"] = groups.totals(predicted)
    table["clv"] = table["historical_value"] + table["predicted_value"]
    table["cac"] = cac
    table["clv_to_cac"] = _ratio(table["clv"].to_numpy(), cac)
    curve = _payback_curve(purchase_model, spend_model, data, bought, groups, margin, horizon,
                           unit, factored)  # fmt: skip
    payback, source = _crossings(curve, cac)
    table["payback_period"] = payback
    table["payback_from"] = source
    table["share_alive"] = groups.totals(alive) / groups.sizes
    if interval is not None:
        _add_intervals(table, purchase_model, spend_model, data, groups, options, interval,
                       n_draws, random_state, factored, curve)  # fmt: skip
    table.attrs["time_unit"] = unit
    return table


def payback_curves(
    purchase_model: Any,
    spend_model: Any,
    data: pd.DataFrame,
    *,
    transactions: Any,
    acquisition_costs: Mapping[Any, float] | pd.Series,
    segments: str | pd.Series | None = None,
    cohort: str | None = None,
    horizon: Any = "12M",
    margin: float = 1.0,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
) -> pd.DataFrame:
    """Each segment's cumulative margin by customer age, against its acquisition cost:
    the curves whose first crossing of the cost is :func:`segment_value`'s
    ``payback_period``.

    Parameters are those of :func:`segment_value` (the curve is undiscounted, at the
    models' estimates).

    Returns
    -------
    pandas.DataFrame
        Index (``segment``, ``age``): ages from 0 to the longest observation plus the
        horizon, in the purchase model's time unit (``attrs["time_unit"]``); columns
        ``cumulative_margin`` (purchases made by that age, plus the model's expected
        margin beyond each customer's observation), ``cac`` and ``covered``
        (cumulative margin / cac; infinite for a free segment).

    Examples
    --------
    >>> import clvmodels
    >>> log = clvmodels.datasets.load_cdnow()
    >>> frame = clvmodels.calibration_holdout(log, calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W", amount="amount", duplicates="keep")
    >>> bgnbd, spend = clvmodels.BGNBD().fit(frame), clvmodels.GammaGamma().fit(frame)
    >>> costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    >>> curves = clvmodels.payback_curves(bgnbd, spend, frame, transactions=log,
    ...                                   cohort="M", acquisition_costs=costs)
    >>> curves.index.names
    FrozenList(['segment', 'age'])
    """
    _check_inputs(purchase_model, spend_model, data, margin, None, "payback_curves")
    setup = _Setup.of(purchase_model, data, transactions, segments, cohort,
                      (customer_id, date, amount), "payback_curves")  # fmt: skip
    cac = _costs(acquisition_costs, setup.groups, data.index)
    from .clv import FactoredClv

    # the discount rate plays no part in the (undiscounted) curve
    factored = FactoredClv.of(purchase_model, spend_model, data, horizon, 0.0)
    curve = _payback_curve(purchase_model, spend_model, data, setup.bought, setup.groups,
                           margin, horizon, setup.unit, factored)  # fmt: skip
    total = curve.total()
    names = setup.groups.names
    index = pd.MultiIndex.from_product([names, curve.ages], names=["segment", "age"])
    cost = np.repeat(cac, len(curve.ages))
    with np.errstate(divide="ignore", invalid="ignore"):
        covered = np.where(cost > 0, total.ravel() / np.where(cost > 0, cost, 1.0), np.inf)
    table = pd.DataFrame({"cumulative_margin": total.ravel(), "cac": cost,
                          "covered": covered}, index=index)  # fmt: skip
    table.attrs["time_unit"] = setup.unit
    return table


def cohort_retention(
    purchase_model: Any,
    data: pd.DataFrame,
    *,
    transactions: Any,
    cohort: str = "M",
    period: Any = None,
    periods: int | None = None,
    interval: float | None = None,
    n_draws: int = 500,
    random_state: Any = 0,
    customer_id: str = "customer_id",
    date: str = "date",
) -> pd.DataFrame:
    """Retention curves by acquisition cohort: the share of each cohort that purchases
    in each later period, observed and as the model expects it.

    A customer's period k is the window of ages ((k - 1) d, k d] (d = ``period``, age
    the time since their first purchase, so period 1 starts right after acquisition).
    A customer counts in period k only if observed through all of it (T >= k d): the
    share is never diluted by customers too recent to have had the chance. The model's
    share is P(X((k - 1) d, k d) > 0) for a newly acquired customer
    (:meth:`probability_repurchase_new_customer`), averaged over the same customers
    (equal for all of them without covariates).

    Parameters
    ----------
    purchase_model : fitted BGNBD, MBGNBD or ParetoNBD (maximum likelihood or Bayesian)
    data : pandas.DataFrame
        The customers, as :func:`clvmodels.calibration_holdout` or
        :func:`clvmodels.summarize` made them.
    transactions : DataFrame or path
        The log ``data`` was made from.
    cohort : {"D", "W", "M", "Q", "Y"}, default "M"
        Cohorts by the calendar period of the first purchase.
    period : number or duration, optional
        Length d of a retention period: a number of the model's time units or a duration
        such as ``"1M"``; by default one ``cohort`` period (``"1M"`` for ``"M"``).
    periods : int, optional
        At most this many periods (by default as many as the longest observation
        covers).
    interval : float, optional
        Level of an interval of the model's share from joint parameter draws
        (``expected_share_lower`` / ``_upper``).
    n_draws, random_state
        Parameter draws (or posterior draws kept) and their seed.
    customer_id, date
        Columns of ``transactions``.

    Returns
    -------
    pandas.DataFrame
        Index (``cohort``, ``period``), a row where the cohort has customers observed
        through the period; columns ``customers`` (the cohort's size), ``at_risk``
        (observed through the period), ``purchasing`` (of those, who purchased in it),
        ``observed_share``, ``expected_share`` and with ``interval`` its bounds.
        ``attrs``: ``time_unit`` and ``period_length`` (d in that unit).

    Examples
    --------
    >>> import clvmodels
    >>> log = clvmodels.datasets.load_cdnow()
    >>> frame = clvmodels.calibration_holdout(log, calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W", duplicates="keep")
    >>> model = clvmodels.ParetoNBD().fit(frame)
    >>> table = clvmodels.cohort_retention(model, frame, transactions=log, cohort="M")
    >>> first = table.loc["1997-01"].head(3)  # the January cohort, periods 1-3
    >>> first["observed_share"].round(3).tolist(), first["expected_share"].round(3).tolist()
    ([0.175, 0.147, 0.091], [0.158, 0.134, 0.117])
    """
    from .models._base import horizon_in_units

    what = "cohort_retention"
    _check_model(purchase_model, "purchase", what)
    _check_frame(data, what)
    if cohort not in _COHORTS:
        raise InvalidDataError(f"cohort={cohort!r}: give one of {', '.join(_COHORTS)}.")
    if interval is not None:
        check_interval(interval)
    setup = _Setup.of(purchase_model, data, transactions, None, cohort,
                      (customer_id, date, None), what)  # fmt: skip
    length = horizon_in_units(f"1{cohort}" if period is None else period, setup.unit,
                              name="period", positive=True)  # fmt: skip
    observed = _observed_lengths(purchase_model, data)
    # periods fully observed per customer (the tolerance absorbs rounding of T)
    reach = np.floor(observed / length + _PERIOD_SLACK).astype(np.int64)
    most = int(reach.max())
    if periods is not None:
        most = min(most, _whole_periods(periods))
    if most < 1:
        raise InvalidDataError(
            f"{what}: no customer has been observed for a whole period of "
            f"{length:g} {setup.unit} (the longest observation is {observed.max():g}); "
            "give a shorter period."
        )
    reach = np.minimum(reach, most)
    counts = _RetentionCounts.of(setup, reach, length, most)
    table = counts.table(setup.groups.names)
    share = _expected_share(purchase_model, data, setup.groups, reach, length, most,
                            interval, n_draws, random_state)  # fmt: skip
    rows = (counts.at_risk > 0).ravel()
    for name, values in share.items():
        table[name] = values.ravel()[rows]
    table.attrs["time_unit"] = setup.unit
    table.attrs["period_length"] = length
    return table


class _RetentionCounts(NamedTuple):
    """(cohorts, periods) customers observed through each period and, of those, who
    purchased in it; the cohorts' sizes."""

    at_risk: np.ndarray
    purchasing: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, setup: _Setup, reach: np.ndarray, length: float, most: int) -> _RetentionCounts:
        groups, bought = setup.groups, setup.bought
        n = len(groups.names)
        # customers observed through period k: those reaching k or beyond
        reached = np.zeros((n, most + 1))
        np.add.at(reached, (groups.codes, reach), 1.0)
        at_risk = reached[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
        # a purchase at age a > 0 falls in period ceil(a / d) (age 0 is the acquisition);
        # the tolerance, as for reach, keeps a purchase made exactly at a period's end
        # (7 days in weeks, say) in that period whatever the rounding of a / d
        period = np.ceil(bought.age / length - _PERIOD_SLACK).astype(np.int64)
        keep = (bought.age > 0) & (period <= reach[bought.customer])
        pairs = np.unique(np.stack([bought.customer[keep], period[keep]]), axis=1)
        purchasing = np.zeros((n, most))
        np.add.at(purchasing, (groups.codes[pairs[0]], pairs[1] - 1), 1.0)
        return cls(at_risk, purchasing, groups.sizes)

    def table(self, names: pd.Index) -> pd.DataFrame:
        most = self.at_risk.shape[1]
        index = pd.MultiIndex.from_product([names, np.arange(1, most + 1)],
                                           names=["cohort", "period"])  # fmt: skip
        table = pd.DataFrame({
            "customers": np.repeat(self.sizes, most),
            "at_risk": self.at_risk.ravel().astype(np.int64),
            "purchasing": self.purchasing.ravel().astype(np.int64),
        }, index=index)  # fmt: skip
        table = table[table["at_risk"] > 0].copy()
        table["observed_share"] = table["purchasing"] / table["at_risk"]
        return table


def _expected_share(model: Any, data: pd.DataFrame, groups: _Segments, reach: np.ndarray,
                    length: float, most: int, interval: float | None, n_draws: int,
                    random_state: Any) -> dict[str, np.ndarray]:  # fmt: skip
    """(cohorts, periods) mean P(purchase in the period) of a new customer over the
    customers observed through it; with ``interval``, bounds from joint draws."""
    from .models._base import quantiles

    starts = length * np.arange(most)
    options = {"n_draws": n_draws, "random_state": _one_seed(random_state)}
    n = len(groups.names)
    design = model._design()
    if design is None:  # the same share for every customer: one curve
        curve = model.probability_repurchase_new_customer(starts, length).to_numpy()
        shares = {"expected_share": np.tile(curve, (n, 1))}
        if interval is not None:
            lower, upper = quantiles(_curve_draws(model, starts, length, options), interval)
            shares["expected_share_lower"] = np.tile(lower, (n, 1))
            shares["expected_share_upper"] = np.tile(upper, (n, 1))
        return shares
    # with covariates: each distinct profile's share, weighted by its customers
    columns = list(design.settings.columns)
    profile = data.groupby(columns, sort=False, dropna=False).ngroup().to_numpy()
    profiles = data[columns].iloc[np.unique(profile, return_index=True)[1]]
    profiles.index = pd.RangeIndex(len(profiles))
    estimate = np.zeros((n, most))
    lower, upper = np.zeros((n, most)), np.zeros((n, most))
    for k in range(most):
        weights = np.zeros((n, len(profiles)))
        eligible = reach >= k + 1
        np.add.at(weights, (groups.codes[eligible], profile[eligible]), 1.0)
        total = np.maximum(weights.sum(axis=1), 1.0)
        values = model.probability_repurchase_new_customer(starts[k], length,
                                                           covariates=profiles)  # fmt: skip
        estimate[:, k] = weights @ values.to_numpy() / total
        if interval is not None:
            draws = _profile_draws(model, starts[k], length, profiles, options)
            lower[:, k], upper[:, k] = quantiles(draws @ weights.T / total, interval)
    if interval is None:
        return {"expected_share": estimate}
    return {"expected_share": estimate, "expected_share_lower": lower,
            "expected_share_upper": upper}  # fmt: skip


def _curve_draws(model: Any, starts: np.ndarray, length: float,
                 options: dict[str, Any]) -> np.ndarray:  # fmt: skip
    """(draws, periods) a new customer's repurchase probabilities at joint parameter
    draws (a posterior thinned evenly to at most ``n_draws``)."""
    family = getattr(type(model), "twin_class", type(model))
    samples = model.parameter_draws(options["n_draws"], options["random_state"])
    return family._f_probability_repurchase(
        t=starts[None, :], x=0.0, t_x=0.0, T=0.0, length=length,
        **model._param_dict(samples[:, None, :]),
    )  # fmt: skip


def _profile_draws(model: Any, start: float, length: float, profiles: pd.DataFrame,
                   options: dict[str, Any]) -> np.ndarray:  # fmt: skip
    """(draws, profiles) joint draws of new customers' repurchase probabilities."""
    from .models._base import drawing_mode

    bayesian = hasattr(model, "posterior_samples")
    with drawing_mode():
        values = model.probability_repurchase_new_customer(
            start, length, covariates=profiles, **({} if bayesian else options)
        )  # fmt: skip
    values = np.asarray(values)
    return values.reshape(-1, values.shape[-1])


def subscription_retention(
    active: pd.DataFrame,
    *,
    periods: int | None = None,
    interval: float | None = None,
    n_draws: int = 1000,
    random_state: Any = 0,
) -> pd.DataFrame:
    """Survival and retention-rate curves per cohort of subscribers, observed and from a
    shifted-beta-geometric model fitted to each cohort (Fader & Hardie 2007).

    Parameters
    ----------
    active : pandas.DataFrame
        One row per cohort (the index names them), one column per period 0, 1, ..., n:
        customers active at the start (column 0) and at the end of each period;
        missing (NaN) after a cohort's last observed period, as for later cohorts.
    periods : int, optional
        Curves through this period (by default the longest observation): beyond a
        cohort's observation they are the model's projection.
    interval : float, optional
        Level of the model curves' intervals, from draws of each cohort's estimates.
    n_draws, random_state
        For ``interval``.

    Returns
    -------
    pandas.DataFrame
        Index (``cohort``, ``t``), t = 0 .. periods; columns ``active`` (observed, NaN
        beyond the observation), ``observed_survival`` (active / active at 0),
        ``survival`` (model S(t), FH 2007 eq. 3), ``observed_retention`` (active(t) /
        active(t - 1)), ``retention_rate`` (model r_t = (beta + t - 1) / (alpha + beta
        + t - 1), FH 2007 eq. 4; missing at t = 0), with ``interval`` their bounds, and
        the cohort's estimates ``alpha`` and ``beta``.

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> pct = clvmodels.datasets.load_sbg_retention().set_index("year").loc[:7]
    >>> active = (pct[["regular_pct_alive", "highend_pct_alive"]].T * 10).round()
    >>> active.index = ["regular", "high end"]
    >>> table = clvmodels.subscription_retention(active, periods=12)
    >>> table.xs(12, level="t")["survival"].round(3).tolist()  # FH 2007: 0.173, 0.394
    [0.17, 0.378]
    """
    from .models.sbg import ShiftedBetaGeometric

    if interval is not None:
        check_interval(interval)
    counts = _subscription_counts(active)
    longest = counts.shape[1] - 1
    if periods is not None:
        longest = _whole_periods(periods)
    t = np.arange(longest + 1)
    options = {"interval": interval, "n_draws": n_draws, "random_state": random_state}
    parts = []
    for cohort, row in counts.iterrows():
        observed = row.dropna().to_numpy(dtype=np.float64)
        try:
            frame = ShiftedBetaGeometric.data_from_counts(observed)
        except InvalidDataError as error:
            raise InvalidDataError(f"subscription_retention: cohort {cohort!r}: {error}") from None
        model = ShiftedBetaGeometric().fit(frame)
        part = pd.DataFrame(index=pd.Index(t, name="t"))
        part["active"] = pd.Series(observed, index=np.arange(len(observed))).reindex(t)
        part["observed_survival"] = part["active"] / observed[0]
        _add_curve(part, "survival", model.survival(t, **options))
        part["observed_retention"] = part["active"] / part["active"].shift(1)
        rate = model.retention_rate(t[1:], **options)
        _add_curve(part, "retention_rate", rate.reindex(t))
        part["alpha"], part["beta"] = model.params_["alpha"], model.params_["beta"]
        parts.append(part)
    return pd.concat(parts, keys=counts.index, names=["cohort", "t"])


def _add_curve(part: pd.DataFrame, name: str, curve: pd.Series | pd.DataFrame) -> None:
    if isinstance(curve, pd.Series):
        part[name] = curve.to_numpy()
        return
    part[name] = curve["estimate"].to_numpy()
    part[f"{name}_lower"] = curve["lower"].to_numpy()
    part[f"{name}_upper"] = curve["upper"].to_numpy()


def _subscription_counts(active: Any) -> pd.DataFrame:
    """Active counts per cohort and period, each cohort observed from period 0 without
    gaps (missing only after its last observed period)."""
    if not isinstance(active, pd.DataFrame) or active.empty:
        raise InvalidDataError(
            "subscription_retention: give a DataFrame with one row per cohort and one "
            "column per period 0, 1, ... of active customers."
        )
    try:
        counts = active.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidDataError(
            "subscription_retention: active counts must be numbers (missing after a "
            "cohort's last observed period)."
        ) from None
    values = counts.to_numpy()
    seen = ~np.isnan(values)
    # a gap: a missing count followed by a known one
    gap = (~seen[:, :-1] & seen[:, 1:]).any(axis=1) | ~seen[:, 0]
    if gap.any():
        raise InvalidDataError(
            f"subscription_retention: cohort {_plain(counts.index[np.argmax(gap)])!r} has a "
            "missing count before a known one (or none at period 0); counts may be missing "
            "only after the cohort's last observed period."
        )
    try:
        periods = [int(c) for c in counts.columns]
    except (TypeError, ValueError):
        periods = []
    if periods != list(range(len(counts.columns))):
        raise InvalidDataError(
            "subscription_retention: the columns must be the periods 0, 1, 2, ... in order "
            f"(whole numbers); got {list(counts.columns)[:6]}."
        )
    if counts.index.has_duplicates:
        raise InvalidDataError(
            "subscription_retention: cohort "
            f"{_plain(counts.index[counts.index.duplicated()][0])!r} appears twice; give "
            "one row per cohort."
        )
    return counts


def check_segments(
    data: pd.DataFrame,
    *,
    acquisition_costs: Mapping[Any, float] | pd.Series,
    segments: str | pd.Series | None = None,
    cohort: str | None = None,
    name: str = "check_segments",
) -> pd.Index:
    """Check the segments and acquisition costs :func:`segment_value` will read, from the
    customers' summary alone, before any model is fitted: every customer has a segment,
    every segment a cost >= 0 and every cost a segment with customers. ``name``
    begins the error messages (the caller's name for the check).

    Cohorts are read from the summary's first purchases (``first_purchase`` or
    ``first_purchase_cal``, as :func:`clvmodels.summarize` and
    :func:`clvmodels.calibration_holdout` write them).

    Returns
    -------
    pandas.Index
        The segments, sorted.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"channel": ["search", "social", "search"]}, index=[1, 2, 3])
    >>> check_segments(frame, segments="channel",
    ...                acquisition_costs={"search": 10.0, "social": 5.0}).tolist()
    ['search', 'social']
    """
    what = name
    _check_frame(data, what)
    first = None
    if cohort is not None:
        column = next((c for c in ("first_purchase", "first_purchase_cal") if c in data), None)
        if column is None:
            raise InvalidDataError(
                f"{what}: cohorts need the summary's first_purchase column (from "
                "clvmodels.summarize or calibration_holdout)."
            )
        first = pd.DatetimeIndex(data[column])
    groups = _segments(data, segments, cohort, first, what)
    _costs(acquisition_costs, groups, data.index)
    return groups.names


# ------------------------------------------------------------------ the inputs


class _Setup(NamedTuple):
    """What every segment table reads first: the purchases (the log read once), each
    customer's segment and the time unit."""

    bought: _Purchases
    groups: _Segments
    unit: str

    @classmethod
    def of(cls, model: Any, data: pd.DataFrame, transactions: Any, segments: Any,
           cohort: Any, columns: tuple[str, str, str | None], what: str) -> _Setup:  # fmt: skip
        from .data.reader import read_log

        customer_id, date, amount = columns
        end = _observation_end(data, what)
        log = read_log(transactions, customer_id=customer_id, date=date, amount=amount,
                       duplicates="keep")  # fmt: skip
        unit = _time_unit(model, data, what)
        bought = _Purchases.of(log, data, end, unit, columns, what)
        return cls(bought, _segments(data, segments, cohort, bought.first_purchases(), what),
                   unit)  # fmt: skip



def _check_inputs(purchase_model: Any, spend_model: Any, data: Any, margin: Any,
                  interval: Any, what: str = "segment_value") -> None:  # fmt: skip
    _check_model(purchase_model, "purchase", what)
    _check_model(spend_model, "spend", what)
    _check_frame(data, what)
    if not (is_real(margin) and 0 < margin <= 1):
        raise InvalidDataError(f"margin={margin!r}: give the share of revenue that is "
                               "profit, in (0, 1].")  # fmt: skip
    if interval is not None:
        check_interval(interval)


def _check_model(model: Any, role: str, what: str) -> None:
    """A fitted continuous-time purchase model (no time-varying covariates: segments of
    a covariate history are not available) or a fitted spend model with a finite mean."""
    from . import registry

    spec = registry.MODELS.get(getattr(model, "kind", None))
    if spec is None or spec.role != role or (role == "purchase" and spec.discrete):
        expected = "BGNBD, MBGNBD or ParetoNBD" if role == "purchase" else "GammaGamma"
        raise InvalidDataError(
            f"{what}: the {role} model must be a fitted {expected}, not "
            f"{type(model).__name__}."
        )
    model._check_fitted()
    if role == "spend":
        model._require_finite_mean()
    if getattr(model, "time_varying_", False):
        raise InvalidDataError(
            f"{what}: the purchase model was fitted with time-varying covariates; "
            "segment economics on a covariate history are not available yet."
        )


def _check_frame(data: Any, what: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InvalidDataError(f"{what}: data must be the customers' summary frame.")


def _observation_end(data: pd.DataFrame, what: str = "segment_value") -> str:
    settings = data.attrs.get("clvmodels", {})
    end = settings.get("calibration_end") or settings.get("observation_end")
    if end is None:
        raise InvalidDataError(
            f"{what}: data does not record its observation end "
            "(data.attrs['clvmodels']); build it with clvmodels.calibration_holdout or "
            "clvmodels.summarize(..., observation_end=...)."
        )
    return str(end)


def _time_unit(model: Any, data: pd.DataFrame, what: str = "segment_value") -> str:
    unit = getattr(model, "time_unit_", None) or data.attrs.get("clvmodels", {}).get("time_unit")
    if unit is None:
        raise InvalidDataError(
            f"{what}: neither the purchase model nor data records its time unit; fit "
            "the model on a frame made by clvmodels.calibration_holdout or summarize."
        )
    return str(unit)


def _historical_value(bought: _Purchases, margin: float, n: int) -> np.ndarray:
    """Each customer's margin x revenue of every purchase through the observation end
    (:func:`clvmodels.historical_clv`'s value, not discounted)."""
    return margin * np.bincount(bought.customer, bought.revenue, minlength=n)


def _segments(data: pd.DataFrame, segments: Any, cohort: Any,
              first_purchase: pd.DatetimeIndex, what: str) -> _Segments:  # fmt: skip
    if (segments is None) == (cohort is None):
        raise InvalidDataError(
            f"{what}: give segments= (a column of data or a Series customer -> "
            "segment) or cohort= (a period of first purchases such as 'M'), one of them."
        )
    if cohort is not None:
        if cohort not in _COHORTS:
            raise InvalidDataError(f"cohort={cohort!r}: give one of {', '.join(_COHORTS)}.")
        labels = pd.Series(pd.DatetimeIndex(first_purchase).to_period(cohort).astype(str),
                           index=data.index)  # fmt: skip
        source = f"cohort={cohort!r}"
    elif isinstance(segments, str):
        if segments not in data.columns:
            columns = ", ".join(map(str, data.columns))
            raise InvalidDataError(f"segments={segments!r} is not a column of data ({columns}).")
        labels, source = data[segments], f"column {segments!r}"
    elif isinstance(segments, pd.Series):
        _unique_index(segments, "segments", "customer")
        labels, source = segments.reindex(data.index), "segments"
    else:
        raise InvalidDataError("segments= must be a column name or a pandas Series.")
    missing = labels.isna().to_numpy()
    if missing.any():
        example = data.index[np.argmax(missing)]
        raise InvalidDataError(
            f"{what}: {int(missing.sum()):,} customers have no segment in {source} "
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
        _unique_index(costs, "acquisition_costs", "customer")
        values = _numbers(costs.reindex(customers), "acquisition_costs", "customer")
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            example = customers[np.argmax(bad)]
            raise InvalidDataError(
                f"acquisition_costs: {int(bad.sum()):,} customers have a missing, negative "
                f"or infinite cost (e.g. customer {_plain(example)!r}); give each a cost "
                ">= 0."
            )
        return groups.totals(values)
    if isinstance(costs, pd.Series):
        _unique_index(costs, "acquisition_costs", "segment")
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


def _whole_periods(periods: Any) -> int:
    if isinstance(periods, bool) or not (isinstance(periods, int | np.integer) and periods >= 1):
        raise InvalidDataError(f"periods={periods!r}: give a whole number >= 1.")
    return int(periods)


def _unique_index(series: pd.Series, name: str, what: str) -> None:
    repeated = series.index[series.index.duplicated()]
    if len(repeated):
        raise InvalidDataError(
            f"{name}: {what} {_plain(repeated[0])!r} appears more than once in the Series' "
            f"index; give one value per {what}."
        )


def _numbers(series: pd.Series, name: str, what: str) -> np.ndarray:
    """The values as floats (missing as NaN), or an error naming a value that is not a
    number."""
    values = pd.to_numeric(series, errors="coerce")
    text = values.isna() & series.notna()
    if text.any():
        raise InvalidDataError(
            f"{name}: {int(text.sum()):,} value(s) are not numbers (e.g. "
            f"{series[text].iloc[0]!r} for {what} {_plain(series.index[text][0])!r})."
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


# --------------------------------------------------------------------- payback


class _Purchases(NamedTuple):
    """The purchases of ``data``'s customers through the observation end: each one's
    customer (row of ``data``), age (time units since that customer's first purchase)
    and revenue; and each customer's first purchase (nanoseconds since the epoch)."""

    customer: np.ndarray
    age: np.ndarray
    revenue: np.ndarray | None
    first: np.ndarray

    @classmethod
    def of(cls, log: pd.DataFrame, data: pd.DataFrame, end: str, unit: str,
           columns: tuple[str, str, str | None], what: str) -> _Purchases:  # fmt: skip
        """From the typed log (:func:`clvmodels.data.reader.read_log`); every customer of
        ``data`` must have a purchase by ``end`` (else the ids were read two ways)."""
        from .data.semantics import parse_end
        from .data.timeunits import time_unit_nanoseconds

        customer_id, date, amount = columns
        stamps = log[date].to_numpy().astype("datetime64[ns]").astype(np.int64)
        position = data.index.get_indexer(pd.Index(log[customer_id]))
        inside = (position >= 0) & (stamps <= parse_end(end, "end").last_ns)
        position, stamps = position[inside], stamps[inside]
        first = np.full(len(data), np.iinfo(np.int64).max)
        earliest = pd.Series(stamps).groupby(position, sort=False).min()
        first[earliest.index.to_numpy()] = earliest.to_numpy()
        absent = first == np.iinfo(np.int64).max
        if absent.any():
            raise InvalidDataError(
                f"{what}: {int(absent.sum()):,} of {len(data):,} customers of data have no "
                f"transactions through {end} (e.g. customer "
                f"{_plain(data.index[np.argmax(absent)])!r}); pass the log data was made "
                "from, with the same customer_id column."
            )
        ages = (stamps - first[position]) / time_unit_nanoseconds(unit)
        revenue = None if amount is None else log[amount].to_numpy(dtype=np.float64)[inside]
        return cls(position, ages, revenue, first)

    def first_purchases(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.first.astype("datetime64[ns]"))


class _PaybackCurve(NamedTuple):
    """Each segment's cumulative margin by customer age: the purchases made by then
    (``history``, exact) plus the model's expected margin beyond each customer's
    observation (``ahead``, on the grid of ``ages``, 0 at age 0)."""

    history: _History
    ahead: np.ndarray
    ages: np.ndarray
    shortest: np.ndarray

    def total(self) -> np.ndarray:
        """(segments, grid) cumulative margin at the grid ages (0 included)."""
        model = np.concatenate([np.zeros((len(self.ahead), 1)), self.ahead], axis=1)
        past = np.stack([self.history.at(s, self.ages) for s in range(len(self.ahead))])
        return past + model


def _payback_curve(purchase_model: Any, spend_model: Any, data: pd.DataFrame,
                   bought: _Purchases, groups: _Segments, margin: float, horizon: Any,
                   unit: str, factored: Any = None) -> _PaybackCurve:  # fmt: skip
    """Per segment, the cumulative margin by customer age (time since each customer's
    first purchase): the margin of every purchase made at an age <= a, plus, for a
    customer observed for less than a (T_i < a), margin x expected spend x
    E[X(T_i, a)] from the model at its estimates (:class:`_ModelPart`): history where
    there is one, the model beyond, each customer's model part capped at their horizon.
    The grid runs to the longest observation plus the horizon."""
    from .models._base import horizon_in_units

    observed = _observed_lengths(purchase_model, data)
    length = horizon_in_units(horizon, unit, positive=True)
    top = float(observed.max()) + length
    step = max(top / _PAYBACK_POINTS, 1e-9)
    shortest = np.full(len(groups.names), np.inf)
    np.minimum.at(shortest, groups.codes, observed)
    # each segment's shortest observation is a grid age: up to it the model has no part,
    # and the linear interpolation must not lend it one
    grid = np.unique(np.r_[step * np.arange(1, int(np.ceil(top / step)) + 1),
                           shortest[(shortest > 0) & (shortest < top)]])  # fmt: skip
    part = _ModelPart(purchase_model, spend_model, data, groups, margin, length, factored)
    history = _History.of(groups.codes[bought.customer], bought.age, margin * bought.revenue,
                          len(groups.names))  # fmt: skip
    return _PaybackCurve(history, part.curve(grid), np.r_[0.0, grid], shortest)


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
        total = self.total[self.starts[s]:self.ends[s]]
        made = np.searchsorted(ages, age, side="right")
        return np.where(made > 0, total[np.maximum(made - 1, 0)] if len(total) else 0.0, 0.0)

    def jumps(self, s: int, lo: float, hi: float) -> np.ndarray:
        """Ages of segment ``s``'s purchases strictly between ``lo`` and ``hi``."""
        ages = self.ages[self.starts[s]:self.ends[s]]
        return ages[np.searchsorted(ages, lo, side="right"):np.searchsorted(ages, hi)]


def _crossings(curve: _PaybackCurve, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first age at which each segment's cumulative margin, the purchases made by
    then (exact, a step at each purchase) plus the model's part (linear between grid
    points, 0 at age 0), reaches its cost, and where that comes from: "history" when
    every customer of the segment was still observed then."""
    history, ahead, ages, shortest = curve
    periods = np.full(len(cost), np.inf)
    source = np.full(len(cost), "not within the horizon", dtype=object)
    for s in range(len(cost)):
        if cost[s] <= 0:
            periods[s], source[s] = 0.0, "history"
            continue
        model = np.r_[0.0, ahead[s]]
        reached = np.nonzero(history.at(s, ages) + model >= cost[s])[0]
        if not len(reached):
            continue
        k = int(reached[0])
        if k == 0:  # the first purchases alone cover the cost
            periods[s], source[s] = 0.0, "history"
            continue
        periods[s] = _within_cell(history, s, ages, k, model[k - 1], model[k], cost[s])
        source[s] = "history" if periods[s] <= shortest[s] else "model"
    return periods, source


def _within_cell(history: _History, s: int, ages: np.ndarray, k: int, m_lo: float,
                 m_hi: float, cost: float) -> float:  # fmt: skip
    """Where segment ``s`` reaches ``cost`` within the grid cell (ages[k - 1], ages[k]]:
    the history steps at its purchases, the model's part linear from ``m_lo`` to
    ``m_hi``."""
    lo, hi = ages[k - 1], ages[k]
    if not np.isfinite(m_hi):  # an infinite expected spend covers any cost at once
        return float(lo)
    jumps = history.jumps(s, lo, hi)
    for left, right in zip(np.r_[lo, jumps], np.r_[jumps, hi], strict=True):
        base = history.at(s, np.array([left]))[0]
        m_left = m_lo + (left - lo) / (hi - lo) * (m_hi - m_lo)
        m_right = m_lo + (right - lo) / (hi - lo) * (m_hi - m_lo)
        if base + m_left >= cost:
            return float(left)
        if base + m_right >= cost:
            return float(left + (cost - base - m_left) / (m_right - m_left) * (right - left))
    return float(hi)


# ------------------------------------------------------------------- intervals


def _add_intervals(table: pd.DataFrame, purchase_model: Any, spend_model: Any,
                   data: pd.DataFrame, groups: _Segments, options: dict[str, Any],
                   interval: float, n_draws: int, random_state: Any,
                   factored: Any, curve: _PaybackCurve) -> None:  # fmt: skip
    """Bounds of the segment totals from joint draws, each draw summed per segment
    (through ``factored``, a :class:`clvmodels.clv.FactoredClv`, where there is one),
    and of the payback periods at the same draws."""
    from .clv import clv_group_draws
    from .models._base import horizon_in_units, quantiles

    random_state = _one_seed(random_state)

    cac = table["cac"].to_numpy()
    costly = [s for s in range(len(cac)) if cac[s] > 0]
    drawn = None
    if factored is not None:
        # the payback draws need each costly segment's weight of every (x, T) pair
        drawn = factored.group_draws(spend_model, groups.codes, len(groups.names),
                                     options["margin"], n_draws, random_state, weigh=costly)
        predicted, alive = drawn.value, drawn.alive
    else:
        predicted = clv_group_draws(purchase_model, spend_model, data, groups.codes,
                                    len(groups.names), n_draws=n_draws,
                                    random_state=random_state, **options)  # fmt: skip
        alive = _alive_draws(purchase_model, data, groups, n_draws, random_state)
    history = table["historical_value"].to_numpy()
    clv = history[None, :] + predicted
    ratio = np.stack([_ratio(row, cac) for row in clv])
    length = horizon_in_units(options["horizon"], _time_unit(purchase_model, data),
                              positive=True)  # fmt: skip
    model_part = _ModelPart(purchase_model, spend_model, data, groups, options["margin"],
                            length, factored)  # fmt: skip
    model_part.use_draws(n_draws, random_state, costly, drawn)
    payback = _payback_draws(curve, cac, table["payback_period"].to_numpy(), model_part,
                             costly)  # fmt: skip
    for name, draws in (("predicted_value", predicted), ("clv", clv), ("clv_to_cac", ratio),
                        ("payback_period", payback),
                        ("share_alive", alive / groups.sizes[None, :])):  # fmt: skip
        lower, upper = quantiles(draws, interval)
        after = table.columns.get_loc(name) + 1
        table.insert(after, f"{name}_lower", lower)
        table.insert(after + 1, f"{name}_upper", upper)
    table.attrs["interval"] = interval


def _one_seed(random_state: Any) -> int:
    """An integer seed that gives the same draws to every step that draws: the seed
    itself, or the next integer of a Generator (None: of a fresh one). A Generator or
    None passed on as it is would give each step new draws."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return int(random_state)
    if random_state is None or isinstance(random_state, np.random.Generator):
        return int(np.random.default_rng(random_state).integers(2**63 - 1))
    raise InvalidDataError(
        f"random_state={random_state!r}: give an int, a numpy Generator or None."
    )


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
    block = max(1, _ALIVE_BLOCK_VALUES // held)
    total = np.zeros((len(keep), len(groups.names)))
    for start in range(0, len(distinct), block):
        rows = slice(start, start + block)
        values = model.draws("probability_alive", distinct.iloc[rows], **options).to_numpy()
        values = values.reshape(-1, values.shape[-1])[keep]
        total += np.asarray((counts[rows].T @ values.T).T)
    return total


# ------------------------------------------------------------ payback at joint draws


class _ModelPart:
    """The model's part of the payback curves: margin x expected spend x expected
    purchases beyond each customer's observation, as a sum over units of
    g(unit; span) x weight(unit, segment), span = min(age - T, horizon).

    Through a :class:`clvmodels.clv.FactoredClv` the units are the (x, T) pairs: g the
    expected purchases given alive, the weight P(alive) x spend summed over the pair's
    customers, so an evaluation costs one g per pair. Otherwise (covariates) the units
    are the customers: g their expected purchases, the weight their spend. At the
    estimates (:meth:`curve`, every segment at each grid age) or at joint draws (the
    draws of :func:`clvmodels.clv._paired_draws`, as the other intervals use;
    :meth:`at`, one segment at one age per draw)."""

    def __init__(self, purchase_model: Any, spend_model: Any, data: pd.DataFrame,
                 groups: _Segments, margin: float, length: float,
                 factored: Any) -> None:  # fmt: skip
        self.model, self.spend_model, self.margin = purchase_model, spend_model, margin
        self.groups, self.length, self.factored, self.data = groups, length, factored, data
        if factored is not None:
            self.unit_T = factored.pair_T
        else:
            self.arrays = purchase_model._read(data)[0]
            self.spend_arrays = spend_model._read(data)[0]
            self.unit_T = np.asarray(self.arrays["T"], dtype=np.float64)
        self.draws: dict[str, Any] = {}

    def _given(self, params: dict[str, np.ndarray], ages: np.ndarray,
               units: Any = slice(None)) -> np.ndarray:  # fmt: skip
        """(ages, units) g at span min(age - T, horizon), 0 before the unit's T."""
        span = np.clip(ages[:, None] - self.unit_T[units][None, :], 0.0, self.length)
        if self.factored is not None:
            return self.factored.if_alive(params, span, units)
        part = {name: values[units] for name, values in self.arrays.items()}
        return self.model._cumulative_purchases(part, params, span)

    def _spend(self, s_params: dict[str, np.ndarray], units: Any = slice(None)) -> np.ndarray:
        from .models.gamma_gamma import expected_spend

        return expected_spend(self.spend_arrays["frequency"][units],
                              self.spend_arrays["monetary_value"][units], **s_params)

    # --------------------------------------------------------- at the estimates

    def curve(self, grid: np.ndarray) -> np.ndarray:
        """(segments, grid) the model's part at the estimates, every segment at once."""
        params = self.model._param_dict(self.model.params_.to_numpy())
        weights = self._weights(params)
        ahead = np.zeros((len(self.groups.names), len(grid)))
        step = max(1, _ALIVE_BLOCK_VALUES // max(len(self.unit_T), 1))
        for start in range(0, len(grid), step):
            ages = grid[start:start + step]
            ahead[:, start:start + step] = (weights.T @ self._given(params, ages).T)
        return np.asarray(ahead)

    def _weights(self, params: dict[str, np.ndarray]) -> Any:
        """(units, segments) weights at the estimates."""
        from scipy import sparse

        from .models._base import point_estimate

        codes, n = self.groups.codes, len(self.groups.names)
        # the spend model's own prediction per customer (a Bayesian one's posterior mean)
        spend = self.margin * point_estimate(self.spend_model.expected_spend(self.data))
        spend = np.asarray(spend, dtype=np.float64)
        if self.factored is None:
            return sparse.csr_matrix((spend, (np.arange(len(codes)), codes)),
                                     shape=(len(codes), n))  # fmt: skip
        factored = self.factored
        history = factored.customer
        alive = np.asarray(factored.alive(params), dtype=np.float64)[history]
        return sparse.csr_matrix((alive * spend, (factored.pair[history], codes)),
                                 shape=(len(factored.pair_x), n))  # fmt: skip

    # ------------------------------------------------------------ at joint draws

    def use_draws(self, n_draws: int, random_state: Any, segments: list[int],
                  drawn: Any = None) -> None:
        """Take the joint draws and, through a FactoredClv, each segment's weight per
        pair at each draw: from ``drawn`` (the CLV pass's
        :class:`clvmodels.clv.GroupDraws`, which holds them) or drawn here."""
        from .clv import _paired_draws

        if self.factored is not None and drawn is None:
            drawn = self.factored.group_draws(
                self.spend_model, self.groups.codes, len(self.groups.names), self.margin,
                n_draws, random_state, weigh=segments)
        if drawn is not None:
            p_draws, s_draws = drawn.purchase_draws, drawn.spend_draws
        else:
            p_draws, s_draws = _paired_draws(self.model, self.spend_model, n_draws,
                                             random_state)  # fmt: skip
        self.draws = {"purchase": p_draws, "spend": s_draws, "count": len(p_draws),
                      "pair_weights": None if drawn is None else drawn.pair_weights}

    @property
    def n_draws(self) -> int:
        return self.draws["count"]

    def at(self, s: int, chosen: np.ndarray, ages: np.ndarray) -> np.ndarray:
        """Segment ``s``'s model part at ``ages`` (one per chosen draw), in blocks of
        draws of bounded memory."""
        units = (self.draws["pair_weights"][s][0] if self.factored is not None
                 else np.flatnonzero(self.groups.codes == s))  # fmt: skip
        width = len(self.unit_T[units])
        step = max(1, _ALIVE_BLOCK_VALUES // max(width, 1))
        if len(chosen) > step:
            return np.concatenate([self.at(s, chosen[i:i + step], ages[i:i + step])
                                   for i in range(0, len(chosen), step)])  # fmt: skip
        params = self.model._param_dict(self.draws["purchase"][chosen, None, :])
        given = self._given(params, ages, units)
        if self.factored is not None:
            weight = self.draws["pair_weights"][s][1][chosen]
        else:
            spend_params = self.spend_model._param_dict(self.draws["spend"][chosen, None, :])
            weight = self.margin * self._spend(spend_params, units)
        # a draw's spend may be infinite (q <= 1): no purchase expected is still nothing
        with np.errstate(invalid="ignore"):
            return np.sum(np.where(given == 0, 0.0, given * weight), axis=1)


def _payback_draws(curve: _PaybackCurve, cost: np.ndarray, periods: np.ndarray,
                   part: _ModelPart, segments: list[int]) -> np.ndarray:
    """(draws, segments) payback periods at each joint draw: per segment the first grid
    cell where its cumulative margin reaches the cost, found by bisection on the grid
    (the curve grows with age), then the same interpolation as the estimate."""
    history, _, ages, shortest = curve
    draws = np.tile(periods, (part.n_draws, 1))
    top = len(ages) - 1
    for s in segments:
        past = history.at(s, ages)
        # the model has no part up to the shortest observation: no draw differs there
        quiet = int(np.searchsorted(ages, shortest[s], side="right")) - 1
        if past[quiet] >= cost[s]:
            continue
        everyone = np.arange(part.n_draws)
        at_top = part.at(s, everyone, np.full(part.n_draws, ages[top]))
        reach = past[top] + at_top >= cost[s]
        column = np.full(part.n_draws, np.inf)
        lo, hi = np.full(part.n_draws, quiet), np.full(part.n_draws, top)
        m_lo, m_hi = np.zeros(part.n_draws), at_top
        estimate = np.searchsorted(ages, periods[s]) if np.isfinite(periods[s]) else top
        probes = [int(estimate), int(estimate) - 1]
        while True:
            open_ = reach & (hi - lo > 1)
            if not open_.any():
                break
            mid = (lo + hi) // 2
            if probes:  # first look where the estimate crossed
                guess = probes.pop(0)
                mid = np.where((guess > lo) & (guess < hi), guess, mid)
            rows = np.flatnonzero(open_)
            values = part.at(s, rows, ages[mid[rows]])
            up = past[mid[rows]] + values >= cost[s]
            hi[rows[up]], m_hi[rows[up]] = mid[rows[up]], values[up]
            lo[rows[~up]], m_lo[rows[~up]] = mid[rows[~up]], values[~up]
        for d in np.flatnonzero(reach):
            column[d] = _within_cell(history, s, ages, int(hi[d]), m_lo[d], m_hi[d], cost[s])
        draws[:, s] = column
    return draws

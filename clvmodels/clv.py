"""Predictive customer lifetime value from a purchase model and a spend model.

CLV over a horizon H is ``margin * E[spend per transaction] * discounted expected
transactions``, the latter being the integral of e^{-delta t} dE[X(t)] over (0, H]
(Fader, Hardie & Lee 2005, "RFM and CLV", the DERT integral truncated at H). Integrated
by parts it is

    e^{-delta H} E[X(H)] + delta * integral_0^H e^{-delta t} E[X(t)] dt,

whose integrand is smooth, so Gauss-Legendre quadrature with a few nodes is exact to
about 1e-10. Discrete-time models (BG/BB) transact at whole opportunities, each
discounted at its time. Spend and purchases are independent under the Gamma-Gamma
assumption, so their expectations multiply.

Units, the classic trap: the horizon is a calendar duration ("12M", "52W", "1Y") and the
discount rate an *annual effective* rate (0.10 = 10 % a year). Both are converted into
the model's time unit, the one recency and T were measured in when it was fitted: the
horizon via :func:`~clvmodels.data.timeunits.duration_in_units` and the rate into the
continuous rate per time unit, delta = ln(1 + rate) * (length of a unit / 365.25 days).
A model fitted in days and one fitted in weeks therefore give the same CLV.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_draws, check_interval, is_integer, is_real
from .data.timeunits import time_unit_nanoseconds
from .exceptions import InvalidDataError
from .models._base import (
    check_time_units,
    data_time_unit,
    distinct_patterns,
    draw_blocks,
    horizon_in_units,
    pattern_codes,
    quantiles,
)
from .models._purchase import _is_history
from .models.gamma_gamma import expected_spend

__all__ = ["continuous_discount_rate", "predictive_clv"]

_NS_PER_YEAR = 365.25 * 86_400 * 10**9


def continuous_discount_rate(annual_rate: float, time_unit: str) -> float:
    """Continuous discount rate per ``time_unit`` equivalent to an annual effective rate.

    Examples
    --------
    >>> round(continuous_discount_rate(0.15, "W"), 5)  # FHL (2005): 0.0027 a week
    0.00268
    """
    if not is_real(annual_rate) or not np.isfinite(annual_rate) or annual_rate <= -1:
        raise InvalidDataError(f"discount_rate={annual_rate!r}: use an annual rate > -1.")
    return float(np.log1p(annual_rate) * time_unit_nanoseconds(time_unit) / _NS_PER_YEAR)


def _is_bayesian(model: Any) -> bool:
    return model is not None and hasattr(model, "posterior_samples")


def _paired_draws(purchase_model: Any, spend_model: Any, n_draws: int, random_state: Any):
    """Posterior draws of the Bayesian model(s), thinned evenly to at most ``n_draws``;
    draws of the asymptotic distribution for a maximum-likelihood partner, as many.
    Two posteriors are thinned to the same count (the fits are independent, so pairing
    draws by position is a draw from the joint)."""
    rng = np.random.default_rng(random_state)
    sizes = [len(m.posterior_samples()) for m in (purchase_model, spend_model) if _is_bayesian(m)]
    count = min([*sizes, n_draws])

    def draws(model: Any) -> np.ndarray | None:
        if model is None:
            return None
        if _is_bayesian(model):
            return model.parameter_draws(count)
        return model.parameter_draws(count, rng)

    return draws(purchase_model), draws(spend_model)


def _distinct_rows(
    p_arrays: dict[str, np.ndarray], s_arrays: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """The distinct rows of both models' columns, and the row of each customer."""
    keyed = {**{("p", k): v for k, v in p_arrays.items()},
             **{("s", k): v for k, v in s_arrays.items()}}  # fmt: skip
    distinct, expand = distinct_patterns(keyed)  # type: ignore[arg-type]
    p_distinct = {k: distinct[("p", k)] for k in p_arrays}
    s_distinct = {k: distinct[("s", k)] for k in s_arrays}
    return p_distinct, s_distinct, expand


def _history_purchases(purchase_model: Any, history: Any, length: float, delta: float) -> Any:
    """(parameters, rows) -> each customer's discounted purchases over the horizon, for
    a model fitted with time-varying covariates; parameters may be a stack of draws."""
    if not hasattr(purchase_model, "_history_discounted"):
        raise InvalidDataError(
            f"predictive_clv on a covariate history needs a ParetoNBD fitted on one "
            f"(maximum likelihood); {type(purchase_model).__name__} is not."
        )
    evaluate = purchase_model._history_discounted(history, length, delta)
    n = len(history.frame)

    def purchases(p_params: np.ndarray, rows: slice) -> np.ndarray:
        p_params = np.asarray(p_params, dtype=np.float64)
        if p_params.ndim == 1:
            return evaluate(p_params, rows)
        # draws (draws x 1 x parameters): the pieces do not broadcast, one at a time
        flat = p_params.reshape(-1, p_params.shape[-1])
        if not len(flat):
            return np.empty((0, len(range(*rows.indices(n)))))
        return np.stack([evaluate(p, rows) for p in flat])

    return purchases


def _posterior_clv(value, purchase_model, spend_model, n_rows, interval, n_draws, random_state):
    """CLV over the posterior (``n_draws`` evenly thinned draws): per row (mean, HDI
    lower, HDI upper, sd), the highest-density interval of probability ``interval``
    (NaN without one)."""
    from .bayes._base import hdi_bounds, summarize_draws

    if interval is not None:
        check_interval(interval)
    p_draws, s_draws = _paired_draws(purchase_model, spend_model, n_draws, random_state)
    count = len(p_draws)
    p_draws = p_draws[:, None, :]
    s_draws = None if s_draws is None else s_draws[:, None, :]
    out = np.full((n_rows, 4), np.nan)

    def evaluate(rows: slice, chosen: slice) -> np.ndarray:
        return value(p_draws[chosen], None if s_draws is None else s_draws[chosen], rows)

    # bounded memory, however many draws and customers (draw_blocks)
    for rows, values in draw_blocks(evaluate, count, n_rows):
        out[rows, 0], out[rows, 3] = summarize_draws(values)
        if interval is not None:
            out[rows, 1], out[rows, 2] = hdi_bounds(values, interval)
    return out


def _gauss_legendre_schedule(
    n_nodes: int, length: float, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Times and weights of the discounted sum over the cumulative purchases E[X(t)].

    By parts, int_0^L e^{-delta t} dE[X(t)] = e^{-delta L} E[X(L)]
    + delta int_0^L e^{-delta t} E[X(t)] dt; the integral by Gauss-Legendre on [0, L]
    (Abramowitz & Stegun 25.4.29), the boundary term as one more point with its weight.
    """
    nodes, node_weights = np.polynomial.legendre.leggauss(n_nodes)
    times = np.append(length * (nodes + 1) / 2, length)
    weights = np.append(
        delta * length / 2 * node_weights * np.exp(-delta * times[:-1]),
        np.exp(-delta * length),
    )
    return times, weights


def _check_models(purchase_model: Any, spend_model: Any) -> None:
    """The right kind of model in each argument, with a message saying which is which."""
    roles = (
        "purchase_model takes a fitted purchase model (BGNBD, MBGNBD, ParetoNBD or BGBB) "
        "and spend_model a fitted GammaGamma (or None to count transactions)"
    )
    if not hasattr(purchase_model, "_cumulative_purchases"):
        swapped = hasattr(spend_model, "_cumulative_purchases")
        raise InvalidDataError(
            f"purchase_model is a {type(purchase_model).__name__}, which does not predict "
            f"repeat purchases: {roles}."
            + (" The two models look swapped." if swapped else "")
        )
    if spend_model is not None and not hasattr(spend_model, "expected_spend"):
        raise InvalidDataError(
            f"spend_model is a {type(spend_model).__name__}, which does not predict the "
            f"value of transactions: {roles}."
        )


def _model_time_unit(model: Any, time_unit: str | None) -> str:
    fitted = getattr(model, "time_unit_", None)
    if time_unit is not None:
        time_unit_nanoseconds(time_unit)  # validates
        check_time_units(
            time_unit, "time_unit=", fitted,
            f"{type(model).__name__} was fitted on data in",
            fix="Leave time_unit= out (it is read from the model), or refit the model on "
            f"data in {time_unit!r}.",
        )  # fmt: skip
    unit = time_unit or fitted
    if unit is None:
        raise InvalidDataError(
            f"{type(model).__name__} does not know the time unit of the data it was fitted "
            "on (fit it on a frame from clvmodels.summarize / calibration_holdout, or pass "
            "time_unit='W' etc. to predictive_clv)."
        )
    time_unit_nanoseconds(unit)  # validates
    return unit


class _Clv(NamedTuple):
    """What CLV is computed from: ``value(purchase params, spend params, rows)`` of the
    distinct rows (parameters may be stacks of draws, draws x 1 x parameters), its
    estimate, the customers' index and each customer's distinct row."""

    value: Any
    estimate: np.ndarray
    index: pd.Index
    expand: np.ndarray


def _checked_unit(purchase_model: Any, data: Any, time_unit: str | None) -> str:
    """The purchase model's time unit, which the data's must be."""
    unit = _model_time_unit(purchase_model, time_unit)
    check_time_units(
        data.time_unit if _is_history(data) else data_time_unit(data),
        "data.attrs['clvmodels']['time_unit']", unit,
        f"{type(purchase_model).__name__} was fitted on data in" if time_unit is None
        else "time_unit= says the purchase model was fitted on data in",
    )  # fmt: skip
    return unit


# the fewer Gauss-Legendre nodes tried for the draws, in order
_FEWER_NODES = (4, 6, 8, 12, 16)


def _fewest_nodes(approximate: Any, estimate: np.ndarray, length: float, delta: float,
                  most: int) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """The discounting schedule with the fewest nodes (fewer than ``most``) with which
    ``approximate(schedule)`` reproduces ``estimate`` to 1e-9 (relative), or None. The
    integrand is smooth, so a few nodes often do; the draws, which only feed an
    interval, then use that many."""
    scale = np.maximum(np.abs(estimate), 1e-300)
    for nodes in _FEWER_NODES:
        if nodes >= most:
            break
        schedule = _gauss_legendre_schedule(nodes, length, delta)
        if np.all(np.abs(approximate(schedule) - estimate) <= 1e-9 * scale):
            return schedule
    return None


def _clv_setup(purchase_model: Any, spend_model: Any, data: Any, *, horizon: Any,
               discount_rate: float, margin: float, time_unit: str | None,
               quadrature_nodes: int, draws: bool) -> _Clv:  # fmt: skip
    """The horizon and rate in the model's unit, the discounting schedule, and the
    value function over the distinct customers; with ``draws``, the fewest Gauss-Legendre
    nodes that reproduce the estimate to 1e-9 serve the draws."""
    unit = _checked_unit(purchase_model, data, time_unit)
    length = horizon_in_units(horizon, unit, positive=True)
    delta = continuous_discount_rate(discount_rate, unit)
    if getattr(purchase_model, "discrete_time", False):
        # sum_k e^{-delta k} (E[X(k)] - E[X(k-1)]) = e^{-delta K} E[X(K)]
        #   + sum_{k<K} (e^{-delta k} - e^{-delta (k+1)}) E[X(k)]
        steps = int(np.floor(length + 1e-9))
        if steps < 1:
            raise InvalidDataError(
                f"horizon={horizon!r} is shorter than one opportunity ({unit}) of "
                f"{type(purchase_model).__name__}."
            )
        times = np.arange(1.0, steps + 1)
        weights = np.exp(-delta * times) - np.append(np.exp(-delta * times[1:]), 0.0)
    else:
        times, weights = _gauss_legendre_schedule(quadrature_nodes, length, delta)

    history = _is_history(data)
    if history:
        purchases = _history_purchases(purchase_model, data, length, delta)
        frame, index = data.frame, data.frame.index
        s_arrays = spend_model._read(frame)[0] if spend_model is not None else {}
        expand = np.arange(len(index))
    else:
        p_arrays, index = purchase_model._read(data)
        s_arrays = spend_model._read(data)[0] if spend_model is not None else {}
        # identical customers have identical CLV: compute it once per distinct pattern
        p_arrays, s_arrays, expand = _distinct_rows(p_arrays, s_arrays)
        cumulative = purchase_model._cumulative_purchases

        def purchases(p_params: np.ndarray, rows: slice, times: np.ndarray = times,
                      weights: np.ndarray = weights) -> np.ndarray:  # fmt: skip
            part = {k: v[rows] for k, v in p_arrays.items()}
            params = purchase_model._param_dict(p_params)
            discounted = 0.0
            for t, weight in zip(times, weights, strict=True):
                discounted = discounted + weight * cumulative(part, params, t)
            return discounted

    spend_params = spend_model.params_.to_numpy() if spend_model is not None else None

    def value(p_params: np.ndarray, s_params: np.ndarray | None, rows: slice,
              **schedule: np.ndarray) -> np.ndarray:  # fmt: skip
        discounted = purchases(p_params, rows, **schedule)
        if s_params is None:
            return margin * discounted
        per_transaction = expected_spend(
            s_arrays["frequency"][rows], s_arrays["monetary_value"][rows],
            **spend_model._param_dict(s_params),
        )  # fmt: skip
        # A draw of the spend model may have an infinite mean (q <= 1); nothing times
        # it is still nothing.
        scale = margin * discounted
        with np.errstate(invalid="ignore"):
            return np.where(scale == 0, 0.0, scale * per_transaction)

    estimate = np.asarray(
        value(purchase_model.params_.to_numpy(), spend_params, slice(None)), dtype=np.float64
    )
    schedule = {} if history else {"times": times, "weights": weights}
    if draws and not (history or getattr(purchase_model, "discrete_time", False)):
        fewer = _fewest_nodes(
            lambda pair: value(purchase_model.params_.to_numpy(), spend_params, slice(None),
                               times=pair[0], weights=pair[1]),
            estimate, length, delta, quadrature_nodes,
        )  # fmt: skip
        if fewer is not None:
            schedule = {"times": fewer[0], "weights": fewer[1]}
    return _Clv(partial(value, **schedule), estimate, index, expand)


def predictive_clv(
    purchase_model: Any,
    spend_model: Any,
    data: pd.DataFrame,
    *,
    horizon: str | dt.timedelta | float,
    discount_rate: float,
    margin: float = 1.0,
    time_unit: str | None = None,
    quadrature_nodes: int = 24,
    interval: float | None = None,
    n_draws: int = 500,
    random_state: Any = 0,
) -> pd.Series | pd.DataFrame:
    """Discounted expected value of each customer over a future horizon.

    Parameters
    ----------
    purchase_model : BGNBD, ParetoNBD, MBGNBD or BGBB
        Fitted purchase model, by maximum likelihood or Bayesian
        (:mod:`clvmodels.bayes`).
    spend_model : GammaGamma or None
        Fitted spend model; ``None`` values every transaction at 1 (the result is then
        the discounted expected number of transactions). With a Bayesian model on either
        side, CLV is computed over the posterior draws: its mean per customer, and with
        ``interval`` the highest-density interval of that probability and the ``sd`` (a
        maximum-likelihood partner contributes as many draws of its asymptotic
        distribution).
    data : pandas.DataFrame or CovariateHistory
        Customers with the columns both models read (``frequency``, ``recency``, ``T``,
        ``monetary_value`` or their ``_cal`` forms); for a ParetoNBD fitted with
        time-varying covariates, a :func:`clvmodels.covariate_history` (made with
        ``amount=`` when there is a spend model) whose table reaches the horizon.
    horizon : str, timedelta or float
        Calendar duration, e.g. ``"12M"``, ``"52W"``, ``"1Y"``, or a number of the
        purchase model's time units (``52`` for a model fitted in weeks).
    discount_rate : float
        Annual effective discount rate (0.1 = 10 % a year).
    margin : float, default 1
        Share of revenue that is profit.
    time_unit : str, optional
        Time unit the purchase model was fitted in; read from the model by default.
    quadrature_nodes : int, default 24
        Gauss-Legendre nodes of the discounting integral (continuous-time models).
    interval : float, optional
        Level of an interval from the asymptotic distribution of both models' estimates
        (independent draws, as the models are fitted separately).
    n_draws, random_state
        Parameter draws and seed for ``interval``; for a Bayesian model, the posterior
        is thinned evenly to at most ``n_draws`` draws.

    Returns
    -------
    pandas.Series or pandas.DataFrame
        CLV per customer, indexed like ``data`` (for a Bayesian model the posterior
        mean); with ``interval`` a DataFrame ``estimate, lower, upper`` (plus ``sd``
        for a Bayesian model, whose interval is a highest-density interval).

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W", amount="amount")
    >>> bgnbd = clvmodels.BGNBD().fit(frame)
    >>> spend = clvmodels.GammaGamma().fit(frame)
    >>> clv = clvmodels.predictive_clv(bgnbd, spend, frame, horizon="12M",
    ...                                discount_rate=0.1)
    >>> round(float(clv.loc[4]), 2)
    36.88
    """
    _check_models(purchase_model, spend_model)
    purchase_model._check_fitted()
    if spend_model is not None:
        spend_model._check_fitted()
        spend_model._require_finite_mean()
    if not is_real(margin) or not np.isfinite(margin):
        raise InvalidDataError(f"margin={margin!r} must be a finite number.")
    if not is_integer(quadrature_nodes) or quadrature_nodes < 1:
        raise InvalidDataError(
            f"quadrature_nodes={quadrature_nodes!r}: give a whole number >= 1 (the default "
            "24 is exact to about 1e-10)."
        )
    bayesian = _is_bayesian(purchase_model) or _is_bayesian(spend_model)
    if interval is not None or bayesian:
        if interval is not None:
            check_interval(interval)
        check_draws(n_draws, len(purchase_model.param_names) + 3)
    setup = _clv_setup(purchase_model, spend_model, data, horizon=horizon,
                       discount_rate=discount_rate, margin=margin, time_unit=time_unit,
                       quadrature_nodes=quadrature_nodes,
                       draws=interval is not None or bayesian)  # fmt: skip
    value, estimate, index, expand = setup
    if interval is None and not bayesian:
        return pd.Series(estimate[expand], index=index, name="clv")
    if bayesian:
        summary = _posterior_clv(
            value, purchase_model, spend_model, len(estimate), interval,
            n_draws, random_state,
        )[expand]  # fmt: skip
        if interval is None:
            return pd.Series(summary[:, 0], index=index, name="clv")
        result = pd.DataFrame(summary, index=index, columns=["estimate", "lower", "upper", "sd"])
        result.attrs["hdi_prob"] = interval
        return result
    rng = np.random.default_rng(random_state)
    p_draws = purchase_model.parameter_draws(n_draws, rng)[:, None, :]
    s_draws = None
    if spend_model is not None:
        s_draws = spend_model.parameter_draws(n_draws, rng)[:, None, :]
    lower = np.empty(len(estimate))
    upper = np.empty(len(estimate))

    def evaluate(rows: slice, chosen: slice) -> np.ndarray:
        spend = None if s_draws is None else s_draws[chosen]
        return value(p_draws[chosen], spend, rows)

    # bounded memory, however many draws and customers (draw_blocks)
    for rows, values in draw_blocks(evaluate, n_draws, len(estimate)):
        lower[rows], upper[rows] = quantiles(values, interval)
    return pd.DataFrame(
        {"estimate": estimate[expand], "lower": lower[expand], "upper": upper[expand]},
        index=index,
    )


def clv_group_draws(purchase_model: Any, spend_model: Any, data: Any, groups: np.ndarray,
                    n_groups: int, *, horizon: Any, discount_rate: float,
                    margin: float = 1.0, n_draws: int = 500,
                    random_state: Any = 0) -> np.ndarray:  # fmt: skip
    """CLV summed over groups of customers at each joint draw of the models' parameters:
    an array (draws, groups) whose quantiles are honest intervals of group totals.

    ``groups`` gives each customer's group (0 .. n_groups - 1, in the order of
    ``data``). The draws are those of :func:`predictive_clv` with the same
    ``n_draws`` and ``random_state`` (the asymptotic normal of a maximum-likelihood fit,
    the evenly thinned posterior of a Bayesian one); each is evaluated once per distinct
    customer and summed with the customers' counts per group, in blocks of bounded
    memory.
    """
    from scipy import sparse

    _check_models(purchase_model, spend_model)
    check_draws(n_draws, len(purchase_model.param_names) + 3)
    groups = np.asarray(groups)
    size = len(data.frame) if _is_history(data) else len(data)
    if groups.shape != (size,) or not np.issubdtype(groups.dtype, np.integer) or (
            size and (groups.min() < 0 or groups.max() >= n_groups)):  # fmt: skip
        raise InvalidDataError(
            f"groups: give one whole number in 0 .. {n_groups - 1} per customer ({size})."
        )
    value, estimate, _, expand = _clv_setup(
        purchase_model, spend_model, data, horizon=horizon, discount_rate=discount_rate,
        margin=margin, time_unit=None, quadrature_nodes=24, draws=True,
    )  # fmt: skip
    counts = sparse.csr_matrix(
        (np.ones(len(expand)), (expand, np.asarray(groups, dtype=np.int64))),
        shape=(len(estimate), n_groups),
    )  # fmt: skip
    p_draws, s_draws = _paired_draws(purchase_model, spend_model, n_draws, random_state)
    count = len(p_draws)
    p_draws = p_draws[:, None, :]
    s_draws = None if s_draws is None else s_draws[:, None, :]
    totals = np.zeros((count, n_groups))

    def evaluate(rows: slice, chosen: slice) -> np.ndarray:
        spend = None if s_draws is None else s_draws[chosen]
        return value(p_draws[chosen], spend, rows)

    for rows, values in draw_blocks(evaluate, count, len(estimate)):
        totals += np.asarray((counts[rows].T @ values.T).T)
    return totals


# --------------------------------------------------------- CLV of many customers at once

# values (draws x patterns) held at once by the factored draws
_HELD_VALUES = 4_000_000


class FactoredClv(NamedTuple):
    """CLV of a continuous-time purchase model without covariates, factored so that its
    cost grows with distinct histories rather than customers.

    E[X(T, T + t) | x, t_x, T] = P(alive | x, t_x, T) g(x, T; t) for BG/NBD (FHL 2005
    eq. 10), MBG/NBD (Batislam et al. 2007 eq. 8) and Pareto/NBD (SMC 1987; FH 2005):
    the expectation given alive depends on the history only through (x, T). So the
    costly part, g at each discounting node, is evaluated once per distinct (x, T)
    (``pair_x``, ``pair_T``) as E[X | x, T, T] / P(alive | x, T, T), and P(alive), cheap,
    once per distinct (x, t_x, T) (``x``, ``t_x``, ``T``). The Gamma-Gamma expected
    spend is linear in the customer's mean z (Fader & Hardie 2013 eq. 5),
    A(x) + B(x) z, so a group's CLV needs per history only its customers' count and
    their sum of z: no per-customer work at any draw. (Pairs are keyed by the spend
    model's frequency too, normally the same column, so that A and B are the pair's.)
    """

    model: Any
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    pair: np.ndarray
    pair_x: np.ndarray
    pair_T: np.ndarray
    levels: np.ndarray
    pair_level: np.ndarray
    customer: np.ndarray
    z: np.ndarray
    length: float
    delta: float

    @classmethod
    def of(cls, purchase_model: Any, spend_model: Any, data: Any, horizon: Any,
           discount_rate: float) -> FactoredClv | None:  # fmt: skip
        """None where the factoring does not apply (covariates, discrete time, a
        covariate history, no spend model)."""
        design = getattr(purchase_model, "_design", lambda: None)()
        if (spend_model is None or _is_history(data) or design is not None
                or getattr(purchase_model, "discrete_time", False)
                or getattr(purchase_model, "time_varying_", False)):  # fmt: skip
            return None
        unit = _checked_unit(purchase_model, data, None)
        p_arrays, _ = purchase_model._read(data)
        s_arrays = spend_model._read(data)[0]
        keys = {"x": p_arrays["frequency"], "t_x": p_arrays["recency"], "T": p_arrays["T"],
                "spend_x": s_arrays["frequency"]}  # fmt: skip
        customer, first = pattern_codes(keys)
        rows = {k: np.asarray(v, dtype=np.float64)[first] for k, v in keys.items()}
        pair, pair_first = pattern_codes({"x": rows["x"], "T": rows["T"],
                                          "spend_x": rows["spend_x"]})  # fmt: skip
        levels, pair_level = np.unique(rows["spend_x"][pair_first], return_inverse=True)
        z = np.asarray(s_arrays["monetary_value"], dtype=np.float64)
        # a customer without repeat purchases has no mean of their own (weight 0)
        z = np.where(np.asarray(s_arrays["frequency"]) > 0, z, 0.0)
        return cls(purchase_model, rows["x"], rows["t_x"], rows["T"], pair,
                   rows["x"][pair_first], rows["T"][pair_first], levels, pair_level,
                   customer, z, horizon_in_units(horizon, unit, positive=True),
                   continuous_discount_rate(discount_rate, unit))  # fmt: skip

    # ------------------------------------------------------------- the factors
    # Parameters of shape (draws, 1) give (draws, rows); with ``columns``, parameters of
    # shape (1, draws) give (rows, draws), the layout the sparse group sums read fastest.

    def _family(self) -> Any:
        return getattr(type(self.model), "twin_class", type(self.model))

    def alive(self, params: dict[str, np.ndarray], columns: bool = False) -> np.ndarray:
        """P(alive) per history."""
        x, t_x, T = (v[:, None] if columns else v for v in (self.x, self.t_x, self.T))
        return self._family()._f_probability_alive(x=x, t_x=t_x, T=T, **params)

    def if_alive(self, params: dict[str, np.ndarray], t: Any, pairs: Any = slice(None),
                 columns: bool = False) -> np.ndarray:  # fmt: skip
        """g(x, T; t): expected purchases in the next t given alive, per (x, T) pair."""
        x, T = self.pair_x[pairs], self.pair_T[pairs]
        if columns:
            x, T = x[:, None], T[:, None]
        last = {"frequency": x, "recency": T, "T": T}
        expected = self.model._cumulative_purchases(last, params, t)
        return expected / self._family()._f_probability_alive(x=x, t_x=T, T=T, **params)

    def discounted(self, params: dict[str, np.ndarray], alive: np.ndarray,
                   schedule: tuple[np.ndarray, np.ndarray],
                   columns: bool = False) -> np.ndarray:  # fmt: skip
        """Discounted expected purchases over the horizon per history."""
        times, weights = schedule
        total = 0.0
        for t, weight in zip(times, weights, strict=True):
            total = total + weight * self.if_alive(params, t, columns=columns)
        total = np.asarray(total)
        return alive * (total[self.pair] if columns else total[..., self.pair])

    def spend_coefficients(self, s_params: dict[str, np.ndarray],
                           columns: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """A(x), B(x) per spend level (distinct frequency): expected spend = A + B z."""
        levels = self.levels[:, None] if columns else self.levels
        base = expected_spend(levels, 0.0, **s_params)
        with np.errstate(invalid="ignore"):
            slope = np.where(np.isfinite(base), expected_spend(levels, 1.0, **s_params) - base,
                             0.0)  # fmt: skip
        return base, slope

    # ----------------------------------------------------------------- results

    def schedule(self, nodes: int = 24) -> tuple[np.ndarray, np.ndarray]:
        return _gauss_legendre_schedule(nodes, self.length, self.delta)

    def customer_values(self, spend_model: Any, margin: float) -> np.ndarray:
        """Each customer's CLV at the estimates (what predictive_clv gives)."""
        params = self.model._param_dict(self.model.params_.to_numpy())
        purchases = self.discounted(params, self.alive(params), self.schedule())
        base, slope = self.spend_coefficients(
            spend_model._param_dict(spend_model.params_.to_numpy()))
        level = self.pair_level[self.pair[self.customer]]
        spend = base[level] + slope[level] * self.z
        scale = margin * purchases[self.customer]
        with np.errstate(invalid="ignore"):
            return np.where(scale == 0, 0.0, scale * spend)

    def draw_schedule(self) -> tuple[np.ndarray, np.ndarray]:
        """The fewest Gauss-Legendre nodes that reproduce the estimate's discounted
        purchases to 1e-9 (relative) for every history, as predictive_clv's draws use."""
        params = self.model._param_dict(self.model.params_.to_numpy())
        alive = self.alive(params)
        estimate = self.discounted(params, alive, self.schedule())
        fewer = _fewest_nodes(lambda schedule: self.discounted(params, alive, schedule),
                              estimate, self.length, self.delta, 24)  # fmt: skip
        return self.schedule() if fewer is None else fewer

    def group_draws(self, spend_model: Any, groups: np.ndarray, n_groups: int, margin: float,
                    n_draws: int, random_state: Any, weigh: Any = ()) -> GroupDraws:  # fmt: skip
        """At each joint draw, CLV and P(alive) summed per group, and for the groups in
        ``weigh`` each (x, T) pair's weight in the group's expected future value:
        margin x P(alive) x expected spend summed over the group's customers of the
        pair (what a payback curve multiplies g(x, T; span) by)."""
        sums = _GroupSums.of(self, groups, n_groups, weigh)
        p_draws, s_draws = _paired_draws(self.model, spend_model, n_draws, random_state)
        schedule = self.draw_schedule()
        value = np.zeros((n_groups, len(p_draws)))
        alive_total = np.zeros((n_groups, len(p_draws)))
        weights = {g: np.zeros((len(sums.pairs[g]), len(p_draws))) for g in weigh}
        step = max(1, _HELD_VALUES // max(len(self.x), 1))
        for start in range(0, len(p_draws), step):
            chosen = slice(start, start + step)
            params = self.model._param_dict(p_draws[None, chosen, :])
            alive = np.asarray(self.alive(params, columns=True), dtype=np.float64)
            purchases = margin * self.discounted(params, alive, schedule, columns=True)
            base, slope = self.spend_coefficients(
                spend_model._param_dict(s_draws[None, chosen, :]), columns=True)
            value[:, chosen] = sums.by_level(purchases, base, slope)
            alive_total[:, chosen] = sums.counts.T @ alive
            for g in weigh:
                weights[g][:, chosen] = sums.by_pair(g, margin * alive, base, slope)
        return GroupDraws(value.T, alive_total.T,
                          {g: (sums.pairs[g], w.T) for g, w in weights.items()},
                          p_draws, s_draws)  # fmt: skip


class _GroupSums(NamedTuple):
    """Sparse sums of per-history values over groups: ``counts`` (histories, groups);
    ``level_counts`` / ``level_sums`` (histories, levels x groups), each history's
    customers (their sum of means z) in the column of its spend level and group; and per
    weighed group the same by (x, T) pair, over the group's own ``pairs``."""

    counts: Any
    level_counts: Any
    level_sums: Any
    pair_counts: dict[int, Any]
    pair_sums: dict[int, Any]
    pairs: dict[int, np.ndarray]
    factored: FactoredClv
    n_groups: int

    @classmethod
    def of(cls, factored: FactoredClv, groups: np.ndarray, n_groups: int,
           weigh: Any) -> _GroupSums:  # fmt: skip
        from scipy import sparse

        n = len(factored.x)
        history = factored.customer
        level = factored.pair_level[factored.pair][history]
        ones = np.ones(len(groups))
        counts = sparse.csr_matrix((ones, (history, groups)), shape=(n, n_groups))
        column = level * n_groups + groups
        shape = (n, len(factored.levels) * n_groups)
        level_counts = sparse.csr_matrix((ones, (history, column)), shape=shape)
        level_sums = sparse.csr_matrix((factored.z, (history, column)), shape=shape)
        pair_counts, pair_sums, pairs = {}, {}, {}
        for g in weigh:
            mine = groups == g
            # only the pairs the group's customers have: memory grows with them
            pairs[g], local = np.unique(factored.pair[history[mine]], return_inverse=True)
            at = (history[mine], local)
            shape = (n, len(pairs[g]))
            pair_counts[g] = sparse.csr_matrix((ones[mine], at), shape=shape)
            pair_sums[g] = sparse.csr_matrix((factored.z[mine], at), shape=shape)
        return cls(counts, level_counts, level_sums, pair_counts, pair_sums, pairs, factored,
                   n_groups)  # fmt: skip

    def by_level(self, scale: np.ndarray, base: np.ndarray, slope: np.ndarray) -> np.ndarray:
        """(groups, draws) sum over customers of scale x (A + B z), ``scale`` (histories,
        draws) and A, B (levels, draws); nothing times an infinite spend is nothing."""
        draws = scale.shape[1]
        fixed = (self.level_counts.T @ scale).reshape(-1, self.n_groups, draws)
        moving = (self.level_sums.T @ scale).reshape(-1, self.n_groups, draws)
        with np.errstate(invalid="ignore"):
            parts = (np.where(fixed == 0, 0.0, fixed * base[:, None, :])
                     + np.where(moving == 0, 0.0, moving * slope[:, None, :]))  # fmt: skip
        return parts.sum(axis=0)

    def by_pair(self, g: int, scale: np.ndarray, base: np.ndarray,
                slope: np.ndarray) -> np.ndarray:  # fmt: skip
        """(pairs, draws) group ``g``'s sum over each pair's customers of
        scale x (A + B z)."""
        level = self.factored.pair_level[self.pairs[g]]
        fixed = self.pair_counts[g].T @ scale
        moving = self.pair_sums[g].T @ scale
        with np.errstate(invalid="ignore"):
            return (np.where(fixed == 0, 0.0, fixed * base[level])
                    + np.where(moving == 0, 0.0, moving * slope[level]))  # fmt: skip


class GroupDraws(NamedTuple):
    """What :meth:`FactoredClv.group_draws` returns: (draws, groups) CLV and P(alive)
    sums, per weighed group its pairs and their (draws, pairs) weights, and the draws
    themselves."""

    value: np.ndarray
    alive: np.ndarray
    pair_weights: dict[int, tuple[np.ndarray, np.ndarray]]
    purchase_draws: np.ndarray
    spend_draws: np.ndarray

"""BG/BB: the beta-geometric / beta-binomial model of discrete transaction opportunities.

Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). "Customer-base analysis in a
discrete-time noncontractual setting". Marketing Science 29(6), 1086-1108 (FHS below);
Hardie's note "Implementing the BG/BB model for customer-base analysis in Excel" (the
same expressions, evaluated with recursions).

After the initial transaction a customer has transaction opportunities 1, 2, ..., n.
At the start of each one an alive customer dies with probability theta; while alive they
transact at each opportunity with probability p. Across customers p ~ Beta(alpha, beta)
and theta ~ Beta(gamma, delta), independent. A customer's history is (x, t_x, n):
x transactions among the n opportunities, the last one at opportunity t_x (0 if none).

Notation: (a)_m = Gamma(a + m) / Gamma(a) is the rising factorial, so that e.g.
B(alpha + x, beta + m - x) / B(alpha, beta) = (alpha)_x (beta)_(m-x) / (alpha + beta)_m
and B(gamma + 1, delta + k) / B(gamma, delta) = gamma (delta)_k / (gamma + delta)_(k+1).
Every expression below is evaluated through log (a)_m (:func:`log_rising`), which stays
accurate for tiny and huge parameters, and its derivative psi(a + m) - psi(a)
(:func:`digamma_difference`).

The posterior facts used by every prediction (Bayes' rule on FHS's individual-level
likelihood): given (x, t_x, n), the customer is alive at opportunity n with probability
pi = (alpha)_x (beta)_(n-x) / (alpha+beta)_n * (delta)_n / (gamma+delta)_n / L (FHS eq. 11
with the survival to opportunity n + 1 factored out), where L is the likelihood; and given
alive at n, p ~ Beta(alpha + x, beta + n - x) and theta ~ Beta(gamma, delta + n),
independent.

Equation numbers of FHS cited here: (7) P(X(n) = x), (8) E[X(n)], (11) P(alive at
n + 1), (13) E[X(n, n + n*) | x, t_x, n], the numbers under which lifetimes and
pymc-marketing cite the same expressions. The likelihood is FHS's individual-level
likelihood of (x, t_x, n), cited without an equation number. Every formula is also
derived in its docstring, so none depends on the numbering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import exprel, gammaln, polygamma

from .._validation import bad_rows_error, check_interval
from ..exceptions import InvalidDataError
from ..numerics.special import digamma_difference, log_rising
from ._base import (
    PARAM_RANGE,
    BaseModel,
    data_time_unit,
    single_count_for_draws,
    weighted_sum,
)
from ._curves import predict_curve, whole_numbers

__all__ = [
    "BGBB",
    "expected_purchases",
    "log_likelihood",
    "probability_alive",
    "probability_purchases",
]

# Elements per block of the opportunity sums: bounds memory whatever the number of rows,
# parameter draws and opportunities (one block covers the usual compressed data).
_BLOCK_ELEMENTS = 2**19
# Within this distance of gamma = 1 the expected number of alive opportunities uses its
# Taylor series in gamma - 1 (the closed form has a removable 0/0 there).
_GAMMA_ONE = 1e-3
_TINY = np.finfo(np.float64).tiny


def _log_binomial(j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log C(j, k) for whole numbers 0 <= k <= j."""
    return gammaln(j + 1) - gammaln(k + 1) - gammaln(j - k + 1)


def _expand(value: Any) -> np.ndarray:
    """Add a trailing axis (the opportunity index) to an array that broadcasts."""
    return np.asarray(value, dtype=np.float64)[..., None]


def _log_sum_terms(
    first: np.ndarray,
    first_grad: list[np.ndarray] | None,
    term: Callable[[np.ndarray], tuple[np.ndarray, list[np.ndarray] | None]],
    count: np.ndarray,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """log(exp(first) + sum_{i < count} exp(term(i))) and softmax-weighted gradients.

    ``term(i)`` receives the opportunity offsets ``i`` (1-d) and returns the log-terms
    with a trailing axis over ``i`` (plus, with gradients, one such array per
    parameter). Terms with ``i >= count`` are masked out, so rows with different
    numbers of terms share one 2-d (rows x i) array. The offsets are processed in
    blocks of at most ``_BLOCK_ELEMENTS`` elements with a running log-sum-exp; for the
    usual data one block holds them all. ``first`` must be finite.
    """
    shape = np.broadcast_shapes(np.shape(first), np.shape(count))
    log_max = np.array(np.broadcast_to(first, shape), dtype=np.float64)
    total = np.ones(shape)
    grads = None
    if first_grad is not None:
        grads = [np.array(np.broadcast_to(g, shape), dtype=np.float64) for g in first_grad]
    n_terms = int(np.max(count)) if np.size(count) else 0
    block = max(1, min(n_terms, _BLOCK_ELEMENTS // max(1, int(np.prod(shape)))))
    count = _expand(count)
    for start in range(0, n_terms, block):
        offsets = np.arange(start, min(start + block, n_terms), dtype=np.float64)
        values, derivatives = term(offsets)
        values = np.where(offsets < count, values, -np.inf)
        new_max = np.maximum(log_max, values.max(axis=-1))
        scale = np.exp(log_max - new_max)
        weights = np.exp(values - new_max[..., None])
        total = total * scale + weights.sum(axis=-1)
        if grads is not None and derivatives is not None:
            grads = [
                g * scale + (weights * d).sum(axis=-1)
                for g, d in zip(grads, derivatives, strict=True)
            ]
        log_max = new_max
    if grads is not None:
        grads = [g / total for g in grads]
    return log_max + np.log(total), grads


# --------------------------------------------------------------------- likelihood


def _likelihood_parts(x, t_x, n, alpha, beta, gamma, delta, gradient):
    """log of L / (alpha)_x, the log of its 'alive at n' term, and their gradients.

    FHS's likelihood: L = B(alpha+x, beta+n-x)/B(alpha,beta) * B(gamma, delta+n)/B(gamma,delta)
    + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha,beta)
    * B(gamma+1, delta+t_x+i)/B(gamma,delta). The first term is the customer alive
    through opportunity n; term i the customer dying at the start of opportunity
    t_x + i + 1. With k = t_x + i, after dividing by (alpha)_x:
    alive = (beta)_(n-x) / (alpha+beta)_n * (delta)_n / (gamma+delta)_n and
    term_i = (beta)_(k-x) / (alpha+beta)_k * gamma (delta)_k / (gamma+delta)_(k+1).

    Successive terms differ by the factor (beta+k-x)/(alpha+beta+k) *
    (delta+k)/(gamma+delta+k+1) (the recursion of Hardie's Excel note), so the log-terms
    are log term_0 plus a cumulative sum of two logs per opportunity, and their
    gradients term_0's digamma differences plus cumulative sums of reciprocals: a few
    cheap operations per (row, opportunity) instead of special functions.
    """
    ab = alpha + beta
    gd = gamma + delta
    alive = log_rising(beta, n - x) - log_rising(ab, n) + log_rising(delta, n) - log_rising(gd, n)
    first = (
        log_rising(beta, t_x - x) - log_rising(ab, t_x) + np.log(gamma)
        + log_rising(delta, t_x) - log_rising(gd, t_x + 1)
    )  # fmt: skip
    shape = np.broadcast_shapes(np.shape(alive), np.shape(first))
    carry = [np.array(np.broadcast_to(first, shape))]
    alive_grad = None
    if gradient:
        d_ab = digamma_difference(ab, n)
        d_gd = digamma_difference(gd, n)
        alive_grad = [
            -d_ab,
            digamma_difference(beta, n - x) - d_ab,
            -d_gd,
            digamma_difference(delta, n) - d_gd,
        ]
        d_ab0 = digamma_difference(ab, t_x)
        d_gd0 = digamma_difference(gd, t_x + 1)
        first_grad = [
            -d_ab0,
            digamma_difference(beta, t_x - x) - d_ab0,
            1.0 / np.asarray(gamma) - d_gd0,
            digamma_difference(delta, t_x) - d_gd0,
        ]
        carry += [np.array(np.broadcast_to(g, shape), dtype=np.float64) for g in first_grad]
    a_e, b_e, g_e, d_e = _expand(alpha), _expand(beta), _expand(gamma), _expand(delta)
    t_e, gap_e = _expand(t_x), _expand(t_x - x)

    def term(offsets):
        # called on consecutive blocks of offsets: carry holds the values at the block start
        k = t_e + offsets
        buy = b_e + (gap_e + offsets)  # beta + k - x (integers first: beta may be tiny)
        both = a_e + b_e + k  # alpha + beta + k
        stay = d_e + k  # delta + k
        total = g_e + d_e + k + 1  # gamma + delta + k + 1
        # (ratios clamped at the smallest normal number: below it the term is nil anyway)
        steps = [np.log(np.maximum(buy / both, _TINY)) + np.log(np.maximum(stay / total, _TINY))]
        if gradient:
            steps += [-1.0 / both, 1.0 / buy - 1.0 / both, -1.0 / total, 1.0 / stay - 1.0 / total]
        out = []
        for index, step in enumerate(steps):
            cumulative = np.cumsum(step, axis=-1)
            out.append(carry[index][..., None] + cumulative - step)
            carry[index] = carry[index] + cumulative[..., -1]
        return out[0], (out[1:] if gradient else None)

    total, grads = _log_sum_terms(alive, alive_grad, term, n - t_x)
    return total, alive, grads


def log_likelihood(x, t_x, n, alpha, beta, gamma, delta, *, gradient: bool = False):
    """Per-customer log-likelihood (FHS) and its gradient in (alpha, beta, gamma,
    delta), as an array of shape ``(..., 4)``.

    Log-sum-exp over the n - t_x + 1 terms; the gradient is the softmax-weighted average
    of the terms' gradients, each a combination of digamma differences.
    """
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in (x, t_x, n))
    total, _alive, grads = _likelihood_parts(x, t_x, n, alpha, beta, gamma, delta, gradient)
    ll = log_rising(alpha, x) + total
    if not gradient:
        return ll, None
    grads[0] = grads[0] + digamma_difference(alpha, x)
    return ll, np.stack(np.broadcast_arrays(*grads), axis=-1)


def _alive_at_n(x, t_x, n, alpha, beta, gamma, delta):
    """P(alive at opportunity n | x, t_x, n)."""
    total, alive, _ = _likelihood_parts(x, t_x, n, alpha, beta, gamma, delta, False)
    return np.exp(alive - total)


# -------------------------------------------------------------------- predictions


def probability_alive(x, t_x, n, alpha, beta, gamma, delta, *, t=0.0):
    """P(alive at opportunity n + t | x, t_x, n).

    pi times E[(1 - theta)^t] under theta ~ Beta(gamma, delta + n), which is
    (delta + n)_t / (gamma + delta + n)_t. With t = 1 this is FHS eq. (11):
    B(alpha+x, beta+n-x)/B(alpha,beta) * B(gamma, delta+n+1)/B(gamma,delta) / L.
    """
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in (x, t_x, n))
    big_d = delta + n
    future = np.exp(log_rising(big_d, t) - log_rising(gamma + big_d, t))
    return _alive_at_n(x, t_x, n, alpha, beta, gamma, delta) * future


def _expected_alive_opportunities(gamma, big_d, t):
    """sum_{s=1}^{t} E[(1 - theta)^s] for theta ~ Beta(gamma, D): opportunities alive.

    Each term is (D)_s / (gamma + D)_s; the sum telescopes (it is the derivation behind
    FHS eqs. 8 and 13) to D / (gamma - 1) * [1 - (D + 1)_t / (gamma + D)_t]. With
    g = log (D+1)_t - log (gamma+D)_t this is -D * g / (gamma - 1) * exprel(g). Near
    gamma = 1, g / (gamma - 1) comes from the Taylor series of log (D + 1 + e)_t in e
    (three terms, relative error below 1e-9); at gamma = 1 exactly the sum is
    D * (psi(D + 1 + t) - psi(D + 1)).
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    eps = gamma - 1.0
    a = big_d + 1.0
    near = np.abs(eps) < _GAMMA_ONE
    g_far = log_rising(a, t) - log_rising(gamma + big_d, t)
    ratio_far = g_far / np.where(near, 1.0, eps)
    d1 = digamma_difference(a, t)
    d2 = polygamma(1, a + t) - polygamma(1, a)
    d3 = polygamma(2, a + t) - polygamma(2, a)
    ratio_near = -(d1 + eps * d2 / 2 + eps**2 * d3 / 6)
    ratio = np.where(near, ratio_near, ratio_far)
    g = np.where(near, eps * ratio_near, g_far)
    return -big_d * ratio * exprel(g)


def expected_purchases(t, x, t_x, n, alpha, beta, gamma, delta):
    """E[X(n, n + t) | x, t_x, n]: expected transactions in the next t opportunities.

    FHS eq. (13), written as pi * E[p | alive] * E[opportunities alive | alive] with
    E[p | alive] = (alpha + x) / (alpha + beta + n) and the last factor from
    :func:`_expected_alive_opportunities` with D = delta + n. For a new customer
    (x = t_x = n = 0, pi = 1) this is FHS eq. (8): alpha / (alpha + beta) *
    delta / (gamma - 1) * [1 - Gamma(gamma+delta) Gamma(1+delta+t) /
    (Gamma(gamma+delta+t) Gamma(1+delta))].
    """
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in (x, t_x, n))
    t = np.asarray(t, dtype=np.float64)
    alive = _alive_at_n(x, t_x, n, alpha, beta, gamma, delta)
    rate = (alpha + x) / (alpha + beta + n)
    return alive * rate * _expected_alive_opportunities(gamma, delta + n, t)


def probability_purchases(t, k, x, t_x, n, alpha, beta, gamma, delta):
    """P(X(n, n + t) = k | x, t_x, n), for whole t >= 0 and k >= 0.

    Derivation (the conditional form of FHS eq. 7): dead at n (probability 1 - pi) the
    customer makes no transaction. Alive at n, with p ~ Beta(a, b) = Beta(alpha + x,
    beta + n - x) and theta ~ Beta(gamma, D) = Beta(gamma, delta + n), let J be the
    number of the next t opportunities at which they are still alive: P(J = j) =
    E[theta (1 - theta)^j] = gamma (D)_j / (gamma + D)_(j+1) for j < t and
    P(J = t) = (D)_t / (gamma + D)_t. Given J = j, X ~ BetaBinomial(j, a, b), with
    P(X = k) = C(j, k) (a)_k (b)_(j-k) / (a + b)_j. So
    P(X = k) = [k = 0] (1 - pi) + pi * sum_{j=k}^{t} P(J = j) P(X = k | j),
    the sum taken in log-sum-exp form over a masked (rows x j) array.
    """
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in (x, t_x, n))
    t = np.asarray(t, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    possible = k <= t
    k_safe = np.minimum(k, t)
    a = alpha + x
    b = beta + (n - x)
    big_d = delta + n
    # j = t: alive through all t opportunities
    first = (
        _log_binomial(t, k_safe) + log_rising(b, t - k_safe) - log_rising(a + b, t)
        + log_rising(big_d, t) - log_rising(gamma + big_d, t)
    )  # fmt: skip
    a_e, b_e, g_e = _expand(a), _expand(b), _expand(gamma)
    d_e, k_e = _expand(big_d), _expand(k_safe)

    def term(offsets):
        j = k_e + offsets
        values = (
            _log_binomial(j, k_e) + log_rising(b_e, j - k_e) - log_rising(a_e + b_e, j)
            + np.log(g_e) + log_rising(d_e, j) - log_rising(g_e + d_e, j + 1)
        )  # fmt: skip
        return values, None

    log_alive_part, _ = _log_sum_terms(first, None, term, t - k_safe)
    alive = _alive_at_n(x, t_x, n, alpha, beta, gamma, delta)
    alive_part = np.exp(log_rising(a, k_safe) + log_alive_part)
    result = alive * alive_part + np.where(k == 0, 1.0 - alive, 0.0)
    return np.where(possible, result, 0.0)


def _on_patterns(func: Callable[..., Any], x, t_x, n, **kwargs: Any) -> Any:
    """Evaluate ``func`` once per distinct (x, t_x, n) and spread the result to rows.

    Discrete histories repeat a lot (with n opportunities there are at most
    (n + 1)(n + 2)/2 patterns), so this saves most of the work on per-customer data.
    The result's last axis must be the row axis.
    """
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in (x, t_x, n))
    if x.ndim != 1 or x.size < 2:
        return func(x, t_x, n, **kwargs)
    keys = np.stack([x, t_x, n], axis=-1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    if len(unique) == len(keys):
        return func(x, t_x, n, **kwargs)
    out = func(unique[:, 0], unique[:, 1], unique[:, 2], **kwargs)
    return np.asarray(out)[..., inverse.reshape(-1)]


def _counts(n: Any) -> np.ndarray:
    counts = np.atleast_1d(np.asarray(n))
    try:
        as_float = counts.astype(np.float64)
    except (TypeError, ValueError):
        as_float = np.array([np.nan])
    if (
        counts.size == 0
        or counts.ndim != 1
        or not np.all(np.isfinite(as_float))
        or np.any((as_float < 0) | (as_float != np.floor(as_float)))
    ):
        raise InvalidDataError(f"n={n!r}: give whole numbers of transactions >= 0.")
    return as_float.astype(np.int64)


# ------------------------------------------------------------------------- model


class BGBB(BaseModel):
    """BG/BB model (Fader, Hardie & Shang 2010) fitted by maximum likelihood.

    Each customer has ``n_periods`` discrete transaction opportunities after the first
    transaction; ``frequency`` counts those with a transaction and ``recency`` is the
    index (1 .. n_periods) of the last one, 0 if none. Build these columns from a
    transaction log with :func:`~clvmodels.summarize_opportunities` or
    :func:`~clvmodels.calibration_holdout_opportunities`.

    Customers with ``n_periods = 0`` (acquired in the last period observed) are valid
    data: their likelihood is 1, so they do not change the fit, and their predictions
    are those of a new customer (FHS eqs. 7 and 8). A fit needs at least one customer
    with an opportunity.

    Parameters
    ----------
    penalizer : float, default 0
        Adds ``penalizer * sum(params**2)`` to the mean negative log-likelihood.
    initial_params : dict, optional
        Start values ``{"alpha", "beta", "gamma", "delta"}``; by default derived from
        the data.
    tol : float, default 1e-9
        Gradient tolerance of the optimiser (on the mean log-likelihood).
    max_iter : int, default 2000
        Iteration budget of the optimiser.
    columns : dict, optional
        Column names for the roles ``frequency``, ``recency``, ``n_periods`` when they
        differ; ``frequency_cal`` etc. are found on their own.

    Attributes
    ----------
    params_ : pandas.Series
        ``alpha``, ``beta`` (transaction probability p ~ Beta(alpha, beta)), ``gamma``,
        ``delta`` (dropout probability theta ~ Beta(gamma, delta)).
    covariance_ : pandas.DataFrame
        Asymptotic covariance of the estimates.
    log_likelihood_, aic_, bic_ : float
        Total log-likelihood over customers (as in the paper) and criteria.
    n_customers_, n_patterns_ : int
        Customers (sum of weights) and rows fitted.
    converged_ : bool
    time_unit_ : str or None
        The period of the opportunities when the data record it in
        ``data.attrs["clvmodels"]["time_unit"]`` (frames of
        :func:`~clvmodels.summarize_opportunities`), else None; predictions then refuse
        data recorded in another unit, and :func:`~clvmodels.predictive_clv` reads it.

    Examples
    --------
    >>> from clvmodels.datasets import load_donations
    >>> from clvmodels.models.bgbb import BGBB
    >>> model = BGBB().fit(load_donations())
    >>> model.params_.round(4).tolist()
    [1.2035, 0.7497, 0.6567, 2.7834]
    >>> round(model.log_likelihood_, 2)
    -33225.58
    """

    kind = "bgbb"
    discrete_time = True
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "n_periods")

    # ------------------------------------------------------------------ fitting

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> BGBB:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            Per-customer histories (or a ``compress``-ed frame) with ``frequency``,
            ``recency`` and ``n_periods``, or all three in their ``_cal`` forms, or as
            named by the ``columns`` setting.
        weights : array-like, pandas.Series or str, optional
            Number of customers each row stands for, or the name of a column holding
            it; by default the ``weight`` column if there is one, else 1 per row (see
            :meth:`BaseModel.fit <clvmodels.models._base.BaseModel.fit>`).

        Returns
        -------
        self

        Notes
        -----
        The period of the data (recorded by :func:`~clvmodels.summarize_opportunities`
        in ``data.attrs``) is kept as ``time_unit_``, as the continuous-time models keep
        their time unit.
        """
        super().fit(data, weights=weights)
        self.time_unit_ = data_time_unit(data)
        return self

    def _start(self, arrays, weights):
        if not np.any((arrays["n_periods"] >= 1) & (weights > 0)):
            raise InvalidDataError(
                "BGBB: no customer has a transaction opportunity after the first "
                "transaction (n_periods >= 1 with a positive weight), so there is nothing "
                "to fit. Observe the customers for at least one complete period."
            )
        return super()._start(arrays, weights)

    def _validate(self, arrays, index, names) -> None:
        x, t_x, n = arrays["frequency"], arrays["recency"], arrays["n_periods"]
        f_name, r_name, n_name = names["frequency"], names["recency"], names["n_periods"]
        for role, values in arrays.items():
            if (values < 0).any():
                raise bad_rows_error(
                    names[role], values < 0, index, "are negative",
                    "BG/BB counts transaction opportunities: use whole numbers >= 0.",
                )  # fmt: skip
            if (values != np.floor(values)).any():
                raise bad_rows_error(
                    names[role], values != np.floor(values), index, "are not whole numbers",
                    "BG/BB counts discrete transaction opportunities; summarise the data "
                    "per opportunity (e.g. per year) first.",
                )  # fmt: skip
        if (t_x > n).any():
            raise bad_rows_error(
                r_name, t_x > n, index, f"exceed column '{n_name}'",
                "Recency is the opportunity (1 .. n_periods) of the last transaction.",
            )  # fmt: skip
        if ((x == 0) & (t_x > 0)).any():
            raise bad_rows_error(
                r_name, (x == 0) & (t_x > 0), index, f"are > 0 while '{f_name}' is 0",
                "Recency must be 0 for customers without repeat transactions.",
            )  # fmt: skip
        if (x > t_x).any():
            raise bad_rows_error(
                f_name, x > t_x, index, f"exceed column '{r_name}'",
                "There cannot be more transactions than opportunities up to the last one.",
            )  # fmt: skip

    def _loglik(self, params, data, gradient):
        # BaseModel.fit has already collapsed identical rows into weighted patterns.
        params = np.clip(params, *PARAM_RANGE)
        return log_likelihood(
            data["frequency"], data["recency"], data["n_periods"], **self._param_dict(params),
            gradient=gradient,
        )  # fmt: skip

    def _initial_values(self, data, weights):
        """alpha, beta matching the share of opportunities with a transaction; gamma = 1,
        delta = 3 (a mean dropout probability of 1/4 per opportunity)."""
        share = weighted_sum(weights, data["frequency"]) / max(
            weighted_sum(weights, data["n_periods"]), 1e-12
        )
        share = min(max(share, 0.01), 0.99)
        return np.array([2 * share, 2 * (1 - share), 1.0, 3.0])

    def _cumulative_purchases(self, arrays, params, t):
        """E[X(n, n + t) | history] on arrays (used by predictive_clv)."""
        return expected_purchases(
            t, arrays["frequency"], arrays["recency"], arrays["n_periods"], **params
        )

    # ------------------------------------------------------------ per customer

    def _customer_prediction(self, func, data, name, interval, n_draws, random_state, **kw):
        if interval is not None:
            check_interval(interval)
        arrays, index = self._read(data)
        return self._predict(
            lambda frequency, recency, n_periods, **params: _on_patterns(
                func, frequency, recency, n_periods, **params, **kw
            ),
            arrays, index, name, interval, n_draws, random_state,
        )  # fmt: skip

    def expected_purchases(
        self, data: pd.DataFrame, t: int, *, interval: float | None = None,
        n_draws: int = 1000, random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """Expected transactions in the next ``t`` opportunities, E[X(n, n+t) | history]
        (FHS eq. 13).

        Parameters
        ----------
        data : pandas.DataFrame
            Customers with ``frequency``, ``recency`` and ``n_periods``.
        t : int
            Number of future transaction opportunities (a whole number >= 0).
        interval : float, optional
            With e.g. ``0.9``, also return a 90% interval from the asymptotic
            distribution of the estimates (``n_draws`` draws on the log scale).
        n_draws, random_state
            Number of parameter draws and their seed, for ``interval``.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            Indexed like ``data``; a DataFrame ``estimate, lower, upper`` with
            ``interval``.
        """
        t = float(whole_numbers(t, "t", "future transaction opportunities"))
        func = _reorder(expected_purchases, t=t)
        return self._customer_prediction(
            func, data, "expected_purchases", interval, n_draws, random_state
        )

    def probability_alive(
        self, data: pd.DataFrame, t: int = 0, *, interval: float | None = None,
        n_draws: int = 1000, random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """Probability that each customer is alive at opportunity ``n_periods + t``
        given their history; ``t = 0`` (the default) is the last opportunity observed.

        FHS eq. (11) is ``t = 1`` (alive at the next opportunity). lifetimes'
        ``conditional_probability_alive(m_periods_in_future=t, ...)`` is the same
        quantity.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            As :meth:`expected_purchases`.
        """
        t = float(whole_numbers(t, "t", "future transaction opportunities"))
        return self._customer_prediction(
            probability_alive, data, "probability_alive", interval, n_draws, random_state,
            t=t,
        )  # fmt: skip

    def probability_purchases(
        self, data: pd.DataFrame, t: int, n: int | Any, *, interval: float | None = None,
        n_draws: int = 1000, random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """P(X(n_periods, n_periods + t) = n | history): probability of exactly ``n``
        transactions in the next ``t`` opportunities.

        Parameters
        ----------
        t : int
            Number of future transaction opportunities.
        n : int or sequence of int
            A count, or several: then one column per count (with ``interval``, columns
            ``(n, estimate | lower | upper)``).

        Returns
        -------
        pandas.Series or pandas.DataFrame
        """
        t = float(whole_numbers(t, "t", "future transaction opportunities"))
        counts = _counts(n)
        single_count_for_draws(n)
        parts = {
            int(k): self._customer_prediction(
                _reorder(probability_purchases, t=t, k=float(k)), data,
                f"probability_{int(k)}_purchases", interval, n_draws, random_state,
            )
            for k in counts
        }  # fmt: skip
        if np.ndim(n) == 0:
            return parts[int(counts[0])]
        return pd.concat(parts, axis=1, names=["n"])

    # ----------------------------------------------------------- new customers

    def _curve(self, func, values, axis_name, name, interval, n_draws, random_state):
        return predict_curve(self, func, values, axis_name, name, interval, n_draws, random_state)

    def expected_purchases_new_customer(
        self, t: int | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """Expected transactions of a newly acquired customer in their first ``t``
        opportunities after the first transaction, E[X(t)] (FHS eq. 8).

        This is :meth:`expected_purchases` of a customer observed for no opportunity
        (x = t_x = n = 0): then L = 1, pi = 1 and the expressions coincide.

        ``t`` may be a sequence: then a Series (or DataFrame with ``interval``) by ``t``.
        """
        whole_numbers(t, "t", "transaction opportunities")
        return self._curve(
            lambda v, **p: expected_purchases(v, 0.0, 0.0, 0.0, **p), t, "t",
            "expected_purchases", interval, n_draws, random_state,
        )  # fmt: skip

    def probability_purchases_new_customer(
        self, t: int, n: int | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """P(X(t) = n) for a newly acquired customer (FHS eq. 7); ``n`` may be a sequence.

        The conditional :meth:`probability_purchases` at x = t_x = n = 0, which is
        FHS's C(t, n) B(alpha+n, beta+t-n)/B(alpha,beta) B(gamma, delta+t)/B(gamma,delta)
        + sum_{i=n}^{t-1} C(i, n) B(alpha+n, beta+i-n)/B(alpha,beta)
        B(gamma+1, delta+i)/B(gamma,delta).
        """
        t = float(whole_numbers(t, "t", "transaction opportunities"))
        counts = _counts(n)
        values = counts if np.ndim(n) else counts[0]
        return self._curve(
            lambda k, **p: probability_purchases(t, k, 0.0, 0.0, 0.0, **p), values,
            "n", "probability", interval, n_draws, random_state,
        )  # fmt: skip


def _reorder(func: Callable[..., np.ndarray], **fixed: Any) -> Callable[..., np.ndarray]:
    """``func`` as a function of (x, t_x, n, **params) with its other arguments fixed."""

    def wrapped(x, t_x, n, **params):
        return func(**fixed, x=x, t_x=t_x, n=n, **params)

    return wrapped

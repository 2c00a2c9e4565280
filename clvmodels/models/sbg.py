"""sBG: the shifted-beta-geometric model of contract duration.

Fader, P. S. & Hardie, B. G. S. (2007). "How to project customer retention". Journal of
Interactive Marketing 21(1), 76-90 (FH 2007 below). Fader, P. S. & Hardie, B. G. S.
(2010). "Customer-base valuation in a contractual setting: the perils of ignoring
heterogeneity". Marketing Science 29(1), 85-93 (FH 2010 below).

At the end of every period an active customer churns with probability theta, so the
lifetime T (the period in which the customer is lost) is geometric on {1, 2, ...}:
P(T = t | theta) = theta (1 - theta)^(t-1) and S(t | theta) = P(T > t | theta) =
(1 - theta)^t. Across customers theta ~ Beta(alpha, beta), whence (FH 2007)

    P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
             = alpha (beta)_(t-1) / (alpha + beta)_t,
    S(t)     = B(alpha, beta + t) / B(alpha, beta) = (beta)_t / (alpha + beta)_t,

with (a)_m = Gamma(a + m) / Gamma(a). Everything is evaluated through log (a)_m
(:func:`clvmodels.numerics.special.log_rising`), accurate for tiny and huge parameters.

FH 2007 and FH 2010 are cited by name, without equation numbers: P(T = t), S(t), the
likelihood and the retention rate are those of FH 2007's sBG model, DEL and DERL those
of FH 2010. Each formula is derived where it is used (P(T = t) and S(t) just above,
the others in their docstrings), so none rests on a citation alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from .._validation import as_array, bad_rows_error
from ..exceptions import InvalidDataError
from ..numerics.special import beta_expectation, digamma_difference, log_rising
from ._base import PARAM_RANGE, BaseModel
from ._curves import predict_curve, whole_numbers

__all__ = [
    "ShiftedBetaGeometric",
    "discounted_expected_lifetime",
    "discounted_expected_residual_lifetime",
    "expected_lifetime",
    "log_likelihood",
    "probability_churn",
    "retention_rate",
    "survival",
]


# ---------------------------------------------------------------------- numerics


def log_likelihood(lifetime, censored, alpha, beta, *, gradient: bool = False):
    """Per-row log-likelihood and its gradient in (alpha, beta), shape ``(..., 2)``.

    FH 2007's likelihood: a customer lost in period t contributes log P(T = t), one still
    active after t periods log S(t) (FH 2007's likelihood: the sum over periods of
    n_t log P(T = t) plus the survivors' log S). With c = 1 for
    censored rows both are log-terms
        (1 - c) log alpha + log (beta)_(t - 1 + c) - log (alpha + beta)_t,
    with derivatives (1 - c) / alpha - [psi(alpha+beta+t) - psi(alpha+beta)] and
    [psi(beta + t - 1 + c) - psi(beta)] - [psi(alpha+beta+t) - psi(alpha+beta)].
    """
    t = np.asarray(lifetime, dtype=np.float64)
    c = np.asarray(censored, dtype=np.float64)
    survivors = t - 1 + c
    # log alpha - log (alpha + beta)_t = -log1p(beta / alpha) - log (alpha + beta + 1)_(t-1)
    ll = (
        (1 - c) * -np.log1p(beta / np.asarray(alpha, dtype=np.float64))
        + c * -log_rising(alpha + beta, 1.0)
        + log_rising(beta, survivors) - log_rising(alpha + beta + 1, t - 1)
    )  # fmt: skip
    if not gradient:
        return ll, None
    d_ab = digamma_difference(alpha + beta, t)
    d_alpha = (1 - c) / np.asarray(alpha, dtype=np.float64) - d_ab
    d_beta = digamma_difference(beta, survivors) - d_ab
    return ll, np.stack(np.broadcast_arrays(d_alpha, d_beta), axis=-1)


def survival(t, alpha, beta):
    """S(t) = B(alpha, beta + t) / B(alpha, beta): share of a cohort still active after t
    periods (FH 2007)."""
    return np.exp(log_rising(beta, t) - log_rising(alpha + beta, t))


def probability_churn(t, alpha, beta):
    """P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta): share lost in period t."""
    t = np.asarray(t, dtype=np.float64)
    log_first = -np.log1p(beta / np.asarray(alpha, dtype=np.float64))  # alpha / (alpha+beta)
    return np.exp(log_first + log_rising(beta, t - 1) - log_rising(alpha + beta + 1, t - 1))


def retention_rate(t, alpha, beta):
    """r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1) (FH 2007):
    share of the customers active in period t - 1 who renew for period t; rises with t."""
    t = np.asarray(t, dtype=np.float64)
    return (beta + t - 1) / (alpha + beta + t - 1)


def expected_lifetime(alpha, beta):
    """E[T] = E[1 / theta] = B(alpha - 1, beta) / B(alpha, beta) = (alpha + beta - 1) /
    (alpha - 1) for alpha > 1; infinite for alpha <= 1 (the mean of 1/theta diverges).

    (Equals sum_{t >= 0} S(t), i.e. :func:`discounted_expected_lifetime` at d = 0.)
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    finite = alpha > 1
    safe = np.where(finite, alpha, 2.0)
    return np.where(finite, (safe + beta - 1) / (safe - 1), np.inf)


def discounted_expected_lifetime(discount_rate, alpha, beta):
    """DEL(d) = sum_{t >= 0} S(t) / (1 + d)^t = 2F1(1, beta; alpha + beta; 1 / (1 + d)).

    FH 2010 (DEL of a customer at the moment of acquisition; the first period's payment
    is made then and is not discounted, each renewal t is discounted by (1 + d)^t):
    E[CLV] = m DEL for a payment m per period. The hypergeometric form follows from
    S(t) = (beta)_t / (alpha + beta)_t, i.e. sum_t (1)_t (beta)_t / ((alpha+beta)_t t!) z^t.
    """
    return _renewal_sum(alpha, beta, discount_rate)


def discounted_expected_residual_lifetime(discount_rate, n_renewals, alpha, beta):
    """DERL of a customer who has made ``n_renewals`` = n - 1 renewals (FH 2010).

    FH 2010 consider a customer at the end of period n, just before their n-th renewal
    decision (so they have made n - 1 renewals and are active in period n):
    DERL = sum_{t >= n} S(t) / S(n - 1) / (1 + d)^(t - n), i.e. the next renewal (payment
    at time n) counts undiscounted. Given n - 1 renewals, theta ~ Beta(alpha, beta + n - 1)
    and S(n + j) / S(n - 1) = (beta + n - 1)_(j+1) / (alpha + beta + n - 1)_(j+1), so
    DERL = B(alpha, beta + n) / B(alpha, beta + n - 1)
           * 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d)),
    the first factor being (beta + n - 1) / (alpha + beta + n - 1). With n_renewals = 0,
    DEL(d) = 1 + DERL(d) / (1 + d).
    """
    b = beta + np.asarray(n_renewals, dtype=np.float64)  # beta + n - 1
    return b / (alpha + b) * _renewal_sum(alpha, b + 1, discount_rate)


def _renewal_sum(alpha, b, discount_rate):
    """sum_k (b)_k / (alpha + b)_k z^k = 2F1(1, b; alpha + b; z), z = 1 / (1 + d), for
    alpha, b > 0 and d >= 0.

    scipy's ``hyp2f1`` is used where it returns a number. It returns NaN in parts of
    the range met here (e.g. alpha an integer with large b, or large alpha), and there
    the series would need about 1/d terms. Instead, with (b)_k / (alpha + b)_k =
    E[(1 - theta)^k] for theta ~ Beta(alpha, b) and the geometric series summed inside
    the expectation, the sum is

        E[1 / (1 - z (1 - theta))] = (1 + d) E[1 / (theta + d)],

    integrated numerically (:func:`~clvmodels.numerics.special.beta_expectation`), at a
    cost that grows only like log(1/d). At d = 0 (no discounting) Gauss's theorem gives
    (alpha + b - 1) / (alpha - 1) when alpha > 1; otherwise the sum diverges (infinite
    expected lifetime).
    """
    alpha, b, d = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (alpha, b, discount_rate))
    )
    z = 1.0 / (1.0 + d)
    at_one = d <= 0
    finite = alpha > 1
    gauss = np.where(finite, (alpha + b - 1) / np.where(finite, alpha - 1, 1.0), np.inf)
    below_one = z < 1  # false also for d > 0 so small that 1 / (1 + d) rounds to 1
    with np.errstate(invalid="ignore", over="ignore"):
        result = np.array(hyp2f1(1.0, b, alpha + b, np.where(below_one, z, 0.5)))
    failed = ~(np.isfinite(result) & below_one) & ~at_one
    if failed.any():
        d_ = d[failed]
        result[failed] = (1 + d_) * beta_expectation(
            _log_discount_factor, alpha[failed], b[failed], scale=1 / d_, args=(d_,)
        )
    return np.where(at_one, gauss, result)[()]


def _log_discount_factor(theta, one_minus_theta, d):
    """log 1 / (theta + d)."""
    return -np.log(theta + d)


# ------------------------------------------------------------------------- model


class ShiftedBetaGeometric(BaseModel):
    """Shifted-beta-geometric (sBG) model of contract durations (Fader & Hardie 2007),
    fitted by maximum likelihood.

    The data have one row per customer (or per pattern, with a ``weight`` column):
    ``lifetime`` is the period in which the customer was lost (a whole number >= 1) or,
    when ``censored`` is true (still active at the end of observation), the number of
    periods observed. :meth:`data_from_counts` builds that frame from a cohort's counts
    of active customers.

    Parameters
    ----------
    penalizer, initial_params, tol, max_iter, columns
        As for :class:`~clvmodels.models.bgbb.BGBB`; the roles are ``lifetime`` and
        ``censored``, the parameters ``alpha`` and ``beta``.

    Attributes
    ----------
    params_ : pandas.Series
        ``alpha``, ``beta``: churn probability theta ~ Beta(alpha, beta).
    covariance_ : pandas.DataFrame
        Asymptotic covariance of the estimates.
    log_likelihood_, aic_, bic_, n_customers_, n_patterns_, converged_
        As for the other models.

    Examples
    --------
    >>> from clvmodels.datasets import load_sbg_retention
    >>> from clvmodels.models.sbg import ShiftedBetaGeometric as SBG
    >>> pct = load_sbg_retention().loc[:7, "regular_pct_alive"]
    >>> model = SBG().fit(SBG.data_from_counts((pct * 10).round().astype(int)))
    >>> model.params_.round(3).tolist()  # FH 2007's regular segment
    [0.704, 1.182]
    >>> model.survival([8, 12]).round(3).tolist()  # actual: 0.223, 0.173
    [0.22, 0.17]
    >>> round(model.discounted_expected_residual_lifetime(0.1, n_renewals=4), 3)
    5.894
    """

    kind = "sbg"
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    data_columns: ClassVar[tuple[str, ...]] = ("lifetime", "censored")

    # ------------------------------------------------------------------- data

    @staticmethod
    def data_from_counts(active: Any) -> pd.DataFrame:
        """The fitting frame of a cohort from its number of active customers per period.

        Parameters
        ----------
        active : sequence of numbers
            Customers active at the start (``active[0]``) and at the end of each period
            1, 2, ..., n (non-increasing, >= 0), e.g. ``[1000, 631, 468, 382]``.

        Returns
        -------
        pandas.DataFrame
            n + 1 rows: for t = 1 .. n, ``lifetime`` t, ``censored`` False and
            ``weight`` = active[t - 1] - active[t] (lost in period t); then the
            survivors: ``lifetime`` n, ``censored`` True, ``weight`` = active[n].
            Weights are int64 when the counts are whole numbers.

        Examples
        --------
        >>> from clvmodels.models.sbg import ShiftedBetaGeometric
        >>> ShiftedBetaGeometric.data_from_counts([1000, 631, 468])
           lifetime  censored  weight
        0         1     False     369
        1         2     False     163
        2         2      True     468
        """
        try:
            counts = np.asarray(active, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidDataError(
                f"active must be a sequence of numbers of active customers, got {active!r}."
            ) from None
        if counts.ndim != 1 or counts.size < 2:
            raise InvalidDataError(
                "active needs the count at the start and after at least one period, e.g. "
                f"[1000, 631]; got shape {counts.shape}."
            )
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise InvalidDataError("active: counts must be finite and >= 0.")
        increases = np.flatnonzero(np.diff(counts) > 0)
        if increases.size:
            i = int(increases[0])
            raise InvalidDataError(
                f"active must not increase: {counts[i + 1]:g} customers after period {i + 1} "
                f"but {counts[i]:g} before. A cohort only loses customers; give counts of "
                "one cohort, not of the whole base."
            )
        if counts[0] <= 0:
            raise InvalidDataError("active[0] must be > 0: the cohort has no customers.")
        periods = counts.size - 1
        weights = np.append(counts[:-1] - counts[1:], counts[-1])
        if np.all(weights == np.floor(weights)):
            weights = weights.astype(np.int64)
        return pd.DataFrame(
            {
                "lifetime": np.append(np.arange(1, periods + 1), periods).astype(np.int64),
                "censored": np.append(np.zeros(periods, dtype=bool), True),
                "weight": weights,
            }
        )

    def _validate(self, arrays, index, names) -> None:
        t, c = arrays["lifetime"], arrays["censored"]
        if (t < 1).any():
            raise bad_rows_error(
                names["lifetime"], t < 1, index, "are below 1",
                "Lifetime is the period in which the customer was lost (1, 2, ...) or, if "
                "censored, the number of periods observed.",
            )  # fmt: skip
        if (t != np.floor(t)).any():
            raise bad_rows_error(
                names["lifetime"], t != np.floor(t), index, "are not whole numbers",
                "The sBG model counts discrete contract periods.",
            )  # fmt: skip
        if ((c != 0) & (c != 1)).any():
            raise bad_rows_error(
                names["censored"], (c != 0) & (c != 1), index, "are not True/False (or 1/0)",
                "censored says whether the customer was still active at the end.",
            )  # fmt: skip

    def _loglik(self, params, data, gradient):
        params = np.clip(params, *PARAM_RANGE)  # see clvmodels.models._base.PARAM_RANGE
        return log_likelihood(data["lifetime"], data["censored"], *params, gradient=gradient)

    def _initial_values(self, data, weights):
        return np.array([1.0, 1.0])

    # ------------------------------------------------------------ predictions

    def _curve(self, func, values, axis_name, name, interval, n_draws, random_state):
        return predict_curve(self, func, values, axis_name, name, interval, n_draws, random_state)

    def survival(
        self, t: int | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """S(t): share of a new cohort still active after ``t`` periods (S(0) = 1).

        Parameters
        ----------
        t : int or sequence of int
            Periods (whole numbers >= 0).
        interval : float, optional
            With e.g. ``0.9``, a 90% interval from ``n_draws`` draws of the estimates.
        n_draws, random_state
            For ``interval``.

        Returns
        -------
        float, pandas.Series or pandas.DataFrame
            A float for a scalar ``t`` (with ``interval``, a Series ``estimate, lower,
            upper``); a Series indexed by ``t`` for a sequence (with ``interval``, a
            DataFrame).
        """
        whole_numbers(t, "t", "periods")
        return self._curve(survival, t, "t", "survival", interval, n_draws, random_state)

    def retention_rate(
        self, t: int | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """r_t = (beta + t - 1) / (alpha + beta + t - 1): share of the customers active
        in period t - 1 who renew for period t (t >= 1). Returns as :meth:`survival`."""
        _periods(t)
        return self._curve(
            retention_rate, t, "t", "retention_rate", interval, n_draws, random_state
        )

    def probability_churn(
        self, t: int | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """P(T = t): share of a new cohort lost in period t (t >= 1). Returns as
        :meth:`survival`."""
        _periods(t)
        return self._curve(
            probability_churn, t, "t", "probability_churn", interval, n_draws, random_state
        )

    def expected_lifetime(
        self, *, interval: float | None = None, n_draws: int = 1000, random_state: Any = 0
    ) -> float | pd.Series:
        """E[T] = (alpha + beta - 1) / (alpha - 1), the mean number of periods a new
        customer stays (counting the first); ``inf`` when alpha <= 1, where the mean
        does not exist (use :meth:`discounted_expected_lifetime` then)."""
        return self._curve(
            lambda _v, alpha, beta: expected_lifetime(alpha, beta), 0.0, "", "expected_lifetime",
            interval, n_draws, random_state,
        )  # fmt: skip

    def discounted_expected_lifetime(
        self, discount_rate: float, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series:  # fmt: skip
        """DEL(d) = 2F1(1, beta; alpha + beta; 1/(1+d)) (FH 2010): expected discounted
        number of payments of a newly acquired customer, the first (at acquisition)
        undiscounted. Expected CLV = payment per period * DEL.

        Parameters
        ----------
        discount_rate : float
            Per-period discount rate d >= 0 (at d = 0 this is :meth:`expected_lifetime`).
        """
        d = _discount(discount_rate)
        return self._curve(
            lambda _v, alpha, beta: discounted_expected_lifetime(d, alpha, beta), 0.0, "",
            "discounted_expected_lifetime", interval, n_draws, random_state,
        )  # fmt: skip

    def discounted_expected_residual_lifetime(
        self, discount_rate: float, *, n_renewals: int | Any = 0,
        interval: float | None = None, n_draws: int = 1000, random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """DERL (FH 2010): expected discounted number of future payments of a customer
        who has renewed ``n_renewals`` times.

        FH 2010's convention: the customer has made n - 1 = ``n_renewals`` renewals and
        we stand at the end of their period n, just before the next renewal decision;
        the payment of that next renewal counts undiscounted, the one after it is
        discounted once, and so on:
        DERL = (beta + n - 1) / (alpha + beta + n - 1)
        * 2F1(1, beta + n; alpha + beta + n; 1/(1+d)). Expected residual value of the
        customer = payment per period * DERL.

        Parameters
        ----------
        discount_rate : float
            Per-period discount rate d >= 0.
        n_renewals : int or sequence of int, default 0
            Renewals made so far (n - 1 in FH 2010). A sequence gives a Series indexed
            by ``n_renewals``.
        """
        d = _discount(discount_rate)
        whole_numbers(n_renewals, "n_renewals", "numbers of renewals")
        return self._curve(
            lambda r, alpha, beta: discounted_expected_residual_lifetime(d, r, alpha, beta),
            n_renewals, "n_renewals", "discounted_expected_residual_lifetime", interval,
            n_draws, random_state,
        )  # fmt: skip


def _periods(t: Any) -> None:
    values = whole_numbers(t, "t", "periods")
    if np.any(values < 1):
        raise InvalidDataError(f"t={t!r}: periods start at 1 here; give whole numbers >= 1.")


def _discount(value: Any) -> float:
    if np.ndim(value) != 0:
        raise InvalidDataError(f"discount_rate={value!r}: give one rate per call.")
    return float(as_array(value, "discount_rate"))

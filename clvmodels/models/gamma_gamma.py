"""Gamma-Gamma model of the value of a customer's transactions.

Fader, P. S. & Hardie, B. G. S. (2013). "The Gamma-Gamma model of monetary value"
(note); after Colombo, R. & Jiang, W. (1999), "A stochastic RFM model", Journal of
Interactive Marketing 13(3).

Each transaction of a customer is worth z ~ Gamma(p, nu) (shape, rate); across customers
nu ~ Gamma(q, gamma). Fitted on repeat buyers' mean repeat-transaction value
``monetary_value`` (z-bar) and number of repeat transactions ``frequency`` (x), it
assumes spend is independent of the purchase process.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from .._validation import bad_rows_error, check_summary_arrays
from ..exceptions import InvalidDataError
from ._base import BaseModel, _label, user_stacklevel, weighted_sum

__all__ = ["GammaGamma", "expected_spend", "log_likelihood", "mean_spend"]


# Mean values between these scales fit; beyond, gamma's variance (about scale squared)
# leaves the range of float64.
_VALUE_SCALES = (1e-100, 1e100)


def log_likelihood(x, z, p, q, gamma, gradient: bool = False):
    """Log density of the mean value ``z`` of ``x`` transactions and its gradient.

    Fader & Hardie (2013) eq. (3): f(z | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) *
    gamma^q z^(px-1) x^(px) / (gamma + x z)^(px+q).
    """
    px = p * x
    log_total = np.log(gamma + x * z)
    ll = (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
        + (px - 1) * np.log(z) + px * np.log(x) - (px + q) * log_total
    )  # fmt: skip
    if not gradient:
        return ll, None
    psi = digamma(px + q)
    d_p = x * (psi - digamma(px) + np.log(z) + np.log(x) - log_total)
    d_q = psi - digamma(q) + np.log(gamma) - log_total
    d_gamma = q / gamma - (px + q) / (gamma + x * z)
    return ll, np.stack(np.broadcast_arrays(d_p, d_q, d_gamma), axis=-1)


def expected_spend(x, z, p, q, gamma):
    """E[value of a transaction | x, z] (Fader & Hardie 2013, eq. 5).

    A weighted mean of the population mean p gamma / (q - 1) and the customer's own mean
    z, with weight p x / (p x + q - 1) on the latter; with x = 0 it is the population
    mean. The expectation is infinite where p x + q - 1 <= 0 (e.g. x = 0 and q <= 1):
    there the result is +inf.
    """
    denominator = p * x + q - 1
    finite = denominator > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = p * (gamma + x * z) / np.where(finite, denominator, 1.0)
    return np.where(finite, value, np.inf)


def mean_spend(p, q, gamma):
    """Population mean transaction value p gamma / (q - 1); +inf where q <= 1."""
    return expected_spend(0.0, 0.0, p, q, gamma)


class GammaGamma(BaseModel):
    """Gamma-Gamma spend model fitted by maximum likelihood.

    ``fit`` uses the customers with ``frequency > 0`` (repeat buyers: the model explains
    the mean of their repeat transactions) and ignores the others; predictions work for
    every customer, and those without repeat purchases get the population mean. Their
    ``monetary_value`` is never used and may be NaN.

    Every repeat buyer needs a positive ``monetary_value``: a transaction value of 0
    has zero density under the model, so ``fit`` refuses such customers (the CDNOW
    master file has one, customer 10244, whose repeat purchases are all worth 0).
    Either drop them first, e.g. ``data[(data.frequency == 0) | (data.monetary_value >
    0)]`` (with ``_cal`` column names on a calibration frame), or set
    ``drop_zero_values=True`` to have ``fit`` leave them out with a warning. Both
    change the population the model describes: a large share of zero-value customers
    is better modelled separately.

    Parameters
    ----------
    penalizer, initial_params, tol, max_iter
        As in :class:`~clvmodels.BGNBD`.
    columns : dict, optional
        Column names for the roles ``frequency`` and ``monetary_value``.
    drop_zero_values : bool, default False
        Leave repeat buyers whose ``monetary_value`` is 0 out of the fit (with a
        ``UserWarning`` saying how many) instead of raising.

    Attributes
    ----------
    params_ : pandas.Series
        ``p`` (shape of transaction values), ``q`` and ``gamma`` (shape and rate of the
        customers' rate parameters nu).
    n_customers_ : int
        Repeat buyers fitted.

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W", amount="amount")
    >>> model = clvmodels.GammaGamma().fit(frame)
    >>> model.params_.round(4).tolist()
    [6.2496, 3.7442, 15.4435]
    >>> round(model.mean_spend(), 2)
    35.17
    """

    kind = "gamma_gamma"
    # fit on values divided by their scale (see _value_scale)
    _rescaled_fit: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        tol: float = 1e-9,
        max_iter: int = 2000,
        columns: Mapping[str, str] | None = None,
        drop_zero_values: bool = False,
    ) -> None:
        super().__init__(
            penalizer=penalizer, initial_params=initial_params, tol=tol, max_iter=max_iter,
            columns=columns,
        )  # fmt: skip
        self.drop_zero_values = drop_zero_values

    def _check_settings(self) -> None:
        super()._check_settings()
        if not isinstance(self.drop_zero_values, bool | np.bool_):
            raise InvalidDataError(
                f"GammaGamma: drop_zero_values={self.drop_zero_values!r}: give True or False."
            )

    def _unused_rows(self, role, arrays):
        # The mean repeat value of a customer without repeat purchases is never used.
        if role == "monetary_value":
            return arrays["frequency"] == 0
        return None

    def _validate(self, arrays, index, names) -> None:
        check_summary_arrays(arrays["frequency"], None, None, index,
                             frequency=names["frequency"])  # fmt: skip
        value = arrays["monetary_value"]
        if (value < 0).any():
            raise bad_rows_error(
                names["monetary_value"], value < 0, index, "are negative",
                "Monetary value is the mean value of repeat transactions.",
            )  # fmt: skip

    def check_data(self, data: Any, *, weights: Any = None) -> None:
        """Raise what :meth:`fit` would raise about ``data``, without fitting (zero
        values of repeat buyers included).

        Examples
        --------
        >>> import pandas as pd
        >>> GammaGamma().check_data(pd.DataFrame({"frequency": [2, 0],
        ...                                       "monetary_value": [10.0, 0.0]}))
        """
        data, arrays, index = self._checked(data, weights)
        self._repeat_buyers(data, arrays, index, warn=False)

    def _repeat_buyers(self, data: pd.DataFrame, arrays: dict[str, np.ndarray],
                       index: pd.Index, warn: bool = True) -> np.ndarray:  # fmt: skip
        """The rows the model is fitted on: repeat buyers, without zero values when
        ``drop_zero_values`` (else those are an error)."""
        repeat = arrays["frequency"] > 0
        if not repeat.any():
            raise InvalidDataError(
                "GammaGamma: no customer has frequency > 0; the model is fitted on the "
                "mean value of repeat transactions."
            )
        column = self._column_names(data)["monetary_value"]
        zero = repeat & (arrays["monetary_value"] <= 0)
        if zero.any():
            if not self.drop_zero_values:
                raise bad_rows_error(
                    column, zero, index, "are 0 for repeat buyers",
                    "The Gamma-Gamma model needs positive transaction values: drop these "
                    f"customers (keep {column} > 0 or frequency == 0), check the amount "
                    "column, or pass GammaGamma(drop_zero_values=True).",
                )  # fmt: skip
            example = index[int(np.argmax(zero))]
            if warn:
                warnings.warn(
                    f"GammaGamma: {int(zero.sum()):,} repeat buyers with {column} 0 (e.g. "
                    f"customer {_label(example)!r}) are left out of "
                    "the fit (drop_zero_values=True).",
                    UserWarning, stacklevel=user_stacklevel(),
                )  # fmt: skip
            repeat &= ~zero
            if not repeat.any():
                raise InvalidDataError(
                    f"GammaGamma: every repeat buyer has {column} 0; there is nothing to fit."
                )
        return repeat

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> GammaGamma:
        """Fit on the repeat buyers of ``data`` (rows with ``frequency > 0``).

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            Customers with ``frequency`` and ``monetary_value`` (or both in their
            ``_cal`` forms, or as named by the ``columns`` setting).
        weights : array-like, pandas.Series or str, optional
            Number of customers each row stands for, or the name of a column holding
            it. A Series is aligned on the index of ``data``. When ``weights`` is not
            given, a column named ``weight`` is used if ``data`` has one (that is how
            the frames of :func:`~clvmodels.compress` carry their counts), else every
            row counts once.

        Returns
        -------
        self
        """
        self._reset()
        self._check_settings()
        data = self._frame(data, "data", weights)
        arrays, index = self._read(data)
        repeat = self._repeat_buyers(data, arrays, index)
        weights = self._weights(data, weights)
        fitted, fitted_weights = data.loc[repeat], weights[repeat]
        column = self._column_names(data)["monetary_value"]
        scale = self._value_scale(arrays["monetary_value"][repeat], fitted_weights)
        if not _VALUE_SCALES[0] <= scale <= _VALUE_SCALES[1]:
            raise InvalidDataError(
                f"GammaGamma: {column} of repeat buyers is about {scale:.3g} on average; "
                "beyond 1e-100 to 1e100 the variance of gamma cannot be represented in "
                "floating point. Express the amounts in other units (e.g. thousands or "
                "cents) so that they are nearer 1."
            )
        if scale == 1.0:
            return super().fit(fitted, weights=fitted_weights)
        fitted = fitted.assign(**{column: fitted[column] / scale})
        super().fit(fitted, weights=fitted_weights)
        self._unscale(scale, float(np.sum(fitted_weights)))
        return self

    def _value_scale(self, values: np.ndarray, weights: np.ndarray) -> float:
        """The power of two nearest the values' mean, by which ``fit`` divides them.

        The model is scale-equivariant (values times c: gamma times c, p and q the
        same, Fader & Hardie 2013 eq. 3), so fitting in units near 1 changes nothing
        but the floating point: amounts in millions or of 1e300 would otherwise
        overflow the start values, or push gamma past the range in which the fit
        warns about identification. A power of two divides exactly. Not used with a
        penalizer or start values (both are in the data's units), nor by the Bayesian
        twin, whose priors on gamma are.
        """
        shares = weights / float(np.sum(weights))
        mean = float(np.sum(shares * values))
        if not np.isfinite(mean) or mean <= 0:
            return 1.0
        scale = float(2.0 ** np.round(np.log2(mean)))
        if not _VALUE_SCALES[0] <= scale <= _VALUE_SCALES[1]:
            return scale  # refused by fit, whoever fits
        if not self._rescaled_fit or self.penalizer != 0 or self.initial_params is not None:
            return 1.0
        return scale

    def _unscale(self, scale: float, n_weighted: float) -> None:
        """Fitted attributes of values divided by ``scale`` expressed in the data's units."""
        names = list(self.param_names)
        factor = np.where(np.array(names) == "gamma", scale, 1.0)
        self.params_ = self.params_ * factor
        covariance = self.covariance_.to_numpy() * np.outer(factor, factor)
        self.covariance_ = pd.DataFrame(covariance, index=names, columns=names)
        # each customer's mean value z has density f(z / c) / c
        self.log_likelihood_ -= n_weighted * np.log(scale)
        self._set_information_criteria(self.n_customers_)

    def _loglik(self, params, data, gradient):
        return log_likelihood(
            data["frequency"], data["monetary_value"], **self._param_dict(params),
            gradient=gradient,
        )  # fmt: skip

    def _initial_values(self, data, weights):
        # Moment-style start: p = 1, q = 2 and gamma matching the mean value, so that
        # p * gamma / (q - 1) equals the observed mean.
        # shares first: a sum of huge values would overflow where their mean does not
        mean = weighted_sum(weights / float(weights.sum()), data["monetary_value"])
        return np.array([1.0, 2.0, max(mean, 1e-6)])

    def expected_spend(
        self, data: pd.DataFrame, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """Expected value of each customer's future transactions, E[Z | x, z-bar].

        Customers without repeat purchases get the population mean. The estimate needs
        the fitted q > 1; with ``interval``, parameter draws where the expectation is
        infinite (p x + q <= 1) make the upper bound ``inf``.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            Indexed like ``data``; ``estimate, lower, upper`` with ``interval``.
        """
        self._check_fitted()
        self._require_finite_mean()
        arrays, index = self._read(data)
        return self._predict(
            lambda frequency, monetary_value, **params: expected_spend(
                frequency, monetary_value, **params
            ),
            arrays, index, "expected_spend", interval, n_draws, random_state,
        )  # fmt: skip

    def mean_spend(
        self, *, interval: float | None = None, n_draws: int = 1000, random_state: Any = 0
    ) -> float | pd.Series:
        """Population mean transaction value p * gamma / (q - 1).

        The estimate needs the fitted q > 1. With ``interval``, parameter draws with
        q <= 1 have an infinite mean, so the upper bound can be ``inf``.
        """
        self._check_fitted()
        self._require_finite_mean()
        return self._predict_scalar(
            mean_spend, "mean_spend", interval, n_draws, random_state
        )

    def _require_finite_mean(self) -> None:
        if self.params_["q"] <= 1:
            raise InvalidDataError(
                f"GammaGamma: q = {self.params_['q']:.3g} <= 1, so the mean transaction "
                "value is infinite; check for extreme monetary values."
            )

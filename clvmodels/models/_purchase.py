"""The public prediction API shared by the continuous-time purchase models.

BG/NBD, MBG/NBD and Pareto/NBD answer the same questions from (frequency, recency, T);
each supplies four array functions (the array functions of each model module), turned into
methods that take a DataFrame and return a Series (or, with ``interval``, a DataFrame of
``estimate, lower, upper``) indexed like it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._validation import as_array, check_summary_arrays
from ..exceptions import InvalidDataError
from ._base import BaseModel, horizon_in_units, single_count_for_draws

__all__ = ["PurchaseModel"]


class PurchaseModel(BaseModel):
    """Base of models of repeat purchases in continuous time (frequency, recency, T)."""

    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    # array functions: (t?, n?, x, t_x, T, **params) -> array
    _f_log_likelihood: ClassVar[Any]
    _f_expected_purchases: ClassVar[Any]
    _f_probability_alive: ClassVar[Any]
    _f_probability_purchases: ClassVar[Any]

    # optional faster weighted sum: a pattern layout and a function of it (see
    # BaseModel._weighted_loglik); None falls back to the per-row log-likelihood
    _f_weighted_patterns: ClassVar[Any] = None
    _f_weighted_log_likelihood: ClassVar[Any] = None

    def _validate(self, arrays, index, names) -> None:
        check_summary_arrays(
            arrays["frequency"], arrays["recency"], arrays["T"], index,
            frequency=names["frequency"], recency=names["recency"], T=names["T"],
        )  # fmt: skip

    def _prepare(self, arrays):
        # Special functions of the frequency are evaluated once per distinct value.
        distinct, row = np.unique(arrays["frequency"], return_inverse=True)
        return {**arrays, "x_groups": (distinct, row)}

    def _loglik(self, params, data, gradient):
        return type(self)._f_log_likelihood(
            data["frequency"], data["recency"], data["T"], **self._param_dict(params),
            gradient=gradient, x_groups=data.get("x_groups"),
        )  # fmt: skip

    def _weighted_patterns(self, arrays, weights):
        layout = type(self)._f_weighted_patterns
        if layout is None:
            return super()._weighted_patterns(arrays, weights)
        return layout(arrays["frequency"], arrays["recency"], arrays["T"], weights)

    def _weighted_loglik(self, params, patterns):
        if type(self)._f_weighted_patterns is None:
            return super()._weighted_loglik(params, patterns)
        return type(self)._f_weighted_log_likelihood(patterns, **self._param_dict(params))

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> PurchaseModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            Per-customer summary (or a ``compress``-ed frame) with ``frequency``,
            ``recency`` and ``T``, or all three in their ``_cal`` forms, or as named by
            the ``columns`` setting.
        weights : array-like, pandas.Series or str, optional
            Number of customers each row stands for, or the name of a column holding
            it. A Series is aligned on the index of ``data``. When ``weights`` is not
            given, a column named ``weight`` is used if ``data`` has one (that is how
            the frames of :func:`~clvmodels.compress` carry their counts), else every
            row counts once; drop or rename such a column if it means something else.

        Returns
        -------
        self

        Notes
        -----
        The time unit of ``data`` (recorded by ``summarize`` / ``calibration_holdout``
        in ``data.attrs``) is kept as ``time_unit_``; predictions then refuse data
        recorded in another unit. Settings are checked here, not by the constructor,
        and a failed fit leaves the model unfitted.
        """
        super().fit(data, weights=weights)
        attrs = data.attrs.get("clvmodels", {}) if isinstance(data, pd.DataFrame) else {}
        self.time_unit_ = attrs.get("time_unit")
        return self

    def _cumulative_purchases(
        self, arrays: dict[str, np.ndarray], params: dict[str, np.ndarray], t: float
    ) -> np.ndarray:
        """E[X(T, T + t) | history] on arrays (used by predictive_clv)."""
        return type(self)._f_expected_purchases(
            t=t, x=arrays["frequency"], t_x=arrays["recency"], T=arrays["T"], **params
        )

    def _customer_prediction(self, func, data, name, interval, n_draws, random_state, **kw):
        arrays, index = self._read(data)
        return self._predict(
            lambda frequency, recency, T, **rest: func(x=frequency, t_x=recency, T=T, **rest),
            arrays, index, name, interval, n_draws, random_state, **kw,
        )  # fmt: skip

    # -------------------------------------------------------------- per customer

    def expected_purchases(
        self, data: pd.DataFrame, t: float, *, interval: float | None = None,
        n_draws: int = 1000, random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """Expected number of purchases in the next ``t`` time units, E[X(T, T+t) | history].

        Parameters
        ----------
        data : pandas.DataFrame
            Customers with ``frequency``, ``recency`` and ``T`` (or their ``_cal`` forms).
        t : float, str or timedelta
            Horizon: a number of the model's time units (those of the data it was
            fitted on), or a calendar duration such as ``"12M"`` or ``"39W"``.
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
        t = _horizon(self, t)
        return self._customer_prediction(
            type(self)._f_expected_purchases, data, "expected_purchases", interval, n_draws,
            random_state, t=t,
        )  # fmt: skip

    def probability_alive(
        self, data: pd.DataFrame, t: float = 0.0, *, interval: float | None = None,
        n_draws: int = 1000, random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """Probability that each customer is alive at the end of observation (``t = 0``)
        or ``t`` time units later, given their history.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            As :meth:`expected_purchases`.
        """
        t = _horizon(self, t)
        return self._customer_prediction(
            type(self)._f_probability_alive, data, "probability_alive", interval, n_draws,
            random_state, t=t,
        )  # fmt: skip

    def probability_purchases(
        self, data: pd.DataFrame, t: float, n: int | Any, *, interval: float | None = None,
        n_draws: int = 1000, random_state: Any = 0,
    ) -> pd.Series | pd.DataFrame:  # fmt: skip
        """P(X(T, T+t) = n | history): probability of exactly ``n`` purchases in the next
        ``t`` time units.

        Parameters
        ----------
        n : int or sequence of int
            A count, or several: then one column per count (with ``interval``, columns
            ``(n, estimate | lower | upper)``).

        Returns
        -------
        pandas.Series or pandas.DataFrame
        """
        t = _horizon(self, t)
        counts = _counts(n)
        single_count_for_draws(n)
        parts = {
            int(k): self._customer_prediction(
                type(self)._f_probability_purchases, data, f"probability_{int(k)}_purchases",
                interval, n_draws, random_state, t=t, n=float(k),
            )
            for k in counts
        }  # fmt: skip
        if np.ndim(n) == 0:
            return parts[int(counts[0])]
        return pd.concat(parts, axis=1, names=["n"])

    # -------------------------------------------------------------- new customers

    def expected_purchases_new_customer(
        self, t: float | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """Expected purchases of a newly acquired customer in their first ``t`` time units
        after the first purchase (repeat purchases only).

        ``t`` may be a sequence: then a Series (or DataFrame with ``interval``) by ``t``.
        """
        return self._new_customer(
            type(self)._f_expected_purchases, "expected_purchases", t, interval, n_draws,
            random_state,
        )  # fmt: skip

    def probability_purchases_new_customer(
        self, t: float, n: int | Any, *, interval: float | None = None, n_draws: int = 1000,
        random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """P(X(t) = n) for a newly acquired customer; ``n`` may be a sequence."""
        t = _horizon(self, t)
        counts = _counts(n)
        results = {
            int(k): self._new_customer(
                type(self)._f_probability_purchases, "probability", t, interval, n_draws,
                random_state, n=float(k),
            )
            for k in counts
        }  # fmt: skip
        if np.ndim(n) == 0:
            return results[int(counts[0])]
        if interval is None:
            return pd.Series(results, name="probability").rename_axis("n")
        return pd.DataFrame(results).T.rename_axis("n")

    def _new_customer(self, func, name, t, interval, n_draws, random_state, **kw):
        # A new customer is one observed for no time at all: x = t_x = T = 0.
        times = as_array(t, "t")
        zeros = {"x": 0.0, "t_x": 0.0, "T": 0.0}
        values = {
            float(v): self._predict_scalar(
                lambda v=v, **p: func(t=float(v), **zeros, **p, **kw),
                name, interval, n_draws, random_state,
            )
            for v in np.atleast_1d(times)
        }  # fmt: skip
        if times.ndim == 0:
            return next(iter(values.values()))
        if interval is None:
            return pd.Series(values, name=name).rename_axis("t")
        return pd.DataFrame(values).T.rename_axis("t")


def _horizon(model: Any, t: Any) -> float:
    """A single horizon ``t`` in the model's time unit: a number of its units, or a
    calendar duration (``"12M"``) converted with the unit it was fitted in."""
    if np.ndim(t) != 0:
        raise InvalidDataError(
            f"t={t!r}: t must be a single horizon; call once per horizon (e.g. "
            "[model.expected_purchases(data, h) for h in horizons])."
        )
    return horizon_in_units(t, getattr(model, "time_unit_", None), name="t")


def _counts(n: Any) -> np.ndarray:
    counts = np.atleast_1d(np.asarray(n))
    if counts.size == 0 or not np.all(np.isfinite(counts.astype(float))) or np.any(
        (counts.astype(float) < 0) | (counts.astype(float) != np.floor(counts.astype(float)))
    ):
        raise InvalidDataError(f"n={n!r}: give whole numbers of purchases >= 0.")
    return counts.astype(np.int64)

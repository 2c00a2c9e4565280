"""The public prediction API shared by the continuous-time purchase models.

BG/NBD, MBG/NBD and Pareto/NBD answer the same questions from (frequency, recency, T);
each supplies four array functions (the array functions of each model module), turned into
methods that take a DataFrame and return a Series (or, with ``interval``, a DataFrame of
``estimate, lower, upper``) indexed like it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._validation import as_array, check_summary_arrays, finite_number, require_columns
from ..exceptions import IdentificationWarning, InvalidDataError
from . import _covariates
from ._base import BaseModel, horizon_in_units, single_count_for_draws, user_stacklevel
from ._covariates import KEY, Design

__all__ = ["PurchaseModel"]


class PurchaseModel(BaseModel):
    """Base of models of repeat purchases in continuous time (frequency, recency, T),
    with static covariates (:mod:`clvmodels.models._covariates`)."""

    data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    # Which parameter each process's covariates scale, with the sign of the exponent:
    # theta_i = theta exp(sign g'z_i) (see _covariates).
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {}
    _EXTRA_STATE: ClassVar[tuple[str, ...]] = ("time_unit", "covariates", "time_varying")

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        tol: float = 1e-9,
        max_iter: int = 2000,
        columns: Mapping[str, str] | None = None,
        purchase_covariates: Sequence[str] | None = None,
        dropout_covariates: Sequence[str] | None = None,
        shared_covariates: Sequence[str] | None = None,
        covariate_penalizer: float | Mapping[str, float] = 0.0,
    ) -> None:
        super().__init__(penalizer=penalizer, initial_params=initial_params, tol=tol,
                         max_iter=max_iter, columns=columns)  # fmt: skip
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates
        self.shared_covariates = shared_covariates
        self.covariate_penalizer = covariate_penalizer

    # ------------------------------------------------------------------ covariates

    def _covariate_settings(self) -> _covariates.CovariateSettings | None:
        return _covariates.covariate_settings(self)

    def _design(self) -> Design | None:
        """The covariate design of the fit (None without covariates)."""
        return getattr(self, "covariates_", None)

    def _check_settings(self) -> None:
        super()._check_settings()
        self._covariate_settings()

    def _check_initial_params(self, start: Any = None) -> None:
        start = self.initial_params if start is None else start
        if not isinstance(start, Mapping | pd.Series):
            return super()._check_initial_params(start)
        prefixes = (*_covariates.PROCESSES, _covariates.SHARED)
        coefficients = {k: v for k, v in start.items() if str(k).split(".")[0] in prefixes}
        for key, value in coefficients.items():
            if self._covariate_settings() is None or finite_number(value) is None:
                raise InvalidDataError(
                    f"{type(self).__name__}: initial_params[{key!r}]={value!r}: a start "
                    "value of a covariate coefficient is a finite number, for a covariate "
                    "the model has."
                )
        base = {k: v for k, v in start.items() if k not in coefficients}
        return super()._check_initial_params(base)

    def _start(self, arrays: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        design = self._design()
        if design is None:
            return super()._start(arrays, weights)
        names = list(type(self).param_names)
        given = {str(k): float(v) for k, v in (self.initial_params or {}).items()}
        if self.initial_params is None:
            base = np.asarray(self._initial_values(arrays, weights), dtype=np.float64)
        else:
            self._check_initial_params()
            base = np.array([given[n] for n in names])
        unknown = sorted(set(given) - set(names) - set(design.names))
        if unknown:
            raise InvalidDataError(
                f"{type(self).__name__}: initial_params names {unknown}, which are not "
                f"coefficients of this fit ({', '.join(design.names)})."
            )
        # zero coefficients: the plain model, the natural start
        return np.concatenate([base, [given.get(n, 0.0) for n in design.names]])

    def _learn(self, data: pd.DataFrame) -> None:
        self.__dict__.pop("param_names", None)
        settings = self._covariate_settings()
        if settings is None:
            return
        frame = self._frame(data)
        _require_covariates(frame, settings, "data")
        self.covariates_ = Design.learn(settings, frame, "data")
        self.param_names = (*type(self).param_names, *self.covariates_.names)

    def _extra_columns(self) -> tuple[str, ...]:
        settings = self._covariate_settings()
        return () if settings is None else settings.columns

    def _read(
        self, data: Any, what: str = "data", *, learn: bool = False
    ) -> tuple[dict[str, np.ndarray], pd.Index]:
        self._refuse_time_varying("reading customers without it")
        arrays, index = super()._read(data, what, learn=learn)
        settings = self._covariate_settings()
        if settings is None:
            return arrays, index
        frame = self._frame(data, what)
        _require_covariates(frame, settings, what)
        design = self._design()
        if learn or design is None:
            design = Design.learn(settings, frame, what)
        arrays.update(design.encode(frame, what))
        return arrays, index

    def _positive(self) -> np.ndarray:
        design = self._design()
        base = np.ones(len(type(self).param_names), dtype=bool)
        return base if design is None else np.concatenate([base, np.zeros(len(design.names), bool)])

    def _free_map(self) -> np.ndarray | None:
        design = self._design()
        if design is None:
            return None
        return _covariates.free_map(design, type(self).covariate_links, type(self).param_names)

    def _penalty_weights(self) -> Any:
        design = self._design()
        if design is None:
            return self.penalizer
        base = np.full(len(type(self).param_names), float(self.penalizer))
        return np.concatenate([base, design.penalty_weights()])

    def _individual(self, values: dict[str, Any]) -> dict[str, Any]:
        """Arguments of an array function from ``values`` (parameters, covariate
        columns, other arguments): each customer's own parameters in place of the
        population's and the coefficients, the covariate columns dropped."""
        design = self._design()
        if design is None:
            return values
        covariates = {k: v for k, v in values.items() if k.startswith(KEY)}
        if not covariates:
            raise InvalidDataError(
                f"{type(self).__name__} has covariates ({', '.join(design.settings.columns)})"
                ": give them for these customers."
            )
        rest = {k: v for k, v in values.items() if not k.startswith(KEY)}
        return _covariates.individual_parameters(
            design, type(self).covariate_links, rest, covariates
        )

    def _covariate_loglik(self, params, data, gradient):
        design = self._design()
        names = type(self).param_names
        values = {**self._param_dict(params), **data}
        individual = self._individual(values)
        own = {n: individual[n] for n in names}
        ll, grad = type(self)._f_log_likelihood(
            data["frequency"], data["recency"], data["T"], **own, gradient=gradient
        )
        if not gradient:
            return ll, None
        grads = [grad[..., j] for j in range(len(names))] if isinstance(grad, np.ndarray) else grad
        covariates = {k: v for k, v in data.items() if k.startswith(KEY)}
        base = {n: values[n] for n in names}
        return ll, _covariates.chain_gradient(
            design, type(self).covariate_links, names, base, own, grads, covariates
        )

    def _set_fitted(self, params, arrays, weights, converged) -> None:
        # Separation is found before the base checks run (in super()._set_fitted): a
        # separated coefficient leaves no covariance, which it then explains.
        self._separated = (
            [] if self._design() is None
            else _covariates.separated(self, params, arrays, weights)
        )  # fmt: skip
        super()._set_fitted(params, arrays, weights, converged)

    def _warn_identification(self) -> None:
        separated = getattr(self, "_separated", [])
        if not separated:
            return super()._warn_identification()
        for name, value, direction in separated:
            warnings.warn(
                f"{type(self).__name__}: coefficient {name} = {value:.3g}: the likelihood "
                f"keeps rising as it moves toward {direction} (its covariate separates the "
                "customers, e.g. a category whose customers all behave alike), so its "
                "estimate and standard error mean nothing, and so may the other "
                "parameters'. Add a penalty (covariate_penalizer=, e.g. 0.01) or drop the "
                "covariate.",
                IdentificationWarning, stacklevel=user_stacklevel(),
            )  # fmt: skip
        return None

    def _extra_state(self) -> dict[str, Any]:
        design = self._design()
        if design is not None and design.settings != self._covariate_settings():
            raise InvalidDataError(
                f"{type(self).__name__}: the covariate settings changed since the fit "
                f"(fitted with {list(design.settings.columns)}); refit, or set them back, "
                "before saving."
            )
        return {"time_unit": getattr(self, "time_unit_", None),
                "covariates": None if design is None else design.to_state(),
                "time_varying": bool(getattr(self, "time_varying_", False))}  # fmt: skip

    def _restore_extra(self, extra: dict[str, Any], refuse: Any) -> None:
        self.time_unit_ = extra.get("time_unit")
        varying = extra.get("time_varying", False)
        if not isinstance(varying, bool):
            raise refuse(f"is {varying!r}, not true or false", "extra['time_varying']")
        self.time_varying_ = varying
        settings = self._covariate_settings()
        state = extra.get("covariates")
        if settings is None:
            if state is not None:
                raise refuse("describes covariates, but the settings name none",
                             "extra['covariates']")  # fmt: skip
            return
        self.covariates_ = Design.from_state(settings, state, refuse)
        self.param_names = (*type(self).param_names, *self.covariates_.names)

    # array functions: (t?, n?, x, t_x, T, **params) -> array
    _f_log_likelihood: ClassVar[Any]
    _f_expected_purchases: ClassVar[Any]
    _f_probability_alive: ClassVar[Any]
    _f_probability_purchases: ClassVar[Any]
    _f_probability_repurchase: ClassVar[Any]

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
        if self._design() is not None:
            return arrays  # parameters differ by customer: nothing to share
        # Special functions of the frequency are evaluated once per distinct value.
        distinct, row = np.unique(arrays["frequency"], return_inverse=True)
        return {**arrays, "x_groups": (distinct, row)}

    def _loglik(self, params, data, gradient):
        if self._design() is not None:
            return self._covariate_loglik(params, data, gradient)
        return type(self)._f_log_likelihood(
            data["frequency"], data["recency"], data["T"], **self._param_dict(params),
            gradient=gradient, x_groups=data.get("x_groups"),
        )  # fmt: skip

    def _weighted_patterns(self, arrays, weights):
        layout = type(self)._f_weighted_patterns
        if layout is None or self._design() is not None:
            return super()._weighted_patterns(arrays, weights)
        return layout(arrays["frequency"], arrays["recency"], arrays["T"], weights)

    def _weighted_loglik(self, params, patterns):
        if type(self)._f_weighted_patterns is None or self._design() is not None:
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
        if _is_history(data):
            return self._fit_history(data, weights)
        super().fit(data, weights=weights)
        attrs = data.attrs.get("clvmodels", {}) if isinstance(data, pd.DataFrame) else {}
        self.time_unit_ = attrs.get("time_unit")
        self.time_varying_ = False
        return self

    def _fit_history(self, history: Any, weights: Any) -> PurchaseModel:
        raise InvalidDataError(
            f"{type(self).__name__} does not take time-varying covariates; the Pareto/NBD "
            "model does (clvmodels.ParetoNBD, Bachmann, Meierer & Näf 2021). For static "
            "covariates fit on a per-customer frame."
        )

    def _history_prediction(self, name: str, history: Any, interval: Any, n_draws: int,
                            random_state: Any, **kw: Any) -> Any:  # fmt: skip
        raise InvalidDataError(
            f"{type(self).__name__}.{name}: predictions on a covariate history are for a "
            "ParetoNBD fitted on one."
        )

    def _refuse_time_varying(self, what: str) -> None:
        if getattr(self, "time_varying_", False):
            raise InvalidDataError(
                f"{type(self).__name__} was fitted with time-varying covariates: {what} "
                "needs each customer's covariates over the horizon; pass a covariate "
                "history (clvmodels.covariate_history) whose table covers it."
            )

    def _cumulative_purchases(
        self, arrays: dict[str, np.ndarray], params: dict[str, np.ndarray], t: float
    ) -> np.ndarray:
        """E[X(T, T + t) | history] on arrays (used by predictive_clv)."""
        self._refuse_time_varying("predictive CLV")
        covariates = {k: v for k, v in arrays.items() if k.startswith(KEY)}
        return type(self)._f_expected_purchases(
            t=t, x=arrays["frequency"], t_x=arrays["recency"], T=arrays["T"],
            **self._individual({**params, **covariates}),
        )  # fmt: skip

    def _customer_prediction(self, func, data, name, interval, n_draws, random_state, **kw):
        if _is_history(data):
            return self._history_prediction(name, data, interval, n_draws, random_state, **kw)
        self._refuse_time_varying(name)
        arrays, index = self._read(data)
        individual = self._individual
        return self._predict(
            lambda frequency, recency, T, **rest: func(x=frequency, t_x=recency, T=T,
                                                       **individual(rest)),
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
        self, t: float | Any, *, covariates: Mapping[str, Any] | pd.DataFrame | None = None,
        interval: float | None = None, n_draws: int = 1000, random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """Expected purchases of a newly acquired customer in their first ``t`` time units
        after the first purchase (repeat purchases only).

        ``t`` may be a sequence: then a Series (or DataFrame with ``interval``) by ``t``.
        A model with covariates needs the new customer's: ``covariates={"gender": 1,
        "channel": "search"}`` (one customer), or a DataFrame of several customers'
        (then a Series, or a DataFrame with ``interval``, by its index, for one ``t``).
        """
        return self._new_customer(
            type(self)._f_expected_purchases, "expected_purchases", t, interval, n_draws,
            random_state, covariates,
        )  # fmt: skip

    def probability_purchases_new_customer(
        self, t: float, n: int | Any, *,
        covariates: Mapping[str, Any] | pd.DataFrame | None = None,
        interval: float | None = None, n_draws: int = 1000, random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """P(X(t) = n) for a newly acquired customer; ``n`` may be a sequence;
        ``covariates`` as in :meth:`expected_purchases_new_customer` (one customer's)."""
        t = _horizon(self, t)
        counts = _counts(n)
        if isinstance(covariates, pd.DataFrame) and np.ndim(n) != 0:
            raise InvalidDataError(
                "probability_purchases_new_customer: with a DataFrame of covariates give one "
                "count n per call."
            )
        results = {
            int(k): self._new_customer(
                type(self)._f_probability_purchases, "probability", t, interval, n_draws,
                random_state, covariates, n=float(k),
            )
            for k in counts
        }  # fmt: skip
        if np.ndim(n) == 0:
            return results[int(counts[0])]
        if interval is None:
            return pd.Series(results, name="probability").rename_axis("n")
        return pd.DataFrame(results).T.rename_axis("n")

    def probability_repurchase_new_customer(
        self, t: float | Any, length: float | str, *,
        covariates: Mapping[str, Any] | pd.DataFrame | None = None,
        interval: float | None = None, n_draws: int = 1000, random_state: Any = 0,
    ) -> float | pd.Series | pd.DataFrame:  # fmt: skip
        """P(X(t, t + length) > 0): the probability that a newly acquired customer makes
        at least one purchase between ages ``t`` and ``t + length`` (time since their
        first purchase), i.e. the expected share of a cohort purchasing in that window,
        the model's side of a cohort retention curve
        (:func:`clvmodels.cohort_retention`).

        ``t`` may be a sequence of ages (a Series, or DataFrame with ``interval``, by
        ``t``); ``length`` is one window, a number of time units or a duration such as
        ``"1M"``; ``covariates`` as in :meth:`expected_purchases_new_customer`.

        Examples
        --------
        >>> import clvmodels
        >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
        >>> model = clvmodels.BGNBD().fit(frame)
        >>> shares = model.probability_repurchase_new_customer([0, 4, 8], "4W")
        >>> shares.round(3).tolist()
        [0.13, 0.116, 0.106]
        """
        window = horizon_in_units(length, getattr(self, "time_unit_", None), name="length",
                                  positive=True)  # fmt: skip
        if np.ndim(t) == 0:
            ages = _horizon(self, t)
        else:
            ages = np.array([_horizon(self, v) for v in np.asarray(t, dtype=object)])
        return self._new_customer(
            type(self)._f_probability_repurchase, "probability_repurchase", ages, interval,
            n_draws, random_state, covariates, length=window,
        )  # fmt: skip

    def _new_customer(self, func, name, t, interval, n_draws, random_state, covariates,
                      **kw):  # fmt: skip
        # A new customer is one observed for no time at all: x = t_x = T = 0.
        times = as_array(t, "t")
        self._refuse_time_varying("a new customer's prediction")
        profiles = self._new_profiles(covariates)
        if profiles is not None:
            return self._new_with_covariates(func, name, times, profiles, covariates,
                                             interval, n_draws, random_state, **kw)  # fmt: skip
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


    def _new_profiles(self, covariates: Any) -> pd.DataFrame | None:
        """New customers' covariates as a frame of customers with no history, or None
        for a model without covariates."""
        settings = self._covariate_settings()
        name = type(self).__name__
        if settings is None:
            if covariates is not None:
                raise InvalidDataError(
                    f"covariates={covariates!r}: this {name} has no covariates; leave it out."
                )
            return None
        if covariates is None:
            raise InvalidDataError(
                f"this {name} has covariates ({', '.join(settings.columns)}): give the new "
                f"customer's, e.g. covariates={{{settings.columns[0]!r}: ...}}."
            )
        if isinstance(covariates, pd.DataFrame):
            profiles = covariates.copy()
        elif isinstance(covariates, Mapping):
            if any(np.ndim(v) != 0 for v in covariates.values()):
                raise InvalidDataError(
                    "covariates: give one value per covariate for one new customer, or a "
                    "DataFrame with one row per new customer."
                )
            profiles = pd.DataFrame({k: [v] for k, v in covariates.items()})
        else:
            raise InvalidDataError(
                f"covariates={covariates!r}: give a dict of the new customer's covariates "
                "or a DataFrame with one row per new customer."
            )
        names = {role: (self.columns or {}).get(role, role) for role in self.data_columns}
        for column in names.values():
            profiles[column] = 0.0
        return profiles

    def _new_with_covariates(self, func, name, times, profiles, covariates, interval,
                             n_draws, random_state, **kw):  # fmt: skip
        several = isinstance(covariates, pd.DataFrame)
        if several and times.ndim != 0:
            raise InvalidDataError(
                "with a DataFrame of covariates give one horizon t per call."
            )
        arrays, index = self._read(profiles, "covariates")
        individual = self._individual
        values = {}
        for v in np.atleast_1d(times):
            value = float(_horizon(self, float(v)))
            result = self._predict(
                lambda frequency, recency, T, value=value, **rest: func(
                    t=value, x=frequency, t_x=recency, T=T, **individual(rest), **kw),
                arrays, index, name, interval, n_draws, random_state,
            )  # fmt: skip
            if several:
                return result
            values[float(v)] = (float(result.iloc[0]) if interval is None
                                else result.iloc[0].rename(name))
        if times.ndim == 0:
            return next(iter(values.values()))
        if interval is None:
            return pd.Series(values, name=name).rename_axis("t")
        return pd.DataFrame(values).T.rename_axis("t")


def _is_history(data: Any) -> bool:
    """Whether ``data`` is a covariate history (clvmodels.covariate_history), without
    importing the data layer's module for every call."""
    return type(data).__name__ == "CovariateHistory" and hasattr(data, "segments")


def _require_covariates(frame: pd.DataFrame, settings: Any, what: str) -> None:
    require_columns(
        frame.columns, settings.columns, what,
        hint=(f"The model's covariates ({', '.join(settings.columns)}) are columns of the "
              "customer data: join them to it (clvmodels predict: --covariates FILE)."),
    )  # fmt: skip


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

"""The shared maximum-likelihood machinery of every model.

A model module states three things: its parameter names, a function returning the
per-row log-likelihood and its gradient (plain numpy arrays in and out), and its
predictions as plain array functions. :class:`BaseModel` does the rest once for all:
reading and validating the data, weights, optimisation on log parameters, standard
errors, summaries, prediction intervals and persistence.

Optimisation: the objective is the weighted mean negative log-likelihood plus
``penalizer * sum(params**2)`` (the convention of lifetimes), minimised over
``log(params)`` with BFGS and the exact gradient. The covariance of the estimates is the
inverse of the Hessian of the total (weighted) objective on the log scale, obtained by
differencing the exact gradient, mapped to the natural scale by the delta method:
``cov(theta) = D cov(log theta) D`` with ``D = diag(theta)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import inspect
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._validation import (
    as_pandas,
    bad_rows_error,
    check_draws,
    check_interval,
    finite_number,
    format_bytes,
    is_integer,
    is_real,
    require_columns,
)
from .._version import __version__
from ..data.timeunits import duration_in_units, time_unit_nanoseconds
from ..exceptions import (
    ConvergenceError,
    IdentificationWarning,
    InvalidDataError,
    NotFittedError,
)
from ._saved import (
    Refusal,
    check_counts,
    check_format_version,
    check_keys,
    check_time_unit,
    read_json_file,
    saved_covariance,
    saved_parameters,
    saved_settings,
    shown,
)

__all__ = ["BaseModel", "IdentificationWarning", "load"]

# The optimiser's line search may try absurd parameters (exp of a huge log step); the
# log-likelihood is evaluated with them clipped to this range, far beyond any estimate,
# so that no intermediate overflows.
PARAM_RANGE = (1e-150, 1e150)
_FORMAT = "clvmodels-model"
# The format_version save writes. 1 is the only version there has been (the keys below
# have not changed since the first release), so load has no older format to convert;
# it refuses newer versions, which only a newer clvmodels can read.
_FORMAT_VERSION = 1
# Every key of a saved model; each is required.
_STATE_KEYS = (
    "format", "format_version", "package_version", "kind", "settings", "params",
    "covariance", "log_likelihood", "n_customers", "n_patterns", "converged", "extra",
)  # fmt: skip
# Intervals and parameter draws are exp(log(theta) + z * se), se the standard error of
# log(theta). fit keeps, and load accepts, only a covariance under which they stay
# finite and non-zero out to this many standard errors (beyond the z of any interval
# level below 1 - 1e-20 and any normal draw numpy makes): |log(theta)| + 10 se at most
# log(largest float), 709.78. That bounds the variance of log(theta) by 5,038 for
# theta near 1, and by less for parameters far from 1.
_INTERVAL_REACH = 10.0
_LOG_FLOAT_MAX = float(np.log(np.finfo(np.float64).max))
# Elements of the (draws x customers) values one step of an interval holds, and of one
# call of a prediction function (whose temporaries are of that size, several at once):
# with at most MAX_DRAWS draws, a few hundred MiB at most, whatever the customers.
_HELD_ELEMENTS = 2**23
_STEP_ELEMENTS = 2**20
# Relative tolerances of the covariance of log(theta): asymmetry, to its largest entry;
# a negative eigenvalue, to its largest eigenvalue (rounding leaves about 1e-16).
_SYMMETRY_TOLERANCE = 1e-8
_EIGENVALUE_TOLERANCE = 1e-10
# Whether the prediction being computed returns its draws (BaseModel.draws) instead of a
# point prediction or summary: per call (and per thread or task), never on the
# instance, so overlapping calls on one model each get what they asked for.
_DRAWS: contextvars.ContextVar[bool] = contextvars.ContextVar("clvmodels_draws", default=False)
# Most (draws x customers) values draws() returns in one array (2 GiB of float64);
# summaries and intervals have no such limit (they are computed in blocks, draw_blocks).
MAX_RETURNED_DRAWS = 2**28
#: the per-customer predictions whose joint draws :meth:`BaseModel.draws` returns
CUSTOMER_PREDICTIONS = (
    "expected_purchases", "probability_alive", "probability_purchases",
    "discounted_expected_transactions", "expected_spend",
)  # fmt: skip
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LogLikelihood = Callable[..., tuple[np.ndarray, np.ndarray | None]]


class Estimator:
    """The estimator conventions of scikit-learn, shared by both families: the
    constructor's keyword arguments are the settings (``get_params`` / ``set_params``,
    ``repr`` showing those changed from their defaults), and a fit's results are the
    attributes ending in ``_``."""

    @classmethod
    def _setting_names(cls) -> list[str]:
        return [
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor settings, as scikit-learn's ``get_params``.

        ``deep`` is accepted for scikit-learn compatibility (e.g. ``sklearn.base.clone``);
        no setting is itself an estimator, so it changes nothing.
        """
        return {name: getattr(self, name) for name in self._setting_names()}

    def set_params(self, **settings: Any) -> Estimator:
        """Change constructor settings; returns ``self``."""
        valid = self.get_params()
        for name, value in settings.items():
            if name not in valid:
                raise InvalidDataError(
                    f"{type(self).__name__} has no setting {name!r}; settings are "
                    f"{', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def _reset(self) -> None:
        """Forget a previous fit: remove every attribute ending in ``_`` (the fitted
        attributes, by scikit-learn's convention)."""
        for attribute in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attribute)

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = {k: v for k, v in self.get_params().items() if not _same(v, defaults[k].default)}
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({inner})"


class _Stalled(Exception):
    """Raised by _StallGuard to end a minimisation that no longer makes progress."""

    status = -99


class _StallGuard:
    """An objective that remembers its best point and ends a minimisation that no longer
    makes progress: an iteration near the optimum (best gradient below 1e-5 on the mean
    log-likelihood, a few hundredths of a standard error from it even for a weakly
    identified parameter) that gains less than ``tol`` stops it through the callback
    (scipy then keeps its inverse Hessian); ten evaluations in a row without a gain of
    ``tol`` (three near the optimum), as in endless line searches, raise _Stalled."""

    def __init__(self, objective: Any, tol: float, patience: int = 10) -> None:
        self.objective, self.tol, self.patience = objective, tol, patience
        self.f, self.x, self.g, self.idle = np.inf, None, None, 0
        self.last: float | None = None

    def _near(self) -> bool:
        return self.g is not None and float(np.max(np.abs(self.g))) < 1e-5

    def __call__(self, x: np.ndarray, *args: Any) -> tuple[float, np.ndarray]:
        f, g = self.objective(x, *args)
        self.idle = 0 if f < self.f - self.tol else self.idle + 1
        if f < self.f:
            self.f, self.x, self.g = f, x.copy(), np.array(g, copy=True)
        if self.idle >= (3 if self._near() else self.patience):
            raise _Stalled
        return f, g

    def callback(self, intermediate_result: Any) -> None:
        value = float(intermediate_result.fun)
        gained = np.inf if self.last is None else self.last - value
        self.last = value
        if gained < self.tol and self._near():
            raise StopIteration

    def best(self, hess_inv: np.ndarray | None) -> optimize.OptimizeResult:
        return optimize.OptimizeResult(x=self.x, fun=self.f, jac=self.g, success=False,
                                       status=_Stalled.status, nit=0, hess_inv=hess_inv,
                                       message="no progress in its last evaluations")  # fmt: skip


class BaseModel(Estimator):
    """Base class of the maximum-likelihood models.

    Subclasses set ``param_names``, ``data_columns`` (role names of the columns they
    read) and implement ``_loglik(params, data, gradient)`` returning the per-row
    log-likelihood and, when asked, its gradient with respect to the (natural)
    parameters as an ``(n_rows, n_params)`` array.

    The constructor only stores its settings (scikit-learn convention); they are
    checked by ``fit``. Every attribute ending in ``_`` is set by ``fit`` (or ``load``)
    and removed again when a new ``fit`` starts.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    data_columns: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = ""
    discrete_time: ClassVar[bool] = False
    #: every parameter's support, in words (``_in_support`` tests it)
    param_support: ClassVar[str] = "a positive finite number"
    # fitted attributes besides the estimates that save keeps, under "extra" (each
    # saved as ``name`` and restored as ``name_``)
    _EXTRA_STATE: ClassVar[tuple[str, ...]] = ("time_unit",)
    # Where predictions are evaluated: None, at ``params_`` (intervals from draws of
    # its asymptotic distribution). A Bayesian model predicts through a twin whose
    # ``_evaluator`` it is: the twin's prediction methods read and check their
    # arguments as always, and the evaluation runs over the posterior.
    _evaluator: Any = None
    # Whether fit keeps the prepared patterns and weights it fitted as ``_patterns``
    # (a Bayesian model's twin does: they are the Bayesian likelihood's data).
    _keep_patterns: bool = False

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        tol: float = 1e-9,
        max_iter: int = 2000,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        self.penalizer = penalizer
        self.initial_params = initial_params
        self.tol = tol
        self.max_iter = max_iter
        self.columns = columns

    @classmethod
    def _in_support(cls, values: Any) -> np.ndarray:
        """Which of ``values`` are possible parameter values (``param_support``): every
        parameter of these models is positive (so the fit can work on ``log(params)``)."""
        values = np.asarray(values, dtype=np.float64)
        return np.isfinite(values) & (values > 0)

    # Positive parameters are fitted, drawn and given intervals on the log scale (the
    # "working" scale); real-valued ones (covariate coefficients) on their own. The
    # optimiser may see a fixed linear map of the working scale (``_free_map``), which
    # changes its conditioning, never the optimum.

    def _positive(self) -> np.ndarray:
        """Which parameters are positive (log scale); the others are any real number."""
        return np.ones(len(self.param_names), dtype=bool)

    def _free_map(self) -> np.ndarray | None:
        """The matrix A with working = A @ free (the optimiser's variables), or None
        for the identity (override)."""
        return None

    def _penalty_weights(self) -> Any:
        """lambda in the penalty sum_j lambda_j theta_j^2: one number for all
        parameters, or one per parameter (override)."""
        return self.penalizer

    def _working(self, params: np.ndarray) -> np.ndarray:
        positive = self._positive()
        if positive.all():
            return np.log(params)
        out = np.array(params, dtype=np.float64)
        out[..., positive] = np.log(out[..., positive])
        return out

    def _natural(self, working: np.ndarray) -> np.ndarray:
        positive = self._positive()
        if positive.all():
            return np.exp(working)
        out = np.array(working, dtype=np.float64)
        out[..., positive] = np.exp(out[..., positive])
        return out

    def _scale_jacobian(self, params: np.ndarray) -> np.ndarray:
        """d theta / d working: theta for positive parameters, 1 for the others."""
        return np.where(self._positive(), params, 1.0)

    def _to_free(self, params: np.ndarray) -> np.ndarray:
        working = self._working(np.asarray(params, dtype=np.float64))
        free_map = self._free_map()
        return working if free_map is None else np.linalg.solve(free_map, working)

    def _from_free(self, free: np.ndarray) -> np.ndarray:
        free_map = self._free_map()
        return self._natural(free if free_map is None else free_map @ free)

    def _check_settings(self) -> None:
        """Validate the constructor settings (called by ``fit``, not the constructor)."""
        name = type(self).__name__
        penalizer = finite_number(self.penalizer)
        if penalizer is None or penalizer < 0:
            raise InvalidDataError(
                f"{name}: penalizer={self.penalizer!r}: give a finite number >= 0 (0 for no "
                "penalty; a small value such as 0.001 regularises)."
            )
        tol = finite_number(self.tol)
        if tol is None or tol <= 0:
            raise InvalidDataError(
                f"{name}: tol={self.tol!r}: give a finite number > 0, e.g. 1e-9."
            )
        if not is_integer(self.max_iter) or self.max_iter < 1:
            raise InvalidDataError(
                f"{name}: max_iter={self.max_iter!r}: give a whole number >= 1, e.g. 2000."
            )
        if self.initial_params is not None:
            self._check_initial_params()
        self._check_columns()

    def _check_initial_params(self, start: Any = None) -> None:
        """Check ``start`` (by default the ``initial_params`` setting)."""
        name = type(self).__name__
        start = self.initial_params if start is None else start
        expected = ", ".join(type(self).param_names)
        if not isinstance(start, Mapping | pd.Series):
            raise InvalidDataError(
                f"{name}: initial_params={start!r}: give a dict with start values for {expected}."
            )
        start = dict(start.items())
        keys = [str(k) for k in start]
        unknown = sorted(set(keys) - set(type(self).param_names))
        if unknown:
            raise InvalidDataError(
                f"{name}: initial_params names unknown parameters {unknown}; the "
                f"parameters are {expected}."
            )
        missing = [p for p in type(self).param_names if p not in keys]
        if missing:
            raise InvalidDataError(
                f"{name}: initial_params lacks {missing}; give all of {expected}."
            )
        for key, value in start.items():
            number = finite_number(value)
            if number is None or not self._in_support(number):
                raise InvalidDataError(
                    f"{name}: initial_params[{key!r}]={value!r}: a start value must be "
                    f"{self.param_support}."
                )

    # --------------------------------------------------------------------- the data

    def _column_names(self, frame: Any) -> dict[str, str]:
        """Role -> column: explicit ``columns``, else all roles from one family: the
        plain names, or their ``_cal`` forms when the plain ones are missing."""
        self._check_columns()
        explicit = dict(self.columns or {})
        available = {str(c) for c in frame.columns}
        implicit = [role for role in self.data_columns if role not in explicit]
        plain = [role for role in implicit if role in available]
        cal = [role for role in implicit if f"{role}_cal" in available]
        if len(plain) == len(implicit):
            suffix = ""
        elif len(cal) == len(implicit):
            suffix = "_cal"
        else:
            if set(plain) | set(cal) == set(implicit):
                # Only a mix of both families is complete: a summary of one period with
                # another's (e.g. T of the whole data with the calibration frequency)
                # gives wrong answers without any error, so refuse.
                raise InvalidDataError(
                    f"{type(self).__name__}: the data has {_quoted(plain)} and "
                    f"{_quoted(f'{r}_cal' for r in cal)} but neither all of "
                    f"{_quoted(implicit)} nor all of {_quoted(f'{r}_cal' for r in implicit)}"
                    "; mixing them would combine two periods. Name the columns with "
                    f"{self._columns_hint()}."
                )
            suffix = "" if len(plain) >= len(cal) else "_cal"
        names = {role: explicit.get(role, f"{role}{suffix}") for role in self.data_columns}
        return names

    def _check_columns(self) -> None:
        """The ``columns`` setting: None, or a dict from known roles to names."""
        columns = self.columns
        if columns is not None and (
            not isinstance(columns, Mapping)
            or not all(isinstance(v, str) for v in columns.values())
        ):
            raise InvalidDataError(
                f"{type(self).__name__}: columns={columns!r}: give a dict from role to "
                f"column name, e.g. {self._columns_hint()}."
            )
        unknown = set(columns or {}) - set(self.data_columns)
        if unknown:
            raise InvalidDataError(
                f"columns= names unknown roles {sorted(unknown)}; {type(self).__name__} "
                f"reads {', '.join(self.data_columns)}."
            )

    def _columns_hint(self) -> str:
        return "columns={" + ", ".join(f"'{r}': ..." for r in self.data_columns) + "}"

    def _frame(self, data: Any, what: str = "data", weights: Any = None) -> pd.DataFrame:
        """``data`` as a pandas DataFrame: polars frames are converted (the columns the
        model reads, and the weight column), anything else is refused."""
        if isinstance(data, pd.DataFrame):
            return data
        if type(data).__module__.split(".")[0] != "polars":
            return as_pandas(data, [], what)  # raises the standard error
        columns = list(self._column_names(data).values()) + list(self._extra_columns())
        self._require(data.columns, columns, what)
        weight_column = weights if isinstance(weights, str) else "weight"
        if (weights is None or isinstance(weights, str)) and weight_column in data.columns:
            columns.append(weight_column)  # a missing one is reported by _weights
        return as_pandas(data, columns, what)

    def _extra_columns(self) -> tuple[str, ...]:
        """Columns read besides the roles of ``data_columns`` (a purchase model's
        covariates; override)."""
        return ()

    def _require(self, available: Any, needed: Any, what: str) -> None:
        """``require_columns`` with a hint on naming this model's columns."""
        hint = f"Name the columns with {self._columns_hint()}."
        require_columns(available, list(needed), what, hint=hint)

    def _read(
        self, data: Any, what: str = "data", *, learn: bool = False
    ) -> tuple[dict[str, np.ndarray], pd.Index]:
        """Columns of ``data`` as float arrays keyed by role, validated by the model.

        On a fitted model (predictions) the time unit recorded in ``data.attrs`` must
        match the one the model was fitted in. ``learn`` marks the data of a fit (or of
        ``check_data``): what a model learns from its data besides the parameters (a
        covariate's categories) is learned from these, not taken from an earlier fit.
        """
        data = self._frame(data, what)
        names = self._column_names(data)
        self._require(data.columns, names.values(), what)
        if len(data) == 0:
            raise InvalidDataError(f"{what} is empty: there are no customers.")
        fitted_unit = getattr(self, "time_unit_", None)
        if fitted_unit is not None:
            check_time_units(
                data_time_unit(data), f"{what}.attrs['clvmodels']['time_unit']",
                fitted_unit, f"{type(self).__name__} was fitted on data in",
            )  # fmt: skip
        arrays: dict[str, np.ndarray] = {}
        for role, column in names.items():
            try:
                values = data[column].to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise InvalidDataError(
                    f"column '{column}' is not numeric (dtype {data[column].dtype}); "
                    "convert it with pandas.to_numeric."
                ) from None
            bad = ~np.isfinite(values)
            if bad.any():
                unused = self._unused_rows(role, arrays)
                if unused is not None:
                    # Values the model never reads (e.g. the mean spend of a customer
                    # without repeat purchases) may be missing.
                    ignored = bad & unused & np.isnan(values)
                    values = np.where(ignored, 0.0, values)
                    bad &= ~ignored
            if bad.any():
                raise bad_rows_error(
                    column, bad, data.index, "are NaN or infinite",
                    "Drop or fill these customers first.",
                )  # fmt: skip
            arrays[role] = values
        self._validate(arrays, data.index, names)
        return arrays, data.index

    def _learn(self, data: pd.DataFrame) -> None:
        """Learn from the data of a fit what the model keeps besides its parameters (a
        purchase model's covariate design); called by ``fit`` before ``_read``."""

    def _unused_rows(self, role: str, arrays: dict[str, np.ndarray]) -> np.ndarray | None:
        """Rows whose ``role`` value the model never uses, given the roles read before
        it (in ``data_columns`` order); NaN is accepted there (override)."""
        return None

    def _validate(
        self, arrays: dict[str, np.ndarray], index: pd.Index, names: dict[str, str]
    ) -> None:
        """Model-specific checks of the data (override)."""

    def _weights(self, data: pd.DataFrame, weights: Any) -> np.ndarray:
        """Per-row weights: ``weights`` (array, Series aligned on the index, or column
        name), else the ``weight`` column if there is one, else 1 per row."""
        column = None
        if weights is None:
            if "weight" not in data.columns:
                return np.ones(len(data))
            column = "weight"
        elif isinstance(weights, str):
            require_columns(
                data.columns, [weights], "data",
                hint="weights= takes the name of a column of data, or one number per row.",
            )  # fmt: skip
            column = weights
        label = f"column '{column}'" if column is not None else "weights"
        if column is not None:
            weights = data[column]
        elif isinstance(weights, pd.Series):
            weights = _align_weights(weights, data.index)
        try:
            if isinstance(weights, pd.Series):
                values = weights.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            dtype = getattr(weights, "dtype", type(weights).__name__)
            raise InvalidDataError(
                f"{label} is not numeric (dtype {dtype}); weights count the customers each "
                "row stands for: convert them with pandas.to_numeric."
            ) from None
        if values.shape != (len(data),):
            raise InvalidDataError(
                f"{label} has shape {values.shape}; it needs one weight per row ({len(data)} rows)."
            )
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            example = data.index[int(np.argmax(bad))]
            if isinstance(example, np.generic):
                example = example.item()
            raise InvalidDataError(
                f"{label}: {int(bad.sum()):,} of {bad.size:,} rows are negative, NaN or "
                f"infinite (e.g. customer {example!r}). Weights count customers with the "
                "same pattern: fix or drop these rows."
            )
        if values.sum() <= 0:
            raise InvalidDataError(
                f"{label} {'sum' if column is None else 'sums'} to 0: there is nothing to fit."
            )
        return values

    # -------------------------------------------------------------------- fitting

    def _loglik(
        self, params: np.ndarray, data: dict[str, np.ndarray], gradient: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _prepare(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Data-only quantities the log-likelihood reuses at every iteration (override)."""
        return arrays

    def _initial_values(self, data: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        """Deterministic start values (override with something data-aware)."""
        return np.ones(len(self.param_names))

    def _weighted_patterns(self, arrays: dict[str, np.ndarray], weights: np.ndarray) -> Any:
        """Data-only quantities of ``_weighted_loglik`` for fixed prepared patterns and
        weights, computed once per fit (override with a layout that makes the weighted
        sum cheaper)."""
        return (arrays, weights)

    def _weighted_loglik(self, params: np.ndarray, patterns: Any) -> tuple[float, np.ndarray]:
        """``sum_k w_k log L_k(params)`` and its gradient in ``params``: what the
        optimiser and the Bayesian likelihood Op evaluate."""
        arrays, weights = patterns
        ll, grad = self._loglik(params, arrays, True)
        return weighted_sum(weights, ll), weighted_gradient(grad, weights)

    def _objective(
        self, log_params: np.ndarray, patterns: Any, total: float
    ) -> tuple[float, np.ndarray]:
        # A line search may try log-parameters whose exp under- or overflows (r = 0,
        # a = inf); the likelihood is then not finite and the step is refused below,
        # which is the answer, not a warning for the user.
        free_map = self._free_map()
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            params = self._from_free(log_params)
            value, weighted = self._weighted_loglik(params, patterns)
            penalty = self._penalty_weights()
            if np.ndim(penalty) == 0:
                value = -value / total + penalty * np.sum(params**2)
            else:
                value = -value / total + np.sum(penalty * params**2)
            # d/dlog(theta) = theta * d/dtheta (1 * d/dtheta for a real parameter)
            gradient = (-weighted / total + 2 * penalty * params) * self._scale_jacobian(params)
            if free_map is not None:
                gradient = free_map.T @ gradient
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            return np.inf, np.zeros_like(log_params)
        return float(value), gradient

    def check_data(self, data: Any, *, weights: Any = None) -> None:
        """Raise what :meth:`fit` would raise about its settings and ``data``, without
        fitting: an experiment checks every model's data before it fits the first.

        Examples
        --------
        >>> import pandas as pd
        >>> from clvmodels import BGNBD
        >>> BGNBD().check_data(pd.DataFrame({"frequency": [1], "recency": [2.0],
        ...                                  "T": [5.0]}))
        """
        self._checked(data, weights)

    def _checked(
        self, data: Any, weights: Any
    ) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.Index]:
        """``data`` as a frame, its validated arrays and index (weights checked too)."""
        self._check_settings()
        frame = self._frame(data, "data", weights)
        arrays, index = self._read(frame, learn=True)
        self._weights(frame, weights)
        return frame, arrays, index

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> BaseModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            Per-customer summary (or a ``compress``-ed frame) with the columns the model
            reads, by role name, or all by their ``_cal`` forms (``frequency_cal`` ...),
            or as named by the ``columns`` setting.
        weights : array-like, pandas.Series or str, optional
            Number of customers each row stands for, or the name of a column holding
            it. A Series is aligned on the index of ``data``. When ``weights`` is not
            given, a column named ``weight`` is used if ``data`` has one (that is how
            the frames of :func:`~clvmodels.compress` carry their counts), else every
            row counts once; drop or rename such a column if it means something else.

        Returns
        -------
        self

        Raises
        ------
        InvalidDataError
            Unusable data or settings (the settings are checked here, not by the
            constructor).
        ConvergenceError
            The optimiser did not converge. A failed fit leaves the model unfitted.
        """
        self._reset()
        self._check_settings()
        data = self._frame(data, "data", weights)
        self._learn(data)
        arrays, _index = self._read(data)
        w = self._weights(data, weights)
        arrays, w = _patterns(arrays, w)
        start = self._to_free(self._start(arrays, w))
        hess_inv = None
        if len(w) > _WARM_START_ROWS:
            # Warm start on a deterministic subsample: the mean log-likelihood of a
            # subsample has nearly the same optimum and curvature, so the full data then
            # needs a handful of iterations instead of dozens.
            stride = int(np.ceil(len(w) / (_WARM_START_ROWS / 2)))
            sample = self._prepare({k: v[::stride] for k, v in arrays.items()})
            sample_weights = w[::stride]
            warm = optimize.minimize(
                self._objective, start, jac=True,
                args=(self._weighted_patterns(sample, sample_weights), sample_weights.sum()),
                method="BFGS", options={"gtol": self.tol, "maxiter": self.max_iter},
            )  # fmt: skip
            if np.all(np.isfinite(warm.x)) and np.isfinite(warm.fun):
                start = warm.x
                hess_inv = _positive_definite((warm.hess_inv + warm.hess_inv.T) / 2)
        arrays = self._prepare(arrays)
        if self._keep_patterns:
            self._patterns = (arrays, w)
        patterns = self._weighted_patterns(arrays, w)
        log_params, converged, _ = self._minimize(start, patterns, float(w.sum()), hess_inv)
        self._set_fitted(self._from_free(log_params), arrays, w, converged)
        return self

    def _minimize(self, start: np.ndarray, patterns: Any, total: float,
                  hess_inv: np.ndarray | None = None, gtol: float | None = None,
                  stall: float | None = None,
                  ) -> tuple[np.ndarray, bool, np.ndarray | None]:  # fmt: skip
        """BFGS on the objective from ``start`` (the optimiser's variables): the optimum,
        whether it converged and BFGS's inverse Hessian there (positive definite, or
        None); ConvergenceError where it did not converge.

        ``stall``: also stop when the total log-likelihood no longer rises by this much
        (see _StallGuard), for objectives whose gradient is exact only to about the
        tolerance, where BFGS otherwise repeats line searches at the optimum for ever (a
        rise of 1e-4 is a move of about 0.01 standard errors)."""
        options = {"gtol": self.tol if gtol is None else gtol, "maxiter": self.max_iter}
        if hess_inv is not None:
            options["hess_inv0"] = hess_inv
        guard = None if stall is None else _StallGuard(self._objective, stall / total)
        try:
            result = optimize.minimize(
                guard or self._objective, start, args=(patterns, total), jac=True,
                method="BFGS", options=options, callback=guard and guard.callback,
            )  # fmt: skip
        except _Stalled:
            if guard.x is None:
                raise ConvergenceError(
                    f"{type(self).__name__} did not converge: the log-likelihood is not "
                    "finite anywhere the optimiser looked; values this large or small may "
                    "need other units."
                ) from None
            # no inverse Hessian of this run: the one it started from is kept
            result = guard.best(hess_inv)
        log_params = result.x
        grad_norm = float(np.max(np.abs(result.jac))) if result.jac is not None else np.inf
        # BFGS often stops with "precision loss" at the optimum, and a stalled run (see
        # _StallGuard) where no step gains any more: trust the gradient.
        converged = bool(result.success) or grad_norm < 1e-5
        if not np.all(np.isfinite(log_params)) or not np.isfinite(result.fun) or not converged:
            reached = np.round(self._from_free(log_params), 6).tolist()
            finite = np.all(np.isfinite(log_params)) and np.isfinite(result.fun)
            # scipy may call a stop at a non-finite point a success: say what happened
            why = result.message if finite else (
                "the log-likelihood is not finite at the parameters reached; values this "
                "large or small may need other units"
            )  # fmt: skip
            raise ConvergenceError(
                f"{type(self).__name__} did not converge: {why} (largest "
                f"gradient {grad_norm:.2g} after {result.nit} iterations, parameters "
                f"{dict(zip(self.param_names, reached, strict=True))})."
            )
        inverse = getattr(result, "hess_inv", None)
        if inverse is not None:
            inverse = _positive_definite((inverse + inverse.T) / 2)
        return log_params, converged, inverse

    def _start(self, arrays: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        if self.initial_params is None:
            return np.asarray(self._initial_values(arrays, weights), dtype=np.float64)
        self._check_initial_params()
        start = {str(k): float(v) for k, v in self.initial_params.items()}
        return np.array([start[n] for n in self.param_names])

    def _set_fitted(
        self, params: np.ndarray, arrays: dict[str, np.ndarray], weights: np.ndarray,
        converged: bool,
    ) -> None:  # fmt: skip
        ll, _ = self._loglik(params, arrays, False)
        n = float(weights.sum())
        self.params_ = pd.Series(params, index=list(self.param_names), name="estimate")
        self.log_likelihood_ = weighted_sum(weights, ll)
        self.n_customers_ = round(n) if float(n).is_integer() else n
        self.n_patterns_ = len(weights)
        self.converged_ = converged
        self._set_information_criteria(n)
        self.covariance_ = self._covariance(params, arrays, weights)
        self._warn_identification()

    def _set_information_criteria(self, n_customers: float) -> None:
        set_information_criteria(self, n_customers)

    def _covariance(
        self, params: np.ndarray, arrays: dict[str, np.ndarray], weights: np.ndarray
    ) -> pd.DataFrame:
        log_params = self._to_free(params)
        total = weights.sum()
        k = len(params)
        hessian = np.empty((k, k))
        # Forward differences of the exact gradient (k + 1 evaluations); with a step of
        # 1e-6 on the log scale truncation and rounding errors are both about 1e-6.
        step = 1e-6
        patterns = self._weighted_patterns(arrays, weights)
        base = self._objective(log_params, patterns, total)[1]
        for j in range(k):
            shifted = log_params.copy()
            shifted[j] += step
            hessian[:, j] = (self._objective(shifted, patterns, total)[1] - base) / step * total
        hessian = (hessian + hessian.T) / 2
        try:
            cov_log = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            cov_log = np.full((k, k), np.nan)
        free_map = self._free_map()
        if free_map is not None:
            cov_log = free_map @ cov_log @ free_map.T
        if not np.all(np.isfinite(cov_log)) or np.any(np.diag(cov_log) <= 0):
            cov_log = np.full((k, k), np.nan)
        jacobian = self._scale_jacobian(params)
        with np.errstate(over="ignore"):
            cov = cov_log * np.outer(jacobian, jacobian)
        cov = (cov + cov.T) / 2
        if _covariance_problem(self.param_names, params, cov, self._positive()) is not None:
            # Intervals drawn from it would be garbage (an indefinite matrix) or
            # overflow, and load would refuse the saved model: no covariance instead.
            cov = np.full((k, k), np.nan)
        return pd.DataFrame(cov, index=list(self.param_names), columns=list(self.param_names))

    def _warn_identification(self) -> None:
        se = np.sqrt(np.diag(self.covariance_.to_numpy()))
        positive = self._positive()
        for j, (name, value, error) in enumerate(
            zip(self.param_names, self.params_, se, strict=True)
        ):
            if not positive[j]:
                continue  # a real-valued parameter: its own checks (covariates)
            if value < 1e-6 or value > 1e6:
                warnings.warn(
                    f"{type(self).__name__}: parameter {name} = {value:.3g} is at the edge "
                    "of its range; the data may not identify it (try a penalizer).",
                    IdentificationWarning, stacklevel=user_stacklevel(),
                )  # fmt: skip
            elif not np.isfinite(error) or error > 10 * value:
                warnings.warn(
                    f"{type(self).__name__}: parameter {name} = {value:.3g} has standard "
                    f"error {error:.3g}; it is poorly identified by the data.",
                    IdentificationWarning, stacklevel=user_stacklevel(),
                )  # fmt: skip

    # ------------------------------------------------------------------ inspection

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(data) first, or "
                "load a saved model with clvmodels.load(path)."
            )

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates with standard errors and confidence intervals.

        ``level`` is the confidence level, between 0 and 1 (0.95, not 95).

        Intervals of positive parameters are computed on the log scale and mapped back,
        so they stay positive (and are asymmetric); those of real-valued parameters
        (covariate coefficients) are estimate +- z standard errors.

        Returns
        -------
        pandas.DataFrame
            Index: parameters; columns ``estimate``, ``std_error``, ``lower``, ``upper``.
        """
        self._check_fitted()
        check_interval(level, "level")
        estimate = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.covariance_.to_numpy()))
        z = stats.norm.ppf(0.5 + level / 2)
        jacobian = self._scale_jacobian(estimate)
        working = self._working(estimate)
        se_working = se / jacobian
        return pd.DataFrame(
            {
                "estimate": estimate,
                "std_error": se,
                "lower": self._natural(working - z * se_working),
                "upper": self._natural(working + z * se_working),
            },
            index=self.params_.index,
        )

    # ----------------------------------------------------------------- predictions

    def draws(self, prediction: str, *args: Any, **kwargs: Any) -> Any:
        """Joint draws of a per-customer prediction: an xarray DataArray with dimensions
        ``(chain, draw, customer)``.

        Each draw evaluates the prediction for every customer at one draw of all the
        parameters, so sums over customers at each draw (a segment's total, say) carry
        the parameters' joint uncertainty. A maximum-likelihood model draws from the
        asymptotic normal distribution of its log parameters (one chain of ``n_draws``,
        seeded by ``random_state``); a Bayesian model returns its posterior draws.

        Parameters
        ----------
        prediction : str
            One of ``expected_purchases``, ``probability_alive``,
            ``probability_purchases`` (one ``n`` per call),
            ``discounted_expected_transactions``, ``expected_spend``, where the model
            has it.
        *args, **kwargs
            The prediction's own arguments (data, horizon, ...) and, for a
            maximum-likelihood model, ``n_draws`` and ``random_state``; ``interval`` is
            not one (the draws are the whole distribution).

        Returns
        -------
        xarray.DataArray
            Named after the prediction; customers labelled by the index of the data.

        Examples
        --------
        >>> import clvmodels
        >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
        >>> model = clvmodels.BGNBD().fit(frame)
        >>> draws = model.draws("expected_purchases", frame.head(3), 39, n_draws=200)
        >>> draws.dims, draws.shape
        (('chain', 'draw', 'customer'), (1, 200, 3))
        """
        return joint_draws(self, prediction, *args, **kwargs)

    def _param_dict(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[..., i] for i, name in enumerate(self.param_names)}

    def parameter_draws(self, n_draws: int = 1000, random_state: Any = 0) -> np.ndarray:
        """Draws from the asymptotic normal distribution of the log parameters (of a
        covariate coefficient, of the coefficient itself).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws, n_params)``, on the natural scale.
        """
        self._check_fitted()
        check_draws(n_draws, len(self.param_names))
        params = self.params_.to_numpy()
        jacobian = self._scale_jacobian(params)
        cov_log = self.covariance_.to_numpy() / np.outer(jacobian, jacobian)
        if not np.all(np.isfinite(cov_log)):
            raise InvalidDataError(
                f"{type(self).__name__}: the covariance of the estimates is not finite, so "
                "no interval can be computed; the data do not identify every parameter."
            )
        rng = np.random.default_rng(random_state)
        draws = rng.multivariate_normal(self._working(params), cov_log, size=n_draws,
                                        method="eigh")  # fmt: skip
        return self._natural(draws)

    def _predict(
        self,
        func: Callable[..., np.ndarray],
        arrays: dict[str, np.ndarray],
        index: pd.Index,
        name: str,
        interval: float | None,
        n_draws: int,
        random_state: Any,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> pd.Series | pd.DataFrame:
        """Evaluate ``func(**arrays, **params, **kwargs)``; with ``interval``, also its
        quantiles over parameter draws, in blocks of customers and draws of bounded
        memory (:func:`draw_blocks`; ``chunk_size`` customers per block if given)."""
        if self._evaluator is not None:
            return self._evaluator._predict(func, arrays, index, name, interval, n_draws,
                                            random_state, chunk_size, **kwargs)  # fmt: skip
        self._check_fitted()
        if drawing():
            samples = self.parameter_draws(n_draws, random_state)
            values = evaluate_draws(self, func, arrays, samples, name, len(index), **kwargs)
            return draws_array(values.reshape(1, n_draws, -1), index, name)
        estimate = func(**arrays, **self._param_dict(self.params_.to_numpy()), **kwargs)
        estimate = np.broadcast_to(estimate, len(index))
        if interval is None:
            return pd.Series(np.array(estimate), index=index, name=name)
        check_interval(interval)
        draws = self.parameter_draws(n_draws, random_state)
        lower = np.empty(len(index))
        upper = np.empty(len(index))

        evaluate = at_draws(self, func, arrays, draws, kwargs)
        for rows, values in draw_blocks(evaluate, n_draws, len(index), chunk_size):
            lower[rows], upper[rows] = quantiles(values, interval)
        # The index (a MultiIndex too) keeps its names.
        return pd.DataFrame({"estimate": estimate, "lower": lower, "upper": upper}, index=index)

    def _predict_scalar(
        self, func: Callable[..., np.ndarray], name: str, interval: float | None,
        n_draws: int, random_state: Any, **kwargs: Any,
    ) -> float | pd.Series:  # fmt: skip
        """A population-level prediction (no customer data)."""
        if self._evaluator is not None:
            return self._evaluator._predict_scalar(func, name, interval, n_draws,
                                                   random_state, **kwargs)  # fmt: skip
        self._check_fitted()
        estimate = float(func(**self._param_dict(self.params_.to_numpy()), **kwargs))
        if interval is None:
            return estimate
        check_interval(interval)
        draws = self.parameter_draws(n_draws, random_state)
        values = np.asarray(func(**self._param_dict(draws), **kwargs), dtype=np.float64)
        lower, upper = quantiles(np.ravel(values), interval)
        return pd.Series(
            {"estimate": estimate, "lower": float(lower), "upper": float(upper)}, name=name
        )

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model as JSON (no pickled code).

        Parameters
        ----------
        path : str or Path
            File to write.
        overwrite : bool, default False
            Replace an existing file; by default an existing file is an error.
        """
        self._check_fitted()
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        state = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "package_version": __version__,
            "kind": self.kind,
            "settings": {k: _plain(v) for k, v in self.get_params().items()},
            "params": {k: float(v) for k, v in self.params_.items()},
            "covariance": [[_json_float(v) for v in row] for row in self.covariance_.to_numpy()],
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "n_patterns": self.n_patterns_,
            "converged": self.converged_,
            "extra": {k: _plain(v) for k, v in self._extra_state().items()},
        }
        try:
            text = json.dumps(state, indent=2, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise InvalidDataError(
                f"{type(self).__name__} cannot be saved: {err}. Settings must be plain "
                "numbers, strings and dicts of them."
            ) from None
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    def _extra_state(self) -> dict[str, Any]:
        return {key: getattr(self, f"{key}_", None) for key in self._EXTRA_STATE}

    @classmethod
    def _from_state(cls, state: Any, refuse: Refusal | None = None) -> BaseModel:
        """The fitted model a saved state describes, every entry checked first.

        ``refuse`` makes the errors (naming the file); ``load`` has checked ``format``,
        ``format_version`` and ``kind`` already.
        """
        refuse = refuse or Refusal("the saved state", "a clvmodels model")
        check_keys(state, _STATE_KEYS, (), "the file", refuse)
        model = saved_settings(cls, state["settings"], refuse)
        extra = state["extra"]
        check_keys(extra, (), cls._EXTRA_STATE, "extra", refuse)
        check_time_unit(extra.get("time_unit"), "extra['time_unit']", refuse)
        model._restore_extra(extra, refuse)
        names = list(model.param_names)
        positive = model._positive()
        real = [name for name, p in zip(names, positive, strict=True) if not p]
        params = saved_parameters(cls, state["params"], "params", refuse, names=names,
                                  real=real)  # fmt: skip
        cov = saved_covariance(state["covariance"], len(names), refuse)
        if not np.all(np.isnan(cov)):  # all NaN: the fit could not estimate it
            problem = _covariance_problem(names, params, cov, positive)
            if problem is not None:
                raise refuse(problem, "covariance")
        if finite_number(state["log_likelihood"]) is None:
            raise refuse(f"is {shown(state['log_likelihood'])}, not a finite number",
                         "log_likelihood")  # fmt: skip
        check_counts(state, refuse, optional=False)
        if not isinstance(state["converged"], bool):
            raise refuse(f"is {shown(state['converged'])}, not true or false", "converged")
        if not isinstance(state["package_version"], str):
            raise refuse(f"is {shown(state['package_version'])}, not a version string",
                         "package_version")  # fmt: skip

        model.params_ = pd.Series(params, index=names, name="estimate")
        model.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        model.log_likelihood_ = state["log_likelihood"]
        model.n_customers_ = state["n_customers"]
        model.n_patterns_ = state["n_patterns"]
        model.converged_ = state["converged"]
        model._set_information_criteria(model.n_customers_)
        return model

    def _restore_extra(self, extra: dict[str, Any], refuse: Refusal) -> None:
        """Set the fitted attributes saved under ``extra`` (checked: override for
        entries that need more than the time unit's check)."""
        for key in self._EXTRA_STATE:
            setattr(self, f"{key}_", extra.get(key))


_WARM_START_ROWS = 50_000


def set_information_criteria(model: Any, n_customers: float) -> None:
    """``aic_`` and ``bic_`` of a fitted model (either family) from its
    ``log_likelihood_``: Akaike (1974) 2k - 2 ln L and Schwarz (1978) k ln n - 2 ln L,
    k the parameters and n the customers (the weights' sum)."""
    k = len(model.param_names)
    model.aic_ = 2 * k - 2 * model.log_likelihood_
    model.bic_ = k * np.log(float(n_customers)) - 2 * model.log_likelihood_


def drawing() -> bool:
    """Whether the prediction being computed was asked for by :meth:`BaseModel.draws`."""
    return _DRAWS.get()


def single_count_for_draws(n: Any) -> None:
    """Refuse several counts ``n`` in :meth:`BaseModel.draws` of probability_purchases
    (its draws are one array per count)."""
    if drawing() and np.ndim(n) != 0:
        raise InvalidDataError(
            f"draws('probability_purchases', ..., n={n!r}): one count n per call, e.g. "
            "[model.draws('probability_purchases', data, t, n=k) for k in counts]."
        )


def joint_draws(model: Any, prediction: str, *args: Any, **kwargs: Any) -> Any:
    """What ``model.draws(prediction, ...)`` returns, for a model of either family: the
    prediction method run in draws mode (see :meth:`BaseModel.draws`)."""
    method = _draws_method(model, prediction)
    if "interval" in kwargs:
        raise TypeError(
            f"{type(model).__name__}.draws: no interval= here, the draws are the whole "
            f"distribution; for an interval call {prediction}(..., interval=0.9)."
        )
    with drawing_mode():
        return method(*args, **kwargs)


@contextlib.contextmanager
def drawing_mode() -> Iterator[None]:
    """Within it, a prediction returns its joint draws (what :meth:`BaseModel.draws`
    gives) instead of a point or an interval."""
    token = _DRAWS.set(True)
    try:
        yield
    finally:
        _DRAWS.reset(token)


def _draws_method(model: Any, prediction: Any) -> Callable[..., Any]:
    if not isinstance(prediction, str) or prediction not in CUSTOMER_PREDICTIONS or not (
        hasattr(model, prediction)
    ):
        offered = [p for p in CUSTOMER_PREDICTIONS if hasattr(model, p)]
        raise InvalidDataError(
            f"{type(model).__name__}.draws({prediction!r}): give the name of one of its "
            f"per-customer predictions: {', '.join(offered)}."
        )
    return getattr(model, prediction)


def evaluate_draws(
    model: Any, func: Callable[..., np.ndarray], arrays: dict[str, np.ndarray],
    samples: np.ndarray, name: str, n: int, /, **kwargs: Any,
) -> np.ndarray:  # fmt: skip
    """``func`` for every customer at every parameter draw (rows of ``samples``): an
    array (draws, customers), refused beyond ``MAX_RETURNED_DRAWS`` values. (Positional
    parameters: ``kwargs`` are the prediction's, ``n`` among them.)"""
    if len(samples) * n > MAX_RETURNED_DRAWS:
        raise InvalidDataError(
            f"{type(model).__name__}.draws({name!r}) for {len(samples):,} draws x {n:,} "
            f"customers would need {format_bytes(8 * len(samples) * n)}, more than the "
            f"{format_bytes(8 * MAX_RETURNED_DRAWS)} it returns at most; pass fewer "
            "customers at a time, or fewer draws (an interval= summary has no limit)."
        )
    values = np.empty((len(samples), n))
    for rows, block in draw_blocks(at_draws(model, func, arrays, samples, kwargs),
                                   len(samples), n):  # fmt: skip
        values[:, rows] = block
    return values


def at_draws(
    model: Any, func: Callable[..., np.ndarray], arrays: dict[str, np.ndarray],
    samples: np.ndarray, kwargs: dict[str, Any],
) -> Callable[[slice, slice], np.ndarray]:  # fmt: skip
    """The ``evaluate(rows, draws)`` of :func:`draw_blocks` for a per-customer prediction:
    ``func`` on those rows of ``arrays`` at those parameter draws (rows of ``samples``),
    an array (draws, rows)."""

    def evaluate(rows: slice, chosen: slice) -> np.ndarray:
        part = {k: v[rows] for k, v in arrays.items()}
        # parameters of shape (draws, 1): broadcast over the rows
        return func(**part, **model._param_dict(samples[chosen, None, :]), **kwargs)

    return evaluate


def draws_array(values: np.ndarray, index: pd.Index, name: str) -> Any:
    """(chains, draws, customers) values as the DataArray :meth:`BaseModel.draws` returns."""
    import xarray as xr

    chains, draws, _ = values.shape
    return xr.DataArray(
        values, dims=("chain", "draw", "customer"),
        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                "customer": np.asarray(index)},
        name=name,
    )  # fmt: skip


def draw_blocks(evaluate: Callable[[slice, slice], np.ndarray], n_draws: int, n_rows: int,
                rows_per_block: int | None = None) -> Any:  # fmt: skip
    """Yield ``(rows, values)`` for consecutive slices of rows, ``values`` of shape
    (n_draws, rows) from ``evaluate(rows, draws)`` (a row slice and a draw slice).

    Memory is bounded whatever ``n_draws`` and ``n_rows``: a block holds at most about
    ``_HELD_ELEMENTS`` values (at least one row of all draws), and each call of
    ``evaluate`` covers at most about ``_STEP_ELEMENTS`` (draws are split across calls
    when one row of all of them is more), so more draws only take longer.
    """
    per_block = rows_per_block or max(1, _HELD_ELEMENTS // max(n_draws, 1))
    for start in range(0, n_rows, per_block):
        rows = slice(start, min(start + per_block, n_rows))
        size = rows.stop - rows.start
        step = max(1, _STEP_ELEMENTS // size)
        if step >= n_draws:
            values = evaluate(rows, slice(None))
            yield rows, np.broadcast_to(np.asarray(values, dtype=np.float64), (n_draws, size))
            continue
        values = np.empty((n_draws, size))
        for first in range(0, n_draws, step):
            chosen = slice(first, min(first + step, n_draws))
            values[chosen] = evaluate(rows, chosen)
        yield rows, values


def quantiles(values: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray]:
    """Central ``interval`` of the draws along axis 0.

    Draws may be +inf (e.g. a Gamma-Gamma mean where q <= 1): then the quantiles are
    taken without interpolation (``inverted_cdf``), so a bound is a draw, possibly inf,
    never NaN from interpolating between a finite value and inf.
    """
    levels = [(1 - interval) / 2, (1 + interval) / 2]
    method = "linear" if np.all(np.isfinite(values)) else "inverted_cdf"
    lower, upper = np.quantile(values, levels, axis=0, method=method)
    return lower, upper


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` pointing at the first caller outside
    clvmodels; call it in the argument list of ``warnings.warn``."""
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None  # the caller of warnings.warn
    level = 1
    while frame is not None and _in_package(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    return level


def _in_package(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


def data_time_unit(data: Any) -> str | None:
    """The time unit recorded by summarize / calibration_holdout in ``data.attrs``."""
    if not isinstance(data, pd.DataFrame):
        return None
    settings = data.attrs.get("clvmodels")
    unit = settings.get("time_unit") if isinstance(settings, Mapping) else None
    return unit if isinstance(unit, str) else None


def check_time_units(
    unit: str | None, what: str, fitted: str | None, fitted_what: str, *, fix: str | None = None
) -> None:
    """Raise if two known time units have different lengths ("7D" and "W" agree).

    ``what`` / ``fitted_what`` describe where each unit comes from, for the message;
    either unit being ``None`` (unknown) passes.
    """
    if unit is None or fitted is None:
        return
    try:
        same = np.isclose(
            time_unit_nanoseconds(unit), time_unit_nanoseconds(fitted), rtol=1e-12, atol=0
        )
    except InvalidDataError:
        return  # an unreadable unit was never checked when it was recorded either
    if not same:
        if fix is None:
            fix = (
                "Recency, T and horizons must be in the unit of the fit: rebuild the "
                f"summary with time_unit={fitted!r}, or refit the model on data in {unit!r}."
            )
        raise InvalidDataError(
            f"time units differ: {fitted_what} {fitted!r} but {what} is {unit!r}. {fix}"
        )


def _align_weights(weights: pd.Series, index: pd.Index) -> pd.Series:
    """A weights Series in the order of the data's index (matched by label)."""
    if weights.index.equals(index):
        return weights
    unique = weights.index.is_unique and index.is_unique
    missing = index[~index.isin(weights.index)]
    extra = weights.index[~weights.index.isin(index)]
    if not unique or len(missing) or len(extra) or len(weights) != len(index):
        problem = (
            "has duplicate labels" if not unique
            else f"lacks {len(missing):,} customers of the data (e.g. {_label(missing[0])!r})"
            if len(missing)
            else f"has {len(extra):,} labels not in the data (e.g. {_label(extra[0])!r})"
        )  # fmt: skip
        raise InvalidDataError(
            f"weights is a pandas Series whose index {problem}, so it cannot be matched "
            "to the rows of data by label. Give it the index of data, or pass "
            "weights.to_numpy() to match rows by position."
        )
    return weights.reindex(index)


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _quoted(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _same(value: Any, default: Any) -> bool:
    """``value == default`` for __repr__, without failing on arrays or Series."""
    if value is default:
        return True
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A setting as plain Python for JSON: numpy scalars, arrays and Series converted."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping | pd.Series):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _positive_definite(matrix: np.ndarray) -> np.ndarray | None:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return None
    return matrix if np.all(np.isfinite(matrix)) else None


def point_estimate(value: Any) -> Any:
    """The point prediction in a model's output: the ``estimate`` of one with an
    interval, else the value itself (a Series or a float, from either family).

    Examples
    --------
    >>> point_estimate(pd.DataFrame({"estimate": [1.0], "lower": [0.5]})).tolist()
    [1.0]
    """
    if isinstance(value, pd.DataFrame) and "estimate" in value.columns:
        return value["estimate"]
    return value


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> float:
    """sum(weights * values), without BLAS: its dot product is slow to start on some
    builds (milliseconds even for short vectors), which dominated small fits."""
    return float(np.multiply(weights, values).sum())


def weighted_gradient(grad: Any, weights: np.ndarray) -> np.ndarray:
    """sum_k w_k grad_k, for a (rows, params) array or one array per parameter (each
    broadcasting to the rows); elementwise products, not BLAS (see ``weighted_sum``)."""
    if isinstance(grad, np.ndarray) and grad.ndim == 2:
        full = np.broadcast_to(grad, (weights.size, grad.shape[1]))
        return np.multiply(weights[:, None], full).sum(axis=0)
    return np.array(
        [weighted_sum(weights, np.broadcast_to(g, weights.shape)) for g in grad],
        dtype=np.float64,
    )


def horizon_in_units(horizon: Any, time_unit: str | None, *, name: str = "horizon",
                     positive: bool = False) -> float:  # fmt: skip
    """A horizon in a model's time unit, from any of the forms every method takes.

    A number is a count of the model's time units (``time_unit``); a calendar duration
    (``"12M"``, ``"52W"``, ``"90D"``, a ``datetime.timedelta`` or ``pandas.Timedelta``)
    is converted with the model's ``time_unit`` (months and years at their average
    length). ``positive`` refuses 0.

    Examples
    --------
    >>> horizon_in_units(39, "W"), round(horizon_in_units("12M", "W"), 4)
    (39.0, 52.1786)
    """
    if is_real(horizon) and np.ndim(horizon) == 0:
        value = finite_number(horizon)
        if value is None or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            raise InvalidDataError(
                f"{name}={horizon!r}: give a number {bound} of the model's time units, or a "
                "calendar duration such as '12M' or '52W'."
            )
        return value
    if not isinstance(horizon, str | dt.timedelta):
        raise InvalidDataError(
            f"{name}={horizon!r}: give one horizon, a number of the model's time units or a "
            "calendar duration such as '12M' or '52W'."
        )
    if time_unit is None:
        raise InvalidDataError(
            f"{name}={horizon!r}: the model does not record its time unit, so a calendar "
            "duration cannot be converted; give a number of its time units, or fit the "
            "model on a summary from clvmodels.summarize."
        )
    if isinstance(horizon, dt.timedelta):
        value = pd.Timedelta(horizon).value / time_unit_nanoseconds(time_unit)
    else:
        value = duration_in_units(horizon, time_unit, name)
    if value < 0 or (positive and value == 0):
        raise InvalidDataError(f"{name}={horizon!r} must be positive.")
    return float(value)


def pattern_codes(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Which distinct pattern each row is: ``codes`` (0 .. n_patterns - 1, in order of
    first appearance) and ``first``, the first row of each pattern.

    The one way clvmodels finds identical rows (fits, predictions, CLV): per-column codes
    packed into one int64 key, stopping early once every row is distinct; a missing value
    is a value of its own. Rows whose key cannot be packed stay distinct.
    """
    n = len(next(iter(arrays.values()))) if arrays else 0
    codes = np.zeros(n, dtype=np.int64)
    n_groups = 1 if n else 0
    for values in arrays.values():
        if n_groups == n:
            break
        column_codes, uniques = pd.factorize(values, use_na_sentinel=False)
        if n_groups * len(uniques) >= 2**62:  # cannot pack: keep rows as they are
            codes, n_groups = np.arange(n, dtype=np.int64), n
            break
        codes, groups = pd.factorize(codes * len(uniques) + column_codes)
        n_groups = len(groups)
    first = np.full(n_groups, n)
    np.minimum.at(first, codes, np.arange(n))
    return codes.astype(np.int64, copy=False), first


def distinct_patterns(
    arrays: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The distinct rows of ``arrays`` and, per row, the index of its distinct row:
    predictions are computed once per pattern and expanded with ``values[inverse]``."""
    if not arrays or len(next(iter(arrays.values()))) < 2:
        n = len(next(iter(arrays.values()))) if arrays else 0
        return arrays, np.arange(n)
    codes, first = pattern_codes(arrays)
    return {k: v[first] for k, v in arrays.items()}, codes


def _patterns(
    arrays: dict[str, np.ndarray], weights: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Collapse identical rows, summing their weights.

    Every log-likelihood is a weighted sum over rows, so this changes nothing but the
    cost, which then grows with distinct patterns rather than customers.
    """
    if len(weights) < 2:
        return arrays, weights
    codes, first = pattern_codes(arrays)
    if len(first) == len(weights):
        return arrays, weights
    summed = np.bincount(codes, weights=weights, minlength=len(first))
    return {k: v[first] for k, v in arrays.items()}, summed


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _covariance_problem(names: Sequence[str], params: np.ndarray, covariance: np.ndarray,
                        positive: np.ndarray | None = None) -> str | None:  # fmt: skip
    """What makes ``covariance`` (of ``params``, natural scale) unusable for intervals,
    or None.

    Checked as intervals and draws use it, on the log scale of the ``positive``
    parameters (all by default) and the natural scale of the others: finite,
    symmetric, no negative variance, positive semi-definite, and small enough that no
    interval of a positive parameter overflows (``_INTERVAL_REACH``).
    """
    k = len(names)
    if covariance.shape != (k, k):
        return f"has shape {covariance.shape}; {k} parameters need ({k}, {k})"
    if not np.all(np.isfinite(covariance)):
        return "has entries that are not finite numbers"
    positive = np.ones(k, dtype=bool) if positive is None else np.asarray(positive, dtype=bool)
    jacobian = np.where(positive, params, 1.0)
    with np.errstate(all="ignore"):
        log_cov = covariance / np.outer(jacobian, jacobian)
    if not np.all(np.isfinite(log_cov)):
        return "is not finite on the log scale of the parameters"
    largest = float(np.max(np.abs(log_cov)))
    if np.any(np.abs(log_cov - log_cov.T) > _SYMMETRY_TOLERANCE * largest):
        return "is not symmetric"
    variances = np.diag(log_cov)
    if np.any(variances < 0):
        i = int(np.argmin(variances))
        return f"gives {names[i]} a negative variance ({covariance[i, i]:.3g})"
    try:
        eigenvalues = np.linalg.eigvalsh(log_cov)
    except np.linalg.LinAlgError:
        return "has no eigenvalues numpy can compute"
    if eigenvalues[0] < -_EIGENVALUE_TOLERANCE * max(abs(eigenvalues[-1]), abs(eigenvalues[0])):
        return (f"is not positive semi-definite (the covariance of the log parameters has "
                f"the eigenvalue {eigenvalues[0]:.3g})")  # fmt: skip
    with np.errstate(all="ignore"):
        limits = np.clip((_LOG_FLOAT_MAX - np.abs(np.log(np.abs(params)))) / _INTERVAL_REACH,
                         0, None) ** 2  # fmt: skip
    limits = np.where(positive, limits, np.inf)
    if np.any(variances > limits):
        i = int(np.argmax(variances - limits))
        return (f"gives log({names[i]}) a variance of {variances[i]:.3g}, more than "
                f"{limits[i]:.4g}, beyond which its intervals overflow")  # fmt: skip
    return None


def load(path: str | Path) -> BaseModel:
    """Load a model written by ``save``, after checking the file.

    Nothing reaches the model before the whole file is checked: its size (at most
    50 MiB; a saved model takes a few kilobytes), strict JSON (no NaN, repeated keys
    or nesting too deep for the parser), ``format``, ``format_version`` (1, the only
    version so far; newer versions need a newer clvmodels), the model ``kind``, every
    key (known keys only, none missing), the settings (as ``fit`` checks them), each
    parameter (present and in its support, ``param_support``) and the covariance
    (shape, finite, symmetric, positive semi-definite, and small enough that no
    interval overflows; null throughout where the fit could not estimate it).

    Parameters
    ----------
    path : str or Path
        A file written by ``save``.

    Returns
    -------
    BaseModel
        The fitted model, of the class that saved it.

    Raises
    ------
    InvalidDataError
        The file is not a saved model, is damaged, or was written by a newer
        clvmodels; the message names the file, the key and what to do.
    OSError
        The file cannot be opened (FileNotFoundError if there is none).

    Examples
    --------
    >>> import clvmodels, tempfile, os
    >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
    >>> model = clvmodels.BGNBD().fit(frame)
    >>> path = os.path.join(tempfile.mkdtemp(), "bgnbd.json")
    >>> _ = model.save(path)
    >>> clvmodels.load(path).params_.equals(model.params_)
    True
    """
    from .. import registry

    refuse = Refusal(path, "a clvmodels model file")
    state = read_json_file(path, refuse)
    if not isinstance(state, dict):
        raise refuse(f"holds {shown(state)}, not a JSON object", "it")
    if state.get("format") != _FORMAT:
        raise refuse(f"it does not say format {_FORMAT!r}")
    check_format_version(state, _FORMAT_VERSION, path, refuse)
    kind = state.get("kind")
    if not isinstance(kind, str) or kind not in registry.MODELS:
        raise refuse(f"{shown(kind)} is unknown (the model kinds are "
                     f"{', '.join(sorted(registry.MODELS))})", "kind")  # fmt: skip
    return registry.model_class(kind)._from_state(state, refuse)


def _sequence(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray | pd.Index | pd.Series) and not isinstance(
        value, str
    )

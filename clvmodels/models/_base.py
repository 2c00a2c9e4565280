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

import inspect
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._validation import as_pandas, bad_rows_error, require_columns
from .._version import __version__
from ..exceptions import ConvergenceError, InvalidDataError, NotFittedError

__all__ = ["BaseModel", "IdentificationWarning", "load"]

_REGISTRY: dict[str, type[BaseModel]] = {}
_FORMAT = "clvmodels-model"


class IdentificationWarning(UserWarning):
    """A fitted parameter sits at a boundary or is poorly identified by the data."""


LogLikelihood = Callable[..., tuple[np.ndarray, np.ndarray | None]]


class BaseModel:
    """Base class of the maximum-likelihood models.

    Subclasses set ``param_names``, ``data_columns`` (role names of the columns they
    read) and implement ``_loglik(params, data, gradient)`` returning the per-row
    log-likelihood and, when asked, its gradient with respect to the (natural)
    parameters as an ``(n_rows, n_params)`` array.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    data_columns: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = ""
    discrete_time: ClassVar[bool] = False

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    # ------------------------------------------------------------ settings protocol

    def get_params(self) -> dict[str, Any]:
        """Constructor settings, as scikit-learn's ``get_params``."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind is not p.VAR_KEYWORD
        ]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **settings: Any) -> BaseModel:
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

    def __repr__(self) -> str:
        changed = {
            k: v
            for k, v in self.get_params().items()
            if v != inspect.signature(type(self).__init__).parameters[k].default
        }
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({inner})"

    # --------------------------------------------------------------------- the data

    def _column_names(self, frame: pd.DataFrame) -> dict[str, str]:
        """Role -> column: explicit ``columns``, else the role, else ``role + '_cal'``."""
        explicit = dict(self.columns or {})
        unknown = set(explicit) - set(self.data_columns)
        if unknown:
            raise InvalidDataError(
                f"columns= names unknown roles {sorted(unknown)}; {type(self).__name__} "
                f"reads {', '.join(self.data_columns)}."
            )
        names = {}
        for role in self.data_columns:
            if role in explicit:
                names[role] = explicit[role]
            elif role not in frame.columns and f"{role}_cal" in frame.columns:
                names[role] = f"{role}_cal"
            else:
                names[role] = role
        return names

    def _read(self, data: Any, what: str = "data") -> tuple[dict[str, np.ndarray], pd.Index]:
        """Columns of ``data`` as float arrays keyed by role, validated by the model."""
        if not isinstance(data, pd.DataFrame):
            data = as_pandas(data, [], what)
        names = self._column_names(data)
        require_columns(data.columns, names.values(), what)
        if len(data) == 0:
            raise InvalidDataError(f"{what} is empty: there are no customers.")
        arrays = {}
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
                raise bad_rows_error(
                    column, bad, data.index, "are NaN or infinite",
                    "Drop or fill these customers first.",
                )  # fmt: skip
            arrays[role] = values
        self._validate(arrays, data.index, names)
        return arrays, data.index

    def _validate(
        self, arrays: dict[str, np.ndarray], index: pd.Index, names: dict[str, str]
    ) -> None:
        """Model-specific checks of the data (override)."""

    def _weights(self, data: pd.DataFrame, weights: Any) -> np.ndarray:
        if weights is None:
            if isinstance(data, pd.DataFrame) and "weight" in data.columns:
                weights = data["weight"]
            else:
                return np.ones(len(data))
        elif isinstance(weights, str):
            require_columns(data.columns, [weights], "data")
            weights = data[weights]
        values = np.asarray(weights, dtype=np.float64)
        if values.shape != (len(data),):
            raise InvalidDataError(
                f"weights has shape {values.shape}; it needs one weight per row "
                f"({len(data)} rows)."
            )
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            index = data.index if isinstance(data, pd.DataFrame) else range(len(values))
            raise bad_rows_error(
                "weight", bad, index, "are negative, NaN or infinite",
                "Weights count customers with the same pattern.",
            )  # fmt: skip
        if values.sum() <= 0:
            raise InvalidDataError("weights sum to 0: there is nothing to fit.")
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

    def _objective(
        self, log_params: np.ndarray, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        ll, grad = self._loglik(params, data, True)
        total = weights.sum()
        value = -weighted_sum(weights, ll) / total + self.penalizer * np.sum(params**2)
        if isinstance(grad, np.ndarray):
            weighted = (weights[:, None] * grad).sum(axis=0)
        else:  # one array per parameter, each broadcasting to the rows
            weighted = np.array([weighted_sum(weights, g) for g in grad], dtype=np.float64)
        # d/dlog(theta) = theta * d/dtheta
        gradient = (-weighted / total + 2 * self.penalizer * params) * params
        if not np.isfinite(value):
            return np.inf, np.zeros_like(log_params)
        return float(value), gradient

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> BaseModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        data : pandas.DataFrame
            Per-customer summary (or a ``compress``-ed frame, whose ``weight`` column is
            used) with the columns the model reads.
        weights : array-like or str, optional
            Number of customers each row stands for, or the name of a column holding
            it. Defaults to the ``weight`` column if present, else 1 per row.

        Returns
        -------
        self
        """
        arrays, _index = self._read(data)
        w = self._weights(data, weights)
        arrays, w = _patterns(arrays, w)
        start = np.log(self._start(arrays, w))
        hess_inv = None
        if len(w) > _WARM_START_ROWS:
            # Warm start on a deterministic subsample: the mean log-likelihood of a
            # subsample has nearly the same optimum and curvature, so the full data then
            # needs a handful of iterations instead of dozens.
            stride = int(np.ceil(len(w) / (_WARM_START_ROWS / 2)))
            sample = self._prepare({k: v[::stride] for k, v in arrays.items()})
            warm = optimize.minimize(
                self._objective, start, args=(sample, w[::stride]), jac=True,
                method="BFGS", options={"gtol": self.tol, "maxiter": self.max_iter},
            )  # fmt: skip
            if np.all(np.isfinite(warm.x)) and np.isfinite(warm.fun):
                start = warm.x
                hess_inv = _positive_definite((warm.hess_inv + warm.hess_inv.T) / 2)
        arrays = self._prepare(arrays)
        options = {"gtol": self.tol, "maxiter": self.max_iter}
        if hess_inv is not None:
            options["hess_inv0"] = hess_inv
        result = optimize.minimize(
            self._objective, start, args=(arrays, w), jac=True, method="BFGS", options=options
        )
        log_params = result.x
        grad_norm = float(np.max(np.abs(result.jac))) if result.jac is not None else np.inf
        # BFGS often stops with "precision loss" at the optimum; trust the gradient.
        converged = bool(result.success) or grad_norm < 1e-5
        if not np.all(np.isfinite(log_params)) or not np.isfinite(result.fun) or not converged:
            raise ConvergenceError(
                f"{type(self).__name__} did not converge: {result.message} (largest "
                f"gradient {grad_norm:.2g} after {result.nit} iterations, parameters "
                f"{dict(zip(self.param_names, np.round(np.exp(log_params), 6), strict=True))})."
            )
        self._set_fitted(np.exp(log_params), arrays, w, converged)
        return self

    def _start(self, arrays: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        if self.initial_params is None:
            return np.asarray(self._initial_values(arrays, weights), dtype=np.float64)
        missing = set(self.param_names) - set(self.initial_params)
        if missing:
            raise InvalidDataError(
                f"initial_params lacks {sorted(missing)}; give all of "
                f"{', '.join(self.param_names)}."
            )
        start = np.array([float(self.initial_params[n]) for n in self.param_names])
        if not np.all(np.isfinite(start) & (start > 0)):
            raise InvalidDataError(f"initial_params must be positive and finite: {start}.")
        return start

    def _set_fitted(
        self, params: np.ndarray, arrays: dict[str, np.ndarray], weights: np.ndarray,
        converged: bool,
    ) -> None:  # fmt: skip
        ll, _ = self._loglik(params, arrays, False)
        n = float(weights.sum())
        k = len(params)
        self.params_ = pd.Series(params, index=list(self.param_names), name="estimate")
        self.log_likelihood_ = weighted_sum(weights, ll)
        self.n_customers_ = round(n) if float(n).is_integer() else n
        self.n_patterns_ = len(weights)
        self.converged_ = converged
        self.aic_ = 2 * k - 2 * self.log_likelihood_
        self.bic_ = k * np.log(n) - 2 * self.log_likelihood_
        self.covariance_ = self._covariance(params, arrays, weights)
        self._warn_identification()

    def _covariance(
        self, params: np.ndarray, arrays: dict[str, np.ndarray], weights: np.ndarray
    ) -> pd.DataFrame:
        log_params = np.log(params)
        total = weights.sum()
        k = len(params)
        hessian = np.empty((k, k))
        # Forward differences of the exact gradient (k + 1 evaluations); with a step of
        # 1e-6 on the log scale truncation and rounding errors are both about 1e-6.
        step = 1e-6
        base = self._objective(log_params, arrays, weights)[1]
        for j in range(k):
            shifted = log_params.copy()
            shifted[j] += step
            hessian[:, j] = (self._objective(shifted, arrays, weights)[1] - base) / step * total
        hessian = (hessian + hessian.T) / 2
        try:
            cov_log = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            cov_log = np.full((k, k), np.nan)
        if not np.all(np.isfinite(cov_log)) or np.any(np.diag(cov_log) <= 0):
            cov_log = np.full((k, k), np.nan)
        cov = cov_log * np.outer(params, params)
        cov = (cov + cov.T) / 2
        return pd.DataFrame(cov, index=list(self.param_names), columns=list(self.param_names))

    def _warn_identification(self) -> None:
        se = np.sqrt(np.diag(self.covariance_.to_numpy()))
        for name, value, error in zip(self.param_names, self.params_, se, strict=True):
            if value < 1e-6 or value > 1e6:
                warnings.warn(
                    f"{type(self).__name__}: parameter {name} = {value:.3g} is at the edge "
                    "of its range; the data may not identify it (try a penalizer).",
                    IdentificationWarning, stacklevel=3,
                )  # fmt: skip
            elif not np.isfinite(error) or error > 10 * value:
                warnings.warn(
                    f"{type(self).__name__}: parameter {name} = {value:.3g} has standard "
                    f"error {error:.3g}; it is poorly identified by the data.",
                    IdentificationWarning, stacklevel=3,
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

        Intervals are computed on the log scale and mapped back, so they stay positive
        (and are asymmetric).

        Returns
        -------
        pandas.DataFrame
            Index: parameters; columns ``estimate``, ``std_error``, ``lower``, ``upper``.
        """
        self._check_fitted()
        estimate = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.covariance_.to_numpy()))
        z = stats.norm.ppf(0.5 + level / 2)
        se_log = se / estimate
        return pd.DataFrame(
            {
                "estimate": estimate,
                "std_error": se,
                "lower": estimate * np.exp(-z * se_log),
                "upper": estimate * np.exp(z * se_log),
            },
            index=self.params_.index,
        )

    # ----------------------------------------------------------------- predictions

    def _param_dict(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[..., i] for i, name in enumerate(self.param_names)}

    def parameter_draws(self, n_draws: int = 1000, random_state: Any = 0) -> np.ndarray:
        """Draws from the asymptotic normal distribution of the log parameters.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws, n_params)``, on the natural scale.
        """
        self._check_fitted()
        params = self.params_.to_numpy()
        cov_log = self.covariance_.to_numpy() / np.outer(params, params)
        if not np.all(np.isfinite(cov_log)):
            raise InvalidDataError(
                f"{type(self).__name__}: the covariance of the estimates is not finite, so "
                "no interval can be computed; the data do not identify every parameter."
            )
        rng = np.random.default_rng(random_state)
        draws = rng.multivariate_normal(np.log(params), cov_log, size=n_draws, method="eigh")
        return np.exp(draws)

    def _predict(
        self,
        func: Callable[..., np.ndarray],
        arrays: dict[str, np.ndarray],
        index: pd.Index,
        name: str,
        interval: float | None,
        n_draws: int,
        random_state: Any,
        chunk_size: int = 20_000,
        **kwargs: Any,
    ) -> pd.Series | pd.DataFrame:
        """Evaluate ``func(**arrays, **params, **kwargs)``; with ``interval``, also its
        quantiles over parameter draws, computed in chunks of customers."""
        self._check_fitted()
        estimate = func(**arrays, **self._param_dict(self.params_.to_numpy()), **kwargs)
        estimate = np.broadcast_to(estimate, len(index))
        if interval is None:
            return pd.Series(np.array(estimate), index=index, name=name)
        _check_interval(interval)
        draws = self.parameter_draws(n_draws, random_state)
        params = self._param_dict(draws[:, None, :])  # each (draws, 1): broadcasts over rows
        lower = np.empty(len(index))
        upper = np.empty(len(index))
        q = [(1 - interval) / 2, (1 + interval) / 2]
        for start in range(0, len(index), chunk_size):
            part = {k: v[start : start + chunk_size] for k, v in arrays.items()}
            size = len(next(iter(part.values()))) if part else len(index)
            values = np.broadcast_to(func(**part, **params, **kwargs), (n_draws, size))
            lower[start : start + size], upper[start : start + size] = np.quantile(
                values, q, axis=0
            )
        return pd.DataFrame(
            {"estimate": estimate, "lower": lower, "upper": upper}, index=index
        ).rename_axis(index.name)

    def _predict_scalar(
        self, func: Callable[..., np.ndarray], name: str, interval: float | None,
        n_draws: int, random_state: Any, **kwargs: Any,
    ) -> float | pd.Series:  # fmt: skip
        """A population-level prediction (no customer data)."""
        self._check_fitted()
        estimate = float(func(**self._param_dict(self.params_.to_numpy()), **kwargs))
        if interval is None:
            return estimate
        _check_interval(interval)
        draws = self.parameter_draws(n_draws, random_state)
        values = np.asarray(func(**self._param_dict(draws), **kwargs))
        lower, upper = np.quantile(values, [(1 - interval) / 2, (1 + interval) / 2])
        return pd.Series({"estimate": estimate, "lower": lower, "upper": upper}, name=name)

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
            "format_version": 1,
            "package_version": __version__,
            "kind": self.kind,
            "settings": {k: v for k, v in self.get_params().items()},
            "params": {k: float(v) for k, v in self.params_.items()},
            "covariance": [[_json_float(v) for v in row] for row in self.covariance_.to_numpy()],
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "n_patterns": self.n_patterns_,
            "converged": self.converged_,
            "extra": self._extra_state(),
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2, allow_nan=False))
        tmp.replace(path)
        return path

    def _extra_state(self) -> dict[str, Any]:
        return {"time_unit": getattr(self, "time_unit_", None)}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> BaseModel:
        model = cls(**state["settings"])
        names = list(cls.param_names)
        params = np.array([state["params"][n] for n in names])
        cov = np.array(
            [[np.nan if v is None else v for v in row] for row in state["covariance"]],
            dtype=np.float64,
        )
        model.params_ = pd.Series(params, index=names, name="estimate")
        model.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        model.log_likelihood_ = state["log_likelihood"]
        model.n_customers_ = state["n_customers"]
        model.n_patterns_ = state["n_patterns"]
        model.converged_ = state["converged"]
        k = len(names)
        model.aic_ = 2 * k - 2 * model.log_likelihood_
        model.bic_ = k * np.log(model.n_customers_) - 2 * model.log_likelihood_
        for key, value in state.get("extra", {}).items():
            setattr(model, f"{key}_", value)
        return model


_WARM_START_ROWS = 50_000


def _check_interval(interval: float) -> None:
    if not isinstance(interval, int | float) or not 0 < interval < 1:
        raise InvalidDataError(f"interval={interval!r}: give a level between 0 and 1, e.g. 0.9.")


def _positive_definite(matrix: np.ndarray) -> np.ndarray | None:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return None
    return matrix if np.all(np.isfinite(matrix)) else None


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> float:
    """sum(weights * values), without BLAS: its dot product is slow to start on some
    builds (milliseconds even for short vectors), which dominated small fits."""
    return float(np.multiply(weights, values).sum())


def _patterns(
    arrays: dict[str, np.ndarray], weights: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Collapse identical rows, summing their weights.

    Every log-likelihood is a weighted sum over rows, so this changes nothing but the
    cost, which then grows with distinct patterns rather than customers.
    """
    if len(weights) < 2:
        return arrays, weights
    # Combine per-column codes into one key; stop early once every row is distinct.
    codes = np.zeros(len(weights), dtype=np.int64)
    n_groups = 1
    for values in arrays.values():
        column_codes, uniques = pd.factorize(values)
        if n_groups * len(uniques) >= 2**62:  # cannot pack: keep rows as they are
            return arrays, weights
        codes, groups = pd.factorize(codes * len(uniques) + column_codes)
        n_groups = len(groups)
        if n_groups == len(weights):
            return arrays, weights
    summed = np.bincount(codes, weights=weights, minlength=n_groups)
    first = np.full(n_groups, len(weights))
    np.minimum.at(first, codes, np.arange(len(weights)))
    return {k: v[first] for k, v in arrays.items()}, summed


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def load(path: str | Path) -> BaseModel:
    """Load a model written by ``save``.

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
    from . import _registry_complete  # noqa: F401  (imports every model module)

    state = json.loads(Path(path).read_text())
    if state.get("format") != _FORMAT:
        raise InvalidDataError(f"{path} is not a clvmodels model file.")
    kind = state.get("kind")
    if kind not in _REGISTRY:
        raise InvalidDataError(
            f"{path}: unknown model kind {kind!r}; known: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[kind]._from_state(state)


def as_array(value: Any, name: str) -> np.ndarray:
    """A non-negative finite float array from a scalar or sequence (horizons, n)."""
    values = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidDataError(f"{name}={value!r}: use finite values >= 0.")
    return values


def _sequence(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray | pd.Index | pd.Series) and not isinstance(
        value, str
    )

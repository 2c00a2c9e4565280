"""What every Bayesian model shares: priors, sampling, diagnostics, posterior
predictions in bounded memory, LOO, persistence.

A Bayesian model composes its maximum-likelihood twin (``twin_class``); it is not one.
A twin reads the data, validates it and compresses it into patterns, exactly as the
maximum-likelihood model does; what the Bayesian model adds:

- ``fit`` first fits a twin by maximum likelihood (the start of the sampler and a
  reference; the twin keeps the patterns it fitted), then samples the posterior with
  NUTS (or finds the MAP) of a PyMC model whose likelihood is the twin's own numpy
  function on the weighted patterns (:class:`~clvmodels.bayes._op.WeightedLogLikelihood`);
- each prediction runs the twin's method on a twin whose ``_evaluator`` is the
  Bayesian model: the twin reads and checks the arguments, and ``_predict``,
  ``_predict_scalar`` and ``_curve`` here evaluate its formula at every posterior draw,
  customers in chunks, returning what the twin returns: the posterior mean (a Series,
  or a float), or with ``interval`` a DataFrame ``estimate, lower, upper, sd`` (a
  highest-density interval of that probability); the draws themselves come from
  ``draws`` (all posterior draws, chain by chain);
- ``params_`` is the posterior mean and ``covariance_`` the posterior covariance, so
  code written for a fitted model of either family (plots, summaries) keeps working.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._validation import check_interval, finite_number, format_bytes, is_integer, is_real
from .._version import __version__
from ..exceptions import (
    ClvModelsError,
    ConvergenceError,
    IdentificationWarning,
    InvalidDataError,
    SamplingWarning,
)
from ..models._base import (
    BaseModel,
    Estimator,
    at_draws,
    data_time_unit,
    distinct_patterns,
    draw_blocks,
    drawing,
    draws_array,
    evaluate_draws,
    joint_draws,
    set_information_criteria,
    user_stacklevel,
)
from ..models._saved import (
    Refusal,
    check_counts,
    check_format_version,
    check_keys,
    check_time_unit,
    clipped,
    parse_json,
    saved_parameters,
    saved_settings,
    shown,
)

__all__ = ["BayesianModel", "compare", "hdi_bounds", "load", "summarize_draws"]

_FORMAT = "clvmodels-bayes"
# The format_version save writes. 1 is the only version there has been; files written
# before map_params and settings.prediction_draws were added lack them and still load
# (the defaults of the constructor then apply), so load has no older format to convert.
_FORMAT_VERSION = 1
# The keys of the settings save writes into the netCDF attribute "clvmodels": those
# every file has, and those only later files have.
_STATE_KEYS = (
    "format", "format_version", "package_version", "kind", "class", "settings", "extra",
    "fit_settings", "method", "mle_params", "n_customers", "n_patterns", "time_unit",
)  # fmt: skip
_LATER_STATE_KEYS = ("map_params", "covariates")
# The constructor settings every Bayesian model has, saved under "settings"; a model's
# own (GammaGamma's drop_zero_values) go under "extra".
_SETTINGS_KEYS = ("priors", "hdi_prob", "columns")
_LATER_SETTINGS_KEYS = ("prediction_draws",)
# The default prior of a covariate coefficient (see bayes.models._PurchaseModel).
_COEFFICIENT_PRIOR: tuple[str, dict[str, float]] = ("Normal", {"mu": 0.0, "sigma": 2.0})
# How a posterior can be obtained: fit's methods, and from_samples.
_FIT_METHODS = ("mcmc", "map")
_METHODS = (*_FIT_METHODS, "samples")
_SUMMARY_COLUMNS = ["estimate", "lower", "upper", "sd"]
# Upper bounds of fit's sampler settings (and of sampler: in an experiment file). More
# chains than this only repeat the convergence check that 4 already make, and each costs
# its own warm-up (100,000 chains validated and then ran for ever without a line);
# chains run in parallel on at most os.cpu_count() processes anyway. Draws and warm-up
# per chain: far above the 1,000-10,000 that summaries need. The posterior (chains x
# draws x parameters, plus per-draw statistics and the pointwise log-likelihood) is
# kept in memory, hence the bound on chains x draws (about 1.5 GiB with statistics).
MAX_CHAINS = 64
MAX_SAMPLER_DRAWS = 1_000_000
MAX_POSTERIOR_DRAWS = 10_000_000
# Largest (samples x patterns) log-likelihood table kept in idata_ for LOO / WAIC.
_MAX_LOG_LIKELIHOOD = 50_000_000

#: the NUTS implementations ``fit`` can use (nutpie and numpyro are optional extras)
SAMPLERS = ("clvmodels", "pymc", "nutpie", "numpyro")
# Most customers whose observed statistics prior_predictive computes exactly (beyond,
# on the sample it simulates).
_MAX_OBSERVED = 10_000_000


def hdi_bounds(values: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval of each column of ``values`` (draws x items).

    The narrowest window holding ``floor(prob * n) + 1`` of the ``n`` sorted draws, the
    usual sample estimate of the HDI of a unimodal distribution; the same rule (and so
    the same bounds) as ArviZ's ``hdi``.

    Examples
    --------
    >>> draws = np.arange(100.0)[:, None]
    >>> hdi_bounds(draws, 0.9)
    (array([0.]), array([90.]))
    """
    values = np.sort(values, axis=0)
    n = values.shape[0]
    inside = min(n, int(np.floor(prob * n)) + 1)
    with np.errstate(invalid="ignore"):  # inf - inf where a quantity is unbounded
        widths = values[inside - 1 :] - values[: n - inside + 1]
    start = np.argmin(np.where(np.isnan(widths), np.inf, widths), axis=0)
    columns = np.arange(values.shape[1])
    return values[start, columns], values[start + inside - 1, columns]


def summarize_draws(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column (draws x items); an unbounded
    quantity (infinite draws) has mean inf and sd NaN, without warnings.

    The draws are centred on the first (finite) one before summing, so a quantity that
    does not vary over the posterior has exactly that value as its mean and sd 0.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        reference = np.where(np.isfinite(values[0]), values[0], 0.0)
        shifted = values - reference
        mean = reference + shifted.mean(axis=0)
        if values.shape[0] < 2:
            return mean, np.zeros_like(mean)
        sd = shifted.std(axis=0, ddof=1)
    return mean, np.where(np.isfinite(mean), sd, np.nan)


def purchase_statistics(frequency, recency, T) -> dict[str, float]:
    """Summary statistics of purchase histories, for prior predictive checks."""
    frequency = np.asarray(frequency, dtype=np.float64)
    ratio = np.divide(recency, T, out=np.zeros(len(frequency)), where=np.asarray(T) > 0)
    return {
        "mean_frequency": float(frequency.mean()),
        "share_no_repeat": float(np.mean(frequency == 0)),
        "p90_frequency": float(np.quantile(frequency, 0.9)),
        "mean_recency_share": float(ratio[frequency > 0].mean()) if (frequency > 0).any()
        else 0.0,
    }  # fmt: skip


def _prior_distribution(name: str, distribution: str, parameters: dict[str, float],
                        positive: bool = True) -> Any:  # fmt: skip
    """The PyMC class of a prior, checked: a continuous distribution that takes these
    parameters and puts no mass on negative values (a covariate coefficient's, not
    ``positive``: mass on both signs); else InvalidDataError."""
    import pymc as pm

    factory = getattr(pm, distribution, None)
    if not (isinstance(factory, type) and issubclass(factory, pm.Continuous)):
        raise InvalidDataError(
            f"priors[{name!r}]: {distribution!r} is not a continuous PyMC distribution "
            "(e.g. 'LogNormal', 'Gamma', 'HalfNormal', 'Weibull')."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dist = factory.dist(**parameters)
            # log-density at negative points: -inf everywhere for a positive support
            negative = pm.logp(dist, np.array([-1e-6, -1.0, -1e3])).eval()
            either = pm.logp(dist, np.array([-1.0, 1.0])).eval()
    except (TypeError, ValueError) as error:
        raise InvalidDataError(
            f"priors[{name!r}]: {distribution}({parameters}) is not valid: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    if not positive:
        if not np.all(np.isfinite(either)):
            raise InvalidDataError(
                f"priors[{name!r}]: {distribution} puts no mass on one sign, but the "
                f"coefficient {name} can be positive or negative; use e.g. Normal or "
                "StudentT."
            )
        return factory
    if np.any(np.isfinite(negative)):
        raise InvalidDataError(
            f"priors[{name!r}]: {distribution} allows negative values, but "
            f"{name} must be positive; use a positive distribution such as "
            "LogNormal, Gamma, HalfNormal or Weibull."
        )
    return factory


class BayesianModel(Estimator):
    """Base of the Bayesian models. Each composes its maximum-likelihood twin
    (``twin_class``): it reads and checks data through a twin, samples the posterior
    of the twin's likelihood with priors, and predicts through a twin whose
    evaluation it takes over (the twin's ``_evaluator``), so arguments, horizons and
    output shapes are the twin's and only the numbers come from the posterior."""

    #: the maximum-likelihood model this one composes
    twin_class: ClassVar[type[BaseModel]]
    # copied from twin_class by __init_subclass__
    kind: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    data_columns: ClassVar[tuple[str, ...]] = ()
    discrete_time: ClassVar[bool] = False
    param_support: ClassVar[str] = ""

    #: default prior of every parameter: (PyMC distribution, its parameters)
    default_priors: ClassVar[dict[str, tuple[str, dict[str, float]]]] = {}

    #: the twin's public predictions; each becomes a posterior summary
    _PREDICTIONS: ClassVar[tuple[str, ...]] = (
        "expected_purchases", "probability_alive", "probability_purchases",
        "expected_purchases_new_customer", "probability_purchases_new_customer",
        "probability_repurchase_new_customer", "discounted_expected_transactions",
        "expected_spend", "mean_spend", "survival", "retention_rate", "probability_churn",
        "expected_lifetime",
        "discounted_expected_lifetime", "discounted_expected_residual_lifetime",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        twin = cls.__dict__.get("twin_class")
        if twin is None:
            return
        for attribute in ("kind", "param_names", "data_columns", "discrete_time",
                          "param_support"):  # fmt: skip
            setattr(cls, attribute, getattr(twin, attribute))
        for name in cls._PREDICTIONS:
            if hasattr(twin, name) and name not in cls.__dict__:
                setattr(cls, name, _posterior_prediction(name, getattr(twin, name)))
        if hasattr(twin, "_cumulative_purchases"):  # what CLV asks of a purchase model
            cls._cumulative_purchases = _cumulative_purchases

    def __init__(
        self,
        *,
        priors: Mapping[str, Any] | None = None,
        hdi_prob: float = 0.94,
        prediction_draws: int | None = 1000,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        self.priors = priors
        self.hdi_prob = hdi_prob
        self.prediction_draws = prediction_draws
        self.columns = columns

    # ------------------------------------------------------------------ the twin

    def _twin_settings(self) -> dict[str, Any]:
        """Settings of the twin besides ``columns`` (a model's own, e.g. GammaGamma's)."""
        return {}

    def _twin(self) -> BaseModel:
        """A maximum-likelihood twin with this model's settings and, once fitted, its
        time unit (the twin's checks of prediction data compare them)."""
        twin = self.twin_class(columns=self.columns, **self._twin_settings())
        if getattr(self, "time_unit_", None) is not None:
            twin.time_unit_ = self.time_unit_
        if self._design() is not None:  # the covariates' categories, from the fit
            twin.covariates_ = self._design()
            twin.param_names = self.param_names
        return twin

    def _design(self) -> Any:
        """The covariate design learned by the fit (None without covariates)."""
        return getattr(self, "covariates_", None)

    def _positive(self) -> np.ndarray:
        """Which parameters are positive (sampled on the log scale); covariate
        coefficients are real (sampled as they are)."""
        base = np.ones(len(type(self).param_names), dtype=bool)
        design = self._design()
        return base if design is None else np.concatenate([base, np.zeros(len(design.names), bool)])

    def _fitting_twin(self) -> BaseModel:
        """The twin whose fit starts the sampler: it keeps the patterns it fitted."""
        twin = self._twin()
        twin._keep_patterns = True
        return twin

    def _predicting_twin(self) -> BaseModel:
        """A twin that predicts over this model's posterior: its estimates are the
        posterior means (what its own checks read), its evaluation this model's."""
        self._check_fitted()
        twin = self._twin()
        twin.params_, twin.covariance_ = self.params_, self.covariance_
        twin._evaluator = self
        return twin

    @classmethod
    def _in_support(cls, values: Any) -> np.ndarray:
        return cls.twin_class._in_support(values)

    def _frame(self, data: Any, what: str = "data", weights: Any = None) -> pd.DataFrame:
        return self._twin()._frame(data, what, weights)

    def _read(self, data: Any, what: str = "data") -> tuple[dict[str, np.ndarray], pd.Index]:
        return self._twin()._read(data, what)

    def _weights(self, data: pd.DataFrame, weights: Any) -> np.ndarray:
        return self._twin()._weights(data, weights)

    def _column_names(self, frame: Any) -> dict[str, str]:
        return self._twin()._column_names(frame)

    def _param_dict(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[..., i] for i, name in enumerate(self.param_names)}

    def check_data(self, data: Any, *, weights: Any = None) -> None:
        """Check the settings (priors included) and ``data`` as ``fit`` would, without
        fitting: an experiment checks every model's data before it fits the first."""
        self._check_settings()
        self._twin().check_data(data, weights=weights)

    def draws(self, prediction: str, *args: Any, **kwargs: Any) -> Any:
        """Posterior draws of a per-customer prediction: an xarray DataArray
        ``(chain, draw, customer)``, every posterior draw in its chain (see the
        maximum-likelihood :meth:`~clvmodels.models._base.BaseModel.draws`).

        Examples
        --------
        >>> import clvmodels
        >>> from clvmodels.bayes import BGNBD
        >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
        >>> model = BGNBD().fit(frame, method="map", draws=300)
        >>> model.draws("probability_alive", frame.head(2)).shape
        (1, 300, 2)
        """
        return joint_draws(self, prediction, *args, **kwargs)

    # ----------------------------------------------------------------- priors

    def prior_specs(self) -> dict[str, tuple[str, dict[str, float]]]:
        """The prior of each parameter as ``{name: (distribution, parameters)}``:
        the defaults, replaced where ``priors`` says otherwise."""
        specs = dict(self.default_priors)
        design = self._design()
        if design is not None:
            specs.update(dict.fromkeys(design.names, _COEFFICIENT_PRIOR))
        for name, value in (self.priors or {}).items():
            # before the fit the coefficients' names are not known (a text covariate's
            # categories come from the data): a name of their form waits for the fit
            waiting = design is None and _coefficient_name(name) and self._has_covariates()
            if name not in self.param_names and not waiting:
                raise InvalidDataError(
                    f"{type(self).__name__}: priors has {name!r}, which is not a parameter; "
                    f"the parameters are {', '.join(self.param_names)}."
                )
            specs[name] = _prior_spec(name, value)
        return specs

    def _has_covariates(self) -> bool:
        return any(getattr(self, key, None) for key in
                   ("purchase_covariates", "dropout_covariates", "shared_covariates"))  # fmt: skip

    def _log_posterior(self, arrays: dict[str, np.ndarray], weights: np.ndarray) -> Any:
        """The numpy log posterior on the log parameters (:mod:`._density`), or None
        where a prior has no closed form there."""
        from ._density import log_posterior

        return log_posterior(self._twin(), arrays, weights, self.prior_specs())

    def _build(self, arrays: dict[str, np.ndarray], weights: np.ndarray) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        from ._op import WeightedLogLikelihood

        op = WeightedLogLikelihood(self._twin(), arrays, weights)
        with pm.Model() as model:
            variables = []
            specs = self.prior_specs()
            for name, positive in zip(self.param_names, self._positive(), strict=True):
                distribution, parameters = specs[name]
                factory = _prior_distribution(name, distribution, parameters, positive)
                variables.append(factory(name, **parameters))
            log_likelihood, _ = op(pt.stack(variables))
            pm.Potential("log_likelihood", log_likelihood)
        return model

    # -------------------------------------------------------------- fitting

    def fit(  # type: ignore[override]
        self,
        data: pd.DataFrame,
        *,
        weights: Any = None,
        method: str = "mcmc",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        cores: int | None = None,
        random_seed: int = 0,
        sampler: str = "clvmodels",
        target_accept: float = 0.8,
        progressbar: bool = False,
    ) -> BayesianModel:
        """Sample the posterior (``method="mcmc"``) or find its mode (``"map"``).

        The twin's maximum-likelihood fit comes first: it reads and checks the data
        and compresses it into the weighted patterns the posterior's likelihood sums
        over, and its estimate and covariance start the sampler.

        Parameters
        ----------
        data : pandas.DataFrame or polars.DataFrame
            As for the maximum-likelihood model (a summary or ``compress``-ed patterns).
        weights : array-like, pandas.Series or str, optional
            Customers per row, as for the maximum-likelihood model.
        method : {"mcmc", "map"}, default "mcmc"
            NUTS, or the posterior mode with a Laplace approximation (draws from the
            normal approximation on the log scale at the mode, curvature from the
            exact gradient).
        draws, tune, chains : int
            NUTS settings (per chain); ``draws`` is also the number of Laplace draws
            for ``map``.
        cores : int, optional
            Processes running chains in parallel (default: as many as CPUs, at most
            ``chains``).
        random_seed : int, default 0
            Seed of the sampler and of every later random step.
        sampler : {"clvmodels", "pymc", "nutpie", "numpyro"}, default "clvmodels"
            NUTS implementation, all on the same PyMC log density: clvmodels' own
            (numpy, Stan's algorithm with a dense metric; the fastest on these
            low-dimensional posteriors), PyMC's, or nutpie's / numpyro's, which are
            optional and used only if installed.
        target_accept : float, default 0.8
            NUTS step-size target; raise it (0.9, 0.95) after divergences.
        progressbar : bool, default False
            Show the sampler's progress bar (PyMC, nutpie, numpyro; clvmodels' own
            sampler has none). Every sampler also says what it runs on the logger
            ``clvmodels.bayes`` (level INFO), and clvmodels' own how far it is, once a
            run has taken 5 s, at each further tenth (``logging.basicConfig(level=
            logging.INFO)`` shows them; ``clvmodels run`` does on its log).

        Returns
        -------
        self
        """
        import os

        self._reset()
        self.__dict__.pop("param_names", None)
        self._check_sampling(method, draws, tune, chains, sampler, target_accept)
        # Rows sorted by the model's columns: the patterns (and the twin's estimate,
        # the sampler's start) then come out the same to the last bit whatever the
        # order or compression of the rows, so the same data gives the same draws.
        frame = self._frame(data, "data", weights)
        if len(frame):  # (an empty frame: the twin's fit says so)
            order = self._canonical_order(frame)
            frame, weights = frame.iloc[order], self._weights(frame, weights)[order]
        twin = self._fitting_twin()
        mle = log_covariance = None
        try:
            with warnings.catch_warnings():
                # the twin's advice to add a penalizer: here the priors regularise
                warnings.simplefilter("ignore", IdentificationWarning)
                twin.fit(frame, weights=weights)
            mle = twin.params_.copy()
            log_covariance = _log_scale_covariance(twin.covariance_, mle.to_numpy(),
                                                   twin._positive())  # fmt: skip
        except ConvergenceError:
            pass  # the priors may still identify what the likelihood cannot
        if getattr(twin, "_patterns", None) is None:
            raise InvalidDataError(f"{type(self).__name__}: no data to fit.")
        if getattr(twin, "covariates_", None) is not None:
            self.covariates_ = twin.covariates_
            self.param_names = twin.param_names
            self.prior_specs()  # a prior naming a coefficient the data do not have
        arrays, pattern_weights = twin._patterns
        self._patterns_fitted = twin._patterns
        for key in ("n_customers_", "n_patterns_", "time_unit_"):
            if hasattr(twin, key):
                setattr(self, key, getattr(twin, key))
        unit = data_time_unit(data)
        if mle is None and unit is not None:  # the twin did not get that far
            self.time_unit_ = unit
        # the numpy log posterior where every prior has a closed form here: no PyMC
        # graph to build and compile for clvmodels' NUTS or the MAP
        density = self._log_posterior(arrays, pattern_weights)
        needs_pymc = density is None or (method == "mcmc" and sampler != "clvmodels")
        model = self._build(arrays, pattern_weights) if needs_pymc else None
        start = twin._start(arrays, pattern_weights) if mle is None else mle.to_numpy()
        initvals = {name: float(v) for name, v in zip(self.param_names, start, strict=True)}
        if method == "map":
            idata = self._laplace(model, initvals, draws, random_seed, density)
        else:
            cores = cores or min(chains, os.cpu_count() or 1)
            idata = self._sample(
                model, initvals, draws=draws, tune=tune, chains=chains, cores=cores,
                random_seed=random_seed, sampler=sampler, target_accept=target_accept,
                progressbar=progressbar, log_covariance=log_covariance, density=density,
            )  # fmt: skip
        self._attach_log_likelihood(idata, arrays, pattern_weights)
        self._set_posterior(idata, method, mle)
        if method == "map":
            self.map_params_ = pd.Series(
                self._posterior_mode, index=list(self.param_names), name="mode"
            )
        self.fit_settings_ = {
            "method": method, "draws": draws, "tune": tune, "chains": chains,
            "random_seed": random_seed, "sampler": sampler, "target_accept": target_accept,
        }  # fmt: skip
        if method == "mcmc":
            self._warn_diagnostics()
        return self

    def _canonical_order(self, frame: pd.DataFrame) -> np.ndarray:
        """Row order sorting the model's columns (stable); the rows as they are when a
        column cannot be read (the twin's ``fit`` then says why)."""
        names = self._column_names(frame)
        try:
            columns = [frame[names[role]].to_numpy(dtype=np.float64, na_value=np.nan)
                       for role in self.data_columns]  # fmt: skip
            for column in self._twin()._extra_columns():  # covariates: by sorted value
                columns.append(pd.factorize(frame[column], sort=True)[0].astype(np.float64))
        except (KeyError, TypeError, ValueError):
            return np.arange(len(frame))
        return np.lexsort(columns[::-1])

    def _check_settings(self) -> None:
        """The twin's checks of the constructor settings, then ``hdi_prob``,
        ``prediction_draws`` and the priors (called by ``fit``, ``check_data`` and
        ``load``)."""
        self._twin()._check_settings()
        check_interval(self.hdi_prob, "hdi_prob")
        draws_limit = self.prediction_draws
        if draws_limit is not None and (
            not isinstance(draws_limit, int | np.integer) or draws_limit < 1
        ):
            raise InvalidDataError(
                f"{type(self).__name__}: prediction_draws={draws_limit!r}: a whole number "
                ">= 1, or None for every posterior draw."
            )
        self.prior_specs()

    def _check_sampling(self, method, draws, tune, chains, sampler, target_accept) -> None:
        name = type(self).__name__
        if method not in _FIT_METHODS:
            raise InvalidDataError(f"{name}: method={method!r}: use 'mcmc' or 'map'.")
        for label, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
            if not is_integer(value) or value < low:
                raise InvalidDataError(f"{name}: {label}={value!r}: give a whole number >= {low}.")
        for label, value, high, why in (
            ("chains", chains, MAX_CHAINS, "the chains only check convergence (4 is usual)"),
            ("draws", draws, MAX_SAMPLER_DRAWS, "1,000 to 10,000 draws per chain are usual"),
            ("tune", tune, MAX_SAMPLER_DRAWS, "1,000 warm-up iterations are usual"),
        ):
            if value > high:
                raise InvalidDataError(
                    f"{name}: {label}={value:,}: at most {high:,} ({why}; more would run "
                    "for days without output that improves the estimates)."
                )
        if method == "mcmc" and chains * draws > MAX_POSTERIOR_DRAWS:
            raise InvalidDataError(
                f"{name}: chains x draws = {chains:,} x {draws:,} = {chains * draws:,} "
                f"posterior draws would keep "
                f"{format_bytes(8 * chains * draws * (len(self.param_names) + 8))} with "
                f"their statistics; at most {MAX_POSTERIOR_DRAWS:,}: use fewer draws."
            )
        if sampler not in SAMPLERS:
            raise InvalidDataError(
                f"{name}: sampler={sampler!r}: use 'clvmodels', 'pymc', 'nutpie' or 'numpyro'."
            )
        if not is_real(target_accept) or not 0 < target_accept < 1:
            raise InvalidDataError(f"{name}: target_accept={target_accept!r}: between 0 and 1.")
        self._check_settings()  # unknown parameters or bad priors fail before any work

    def _sample(self, model, initvals, *, draws, tune, chains, cores, random_seed, sampler,
                target_accept, progressbar, log_covariance=None, density=None) -> Any:  # fmt: skip
        kwargs: dict[str, Any] = {}
        if sampler == "clvmodels":
            from ._samplers import sample_native

            return sample_native(
                model, initvals, draws=draws, tune=tune, chains=chains, cores=cores,
                random_seed=random_seed, target_accept=target_accept,
                log_covariance=log_covariance, density=density,
            )  # fmt: skip
        import logging

        import pymc as pm

        # the other samplers' own progress shows only as a bar (progressbar=True): say at
        # least what runs, for logs written off a terminal (clvmodels' sampler says more)
        logging.getLogger("clvmodels.bayes").info(
            "NUTS (%s): %d chain%s of %s warm-up + %s draws", sampler, chains,
            "s" if chains > 1 else "", f"{tune:,}", f"{draws:,}",
        )  # fmt: skip
        if sampler != "pymc":
            _require_sampler(sampler)
            from ._samplers import sample_external

            return sample_external(
                sampler, model, initvals, draws=draws, tune=tune, chains=chains, cores=cores,
                random_seed=random_seed, target_accept=target_accept, progressbar=progressbar,
            )  # fmt: skip
        elif log_covariance is not None:
            kwargs.update(_informed_nuts(model, initvals, log_covariance, chains, random_seed,
                                         target_accept, self._positive()))  # fmt: skip
        else:
            # A dense mass matrix: the purchase rate's shape and scale are strongly
            # correlated a posteriori, and learning that correlation cuts NUTS's steps
            # per draw by about three on CDNOW.
            kwargs["init"] = "jitter+adapt_full"
            kwargs["initvals"] = initvals
            kwargs["target_accept"] = target_accept
        pymc_logger = logging.getLogger("pymc")
        level = pymc_logger.level
        if not progressbar:  # its "Initializing NUTS ..." lines are progress too
            pymc_logger.setLevel(logging.WARNING)
        with model, warnings.catch_warnings(), _restore_level(pymc_logger, level):
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*[Cc]ores.*")
            warnings.filterwarnings("ignore", message=".*experimental feature.*")
            return pm.sample(
                draws=draws, tune=tune, chains=chains, cores=cores, random_seed=random_seed,
                progressbar=progressbar, compute_convergence_checks=False, **kwargs,
            )  # fmt: skip

    def _laplace(self, model, initvals, draws, random_seed, density=None) -> Any:
        """Posterior mode, and draws from the normal approximation of the log
        parameters there (curvature by differences of the exact gradient)."""
        from scipy import optimize

        if density is not None:
            function = density
        else:
            # Every prior of a positive parameter has positive support, so PyMC samples
            # log(parameter); a coefficient's prior is on the real line, sampled as it
            # is: the value variables are the working scale, in the order of param_names.
            function = model.logp_dlogp_function(ravel_inputs=True)
            function.set_extra_values({})

        def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            value, gradient = function(log_params)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(log_params)
            return -float(value), -np.asarray(gradient, dtype=np.float64)

        positive = self._positive()
        start = np.array([initvals[name] for name in self.param_names], dtype=np.float64)
        start[positive] = np.log(start[positive])
        result = optimize.minimize(negative, start, jac=True, method="BFGS",
                                   options={"gtol": 1e-8, "maxiter": 2000})  # fmt: skip
        if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
            raise ConvergenceError(
                f"{type(self).__name__}: the posterior mode was not found ({result.message})."
            )
        log_point = result.x
        k = len(log_point)
        hessian = np.empty((k, k))
        for i in range(k):
            step = 1e-5 * max(1.0, abs(log_point[i]))
            up, down = log_point.copy(), log_point.copy()
            up[i] += step
            down[i] -= step
            hessian[i] = (negative(down)[1] - negative(up)[1]) / (2 * step)
        covariance = np.linalg.pinv(-(hessian + hessian.T) / 2)
        rng = np.random.default_rng(random_seed)
        log_draws = rng.multivariate_normal(log_point, covariance, size=draws, method="eigh")
        natural = log_draws.copy()
        natural[:, positive] = np.exp(natural[:, positive])
        idata = _inference_data({
            name: natural[None, :, i] for i, name in enumerate(self.param_names)
        })  # fmt: skip
        mode = log_point.copy()
        mode[positive] = np.exp(mode[positive])
        self._posterior_mode = mode
        return idata

    def _attach_log_likelihood(self, idata, arrays, weights) -> None:
        samples = self._posterior_matrix(idata)
        if samples.shape[0] * len(weights) > _MAX_LOG_LIKELIHOOD:
            return
        twin = self._twin()
        with np.errstate(all="ignore"):
            rows = [np.asarray(twin._loglik(p, arrays, False)[0], dtype=np.float64)
                    for p in samples]  # fmt: skip
        table = np.broadcast_to(np.array(rows), (samples.shape[0], len(weights)))
        chains, draws = _chain_draw_shape(idata)
        import xarray as xr

        dataset = xr.Dataset(
            {"patterns": (("chain", "draw", "pattern"), table.reshape(chains, draws, -1))},
            coords={"chain": np.arange(chains), "draw": np.arange(draws),
                    "pattern": np.arange(len(weights))},
        )  # fmt: skip
        columns = {
            f"pattern_{name}": (("pattern",), np.asarray(values, dtype=np.float64))
            for name, values in arrays.items()
            if name in self.data_columns and np.ndim(values) == 1 and len(values) == len(weights)
        }  # fmt: skip
        weights_data = xr.Dataset(
            {"pattern_weight": (("pattern",), np.asarray(weights)), **columns}
        )
        _add_group(idata, "log_likelihood", dataset)
        _add_group(idata, "constant_data", weights_data)

    def _set_posterior(self, idata, method: str, mle: pd.Series | None) -> None:
        samples = self._posterior_matrix(idata)
        names = list(self.param_names)
        self.idata_ = idata
        self.method_ = method
        self.params_, self.covariance_ = _posterior_moments(samples, names)
        self.mle_params_ = mle
        arrays, weights = self._patterns_fitted
        with np.errstate(all="ignore"):
            ll, _ = self._twin()._loglik(self.params_.to_numpy(), arrays, False)
        self.log_likelihood_ = float(np.asarray(weights) @ np.broadcast_to(ll, weights.shape))
        self.converged_ = True
        set_information_criteria(self, float(np.sum(weights)))
        self._patterns_fitted = None

    @classmethod
    def from_samples(
        cls, samples: Mapping[str, Any], *, time_unit: str | None = None, **settings: Any
    ) -> BayesianModel:
        """A model whose posterior is given draws (from another sampler, a stored run,
        or a point mass for comparisons).

        Parameters
        ----------
        samples : dict of parameter -> array
            Draws of every parameter, shape (chains, draws) or (draws,).
        time_unit : str, optional
            Time unit of the data the draws belong to (checked by predictions).
        **settings
            Constructor settings (``priors``, ``hdi_prob``, ...).

        Examples
        --------
        >>> import numpy as np
        >>> from clvmodels.bayes import BGNBD
        >>> point = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
        >>> model = BGNBD.from_samples({k: np.full(10, v) for k, v in point.items()})
        >>> float(model.expected_purchases_new_customer(39, interval=0.9)["sd"])
        0.0
        """
        model = cls(**settings)
        if model._has_covariates():
            raise InvalidDataError(
                f"{cls.__name__}.from_samples: a model with covariates learns their "
                "categories from data; fit it (fit(data)) instead."
            )
        if set(samples) != set(cls.param_names):
            raise InvalidDataError(
                f"{cls.__name__}.from_samples: give draws of exactly "
                f"{', '.join(cls.param_names)}; got {', '.join(map(str, samples))}."
            )
        arrays = {}
        for name in cls.param_names:
            values = np.asarray(samples[name], dtype=np.float64)
            values = values[None, :] if values.ndim == 1 else values
            if values.ndim != 2 or not np.all(cls._in_support(values)):
                raise InvalidDataError(
                    f"{cls.__name__}.from_samples: {name} must be positive, finite draws "
                    "of shape (chains, draws) or (draws,)."
                )
            arrays[name] = values
        model.idata_ = _inference_data(arrays)
        model.method_ = "samples"
        model.fit_settings_ = {"method": "samples"}
        model.mle_params_ = None
        model.params_, model.covariance_ = _posterior_moments(
            model._posterior_matrix(), list(cls.param_names)
        )
        model.converged_ = True
        if time_unit is not None:
            model.time_unit_ = time_unit
        return model

    # -------------------------------------------------------------- posterior

    def _posterior_matrix(self, idata: Any = None) -> np.ndarray:
        """Posterior draws, shape (chains * draws, n_params), natural scale."""
        idata = self.idata_ if idata is None else idata
        posterior = idata.posterior
        columns = [np.asarray(posterior[name].values, dtype=np.float64).reshape(-1)
                   for name in self.param_names]  # fmt: skip
        return np.column_stack(columns)

    def posterior_samples(self) -> np.ndarray:
        """All posterior draws as an array (samples, parameters), chains stacked.

        Examples
        --------
        >>> import clvmodels
        >>> from clvmodels.bayes import BGNBD
        >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
        >>> model = BGNBD().fit(frame, method="map", draws=200)
        >>> model.posterior_samples().shape
        (200, 4)
        """
        self._check_fitted()
        return self._posterior_matrix()

    def parameter_draws(self, n_draws: int | None = None, random_state: Any = 0) -> np.ndarray:
        """Posterior draws (all of them by default; ``n_draws`` evenly thinned)."""
        samples = self.posterior_samples()
        if n_draws is None or n_draws >= len(samples):
            return samples
        keep = np.linspace(0, len(samples) - 1, int(n_draws)).round().astype(int)
        return samples[keep]

    def _prediction_samples(self) -> np.ndarray:
        """The draws predictions use: all, or ``prediction_draws`` evenly thinned."""
        return self.parameter_draws(self.prediction_draws)

    def _check_fitted(self) -> None:
        if not hasattr(self, "idata_"):
            from ..exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(data) first "
                "(or clvmodels.bayes.load(path))."
            )

    def _predict(
        self, func: Callable[..., np.ndarray], arrays: dict[str, np.ndarray], index: pd.Index,
        name: str, interval: float | None, n_draws: int | None, random_state: Any,
        chunk_size: int | None = None, **kwargs: Any,
    ) -> pd.DataFrame | Any:  # fmt: skip
        """Posterior mean, sd and HDI of ``func`` per customer, customers in blocks so
        that no (draws x customers) array larger than one block is ever allocated."""
        self._check_fitted()
        samples = self._prediction_samples()
        prob = self.hdi_prob if interval is None else interval
        n = len(index)
        if drawing():
            samples = self.posterior_samples()  # every draw, in (chain, draw) order
            values = evaluate_draws(self, func, arrays, samples, name, n, **kwargs)
            chains, draws = _chain_draw_shape(self.idata_)
            return draws_array(values.reshape(chains, draws, n), index, name)
        # identical customers have identical posteriors: one evaluation per pattern
        expand = np.arange(n)
        if arrays and n > 1:
            arrays, expand = distinct_patterns(arrays)
        n_rows = len(next(iter(arrays.values()))) if arrays else n
        out = np.empty((n_rows, 4))

        evaluate = at_draws(self, func, arrays, samples, kwargs)
        # blocks of customers and draws of bounded memory, however many of either
        for rows, values in draw_blocks(evaluate, len(samples), n_rows, chunk_size):
            out[rows, 0], out[rows, 3] = summarize_draws(values)
            if interval is not None:  # the HDI sorts every draw: only when asked for
                out[rows, 1], out[rows, 2] = hdi_bounds(values, prob)
        return _posterior_output(out[expand], index, name, interval)

    def _predict_scalar(
        self, func: Callable[..., np.ndarray], name: str, interval: float | None,
        n_draws: int | None, random_state: Any, **kwargs: Any,
    ) -> pd.Series:  # fmt: skip
        self._check_fitted()
        samples = self._prediction_samples()
        values = np.asarray(func(**self._param_dict(samples), **kwargs), dtype=np.float64)
        values = np.broadcast_to(values, (len(samples),))
        prob = self.hdi_prob if interval is None else interval
        lower, upper = hdi_bounds(values[:, None], prob)
        mean, sd = summarize_draws(values[:, None])
        row = np.array([[mean[0], lower[0], upper[0], sd[0]]])
        return _posterior_output(row, None, name, interval)

    def _curve(self, func, values, axis_name, name, interval, n_draws, random_state):
        """Population-level predictions over a grid of values (BG/BB, sBG curves)."""
        self._check_fitted()
        samples = self._prediction_samples()
        grid = np.asarray(values, dtype=np.float64)
        flat = grid.reshape(-1)
        prob = self.hdi_prob if interval is None else interval
        out = np.empty((flat.size, 4))

        def evaluate(rows: slice, chosen: slice) -> np.ndarray:
            return func(flat[rows], **self._param_dict(samples[chosen, None, :]))

        # grid points and draws in blocks of bounded memory (draw_blocks)
        for rows, draws in draw_blocks(evaluate, len(samples), flat.size):
            out[rows, 0], out[rows, 3] = summarize_draws(draws)
            out[rows, 1], out[rows, 2] = hdi_bounds(draws, prob)
        if grid.ndim == 0:
            return _posterior_output(out, None, name, interval)
        labels = grid.astype(np.int64) if np.all(grid == np.floor(grid)) else grid
        return _posterior_output(out, pd.Index(labels, name=axis_name), name, interval)

    # ------------------------------------------------------------ diagnostics

    def diagnostics(self) -> pd.DataFrame:
        """Convergence of the sampler per parameter: ``r_hat``, ``ess_bulk``,
        ``ess_tail``; ``attrs["divergences"]`` counts divergent transitions."""
        from ._compat import rhat_ess

        self._check_fitted()
        posterior = self.idata_.posterior
        rows = {}
        for name in self.param_names:
            values = np.asarray(posterior[name].values)
            r_hat, ess_bulk, ess_tail = rhat_ess(values)
            rows[name] = {"r_hat": r_hat, "ess_bulk": ess_bulk, "ess_tail": ess_tail}
        table = pd.DataFrame(rows).T
        table.attrs["divergences"] = self.divergences()
        return table

    def divergences(self) -> int:
        """Number of divergent NUTS transitions (0 for ``map``)."""
        self._check_fitted()
        stats = getattr(self.idata_, "sample_stats", None)
        if stats is None or "diverging" not in stats:
            return 0
        return int(np.asarray(stats["diverging"].values).sum())

    def _warn_diagnostics(self) -> None:
        table = self.diagnostics()
        problems = []
        if (table["r_hat"] > 1.01).any():
            problems.append(f"r_hat up to {table['r_hat'].max():.3f} (> 1.01)")
        if (table[["ess_bulk", "ess_tail"]] < 400).any(axis=None):
            problems.append(
                f"effective sample size down to {table[['ess_bulk', 'ess_tail']].min().min():.0f}"
                " (< 400)"
            )
        if table.attrs["divergences"]:
            problems.append(f"{table.attrs['divergences']} divergent transitions")
        if problems:
            warnings.warn(
                f"{type(self).__name__}: the sampler may not have converged: "
                + "; ".join(problems)
                + ". Try more tune/draws, target_accept=0.95, or more informative priors; "
                "see diagnostics().",
                SamplingWarning, stacklevel=user_stacklevel(),
            )  # fmt: skip

    def summary(self, level: float | None = None) -> pd.DataFrame:
        """The parameter table of both families: ``estimate`` (the posterior mean),
        ``std_error`` (the posterior sd), ``lower`` and ``upper`` (the highest-density
        interval of probability ``level``, by default ``hdi_prob``); then, after NUTS,
        ``r_hat``, ``ess_bulk``, ``ess_tail``, and ``mle``, the maximum-likelihood
        estimate that started the sampler.

        Examples
        --------
        >>> import clvmodels
        >>> from clvmodels.bayes import BGNBD
        >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
        >>> list(BGNBD().fit(frame, method="map", draws=200).summary().columns)
        ['estimate', 'std_error', 'lower', 'upper', 'mle']
        """
        self._check_fitted()
        samples = self._posterior_matrix()
        prob = self.hdi_prob if level is None else level
        check_interval(prob, "level" if level is not None else "hdi_prob")
        lower, upper = hdi_bounds(samples, prob)
        table = pd.DataFrame({
            "estimate": samples.mean(axis=0), "std_error": samples.std(axis=0, ddof=1),
            "lower": lower, "upper": upper,
        }, index=list(self.param_names))  # fmt: skip
        if self.method_ == "mcmc":
            table = table.join(self.diagnostics())
        if getattr(self, "mle_params_", None) is not None:
            table["mle"] = self.mle_params_
        table.attrs["hdi_prob"] = prob
        return table

    # ------------------------------------------------------- prior predictive

    def prior_predictive(
        self, data: pd.DataFrame, *, n_draws: int = 100, max_customers: int = 2000,
        random_state: int = 0,
    ) -> pd.DataFrame:  # fmt: skip
        """Prior predictive check: data simulated from parameters drawn from the priors,
        summarised by the same statistics as the observed data.

        Customers keep their observation lengths (``T`` or ``n_periods``; at most
        ``max_customers`` of them, sampled) and each prior draw simulates them with the
        model's generative story (:mod:`clvmodels.simulate`). Needs no fit.

        Returns
        -------
        pandas.DataFrame
            One row per prior draw: the parameters and the statistics; the observed
            statistics (of every customer of ``data``) are in ``attrs["observed"]``.
            Priors that rarely produce data
            like the observed (e.g. the observed share of one-time buyers far in the
            tails) deserve a second look.

        Examples
        --------
        >>> import clvmodels
        >>> from clvmodels.bayes import BGNBD
        >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
        >>> check = BGNBD().prior_predictive(frame, n_draws=20)
        >>> sorted(check.attrs["observed"])[:2]
        ['mean_frequency', 'mean_recency_share']
        """
        import pymc as pm

        for label, value in (("n_draws", n_draws), ("max_customers", max_customers)):
            if not is_integer(value) or value < 1:
                raise InvalidDataError(f"{label}={value!r}: give a whole number >= 1.")
        frame = self._frame(data, "data", None)
        all_arrays, _ = self._read(frame)
        weights = self._weights(frame, None)
        rng = np.random.default_rng(random_state)
        total = float(weights.sum())
        whole = bool(np.all(weights == np.round(weights)))
        every = None
        if whole and total <= _MAX_OBSERVED:
            every = np.repeat(np.arange(len(weights)), weights.astype(np.int64))
        if every is not None and total <= max_customers:
            keep = every
        else:
            # customers drawn in proportion to their rows' weights (compressed data)
            size = int(min(max_customers, round(total)))
            keep = np.sort(rng.choice(len(weights), size, p=weights / total))
        arrays = {k: v[keep] for k, v in all_arrays.items()}
        names, specs, positive = self._prior_names(frame)
        factories = [_prior_distribution(k, *specs[k], p)
                     for k, p in zip(names, positive, strict=True)]  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            drawn = pm.draw(
                [f.dist(**specs[k][1]) for f, k in zip(factories, names, strict=True)],
                draws=n_draws, random_seed=random_state,
            )  # fmt: skip
        drawn = [np.atleast_1d(v) for v in drawn]  # (a single draw comes without its axis)
        rows = []
        for i in range(n_draws):
            params = {k: float(v[i]) for k, v in zip(names, drawn, strict=True)}
            with np.errstate(all="ignore"):
                stats = self._simulated_statistics(params, arrays, rng)
            rows.append({**params, **stats})
        table = pd.DataFrame(rows).rename_axis("draw")
        # the data's own statistics: every customer (the simulations use a sample)
        observed = arrays if every is None else {k: v[every] for k, v in all_arrays.items()}
        table.attrs["observed"] = self._statistics(observed)
        return table

    def _prior_names(self, frame: pd.DataFrame) -> tuple[list[str], dict[str, Any], np.ndarray]:
        """The parameters a prior predictive check draws, their priors and which are
        positive: with covariates, the coefficients of ``frame``'s design (the fitted
        design when there is one)."""
        if self._design() is not None or not self._has_covariates():
            return list(self.param_names), self.prior_specs(), self._positive()
        twin = self._twin()
        twin._learn(frame)
        names = list(twin.param_names)
        specs = {**self.prior_specs(), **dict.fromkeys(twin.covariates_.names, _COEFFICIENT_PRIOR)}
        specs.update({k: _prior_spec(k, v) for k, v in (self.priors or {}).items()})
        unknown = sorted(set(specs) - set(names))
        if unknown:
            raise InvalidDataError(
                f"{type(self).__name__}: priors names {unknown}, which are not parameters "
                f"for these data ({', '.join(names)})."
            )
        return names, specs, twin._positive()

    def _simulated_statistics(self, params, arrays, rng) -> dict[str, float]:
        raise NotImplementedError

    def _statistics(self, arrays: dict[str, np.ndarray]) -> dict[str, float]:
        return purchase_statistics(arrays["frequency"], arrays["recency"], arrays["T"])

    # ---------------------------------------------------------- model comparison

    def loo(self) -> pd.Series:
        """Pareto-smoothed importance-sampling leave-one-out cross-validation.

        Identical customers have identical leave-one-out predictive densities, so the
        expected log predictive density is the weighted sum over patterns of each
        pattern's PSIS-LOO estimate (Vehtari, Gelman & Gabry 2017, eqs. 10 and 22);
        its standard error is that of the sum over all customers.

        Returns
        -------
        pandas.Series
            ``elpd_loo``, ``se``, ``p_loo``, ``n_customers``, ``max_pareto_k`` (above
            0.7 the estimate of that pattern is unreliable).
        """
        elpd, lppd, weights, pareto_k = self._pointwise_loo()
        n = float(weights.sum())
        total = float(weights @ elpd)
        mean = total / n
        variance = float(weights @ (elpd - mean) ** 2) / n
        return pd.Series({
            "elpd_loo": total, "se": math.sqrt(n * variance),
            "p_loo": float(weights @ (lppd - elpd)), "n_customers": n,
            "max_pareto_k": float(np.max(pareto_k)),
        }, name=type(self).__name__)  # fmt: skip

    def _pointwise_loo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per pattern: PSIS-LOO elpd, lppd, weight and Pareto k."""
        from scipy.special import logsumexp

        from ._compat import psis_log_weights

        self._check_fitted()
        group = getattr(self.idata_, "log_likelihood", None)
        if group is None or "patterns" not in group:
            raise ClvModelsError(
                f"{type(self).__name__}: the per-pattern log-likelihood was not kept "
                "(too many patterns x draws); thin the posterior or compress coarser data."
            )
        table = np.asarray(group["patterns"].values, dtype=np.float64)
        table = table.reshape(-1, table.shape[-1])  # (samples, patterns)
        weights = np.asarray(self.idata_.constant_data["pattern_weight"].values)
        # smoothed along the last axis: (patterns, samples)
        log_weights, pareto_k = psis_log_weights(table.T)
        log_weights = log_weights.T
        elpd = logsumexp(table + log_weights, axis=0)
        lppd = logsumexp(table, axis=0) - np.log(table.shape[0])
        return elpd, lppd, weights, np.asarray(pareto_k, dtype=np.float64)

    def _pattern_table(self) -> pd.DataFrame:
        data = self.idata_.constant_data
        names = [name for name in data.data_vars if str(name).startswith("pattern_")]
        return pd.DataFrame({str(name): np.asarray(data[name].values) for name in names})

    # ------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:  # type: ignore[override]
        """Write the posterior, priors and settings to one netCDF file."""
        self._check_fitted()
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        state = {
            "format": _FORMAT, "format_version": _FORMAT_VERSION, "package_version": __version__,
            "kind": self.kind, "class": type(self).__name__,
            "settings": {"priors": {k: [d, p] for k, (d, p) in self.prior_specs().items()},
                         "hdi_prob": self.hdi_prob, "columns": self.columns,
                         "prediction_draws": self.prediction_draws},
            "extra": self._bayes_extra_state(),
            "fit_settings": self.fit_settings_, "method": self.method_,
            "mle_params": None if self.mle_params_ is None else self.mle_params_.to_dict(),
            "map_params": (self.map_params_.to_dict() if getattr(self, "map_params_", None)
                           is not None else None),
            "n_customers": getattr(self, "n_customers_", None),
            "n_patterns": getattr(self, "n_patterns_", None),
            "time_unit": getattr(self, "time_unit_", None),
            "covariates": None if self._design() is None else self._design().to_state(),
        }  # fmt: skip
        self.idata_.attrs["clvmodels"] = json.dumps(state)
        temporary = path.with_name(path.name + ".tmp")
        self.idata_.to_netcdf(str(temporary))
        temporary.replace(path)
        return path

    def _bayes_extra_state(self) -> dict[str, Any]:
        return {}


def compare(models: Mapping[str, BayesianModel]) -> pd.DataFrame:
    """Rank Bayesian models fitted on the same customers by PSIS-LOO.

    The difference in expected log predictive density between two models is a sum over
    the same customers, so its standard error is computed from the paired per-customer
    differences (Vehtari, Gelman & Gabry 2017, eq. 24), each pattern counted with its
    weight; it is far smaller than either model's own ``se``.

    Parameters
    ----------
    models : dict of name -> fitted Bayesian model
        Purchase models fitted on the same data (the same patterns and weights).

    Returns
    -------
    pandas.DataFrame
        By decreasing ``elpd_loo``: ``elpd_loo``, ``p_loo``, ``elpd_diff`` (to the best),
        ``se_diff`` and ``max_pareto_k``.

    Examples
    --------
    >>> import clvmodels
    >>> from clvmodels import bayes
    >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
    >>> table = bayes.compare({
    ...     "bgnbd": bayes.BGNBD().fit(frame, method="map", draws=300),
    ...     "mbgnbd": bayes.MBGNBD().fit(frame, method="map", draws=300)})
    >>> list(table.columns)
    ['elpd_loo', 'p_loo', 'elpd_diff', 'se_diff', 'max_pareto_k']
    """
    if len(models) < 2:
        raise InvalidDataError("compare needs at least two models.")
    pointwise = {name: model._pointwise_loo() for name, model in models.items()}
    tables = {name: model._pattern_table() for name, model in models.items()}
    first = next(iter(models))
    for name in models:
        same = np.array_equal(pointwise[name][2], pointwise[first][2]) and tables[
            name
        ].reset_index(drop=True).equals(tables[first].reset_index(drop=True))
        if not same:
            raise InvalidDataError(
                f"compare: {name!r} and {first!r} were not fitted on the same customers "
                "(their patterns differ); LOO values are comparable only on the same data."
            )
    weights = pointwise[first][2]
    n = float(weights.sum())
    rows = {}
    for name, (elpd, lppd, _, pareto_k) in pointwise.items():
        rows[name] = {
            "elpd_loo": float(weights @ elpd), "p_loo": float(weights @ (lppd - elpd)),
            "max_pareto_k": float(np.max(pareto_k)),
        }  # fmt: skip
    best = max(rows, key=lambda name: rows[name]["elpd_loo"])
    for name, row in rows.items():
        difference = pointwise[best][0] - pointwise[name][0]
        mean = float(weights @ difference) / n
        variance = float(weights @ (difference - mean) ** 2) / n
        row["elpd_diff"] = float(weights @ difference)
        row["se_diff"] = math.sqrt(n * variance)
    table = pd.DataFrame(rows).T[["elpd_loo", "p_loo", "elpd_diff", "se_diff", "max_pareto_k"]]
    return table.sort_values("elpd_loo", ascending=False).rename_axis("model")


def load(path: str | Path) -> BayesianModel:
    """Load a Bayesian model written by ``save``, after checking the file.

    Nothing reaches the model before the file is checked: it must be netCDF that
    ArviZ reads, with the settings ``save`` writes in its attribute ``clvmodels``
    (strict JSON: ``format``, ``format_version`` 1, the only version so far, newer
    ones needing a newer clvmodels; known keys only, none missing; the model class;
    settings and priors as ``fit`` checks them; estimates in the support of the
    parameters), a ``posterior`` group holding every parameter with dimensions
    (chain, draw) and draws in the support, and, when the file keeps the per-pattern
    log-likelihood, the groups LOO reads with matching dimensions.

    Parameters
    ----------
    path : str or Path
        A file written by a Bayesian model's ``save``.

    Returns
    -------
    BayesianModel
        The fitted model, of the class that saved it.

    Raises
    ------
    InvalidDataError
        There is no such file, it is not netCDF, not a saved Bayesian model, damaged,
        or written by a newer clvmodels; the message names the file, the key or
        variable, and what to do.

    Examples
    --------
    >>> import clvmodels, tempfile, os
    >>> from clvmodels import bayes
    >>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
    >>> model = bayes.BGNBD().fit(frame, method="map", draws=100)
    >>> path = model.save(os.path.join(tempfile.mkdtemp(), "bgnbd.nc"))
    >>> bool((bayes.load(path).params_ == model.params_).all())
    True
    """
    from .. import registry

    refuse = Refusal(path, "a model saved by clvmodels.bayes")
    idata = _read_netcdf(path)
    text = idata.attrs.get("clvmodels")
    if not isinstance(text, str):
        raise refuse("it has no settings in its attribute 'clvmodels' (save() writes netCDF "
                     "with the settings there)")  # fmt: skip
    where = "the attribute 'clvmodels'"
    state = parse_json(text, refuse, where)
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise refuse(f"does not say format {_FORMAT!r}", where)
    check_format_version(state, _FORMAT_VERSION, path, refuse)
    check_keys(state, _STATE_KEYS, _LATER_STATE_KEYS, where, refuse)
    name = state["class"]
    kinds = {spec.class_name: spec.kind for spec in registry.MODELS.values()}
    if not (isinstance(name, str) and name in kinds):
        raise refuse(f"{shown(name)} is not a Bayesian model (those are "
                     f"{', '.join(sorted(kinds))})", "class")  # fmt: skip
    cls = registry.model_class(kinds[name], bayesian=True)
    if state["kind"] != cls.kind:
        raise refuse(f"{shown(state['kind'])} is not the kind of {name}, {cls.kind!r}",
                     "kind")  # fmt: skip
    model = _saved_bayes_settings(cls, state, refuse)
    _restore_design(model, state.get("covariates"), refuse)
    names = list(model.param_names)
    real = [n for n, p in zip(names, model._positive(), strict=True) if not p]
    _check_posterior(idata, model, refuse)
    _check_pointwise_groups(idata, refuse)
    mle, mode = state["mle_params"], state.get("map_params")
    mle = None if mle is None else saved_parameters(cls, mle, "mle_params", refuse,
                                                    names=names, real=real)  # fmt: skip
    mode = None if mode is None else saved_parameters(cls, mode, "map_params", refuse,
                                                      names=names, real=real)  # fmt: skip
    if state["method"] not in _METHODS:
        raise refuse(f"{shown(state['method'])} is not one of {', '.join(_METHODS)}",
                     "method")  # fmt: skip
    fit_settings = state["fit_settings"]
    if not isinstance(fit_settings, dict):
        raise refuse(f"is {shown(fit_settings)}, not a JSON object", "fit_settings")
    for key, value in fit_settings.items():
        number = finite_number(value)
        if not (value is None or isinstance(value, str | bool) or number is not None):
            raise refuse(f"is {shown(value)}, not a number or text", f"fit_settings[{key!r}]")
    check_counts(state, refuse, optional=True)
    check_time_unit(state["time_unit"], "time_unit", refuse)
    if not isinstance(state["package_version"], str):
        raise refuse(f"is {shown(state['package_version'])}, not a version string",
                     "package_version")  # fmt: skip

    model._patterns_fitted = None
    model.idata_ = idata
    model.method_ = state["method"]
    model.fit_settings_ = fit_settings
    model.mle_params_ = None if mle is None else pd.Series(mle, index=names, name="estimate")
    model.params_, model.covariance_ = _posterior_moments(model._posterior_matrix(), names)
    model.converged_ = True
    if mode is not None:
        model.map_params_ = pd.Series(mode, index=names, name="mode")
    for key in ("n_customers", "n_patterns", "time_unit"):
        if state[key] is not None:
            setattr(model, f"{key}_", state[key])
    return model


def _saved_bayes_settings(cls: type, state: dict[str, Any], refuse: Refusal) -> BayesianModel:
    """An unfitted ``cls`` with the saved settings and ``extra`` (the settings only
    some models have), checked as ``fit`` checks them."""
    settings, extra = state["settings"], state["extra"]
    check_keys(settings, _SETTINGS_KEYS, _LATER_SETTINGS_KEYS, "settings", refuse)
    own = sorted(set(cls._setting_names()) - {*_SETTINGS_KEYS, *_LATER_SETTINGS_KEYS})
    check_keys(extra, (), own, "extra", refuse)
    priors = settings["priors"]
    coefficients = [k for k in priors if _coefficient_name(k)] if isinstance(priors, dict) else []
    check_keys(priors, (), [*cls.param_names, *coefficients], "settings['priors']", refuse)
    # saved as [distribution, parameters]; anything else is refused by the check of
    # the priors in saved_settings
    priors = {k: tuple(v) if isinstance(v, list) else v for k, v in priors.items()}
    return saved_settings(cls, {**settings, "priors": priors, **extra}, refuse)


def _restore_design(model: BayesianModel, state: Any, refuse: Refusal) -> None:
    """The covariates' design saved with a model that has covariates (none without)."""
    from ..models._covariates import Design, covariate_settings

    if not model._has_covariates():
        if state is not None:
            raise refuse("describes covariates, but the settings name none", "covariates")
        return
    twin = model._twin()
    model.covariates_ = Design.from_state(covariate_settings(twin), state, refuse)
    model.param_names = (*type(model).param_names, *model.covariates_.names)
    unknown = sorted(set(model.prior_specs()) - set(model.param_names))
    if unknown:
        raise refuse(f"names priors of {unknown}, which are not coefficients of the model",
                     "settings['priors']")  # fmt: skip


def _check_posterior(idata: Any, model: BayesianModel, refuse: Refusal) -> None:
    """The ``posterior`` group has every parameter of ``model``, with dimensions (chain,
    draw) and draws in the support (finite numbers for covariate coefficients)."""
    posterior = getattr(idata, "posterior", None)
    if posterior is None:
        raise refuse("is missing", "the group 'posterior'")
    cls = type(model)
    for name, positive in zip(model.param_names, model._positive(), strict=True):
        where = f"the posterior variable {name!r}"
        if name not in posterior.data_vars:
            raise refuse("is missing", where)
        variable = posterior[name]
        if tuple(variable.dims) != ("chain", "draw"):
            raise refuse(f"has dimensions {shown(tuple(variable.dims))}, not ('chain', 'draw')",
                         where)  # fmt: skip
        if variable.size == 0:
            raise refuse("has no draws", where)
        if variable.dtype.kind not in "iuf":  # (numpy would read numeric text too)
            raise refuse(f"holds {variable.dtype}, not numbers", where)
        values = variable.values
        supported = cls._in_support(values) if positive else np.isfinite(values)
        if not np.all(supported):
            support = cls.param_support if positive else "a finite number"
            raise refuse(f"has a draw that is not {support}", where)


def _check_pointwise_groups(idata: Any, refuse: Refusal) -> None:
    """The per-pattern log-likelihood that LOO reads, when the file keeps it: draws of
    the posterior's (chain, draw) per pattern, and a weight per pattern."""
    group = getattr(idata, "log_likelihood", None)
    if group is None or "patterns" not in group.data_vars:
        return  # not kept (too many patterns x draws): loo() says so
    chains, draws = _chain_draw_shape(idata)
    table = group["patterns"]
    where = "the log_likelihood variable 'patterns'"
    if tuple(table.dims) != ("chain", "draw", "pattern"):
        raise refuse(f"has dimensions {shown(tuple(table.dims))}, not ('chain', 'draw', "
                     "'pattern')", where)  # fmt: skip
    if table.shape[:2] != (chains, draws):
        raise refuse(f"has {table.shape[0]} chains x {table.shape[1]} draws; the posterior "
                     f"has {chains} x {draws}", where)  # fmt: skip
    constant = getattr(idata, "constant_data", None)
    if constant is None or "pattern_weight" not in constant.data_vars:
        raise refuse("is missing (the weight of each pattern, which LOO needs)",
                     "the constant_data variable 'pattern_weight'")  # fmt: skip
    for name in constant.data_vars:
        variable = constant[name]
        where = f"the constant_data variable {str(name)!r}"
        if str(name).startswith("pattern_") and variable.dims != ("pattern",):
            raise refuse(f"has dimensions {shown(tuple(variable.dims))}, not ('pattern',)",
                         where)  # fmt: skip
    weights = constant["pattern_weight"]
    if weights.shape != (table.shape[2],):
        raise refuse(f"has {weights.size} weights for {table.shape[2]} patterns",
                     "the constant_data variable 'pattern_weight'")  # fmt: skip
    values = weights.values
    if weights.dtype.kind not in "iuf" or not np.all(np.isfinite(values) & (values >= 0)):
        raise refuse("has weights that are not finite numbers >= 0",
                     "the constant_data variable 'pattern_weight'")  # fmt: skip


def _posterior_moments(samples: np.ndarray, names: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    """``params_`` and ``covariance_`` of a posterior: mean and covariance of the draws
    (zero covariance for a single draw, a point mass)."""
    mean = pd.Series(samples.mean(axis=0), index=names, name="estimate")
    k = len(names)
    cov = np.cov(samples, rowvar=False) if len(samples) > 1 else np.zeros((k, k))
    return mean, pd.DataFrame(cov, index=names, columns=names)


# ---------------------------------------------------------------- helpers


def _posterior_output(summary: np.ndarray, index: pd.Index | None, name: str,
                      interval: float | None) -> Any:  # fmt: skip
    """The one output contract, from per-row (mean, HDI lower, HDI upper, sd):
    without an ``interval`` the posterior means (a Series indexed by ``index``, or a
    float when ``index`` is None); with one, ``estimate, lower, upper, sd`` (a
    DataFrame, or a Series for a single value), the interval a highest-density interval
    of probability ``interval``."""
    if interval is None:
        if index is None:
            return float(summary[0, 0])
        return pd.Series(summary[:, 0], index=index, name=name)
    if index is None:
        return pd.Series(dict(zip(_SUMMARY_COLUMNS, summary[0].tolist(), strict=True)),
                         name=name)  # fmt: skip
    frame = pd.DataFrame(summary, index=index, columns=_SUMMARY_COLUMNS)
    frame.attrs["hdi_prob"] = interval
    return frame


def _posterior_prediction(name: str, twin_method: Callable[..., Any]) -> Callable[..., Any]:
    """The Bayesian model's prediction ``name``: the twin's method, run on a twin that
    evaluates over this model's posterior. It returns what the twin returns: the point
    prediction (the posterior mean) without ``interval``, ``estimate, lower, upper``
    (plus ``sd``) with it, the interval a highest-density interval of probability
    ``interval``. (``model.draws(name, ...)`` runs it for the draws.)"""
    import functools

    @functools.wraps(twin_method)
    def prediction(self, *args: Any, interval: float | None = None, **kwargs: Any) -> Any:
        if "n_draws" in kwargs or "hdi_prob" in kwargs:
            raise TypeError(
                f"{type(self).__name__}.{name}: a Bayesian prediction uses the posterior "
                "draws (prediction_draws= in the constructor); give the level of its "
                "highest-density interval as interval=, e.g. 0.94."
            )
        if "return_draws" in kwargs:
            raise TypeError(
                f"{type(self).__name__}.{name}: the posterior draws come from "
                f"model.draws({name!r}, ...), an xarray (chain, draw, customer)."
            )
        if interval is not None:
            check_interval(interval)
        twin = self._predicting_twin()
        return getattr(twin, name)(*args, interval=interval, **kwargs)

    prediction.__doc__ = (
        f"{(twin_method.__doc__ or '').strip().splitlines()[0] if twin_method.__doc__ else ''}"
        "\n\n        Over the posterior: without ``interval`` the posterior mean (a Series "
        "per row, or a float); with ``interval`` a DataFrame ``estimate, lower, upper, sd`` "
        "(the interval a highest-density interval of that probability), as the "
        "maximum-likelihood twin returns ``estimate, lower, upper``. Computed over the "
        "posterior draws in bounded memory; the draws themselves come from "
        ":meth:`draws`. Other arguments as in the maximum-likelihood "
        f":meth:`{twin_method.__qualname__}`.\n"
    )
    return prediction


def _cumulative_purchases(self: BayesianModel, arrays: dict[str, np.ndarray],
                          params: dict[str, np.ndarray], t: float) -> np.ndarray:  # fmt: skip
    """The twin's E[X(T, T + t) | history] at given parameters (what predictive_clv and
    the evaluation ask of a purchase model)."""
    return self._twin()._cumulative_purchases(arrays, params, t)


def _coefficient_name(name: Any) -> bool:
    """Whether ``name`` has the form of a covariate coefficient (``purchase.x``)."""
    return isinstance(name, str) and name.split(".", 1)[0] in ("purchase", "dropout", "shared")


def _prior_spec(name: str, value: Any) -> tuple[str, dict[str, float]]:
    """``("Gamma", {"alpha": 2, "beta": 1})``, ``{"distribution": ..., "params": ...}``
    or ``["Gamma", {...}]`` -> (name, parameters)."""
    if isinstance(value, Mapping) and "distribution" in value:
        distribution, parameters = value["distribution"], value.get("params", {})
    elif isinstance(value, list | tuple) and len(value) == 2:
        distribution, parameters = value
    else:
        raise InvalidDataError(
            f"priors[{name!r}]={value!r}: give (distribution, parameters), e.g. "
            "('Gamma', {'alpha': 2.0, 'beta': 1.0}), or {'distribution': 'Gamma', "
            "'params': {...}}."
        )
    if not isinstance(distribution, str) or not isinstance(parameters, Mapping):
        raise InvalidDataError(f"priors[{name!r}]={value!r}: a name and a dict of parameters.")
    try:
        parameters = {str(k): float(v) for k, v in parameters.items()}
    except (TypeError, ValueError, OverflowError):
        raise InvalidDataError(f"priors[{name!r}]: parameters must be numbers.") from None
    if not all(np.isfinite(v) for v in parameters.values()):
        raise InvalidDataError(f"priors[{name!r}]: parameters must be finite numbers.")
    return distribution, parameters


def _log_scale_covariance(covariance: pd.DataFrame, params: np.ndarray,
                          positive: np.ndarray | None = None) -> np.ndarray | None:  # fmt: skip
    """The maximum-likelihood covariance of log(parameters) (delta method; of a
    covariate coefficient itself), or None where it is not a usable positive-definite
    matrix."""
    params = np.asarray(params, dtype=np.float64)
    scale = params if positive is None else np.where(positive, params, 1.0)
    cov = np.asarray(covariance, dtype=np.float64) / np.outer(scale, scale)
    if not np.all(np.isfinite(cov)):
        return None
    cov = (cov + cov.T) / 2
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return cov


# How many draws' worth of confidence the adaptive mass matrix gives its starting value
# (PyMC's adapt_full gives its identity start 10).
_START_WEIGHT = 10


def _informed_nuts(model, initvals, log_covariance, chains, random_seed, target_accept,
                   positive=None):  # fmt: skip
    """``pm.sample`` settings: NUTS with a dense mass matrix that starts at the
    maximum-likelihood covariance of the log parameters (PyMC's value variables) and
    keeps adapting, and chains started at draws around the estimate.

    PyMC's default (identity matrix, starts jittered by +-1 on the log scale) spends
    dozens of leapfrog steps per draw in tuning when the posterior is narrow (1M
    customers: posterior sd of log r about 0.003). The curvature at the estimate is
    known, so tuning starts from it. Every prior of a positive parameter is on a
    positive support, so the value variables are the log parameters (``positive``; a
    covariate coefficient is sampled as it is), in the order of ``param_names``.
    """
    import pymc as pm
    from pymc.step_methods.hmc.quadpotential import QuadPotentialFullAdapt

    from ._samplers import dispersed_starts

    names = list(initvals)
    positive = np.ones(len(names), bool) if positive is None else np.asarray(positive, bool)
    mean = np.array([initvals[name] for name in names], dtype=np.float64)
    mean[positive] = np.log(mean[positive])
    rng = np.random.default_rng([random_seed, 7])
    rows = dispersed_starts(mean, log_covariance, chains, rng)
    rows[:, positive] = np.exp(rows[:, positive])
    starts = [dict(zip(names, row.tolist(), strict=True)) for row in rows]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental feature.*")
        potential = QuadPotentialFullAdapt(mean.size, mean, log_covariance, _START_WEIGHT)
    with model:
        step = pm.NUTS(potential=potential, target_accept=target_accept)
    return {"step": step, "initvals": starts}


class _restore_level:
    """Context manager putting a logger's level back on exit."""

    def __init__(self, logger: Any, level: int) -> None:
        self.logger, self.level = logger, level

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        self.logger.setLevel(self.level)


def _require_sampler(sampler: str) -> None:
    import importlib.util

    module = {"nutpie": "nutpie", "numpyro": "numpyro"}[sampler]
    if importlib.util.find_spec(module) is None:
        raise InvalidDataError(
            f"sampler={sampler!r} needs the optional package {module}: pip install "
            f"\"clvmodels[{module}]\", or use the default sampler='clvmodels'."
        )


def _chain_draw_shape(idata: Any) -> tuple[int, int]:
    posterior = idata.posterior
    sizes = posterior.sizes if hasattr(posterior, "sizes") else posterior.dims
    return int(sizes["chain"]), int(sizes["draw"])


def _inference_data(posterior: dict[str, np.ndarray]) -> Any:
    from ._compat import inference_data

    return inference_data(posterior)


def _add_group(idata: Any, name: str, dataset: Any) -> None:
    if hasattr(idata, "add_groups"):  # ArviZ 0.x InferenceData
        if name in getattr(idata, "_groups", []):
            delattr(idata, name)
            idata._groups.remove(name)
        idata.add_groups({name: dataset})
    else:  # ArviZ 1.x: an xarray DataTree
        idata[name] = dataset


def _read_netcdf(path: str | Path) -> Any:
    import arviz as az

    if not Path(path).is_file():
        raise InvalidDataError(f"{path}: no such file.")
    try:
        return az.from_netcdf(str(path))
    except Exception as error:
        detail = clipped(str(error) or type(error).__name__, 200)
        raise InvalidDataError(
            f"{path}: cannot read it as netCDF ({detail}); bayes.load reads the files a "
            "Bayesian model's save() writes."
        ) from None

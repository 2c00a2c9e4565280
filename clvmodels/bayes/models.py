"""The Bayesian models: each composes its maximum-likelihood twin and adds priors.

Default priors are weakly informative and the same rule for every model: LogNormal(0, 2)
on shape parameters, whose meaning does not depend on units (95 % of the prior mass
between 0.02 and 50), and LogNormal(0, 3) on scale parameters, which are measured in the
data's time unit or currency (between 0.003 and 360: a purchase-rate scale ``alpha``
of 4 weeks and of 28 days are both well inside). Replace any of them with
``priors={"r": ("Gamma", {"alpha": 2.0, "beta": 4.0})}`` (any positive PyMC
distribution) or, in an experiment file, ``priors: {r: {distribution: Gamma, params:
{alpha: 2, beta: 4}}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import registry, simulate
from ..models import bgbb, bgnbd, gamma_gamma, mbgnbd, pnbd, sbg
from ..models._covariates import KEY
from ..registry import Prior
from ._base import BayesianModel, purchase_statistics


def _simulated_purchases(simulator, params, arrays, rng) -> dict[str, float]:
    base = {k: v for k, v in params.items() if "." not in k}
    covariates = {k[len(KEY):]: v for k, v in arrays.items() if k.startswith(KEY)}
    effects: dict[str, dict[str, float]] = {"purchase": {}, "dropout": {}}
    for name, value in params.items():
        if "." in name:  # process.term; a shared coefficient enters both processes
            process, term = name.split(".", 1)
            for target in (("purchase", "dropout") if process == "shared" else (process,)):
                effects[target][term] = value
    extra = {}
    if covariates:
        extra = {"covariates": covariates, "purchase_coefficients": effects["purchase"],
                 "dropout_coefficients": effects["dropout"]}  # fmt: skip
    sim = simulator(len(arrays["T"]), T=arrays["T"], random_state=rng, **base, **extra)
    return purchase_statistics(sim["frequency"], sim["recency"], sim["T"])


class _PurchaseModel(BayesianModel):
    """The continuous-time purchase models, with static covariates as their twins
    (``purchase_covariates``, ``dropout_covariates``, ``shared_covariates``; see
    :mod:`clvmodels.models._covariates`). A coefficient's default prior is
    Normal(0, 2): an effect of e^2 (a factor 7.4) per unit of the covariate is two prior
    standard deviations out. The priors, not a penalty, regularise the coefficients."""

    def __init__(
        self,
        *,
        priors: Mapping[str, Any] | None = None,
        hdi_prob: float = 0.94,
        prediction_draws: int | None = 1000,
        columns: Mapping[str, str] | None = None,
        purchase_covariates: Sequence[str] | None = None,
        dropout_covariates: Sequence[str] | None = None,
        shared_covariates: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            priors=priors, hdi_prob=hdi_prob, prediction_draws=prediction_draws, columns=columns
        )
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates
        self.shared_covariates = shared_covariates

    def _twin_settings(self) -> dict[str, Any]:
        return {"purchase_covariates": self.purchase_covariates,
                "dropout_covariates": self.dropout_covariates,
                "shared_covariates": self.shared_covariates}  # fmt: skip

    def _bayes_extra_state(self) -> dict[str, Any]:
        return {k: (None if v is None else list(v)) for k, v in self._twin_settings().items()}

__all__ = ["BGBB", "BGNBD", "MBGNBD", "GammaGamma", "ParetoNBD", "ShiftedBetaGeometric"]



class BGNBD(_PurchaseModel):
    """BG/NBD (Fader, Hardie & Lee 2005) with priors, sampled by NUTS.

    Parameters
    ----------
    priors : dict, optional
        Prior per parameter (``r``, ``alpha``, ``a``, ``b``), replacing the defaults
        (LogNormal(0, 2) on ``r``, ``a``, ``b``; LogNormal(0, 3) on the scale ``alpha``).
    hdi_prob : float, default 0.94
        Probability of the highest-density intervals of predictions and summaries.
    prediction_draws : int or None, default 1000
        Posterior draws (evenly thinned) behind each prediction; None uses every draw.
        Predictions cost (draws x distinct customer patterns) evaluations, computed in
        bounded memory whatever the number.
    columns : dict, optional
        Column names for the roles ``frequency``, ``recency``, ``T``.
    purchase_covariates, dropout_covariates, shared_covariates : list of str, optional
        Static covariates, as in the maximum-likelihood model; each coefficient has
        the prior Normal(0, 2) unless ``priors`` names it (``"purchase.female"``).

    Examples
    --------
    >>> import clvmodels
    >>> from clvmodels.bayes import BGNBD
    >>> frame = clvmodels.calibration_holdout(clvmodels.datasets.load_cdnow(),
    ...     calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")
    >>> model = BGNBD().fit(frame, method="map", draws=500)
    >>> type(model.expected_purchases(frame, 39)).__name__      # posterior means
    'Series'
    >>> list(model.expected_purchases(frame, 39, interval=0.9).columns)
    ['estimate', 'lower', 'upper', 'sd']
    """

    twin_class = bgnbd.BGNBD
    default_priors: ClassVar[dict[str, Prior]] = registry.get("bgnbd").priors

    def _simulated_statistics(self, params, arrays, rng):
        return _simulated_purchases(simulate.simulate_bgnbd, params, arrays, rng)


class MBGNBD(_PurchaseModel):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007) with priors; as :class:`BGNBD`."""

    twin_class = mbgnbd.MBGNBD
    default_priors: ClassVar[dict[str, Prior]] = registry.get("mbgnbd").priors

    def _simulated_statistics(self, params, arrays, rng):
        return _simulated_purchases(simulate.simulate_mbgnbd, params, arrays, rng)


class ParetoNBD(_PurchaseModel):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987) with priors: LogNormal(0, 2) on
    the shapes ``r``, ``s`` and LogNormal(0, 3) on the scales ``alpha``, ``beta``."""

    twin_class = pnbd.ParetoNBD
    default_priors: ClassVar[dict[str, Prior]] = registry.get("pnbd").priors

    def _simulated_statistics(self, params, arrays, rng):
        return _simulated_purchases(simulate.simulate_pnbd, params, arrays, rng)


class BGBB(BayesianModel):
    """BG/BB (Fader, Hardie & Shang 2010) with priors: LogNormal(0, 2) on all four
    Beta parameters (``alpha``, ``beta``, ``gamma``, ``delta``)."""

    twin_class = bgbb.BGBB
    default_priors: ClassVar[dict[str, Prior]] = registry.get("bgbb").priors

    def _statistics(self, arrays):
        return purchase_statistics(arrays["frequency"], arrays["recency"], arrays["n_periods"])

    def _simulated_statistics(self, params, arrays, rng):
        frequency, recency, periods = [], [], []
        for n in np.unique(arrays["n_periods"]):
            count = int(np.sum(arrays["n_periods"] == n))
            sim = simulate.simulate_bgbb(
                count, n_periods=int(n), random_state=rng, **params
            )
            frequency.append(sim["frequency"])
            recency.append(sim["recency"])
            periods.append(sim["n_periods"])
        return purchase_statistics(
            np.concatenate(frequency), np.concatenate(recency), np.concatenate(periods)
        )


class ShiftedBetaGeometric(BayesianModel):
    """Shifted beta-geometric (Fader & Hardie 2007) with LogNormal(0, 2) priors on the
    Beta parameters ``alpha``, ``beta``."""

    twin_class = sbg.ShiftedBetaGeometric
    default_priors: ClassVar[dict[str, Prior]] = registry.get("sbg").priors

    def _statistics(self, arrays):
        return _retention_statistics(arrays)

    def _simulated_statistics(self, params, arrays, rng):
        survival = sbg.survival(np.arange(1.0, 5.0), **params)
        return {f"survival_{t}": float(v) for t, v in zip(range(1, 5), survival, strict=True)}


class GammaGamma(BayesianModel):
    """Gamma-Gamma spend model (Fader & Hardie 2013) with priors: LogNormal(0, 2) on the
    shapes ``p``, ``q`` and LogNormal(0, 3) on the scale ``gamma`` (in currency units).

    ``drop_zero_values`` as in the maximum-likelihood model.
    """

    twin_class = gamma_gamma.GammaGamma
    default_priors: ClassVar[dict[str, Prior]] = registry.get("gamma_gamma").priors

    def __init__(
        self,
        *,
        priors: Mapping[str, Any] | None = None,
        hdi_prob: float = 0.94,
        prediction_draws: int | None = 1000,
        columns: Mapping[str, str] | None = None,
        drop_zero_values: bool = False,
    ) -> None:
        super().__init__(
            priors=priors, hdi_prob=hdi_prob, prediction_draws=prediction_draws, columns=columns
        )
        self.drop_zero_values = drop_zero_values

    def _bayes_extra_state(self) -> dict[str, Any]:
        return {"drop_zero_values": self.drop_zero_values}

    def _twin_settings(self) -> dict[str, Any]:
        return {"drop_zero_values": self.drop_zero_values}

    def _require_finite_mean(self) -> None:
        """The twin's check (q > 1) at the posterior mean, as the predictions make it."""
        self._predicting_twin()._require_finite_mean()

    def _fitting_twin(self) -> gamma_gamma.GammaGamma:
        twin = super()._fitting_twin()
        # the likelihood samples the patterns the maximum-likelihood fit saw, and the
        # prior on gamma is in currency units: both need the values unscaled
        twin._rescaled_fit = False
        return twin

    def _statistics(self, arrays):
        repeat = arrays["frequency"] > 0
        return _spend_statistics(arrays["monetary_value"][repeat])

    def _simulated_statistics(self, params, arrays, rng):
        frequency = arrays["frequency"][arrays["frequency"] > 0]
        spend = simulate.simulate_gamma_gamma(frequency, random_state=rng, **params)
        values = spend["monetary_value"] if hasattr(spend, "columns") else spend
        return _spend_statistics(np.asarray(values, dtype=np.float64))


def _spend_statistics(values: np.ndarray) -> dict[str, float]:
    return {
        "mean_value": float(np.mean(values)), "median_value": float(np.median(values)),
        "p90_value": float(np.quantile(values, 0.9)),
    }  # fmt: skip


def _retention_statistics(arrays) -> dict[str, float]:
    """Share of customers still active after t = 1..4 periods (as observed)."""
    lifetime, censored = arrays["lifetime"], arrays["censored"] > 0
    return {
        f"survival_{t}": float(np.mean((lifetime > t) | (censored & (lifetime >= t))))
        for t in range(1, 5)
    }

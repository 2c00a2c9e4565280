"""BG/NBD: the beta-geometric / negative binomial distribution model.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers the easy
way: an alternative to the Pareto/NBD model". Marketing Science 24(2), 275-284.

While alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha) (shape, rate);
after each repeat purchase they become inactive with probability p ~ Beta(a, b). The
formulas are in :mod:`clvmodels.models._betageo` (shared with MBG/NBD), with their
equation numbers.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from . import _betageo
from ._purchase import PurchaseModel

__all__ = ["BGNBD"]


class BGNBD(PurchaseModel):
    """BG/NBD model fitted by maximum likelihood.

    Parameters
    ----------
    penalizer : float, default 0
        Adds ``penalizer * sum(params**2)`` to the mean negative log-likelihood.
    initial_params : dict, optional
        Start values ``{"r", "alpha", "a", "b"}``; by default derived from the data.
    tol : float, default 1e-9
        Gradient tolerance of the optimiser (on the mean log-likelihood).
    max_iter : int, default 2000
        Iteration budget of the optimiser.
    columns : dict, optional
        Column names for the roles ``frequency``, ``recency``, ``T`` when they differ;
        ``frequency_cal`` etc. are found on their own.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha`` (purchase rate: Gamma shape and rate), ``a``, ``b`` (dropout
        probability: Beta).
    covariance_ : pandas.DataFrame
        Asymptotic covariance of the estimates.
    log_likelihood_, aic_, bic_ : float
        Total log-likelihood over customers (as in the papers) and criteria.
    n_customers_, n_patterns_ : int
        Customers (sum of weights) and rows fitted.
    converged_ : bool
    time_unit_ : str or None
        Time unit of the summary fitted, when it came from ``summarize``.

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W")
    >>> model = clvmodels.BGNBD().fit(frame)
    >>> model.params_.round(4).tolist()
    [0.2426, 4.4136, 0.7929, 2.4259]
    >>> round(model.log_likelihood_, 2)
    -9582.43
    """

    kind = "bgnbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    # CLVTools' parameterisation (see clvmodels.models._covariates)
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("purchase", -1), "a": ("dropout", 1), "b": ("dropout", 1),
    }

    _f_log_likelihood = staticmethod(partial(_betageo.log_likelihood, shift=0))
    _f_expected_purchases = staticmethod(partial(_betageo.expected_purchases, shift=0))
    _f_probability_alive = staticmethod(partial(_betageo.probability_alive, shift=0))
    _f_probability_purchases = staticmethod(partial(_betageo.probability_purchases, shift=0))
    _f_probability_repurchase = staticmethod(
        partial(_betageo.probability_repurchase_new, shift=0)
    )
    _f_weighted_patterns = staticmethod(partial(_betageo.WeightedPatterns, shift=0))
    _f_weighted_log_likelihood = staticmethod(_betageo.weighted_log_likelihood)

    def _initial_values(self, data, weights):
        return _betageo.start_values(data, weights)

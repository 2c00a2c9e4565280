"""MBG/NBD: the modified BG/NBD model.

Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). "Empirical validation and
comparison of models for customer base analysis". International Journal of Research in
Marketing 24(3), 201-209.

As BG/NBD, but a customer may also become inactive right after the first purchase, so
customers without repeat purchases are not all certainly alive. The formulas are in
:mod:`clvmodels.models._betageo` with ``shift=1``.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from . import _betageo
from ._purchase import PurchaseModel

__all__ = ["MBGNBD"]


class MBGNBD(PurchaseModel):
    """MBG/NBD model fitted by maximum likelihood.

    Parameters and attributes are those of :class:`~clvmodels.BGNBD`: ``r``, ``alpha``
    (purchase rate), ``a``, ``b`` (dropout probability after each purchase, including
    the first).

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W")
    >>> clvmodels.MBGNBD().fit(frame).params_.round(3).tolist()
    [0.525, 6.183, 0.891, 1.614]
    """

    kind = "mbgnbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    # CLVTools' parameterisation (see clvmodels.models._covariates)
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("purchase", -1), "a": ("dropout", 1), "b": ("dropout", 1),
    }

    _f_log_likelihood = staticmethod(partial(_betageo.log_likelihood, shift=1))
    _f_expected_purchases = staticmethod(partial(_betageo.expected_purchases, shift=1))
    _f_probability_alive = staticmethod(partial(_betageo.probability_alive, shift=1))
    _f_probability_purchases = staticmethod(partial(_betageo.probability_purchases, shift=1))
    _f_probability_repurchase = staticmethod(
        partial(_betageo.probability_repurchase_new, shift=1)
    )
    _f_weighted_patterns = staticmethod(partial(_betageo.WeightedPatterns, shift=1))
    _f_weighted_log_likelihood = staticmethod(_betageo.weighted_log_likelihood)

    def _initial_values(self, data, weights):
        return _betageo.start_values(data, weights)

"""The models of :mod:`clvmodels.models` with priors, fitted by NUTS in PyMC (or at the
posterior mode), with credible intervals on every prediction.

Each Bayesian model calls the likelihood of its maximum-likelihood twin on compressed
patterns, so its cost grows with distinct patterns, not customers, and the two share one
formula. PyMC and ArviZ are imported on first use.

Examples
--------
>>> import clvmodels
>>> from clvmodels import bayes
>>> frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W")
>>> model = bayes.BGNBD().fit(frame, method="map", draws=200)
>>> list(model.summary().columns)[:4]      # the same table as maximum likelihood
['estimate', 'std_error', 'lower', 'upper']
"""

from __future__ import annotations

import importlib
from typing import Any

from .. import registry as _registry

_LAZY = {
    # the Bayesian twin of every model the registry declares
    **{spec.class_name: "clvmodels.bayes.models" for spec in _registry.MODELS.values()},
    "BayesianModel": "clvmodels.bayes._base",
    "compare": "clvmodels.bayes._base",
    "hdi_bounds": "clvmodels.bayes._base",
    "load": "clvmodels.bayes._base",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

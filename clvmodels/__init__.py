"""clvmodels: probabilistic customer-lifetime-value models.

From raw transactions to per-customer summaries, BTYD models fitted by maximum
likelihood or in PyMC, predictions with uncertainty, historical vs predictive CLV and
holdout evaluation.

Attributes load on first use, so ``import clvmodels`` stays fast: pandas and SciPy come
with the first function called, and the heavy optional libraries (PyMC, ArviZ,
matplotlib, DuckDB, scikit-learn, PySpark) only with the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import registry as _registry
from ._version import __version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "summarize": "clvmodels.data.summary",
    "calibration_holdout": "clvmodels.data.summary",
    "compress": "clvmodels.data.summary",
    "covariate_history": "clvmodels.data.dynamic",
    "summarize_opportunities": "clvmodels.data.opportunities",
    "calibration_holdout_opportunities": "clvmodels.data.opportunities",
    "duration_in_units": "clvmodels.data.timeunits",
    "time_unit_nanoseconds": "clvmodels.data.timeunits",
    "load": "clvmodels.models._base",
    "predictive_clv": "clvmodels.clv",
    "historical_clv": "clvmodels.historical",
    "cohort_table": "clvmodels.historical",
    "compare_clv": "clvmodels.historical",
    "evaluate": "clvmodels.evaluation",
    "conditional_expectations": "clvmodels.evaluation",
    "tracking": "clvmodels.evaluation",
    "likelihood_ratio_test": "clvmodels.evaluation",
    "score": "clvmodels.scoring",
    "score_frame": "clvmodels.scoring",
    "segment_value": "clvmodels.economics",
    "payback_curves": "clvmodels.economics",
    "cohort_retention": "clvmodels.economics",
    "subscription_retention": "clvmodels.economics",
}
# the model classes, where the registry declares them
_LAZY.update({spec.class_name: spec.module for spec in _registry.MODELS.values()})
_SUBMODULES = {
    "clv", "data", "datasets", "economics", "evaluation", "exceptions", "experiments",
    "historical",
    "models", "plotting", "registry", "scoring", "simulate",
}

__all__ = [
    "BGBB",
    "BGNBD",
    "MBGNBD",
    "GammaGamma",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "__version__",
    "calibration_holdout",
    "calibration_holdout_opportunities",
    "clv",
    "cohort_retention",
    "cohort_table",
    "compare_clv",
    "compress",
    "conditional_expectations",
    "covariate_history",
    "data",
    "datasets",
    "duration_in_units",
    "economics",
    "evaluate",
    "evaluation",
    "exceptions",
    "experiments",
    "historical",
    "historical_clv",
    "likelihood_ratio_test",
    "load",
    "models",
    "payback_curves",
    "plotting",
    "predictive_clv",
    "registry",
    "score",
    "score_frame",
    "scoring",
    "segment_value",
    "simulate",
    "subscription_retention",
    "summarize",
    "summarize_opportunities",
    "time_unit_nanoseconds",
    "tracking",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import (
        clv,
        data,
        datasets,
        economics,
        evaluation,
        exceptions,
        experiments,
        historical,
        models,
        plotting,
        scoring,
        simulate,
    )
    from .clv import predictive_clv
    from .data.dynamic import covariate_history
    from .data.opportunities import calibration_holdout_opportunities, summarize_opportunities
    from .data.summary import calibration_holdout, compress, summarize
    from .data.timeunits import duration_in_units, time_unit_nanoseconds
    from .economics import (
        cohort_retention,
        payback_curves,
        segment_value,
        subscription_retention,
    )
    from .evaluation import conditional_expectations, evaluate, likelihood_ratio_test, tracking
    from .historical import cohort_table, compare_clv, historical_clv
    from .models._base import load
    from .models.bgbb import BGBB
    from .models.bgnbd import BGNBD
    from .models.gamma_gamma import GammaGamma
    from .models.mbgnbd import MBGNBD
    from .models.pnbd import ParetoNBD
    from .models.sbg import ShiftedBetaGeometric
    from .scoring import score, score_frame


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'clvmodels' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

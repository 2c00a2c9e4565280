"""Data layer: transaction logs to per-customer summaries and compressed patterns.

Names load on first use, so that :mod:`clvmodels.data.timeunits` (numpy only) can be
imported without pandas, which :mod:`clvmodels.data.summary` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_LAZY: dict[str, str] = {
    "calibration_holdout": "summary",
    "compress": "summary",
    "covariate_history": "dynamic",
    "summarize": "summary",
    "calibration_holdout_opportunities": "opportunities",
    "summarize_opportunities": "opportunities",
    "duration_in_units": "timeunits",
    "time_unit_nanoseconds": "timeunits",
}

__all__ = [
    "calibration_holdout",
    "calibration_holdout_opportunities",
    "compress",
    "covariate_history",
    "duration_in_units",
    "summarize",
    "summarize_opportunities",
    "time_unit_nanoseconds",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .dynamic import covariate_history
    from .opportunities import calibration_holdout_opportunities, summarize_opportunities
    from .summary import calibration_holdout, compress, summarize
    from .timeunits import duration_in_units, time_unit_nanoseconds


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Data layer: transaction logs to per-customer summaries and compressed patterns."""

from .summary import calibration_holdout, compress, summarize
from .timeunits import duration_in_units, time_unit_nanoseconds

__all__ = [
    "calibration_holdout",
    "compress",
    "duration_in_units",
    "summarize",
    "time_unit_nanoseconds",
]

"""Time units and granularity windows: the one place that says how time is counted.

Two settings shape every summary and are independent of each other:

* ``time_unit`` is the unit that recency, T and holdout durations are *measured* in.
  It is a fixed length of time: ``"s"``, ``"min"``, ``"h"``, ``"D"`` (day), ``"W"``
  (7 days), ``"M"`` (month), ``"Q"`` (quarter) or ``"Y"`` (year), optionally with a
  multiple such as ``"7D"`` or ``"2W"``. A month is the average Gregorian-Julian month,
  365.25 / 12 = 30.4375 days, a quarter three such months and a year 365.25 days, so
  that durations are exact multiples of each other (12 "M" == 1 "Y" == 52.18 "W") and a
  horizon or discount rate can be converted between units without calendar arithmetic.
* ``granularity`` is the window within which several purchases count as one
  transaction. Fixed windows (``"s"``, ``"min"``, ``"h"``, ``"D"`` and their multiples,
  e.g. ``"6h"`` or ``"2D"``) are aligned on the Unix epoch, 1970-01-01 00:00; calendar
  windows are the calendar week starting on Monday (``"W"``), month (``"M"``), quarter
  (``"Q"``) and year (``"Y"``). A purchase's time is the start of its window.

The CDNOW papers merge same-day purchases (``granularity="D"``) and measure in weeks
(``time_unit="W"``): a recency of 213 days is 30.43 weeks.

Everything here works on int64 nanoseconds since the epoch, so that the pandas engine,
the SQL engines and the models share one arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..exceptions import InvalidDataError

__all__ = ["Granularity", "parse_granularity", "time_unit_nanoseconds"]

NS_PER_DAY = 86_400 * 10**9
DAYS_PER_YEAR = 365.25

_FIXED_NS = {
    "ns": 1,
    "us": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "min": 60 * 10**9,
    "h": 3_600 * 10**9,
    "D": NS_PER_DAY,
    "W": 7 * NS_PER_DAY,
}
# Average lengths (see the module docstring); used only for measuring, never for windows.
_AVERAGE_NS = {
    "M": DAYS_PER_YEAR / 12 * NS_PER_DAY,
    "Q": DAYS_PER_YEAR / 4 * NS_PER_DAY,
    "Y": DAYS_PER_YEAR * NS_PER_DAY,
}
_ALIASES = {
    "d": "D", "day": "D", "days": "D",
    "w": "W", "week": "W", "weeks": "W",
    "month": "M", "months": "M",
    "q": "Q", "quarter": "Q", "quarters": "Q",
    "y": "Y", "year": "Y", "years": "Y",
    "hour": "h", "hours": "h", "H": "h",
    "minute": "min", "minutes": "min", "T": "min",
    "second": "s", "seconds": "s", "S": "s",
}  # fmt: skip
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*$")


def _split(spec: str, setting: str) -> tuple[float, str]:
    match = _SPEC.match(str(spec))
    unit = None
    if match:
        unit = match.group(2)
        unit = _ALIASES.get(unit, unit)
    if unit is None or (unit not in _FIXED_NS and unit not in _AVERAGE_NS):
        raise InvalidDataError(
            f"{setting}={spec!r} is not a time unit. Use 's', 'min', 'h', 'D', 'W', 'M', "
            "'Q' or 'Y', optionally with a multiple such as '7D' or '2W'."
        )
    multiple = float(match.group(1)) if match.group(1) else 1.0
    if multiple <= 0:
        raise InvalidDataError(f"{setting}={spec!r}: the multiple must be positive.")
    return multiple, unit


def time_unit_nanoseconds(time_unit: str) -> float:
    """Length of one ``time_unit`` in nanoseconds.

    Parameters
    ----------
    time_unit : str
        ``"D"``, ``"W"``, ``"M"``, ``"Y"``, ... optionally with a multiple (``"7D"``).

    Returns
    -------
    float
        Nanoseconds in one unit; months and years are average lengths (30.4375 and
        365.25 days).

    Examples
    --------
    >>> time_unit_nanoseconds("W") / time_unit_nanoseconds("D")
    7.0
    >>> time_unit_nanoseconds("Y") / time_unit_nanoseconds("M")
    12.0
    """
    multiple, unit = _split(time_unit, "time_unit")
    base = _FIXED_NS.get(unit) or _AVERAGE_NS[unit]
    return multiple * base


def duration_in_units(duration: str, time_unit: str, setting: str = "horizon") -> float:
    """Express a duration such as ``"12M"`` or ``"52W"`` in ``time_unit``.

    Examples
    --------
    >>> round(duration_in_units("1Y", "W"), 4)
    52.1786
    """
    if not _SPEC.match(str(duration)):
        # blamed as a duration: a bare number would otherwise read as a bad time unit
        raise InvalidDataError(
            f"{setting}={duration!r} is not a duration: give a number and a unit, such as "
            "'12M', '52W', '90D' or '1Y'."
        )
    multiple, unit = _split(duration, setting)
    ns = multiple * (_FIXED_NS.get(unit) or _AVERAGE_NS[unit])
    return ns / time_unit_nanoseconds(time_unit)


@dataclass(frozen=True)
class Granularity:
    """A window within which purchases merge into one transaction.

    ``kind`` is ``"fixed"`` (``width_ns`` wide, aligned on the epoch) or one of the
    calendar kinds ``"week"``, ``"month"``, ``"quarter"``, ``"year"``.
    """

    spec: str
    kind: str
    width_ns: int = 0

    def index(self, ns: np.ndarray) -> np.ndarray:
        """Number of the window of each time (int64 ns since the epoch).

        Consecutive windows have consecutive numbers, so counting distinct windows and
        comparing them needs only integer arithmetic.
        """
        ns = np.asarray(ns, dtype=np.int64)
        if self.kind == "fixed":
            return ns // self.width_ns
        if self.kind == "week":
            # 1970-01-01 was a Thursday: shift by 3 days so that weeks start on Monday.
            return (ns // NS_PER_DAY + 3) // 7
        months = ns.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        return months // _MONTHS_PER_WINDOW[self.kind]

    def start_ns(self, index: np.ndarray) -> np.ndarray:
        """Start of window number ``index`` in int64 ns since the epoch."""
        index = np.asarray(index, dtype=np.int64)
        if self.kind == "fixed":
            return index * self.width_ns
        if self.kind == "week":
            return (index * 7 - 3) * NS_PER_DAY
        months = index * _MONTHS_PER_WINDOW[self.kind]
        return months.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)

    def floor(self, ns: np.ndarray) -> np.ndarray:
        """Start of the window of each time (int64 ns since the epoch)."""
        return self.start_ns(self.index(ns))


_MONTHS_PER_WINDOW = {"month": 1, "quarter": 3, "year": 12}


def parse_granularity(granularity: str) -> Granularity:
    """Parse a granularity setting.

    Examples
    --------
    >>> parse_granularity("D").width_ns == 86_400 * 10**9
    True
    >>> parse_granularity("M").kind
    'month'
    """
    multiple, unit = _split(granularity, "granularity")
    calendar = {"W": "week", "M": "month", "Q": "quarter", "Y": "year"}
    if unit in calendar:
        if multiple != 1:
            raise InvalidDataError(
                f"granularity={granularity!r}: calendar windows (W, M, Q, Y) take no "
                "multiple. Use a fixed window such as '14D' instead."
            )
        return Granularity(str(granularity), calendar[unit])
    width = multiple * _FIXED_NS[unit]
    if width != int(width) or width < 1:
        raise InvalidDataError(f"granularity={granularity!r} is not a whole number of ns.")
    return Granularity(str(granularity), "fixed", int(width))

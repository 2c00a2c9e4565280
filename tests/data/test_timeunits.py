"""Time units measure, granularities group: check both against the calendar."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from clvmodels.data.timeunits import (
    duration_in_units,
    parse_granularity,
    time_unit_nanoseconds,
)
from clvmodels.exceptions import InvalidDataError

DAY = 86_400 * 10**9


@pytest.mark.parametrize(
    ("unit", "days"),
    [("D", 1), ("W", 7), ("7D", 7), ("2W", 14), ("M", 30.4375), ("Q", 91.3125),
     ("Y", 365.25), ("h", 1 / 24), ("weeks", 7), ("1.5D", 1.5)],
)  # fmt: skip
def test_time_unit_lengths(unit: str, days: float) -> None:
    assert time_unit_nanoseconds(unit) == pytest.approx(days * DAY)


def test_durations_convert_between_units() -> None:
    assert duration_in_units("52W", "D") == 364
    assert duration_in_units("1Y", "M") == pytest.approx(12)
    assert duration_in_units("6M", "W") == pytest.approx(182.625 / 7)


@pytest.mark.parametrize("bad", ["m", "fortnight", "0D", "", "W7"])
def test_bad_time_units(bad: str) -> None:
    with pytest.raises(InvalidDataError, match="time_unit"):
        time_unit_nanoseconds(bad)


def _ns(stamps: list[str]) -> np.ndarray:
    return pd.to_datetime(stamps).to_numpy(dtype="datetime64[ns]").view(np.int64)


@pytest.mark.parametrize(
    ("granularity", "stamp", "start"),
    [
        ("D", "2024-03-05 17:45", "2024-03-05"),
        ("h", "2024-03-05 17:45", "2024-03-05 17:00"),
        ("6h", "2024-03-05 17:45", "2024-03-05 12:00"),
        ("W", "2024-03-10 23:00", "2024-03-04"),  # Sunday -> Monday of its week
        ("W", "2024-03-04 00:00", "2024-03-04"),
        ("W", "1969-12-31", "1969-12-29"),  # before the epoch too
        ("M", "2024-02-29 12:00", "2024-02-01"),
        ("Q", "2024-08-15", "2024-07-01"),
        ("Y", "2024-08-15", "2024-01-01"),
    ],
)
def test_windows_start_where_the_calendar_says(granularity: str, stamp: str, start: str) -> None:
    window = parse_granularity(granularity)
    assert window.floor(_ns([stamp]))[0] == _ns([start])[0]


@pytest.mark.parametrize("granularity", ["D", "W", "M", "Q", "Y", "h"])
def test_consecutive_windows_have_consecutive_numbers(granularity: str) -> None:
    window = parse_granularity(granularity)
    stamps = _ns(list(pd.date_range("2023-12-01", "2025-02-01", freq="37h").astype(str)))
    index = window.index(stamps)
    starts = window.start_ns(np.arange(index.min(), index.max() + 1))
    assert np.all(np.diff(starts) > 0)
    np.testing.assert_array_equal(window.start_ns(index), window.floor(stamps))
    assert np.all(window.start_ns(index) <= stamps)
    assert np.all(window.start_ns(index + 1) > stamps)


def test_timeunits_import_without_pandas() -> None:
    code = (
        "import sys, clvmodels, clvmodels.data.timeunits\n"
        "clvmodels.duration_in_units('1Y', 'W'); clvmodels.time_unit_nanoseconds('D')\n"
        "from clvmodels.data import duration_in_units\n"
        "print('pandas' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_data_package_still_exports_everything() -> None:
    import clvmodels.data

    assert clvmodels.data.summarize is clvmodels.summarize
    assert clvmodels.data.time_unit_nanoseconds is time_unit_nanoseconds
    with pytest.raises(AttributeError):
        _ = clvmodels.data.nonexistent

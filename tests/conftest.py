"""Shared fixtures: the bundled data sets, loaded once per test session."""

from __future__ import annotations

import pandas as pd
import pytest

import clvmodels


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    return clvmodels.datasets.load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_master() -> pd.DataFrame:
    return clvmodels.datasets.load_cdnow("master")


@pytest.fixture(scope="session")
def cdnow_calibration(cdnow_sample: pd.DataFrame) -> pd.DataFrame:
    """The CDNOW sample split as in the papers: weeks, 39 + 39 weeks, days merged."""
    return clvmodels.calibration_holdout(
        cdnow_sample,
        calibration_end="1997-09-30",
        holdout_end="1998-06-30",
        amount="amount",
        time_unit="W",
    )

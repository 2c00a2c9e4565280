"""Shared fixtures: the bundled data sets, loaded once per test session."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import settings

import clvmodels

# CI runs the property tests on the same examples every time (a failure there is then
# one a developer can reproduce); elsewhere hypothesis explores new ones on each run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


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


def _five_point_derivative(func, params, j: int):
    """d func / d params[j] by the fourth-order central stencil (step 1e-3 relative)."""
    import numpy as np

    params = np.asarray(params, dtype=np.float64)
    h = 1e-3 * params[j]
    values = []
    for k in (-2, -1, 1, 2):
        shifted = params.copy()
        shifted[j] += k * h
        values.append(func(shifted))
    return (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)


@pytest.fixture(scope="session")
def numeric_derivative():
    """A finite-difference derivative accurate enough to check exact gradients."""
    return _five_point_derivative

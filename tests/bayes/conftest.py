"""Shared fixtures of the Bayesian tests: the data of every model, maximum-likelihood
fits, and the expensive NUTS fits on CDNOW, each sampled once per session."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import bayes


def _donations(_: pd.DataFrame) -> pd.DataFrame:
    return clvmodels.datasets.load_donations()


def _retention(_: pd.DataFrame) -> pd.DataFrame:
    pct = clvmodels.datasets.load_sbg_retention()["regular_pct_alive"].to_numpy()[:8]
    return clvmodels.ShiftedBetaGeometric.data_from_counts(np.round(pct * 10).astype(int))


def _cdnow(cdnow_calibration: pd.DataFrame) -> pd.DataFrame:
    return cdnow_calibration


#: Bayesian class name -> the data it is fitted on in these tests
DATA = {
    "BGNBD": _cdnow,
    "MBGNBD": _cdnow,
    "ParetoNBD": _cdnow,
    "GammaGamma": _cdnow,
    "BGBB": _donations,
    "ShiftedBetaGeometric": _retention,
}
MODELS = sorted(DATA)


def pytest_generate_tests(metafunc):
    """A test taking ``model_name`` runs once per Bayesian model."""
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", MODELS)


@pytest.fixture(scope="session")
def model_data(cdnow_calibration):
    """``model_data(name)``: the data set of each model (CDNOW calibration weeks, the
    donations of the BG/BB paper, the sBG regular cohort)."""

    def build(name: str) -> pd.DataFrame:
        return DATA[name](cdnow_calibration)

    return build


@pytest.fixture(scope="session")
def mle_fit(model_data):
    """``mle_fit(name)``: the maximum-likelihood twin fitted on its data (cached)."""
    cache: dict[str, object] = {}

    def fit(name: str):
        if name not in cache:
            twin = getattr(bayes, name).twin_class
            cache[name] = twin().fit(model_data(name))
        return cache[name]

    return fit


@pytest.fixture(scope="session")
def patterns(model_data):
    """``patterns(name)``: the prepared patterns and weights the Bayesian likelihood of
    each model sees (captured from the twin's own ``fit``)."""
    cache: dict[str, tuple[dict, np.ndarray]] = {}

    def get(name: str):
        if name not in cache:
            # the twin the Bayesian model fits (Gamma-Gamma values in the data's units)
            twin = getattr(bayes, name)()._fitting_twin()
            twin.fit(model_data(name))
            cache[name] = twin._patterns
        return cache[name]

    return get


@pytest.fixture(scope="session")
def nuts_cdnow(cdnow_calibration):
    """``nuts_cdnow(name)``: (model, warnings) of the default NUTS fit (4 chains x
    (1000 tune + 1000 draws), default priors, seed 0; target_accept 0.9 for Pareto/NBD)
    on CDNOW, sampled once."""
    cache: dict[str, tuple[object, list]] = {}

    def fit(name: str):
        if name not in cache:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # Pareto/NBD's posterior has a long (s, beta) ridge: a smaller NUTS
                # step (target_accept 0.9) keeps it free of divergences whatever the
                # last bits of the likelihood's rounding; the priors stay the defaults
                options = {"target_accept": 0.9} if name == "ParetoNBD" else {}
                model = getattr(bayes, name)().fit(cdnow_calibration, **options)
            cache[name] = (model, [w for w in caught if issubclass(w.category, Warning)])
        return cache[name]

    return fit


@pytest.fixture(scope="session")
def map_bgnbd(cdnow_calibration):
    """BG/NBD at its posterior mode on CDNOW with 2000 Laplace draws."""
    return bayes.BGNBD().fit(cdnow_calibration, method="map", draws=2000)

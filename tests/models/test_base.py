"""The shared fitting machinery: convergence failures, identification warnings, column
names, the covariance and the parameter draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import ConvergenceError, InvalidDataError
from clvmodels.models import IdentificationWarning


def test_convergence_failure_has_a_checklist(cdnow_calibration) -> None:
    with pytest.raises(ConvergenceError) as info:
        clvmodels.BGNBD(max_iter=1).fit(cdnow_calibration)
    message = str(info.value)
    assert "did not converge" in message
    for hint in ("Time unit", "penalizer", "Outliers", "initial_params"):
        assert hint in message


def test_unidentified_parameter_warns() -> None:
    # Nobody ever returns: the purchase rate has nothing to learn from.
    frame = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": [10.0] * 50})
    with pytest.warns(IdentificationWarning, match="parameter"):
        try:
            clvmodels.BGNBD().fit(frame)
        except ConvergenceError:
            pytest.skip("diverged instead of stopping at the boundary")


def test_penalizer_shrinks_parameters(cdnow_calibration) -> None:
    free = clvmodels.BGNBD().fit(cdnow_calibration)
    penalized = clvmodels.BGNBD(penalizer=0.1).fit(cdnow_calibration)
    assert np.sum(penalized.params_**2) < np.sum(free.params_**2)


def test_initial_params(cdnow_calibration) -> None:
    start = {"r": 0.3, "alpha": 5.0, "a": 1.0, "b": 2.0}
    model = clvmodels.BGNBD(initial_params=start).fit(cdnow_calibration)
    assert model.params_["r"] == pytest.approx(0.2426, rel=1e-3)
    with pytest.raises(InvalidDataError, match="initial_params lacks"):
        clvmodels.BGNBD(initial_params={"r": 1.0}).fit(cdnow_calibration)


def test_explicit_column_names(cdnow_calibration) -> None:
    renamed = cdnow_calibration.rename(columns={"frequency_cal": "x", "recency_cal": "tx",
                                                "T_cal": "age"})  # fmt: skip
    model = clvmodels.BGNBD(columns={"frequency": "x", "recency": "tx", "T": "age"})
    assert model.fit(renamed).params_["r"] == pytest.approx(0.2426, rel=1e-3)
    with pytest.raises(InvalidDataError, match="column 'x', 'tx', 'age' not found"):
        model.expected_purchases(cdnow_calibration, 10)
    with pytest.raises(InvalidDataError, match="unknown roles"):
        clvmodels.BGNBD(columns={"freq": "x"}).fit(renamed)


def test_bad_summary_for_a_model() -> None:
    frame = pd.DataFrame({"frequency": [1, 2], "recency": [5.0, 1.0], "T": [3.0, 4.0]},
                         index=pd.Index(["u1", "u2"], name="customer_id"))  # fmt: skip
    with pytest.raises(InvalidDataError, match=r"column 'recency': 1 of 2 rows exceed.*'u1'"):
        clvmodels.BGNBD().fit(frame)
    with pytest.raises(InvalidDataError, match="NaN or infinite"):
        clvmodels.BGNBD().fit(frame.assign(T=[np.nan, 4.0]))


def test_covariance_matches_the_observed_information(cdnow_calibration) -> None:
    # Independent check: a central-difference Hessian of the log-likelihood itself.
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    arrays = model._prepare(model._read(cdnow_calibration)[0])
    theta = model.params_.to_numpy()

    def total_ll(values: np.ndarray) -> float:
        return float(model._loglik(values, arrays, False)[0].sum())

    k = len(theta)
    hessian = np.empty((k, k))
    steps = 1e-4 * theta
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * steps[i], np.eye(k)[j] * steps[j]
            hessian[i, j] = (total_ll(theta + ei + ej) - total_ll(theta + ei - ej)
                             - total_ll(theta - ei + ej) + total_ll(theta - ei - ej)) / (
                4 * steps[i] * steps[j])  # fmt: skip
    expected = np.linalg.inv(-hessian)
    np.testing.assert_allclose(model.covariance_.to_numpy(), expected, rtol=1e-3)


def test_parameter_draws_follow_the_covariance(cdnow_calibration) -> None:
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    draws = model.parameter_draws(20_000, random_state=1)
    assert draws.shape == (20_000, 4) and np.all(draws > 0)
    np.testing.assert_array_equal(draws, model.parameter_draws(20_000, random_state=1))
    theta = model.params_.to_numpy()
    cov = np.cov(np.log(draws), rowvar=False) * np.outer(theta, theta)
    expected = model.covariance_.to_numpy()
    np.testing.assert_allclose(np.diag(cov), np.diag(expected), rtol=0.05)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(cov / scale, expected / scale, atol=0.03)

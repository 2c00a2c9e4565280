"""Every model honours the same contract (scikit-learn conventions, persistence,
weights), checked by one parametrised suite."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError, NotFittedError

# kind -> (class name, data builder)


def _cdnow(cdnow_calibration: pd.DataFrame) -> pd.DataFrame:
    return cdnow_calibration


def _donations(_: pd.DataFrame) -> pd.DataFrame:
    return clvmodels.datasets.load_donations()


def _retention(_: pd.DataFrame) -> pd.DataFrame:
    pct = clvmodels.datasets.load_sbg_retention()["regular_pct_alive"].to_numpy()[:8]
    return clvmodels.ShiftedBetaGeometric.data_from_counts(np.round(pct * 10).astype(int))


CASES = {
    "bgnbd": ("BGNBD", _cdnow),
    "mbgnbd": ("MBGNBD", _cdnow),
    "pnbd": ("ParetoNBD", _cdnow),
    "gamma_gamma": ("GammaGamma", _cdnow),
    "bgbb": ("BGBB", _donations),
    "sbg": ("ShiftedBetaGeometric", _retention),
}


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request, cdnow_calibration):
    name, build = CASES[request.param]
    return getattr(clvmodels, name), build(cdnow_calibration)


@pytest.fixture(scope="module")
def fitted(case):
    cls, data = case
    return cls().fit(data)


def test_constructor_only_stores_settings(case) -> None:
    cls, _ = case
    model = cls(penalizer=0.01, tol=1e-8)
    assert model.get_params()["penalizer"] == 0.01
    assert not [a for a in vars(model) if a.endswith("_")]
    assert "penalizer=0.01" in repr(model)
    clone = cls(**model.get_params())
    assert clone.get_params() == model.get_params()
    with pytest.raises(InvalidDataError, match="no setting"):
        model.set_params(learning_rate=1)


def test_fit_returns_self_and_sets_fitted_attributes(case) -> None:
    cls, data = case
    model = cls()
    assert model.fit(data) is model
    for attribute in ("params_", "covariance_", "log_likelihood_", "n_customers_",
                      "converged_", "aic_", "bic_"):  # fmt: skip
        assert hasattr(model, attribute)
    assert list(model.params_.index) == list(cls.param_names)
    assert np.all(model.params_ > 0)
    cov = model.covariance_.to_numpy()
    np.testing.assert_allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    summary = model.summary()
    assert list(summary.columns) == ["estimate", "std_error", "lower", "upper"]
    assert (summary["lower"] < summary["estimate"]).all()
    assert (summary["estimate"] < summary["upper"]).all()
    assert model.aic_ == pytest.approx(2 * len(cls.param_names) - 2 * model.log_likelihood_)


def test_refit_is_idempotent(case, fitted) -> None:
    cls, data = case
    again = cls().fit(data).fit(data)
    pd.testing.assert_series_equal(again.params_, fitted.params_)


def test_does_not_mutate_the_data(case) -> None:
    cls, data = case
    before = data.copy(deep=True)
    cls().fit(data)
    pd.testing.assert_frame_equal(data, before)


def test_unfitted_model_says_what_to_call(case) -> None:
    cls, _ = case
    model = cls()
    with pytest.raises(NotFittedError, match=r"fit\(data\)"):
        model.summary()
    with pytest.raises(NotFittedError):
        model.save("never-written.json")
    assert not hasattr(model, "params_")


def test_save_load_round_trip(case, fitted, tmp_path) -> None:
    cls, _ = case
    path = fitted.save(tmp_path / "model.json")
    state = json.loads(path.read_text())
    assert state["kind"] == cls.kind and state["package_version"] == clvmodels.__version__
    loaded = clvmodels.load(path)
    assert type(loaded) is cls
    pd.testing.assert_series_equal(loaded.params_, fitted.params_)
    pd.testing.assert_frame_equal(loaded.covariance_, fitted.covariance_)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.log_likelihood_ == fitted.log_likelihood_
    pd.testing.assert_frame_equal(loaded.summary(), fitted.summary())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(path)
    fitted.save(path, overwrite=True)


def _expand(data: pd.DataFrame) -> pd.DataFrame:
    if "weight" in data.columns:
        return data.loc[data.index.repeat(data["weight"])].drop(columns="weight")
    return data


def test_weights_equal_expansion(case) -> None:
    cls, data = case
    expanded = _expand(data)
    if "weight" in data.columns:
        weighted = data
    else:  # compress on every column the model reads
        columns = [c for c in cls.data_columns if c in data.columns]
        columns = columns or [f"{c}_cal" for c in cls.data_columns]
        weighted = clvmodels.compress(data, columns)
        expanded = data
    a = cls().fit(expanded)
    b = cls().fit(weighted)
    np.testing.assert_allclose(b.params_, a.params_, rtol=1e-6)
    assert b.n_customers_ == a.n_customers_
    # explicit weights= agree with the weight column
    explicit = cls().fit(weighted.drop(columns="weight"), weights=weighted["weight"].to_numpy())
    np.testing.assert_allclose(explicit.params_, b.params_, rtol=1e-12)


def test_bad_weights(case) -> None:
    cls, data = case
    with pytest.raises(InvalidDataError, match="one weight per row"):
        cls().fit(data, weights=np.ones(3))
    with pytest.raises(InvalidDataError, match=r"^weights: [\d,]+ of [\d,]+ rows are negative"):
        cls().fit(data.drop(columns="weight", errors="ignore"),
                  weights=-np.ones(len(data)))  # fmt: skip
    # errors name the column the weights came from
    with pytest.raises(InvalidDataError, match="column 'w': 1 of"):
        cls().fit(data.assign(w=[-1.0] + [1.0] * (len(data) - 1)), weights="w")
    with pytest.raises(InvalidDataError, match="column 'weight': 1 of"):
        cls().fit(data.assign(weight=[np.nan] + [1.0] * (len(data) - 1)))
    with pytest.raises(InvalidDataError, match="column 'w' is not numeric"):
        cls().fit(data.assign(w="many"), weights="w")


def test_weights_series_is_aligned_on_the_index(case) -> None:
    cls, data = case
    if "weight" in data.columns:
        weights = data["weight"].astype(float)
    else:
        weights = pd.Series(np.arange(len(data)) % 3 + 1.0, index=data.index)
    plain = data.drop(columns="weight", errors="ignore")
    by_position = cls().fit(plain, weights=weights.to_numpy())
    shuffled = weights.sample(frac=1.0, random_state=0)
    assert not shuffled.index.equals(data.index)
    by_label = cls().fit(plain, weights=shuffled)
    np.testing.assert_allclose(by_label.params_, by_position.params_, rtol=1e-12)
    with pytest.raises(InvalidDataError, match="index lacks 1 customers"):
        cls().fit(plain, weights=shuffled.iloc[1:])
    with pytest.raises(InvalidDataError, match=re.escape("weights.to_numpy()")):
        cls().fit(plain, weights=weights.reset_index(drop=True).set_axis(
            [f"x{i}" for i in range(len(data))]))  # fmt: skip


def test_clone_round_trip(case) -> None:
    sklearn_base = pytest.importorskip("sklearn.base")
    cls, data = case
    model = cls(penalizer=0.01, tol=1e-8, initial_params=None)
    assert model.get_params(deep=True) == model.get_params(deep=False)
    copy = sklearn_base.clone(model)
    assert type(copy) is cls and copy is not model
    assert copy.get_params() == model.get_params()
    fitted = cls().fit(data)
    fresh = sklearn_base.clone(fitted)
    assert not hasattr(fresh, "params_")
    assert repr(fresh) == repr(cls())


def test_failed_refit_leaves_the_model_unfitted(case) -> None:
    cls, data = case
    model = cls().fit(data)
    assert hasattr(model, "params_")
    with pytest.raises(InvalidDataError, match="empty"):
        model.fit(data.iloc[:0])
    assert not hasattr(model, "params_")
    assert not [a for a in vars(model) if a.endswith("_")]
    with pytest.raises(NotFittedError):
        model.summary()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"penalizer": -1}, "penalizer=-1"),
        ({"penalizer": "0.1"}, "penalizer='0.1'"),
        ({"penalizer": np.nan}, "penalizer=nan"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"max_iter": 2.5}, "max_iter=2.5"),
        ({"tol": 0}, "tol=0"),
        ({"columns": ["frequency"]}, "columns="),
    ],
)
def test_settings_are_checked_by_fit(case, settings, message) -> None:
    cls, data = case
    model = cls(**settings)  # the constructor only stores them
    with pytest.raises(InvalidDataError, match=re.escape(message)):
        model.fit(data)


def test_initial_params_are_checked(case) -> None:
    cls, data = case
    start = dict.fromkeys(cls.param_names, 1.0)
    with pytest.raises(InvalidDataError, match=r"unknown parameters \['typo'\]"):
        cls(initial_params={**start, "typo": 1.0}).fit(data)
    with pytest.raises(InvalidDataError, match="lacks"):
        cls(initial_params=dict(list(start.items())[1:])).fit(data)
    with pytest.raises(InvalidDataError, match="positive finite"):
        cls(initial_params={**start, cls.param_names[0]: -1.0}).fit(data)
    with pytest.raises(InvalidDataError, match="positive finite"):
        cls(initial_params={**start, cls.param_names[0]: "1"}).fit(data)


def test_numpy_settings_can_be_saved(case, tmp_path) -> None:
    cls, data = case
    fitted = cls().fit(data)
    start = pd.DataFrame([fitted.params_.to_numpy()], columns=fitted.params_.index)
    model = cls(
        penalizer=np.float32(0), max_iter=np.int64(500), tol=np.float64(1e-9),
        initial_params=start.iloc[0],  # a Series of numpy floats
    )  # fmt: skip
    model.fit(data)
    loaded = clvmodels.load(model.save(tmp_path / "model.json"))
    assert loaded.get_params()["penalizer"] == 0 and loaded.get_params()["max_iter"] == 500
    assert loaded.get_params()["initial_params"] == pytest.approx(fitted.params_.to_dict())
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    loaded.fit(data)  # the saved settings fit again


def test_polars_frames(case) -> None:
    pl = pytest.importorskip("polars")
    cls, data = case
    expected = cls().fit(data)
    frame = pl.from_pandas(data)
    model = cls().fit(frame)
    np.testing.assert_allclose(model.params_, expected.params_, rtol=1e-10)
    assert model.n_customers_ == expected.n_customers_
    with pytest.raises(InvalidDataError, match="column 'nope' not found"):
        cls().fit(frame, weights="nope")

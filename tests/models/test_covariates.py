"""Static covariates of BG/NBD, MBG/NBD and Pareto/NBD (clvmodels.models._covariates)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import clvmodels
from clvmodels.exceptions import IdentificationWarning, InvalidDataError
from clvmodels.models._covariates import KEY
from clvmodels.simulate import simulate_bgnbd, simulate_mbgnbd, simulate_pnbd

# kind -> (class, simulator, true population parameters, linked parameters)
MODELS = {
    "pnbd": (clvmodels.ParetoNBD, simulate_pnbd, dict(r=0.55, alpha=10.6, s=0.61, beta=11.7)),
    "bgnbd": (clvmodels.BGNBD, simulate_bgnbd, dict(r=0.24, alpha=4.41, a=0.79, b=2.43)),
    "mbgnbd": (clvmodels.MBGNBD, simulate_mbgnbd, dict(r=0.5, alpha=6.2, a=0.9, b=1.6)),
}
PURCHASE = {"gender": 0.5, "age": -0.3}
DROPOUT = {"gender": -0.4}


def _covariates(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"gender": rng.integers(0, 2, n).astype(float),
                         "age": rng.normal(0.0, 1.0, n)})  # fmt: skip


def _simulate(kind: str, n: int, seed: int, purchase=PURCHASE, dropout=DROPOUT) -> pd.DataFrame:
    _, simulate, truth = MODELS[kind]
    rng = np.random.default_rng(seed + 1000)
    T = np.round(rng.uniform(20, 52, n))
    return simulate(n, **truth, T=T, random_state=seed, covariates=_covariates(n, seed),
                    purchase_coefficients=purchase, dropout_coefficients=dropout)  # fmt: skip


@pytest.fixture(params=sorted(MODELS), scope="module")
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def data(kind):
    return _simulate(kind, 4000, 7)


@pytest.fixture(scope="module")
def fitted(kind, data):
    cls = MODELS[kind][0]
    return cls(purchase_covariates=["gender", "age"], dropout_covariates=["gender"]).fit(data)


def _individual(kind, params, z_gender, z_age, shared=False):
    """Each customer's own parameters, written out from the issue's parameterisation."""
    p = dict(params)
    if shared:
        eta_p = p["shared.gender"] * z_gender + p["purchase.age"] * z_age
        eta_d = p["shared.gender"] * z_gender
    else:
        eta_p = p["purchase.gender"] * z_gender + p["purchase.age"] * z_age
        eta_d = p["dropout.gender"] * z_gender
    if kind == "pnbd":
        return dict(r=p["r"], alpha=p["alpha"] * np.exp(-eta_p), s=p["s"],
                    beta=p["beta"] * np.exp(-eta_d))  # fmt: skip
    return dict(r=p["r"], alpha=p["alpha"] * np.exp(-eta_p), a=p["a"] * np.exp(eta_d),
                b=p["b"] * np.exp(eta_d))  # fmt: skip


# ------------------------------------------------------------- the likelihood


def test_zero_coefficients_give_the_plain_likelihood(kind, data) -> None:
    cls, _, truth = MODELS[kind]
    plain = cls()
    with_cov = cls(purchase_covariates=["gender", "age"], dropout_covariates=["gender"])
    with_cov._learn(data)
    arrays, _ = with_cov._read(data)
    base = np.array(list(truth.values()))
    params = np.concatenate([base, np.zeros(3)])
    ll, grad = with_cov._loglik(params, arrays, True)
    plain_arrays, _ = plain._read(data)
    ll0, grad0 = plain._loglik(base, plain._prepare(plain_arrays), True)
    grad0 = np.stack(grad0, axis=-1) if isinstance(grad0, list) else grad0
    np.testing.assert_allclose(ll, ll0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad[:, :4], np.broadcast_to(grad0, grad[:, :4].shape),
                               rtol=1e-10, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("shared", [False, True])
def test_likelihood_is_the_plain_one_at_each_customers_parameters(kind, data, shared) -> None:
    # oracle: the plain model's own likelihood, one customer at a time with scalar
    # parameters written out from the parameterisation
    cls, _, truth = MODELS[kind]
    if shared:
        model = cls(purchase_covariates=["age"], shared_covariates=["gender"])
        coefficients = {"purchase.age": -0.2, "shared.gender": 0.35}
    else:
        model = cls(purchase_covariates=["gender", "age"], dropout_covariates=["gender"])
        coefficients = {"purchase.gender": 0.4, "purchase.age": -0.2, "dropout.gender": -0.5}
    model._learn(data)
    params = {**truth, **coefficients}
    assert list(model.param_names) == list(params)
    arrays, _ = model._read(data)
    ll, _ = model._loglik(np.array(list(params.values())), arrays, False)
    plain = cls()
    for i in range(0, len(data), 397):
        row = data.iloc[[i]]
        own = _individual(kind, params, row["gender"].iloc[0], row["age"].iloc[0], shared)
        expected, _ = type(plain)._f_log_likelihood(
            row["frequency"].to_numpy(float), row["recency"].to_numpy(), row["T"].to_numpy(),
            **own,
        )  # fmt: skip
        assert ll[i] == pytest.approx(float(expected[0]), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("shared", [False, True])
def test_gradient_matches_finite_differences(kind, data, shared) -> None:
    cls, _, truth = MODELS[kind]
    if shared:
        model = cls(purchase_covariates=["age"], shared_covariates=["gender"])
        coefficients = [-0.2, 0.35]
    else:
        model = cls(purchase_covariates=["gender", "age"], dropout_covariates=["gender"])
        coefficients = [0.4, -0.2, -0.5]
    model._learn(data)
    arrays, _ = model._read(data.iloc[:300])
    params = np.array([*truth.values(), *coefficients])
    _, grad = model._loglik(params, arrays, True)
    total = grad.sum(axis=0)
    for j in range(len(params)):
        step = 1e-6 * max(1.0, abs(params[j]))
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        numeric = (model._loglik(up, arrays, False)[0].sum()
                   - model._loglik(down, arrays, False)[0].sum()) / (2 * step)  # fmt: skip
        assert total[j] == pytest.approx(numeric, rel=1e-5, abs=1e-5), model.param_names[j]


# ----------------------------------------------------------------- the fit


def test_fit_names_coefficients_and_recovers_truth(kind, fitted) -> None:
    assert list(fitted.params_.index[4:]) == ["purchase.gender", "purchase.age", "dropout.gender"]
    table = fitted.summary()
    assert list(table.index) == list(fitted.params_.index)
    truth = {"purchase.gender": 0.5, "purchase.age": -0.3, "dropout.gender": -0.4}
    for name, value in truth.items():
        # within four standard errors (a fixed seed; coverage is tested below)
        assert abs(table.loc[name, "estimate"] - value) < 4 * table.loc[name, "std_error"]
    # a coefficient's interval is estimate +- z se, not on a log scale
    row = table.loc["purchase.age"]
    assert row["lower"] == pytest.approx(row["estimate"] - 1.959964 * row["std_error"], rel=1e-6)


def test_fit_cost_grows_with_patterns_not_customers(kind, data) -> None:
    cls = MODELS[kind][0]
    settings_ = dict(purchase_covariates=["gender"], dropout_covariates=["gender"])
    rows = data[["frequency", "recency", "T", "gender"]]
    compressed = rows.groupby(list(rows.columns)).size().rename("weight").reset_index()
    full = cls(**settings_).fit(rows)
    small = cls(**settings_).fit(compressed)
    assert small.n_patterns_ == len(compressed) == full.n_patterns_ < len(rows)
    np.testing.assert_allclose(small.params_, full.params_, rtol=1e-6)
    assert small.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=1e-10)


def test_coverage_of_intervals_over_seeds() -> None:
    # 95% intervals of three coefficients over 30 simulated data sets: 90 intervals, of
    # which about 85.5 should cover the truth (binomial sd 2.1); at least 80 is asked,
    # far enough below to hold on any platform, close enough to catch wrong standard
    # errors (with errors 30% too small the coverage is ~84%, 75 of 90).
    covered = 0
    total = 0
    truth = {"purchase.gender": 0.5, "purchase.age": -0.3, "dropout.gender": -0.4}
    for seed in range(30):
        data = _simulate("pnbd", 1500, seed)
        model = clvmodels.ParetoNBD(purchase_covariates=["gender", "age"],
                                    dropout_covariates=["gender"]).fit(data)  # fmt: skip
        table = model.summary(0.95)
        for name, value in truth.items():
            total += 1
            covered += table.loc[name, "lower"] <= value <= table.loc[name, "upper"]
    assert total == 90
    assert covered >= 80, covered


def test_likelihood_ratio_test_of_a_shared_coefficient() -> None:
    # truth: gender moves both processes by the same coefficient (the constraint holds)
    data = _simulate("pnbd", 6000, 3, purchase={"gender": 0.4, "age": -0.3},
                     dropout={"gender": 0.4})  # fmt: skip
    full = clvmodels.ParetoNBD(purchase_covariates=["gender", "age"],
                               dropout_covariates=["gender"]).fit(data)  # fmt: skip
    shared = clvmodels.ParetoNBD(purchase_covariates=["age"],
                                 shared_covariates=["gender"]).fit(data)  # fmt: skip
    test = clvmodels.likelihood_ratio_test(shared, full)
    assert test.df == 1
    assert test.statistic == pytest.approx(2 * (full.log_likelihood_ - shared.log_likelihood_))
    assert test.p_value == pytest.approx(stats.chi2.sf(test.statistic, 1))
    assert test.p_value > 0.001
    # and where the processes differ, the test rejects the constraint
    data = _simulate("pnbd", 6000, 3, purchase={"gender": 0.8, "age": -0.3},
                     dropout={"gender": -0.8})  # fmt: skip
    full = clvmodels.ParetoNBD(purchase_covariates=["gender", "age"],
                               dropout_covariates=["gender"]).fit(data)  # fmt: skip
    shared = clvmodels.ParetoNBD(purchase_covariates=["age"],
                                 shared_covariates=["gender"]).fit(data)  # fmt: skip
    assert clvmodels.likelihood_ratio_test(shared, full).p_value < 1e-6


def test_likelihood_ratio_test_refuses_models_that_are_not_nested(data) -> None:
    plain = clvmodels.BGNBD().fit(data)
    other = clvmodels.ParetoNBD().fit(data)
    with pytest.raises(InvalidDataError, match="same model"):
        clvmodels.likelihood_ratio_test(plain, other)
    with pytest.raises(InvalidDataError, match="more parameters"):
        clvmodels.likelihood_ratio_test(plain, plain)
    gender = clvmodels.BGNBD(purchase_covariates=["gender"]).fit(data)
    age = clvmodels.BGNBD(purchase_covariates=["age"], dropout_covariates=["age"]).fit(data)
    with pytest.raises(InvalidDataError, match="not nested"):
        clvmodels.likelihood_ratio_test(gender, age)
    both = clvmodels.BGNBD(purchase_covariates=["gender", "age"]).fit(data)
    assert clvmodels.likelihood_ratio_test(gender, both).df == 1
    assert clvmodels.likelihood_ratio_test(plain, both).df == 2


def test_penalty_shrinks_coefficients_and_is_the_documented_objective(data, kind) -> None:
    cls = MODELS[kind][0]
    free = cls(purchase_covariates=["gender"], shared_covariates=["age"]).fit(data)
    penalised = cls(purchase_covariates=["gender"], shared_covariates=["age"],
                    covariate_penalizer={"purchase": 0.05, "dropout": 0.02}).fit(data)  # fmt: skip
    for name in ("purchase.gender", "shared.age"):
        assert abs(penalised.params_[name]) < abs(free.params_[name])
    # objective: mean negative log-likelihood + 0.05 g_p^2 + (0.05 + 0.02) g_shared^2
    arrays, _ = penalised._read(data)
    params = penalised.params_.to_numpy()
    ll, _ = penalised._loglik(params, arrays, False)
    g = penalised.params_
    expected = -ll.mean() + 0.05 * g["purchase.gender"] ** 2 + 0.07 * g["shared.age"] ** 2
    value, _ = penalised._objective(penalised._to_free(params), (arrays, np.ones(len(ll))),
                                    float(len(ll)))  # fmt: skip
    assert value == pytest.approx(expected, rel=1e-12)


def test_separating_covariate_is_named_in_a_warning(kind) -> None:
    cls, simulate, truth = MODELS[kind]
    data = simulate(3000, **truth, T=39.0, random_state=4)
    data["flag"] = 0.0
    data.iloc[:200, data.columns.get_loc("flag")] = 1.0
    data.loc[data["flag"] == 1, ["frequency", "recency"]] = 0  # none of them ever returns
    with pytest.warns(IdentificationWarning, match=r"purchase\.flag.*-infinity.*penalty"):
        cls(purchase_covariates=["flag"]).fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentificationWarning)
        penalised = cls(purchase_covariates=["flag"], covariate_penalizer=0.01).fit(data)
    assert np.isfinite(penalised.covariance_.to_numpy()).all()


def test_no_separation_warning_for_an_ordinary_fit(kind, data) -> None:
    cls = MODELS[kind][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentificationWarning)
        cls(purchase_covariates=["gender", "age"], dropout_covariates=["gender"]).fit(data)


# ------------------------------------------------------------- predictions


def test_predictions_use_each_customers_covariates(kind, fitted, data) -> None:
    cls = MODELS[kind][0]
    rows = data.iloc[:6].copy()
    params = fitted.params_
    expected = fitted.expected_purchases(rows, 10.0)
    alive = fitted.probability_alive(rows)
    for i, (_, row) in enumerate(rows.iterrows()):
        own = _individual(kind, params, row["gender"], row["age"])
        value = cls._f_expected_purchases(t=10.0, x=row["frequency"], t_x=row["recency"],
                                          T=row["T"], **own)  # fmt: skip
        assert expected.iloc[i] == pytest.approx(float(value), rel=1e-12)
        p_alive = cls._f_probability_alive(row["frequency"], row["recency"], row["T"], **own)
        assert alive.iloc[i] == pytest.approx(float(p_alive), rel=1e-12)
    # same history, other covariates: another prediction
    twin = rows.iloc[[0, 0]].copy()
    twin["gender"] = [0.0, 1.0]
    values = fitted.expected_purchases(twin, 10.0)
    assert values.iloc[0] != values.iloc[1]


def test_intervals_draws_and_clv(kind, fitted, data) -> None:
    rows = data.iloc[:5]
    table = fitted.expected_purchases(rows, 10.0, interval=0.9, n_draws=300)
    assert list(table.columns) == ["estimate", "lower", "upper"]
    assert (table["lower"] <= table["estimate"]).all()
    assert (table["estimate"] <= table["upper"]).all()
    draws = fitted.draws("expected_purchases", rows, 10.0, n_draws=50)
    assert draws.shape == (1, 50, 5)
    clv = clvmodels.predictive_clv(fitted, None, rows, horizon=52, discount_rate=0.1,
                                   time_unit="W")  # fmt: skip
    manual = clvmodels.predictive_clv(fitted, None, rows, horizon=52, discount_rate=0.1,
                                      time_unit="W", interval=0.9, n_draws=200)  # fmt: skip
    np.testing.assert_allclose(manual["estimate"], clv, rtol=1e-12)


def test_new_customer_predictions_take_covariates(kind, fitted, data) -> None:
    cls = MODELS[kind][0]
    one = fitted.expected_purchases_new_customer(10.0, covariates={"gender": 1, "age": 0.5})
    own = _individual(kind, fitted.params_, 1.0, 0.5)
    assert one == pytest.approx(float(cls._f_expected_purchases(t=10.0, x=0.0, t_x=0.0, T=0.0,
                                                                **own)), rel=1e-12)  # fmt: skip
    several = fitted.expected_purchases_new_customer(
        10.0, covariates=pd.DataFrame({"gender": [0, 1], "age": [0.0, 0.5]}, index=["a", "b"]))
    assert list(several.index) == ["a", "b"] and several["b"] == pytest.approx(one)
    profile = {"gender": 1, "age": 0.5}
    curve = fitted.expected_purchases_new_customer([5.0, 10.0], covariates=profile,
                                                   interval=0.9, n_draws=100)  # fmt: skip
    assert list(curve.columns) == ["estimate", "lower", "upper"]
    assert curve.loc[10.0, "estimate"] == pytest.approx(one)
    p = fitted.probability_purchases_new_customer(10.0, [0, 1], covariates={"gender": 0, "age": 0})
    assert 0 < p[0] < 1 and 0 < p[1] < 1
    with pytest.raises(InvalidDataError, match="give the new customer's"):
        fitted.expected_purchases_new_customer(10.0)
    with pytest.raises(InvalidDataError, match="has no covariates"):
        cls().fit(data).expected_purchases_new_customer(1.0, covariates={"gender": 1})


# ------------------------------------------------------------- categories


def test_text_columns_become_indicators_against_the_first_category() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    channel = rng.choice(["search", "social", "email"], n)
    frame = pd.DataFrame({"channel": channel})
    effects = {"search": 0.0, "social": 0.6, "email": -0.4}
    z = pd.DataFrame({"social": (channel == "social") * 1.0, "email": (channel == "email") * 1.0})
    data = simulate_bgnbd(n, r=0.24, alpha=4.41, a=0.79, b=2.43, T=39.0, random_state=1,
                          covariates=z, purchase_coefficients={"social": 0.6, "email": -0.4})
    data = data.drop(columns=["social", "email"]).join(frame.set_index(data.index))
    model = clvmodels.BGNBD(purchase_covariates=["channel"]).fit(data)
    assert list(model.params_.index[4:]) == ["purchase.channel[search]", "purchase.channel[social]"]
    # email is the reference: the coefficients are effects relative to it
    assert model.covariates_.levels["channel"] == ["email", "search", "social"]
    rel = model.params_
    assert abs(rel["purchase.channel[social]"] - (effects["social"] - effects["email"])) < 0.3
    # an unseen category is an error naming it and a customer
    new = data.iloc[:3].copy()
    new["channel"] = ["search", "print", "print"]
    with pytest.raises(InvalidDataError, match=r"column 'channel': 2 of 3 rows.*'print'"):
        model.expected_purchases(new, 5.0)
    # categorical dtype works the same
    typed = data.assign(channel=data["channel"].astype("category"))
    other = clvmodels.BGNBD(purchase_covariates=["channel"]).fit(typed)
    np.testing.assert_allclose(other.params_, model.params_, rtol=1e-8)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "007", "d e"]), min_size=2, max_size=40))
def test_design_indicators_property(values) -> None:
    from clvmodels.models._covariates import CovariateSettings, Design

    frame = pd.DataFrame({"cat": values})
    spec = CovariateSettings(("cat",), (), (), {"purchase": 0.0, "dropout": 0.0})
    if len(set(values)) < 2:
        with pytest.raises(InvalidDataError, match="one category"):
            Design.learn(spec, frame, "data")
        return
    design = Design.learn(spec, frame, "data")
    encoded = design.encode(frame, "data")
    reference = sorted(set(values))[0]
    stacked = np.stack([encoded[k] for k in encoded], axis=1)
    # one indicator per category but the reference; every row at most one 1
    assert stacked.shape == (len(values), len(set(values)) - 1)
    assert np.all(stacked.sum(axis=1) == (np.asarray(values) != reference))
    assert design.levels["cat"][0] == reference
    assert frame["cat"].tolist() == values  # the caller's data untouched


# ------------------------------------------------------------------ errors


def test_bad_covariate_data_is_refused_before_fitting(data) -> None:
    model = clvmodels.ParetoNBD(purchase_covariates=["gender"])
    with pytest.raises(InvalidDataError, match="income"):
        clvmodels.ParetoNBD(purchase_covariates=["income"]).fit(data)
    holes = data.copy()
    holes.iloc[[3, 5], holes.columns.get_loc("gender")] = np.nan
    with pytest.raises(InvalidDataError, match=r"column 'gender': 2 of .* customer 3"):
        model.fit(holes)
    constant = data.assign(gender=1.0)
    with pytest.raises(InvalidDataError, match="'gender' is 1 for every customer"):
        model.fit(constant)
    twice = data.assign(gender2=data["gender"] * 2 + 1)
    with pytest.raises(InvalidDataError, match="collinear"):
        clvmodels.ParetoNBD(purchase_covariates=["gender", "gender2"]).fit(twice)
    with pytest.raises(InvalidDataError, match="both shared_covariates and purchase"):
        clvmodels.ParetoNBD(purchase_covariates=["gender"], shared_covariates=["gender"]).fit(data)
    with pytest.raises(InvalidDataError, match="list of column names"):
        clvmodels.ParetoNBD(purchase_covariates="gender").fit(data)
    with pytest.raises(InvalidDataError, match="model's own columns"):
        clvmodels.ParetoNBD(purchase_covariates=["T"]).fit(data)
    with pytest.raises(InvalidDataError, match="covariate_penalizer"):
        clvmodels.ParetoNBD(purchase_covariates=["gender"], covariate_penalizer=-1).fit(data)
    with pytest.raises(InvalidDataError, match="but no covariates"):
        clvmodels.ParetoNBD(covariate_penalizer=0.1).fit(data)
    with pytest.raises(InvalidDataError, match="unknown keys"):
        clvmodels.ParetoNBD(purchase_covariates=["gender"],
                            covariate_penalizer={"spend": 1.0}).fit(data)  # fmt: skip


def test_prediction_data_without_the_covariates_is_refused(fitted, data) -> None:
    with pytest.raises(InvalidDataError, match="age"):
        fitted.expected_purchases(data.drop(columns=["age"]).iloc[:3], 5.0)
    text = data.iloc[:3].assign(age=["x", "y", "z"])
    with pytest.raises(InvalidDataError, match=r"'age'.*numbers"):
        fitted.expected_purchases(text, 5.0)


def test_initial_params_may_start_coefficients(data) -> None:
    start = {"r": 0.5, "alpha": 10.0, "s": 0.6, "beta": 11.0, "purchase.gender": 0.3}
    model = clvmodels.ParetoNBD(purchase_covariates=["gender"], initial_params=start).fit(data)
    reference = clvmodels.ParetoNBD(purchase_covariates=["gender"]).fit(data)
    np.testing.assert_allclose(model.params_, reference.params_, rtol=1e-4)
    with pytest.raises(InvalidDataError, match="not coefficients of this fit"):
        clvmodels.ParetoNBD(purchase_covariates=["gender"],
                            initial_params={**start, "dropout.gender": 0.1}).fit(data)  # fmt: skip


# ------------------------------------------------------------------ contract


def test_save_load_round_trip_and_checks(kind, fitted, data, tmp_path) -> None:
    path = fitted.save(tmp_path / "model.json")
    loaded = clvmodels.load(path)
    assert loaded.params_.equals(fitted.params_)
    assert loaded.get_params() == fitted.get_params()
    rows = data.iloc[:4]
    pd.testing.assert_series_equal(loaded.expected_purchases(rows, 5.0),
                                   fitted.expected_purchases(rows, 5.0))  # fmt: skip
    state = json.loads(path.read_text())
    state["extra"]["covariates"] = None
    path.write_text(json.dumps(state))
    with pytest.raises(InvalidDataError, match="covariates"):
        clvmodels.load(path)


def test_settings_follow_scikit_learn(kind) -> None:
    from sklearn.base import clone

    cls = MODELS[kind][0]
    model = cls(purchase_covariates=["gender"], covariate_penalizer=0.1)
    assert "purchase_covariates=['gender']" in repr(model)
    assert clone(model).get_params() == model.get_params()
    assert not [a for a in vars(model) if a.endswith("_")]


def test_polars_frames_carry_their_covariates(data) -> None:
    pl = pytest.importorskip("polars")
    model = clvmodels.BGNBD(purchase_covariates=["gender"]).fit(pl.from_pandas(data))
    reference = clvmodels.BGNBD(purchase_covariates=["gender"]).fit(data)
    np.testing.assert_allclose(model.params_, reference.params_, rtol=1e-10)


def test_caller_data_is_not_changed(kind, fitted, data) -> None:
    before = data.copy()
    fitted.expected_purchases(data, 3.0, interval=0.8, n_draws=20)
    fitted.draws("probability_alive", data, n_draws=5)
    MODELS[kind][0](purchase_covariates=["gender"], shared_covariates=["age"]).fit(data)
    pd.testing.assert_frame_equal(data, before)
    assert not any(c.startswith(KEY) for c in data.columns)


def test_clv_is_the_plain_models_at_each_customers_parameters(kind, fitted, data) -> None:
    cls = MODELS[kind][0]
    rows = data.iloc[:4]
    clv = clvmodels.predictive_clv(fitted, None, rows, horizon=52, discount_rate=0.1,
                                   time_unit="W")  # fmt: skip
    for i, (_, row) in enumerate(rows.iterrows()):
        plain = cls()
        plain.params_ = pd.Series(_individual(kind, fitted.params_, row["gender"], row["age"]))
        plain.time_unit_ = "W"
        expected = clvmodels.predictive_clv(plain, None, rows.iloc[[i]], horizon=52,
                                            discount_rate=0.1, time_unit="W")  # fmt: skip
        assert clv.iloc[i] == pytest.approx(float(expected.iloc[0]), rel=1e-12)


def test_processes_are_checked_for_collinearity_separately(data) -> None:
    other = data.assign(male=1.0 - data["gender"])
    model = clvmodels.ParetoNBD(purchase_covariates=["gender"], dropout_covariates=["male"])
    assert "dropout.male" in model.fit(other).params_.index
    with pytest.raises(InvalidDataError, match="collinear"):
        clvmodels.ParetoNBD(purchase_covariates=["gender"], shared_covariates=["male"]).fit(other)


def test_far_from_zero_covariates_are_warned_about(data) -> None:
    from clvmodels.exceptions import DataWarning

    shifted = data.assign(year=2017.0 + data["age"])
    with pytest.warns(DataWarning, match=r"'year'.*far from 0.*Centre it"):
        clvmodels.BGNBD(purchase_covariates=["year"]).check_data(shifted)


def test_dates_and_mixed_types_are_refused(data) -> None:
    dated = data.assign(joined=pd.Timestamp("2020-01-01") + pd.to_timedelta(data["T"], "D"))
    with pytest.raises(InvalidDataError, match="dates or durations"):
        clvmodels.BGNBD(purchase_covariates=["joined"]).fit(dated)
    mixed = data.assign(code=[1 if i % 2 else "1" for i in range(len(data))])
    with pytest.raises(InvalidDataError, match="mixes value types"):
        clvmodels.BGNBD(purchase_covariates=["code"]).fit(mixed)


def test_save_refuses_settings_changed_after_the_fit(fitted, tmp_path) -> None:
    from sklearn.base import clone

    changed = clone(fitted)
    changed.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    changed.param_names = fitted.param_names
    changed.set_params(purchase_covariates=["age"])
    with pytest.raises(InvalidDataError, match="changed since the fit"):
        changed.save(tmp_path / "m.json")

"""P(X(t, t + length) > 0) for a new customer (the model's side of a cohort retention
curve): against direct quadrature of its definition, P(X(length) > 0) at t = 0, and
simulated cohorts at the true parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

import clvmodels
from clvmodels.models import _betageo, pnbd
from clvmodels.simulate import simulate_transactions

RNG = np.random.default_rng(20261207)
# (r, alpha, s | a, beta | b, t, length) over a wide range of each
CASES = [
    (*np.exp(RNG.uniform(np.log(0.05), np.log(20.0), 4)), RNG.uniform(0, 150),
     np.exp(RNG.uniform(np.log(0.5), np.log(200.0))))
    for _ in range(40)
]  # fmt: skip


@pytest.mark.parametrize("case", CASES[:20])
def test_pareto_nbd_against_quadrature(case) -> None:
    # first purchase of the window at t + u: lambda e^(-lambda u) e^(-mu (t + u)),
    # integrated over the gammas in closed form, then over u numerically
    r, alpha, s, beta, t, length = case

    def density(u):
        return (r / alpha) * (1 + u / alpha) ** -(r + 1) * (1 + (t + u) / beta) ** -s

    expected, _ = integrate.quad(density, 0, length, epsabs=1e-14, epsrel=1e-11, limit=400)
    got = pnbd.probability_repurchase_new(t, 0, 0, 0, r, alpha, s, beta, length)
    assert got == pytest.approx(expected, rel=1e-8, abs=1e-13)


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize("case", CASES[20:])
def test_beta_geometric_against_quadrature(case, shift) -> None:
    # given p, alive at t with (1 - p)^shift E[e^(-lambda p t)], then a purchase in the
    # window with 1 - e^(-lambda length); p integrated in u = logit(p) (smooth there)
    r, alpha, a, b, t, length = case

    def integrand(u):
        p, q = special.expit(u), special.expit(-u)
        given_p = q**shift * ((1 + p * t / alpha) ** -r - (1 + (p * t + length) / alpha) ** -r)
        log_weight = a * special.log_expit(u) + b * special.log_expit(-u) - special.betaln(a, b)
        return given_p * np.exp(log_weight)

    expected, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-11,
                                 limit=400)  # fmt: skip
    got = _betageo.probability_repurchase_new(t, 0, 0, 0, r, alpha, a, b, length, shift=shift)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("name", ["BGNBD", "MBGNBD", "ParetoNBD"])
def test_from_acquisition_it_is_one_minus_no_purchase(name, cdnow_calibration) -> None:
    model = getattr(clvmodels, name)().fit(cdnow_calibration)
    lengths = [0.5, 4.0, 39.0, 520.0]
    for length in lengths:
        none = model.probability_purchases_new_customer(length, 0)
        assert model.probability_repurchase_new_customer(0, length) == pytest.approx(
            1 - none, rel=1e-11
        )
    # later windows: a smaller share of the cohort purchases in each (dropout)
    shares = model.probability_repurchase_new_customer([0, 10, 20, 40], 4)
    assert shares.index.tolist() == [0.0, 10.0, 20.0, 40.0]
    assert np.all(np.diff(shares.to_numpy()) < 0)
    # a calendar length reads in the model's unit
    assert model.probability_repurchase_new_customer(4, "4W") == pytest.approx(
        model.probability_repurchase_new_customer(4, 4.0), rel=1e-14
    )
    bounds = model.probability_repurchase_new_customer(4, 4, interval=0.9, n_draws=300)
    assert bounds["lower"] < bounds["estimate"] < bounds["upper"]


@pytest.mark.parametrize(("kind", "params", "name"), [
    ("pnbd", {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 20.0}, "ParetoNBD"),
    ("bgnbd", {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 3.0}, "BGNBD"),
    ("mbgnbd", {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 3.0}, "MBGNBD"),
])  # fmt: skip
def test_simulated_cohorts_at_the_true_parameters(kind, params, name) -> None:
    # 40,000 customers acquired over two months and followed for 72 weeks; each cell's
    # observed share against the model's at the parameters that drew them (binomial SE)
    log = simulate_transactions(kind, 40_000, params=params, start="2020-01-01",
                                acquisition_end="2020-03-01", observation_end="2021-06-30",
                                time_unit="W", random_state=7)  # fmt: skip
    frame = clvmodels.summarize(log, observation_end="2021-06-30", time_unit="W")
    model = getattr(clvmodels, name)().fit(frame)
    model.params_ = pd.Series(list(params.values()), index=model.params_.index)
    table = clvmodels.cohort_retention(model, frame, transactions=log, cohort="M", period="4W")
    assert table.index.get_level_values("cohort").unique().tolist() == ["2020-01", "2020-02"]
    share = table["expected_share"]
    z = (table["observed_share"] - share) / np.sqrt(share * (1 - share) / table["at_risk"])
    assert np.abs(z).max() < 4.5
    # and it is not a flat curve that any data would meet
    assert share.loc["2020-01"].iloc[0] > 1.5 * share.loc["2020-01"].iloc[-1]


def test_binomial_band_would_catch_a_wrong_model() -> None:
    # the same check fails for a model that ignores dropout (s -> 0: nobody leaves)
    r, alpha, beta = 0.8, 6.0, 20.0
    right = pnbd.probability_repurchase_new(40.0, 0, 0, 0, r, alpha, 0.7, beta, 4.0)
    wrong = pnbd.probability_repurchase_new(40.0, 0, 0, 0, r, alpha, 1e-9, beta, 4.0)
    se = np.sqrt(right * (1 - right) / 20_000)
    assert abs(wrong - right) / se > 10

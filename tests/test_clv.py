"""predictive_clv: unit conversions (the classic trap), the discounting sum, intervals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.clv import continuous_discount_rate
from clvmodels.exceptions import InvalidDataError, NotFittedError


@pytest.fixture(scope="module")
def weekly(cdnow_calibration):
    return (
        clvmodels.BGNBD().fit(cdnow_calibration),
        clvmodels.GammaGamma().fit(cdnow_calibration),
    )


@pytest.fixture(scope="module")
def daily_frame(cdnow_sample):
    return clvmodels.calibration_holdout(
        cdnow_sample, calibration_end="1997-09-30", holdout_end="1998-06-30",
        amount="amount", time_unit="D",
    )  # fmt: skip


def test_discount_rate_conversion() -> None:
    # FHL (2005, "RFM and CLV"): 15 % a year is about 0.0027 a week, continuously.
    assert continuous_discount_rate(0.15, "W") == pytest.approx(np.log(1.15) / (365.25 / 7))
    assert continuous_discount_rate(0.15, "W") == pytest.approx(0.0027, abs=3e-5)
    assert continuous_discount_rate(0.10, "Y") == pytest.approx(np.log(1.1))
    assert continuous_discount_rate(0.10, "M") * 12 == pytest.approx(np.log(1.1))
    with pytest.raises(InvalidDataError, match="discount_rate"):
        continuous_discount_rate(-1.5, "W")


def test_same_clv_whatever_the_time_unit(weekly, cdnow_calibration, daily_frame) -> None:
    bgnbd, spend = weekly
    in_days = clvmodels.BGNBD().fit(daily_frame)
    for horizon in ("12M", "52W", "2Y", "90D"):
        a = clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon=horizon,
                                     discount_rate=0.1)  # fmt: skip
        b = clvmodels.predictive_clv(in_days, spend, daily_frame, horizon=horizon,
                                     discount_rate=0.1)  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_lifetimes_clv_depends_on_the_time_unit(weekly, cdnow_calibration, daily_frame):
    """lifetimes counts a month as 4.345 weeks but 30 days, so the same model in two
    units gives two CLVs; ours does not (previous test)."""
    lifetimes = pytest.importorskip("lifetimes")
    bgnbd, spend = weekly
    oracle_spend = lifetimes.GammaGammaFitter()
    oracle_spend.params_ = pd.Series(spend.params_.to_numpy(), index=["p", "q", "v"])
    values = {}
    for unit, frame, alpha_scale in (("W", cdnow_calibration, 1), ("D", daily_frame, 7)):
        oracle = lifetimes.BetaGeoFitter()
        params = bgnbd.params_.copy()
        params["alpha"] *= alpha_scale
        oracle.params_ = pd.Series(params.to_numpy(), index=["r", "alpha", "a", "b"])
        oracle.predict = oracle.conditional_expected_number_of_purchases_up_to_time
        values[unit] = oracle_spend.customer_lifetime_value(
            oracle, frame["frequency_cal"], frame["recency_cal"], frame["T_cal"],
            frame["monetary_value_cal"], time=12, discount_rate=0.01, freq=unit,
        )  # fmt: skip
    assert not np.allclose(values["W"], values["D"], rtol=1e-3)


def test_undiscounted_clv_is_spend_times_expected_purchases(weekly, cdnow_calibration):
    bgnbd, spend = weekly
    clv = clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon="52W",
                                   discount_rate=0.0, margin=0.3)  # fmt: skip
    expected = 0.3 * spend.expected_spend(cdnow_calibration) * bgnbd.expected_purchases(
        cdnow_calibration, 52.0
    )
    np.testing.assert_allclose(clv, expected, rtol=1e-12)
    transactions = clvmodels.predictive_clv(bgnbd, None, cdnow_calibration, horizon="52W",
                                            discount_rate=0.0)  # fmt: skip
    np.testing.assert_allclose(transactions, bgnbd.expected_purchases(cdnow_calibration, 52.0))


def test_discounting_matches_the_integral(weekly, cdnow_calibration) -> None:
    bgnbd, _ = weekly
    frame = cdnow_calibration.iloc[:50]
    clv = clvmodels.predictive_clv(bgnbd, None, frame, horizon="2Y", discount_rate=0.15)
    # integral of exp(-delta t) dE[X(t)] on a fine grid
    delta = continuous_discount_rate(0.15, "W")
    grid = np.linspace(0, 2 * 365.25 / 7, 2001)
    cumulative = np.array([bgnbd.expected_purchases(frame, t).to_numpy() for t in grid])
    fine = (np.exp(-delta * (grid[1:] + grid[:-1]) / 2)[:, None] * np.diff(cumulative, axis=0))
    np.testing.assert_allclose(clv, fine.sum(axis=0), rtol=1e-7)
    assert (clv < bgnbd.expected_purchases(frame, grid[-1])).all()


def test_clv_interval(weekly, cdnow_calibration) -> None:
    bgnbd, spend = weekly
    frame = cdnow_calibration.iloc[:200]
    result = clvmodels.predictive_clv(bgnbd, spend, frame, horizon="12M", discount_rate=0.1,
                                      interval=0.9, n_draws=200)  # fmt: skip
    point = clvmodels.predictive_clv(bgnbd, spend, frame, horizon="12M", discount_rate=0.1)
    np.testing.assert_allclose(result["estimate"], point)
    assert (result["lower"] < result["estimate"]).all()
    assert (result["estimate"] < result["upper"]).all()


def test_horizons_take_the_same_forms_everywhere(weekly, cdnow_calibration) -> None:
    # a number of the model's time units (weeks here) or a calendar duration, in the
    # model's methods, predictive_clv and score alike
    bgnbd, spend = weekly
    frame = cdnow_calibration.iloc[:300]
    pd.testing.assert_series_equal(bgnbd.expected_purchases(frame, t="39W"),
                                   bgnbd.expected_purchases(frame, t=39))  # fmt: skip
    pd.testing.assert_series_equal(bgnbd.probability_alive(frame, t=dt.timedelta(weeks=13)),
                                   bgnbd.probability_alive(frame, t=13))  # fmt: skip
    by_number = clvmodels.predictive_clv(bgnbd, spend, frame, horizon=52, discount_rate=0.1)
    by_text = clvmodels.predictive_clv(bgnbd, spend, frame, horizon="52W", discount_rate=0.1)
    pd.testing.assert_series_equal(by_number, by_text)
    scores = clvmodels.score_frame(bgnbd, frame, horizon="39W")
    np.testing.assert_array_equal(scores["expected_purchases"],
                                  bgnbd.expected_purchases(frame, t=39))  # fmt: skip
    with pytest.raises(InvalidDataError, match="t='next year' is not a duration"):
        bgnbd.expected_purchases(frame, t="next year")


def test_clv_errors(weekly, cdnow_calibration) -> None:
    bgnbd, spend = weekly
    with pytest.raises(InvalidDataError, match="horizon=-12: give a number > 0"):
        clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon=-12, discount_rate=0.1)
    unit_less = clvmodels.BGNBD().fit(cdnow_calibration.reset_index(drop=True).copy())
    unit_less.time_unit_ = None
    with pytest.raises(InvalidDataError, match="time unit"):
        clvmodels.predictive_clv(unit_less, spend, cdnow_calibration, horizon="12M",
                                 discount_rate=0.1)  # fmt: skip
    clv = clvmodels.predictive_clv(unit_less, spend, cdnow_calibration, horizon="12M",
                                   discount_rate=0.1, time_unit="W")  # fmt: skip
    assert np.all(np.isfinite(clv))


def test_discrete_time_clv_discounts_each_opportunity() -> None:
    donations = clvmodels.datasets.load_donations()
    model = clvmodels.BGBB().fit(donations)
    clv = clvmodels.predictive_clv(model, None, donations, horizon="5Y", discount_rate=0.1,
                                   time_unit="Y")  # fmt: skip
    cumulative = [np.zeros(len(donations))] + [
        model.expected_purchases(donations, k).to_numpy() for k in range(1, 6)
    ]
    expected = sum(np.diff(cumulative, axis=0)[k - 1] / 1.1**k for k in range(1, 6))
    np.testing.assert_allclose(clv, expected, rtol=1e-12)
    with pytest.raises(InvalidDataError, match="shorter than one opportunity"):
        clvmodels.predictive_clv(model, None, donations, horizon="6M", discount_rate=0.1,
                                 time_unit="Y")  # fmt: skip


def test_data_and_model_must_share_a_time_unit(weekly, cdnow_calibration, daily_frame):
    bgnbd, spend = weekly
    with pytest.raises(InvalidDataError, match=r"time units differ: BGNBD .* 'W' .* 'D'"):
        clvmodels.predictive_clv(bgnbd, spend, daily_frame, horizon="12M", discount_rate=0.1)
    with pytest.raises(InvalidDataError, match=r"time units differ.*time_unit= is 'D'"):
        clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon="12M",
                                 discount_rate=0.1, time_unit="D")  # fmt: skip
    # the same unit spelt otherwise is fine, and so is data that does not say its unit
    reference = clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon="12M",
                                         discount_rate=0.1)  # fmt: skip
    assert reference.loc[4] == pytest.approx(36.88, abs=0.01)
    same = clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon="12M",
                                    discount_rate=0.1, time_unit="7D")  # fmt: skip
    np.testing.assert_allclose(same, reference)
    plain = pd.DataFrame(cdnow_calibration)
    assert plain.attrs == {}
    np.testing.assert_allclose(
        clvmodels.predictive_clv(bgnbd, spend, plain, horizon="12M", discount_rate=0.1),
        reference,
    )
    # a model that does not know its unit: time_unit= is checked against the data
    unit_less = clvmodels.BGNBD().fit(plain)
    assert unit_less.time_unit_ is None
    with pytest.raises(InvalidDataError, match=r"time_unit= says .* 'W' .* is 'D'"):
        clvmodels.predictive_clv(unit_less, spend, daily_frame, horizon="12M",
                                 discount_rate=0.1, time_unit="W")  # fmt: skip


def test_models_in_the_wrong_argument(weekly, cdnow_calibration) -> None:
    bgnbd, spend = weekly
    kwargs = {"horizon": "12M", "discount_rate": 0.1}
    with pytest.raises(InvalidDataError, match=r"purchase_model is a GammaGamma.*swapped"):
        clvmodels.predictive_clv(spend, bgnbd, cdnow_calibration, **kwargs)
    with pytest.raises(InvalidDataError, match=r"spend_model is a BGNBD.*spend_model a fitted"):
        clvmodels.predictive_clv(bgnbd, bgnbd, cdnow_calibration, **kwargs)
    retention = clvmodels.ShiftedBetaGeometric().fit(
        clvmodels.ShiftedBetaGeometric.data_from_counts([1000, 631, 468, 382])
    )
    with pytest.raises(InvalidDataError, match="purchase_model is a ShiftedBetaGeometric"):
        clvmodels.predictive_clv(retention, None, cdnow_calibration, time_unit="Y", **kwargs)
    # an unfitted model says so, before anything about time units
    with pytest.raises(NotFittedError, match="BGNBD is not fitted"):
        clvmodels.predictive_clv(clvmodels.BGNBD(), spend, cdnow_calibration, **kwargs)
    with pytest.raises(NotFittedError, match="GammaGamma is not fitted"):
        clvmodels.predictive_clv(bgnbd, clvmodels.GammaGamma(), cdnow_calibration, **kwargs)


def test_clv_settings_are_checked(weekly, cdnow_calibration) -> None:
    bgnbd, spend = weekly
    frame = cdnow_calibration.iloc[:20]
    kwargs = {"horizon": "12M", "discount_rate": 0.1}
    for nodes in (0, -1, 2.5):
        with pytest.raises(InvalidDataError, match=f"quadrature_nodes={nodes}"):
            clvmodels.predictive_clv(bgnbd, spend, frame, quadrature_nodes=nodes, **kwargs)
    with pytest.raises(InvalidDataError, match="n_draws=0"):
        clvmodels.predictive_clv(bgnbd, spend, frame, interval=0.9, n_draws=0, **kwargs)
    for interval in (0, 1.5, 90, "0.9"):
        with pytest.raises(InvalidDataError, match="interval="):
            clvmodels.predictive_clv(bgnbd, spend, frame, interval=interval, **kwargs)
    with pytest.raises(InvalidDataError, match="margin="):
        clvmodels.predictive_clv(bgnbd, spend, frame, margin="0.3", **kwargs)
    result = clvmodels.predictive_clv(bgnbd, spend, frame, interval=np.float32(0.9),
                                      n_draws=np.int64(50), **kwargs)  # fmt: skip
    assert list(result.columns) == ["estimate", "lower", "upper"]


def test_clv_refuses_absurd_draws_and_blocks_the_rest(weekly, cdnow_calibration,
                                                       monkeypatch) -> None:  # fmt: skip
    """n_draws above MAX_DRAWS is refused at once (it used to allocate 176 GiB for
    10,000,000 draws on CDNOW); below, blocks bound the memory without changing the
    interval."""
    from clvmodels.models import _base

    bgnbd, spend = weekly
    options = {"horizon": "52W", "discount_rate": 0.1, "interval": 0.9}
    with pytest.raises(InvalidDataError, match=r"n_draws=10,000,000: at most 1,000,000"):
        clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, n_draws=10_000_000, **options)
    rows = cdnow_calibration.iloc[:40]
    whole = clvmodels.predictive_clv(bgnbd, spend, rows, n_draws=200, **options)
    monkeypatch.setattr(_base, "_HELD_ELEMENTS", 500)
    monkeypatch.setattr(_base, "_STEP_ELEMENTS", 64)
    blocked = clvmodels.predictive_clv(bgnbd, spend, rows, n_draws=200, **options)
    pd.testing.assert_frame_equal(blocked, whole, rtol=1e-12)


@pytest.mark.parametrize("name", ["BGNBD", "MBGNBD", "ParetoNBD"])
def test_factored_clv_is_predictive_clv_by_history(name, cdnow_calibration) -> None:
    # E[X | x, t_x, T] = P(alive | x, t_x, T) g(x, T): g once per (x, T), P(alive) once
    # per history, the spend linear in the customer's mean
    from clvmodels.clv import FactoredClv, clv_group_draws

    frame = cdnow_calibration
    model = getattr(clvmodels, name)().fit(frame)
    spend = clvmodels.GammaGamma().fit(frame)
    factored = FactoredClv.of(model, spend, frame, "12M", 0.1)
    assert len(factored.pair_x) < len(factored.x) < len(frame)
    expected = clvmodels.predictive_clv(model, spend, frame, horizon="12M", discount_rate=0.1,
                                        margin=0.3)  # fmt: skip
    np.testing.assert_allclose(factored.customer_values(spend, 0.3), expected, rtol=1e-12)
    groups = (frame.index.to_numpy() % 3).astype(np.int64)
    drawn = factored.group_draws(spend, groups, 3, 0.3, 120, 4)
    value, alive = drawn.value, drawn.alive
    reference = clv_group_draws(model, spend, frame, groups, 3, horizon="12M",
                                discount_rate=0.1, margin=0.3, n_draws=120, random_state=4)
    np.testing.assert_allclose(value, reference, rtol=1e-12)
    per_customer = model.draws("probability_alive", frame, n_draws=120, random_state=4)
    summed = np.stack([np.bincount(groups, row, minlength=3)
                       for row in per_customer.values.reshape(120, -1)])  # fmt: skip
    np.testing.assert_allclose(alive, summed, rtol=1e-12)
    # what does not factor is declined, not approximated
    with_covariates = getattr(clvmodels, name)(purchase_covariates=["flag"]).fit(
        frame.assign(flag=(frame.index.to_numpy().astype(int) % 2).astype(float)))
    assert FactoredClv.of(with_covariates, spend, frame.assign(flag=0.0), "12M", 0.1) is None
    assert FactoredClv.of(model, None, frame, "12M", 0.1) is None

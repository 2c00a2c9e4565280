"""segment_value: segment totals by hand on a small log, payback from history and from
the model, bad costs, and intervals from joint draws summed per segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import clvmodels
from clvmodels.clv import clv_group_draws
from clvmodels.exceptions import InvalidDataError
from clvmodels.models._base import quantiles

END = "2021-03-01"
LOG = pd.DataFrame({
    "customer_id": ["a1", "a1", "a1", "a2", "b1", "b1", "b2", "b2"],
    "date": pd.to_datetime(["2021-01-04", "2021-01-18", "2021-02-15", "2021-01-11",
                            "2021-01-04", "2021-03-01", "2021-02-01", "2021-02-08"]),
    "amount": [10.0, 20.0, 30.0, 40.0, 5.0, 5.0, 8.0, 12.0],
})  # fmt: skip
CHANNEL = {"a1": "search", "a2": "search", "b1": "social", "b2": "social"}


@pytest.fixture(scope="module")
def fitted():
    """Models fitted on CDNOW in weeks; the small log's customers are scored with them."""
    cdnow = clvmodels.calibration_holdout(
        clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
        holdout_end="1998-06-30", time_unit="W", amount="amount", duplicates="keep",
    )  # fmt: skip
    return cdnow, clvmodels.BGNBD().fit(cdnow), clvmodels.GammaGamma().fit(cdnow)


def _small():
    frame = clvmodels.summarize(LOG, observation_end=END, time_unit="W", amount="amount")
    frame["channel"] = frame.index.map(CHANNEL)
    return frame


def test_segment_totals_by_hand(fitted) -> None:
    _, bgnbd, spend = fitted
    frame = _small()
    table = clvmodels.segment_value(
        bgnbd, spend, frame, transactions=LOG, segments="channel",
        acquisition_costs={"search": 30.0, "social": 100.0}, margin=0.5,
    )  # fmt: skip
    assert table.index.tolist() == ["search", "social"]
    assert table["customers"].tolist() == [2, 2]
    # margin 0.5 of (10 + 20 + 30 + 40) and of (5 + 5 + 8 + 12)
    assert table["historical_value"].tolist() == [50.0, 15.0]
    predicted = clvmodels.predictive_clv(bgnbd, spend, frame, horizon="12M",
                                         discount_rate=0.1, margin=0.5)  # fmt: skip
    by_channel = predicted.groupby(frame["channel"]).sum()
    np.testing.assert_allclose(table["predicted_value"], by_channel, rtol=1e-12)
    np.testing.assert_allclose(table["clv"], np.array([50.0, 15.0]) + by_channel.to_numpy(),
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(table["clv_to_cac"], table["clv"] / [30.0, 100.0], rtol=1e-12)
    alive = bgnbd.probability_alive(frame).groupby(frame["channel"]).mean()
    np.testing.assert_allclose(table["share_alive"], alive, rtol=1e-12)
    # search: 5 + 20 at age 0 (a1, a2), + 10 at age 2 weeks reaches 30, while both
    # customers were observed (the shortest observation is a2's, 7 weeks)
    assert table.loc["search", "payback_period"] == pytest.approx(2.0)
    assert table.loc["search", "payback_from"] == "history"
    # social: 15 to date and a few dollars expected: 100 is not reached
    assert table.loc["social", "payback_period"] == np.inf
    assert table.loc["social", "payback_from"] == "not within the horizon"
    assert table.attrs["time_unit"] == "W"


def test_payback_from_the_model_matches_a_root_of_the_expected_curve(fitted) -> None:
    # oracle: the cumulative margin at age a, history plus the model's expected
    # purchases beyond each customer's observation, solved by brentq
    _, bgnbd, spend = fitted
    frame = _small()
    social = frame[frame["channel"] == "social"]
    per_purchase = 0.5 * spend.expected_spend(social)
    lengths = social["T"]

    def margin_at(age: float) -> float:
        past = 15.0  # every purchase of b1 and b2 is within their observation
        later = social.index[lengths < age]
        future = sum(per_purchase[c] * float(bgnbd.expected_purchases(
            social.loc[[c]], age - lengths[c]).iloc[0]) for c in later)  # fmt: skip
        return past + future

    top = lengths.max() + 52.0  # within every customer's 12M horizon
    cost = 15.0 + 0.6 * (margin_at(top) - 15.0)
    expected = optimize.brentq(lambda a: margin_at(a) - cost, lengths.max(), top)
    table = clvmodels.segment_value(
        bgnbd, spend, frame, transactions=LOG, segments="channel",
        acquisition_costs={"search": 30.0, "social": cost}, margin=0.5,
    )  # fmt: skip
    assert table.loc["social", "payback_from"] == "model"
    # the curve is evaluated on a grid of 120 ages and interpolated linearly
    assert table.loc["social", "payback_period"] == pytest.approx(expected, abs=0.05)


def test_costs_per_customer_and_free_segments(fitted) -> None:
    _, bgnbd, spend = fitted
    frame = _small()
    per_customer = pd.Series({"a1": 10.0, "a2": 5.0, "b1": 0.0, "b2": 0.0})
    table = clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG,
                                    segments="channel", acquisition_costs=per_customer)  # fmt: skip
    assert table["cac"].tolist() == [15.0, 0.0]
    assert table.loc["social", "clv_to_cac"] == np.inf  # documented: free and worth something
    assert table.loc["social", "payback_period"] == 0.0
    assert table.loc["social", "payback_from"] == "history"


@pytest.mark.parametrize(("costs", "message"), [
    ({"search": -1.0, "social": 5.0}, r"acquisition_costs\['search'\] = -1.0"),
    ({"search": 1.0}, r"no cost for 1 segment\(s\), e.g. 'social'"),
    ({"search": 1.0, "social": 2.0, "email": 3.0}, "segment 'email' has no customers"),
    ({"search": float("nan"), "social": 2.0}, "give a finite cost"),
    (pd.Series({"a1": 1.0, "a2": 1.0, "b1": 1.0}), r"1 customers have a missing.*'b2'"),
    ([1.0, 2.0], "give a mapping"),
])  # fmt: skip
def test_bad_costs_are_named(fitted, costs, message) -> None:
    _, bgnbd, spend = fitted
    with pytest.raises(InvalidDataError, match=message):
        clvmodels.segment_value(bgnbd, spend, _small(), transactions=LOG, segments="channel",
                                acquisition_costs=costs)  # fmt: skip


def test_bad_segments_are_named(fitted) -> None:
    _, bgnbd, spend = fitted
    frame = _small()
    costs = {"search": 1.0, "social": 1.0}
    with pytest.raises(InvalidDataError, match="one of them"):
        clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG, acquisition_costs=costs)
    with pytest.raises(InvalidDataError, match="'region' is not a column"):
        clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG, segments="region",
                                acquisition_costs=costs)  # fmt: skip
    frame.loc["b2", "channel"] = None
    with pytest.raises(InvalidDataError, match=r"1 customers have no segment .*'b2'"):
        clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG, segments="channel",
                                acquisition_costs=costs)  # fmt: skip
    with pytest.raises(InvalidDataError, match="have no transactions"):
        clvmodels.segment_value(bgnbd, spend, _small(), transactions=LOG.iloc[:4],
                                segments="channel", acquisition_costs=costs)  # fmt: skip


def test_cohorts_of_first_purchases(fitted) -> None:
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    table = clvmodels.segment_value(bgnbd, spend, cdnow, transactions=log, cohort="M",
                                    acquisition_costs=costs)  # fmt: skip
    first = log.groupby("customer_id")["date"].min().dt.to_period("M").astype(str)
    assert table["customers"].to_dict() == first.value_counts().sort_index().to_dict()
    past = clvmodels.historical_clv(log, as_of="1997-09-30", time_unit="W",
                                    duplicates="keep")["value"]
    np.testing.assert_allclose(table["historical_value"], past.groupby(first).sum(), rtol=1e-12)


def test_group_draws_are_predictive_clvs_draws(fitted) -> None:
    # each customer its own group: the bounds are predictive_clv's, draw for draw
    cdnow, bgnbd, spend = fitted
    options = {"horizon": "12M", "discount_rate": 0.1}
    draws = clv_group_draws(bgnbd, spend, cdnow, np.arange(len(cdnow)), len(cdnow),
                            n_draws=200, random_state=3, **options)  # fmt: skip
    bounds = clvmodels.predictive_clv(bgnbd, spend, cdnow, interval=0.9, n_draws=200,
                                      random_state=3, **options)  # fmt: skip
    lower, upper = quantiles(draws, 0.9)
    np.testing.assert_allclose(lower, bounds["lower"], rtol=1e-10)
    np.testing.assert_allclose(upper, bounds["upper"], rtol=1e-10)


def test_segment_intervals_come_from_summed_draws(fitted) -> None:
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    table = clvmodels.segment_value(bgnbd, spend, cdnow, transactions=log, cohort="M",
                                    acquisition_costs=costs, interval=0.9, n_draws=200,
                                    random_state=3)  # fmt: skip
    first = log.groupby("customer_id")["date"].min().dt.to_period("M").astype(str)
    codes = pd.Index(table.index).get_indexer(first.reindex(cdnow.index))
    draws = clv_group_draws(bgnbd, spend, cdnow, codes, 3, n_draws=200, random_state=3,
                            horizon="12M", discount_rate=0.1)  # fmt: skip
    lower, upper = quantiles(draws, 0.9)
    np.testing.assert_allclose(table["predicted_value_lower"], lower, rtol=1e-12)
    np.testing.assert_allclose(table["predicted_value_upper"], upper, rtol=1e-12)
    assert (table["clv_lower"] <= table["clv"]).all() and (table["clv"] <= table["clv_upper"]).all()
    assert (table["share_alive_lower"] <= table["share_alive_upper"]).all()
    # where it matters: adding up the customers' own bounds (as if every customer's value
    # moved with the parameters in lock-step, and each one's 5 % tail at once) gives a
    # wider band than the segment's own draws
    own = clvmodels.predictive_clv(bgnbd, spend, cdnow, interval=0.9, n_draws=200,
                                   random_state=3, horizon="12M", discount_rate=0.1)  # fmt: skip
    summed = (own["upper"] - own["lower"]).groupby(first.reindex(cdnow.index)).sum()
    honest = table["predicted_value_upper"] - table["predicted_value_lower"]
    assert (honest < 0.9 * summed).all()


def test_payback_at_a_purchase_after_the_shortest_observation(fitted) -> None:
    # a2 joins a week before the end, so from age 1 week on the model counts a2's
    # expected purchases; the cost is reached at a1's purchase at age 6 weeks (cumulative
    # margin 5 + 20 at age 0, + 10 at 2 weeks, + 15 at 6 weeks against 40), which the
    # model's few dollars for a2 do not bring forward: exactly 6 weeks, from the model
    _, bgnbd, spend = fitted
    log = pd.DataFrame({
        "customer_id": ["a1", "a1", "a1", "a2"],
        "date": pd.to_datetime(["2021-01-04", "2021-01-18", "2021-02-15", "2021-02-22"]),
        "amount": [10.0, 20.0, 30.0, 40.0],
    })  # fmt: skip
    frame = clvmodels.summarize(log, observation_end="2021-03-01", time_unit="W",
                                amount="amount")  # fmt: skip
    frame["channel"] = "search"
    table = clvmodels.segment_value(bgnbd, spend, frame, transactions=log,
                                    segments="channel", acquisition_costs={"search": 40.0},
                                    margin=0.5)  # fmt: skip
    assert table.loc["search", "payback_from"] == "model"
    assert table.loc["search", "payback_period"] == pytest.approx(6.0, abs=1e-9)


# ------------------------------------------------------------- retention by cohort

RETENTION_LOG = pd.DataFrame({
    "customer_id": ["c1", "c1", "c1", "c1", "c2", "c2", "c2", "c3", "c3"],
    "date": pd.to_datetime(["2021-01-04", "2021-01-10", "2021-01-12", "2021-02-01",
                            "2021-01-20", "2021-01-20", "2021-02-10",
                            "2021-02-01", "2021-02-20"]),
    "amount": 10.0,
})  # fmt: skip


def test_cohort_retention_by_hand(fitted) -> None:
    # two-week periods. c1 (January): purchases at ages 6 and 8 days (period 1) and at
    # exactly 4 weeks (period 2: periods are right-closed); c2 (January): one on the
    # day of acquisition (not a repeat) and one at 3 weeks (period 2); c3 (February): at
    # 19 days (period 2). Observed: c1 8 weeks (4 periods), c2 5.7 and c3 4 (2 each).
    _, bgnbd, _ = fitted
    frame = clvmodels.summarize(RETENTION_LOG, observation_end="2021-03-01", time_unit="W",
                                duplicates="keep")  # fmt: skip
    table = clvmodels.cohort_retention(bgnbd, frame, transactions=RETENTION_LOG,
                                       cohort="M", period="2W")  # fmt: skip
    assert table.index.tolist() == [("2021-01", 1), ("2021-01", 2), ("2021-01", 3),
                                    ("2021-01", 4), ("2021-02", 1), ("2021-02", 2)]
    assert table["customers"].tolist() == [2, 2, 2, 2, 1, 1]
    assert table["at_risk"].tolist() == [2, 2, 1, 1, 1, 1]
    assert table["purchasing"].tolist() == [1, 2, 0, 0, 0, 1]
    np.testing.assert_allclose(table["observed_share"], [0.5, 1.0, 0.0, 0.0, 0.0, 1.0])
    curve = bgnbd.probability_repurchase_new_customer([0, 2, 4, 6], 2)
    np.testing.assert_allclose(table["expected_share"], curve.to_numpy()[[0, 1, 2, 3, 0, 1]],
                               rtol=1e-14)  # fmt: skip
    assert table.attrs["period_length"] == 2.0 and table.attrs["time_unit"] == "W"
    # at most 1 period; a period longer than any observation is refused by name
    assert len(clvmodels.cohort_retention(bgnbd, frame, transactions=RETENTION_LOG,
                                          cohort="M", period="2W", periods=1)) == 2
    with pytest.raises(InvalidDataError, match="whole period"):
        clvmodels.cohort_retention(bgnbd, frame, transactions=RETENTION_LOG, period="10W")
    with pytest.raises(InvalidDataError, match="have no transactions"):
        clvmodels.cohort_retention(bgnbd, frame, transactions=RETENTION_LOG.iloc[:4])


def test_cohort_retention_intervals_and_covariates(fitted) -> None:
    cdnow, _, _ = fitted
    log = clvmodels.datasets.load_cdnow()
    frame = cdnow.copy()
    # a synthetic flag (even ids) to give the model a covariate with two profiles
    frame["flag"] = (frame.index.to_numpy().astype(int) % 2).astype(float)
    model = clvmodels.ParetoNBD(purchase_covariates=["flag"]).fit(frame)
    table = clvmodels.cohort_retention(model, frame, transactions=log, cohort="M",
                                       interval=0.9, n_draws=200)  # fmt: skip
    assert (table["expected_share_lower"] < table["expected_share"]).all()
    assert (table["expected_share"] < table["expected_share_upper"]).all()
    # each cell: the mean over the customers observed through the period of their
    # profile's probability
    first = log.groupby("customer_id")["date"].min().dt.to_period("M").astype(str)
    cohort, period = "1997-02", 7
    length = table.attrs["period_length"]
    at_risk = frame[(first.reindex(frame.index) == cohort)
                    & (frame["T_cal"] >= period * length - 1e-9)]  # fmt: skip
    by_flag = {flag: model.probability_repurchase_new_customer(
        (period - 1) * length, length, covariates={"flag": flag}) for flag in (0.0, 1.0)}
    expected = at_risk["flag"].map(by_flag).mean()
    assert table.loc[(cohort, period), "at_risk"] == len(at_risk)
    assert table.loc[(cohort, period), "expected_share"] == pytest.approx(expected, rel=1e-12)


def test_cohort_retention_of_a_bayesian_model(fitted) -> None:
    cdnow, _, _ = fitted
    log = clvmodels.datasets.load_cdnow()
    from clvmodels import bayes

    model = bayes.BGNBD().fit(cdnow, method="map", draws=400, random_seed=1)
    table = clvmodels.cohort_retention(model, cdnow, transactions=log, cohort="M",
                                       interval=0.9, periods=3)  # fmt: skip
    # equal-tailed bounds over the posterior draws, as for the segment tables
    length = table.attrs["period_length"]
    samples = model.posterior_samples()
    values = [clvmodels.BGNBD._f_probability_repurchase(0.0, 0, 0, 0, *row, length=length)
              for row in samples[np.unique(np.linspace(0, len(samples) - 1, 400).round())
                                 .astype(int)]]  # fmt: skip
    lower, upper = np.quantile(values, [0.05, 0.95])
    row = table.loc[("1997-01", 1)]
    assert row["expected_share_lower"] == pytest.approx(lower, rel=1e-9)
    assert row["expected_share_upper"] == pytest.approx(upper, rel=1e-9)
    assert row["expected_share"] == pytest.approx(np.mean(values), rel=1e-9)


def test_payback_curves_cross_the_cost_at_the_payback_period(fitted) -> None:
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    options = {"transactions": log, "cohort": "M", "acquisition_costs": costs, "margin": 0.3}
    table = clvmodels.segment_value(bgnbd, spend, cdnow, **options)
    curves = clvmodels.payback_curves(bgnbd, spend, cdnow, **options)
    first = _first_month(log, cdnow)
    for segment, part in curves.groupby(level="segment"):
        ages = part.index.get_level_values("age").to_numpy()
        covered = part["covered"].to_numpy()
        # at age 0: the margin of the purchases on each customer's first day
        mine = log[log["customer_id"].isin(cdnow.index[first == segment])]
        day_one = mine[mine["date"] == mine.groupby("customer_id")["date"].transform("min")]
        assert covered[0] == pytest.approx(0.3 * day_one["amount"].sum() / costs[segment],
                                           rel=1e-9)  # fmt: skip
        assert np.all(np.diff(covered) >= -1e-12)  # cumulative
        payback = table.loc[segment, "payback_period"]
        assert np.isfinite(payback)
        assert covered[ages < payback - 1e-9].max(initial=0) < 1.0 + 1e-9
        assert covered[ages >= payback].min() >= 1.0 - 1e-9
    # February's first purchases alone pay for it
    assert table.loc["1997-02", "payback_period"] == 0.0
    assert table.loc["1997-02", "payback_from"] == "history"
    assert curves.attrs["time_unit"] == "W"


def _first_month(log: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    first = log.groupby("customer_id")["date"].min().dt.to_period("M").astype(str)
    return first.reindex(frame.index).to_numpy()


# ------------------------------------------------------- subscription retention (sBG)


def _fh2007_active() -> pd.DataFrame:
    pct = clvmodels.datasets.load_sbg_retention().set_index("year").loc[:7]
    active = (pct[["regular_pct_alive", "highend_pct_alive"]].T * 10).round()
    active.index = pd.Index(["regular", "high end"], name="segment")
    return active


def test_subscription_retention_reproduces_fader_hardie_2007() -> None:
    table = clvmodels.subscription_retention(_fh2007_active(), periods=12, interval=0.9,
                                             n_draws=400)  # fmt: skip
    # FH 2007, table 2 / figure 4: regular alpha 0.704, beta 1.182; high end 0.668, 3.806
    params = table.groupby(level="cohort")[["alpha", "beta"]].first().round(3)
    assert params.loc["regular"].tolist() == [0.704, 1.182]
    assert params.loc["high end"].tolist() == [0.668, 3.806]
    regular = table.loc["regular"]
    assert regular["observed_survival"].iloc[:8].round(3).tolist() == [
        1.0, 0.631, 0.468, 0.382, 0.326, 0.289, 0.262, 0.241]
    assert regular["active"].iloc[8:].isna().all()  # years 8-12 are projections
    # FH 2007's projection for year 12 (actual: 0.173); r_t = (beta + t - 1) / (alpha +
    # beta + t - 1) by hand
    assert regular.loc[12, "survival"] == pytest.approx(0.170, abs=5e-4)
    alpha, beta = regular["alpha"].iloc[0], regular["beta"].iloc[0]
    assert regular.loc[5, "retention_rate"] == pytest.approx((beta + 4) / (alpha + beta + 4))
    assert np.isnan(regular.loc[0, "retention_rate"])
    assert regular.loc[3, "observed_retention"] == pytest.approx(382 / 468)
    inside = table.dropna(subset=["retention_rate"])
    assert (inside["retention_rate_lower"] < inside["retention_rate"]).all()
    assert (inside["survival_upper"] > inside["survival"]).all()


def test_subscription_retention_cohorts_of_different_lengths() -> None:
    active = pd.DataFrame({0: [1000.0, 800.0], 1: [700.0, 570.0], 2: [560.0, 450.0],
                           3: [480.0, 380.0], 4: [425.0, np.nan], 5: [390.0, np.nan]},
                          index=["2022", "2023"])  # fmt: skip
    table = clvmodels.subscription_retention(active)
    assert table.loc["2023", "active"].tolist()[:4] == [800.0, 570.0, 450.0, 380.0]
    assert table.loc["2023", "active"].iloc[4:].isna().all()
    assert len(table.loc["2023"]) == 6  # projected through the longest observation
    # each cohort its own fit: the later one's estimates come from its four periods
    alone = clvmodels.ShiftedBetaGeometric().fit(
        clvmodels.ShiftedBetaGeometric.data_from_counts([800, 570, 450, 380]))
    assert table.loc[("2023", 0), "alpha"] == pytest.approx(alone.params_["alpha"], rel=1e-12)


@pytest.mark.parametrize(("active", "message"), [
    (pd.DataFrame({0: [1000.0], 1: [np.nan], 2: [500.0]}, index=["a"]), "missing count"),
    (pd.DataFrame({0: [1000.0], 1: [1200.0]}, index=["a"]), "cohort 'a'.*must not increase"),
    (pd.DataFrame({0: [1000.0, 900.0], 1: [800.0, 700.0]}, index=["a", "a"]), "appears twice"),
    (pd.DataFrame({0: ["many"], 1: [1.0]}, index=["a"]), "must be numbers"),
])  # fmt: skip
def test_subscription_retention_refuses_bad_counts(active, message) -> None:
    with pytest.raises(InvalidDataError, match=message):
        clvmodels.subscription_retention(active)


# ------------------------------------------------- the factored route and the others


def test_the_factored_route_equals_the_customer_route(fitted, monkeypatch) -> None:
    # segment_value works once per distinct history where the model allows
    # (clv.FactoredClv); customer by customer, as for models with covariates, every
    # number is the same
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    options = {"transactions": log, "cohort": "M", "margin": 0.3, "interval": 0.9,
               "n_draws": 150, "random_state": 5,
               "acquisition_costs": {"1997-01": 19_000.0, "1997-02": 8_000.0,
                                     "1997-03": 14_500.0}}  # fmt: skip
    fast = clvmodels.segment_value(bgnbd, spend, cdnow, **options)
    monkeypatch.setattr(clvmodels.clv.FactoredClv, "of", classmethod(lambda cls, *a: None))
    slow = clvmodels.segment_value(bgnbd, spend, cdnow, **options)
    assert (fast["payback_from"] == slow["payback_from"]).all()
    assert set(fast["payback_from"]) >= {"model"}
    numeric = fast.columns.drop("payback_from")
    np.testing.assert_allclose(fast[numeric], slow[numeric], rtol=1e-10)


def test_segment_value_of_a_model_with_covariates(fitted) -> None:
    cdnow, _, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    frame = cdnow.copy()
    frame["flag"] = (frame.index.to_numpy().astype(int) % 2).astype(float)
    model = clvmodels.BGNBD(purchase_covariates=["flag"]).fit(frame)
    costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    table = clvmodels.segment_value(model, spend, frame, transactions=log, cohort="M",
                                    acquisition_costs=costs, interval=0.9, n_draws=100)
    predicted = clvmodels.predictive_clv(model, spend, frame, horizon="12M",
                                         discount_rate=0.1)  # fmt: skip
    by_cohort = predicted.groupby(_first_month(log, frame)).sum()
    np.testing.assert_allclose(table["predicted_value"], by_cohort, rtol=1e-12)
    assert (table["clv_lower"] < table["clv"]).all() and (table["clv"] < table["clv_upper"]).all()


def test_segment_value_of_bayesian_models(fitted) -> None:
    from clvmodels import bayes

    cdnow, _, _ = fitted
    log = clvmodels.datasets.load_cdnow()
    purchases = bayes.BGNBD().fit(cdnow, method="map", draws=300, random_seed=2)
    spend = bayes.GammaGamma().fit(cdnow, method="map", draws=300, random_seed=3)
    costs = {"1997-01": 9_000.0, "1997-02": 8_000.0, "1997-03": 7_500.0}
    table = clvmodels.segment_value(purchases, spend, cdnow, transactions=log, cohort="M",
                                    acquisition_costs=costs, interval=0.9)  # fmt: skip
    draws = clv_group_draws(purchases, spend, cdnow,
                            pd.Index(table.index).get_indexer(_first_month(log, cdnow)), 3,
                            horizon="12M", discount_rate=0.1, n_draws=500)  # fmt: skip
    lower, upper = quantiles(draws, 0.9)
    np.testing.assert_allclose(table["predicted_value_lower"], lower, rtol=1e-10)
    np.testing.assert_allclose(table["predicted_value_upper"], upper, rtol=1e-10)
    # the value itself is the posterior mean, as predictive_clv gives it
    from clvmodels.models._base import point_estimate

    mean = clvmodels.predictive_clv(purchases, spend, cdnow, horizon="12M", discount_rate=0.1)
    by_cohort = point_estimate(mean).groupby(_first_month(log, cdnow)).sum()
    np.testing.assert_allclose(table["predicted_value"], by_cohort, rtol=1e-12)


@pytest.mark.parametrize("factored", [True, False])
def test_payback_draws_are_the_payback_at_each_draw(fitted, factored) -> None:
    # the payback interval: at each joint draw, the payback of the models set to that
    # draw (recomputed from scratch here for a few draws), by both routes
    import copy

    from clvmodels import economics
    from clvmodels.clv import FactoredClv, _paired_draws

    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    costs = {"1997-01": 19_000.0, "1997-02": 8_000.0, "1997-03": 14_500.0}
    setup = economics._Setup.of(bgnbd, cdnow, log, None, "M",
                                ("customer_id", "date", "amount"), "test")  # fmt: skip
    cac = economics._costs(costs, setup.groups, cdnow.index)
    route = FactoredClv.of(bgnbd, spend, cdnow, "12M", 0.1) if factored else None
    curve = economics._payback_curve(bgnbd, spend, cdnow, setup.bought, setup.groups, 0.3,
                                     "12M", "W", route)  # fmt: skip
    periods, _ = economics._crossings(curve, cac)
    part = economics._ModelPart(bgnbd, spend, cdnow, setup.groups, 0.3, 52.17857142857143,
                                route)  # fmt: skip
    part.use_draws(60, 9, [0, 1, 2])
    draws = economics._payback_draws(curve, cac, periods, part, [0, 1, 2])
    p_draws, s_draws = _paired_draws(bgnbd, spend, 60, 9)
    for d in (0, 17, 59):
        purchases, value = copy.deepcopy(bgnbd), copy.deepcopy(spend)
        purchases.params_ = pd.Series(p_draws[d], index=bgnbd.params_.index)
        value.params_ = pd.Series(s_draws[d], index=spend.params_.index)
        again = clvmodels.segment_value(purchases, value, cdnow, transactions=log, cohort="M",
                                        acquisition_costs=costs, margin=0.3)  # fmt: skip
        np.testing.assert_allclose(draws[d], again["payback_period"], rtol=1e-10)
    # January pays back from the model: its draws differ; the others from history alone
    assert np.ptp(draws[:, 0]) > 0.1
    assert np.all(draws[:, 1:] == periods[1:])


def test_payback_interval_in_the_table(fitted) -> None:
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    costs = {"1997-01": 19_000.0, "1997-02": 8_000.0, "1997-03": 40_000.0}
    table = clvmodels.segment_value(bgnbd, spend, cdnow, transactions=log, cohort="M",
                                    acquisition_costs=costs, margin=0.3, interval=0.9,
                                    n_draws=200)  # fmt: skip
    january = table.loc["1997-01"]
    assert january["payback_period_lower"] < january["payback_period"]
    assert january["payback_period"] < january["payback_period_upper"]
    february = table.loc["1997-02"]  # paid back by the first purchases: a fact
    assert february["payback_period_lower"] == february["payback_period_upper"] == 0.0
    march = table.loc["1997-03"]  # never within the horizon, at any draw
    assert march["payback_from"] == "not within the horizon"
    assert np.isinf(march[["payback_period", "payback_period_lower",
                           "payback_period_upper"]].astype(float)).all()  # fmt: skip


# ---------------------------------------------------------------- review findings


def test_purchases_at_a_period_end_stay_in_that_period(fitted) -> None:
    # one-day periods in a weekly model: a purchase k days after acquisition is in period
    # k, whatever the rounding of (k / 7) / (1 / 7)
    _, bgnbd, _ = fitted
    days = [1, 2, 3, 5, 7, 9, 13, 18, 25]
    log = pd.DataFrame({
        "customer_id": "c1",
        "date": pd.Timestamp("2021-01-04") + pd.to_timedelta([0, *days], unit="D"),
        "amount": 1.0,
    })  # fmt: skip
    frame = clvmodels.summarize(log, observation_end="2021-02-01", time_unit="W")
    table = clvmodels.cohort_retention(bgnbd, frame, transactions=log, period="1D")
    bought = table.loc["2021-01", "purchasing"]
    assert bought[bought > 0].index.tolist() == days
    assert table.loc["2021-01", "at_risk"].index.max() == 28


def test_a_payback_after_the_shortest_observation_is_the_models(fitted) -> None:
    # search's history reaches 50 at 6 weeks (a1); its cost is a little more, so the
    # model's part, which starts when a2's observation ends at 7 weeks, decides
    _, bgnbd, spend = fitted
    costs = {"search": 50.003, "social": 100.0}
    table = clvmodels.segment_value(bgnbd, spend, _small(), transactions=LOG,
                                    segments="channel", acquisition_costs=costs,
                                    margin=0.5)  # fmt: skip
    assert table.loc["search", "payback_from"] == "model"
    assert 7.0 < table.loc["search", "payback_period"] < 7.1
    curves = clvmodels.payback_curves(bgnbd, spend, _small(), transactions=LOG,
                                      segments="channel", acquisition_costs=costs,
                                      margin=0.5)  # fmt: skip
    assert curves.loc[("search", 7.0), "cumulative_margin"] == 50.0  # history alone


def test_a_generator_seeds_every_draw_alike(fitted) -> None:
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    options = {"transactions": log, "cohort": "M", "margin": 0.3, "interval": 0.9,
               "n_draws": 100, "acquisition_costs": {"1997-01": 19_000.0,
                                                     "1997-02": 8_000.0,
                                                     "1997-03": 14_500.0}}  # fmt: skip
    generated = clvmodels.segment_value(bgnbd, spend, cdnow, **options,
                                        random_state=np.random.default_rng(5))  # fmt: skip
    seed = int(np.random.default_rng(5).integers(2**63 - 1))
    seeded = clvmodels.segment_value(bgnbd, spend, cdnow, **options, random_state=seed)
    numeric = seeded.columns.drop("payback_from")
    np.testing.assert_array_equal(generated[numeric], seeded[numeric])


def test_ambiguous_series_are_refused(fitted) -> None:
    _, bgnbd, spend = fitted
    frame = _small()
    channel = pd.Series(["search", "search", "social", "social", "social"],
                        index=["a1", "a2", "b1", "b2", "b2"])  # fmt: skip
    with pytest.raises(InvalidDataError, match="customer 'b2' appears more than once"):
        clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG, segments=channel,
                                acquisition_costs={"search": 1.0, "social": 1.0})
    per_customer = pd.Series(["10", "ten", "5", "5"], index=["a1", "a2", "b1", "b2"])
    with pytest.raises(InvalidDataError, match=r"not numbers .*'ten' for customer 'a2'"):
        clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG, segments="channel",
                                acquisition_costs=per_customer)
    totals = pd.Series([1.0, 2.0, 5.0], index=["search", "search", "social"])
    with pytest.raises(InvalidDataError, match="segment 'search' appears more than once"):
        clvmodels.segment_value(bgnbd, spend, frame, transactions=LOG, segments="channel",
                                acquisition_costs=totals)
    with pytest.raises(InvalidDataError, match="cohort=None"):
        clvmodels.cohort_retention(bgnbd, frame, transactions=LOG, cohort=None)
    with pytest.raises(InvalidDataError, match="periods=True"):
        clvmodels.cohort_retention(bgnbd, frame, transactions=LOG, periods=True)
    shuffled = pd.DataFrame({1: [700.0], 0: [1000.0], 2: [600.0]}, index=["a"])
    with pytest.raises(InvalidDataError, match=r"periods 0, 1, 2, \.\.\. in order"):
        clvmodels.subscription_retention(shuffled)


def test_spend_with_an_infinite_mean(fitted, monkeypatch) -> None:
    # a spend model with q <= 1 has no mean: refused by name, as predictive_clv does
    import copy

    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    costs = {"1997-01": 19_000.0, "1997-02": 8_000.0, "1997-03": 14_500.0}
    options = {"transactions": log, "cohort": "M", "acquisition_costs": costs, "margin": 0.3}
    broken = copy.deepcopy(spend)
    broken.params_ = spend.params_.copy()
    broken.params_["q"] = 0.9
    for function in (clvmodels.segment_value, clvmodels.payback_curves):
        with pytest.raises(InvalidDataError, match="q"):
            function(bgnbd, broken, cdnow, **options)
    # draws with q <= 1 (a wide covariance near q = 1): both routes give the same bounds,
    # none of them NaN (an infinite expected spend pays back at once)
    wide = copy.deepcopy(spend)
    wide.params_ = spend.params_.copy()
    wide.params_["q"] = 1.15
    wide.covariance_ = spend.covariance_ * 4
    fast = clvmodels.segment_value(bgnbd, wide, cdnow, **options, interval=0.9, n_draws=200)
    monkeypatch.setattr(clvmodels.clv.FactoredClv, "of", classmethod(lambda cls, *a: None))
    slow = clvmodels.segment_value(bgnbd, wide, cdnow, **options, interval=0.9, n_draws=200)
    bounds = ["payback_period_lower", "payback_period_upper"]
    assert not fast[bounds].isna().any().any()
    np.testing.assert_allclose(fast[bounds], slow[bounds], rtol=1e-10)


def test_random_state_forms(fitted) -> None:
    cdnow, bgnbd, spend = fitted
    log = clvmodels.datasets.load_cdnow()
    options = {"transactions": log, "cohort": "M", "interval": 0.9, "n_draws": 50,
               "acquisition_costs": {"1997-01": 9_000.0, "1997-02": 8_000.0,
                                     "1997-03": 7_500.0}}  # fmt: skip
    table = clvmodels.segment_value(bgnbd, spend, cdnow, **options, random_state=None)
    assert (table["clv_lower"] <= table["clv_upper"]).all()
    with pytest.raises(InvalidDataError, match="random_state='seven'"):
        clvmodels.segment_value(bgnbd, spend, cdnow, **options, random_state="seven")

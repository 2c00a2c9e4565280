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

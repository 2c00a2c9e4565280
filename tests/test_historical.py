"""Historical value reconciles with the raw transactions; cohorts; the comparison with
predicted CLV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError


def test_historical_clv_reconciles_to_the_cent(cdnow_master) -> None:
    result = clvmodels.historical_clv(cdnow_master, as_of="1997-09-30", margin=0.3)
    raw = cdnow_master[cdnow_master["date"] <= "1997-09-30"]
    assert round(result["revenue"].sum(), 2) == round(raw["amount"].sum(), 2)
    per_customer = raw.groupby("customer_id")["amount"].sum()
    np.testing.assert_array_equal(result["revenue"].round(2), per_customer.round(2))
    np.testing.assert_allclose(result["value"], 0.3 * result["revenue"])
    days = raw.groupby("customer_id")["date"].nunique()
    np.testing.assert_array_equal(result["n_purchases"], days)
    np.testing.assert_allclose(result["average_order_value"], per_customer / days)
    assert (result["last_purchase"] <= pd.Timestamp("1997-09-30")).all()


def test_historical_clv_compounding() -> None:
    tx = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2023-01-01", "2024-01-01"],
                       "amount": [100.0, 50.0]})  # fmt: skip
    result = clvmodels.historical_clv(tx, as_of="2024-01-01", discount_rate=0.1)
    years = 365 / 365.25
    assert result.loc["a", "value_compounded"] == pytest.approx(100 * 1.1**years + 50)
    assert result.loc["a", "tenure"] == 365
    with pytest.raises(InvalidDataError, match="as_of"):
        clvmodels.historical_clv(tx, as_of="2020-01-01")


def test_cohort_table(cdnow_master) -> None:
    table = clvmodels.cohort_table(cdnow_master, period="M", as_of="1998-06-30")
    first = cdnow_master.groupby("customer_id")["date"].min().dt.to_period("M")
    assert table["customers"].tolist() == first.value_counts().sort_index().tolist()
    assert round(table["revenue"].sum(), 2) == round(cdnow_master["amount"].sum(), 2)
    january = cdnow_master[cdnow_master["customer_id"].isin(first[first == "1997-01"].index)]
    month = january["date"].dt.to_period("M")
    spent_by_feb = january.loc[month <= "1997-02", "amount"].sum()
    assert table.iloc[0]["age 1"] == pytest.approx(spent_by_feb / table.iloc[0]["customers"])
    # cumulative, and empty where a cohort is not that old yet
    ages = table.filter(like="age").to_numpy()
    assert np.all(np.diff(ages[0]) >= 0)
    assert np.isnan(ages[2, -1]) and not np.isnan(ages[0, -1])
    with pytest.raises(InvalidDataError, match="calendar period"):
        clvmodels.cohort_table(cdnow_master, period="7D")


def test_compare_clv(cdnow_sample, cdnow_calibration) -> None:
    past = clvmodels.historical_clv(cdnow_sample, as_of="1997-09-30", time_unit="W")
    bgnbd = clvmodels.BGNBD().fit(cdnow_calibration)
    spend = clvmodels.GammaGamma().fit(cdnow_calibration)
    future = clvmodels.predictive_clv(bgnbd, spend, cdnow_calibration, horizon="12M",
                                      discount_rate=0.1, interval=0.9, n_draws=100)  # fmt: skip
    alive = bgnbd.probability_alive(cdnow_calibration)
    result = clvmodels.compare_clv(past, future, probability_alive=alive)
    customers = result.customers
    assert len(customers) == 2357
    high_past = customers["historical"] > customers["historical"].median()
    high_future = customers["predicted"] > customers["predicted"].median()
    assert (customers.loc[high_past & high_future, "quadrant"] == "high/high").all()
    at_risk = customers["segment"] == "at risk"
    assert (customers.loc[at_risk, "probability_alive"] < 0.5).all()
    assert high_past[at_risk].all()
    assert (customers.loc[customers["segment"] == "rising", "quadrant"] == "low/high").all()
    assert result.segments.loc[["high/high", "high/low", "low/high", "low/low"],
                               "customers"].sum() == 2357  # fmt: skip
    from scipy import stats

    assert result.rank_correlation == pytest.approx(
        stats.spearmanr(customers["historical"], customers["predicted"]).statistic
    )
    top = customers["predicted"].sort_values(ascending=False).iloc[: round(0.1 * 2357)]
    assert result.concentration.loc["top 10%", "predicted"] == pytest.approx(
        top.sum() / customers["predicted"].sum()
    )
    with pytest.raises(InvalidDataError, match="share no customer"):
        clvmodels.compare_clv(past["value"], pd.Series([1.0], index=["nobody"]))


def test_as_of_is_through_the_end_of_the_day_and_must_be_a_date() -> None:
    tx = pd.DataFrame({"customer_id": ["a", "a", "a"],
                       "date": ["2024-01-01", "2024-01-05 18:00", "2024-01-06"],
                       "amount": [1.0, 2.0, 4.0]})  # fmt: skip
    result = clvmodels.historical_clv(tx, as_of="2024-01-05")
    assert result.loc["a", "revenue"] == 3.0
    with pytest.raises(InvalidDataError, match="relative words"):
        clvmodels.historical_clv(tx, as_of="now")
    with pytest.raises(InvalidDataError, match="outside"):
        clvmodels.cohort_table(tx, as_of="9999-12-31")


@pytest.mark.parametrize("kind", ["csv", "parquet", "relation", "polars"])
def test_every_input_summarize_takes_gives_the_same_history(cdnow_sample, tmp_path, kind):
    import duckdb
    import polars as pl

    tx = cdnow_sample[["customer_id", "date", "amount"]]
    if kind == "csv":
        source = tmp_path / "log.csv"
        tx.to_csv(source, index=False, sep=";")
    elif kind == "parquet":
        source = tmp_path / "log.parquet"
        tx.to_parquet(source)
    elif kind == "relation":
        source = duckdb.connect().from_df(tx)
    else:
        source = pl.from_pandas(tx)
    settings = {"duplicates": "keep"}
    expected = clvmodels.historical_clv(tx, as_of="1997-09-30", time_unit="W", **settings)
    got = clvmodels.historical_clv(source, as_of="1997-09-30", time_unit="W", **settings)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(
        clvmodels.cohort_table(source, period="M", **settings),
        clvmodels.cohort_table(tx, period="M", **settings), check_exact=False, rtol=1e-12,
    )  # fmt: skip

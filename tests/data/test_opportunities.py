"""Tests of the BG/BB data builders (discrete transaction opportunities, FHS 2010).

Checks: small logs computed by hand (windows merged, incomplete last window ignored,
customers without repeat or opportunity, amounts, months and weeks); an independent
pandas-Period oracle on random logs; the donations data of Fader, Hardie & Shang (2010)
rebuilt from a dated log, with the published estimates; calibration/holdout with
evaluation, CLV and compress; errors; polars input.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvmodels
from clvmodels import BGBB, GammaGamma
from clvmodels.data.opportunities import (
    calibration_holdout_opportunities,
    summarize_opportunities,
)
from clvmodels.exceptions import InvalidDataError

# FHS (2010), section 4: the published estimates on the donations data.
PAPER = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


def _yearly_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "c", "c", "c", "d", "e"],
            "date": [
                "2000-03-01", "2000-05-01",  # a: period 0, two purchases in one window
                "2001-02-01", "2001-11-11",  # a: one transaction in 2001, worth 50
                "2003-01-15",  # a: 2003 is not complete on 2003-06-30: ignored
                "2001-07-01",  # b: no repeat
                "1999-12-31", "2000-01-01", "2002-06-06",  # c: windows 1999, 2000, 2002
                "2002-12-31",  # d: acquired in the last complete window
                "2003-02-02",  # e: acquired in the incomplete window
            ],
            "amount": [10.0, 5.0, 20.0, 30.0, 99.0, 8.0, 1.0, 2.0, 4.0, 7.0, 5.0],
        }
    )  # fmt: skip


def _expected(rows: dict[str, list], index: list[str], name: str = "customer_id") -> pd.DataFrame:
    frame = pd.DataFrame(rows, index=pd.Index(index, name=name))
    for column in frame.columns:
        if not column.startswith("monetary_value"):
            frame[column] = frame[column].astype(np.int64)
    return frame


# ------------------------------------------------------------- computed by hand


def test_yearly_log_by_hand() -> None:
    tx = _yearly_log()
    before = tx.copy(deep=True)
    summary = summarize_opportunities(
        tx, period="Y", observation_end="2003-06-30", amount="amount"
    )
    expected = _expected(
        {
            "frequency": [1, 0, 2, 0, 0],
            "recency": [1, 0, 3, 0, 0],
            "n_periods": [2, 1, 3, 0, 0],
            "monetary_value": [50.0, 0.0, 3.0, 0.0, 0.0],
        },
        ["a", "b", "c", "d", "e"],
    )
    pd.testing.assert_frame_equal(summary, expected)
    assert summary.attrs["clvmodels"] == {
        "time_unit": "Y", "period": "Y", "observation_end": "2003-06-30",
    }  # fmt: skip
    pd.testing.assert_frame_equal(tx, before)
    # Without amount: the same counts, no monetary value.
    plain = summarize_opportunities(tx, observation_end="2003-06-30")
    pd.testing.assert_frame_equal(plain, expected.drop(columns="monetary_value"))


def test_end_of_a_window_completes_it() -> None:
    tx = _yearly_log()
    # Through the end of 2002-12-31: the same windows as on 2003-06-30.
    on_boundary = summarize_opportunities(
        tx.iloc[:-1].drop(index=4), observation_end="2002-12-31", amount="amount"
    )
    pd.testing.assert_frame_equal(
        on_boundary,
        summarize_opportunities(tx, observation_end="2003-06-30", amount="amount").loc[
            ["a", "b", "c", "d"]
        ],
    )
    # At noon on 2002-12-31 the year 2002 is not complete; e's purchase is after the end.
    with pytest.raises(InvalidDataError, match=r"2 of 11 rows are after observation_end"):
        summarize_opportunities(tx, observation_end="2002-12-31 12:00")
    noon = summarize_opportunities(tx, observation_end="2002-12-31 12:00", after_end="drop")
    expected = _expected(
        {"frequency": [1, 0, 1, 0], "recency": [1, 0, 1, 0], "n_periods": [1, 0, 2, 0]},
        ["a", "b", "c", "d"],
    )
    pd.testing.assert_frame_equal(noon, expected)
    assert noon.attrs["clvmodels"]["observation_end"] == "2002-12-31 12:00:00"


def test_months_and_weeks_by_hand() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": ["f", "f", "f", "f", "g", "g"],
            "date": pd.to_datetime(
                ["2024-01-05", "2024-01-20", "2024-02-29", "2024-03-01",
                 "2023-11-30", "2024-01-31"]
            ),
        }
    )  # fmt: skip
    # Months: February 2024 is the last complete one on 2024-03-15.
    monthly = summarize_opportunities(tx, period="M", observation_end="2024-03-15")
    expected = _expected(
        {"frequency": [1, 1], "recency": [1, 2], "n_periods": [1, 3]}, ["f", "g"]
    )
    pd.testing.assert_frame_equal(monthly, expected)
    assert monthly.attrs["clvmodels"]["time_unit"] == "M"

    # Weeks run from Monday: 2023-12-31 is a Sunday, 2024-01-01 a Monday.
    weeks = pd.DataFrame(
        {
            "customer_id": ["h", "h", "i", "i"],
            "date": ["2024-01-07", "2024-01-08", "2023-12-31", "2024-01-01"],
        }
    )
    weekly = summarize_opportunities(weeks, period="W", observation_end="2024-01-14")
    pd.testing.assert_frame_equal(
        weekly,
        _expected({"frequency": [1, 1], "recency": [1, 1], "n_periods": [1, 2]}, ["h", "i"]),
    )
    # On Saturday 2024-01-13 the week of January 8 is not over: h's second purchase
    # is ignored, and h has no opportunity yet.
    saturday = summarize_opportunities(weeks, period="W", observation_end="2024-01-13")
    pd.testing.assert_frame_equal(
        saturday,
        _expected({"frequency": [0, 1], "recency": [0, 1], "n_periods": [0, 1]}, ["h", "i"]),
    )
    # Days: every day is a window; the end date completes its day.
    daily = summarize_opportunities(weeks, period="D", observation_end="2024-01-08")
    pd.testing.assert_frame_equal(
        daily,
        _expected({"frequency": [1, 1], "recency": [1, 1], "n_periods": [1, 8]}, ["h", "i"]),
    )


def test_default_observation_end_is_the_day_of_the_latest_transaction() -> None:
    tx = _yearly_log()
    with pytest.warns(UserWarning, match=r"2003-02-02.*its 2 transactions are not counted"):
        default = summarize_opportunities(tx, amount="amount")
    explicit = summarize_opportunities(tx, observation_end="2003-02-02", amount="amount")
    pd.testing.assert_frame_equal(default, explicit)
    assert default.attrs["clvmodels"]["observation_end"] == "2003-02-02"
    # A latest day that completes its window: no warning, nothing ignored.
    complete = tx[tx["date"] < "2003-01-01"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = summarize_opportunities(complete, amount="amount")
    assert result.attrs["clvmodels"]["observation_end"] == "2002-12-31"
    pd.testing.assert_frame_equal(
        result, summarize_opportunities(complete, observation_end="2002-12-31", amount="amount")
    )


def test_calibration_holdout_by_hand() -> None:
    tx = _yearly_log()
    before = tx.copy(deep=True)
    frame = calibration_holdout_opportunities(
        tx, calibration_end="2000-12-31", holdout_end="2003-06-30", amount="amount"
    )
    # Cohort: a (first 2000) and c (first 1999); holdout windows 2001 and 2002.
    expected = _expected(
        {
            "frequency_cal": [0, 1],
            "recency_cal": [0, 1],
            "n_periods_cal": [0, 1],
            "T_cal": [0, 1],
            "monetary_value_cal": [0.0, 2.0],
            "frequency_holdout": [1, 1],
            "monetary_value_holdout": [50.0, 4.0],
            "duration_holdout": [2, 2],
        },
        ["a", "c"],
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert frame.attrs["clvmodels"] == {
        "time_unit": "Y", "period": "Y", "calibration_end": "2000-12-31",
        "holdout_end": "2003-06-30",
    }  # fmt: skip
    pd.testing.assert_frame_equal(tx, before)
    # The calibration columns are those of summarize_opportunities at calibration_end.
    cohort = tx[tx["customer_id"].isin(["a", "c"]) & (tx["date"] <= "2000-12-31")]
    summary = summarize_opportunities(cohort, observation_end="2000-12-31", amount="amount")
    pd.testing.assert_frame_equal(
        frame[["frequency_cal", "recency_cal", "n_periods_cal", "monetary_value_cal"]],
        summary.add_suffix("_cal"),
    )


# ------------------------------------------------------- oracle on random logs

_PANDAS_FREQ = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q", "Y": "Y"}


def _oracle(tx: pd.DataFrame, period: str, end: pd.Timestamp) -> pd.DataFrame:
    """(x, t_x, n, monetary value) from pandas Periods, independently of clvmodels."""
    freq = _PANDAS_FREQ[period]
    last = end + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    current = pd.Period(end, freq)
    complete = current.ordinal if current.end_time <= last else current.ordinal - 1
    kept = tx[tx["date"] <= last]
    ordinal = kept["date"].dt.to_period(freq).map(lambda p: p.ordinal)
    rows = {}
    for customer, group in kept.assign(o=ordinal).groupby("customer_id"):
        first = group["o"].min()
        repeat = group[(group["o"] > first) & (group["o"] <= complete)]
        x = repeat["o"].nunique()
        rows[customer] = {
            "frequency": x,
            "recency": int(repeat["o"].max() - first) if x else 0,
            "n_periods": max(complete - first, 0),
            "monetary_value": repeat["amount"].sum() / x if x else 0.0,
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "customer_id"
    return frame.astype({"frequency": np.int64, "recency": np.int64, "n_periods": np.int64})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3 * 365), st.integers(1, 100)),
        min_size=1, max_size=40,
    ),
    st.sampled_from(sorted(_PANDAS_FREQ)),
    st.integers(0, 3 * 365 + 40),
)  # fmt: skip
def test_random_logs_match_pandas_periods(rows, period, end_day) -> None:
    origin = pd.Timestamp("2019-01-01")
    tx = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    tx["date"] = origin + pd.to_timedelta(tx["day"], "D") + pd.Timedelta(hours=13)
    tx["amount"] = tx["amount"].astype(np.float64)
    end = origin + pd.Timedelta(days=end_day)
    if not _has_complete(tx, period, end):  # nothing observed: an error, not a frame
        with pytest.raises(InvalidDataError, match=r"no transactions|no period is complete"):
            summarize_opportunities(
                tx, period=period, observation_end=end, amount="amount", after_end="drop"
            )
        return
    expected = _oracle(tx, period, end)
    result = summarize_opportunities(
        tx, period=period, observation_end=end, amount="amount", after_end="drop"
    )
    pd.testing.assert_frame_equal(result, expected, check_exact=False, rtol=1e-12)


def _has_complete(tx: pd.DataFrame, period: str, end: pd.Timestamp) -> bool:
    """Whether some transaction on or before ``end`` lies in a window complete on it."""
    freq = _PANDAS_FREQ[period]
    last = end + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    kept = tx[tx["date"] <= last]
    return any(p.end_time <= last for p in kept["date"].dt.to_period(freq))


# ------------------------------------------------------- the donations data


@pytest.fixture(scope="module")
def donation_log() -> tuple[pd.DataFrame, dict[int, list[int]]]:
    """A dated log whose yearly patterns are the donations data of FHS (2010).

    Each of the 11,104 donors first gives in 1995; a donor with pattern (x, t_x) gives
    in year 1995 + t_x and in x - 1 other years drawn among 1996 .. 1995 + t_x - 1, one
    to three times in each year they give (on random days), with amounts from a
    Gamma-Gamma spend process. Returns the log and each donor's years (0 = 1995).
    """
    patterns = clvmodels.datasets.load_donations()
    rng = np.random.default_rng(2010)
    years: dict[int, list[int]] = {}
    for x, t_x, _n, weight in patterns.itertuples(index=False):
        for _ in range(weight):
            chosen = [0]
            if x > 0:
                others = rng.choice(np.arange(1, t_x), size=x - 1, replace=False)
                chosen += [*sorted(int(v) for v in others), int(t_x)]
            years[len(years)] = chosen
    donor = np.repeat(np.arange(len(years)), [len(v) for v in years.values()])
    year = 1995 + np.concatenate(list(years.values()))
    gifts = rng.integers(1, 4, size=len(donor))
    donor, year = np.repeat(donor, gifts), np.repeat(year, gifts)
    day = rng.integers(0, 365, size=len(donor))
    scale = rng.gamma(3.0, 10.0, size=len(years))  # each donor's mean gift varies
    tx = pd.DataFrame(
        {
            "donor": donor,
            "gift_date": pd.to_datetime(year.astype(str)) + pd.to_timedelta(day, "D"),
            "amount": np.round(rng.gamma(4.0, scale[donor] / 4.0), 2),
        }
    ).sample(frac=1.0, random_state=1)
    return tx.reset_index(drop=True), years


def test_donations_log_gives_the_published_patterns_and_estimates(donation_log) -> None:
    tx, years = donation_log
    before = tx.copy(deep=True)
    summary = summarize_opportunities(
        tx, period="Y", observation_end="2001-12-31", customer_id="donor", date="gift_date",
        amount="amount",
    )  # fmt: skip
    pd.testing.assert_frame_equal(tx, before)
    assert len(summary) == 11_104 and summary.index.name == "donor"
    patterns = clvmodels.compress(summary)
    pd.testing.assert_frame_equal(patterns, clvmodels.datasets.load_donations())
    # Each donor's own history, from the years drawn.
    x = np.array([len(v) - 1 for v in years.values()])
    np.testing.assert_array_equal(summary["frequency"], x)
    np.testing.assert_array_equal(summary["recency"], [max(v) for v in years.values()])
    assert (summary["n_periods"] == 6).all()
    # Monetary value: the mean yearly total of the repeat years (1995 excluded).
    yearly = tx.groupby(["donor", tx["gift_date"].dt.year])["amount"].sum().reset_index()
    repeat = yearly[yearly["gift_date"] > 1995].groupby("donor")["amount"].mean()
    np.testing.assert_allclose(
        summary["monetary_value"], repeat.reindex(summary.index).fillna(0.0), rtol=1e-12
    )

    model = BGBB().fit(patterns)
    assert model.params_.round(3).to_dict() == PAPER
    assert model.time_unit_ == "Y"  # compress keeps the attrs
    on_customers = BGBB().fit(summary)
    np.testing.assert_allclose(on_customers.params_, model.params_, rtol=1e-6)

    # Predictive CLV reads the period as the time unit: a 5-year horizon is 5
    # opportunities (undiscounted, the expected transactions; "60M" is the same).
    expected = model.expected_purchases(summary, 5).to_numpy()
    for horizon in ("5Y", "60M"):
        clv = clvmodels.predictive_clv(model, None, summary, horizon=horizon, discount_rate=0.0)
        np.testing.assert_allclose(clv.to_numpy(), expected, rtol=1e-10)
    spend = GammaGamma().fit(summary)
    value = clvmodels.predictive_clv(model, spend, summary, horizon="5Y", discount_rate=0.1)
    assert np.all(np.isfinite(value)) and (value > 0).all()


def test_donations_calibration_and_holdout(donation_log) -> None:
    tx, years = donation_log
    before = tx.copy(deep=True)
    frame = calibration_holdout_opportunities(
        tx, calibration_end="1998-12-31", holdout_end="2001-12-31", period="Y",
        customer_id="donor", date="gift_date", amount="amount",
    )  # fmt: skip
    pd.testing.assert_frame_equal(tx, before)
    assert len(frame) == 11_104
    cal = [[y for y in v if 1 <= y <= 3] for v in years.values()]
    np.testing.assert_array_equal(frame["frequency_cal"], [len(v) for v in cal])
    np.testing.assert_array_equal(frame["recency_cal"], [max(v, default=0) for v in cal])
    assert (frame["n_periods_cal"] == 3).all() and (frame["T_cal"] == 3).all()
    holdout = [sum(1 for y in v if 4 <= y <= 6) for v in years.values()]
    np.testing.assert_array_equal(frame["frequency_holdout"], holdout)
    assert (frame["duration_holdout"] == 3).all()
    assert frame.attrs["clvmodels"]["time_unit"] == "Y"

    model = BGBB().fit(frame)
    assert model.time_unit_ == "Y"
    compressed = clvmodels.compress(frame, ["frequency_cal", "recency_cal", "n_periods_cal"])
    np.testing.assert_allclose(BGBB().fit(compressed).params_, model.params_, rtol=1e-6)

    spend = GammaGamma().fit(frame)
    table = clvmodels.evaluate({"bgbb": model}, frame, spend_model=spend)
    assert list(table.index) == ["bgbb", "naive"]
    assert np.all(np.isfinite(table.to_numpy()))
    # BG/BB beats the naive "same share of opportunities" baseline out of sample.
    assert table.loc["bgbb", "mae"] < table.loc["naive", "mae"]
    assert abs(table.loc["bgbb", "total_error_pct"]) < 10
    plain = clvmodels.evaluate({"bgbb": model}, frame)
    assert np.all(np.isfinite(plain.to_numpy()))

    conditional = clvmodels.conditional_expectations({"bgbb": model}, frame, max_frequency=3)
    assert conditional["customers"].tolist() == np.bincount(frame["frequency_cal"]).tolist()
    np.testing.assert_allclose(
        conditional["bgbb"].to_numpy(),
        model.expected_purchases(frame, 3).groupby(frame["frequency_cal"].to_numpy()).mean(),
    )
    clv = clvmodels.predictive_clv(model, spend, frame, horizon="3Y", discount_rate=0.1)
    assert np.all(np.isfinite(clv)) and clv.index.equals(frame.index)


# ------------------------------------------------------------------------ errors


def test_errors_name_the_column_and_leave_the_frame_alone() -> None:
    tx = _yearly_log()
    before = tx.copy(deep=True)
    with pytest.raises(InvalidDataError, match=r"column 'client' not found.*customer_id="):
        summarize_opportunities(tx, customer_id="client", observation_end="2003-06-30")
    with pytest.raises(InvalidDataError, match=r"column 'value' not found"):
        calibration_holdout_opportunities(
            tx, calibration_end="2000-12-31", holdout_end="2003-06-30", amount="value"
        )
    bad = tx.copy()
    bad.loc[5, "date"] = "not a date"
    bad_before = bad.copy(deep=True)
    pattern = (
        r"column 'date': 1 of 11 rows are not dates that can be parsed \(e\.g\. customer "
        r"'b'\)\. Fix or drop these rows"
    )
    with pytest.raises(InvalidDataError, match=pattern):
        summarize_opportunities(bad, observation_end="2003-06-30")
    with pytest.raises(InvalidDataError, match=pattern):
        calibration_holdout_opportunities(
            bad, calibration_end="2000-12-31", holdout_end="2003-06-30"
        )
    pd.testing.assert_frame_equal(bad, bad_before)
    negative = tx.assign(amount=tx["amount"].where(tx.index != 6, -1.0))
    with pytest.raises(InvalidDataError, match=r"column 'amount': 1 of 11 rows are negative"):
        summarize_opportunities(negative, observation_end="2003-06-30", amount="amount")
    with pytest.raises(InvalidDataError, match=r"must be a pandas or polars DataFrame"):
        summarize_opportunities(tx.to_dict(), observation_end="2003-06-30")
    pd.testing.assert_frame_equal(tx, before)


def test_end_date_errors() -> None:
    tx = _yearly_log()
    with pytest.raises(InvalidDataError, match=r"calibration_end='2003-06-30' is not before"):
        calibration_holdout_opportunities(
            tx, calibration_end="2003-06-30", holdout_end="2001-12-31"
        )
    with pytest.raises(
        InvalidDataError,
        match=r"falls inside the period 2000-01-01 \.\. 2000-12-31 .*'1999-12-31' or "
        r"'2000-12-31'",
    ):
        calibration_holdout_opportunities(
            tx, calibration_end="2000-06-30", holdout_end="2003-06-30"
        )
    with pytest.raises(InvalidDataError, match=r"no holdout opportunity.*'2001-12-31'"):
        calibration_holdout_opportunities(
            tx, calibration_end="2000-12-31", holdout_end="2001-06-30"
        )
    with pytest.raises(InvalidDataError, match=r"no transactions on or before calibration_end"):
        calibration_holdout_opportunities(
            tx, calibration_end="1990-12-31", holdout_end="2003-06-30"
        )
    with pytest.raises(InvalidDataError, match=r"rows are after holdout_end"):
        calibration_holdout_opportunities(
            tx, calibration_end="2000-12-31", holdout_end="2002-12-31"
        )
    with pytest.raises(InvalidDataError, match=r"no period is complete.*'1999-12-31'"):
        summarize_opportunities(tx, observation_end="1999-12-31 12:00", after_end="drop")
    with pytest.raises(InvalidDataError, match=r"observation_end='today' is not a date"):
        summarize_opportunities(tx, observation_end="today")
    with pytest.raises(InvalidDataError, match="after_end="):
        summarize_opportunities(tx, observation_end="2003-06-30", after_end="keep")


@pytest.mark.parametrize("period", ["fortnight", "2Y", "", 12, None])
def test_unknown_period(period) -> None:
    tx = _yearly_log()
    with pytest.raises(InvalidDataError, match=rf"period={period!r} is not a period"):
        summarize_opportunities(tx, period=period, observation_end="2003-06-30")
    with pytest.raises(InvalidDataError, match=rf"period={period!r} is not a period"):
        calibration_holdout_opportunities(
            tx, period=period, calibration_end="2000-12-31", holdout_end="2003-06-30"
        )


# ------------------------------------------------------------------------ polars


def test_polars_input_equals_pandas_input() -> None:
    pl = pytest.importorskip("polars")
    tx = _yearly_log()
    for dates in (pl.Utf8, pl.Date):  # strings, and polars' own dates
        frame = pl.from_pandas(tx)
        if dates is pl.Date:
            frame = frame.with_columns(pl.col("date").str.to_date())
        pd.testing.assert_frame_equal(
            summarize_opportunities(frame, observation_end="2003-06-30", amount="amount"),
            summarize_opportunities(tx, observation_end="2003-06-30", amount="amount"),
        )
        pd.testing.assert_frame_equal(
            calibration_holdout_opportunities(
                frame, calibration_end="2000-12-31", holdout_end="2003-06-30", amount="amount"
            ),
            calibration_holdout_opportunities(
                tx, calibration_end="2000-12-31", holdout_end="2003-06-30", amount="amount"
            ),
        )


def test_public_names() -> None:
    assert clvmodels.summarize_opportunities is summarize_opportunities
    assert clvmodels.data.calibration_holdout_opportunities is calibration_holdout_opportunities
    assert {"summarize_opportunities", "calibration_holdout_opportunities"} <= set(
        clvmodels.__all__
    )

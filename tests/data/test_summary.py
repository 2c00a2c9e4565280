"""summarize, calibration_holdout and compress: published CDNOW numbers, lifetimes as
an oracle, the meaning of time_unit / granularity, and clear errors on bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError

# ----------------------------------------------------------------- published numbers


def test_cdnow_sample_calibration_matches_the_papers(cdnow_calibration: pd.DataFrame) -> None:
    # Fader, Hardie & Lee (2005), CDNOW sample, 39-week calibration and holdout.
    frame = cdnow_calibration
    assert len(frame) == 2357
    counts = frame["frequency_cal"].clip(upper=7).value_counts().sort_index()
    assert counts.tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert frame["frequency_cal"].sum() == 2457
    assert frame["frequency_holdout"].sum() == 1882
    repeat = frame.loc[frame["frequency_cal"] > 0, "monetary_value_cal"]
    assert len(repeat) == 946
    assert round(repeat.mean(), 2) == 35.08
    assert round(repeat.median(), 2) == 27.50
    assert round(repeat.max(), 2) == 299.63
    assert round(frame["T_cal"].min(), 2) == 27.00
    assert round(frame["T_cal"].max(), 2) == 38.86
    assert (frame["duration_holdout"] == 39.0).all()
    # customer 4: purchases 1997-01-01, 01-18, 08-02 (calibration) and 12-12 (holdout)
    row = frame.loc[4]
    assert row["frequency_cal"] == 2
    assert row["recency_cal"] == pytest.approx(213 / 7)
    assert row["T_cal"] == pytest.approx(272 / 7)
    assert row["frequency_holdout"] == 1
    assert row["monetary_value_holdout"] == pytest.approx(26.48)


def test_cdnow_master_size(cdnow_master: pd.DataFrame) -> None:
    assert len(cdnow_master) == 69659
    summary = clvmodels.summarize(cdnow_master, time_unit="W")
    assert len(summary) == 23570
    # The cohort was acquired in Q1 1997 and observed to 1998-06-30.
    assert summary.attrs["clvmodels"]["observation_end"].startswith("1998-06-30")


def test_weekly_recency_is_days_over_seven(cdnow_sample: pd.DataFrame) -> None:
    daily = clvmodels.summarize(cdnow_sample, time_unit="D")
    weekly = clvmodels.summarize(cdnow_sample, time_unit="W")
    np.testing.assert_allclose(weekly["recency"], daily["recency"] / 7)
    np.testing.assert_allclose(weekly["T"], daily["T"] / 7)
    np.testing.assert_array_equal(weekly["frequency"], daily["frequency"])


# ------------------------------------------------------------------ lifetimes oracle


def _lifetimes_summary(transactions: pd.DataFrame, multiplier: int, end: str | None = None):
    utils = pytest.importorskip("lifetimes.utils")
    end = end or transactions["date"].max()
    return utils.summary_data_from_transaction_data(
        transactions, "customer_id", "date", monetary_value_col="amount",
        observation_period_end=end, freq="D", freq_multiplier=multiplier,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["sample", "master"])
@pytest.mark.parametrize(("time_unit", "multiplier"), [("D", 1), ("W", 7)])
def test_summarize_equals_lifetimes(kind: str, time_unit: str, multiplier: int) -> None:
    transactions = clvmodels.datasets.load_cdnow(kind)
    ours = clvmodels.summarize(transactions, amount="amount", time_unit=time_unit)
    theirs = _lifetimes_summary(transactions, multiplier)
    assert ours.index.equals(theirs.index)
    np.testing.assert_array_equal(ours["frequency"], theirs["frequency"])
    for column in ("recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-12, err_msg=column)


@pytest.mark.parametrize(("time_unit", "multiplier"), [("D", 1), ("W", 7)])
def test_calibration_holdout_equals_lifetimes(
    cdnow_sample: pd.DataFrame, time_unit: str, multiplier: int
) -> None:
    utils = pytest.importorskip("lifetimes.utils")
    ours = clvmodels.calibration_holdout(
        cdnow_sample, calibration_end="1997-09-30", holdout_end="1998-06-30",
        amount="amount", time_unit=time_unit,
    )  # fmt: skip
    theirs = utils.calibration_and_holdout_data(
        cdnow_sample, "customer_id", "date", calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30", freq="D", freq_multiplier=multiplier,
        monetary_value_col="amount",
    )  # fmt: skip
    assert ours.index.equals(theirs.index)
    for column in theirs.columns.drop("monetary_value_holdout"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-12, err_msg=column)
    # lifetimes averages the raw holdout records, while its calibration monetary value
    # (and the papers) merge same-day purchases first; we merge in both periods.
    holdout = cdnow_sample[cdnow_sample["date"] > "1997-09-30"]
    per_day = holdout.groupby(["customer_id", "date"])["amount"].sum()
    expected = per_day.groupby("customer_id").mean().reindex(ours.index, fill_value=0.0)
    np.testing.assert_allclose(ours["monetary_value_holdout"], expected, rtol=1e-12)
    per_record = holdout.groupby("customer_id")["amount"].mean()
    per_record = per_record.reindex(ours.index, fill_value=0.0)
    np.testing.assert_allclose(theirs["monetary_value_holdout"], per_record, rtol=1e-12)
    assert not np.allclose(ours["monetary_value_holdout"], theirs["monetary_value_holdout"])


# ------------------------------------------------------------ semantics of the options


def _tx(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def test_same_day_purchases_merge_and_first_purchase_is_excluded() -> None:
    tx = _tx([
        ("a", "2024-01-01 09:00", 10.0), ("a", "2024-01-01 18:00", 5.0),
        ("a", "2024-01-03 10:00", 4.0), ("a", "2024-01-03 11:00", 6.0),
        ("a", "2024-01-08", 30.0),
    ])  # fmt: skip
    s = clvmodels.summarize(tx, amount="amount", observation_end="2024-01-10")
    row = s.loc["a"]
    assert row["frequency"] == 2
    assert row["recency"] == 7.0
    assert row["T"] == 9.0
    assert row["monetary_value"] == pytest.approx((10.0 + 30.0) / 2)
    assert row["n_purchases"] == 3
    assert row["total_amount"] == pytest.approx(55.0)
    assert row["first_purchase"] == pd.Timestamp("2024-01-01 09:00")
    assert row["last_purchase"] == pd.Timestamp("2024-01-08")


def test_granularity_is_independent_of_time_unit() -> None:
    tx = _tx([
        ("a", "2024-01-01 09:00", 1.0), ("a", "2024-01-01 15:30", 1.0),
        ("a", "2024-01-02 09:00", 1.0),
    ])  # fmt: skip
    hourly = clvmodels.summarize(tx, granularity="h", time_unit="D")
    assert hourly.loc["a", "frequency"] == 2
    assert hourly.loc["a", "recency"] == pytest.approx(1.0)  # 09:00 -> 09:00 next day
    daily = clvmodels.summarize(tx, granularity="D", time_unit="h")
    assert daily.loc["a", "frequency"] == 1
    assert daily.loc["a", "recency"] == pytest.approx(24.0)


def test_calendar_week_and_month_windows() -> None:
    # 2024-01-01 was a Monday; the 7th a Sunday of the same calendar week.
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-01-07", 1.0), ("a", "2024-01-08", 1.0)])
    weekly = clvmodels.summarize(tx, granularity="W", time_unit="D")
    assert weekly.loc["a", "frequency"] == 1
    assert weekly.loc["a", "recency"] == 7.0
    tx = _tx([("a", "2024-01-31", 1.0), ("a", "2024-02-01", 1.0), ("a", "2024-02-29", 1.0)])
    monthly = clvmodels.summarize(tx, granularity="M", time_unit="D")
    assert monthly.loc["a", "frequency"] == 1
    assert monthly.loc["a", "recency"] == 31.0  # Jan 1 -> Feb 1


def test_month_and_year_units_are_average_lengths() -> None:
    tx = _tx([("a", "2023-01-01", 1.0), ("a", "2024-01-01", 1.0)])
    s = clvmodels.summarize(tx, time_unit="M")
    assert s.loc["a", "recency"] == pytest.approx(365 / 30.4375)
    s = clvmodels.summarize(tx, time_unit="Y")
    assert s.loc["a", "recency"] == pytest.approx(365 / 365.25)
    assert clvmodels.duration_in_units("12M", "Y") == pytest.approx(1.0)


def test_observation_end_is_inclusive_for_times_within_the_day() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-01-05 23:59", 1.0)])
    s = clvmodels.summarize(tx, observation_end="2024-01-05")
    assert s.loc["a", "frequency"] == 1
    assert s.loc["a", "T"] == 4.0


def test_dates_as_strings_dates_and_tz_aware() -> None:
    base = _tx([("a", "2024-01-01", 1.0), ("a", "2024-01-03", 2.0), ("b", "2024-01-02", 3.0)])
    expected = clvmodels.summarize(base, amount="amount")
    as_dates = base.assign(date=[dt.date(2024, 1, 1), dt.date(2024, 1, 3), dt.date(2024, 1, 2)])
    pd.testing.assert_frame_equal(clvmodels.summarize(as_dates, amount="amount"), expected)
    formatted = base.assign(date=["01/01/2024", "03/01/2024", "02/01/2024"])
    result = clvmodels.summarize(formatted, amount="amount", date_format="%d/%m/%Y")
    pd.testing.assert_frame_equal(result, expected)
    integers = base.assign(date=[20240101, 20240103, 20240102])
    result = clvmodels.summarize(integers, amount="amount", date_format="%Y%m%d")
    pd.testing.assert_frame_equal(result, expected)
    # Local wall time is kept: 23:30 in New York on Jan 1 is Jan 1, not Jan 2 UTC.
    local = pd.to_datetime(["2024-01-01 23:30", "2024-01-03 00:00", "2024-01-02 00:00"])
    aware = base.assign(date=local.tz_localize("America/New_York"))
    result = clvmodels.summarize(aware, amount="amount")
    stamps = ["first_purchase", "last_purchase"]
    pd.testing.assert_frame_equal(result.drop(columns=stamps), expected.drop(columns=stamps))


def test_polars_input_gives_the_same_summary(cdnow_sample: pd.DataFrame) -> None:
    polars = pytest.importorskip("polars")
    expected = clvmodels.summarize(cdnow_sample, amount="amount", time_unit="W")
    result = clvmodels.summarize(polars.from_pandas(cdnow_sample), amount="amount",
                                 time_unit="W")
    pd.testing.assert_frame_equal(result, expected)


def test_caller_data_is_not_mutated(cdnow_sample: pd.DataFrame) -> None:
    tx = cdnow_sample.sample(500, random_state=1)
    tx = tx.assign(date=tx["date"].dt.strftime("%Y-%m-%d"))
    before = tx.copy(deep=True)
    clvmodels.summarize(tx, amount="amount")
    clvmodels.calibration_holdout(
        tx, calibration_end="1997-09-30", holdout_end="1998-06-30", amount="amount"
    )
    summary = clvmodels.summarize(tx)
    summary_before = summary.copy(deep=True)
    clvmodels.compress(summary)
    pd.testing.assert_frame_equal(tx, before)
    pd.testing.assert_frame_equal(summary, summary_before)


def test_holdout_excludes_customers_acquired_later() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-01-20", 2.0), ("b", "2024-01-15", 3.0)])
    frame = clvmodels.calibration_holdout(
        tx, calibration_end="2024-01-10", holdout_end="2024-01-31", amount="amount"
    )
    assert frame.index.tolist() == ["a"]
    assert frame.loc["a", "frequency_holdout"] == 1
    assert frame.loc["a", "monetary_value_holdout"] == 2.0
    assert frame.loc["a", "duration_holdout"] == 21.0


def test_after_end_drop() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-02-01", 1.0), ("b", "2024-03-01", 1.0)])
    s = clvmodels.summarize(tx, observation_end="2024-01-15", after_end="drop")
    assert s.index.tolist() == ["a"]
    assert s.loc["a", "frequency"] == 0


# ---------------------------------------------------------------------------- compress


def test_compress_keeps_totals_and_expands_back(cdnow_calibration: pd.DataFrame) -> None:
    columns = ["frequency_cal", "recency_cal", "T_cal"]
    compressed = clvmodels.compress(cdnow_calibration)
    assert list(compressed.columns) == [*columns, "weight"]
    assert compressed["weight"].sum() == len(cdnow_calibration)
    assert len(compressed) < len(cdnow_calibration)
    expanded = compressed.loc[compressed.index.repeat(compressed["weight"]), columns]
    original = cdnow_calibration[columns].sort_values(columns)
    np.testing.assert_array_equal(expanded.to_numpy(), original.to_numpy())
    # compressing a compressed frame sums the weights
    again = clvmodels.compress(pd.concat([compressed, compressed]))
    np.testing.assert_array_equal(again["weight"], 2 * compressed["weight"])


def test_compress_named_columns(cdnow_calibration: pd.DataFrame) -> None:
    compressed = clvmodels.compress(cdnow_calibration, ["frequency_cal"])
    assert compressed["frequency_cal"].tolist()[:3] == [0, 1, 2]
    assert compressed["weight"].tolist()[:3] == [1411, 439, 214]


# -------------------------------------------------------------------------- bad input


def _raises(match: str, func, *args, **kwargs) -> str:
    with pytest.raises(InvalidDataError, match=match) as info:
        func(*args, **kwargs)
    return str(info.value)


def test_missing_column_lists_what_is_there() -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    message = _raises("column 'when' not found", clvmodels.summarize, tx, date="when")
    assert "'customer_id', 'date', 'amount'" in message
    _raises("column 'value' not found", clvmodels.summarize, tx, amount="value")


def test_empty_input() -> None:
    _raises("empty", clvmodels.summarize, _tx([]))


def test_missing_dates_name_column_count_and_customer() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("b", None, 1.0), ("c", None, 1.0)])
    message = _raises("column 'date'", clvmodels.summarize, tx)
    assert "2 of 3 rows" in message and "'b'" in message and "missing" in message


def test_nat_dates() -> None:
    tx = _tx([("a", pd.Timestamp("2024-01-01"), 1.0), ("b", pd.NaT, 1.0)])
    message = _raises("column 'date'", clvmodels.summarize, tx)
    assert "1 of 2 rows" in message and "'b'" in message


def test_unparseable_dates() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("b", "2024-13-45", 1.0)])
    message = _raises("column 'date'", clvmodels.summarize, tx)
    assert "1 of 2 rows" in message and "parse" in message and "'b'" in message
    assert "date_format" in message
    numbers = _tx([("a", 20240101, 1.0)])
    _raises("date_format", clvmodels.summarize, numbers)


@pytest.mark.parametrize(
    ("value", "problem"),
    [(np.nan, "missing"), (-3.0, "negative"), ("$12", "not numbers"), (np.inf, "infinite")],
)
def test_bad_amounts(value: object, problem: str) -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("z", "2024-01-02", value), ("a", "2024-01-03", 0.0)])
    message = _raises("column 'amount'", clvmodels.summarize, tx, amount="amount")
    assert "1 of 3 rows" in message and problem in message and "'z'" in message


def test_zero_amount_is_allowed() -> None:
    tx = _tx([("a", "2024-01-01", 0.0), ("a", "2024-01-02", 0.0)])
    assert clvmodels.summarize(tx, amount="amount").loc["a", "monetary_value"] == 0.0


def test_missing_customer_id() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), (None, "2024-01-02", 1.0)])
    _raises("column 'customer_id': 1 of 2 rows have no customer id", clvmodels.summarize, tx)


def test_transactions_after_observation_end() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("b", "2024-02-01", 1.0), ("c", "2024-03-01", 1.0)])
    message = _raises(
        "after observation_end", clvmodels.summarize, tx, observation_end="2024-01-15"
    )
    assert "2 of 3 rows" in message and "'b'" in message and "after_end='drop'" in message


def test_transactions_after_holdout_end() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-02-01", 1.0)])
    message = _raises(
        "after holdout_end", clvmodels.calibration_holdout, tx,
        calibration_end="2024-01-10", holdout_end="2024-01-20",
    )  # fmt: skip
    assert "1 of 2 rows" in message


@pytest.mark.parametrize(
    ("cal", "hold"), [("2024-02-01", "2024-01-10"), ("2024-01-10", "2024-01-10")]
)
def test_calibration_end_not_before_holdout_end(cal: str, hold: str) -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    _raises(
        "is not before holdout_end", clvmodels.calibration_holdout, tx,
        calibration_end=cal, holdout_end=hold,
    )  # fmt: skip


def test_bad_settings() -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    _raises("is not a time unit", clvmodels.summarize, tx, time_unit="fortnight")
    _raises("not a date", clvmodels.summarize, tx, observation_end="someday")
    _raises("calendar windows", clvmodels.summarize, tx, granularity="2M")
    _raises("pandas or polars", clvmodels.summarize, [("a", "2024-01-01")])


def _summary(**columns) -> pd.DataFrame:
    base = {"frequency": [0, 2, 1], "recency": [0.0, 4.0, 1.0], "T": [5.0, 6.0, 7.0]}
    base.update(columns)
    return pd.DataFrame(base, index=pd.Index(["x", "y", "z"], name="customer_id"))


@pytest.mark.parametrize(
    ("columns", "column", "problem"),
    [
        ({"recency": [0.0, 9.0, 1.0]}, "recency", "exceed column 'T'"),
        ({"frequency": [0, -2, 1]}, "frequency", "negative"),
        ({"frequency": [0, 2.5, 1]}, "frequency", "not whole numbers"),
        ({"recency": [3.0, 4.0, 1.0]}, "recency", "while 'frequency' is 0"),
        ({"T": [5.0, np.nan, 7.0]}, "T", "NaN or infinite"),
        ({"recency": [0.0, np.inf, 1.0]}, "recency", "NaN or infinite"),
    ],
)
def test_bad_summaries(columns: dict, column: str, problem: str) -> None:
    message = _raises(f"column '{column}'", clvmodels.compress, _summary(**columns))
    assert problem in message
    assert "1 of 3 rows" in message
    assert "customer 'y'" in message or "customer 'x'" in message


def test_compress_without_pattern_columns() -> None:
    _raises("columns=", clvmodels.compress, pd.DataFrame({"spend": [1.0]}))

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
        tx, calibration_end="2024-01-10", holdout_end="2024-01-31", amount="amount",
        holdout_past_data="allow",  # the log ends on 2024-01-20
    )  # fmt: skip
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


# ------------------------------------------------------- dates out of the ns range


@pytest.mark.parametrize(
    "late",
    ["9999-12-31", dt.datetime(2300, 1, 1), pd.Timestamp("2300-01-01"), dt.date(1, 1, 1)],
)
def test_dates_outside_the_ns_range_are_an_error_not_a_wrap_around(late: object) -> None:
    tx = pd.DataFrame({"customer_id": ["p", "q"], "date": [late, dt.datetime(2021, 1, 1)]})
    message = _raises("column 'date'", clvmodels.summarize, tx)
    assert "1 of 2 rows" in message and "'p'" in message
    assert "1678-01-01 .. 2262-04-11" in message and "9999-12-31" in message


def test_arrow_dates_outside_the_ns_range() -> None:
    pytest.importorskip("pyarrow")
    dates = pd.Series([dt.date(9999, 12, 31), dt.date(2021, 1, 1)]).astype("date32[pyarrow]")
    tx = pd.DataFrame({"customer_id": ["p", "q"], "date": dates})
    message = _raises("column 'date'", clvmodels.summarize, tx)
    assert "1 of 2 rows" in message and "'p'" in message and "outside" in message


def test_dates_at_the_edges_of_the_range_are_read() -> None:
    tx = pd.DataFrame({"customer_id": ["a", "a"], "date": ["1678-01-01", "2262-04-11"]})
    summary = clvmodels.summarize(tx)
    assert summary.loc["a", "recency"] == (
        pd.Timestamp("2262-04-11") - pd.Timestamp("1678-01-01")
    ).days


# ------------------------------------------------------------- local wall time


def _local_times() -> pd.Series:
    # 23:30 in New York on Jan 1 is Jan 2 in UTC; local wall time keeps it on Jan 1.
    stamps = pd.Series(pd.to_datetime(["2024-01-01 23:30", "2024-01-03", "2024-01-02"],
                                      format="ISO8601"))
    return stamps.dt.tz_localize("America/New_York")


def test_pyarrow_tz_aware_dates_keep_local_wall_time() -> None:
    pytest.importorskip("pyarrow")
    naive = _tx([("a", "2024-01-01 23:30", 1.0), ("a", "2024-01-03", 2.0),
                 ("b", "2024-01-02", 3.0)])  # fmt: skip
    expected = clvmodels.summarize(naive, amount="amount")
    arrow_type = "timestamp[ns, tz=America/New_York][pyarrow]"
    arrow = naive.assign(date=_local_times().astype(arrow_type))
    result = clvmodels.summarize(arrow, amount="amount")
    pd.testing.assert_frame_equal(result, expected, check_dtype=False)
    assert result.loc["a", "first_purchase"] == pd.Timestamp("2024-01-01 23:30")
    assert result.loc["a", "frequency"] == 1 and result.loc["a", "recency"] == 2.0


def test_strings_with_several_utc_offsets_keep_their_local_wall_time() -> None:
    # Across the US DST change the offsets differ; each string keeps its own local time.
    tx = _tx([
        ("a", "2024-03-09T23:30:00-05:00", 1.0), ("a", "2024-03-10 12:00", 1.0),
        ("a", "2024-03-11T23:30:00-04:00", 1.0), ("b", "2024-03-10T01:00:00Z", 1.0),
    ])  # fmt: skip
    summary = clvmodels.summarize(tx, amount="amount")
    assert summary.loc["a", "first_purchase"] == pd.Timestamp("2024-03-09 23:30")
    assert summary.loc["a", "last_purchase"] == pd.Timestamp("2024-03-11 23:30")
    assert summary.loc["a", "frequency"] == 2  # Mar 9, 10, 11 (in UTC: Mar 10 and 12)
    assert summary.loc["b", "first_purchase"] == pd.Timestamp("2024-03-10 01:00")
    # the same with an explicit format, and with python datetimes of several zones
    formatted = tx.iloc[[0, 2]].assign(
        date=["09/03/2024 23:30 -0500", "11/03/2024 23:30 -0400"]
    )
    result = clvmodels.summarize(formatted, date_format="%d/%m/%Y %H:%M %z")
    assert result.loc["a", "recency"] == 2.0
    zones = [dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=-4))]
    objects = tx.iloc[[0, 2]].assign(
        date=pd.Series(
            [dt.datetime(2024, 3, 9, 23, 30, tzinfo=zones[0]),
             dt.datetime(2024, 3, 11, 23, 30, tzinfo=zones[1])],
            dtype=object, index=tx.index[[0, 2]],
        )
    )  # fmt: skip
    result = clvmodels.summarize(objects, amount="amount")
    assert result.loc["a", "first_purchase"] == pd.Timestamp("2024-03-09 23:30")
    assert result.loc["a", "recency"] == 2.0


# ------------------------------------------------- end dates cut the raw times


def test_weekly_windows_do_not_stretch_observation_end() -> None:
    # 2024-01-31 is a Wednesday; Friday 2024-02-02 is in the same calendar week.
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-02-02", 2.0), ("b", "2024-01-03", 3.0)])
    message = _raises(
        "after observation_end", clvmodels.summarize, tx, observation_end="2024-01-31",
        granularity="W", time_unit="W",
    )  # fmt: skip
    assert "1 of 3 rows" in message and "'a'" in message
    summary = clvmodels.summarize(
        tx, observation_end="2024-01-31", granularity="W", time_unit="W", after_end="drop"
    )
    assert summary.loc["a", "frequency"] == 0
    assert summary.loc["a", "T"] == 4.0  # window starts: Jan 1 -> Jan 29


def test_weekly_calibration_holdout_does_not_leak_the_holdout() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-02-02", 2.0), ("b", "2024-01-03", 3.0)])
    frame = clvmodels.calibration_holdout(
        tx, calibration_end="2024-01-31", holdout_end="2024-02-29", granularity="W",
        time_unit="W", amount="amount", holdout_past_data="allow",
    )  # fmt: skip
    assert frame.loc["a", "frequency_cal"] == 0
    assert frame.loc["a", "frequency_holdout"] == 1
    assert frame.loc["a", "monetary_value_holdout"] == 2.0
    assert frame.loc["a", "T_cal"] == 4.0
    assert (frame["duration_holdout"] == 4.0).all()  # Jan 29 -> Feb 26
    monthly = clvmodels.calibration_holdout(
        tx, calibration_end="2024-01-31", holdout_end="2024-02-29", granularity="M",
        time_unit="M", holdout_past_data="allow",
    )  # fmt: skip
    assert monthly.loc["a", "frequency_cal"] == 0 and monthly.loc["a", "frequency_holdout"] == 1


def test_hourly_granularity_keeps_the_whole_end_day() -> None:
    tx = _tx([("a", "2024-01-01 09:00", 1.0), ("a", "2024-01-05 15:00", 1.0)])
    summary = clvmodels.summarize(tx, observation_end="2024-01-05", granularity="h")
    assert summary.loc["a", "frequency"] == 1
    assert summary.loc["a", "T"] == pytest.approx(4 + 14 / 24)  # 09:00 -> 23:00 on Jan 5
    assert summary.attrs["clvmodels"]["observation_end"] == "2024-01-05"


def test_an_end_with_a_time_of_day_is_that_instant() -> None:
    tx = _tx([("a", "2024-01-01 09:00", 1.0), ("a", "2024-01-05 12:00", 1.0),
              ("a", "2024-01-05 15:00", 1.0)])  # fmt: skip
    _raises(
        "1 of 3 rows are after observation_end", clvmodels.summarize, tx,
        observation_end="2024-01-05 12:00", granularity="h",
    )  # fmt: skip
    summary = clvmodels.summarize(
        tx, observation_end="2024-01-05 12:00", granularity="h", after_end="drop"
    )
    assert summary.loc["a", "frequency"] == 1  # 12:00 itself is included
    assert summary.attrs["clvmodels"]["observation_end"] == "2024-01-05 12:00:00"
    frame = clvmodels.calibration_holdout(
        tx, calibration_end="2024-01-05 12:00", holdout_end="2024-01-06", granularity="h"
    )
    assert frame.loc["a", "frequency_cal"] == 1
    assert frame.loc["a", "frequency_holdout"] == 1
    assert frame.attrs["clvmodels"]["calibration_end"] == "2024-01-05 12:00:00"
    assert frame.attrs["clvmodels"]["holdout_end"] == "2024-01-06"


def test_recorded_ends_parse_back_to_the_same_result(cdnow_sample: pd.DataFrame) -> None:
    frame = clvmodels.calibration_holdout(
        cdnow_sample, calibration_end=dt.date(1997, 9, 30), holdout_end="1998-06-30"
    )
    settings = frame.attrs["clvmodels"]
    assert settings["calibration_end"] == "1997-09-30"
    again = clvmodels.calibration_holdout(
        cdnow_sample, calibration_end=settings["calibration_end"],
        holdout_end=settings["holdout_end"],
    )  # fmt: skip
    pd.testing.assert_frame_equal(again, frame)
    summary = clvmodels.summarize(cdnow_sample)
    assert summary.attrs["clvmodels"]["observation_end"] == "1998-06-30"


def test_calibration_and_holdout_end_in_the_same_window() -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    _raises(
        "same window", clvmodels.calibration_holdout, tx, calibration_end="2024-01-31",
        holdout_end="2024-02-02", granularity="W",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2300-01-01", "outside 1678-01-01 .. 2262-04-11"),
        (dt.datetime(2300, 1, 1), "outside"),
        ("0001-01-01", "outside"),
        ("now", "relative words"),
        ("today", "relative words"),
        (20240131, "not a date"),
        (None, "not a date"),
    ],
)
def test_bad_end_dates(value: object, problem: str) -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    if value is not None:
        message = _raises("observation_end=", clvmodels.summarize, tx, observation_end=value)
        assert problem in message
    for name, other in (("calibration_end", "holdout_end"), ("holdout_end", "calibration_end")):
        kwargs = {name: value, other: "2024-01-02" if name == "calibration_end" else "2023-12-31"}
        message = _raises(f"{name}=", clvmodels.calibration_holdout, tx, **kwargs)
        assert problem in message


def test_after_end_is_checked_even_without_rows_after_the_end() -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    _raises("after_end='dorp'", clvmodels.summarize, tx, after_end="dorp")
    _raises(
        "use 'raise' or 'drop'", clvmodels.calibration_holdout, tx,
        calibration_end="2024-01-10", holdout_end="2024-01-20", after_end="dorp",
    )  # fmt: skip


def test_rows_after_the_end_name_the_date_column() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-02-01", 1.0)]).rename(columns={"date": "when"})
    _raises("column 'when': 1 of 2 rows are after", clvmodels.summarize, tx, date="when",
            observation_end="2024-01-15")  # fmt: skip


# ------------------------------------------------------------------- columns


def test_integer_column_names() -> None:
    tx = pd.DataFrame({0: ["a", "a"], 1: ["2024-01-01", "2024-01-05"], 2: [1.0, 2.0]})
    summary = clvmodels.summarize(tx, customer_id=0, date=1, amount=2)
    assert summary.loc["a", "frequency"] == 1
    message = _raises("not found", clvmodels.summarize, tx, customer_id="0", date=1)
    assert "'0'" in message


def test_duplicate_column_names() -> None:
    tx = pd.DataFrame([["a", "2024-01-01", "2024-01-02"]], columns=["customer_id", "date", "date"])
    message = _raises("column 'date' appears 2 times", clvmodels.summarize, tx)
    assert "duplicate" in message
    summary = _summary()
    summary.columns = ["frequency", "recency", "recency"]
    _raises(
        "column 'recency' appears 2 times", clvmodels.compress, summary,
        ["frequency", "recency"],
    )  # fmt: skip


def test_missing_column_hint_names_the_right_arguments() -> None:
    from clvmodels._validation import require_columns

    tx = _tx([("a", "2024-01-01", 1.0)])
    message = _raises("not found", clvmodels.summarize, tx, date="when")
    assert "customer_id=, date= or amount=" in message and "frequency=" not in message
    with pytest.raises(InvalidDataError, match="Use columns=") as info:
        require_columns(["a"], ["b"], "data", hint="Use columns={...}.")
    assert "customer_id=" not in str(info.value)
    require_columns(["a", "b"], iter(["a"]), "data")  # the models' call: positional, iterable
    message = _raises("not found", clvmodels.compress, _summary(), ["frequency", "x"])
    assert "columns=" in message and "customer_id=" not in message


# ------------------------------------------------------------ compress and types


def test_compress_sums_text_weights_as_numbers() -> None:
    summary = _summary(weight=["1", "2", "10"]).assign(frequency=[0, 0, 0], recency=0.0, T=5.0)
    result = clvmodels.compress(summary)
    assert result["weight"].tolist() == [13]
    assert result["weight"].dtype == np.int64
    fractional = clvmodels.compress(summary.assign(weight=[0.5, 1.0, 1.0]))
    assert fractional["weight"].tolist() == [2.5]
    assert fractional["weight"].dtype == np.float64
    _raises("column 'weight'", clvmodels.compress, summary.assign(weight=["1", "x", "2"]))


def test_compress_takes_one_column_name_as_a_string(cdnow_calibration: pd.DataFrame) -> None:
    by_name = clvmodels.compress(cdnow_calibration, "frequency_cal")
    pd.testing.assert_frame_equal(by_name, clvmodels.compress(cdnow_calibration, ["frequency_cal"]))


@pytest.mark.parametrize("column", ["frequency", "recency", "T"])
def test_compress_rejects_text_pattern_columns(column: str) -> None:
    summary = _summary(frequency=[0, 10, 2], recency=[0.0, 4.0, 1.0])
    text = summary.assign(**{column: summary[column].astype(str)})
    message = _raises(f"column '{column}'", clvmodels.compress, text)
    assert "not numbers" in message and "to_numeric" in message
    _raises(f"column '{column}'", clvmodels.compress, text, [column])
    periods = pd.DataFrame({"n_periods": ["6", "6"], "frequency_cal": [1, 2]})
    _raises("column 'n_periods'", clvmodels.compress, periods)


def test_compress_polars_keeps_the_weights() -> None:
    polars = pytest.importorskip("polars")
    summary = _summary(weight=[3, 4, 5])
    result = clvmodels.compress(polars.from_pandas(summary))
    assert result["weight"].sum() == 12
    result = clvmodels.compress(polars.from_pandas(summary), ["frequency"])
    assert result["weight"].tolist() == [3, 5, 4]


@pytest.mark.parametrize("dtype", ["bool", "boolean", "object"])
def test_boolean_amounts_are_rejected(dtype: str) -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-01-02", 1.0)])
    tx["amount"] = pd.Series([True, False], dtype=dtype)
    message = _raises("column 'amount' is boolean", clvmodels.summarize, tx, amount="amount")
    assert "amount=" in message


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("granularity", ["D", "h", "W", "M"])
def test_the_sorted_and_the_windowed_aggregations_agree(unit, granularity):
    # aggregate() packs (customer, time) at the finest resolution that fits, rounding
    # times finer than that; the windowed aggregation is the plain definition
    from clvmodels.data.reader import prepare_transactions
    from clvmodels.data.semantics import (
        NAT,
        CustomerAggregates,
        _aggregate_by_window,
        aggregate,
        time_order,
    )

    rng = np.random.default_rng(11)
    n = 5_000
    span = {"s": 10**8, "ms": 10**11, "us": 10**14, "ns": 10**16}[unit]
    times = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, span, n), unit)
    log = pd.DataFrame({"c": rng.integers(0, 300, n), "t": times,
                        "a": rng.integers(0, 100, n) / 4})  # fmt: skip
    tx = prepare_transactions(
        log, customer_id="c", date="t", amount="a", granularity=granularity,
        date_format=None, duplicates="keep",
    )  # fmt: skip
    assert time_order(tx.codes, tx.time_ns, tx.granularity) is not None
    packed = aggregate(tx, with_amount=True)
    m = len(tx.customers)
    blank = CustomerAggregates(tx.customers, np.zeros(m, dtype=np.int64), np.full(m, NAT),
                               np.full(m, NAT))  # fmt: skip
    plain = _aggregate_by_window(tx, blank, with_amount=True)
    names = ("n_windows", "first_window_ns", "last_window_ns", "first_time_ns", "last_time_ns")
    for name in names:
        np.testing.assert_array_equal(getattr(packed, name), getattr(plain, name))
    np.testing.assert_allclose(packed.total_amount, plain.total_amount, rtol=1e-12)
    np.testing.assert_allclose(
        packed.first_window_amount, plain.first_window_amount, rtol=1e-12
    )

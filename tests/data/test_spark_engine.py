"""The Spark engine gives the pandas engine's summaries, patterns, scores and errors.

One local Spark session (two cores, four shuffle partitions, small Arrow batches so
that customers straddle batch boundaries) in a session time zone that is not UTC:
timestamps must keep their wall time whatever the zone. Skipped, with the reason,
without pyspark or Java.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.data.spark_engine import collect_summary, strptime_to_spark
from clvmodels.exceptions import InvalidDataError
from clvmodels.scoring import score_frame

try:
    import pyspark  # noqa: F401
except ImportError:
    pytest.skip(
        "Spark tests need pyspark: pip install 'clvmodels[spark]'", allow_module_level=True
    )
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip(
        "Spark tests need Java (java not on PATH, JAVA_HOME not set); install a JDK 17",
        allow_module_level=True,
    )

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning",
    "ignore::DeprecationWarning:pyspark.*",
)

ZONE = "America/New_York"
CALIBRATION = {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}
AMOUNT_COLUMNS = ("monetary_value", "total_amount", "monetary_value_cal",
                  "total_amount_cal", "monetary_value_holdout")  # fmt: skip


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this interpreter
    session = (
        SparkSession.builder.master("local[2]")
        .appName("clvmodels-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", ZONE)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "300")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return clvmodels.datasets.load_cdnow()


@pytest.fixture(scope="module")
def spark_transactions(spark, transactions):
    frame = spark.createDataFrame(transactions)  # date: TIMESTAMP, shown in New York time
    assert dict(frame.dtypes)["date"] == "timestamp"
    return frame


def assert_same(expected: pd.DataFrame, spark_result) -> None:
    """Same customers in the same order, same columns, dtypes and settings; integers,
    recency, T and times exactly, amounts to rounding."""
    assert spark_result.columns[0] == expected.index.name
    got = collect_summary(spark_result)
    assert list(got.columns) == list(expected.columns)
    assert got.index.equals(expected.index)
    assert got.attrs == expected.attrs
    for name in expected.columns:
        want, have = expected[name].to_numpy(), got[name].to_numpy()
        assert have.dtype == want.dtype, name
        if name in AMOUNT_COLUMNS:
            np.testing.assert_allclose(have, want, rtol=1e-12, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(have, want, err_msg=name)


SETTINGS = [("D", "D", None), ("D", "D", "amount"), ("W", "W", None), ("W", "W", "amount")]


@pytest.mark.parametrize(("granularity", "time_unit", "amount"), SETTINGS)
def test_summarize_equals_pandas(spark, transactions, spark_transactions, granularity,
                                 time_unit, amount):  # fmt: skip
    settings = {"granularity": granularity, "time_unit": time_unit, "amount": amount}
    result = clvmodels.summarize(spark_transactions, **settings)
    assert type(result).__name__ == "DataFrame" and hasattr(result, "mapInPandas")
    assert spark.conf.get("spark.sql.session.timeZone") == ZONE  # restored
    expected = clvmodels.summarize(transactions, **settings)
    assert_same(expected, result)
    assert result.schema["frequency"].metadata["clvmodels"] == expected.attrs["clvmodels"]


@pytest.mark.parametrize(("granularity", "time_unit", "amount"), SETTINGS)
def test_calibration_holdout_equals_pandas(spark_transactions, transactions, granularity,
                                           time_unit, amount):  # fmt: skip
    settings = {"granularity": granularity, "time_unit": time_unit, "amount": amount}
    result = clvmodels.calibration_holdout(spark_transactions, **CALIBRATION, **settings)
    expected = clvmodels.calibration_holdout(transactions, **CALIBRATION, **settings)
    assert_same(expected, result)


def test_date_columns_of_every_kind(spark, transactions):
    """TIMESTAMP_NTZ, ISO strings and integers with a format; times late in the evening
    (the next day in UTC) stay on their own day; an observation end cuts them."""
    from pyspark.sql import functions as F

    late = transactions.assign(date=transactions["date"] + pd.Timedelta(hours=23, minutes=30))
    settings = {"amount": "amount", "observation_end": "1998-03-31", "after_end": "drop"}
    expected = clvmodels.summarize(late, **settings)
    frame = spark.createDataFrame(late)
    ntz = frame.withColumn("date", F.col("date").cast("timestamp_ntz"))
    assert_same(expected, clvmodels.summarize(ntz, **settings))
    # ISO strings, and string ids: Spark sorts them as pandas does ("10" before "9")
    text = late.assign(date=late["date"].dt.strftime("%Y-%m-%dT%H:%M"),
                       customer_id=late["customer_id"].astype(str))  # fmt: skip
    assert_same(clvmodels.summarize(text, **settings),
                clvmodels.summarize(spark.createDataFrame(text), **settings))  # fmt: skip
    european = late.assign(date=late["date"].dt.strftime("%d/%m/%Y %H:%M"))
    by_format = clvmodels.summarize(
        spark.createDataFrame(european), date_format="%d/%m/%Y %H:%M", **settings
    )
    assert_same(expected, by_format)
    days = transactions.assign(date=transactions["date"].dt.strftime("%Y%m%d").astype(int))
    by_format = clvmodels.summarize(
        spark.createDataFrame(days), date_format="%Y%m%d", **settings
    )  # fmt: skip
    assert_same(clvmodels.summarize(days, date_format="%Y%m%d", **settings), by_format)


def test_compress_equals_pandas(spark_transactions, transactions):
    settings = {"amount": "amount", "time_unit": "W", **CALIBRATION}
    summary = clvmodels.calibration_holdout(spark_transactions, **settings)
    expected = clvmodels.compress(clvmodels.calibration_holdout(transactions, **settings))
    patterns = clvmodels.compress(summary)
    pd.testing.assert_frame_equal(patterns, expected, check_exact=True)
    assert patterns.attrs == expected.attrs  # the settings, restored from the schema


def test_score_equals_score_frame(spark_transactions, transactions):
    settings = {"time_unit": "W", **CALIBRATION}
    local = clvmodels.calibration_holdout(transactions, **settings)
    model = clvmodels.BGNBD().fit(local)
    summary = clvmodels.calibration_holdout(spark_transactions, **settings)
    scores = clvmodels.score(model, summary, horizon="12M", interval=0.9, random_state=3)
    expected = score_frame(model, local, horizon="12M", interval=0.9, random_state=3)
    got = scores.toPandas().set_index("customer_id")
    assert got.index.equals(expected.index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@contextlib.contextmanager
def spark_jobs(spark) -> Iterator[list[int]]:
    """The ids of the Spark jobs run in the block (in a job group of its own)."""
    context = spark.sparkContext
    group = f"clvmodels-tests-{next(_GROUPS)}"
    context.setJobGroup(group, "jobs counted by a test")
    jobs: list[int] = []
    try:
        yield jobs
    finally:
        for key in ("spark.jobGroup.id", "spark.job.description"):
            context.setLocalProperty(key, None)  # type: ignore[arg-type]
        jobs.extend(context.statusTracker().getJobIdsForGroup(group))


_GROUPS = itertools.count()


def test_score_computes_nothing_until_the_scores_are(spark, spark_transactions, transactions):
    # a lazy summary is computed once, by the caller's action on the scores: score itself
    # checks model, horizon and columns against the schema only
    settings = {"time_unit": "W", **CALIBRATION}
    model = clvmodels.BGNBD().fit(clvmodels.calibration_holdout(transactions, **settings))
    summary = clvmodels.calibration_holdout(spark_transactions, **settings)
    with spark_jobs(spark) as jobs:
        scores = clvmodels.score(model, summary, horizon="12M", interval=0.9)
    assert jobs == []
    assert scores.columns == ["customer_id", "expected_purchases", "expected_purchases_lower",
                              "expected_purchases_upper", "probability_alive"]  # fmt: skip
    assert scores.schema["customer_id"].dataType == summary.schema["customer_id"].dataType
    with spark_jobs(spark) as jobs:  # the counting itself works
        summary.limit(1).toPandas()
    assert jobs

    refused = [
        ({"id_column": "cust"}, summary, "data has no column 'cust' (columns: 'customer_id', "),
        ({"horizon": -1}, summary, "horizon=-1: give a number >= 0"),
        ({}, summary.drop("T_cal"), "data: column 'T_cal' not found"),
        ({"id_column": "probability_alive"},
         summary.withColumnRenamed("customer_id", "probability_alive"),
         "id_column='probability_alive' is also the name of a prediction column"),
    ]  # fmt: skip
    for options, data, message in refused:
        with spark_jobs(spark) as jobs, pytest.raises(InvalidDataError, match=re.escape(message)):
            clvmodels.score(model, data, **{"horizon": "12M", **options})
        assert jobs == [], message

    # no rows: no scores (finding out would compute the data)
    empty = clvmodels.score(model, summary.where("frequency_cal < 0"), horizon="12M")
    assert empty.count() == 0
    assert empty.columns == ["customer_id", "expected_purchases", "probability_alive"]


def _messages(spark, frame: pd.DataFrame, **settings) -> tuple[str, str]:
    with pytest.raises(InvalidDataError) as pandas_error:
        clvmodels.summarize(frame, **settings)
    with pytest.raises(InvalidDataError) as spark_error:
        clvmodels.summarize(spark.createDataFrame(frame), **settings)
    return str(pandas_error.value), str(spark_error.value)


def test_errors_name_column_count_and_customer(spark, transactions):
    # sorted by id, the first bad row (pandas' example) has the smallest bad id (Spark's)
    transactions = transactions.sort_values("customer_id", kind="stable", ignore_index=True)
    negative = transactions.assign(
        amount=transactions["amount"].where(transactions["customer_id"] % 5 > 0, -1.0)
    )
    expected, got = _messages(spark, negative, amount="amount")
    assert got == expected
    assert got.startswith("column 'amount': ") and "are negative (e.g. customer " in got

    text = transactions.assign(date=transactions["date"].dt.strftime("%Y-%m-%d"))
    text.loc[text["customer_id"] % 7 == 0, "date"] = "not a date"
    expected, got = _messages(spark, text)
    assert got == expected
    assert "are not dates that can be parsed (e.g. customer " in got

    ids = transactions.assign(customer_id=transactions["customer_id"].astype(str))
    ids.loc[ids.index % 9 == 4, "customer_id"] = None
    expected, got = _messages(spark, ids)
    count = f"{int((ids.index % 9 == 4).sum()):,} of {len(ids):,} rows have no customer id"
    assert f"column 'customer_id': {count}" in expected
    assert got == f"column 'customer_id': {count}. Drop them or fill in the id."


def test_wrong_engine_and_options(spark_transactions, transactions):
    with pytest.raises(InvalidDataError, match="engine='spark' needs a PySpark DataFrame"):
        clvmodels.summarize(transactions, engine="spark")
    with pytest.raises(InvalidDataError, match="cannot read a PySpark DataFrame"):
        clvmodels.summarize(spark_transactions, engine="duckdb")
    with pytest.raises(InvalidDataError, match="the Spark engine takes none"):
        clvmodels.summarize(spark_transactions, engine_options={"memory_limit": "1GB"})
    with pytest.raises(InvalidDataError, match="cannot read %z"):
        strptime_to_spark("%Y-%m-%d %z")
    assert strptime_to_spark("%d.%m.%Y %I:%M %p") == "d.M.yyyy h:m a"


def test_customers_straddling_arrow_batches_are_finished_whole():
    """The mapInPandas function holds back the last customer of a batch: the result is
    that of all rows at once, however the rows are cut into batches."""
    from clvmodels.data._sql import SummaryPlan
    from clvmodels.data.spark_engine import _finisher
    from clvmodels.data.timeunits import NS_PER_DAY, parse_granularity

    plan = SummaryPlan(
        sql="", customer_id="customer_id", granularity=parse_granularity("D"),
        with_amount=True, unit_ns=NS_PER_DAY, end_window_ns=10 * NS_PER_DAY,
        holdout_end_window_ns=20 * NS_PER_DAY, metadata={},
    )  # fmt: skip
    rows = pd.DataFrame({
        "customer": ["a", "a", "b", "c", "c", "d"], "period": [0, 1, 1, 0, 1, 0],
        "n_windows": [2, 1, 1, 3, 2, 1], "first_window": [1, 12, 11, 2, 11, 5],
        "last_window": [4, 12, 11, 9, 15, 5], "first_time_ns": [1, 12, 11, 2, 11, 5],
        "last_time_ns": [4, 12, 11, 9, 15, 5], "total_amount": [3.0, 1.0, 2.0, 6.0, 4.0, 1.0],
        "first_window_amount": [1.0, 1.0, 2.0, 2.0, 1.0, 1.0],
    })  # fmt: skip
    rows["first_time_ns"] *= NS_PER_DAY
    rows["last_time_ns"] *= NS_PER_DAY
    whole = plan.finish({name: rows[name].to_numpy() for name in rows}).reset_index()
    assert list(whole["customer_id"]) == ["a", "c", "d"]  # b: not acquired in calibration
    for cuts in ([1, 4], [2, 3, 5], [3], [0, 6], [1, 2, 3, 4, 5]):
        bounds = [0, *cuts, len(rows)]
        batches = [rows.iloc[start:stop].reset_index(drop=True)
                   for start, stop in itertools.pairwise(bounds)]  # fmt: skip
        got = pd.concat(list(_finisher(plan)(iter(batches))), ignore_index=True)
        pd.testing.assert_frame_equal(got, whole, check_exact=True)


def test_experiment_with_data_engine_spark(spark, tmp_path):
    # a YAML run whose summary is computed by the active SparkSession from the file
    import duckdb

    from clvmodels.experiments.config import parse_config
    from clvmodels.experiments.runner import run_experiment

    path = tmp_path / "cdnow.parquet"
    with duckdb.connect() as con:
        con.register("tx", clvmodels.datasets.load_cdnow("sample")[["customer_id", "date"]])
        # microseconds: Spark cannot read Parquet's nanosecond timestamps
        con.execute(f"COPY (SELECT customer_id, CAST(date AS TIMESTAMP) AS date FROM tx) "
                    f"TO '{path}' (FORMAT parquet)")  # fmt: skip
    raw = {
        "name": "spark", "seed": 1,
        "periods": {"time_unit": "W", "calibration_end": "1997-09-30",
                    "holdout_end": "1998-06-30"},
        "models": [{"name": "bgnbd", "kind": "bgnbd"}],
        "evaluation": {"baselines": ["naive"]}, "output": {"plots": False},
    }  # fmt: skip
    runs = {}
    for engine in ("spark", "pandas"):
        config = parse_config({**raw, "data": {"path": str(path), "engine": engine}})
        runs[engine] = run_experiment(config, output_dir=tmp_path / engine)
    pd.testing.assert_frame_equal(runs["spark"].predictions, runs["pandas"].predictions)


def test_experiment_on_a_users_csv_with_data_engine_spark(spark, tmp_path):
    # a semicolon CSV with zero-padded text ids and day-first dates, read by Spark alone:
    # the same predictions (historical CLV included) as the in-memory run
    from clvmodels.exceptions import ConfigError
    from clvmodels.experiments.config import parse_config
    from clvmodels.experiments.runner import run_experiment

    tx = clvmodels.datasets.load_cdnow("sample")[["customer_id", "date", "amount"]]
    tx = tx.assign(customer_id=tx["customer_id"].map(lambda i: f"{i:05d}"),
                   date=tx["date"].dt.strftime("%d/%m/%Y"))  # fmt: skip
    path = tmp_path / "log.csv"
    tx.to_csv(path, index=False, sep=";")
    raw = {
        "name": "spark-csv", "seed": 1,
        "periods": {"time_unit": "W", "calibration_end": "1997-09-30",
                    "holdout_end": "1998-06-30"},
        "models": [{"name": "bgnbd", "kind": "bgnbd"}, {"name": "gg", "kind": "gamma_gamma"}],
        "clv": {"n_draws": 10}, "evaluation": {"baselines": ["naive"]},
        "output": {"plots": False},
    }  # fmt: skip
    runs = {}
    for engine in ("spark", "pandas"):
        data = {"path": str(path), "engine": engine, "duplicates": "keep",
                "columns": {"amount": "amount"}}  # fmt: skip
        runs[engine] = run_experiment(parse_config({**raw, "data": data}),
                                      output_dir=tmp_path / engine)  # fmt: skip
    spark_run, local_run = runs["spark"].predictions, runs["pandas"].predictions
    assert spark_run.index[0] == "00004"
    # amounts are summed in another order: the Gamma-Gamma fit moves in the last bits
    pd.testing.assert_frame_equal(spark_run, local_run, check_exact=False, rtol=1e-6)
    run_json = json.loads((tmp_path / "spark" / "run.json").read_text())
    assert run_json["data"]["rows_read"] == len(tx)
    assert run_json["data_fingerprint"].startswith("spark-xxhash64:")
    # steps that learn from the log itself are refused by name, before any work
    with pytest.raises(ConfigError) as caught:
        parse_config({**raw, "data": {"path": str(path), "engine": "spark",
                                      "columns": {"amount": "amount"}},
                      "evaluation": {"baselines": ["gradient_boosting"]}})  # fmt: skip
    assert caught.value.field == "evaluation.baselines"

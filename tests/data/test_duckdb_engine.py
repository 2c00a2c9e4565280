"""The DuckDB engine gives the pandas engine's summaries, from frames, files and relations."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError

EXACT_FLOAT = ("recency", "T", "recency_cal", "T_cal", "duration_holdout")


def assert_same_summary(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """Same ids, columns and values: counts and durations exactly, amounts to rounding
    (the engines add them up in different orders)."""
    assert list(actual.columns) == list(expected.columns)
    assert actual.index.name == expected.index.name
    np.testing.assert_array_equal(actual.index.to_numpy(), expected.index.to_numpy())
    for column in expected.columns:
        want, got = expected[column].to_numpy(), actual[column].to_numpy()
        assert got.dtype == want.dtype, column
        if want.dtype.kind == "f" and column not in EXACT_FLOAT:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=column)
        else:
            np.testing.assert_array_equal(got, want, err_msg=column)


@pytest.fixture(scope="module")
def files(tmp_path_factory, cdnow_master):
    """The CDNOW master log as CSV, as Parquet, and as Parquet split in three files."""
    folder = tmp_path_factory.mktemp("cdnow")
    tx = cdnow_master[["customer_id", "date", "amount"]]
    csv = folder / "cdnow.csv"
    tx.to_csv(csv, index=False)
    parquet = folder / "cdnow.parquet"
    with duckdb.connect() as con:
        con.register("tx", tx)
        con.execute(f"COPY tx TO '{parquet}' (FORMAT parquet)")
        for part, rows in enumerate(np.array_split(np.arange(len(tx)), 3)):
            con.register("part", tx.iloc[rows])
            con.execute(f"COPY part TO '{folder / f'part-{part}.parquet'}' (FORMAT parquet)")
    return {"frame": tx, "csv": csv, "parquet": parquet, "glob": str(folder / "part-*.parquet")}


SOURCES = ["frame", "csv", "parquet", "glob", "relation", "polars"]


def _source(files, name):
    if name == "relation":
        return duckdb.read_parquet(str(files["parquet"]))
    if name == "polars":
        polars = pytest.importorskip("polars")
        return polars.from_pandas(files["frame"])
    return files[name]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("granularity", "time_unit"), [("D", "D"), ("D", "W"), ("W", "W")])
def test_summarize_equals_the_pandas_engine_on_cdnow(files, source, granularity, time_unit):
    settings = dict(amount="amount", time_unit=time_unit, granularity=granularity)
    expected = clvmodels.summarize(files["frame"], observation_end="1998-06-30", **settings)
    actual = clvmodels.summarize(
        _source(files, source), observation_end="1998-06-30", engine="duckdb", **settings
    )
    assert_same_summary(expected, actual)
    assert actual.attrs == expected.attrs


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("granularity", "time_unit"), [("D", "W"), ("W", "W"), ("M", "D")])
def test_calibration_holdout_equals_the_pandas_engine_on_cdnow(
    files, source, granularity, time_unit
):
    settings = dict(calibration_end="1997-09-30", holdout_end="1998-06-30", amount="amount",
                    time_unit=time_unit, granularity=granularity)  # fmt: skip
    expected = clvmodels.calibration_holdout(files["frame"], **settings)
    actual = clvmodels.calibration_holdout(_source(files, source), engine="duckdb", **settings)
    assert_same_summary(expected, actual)
    assert actual.attrs == expected.attrs
    assert len(actual) == 23_570  # the CDNOW cohort: all first purchases in Q1 1997


@pytest.mark.parametrize("granularity", ["h", "6h", "2D", "Q", "Y"])
def test_other_windows_equal_the_pandas_engine(granularity):
    rng = np.random.default_rng(5)
    n = 5000
    tx = pd.DataFrame({
        "customer_id": rng.integers(0, 300, n),
        # includes times before 1970, where SQL's truncating division would differ
        "date": pd.Timestamp("1969-06-01") + pd.to_timedelta(rng.integers(0, 10**6, n) * 97, "s"),
        "amount": rng.gamma(2.0, 10.0, n).round(2),
    })  # fmt: skip
    expected = clvmodels.summarize(tx, amount="amount", granularity=granularity, time_unit="D")
    actual = clvmodels.summarize(tx, amount="amount", granularity=granularity, time_unit="D",
                                 engine="duckdb")  # fmt: skip
    assert_same_summary(expected, actual)


def test_auto_engine_sends_files_to_duckdb_and_frames_to_pandas(files):
    by_default = clvmodels.summarize(str(files["parquet"]), amount="amount")
    in_memory = clvmodels.summarize(files["frame"], amount="amount")
    assert_same_summary(in_memory, by_default)
    loaded = clvmodels.summarize(files["csv"], amount="amount", engine="pandas")
    assert_same_summary(in_memory, loaded)


def test_string_dates_with_a_format_and_integer_ids(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("id,day,value\n7,31/01/2024,1.5\n7,02/02/2024,2\n8,01/02/2024,3\n")
    expected = clvmodels.summarize(
        pd.read_csv(path, dtype={"day": str}), customer_id="id", date="day", amount="value",
        date_format="%d/%m/%Y",
    )  # fmt: skip
    actual = clvmodels.summarize(path, customer_id="id", date="day", amount="value",
                                 date_format="%d/%m/%Y")  # fmt: skip
    assert_same_summary(expected, actual)
    assert actual["frequency"].tolist() == [1, 0]


def test_compress_of_a_summary_file_collects_only_patterns(tmp_path, cdnow_calibration):
    path = tmp_path / "summary.parquet"
    with duckdb.connect() as con:
        con.register("s", cdnow_calibration.reset_index())
        con.execute(f"COPY s TO '{path}' (FORMAT parquet)")
    expected = clvmodels.compress(cdnow_calibration)
    pd.testing.assert_frame_equal(clvmodels.compress(path), expected)
    pd.testing.assert_frame_equal(clvmodels.compress(duckdb.read_parquet(str(path))), expected)
    weighted = clvmodels.compress(clvmodels.compress(path))
    pd.testing.assert_frame_equal(weighted, expected)


def test_fit_on_files_equals_fit_in_memory(tmp_path, cdnow_sample):
    path = tmp_path / "sample.parquet"
    with duckdb.connect() as con:
        con.register("tx", cdnow_sample[["customer_id", "date"]])
        con.execute(f"COPY tx TO '{path}' (FORMAT parquet)")
    settings = dict(calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")
    from_file = clvmodels.compress(clvmodels.calibration_holdout(path, **settings))
    in_memory = clvmodels.calibration_holdout(cdnow_sample, **settings)
    a = clvmodels.BGNBD().fit(from_file)
    b = clvmodels.BGNBD().fit(in_memory)
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-7)
    np.testing.assert_allclose(a.params_.round(4), [0.2426, 4.4136, 0.7929, 2.4259])


# ------------------------------------------------------------------ bad input


def _write(tmp_path, text: str, name: str = "tx.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer_id,date,amount\n1,2024-01-01,1\n,2024-01-02,2\n",
         r"column 'customer_id': 1 of 2 rows have no customer id"),
        ("customer_id,date,amount\n1,2024-01-01,1\n2,,2\n",
         r"column 'date': 1 of 2 rows have a missing date .* \(e\.g\. customer 2\)"),
        ("customer_id,date,amount\n1,2024-01-01,1\n2,soon,2\n",
         r"column 'date': 1 of 2 rows are not dates that can be parsed \(e\.g\. customer 2\)"),
        ("customer_id,date,amount\n1,2024-01-01,1\n2,2024-01-02,-2\n",
         r"column 'amount': 1 of 2 rows are negative \(e\.g\. customer 2\)\. Refunds"),
        ("customer_id,date,amount\n1,2024-01-01,1\n2,2024-01-02,\n",
         r"column 'amount': 1 of 2 rows are missing \(NaN\) \(e\.g\. customer 2\)"),
        ("customer_id,date,amount\n1,2024-01-01,1\n2,2024-01-02,$5\n",
         r"column 'amount': 1 of 2 rows are not numbers \(e\.g\. customer 2\)"),
        ("customer_id,date,amount\n1,2024-01-01,1\n2,9999-12-31,2\n",
         r"column 'date': 1 of 2 rows are outside 1678-01-01 \.\. 2262-04-11"),
    ],
)  # fmt: skip
def test_bad_rows_are_named_with_a_count_and_an_example(tmp_path, text, message):
    with pytest.raises(InvalidDataError, match=message):
        clvmodels.summarize(_write(tmp_path, text), amount="amount")


def test_rows_after_the_end(tmp_path):
    path = _write(tmp_path, "customer_id,date\n1,2024-01-01\n2,2024-03-01\n")
    with pytest.raises(InvalidDataError, match=r"1 of 2 rows are after observation_end="
                                               r"'2024-02-01' \(e\.g\. customer 2\)"):  # fmt: skip
        clvmodels.summarize(path, observation_end="2024-02-01")
    kept = clvmodels.summarize(path, observation_end="2024-02-01", after_end="drop")
    assert kept.index.tolist() == [1]
    with pytest.raises(InvalidDataError, match="no transactions on or before"):
        clvmodels.summarize(path, observation_end="2023-01-01", after_end="drop")


def test_file_problems_are_named(tmp_path):
    with pytest.raises(InvalidDataError, match="no file matches"):
        clvmodels.summarize(tmp_path / "missing.parquet")
    with pytest.raises(InvalidDataError, match="is a directory"):
        clvmodels.summarize(tmp_path)
    with pytest.raises(InvalidDataError, match="cannot tell the file format"):
        clvmodels.summarize(_write(tmp_path, "x", "tx.json"))
    header = "customer_id,date\n1,2024-01-01\n"
    with pytest.raises(InvalidDataError, match=re.escape("has no column 'when'")):
        clvmodels.summarize(_write(tmp_path, header), date="when")
    with pytest.raises(InvalidDataError, match="transactions are empty"):
        clvmodels.summarize(_write(tmp_path, "customer_id,date\n", "empty.csv"))
    # a CSV holds text: eight digits read as YYYYMMDD, other numbers are no dates
    summary = clvmodels.summarize(_write(tmp_path, "customer_id,date\n1,19970101\n", "int.csv"))
    assert summary.attrs["clvmodels"]["observation_end"] == "1997-01-01"
    with pytest.raises(InvalidDataError, match="not dates that can be parsed"):
        clvmodels.summarize(_write(tmp_path, "customer_id,date\n1,1997\n", "year.csv"))


def test_time_zone_columns_are_refused_with_a_fix():
    relation = duckdb.sql(
        "SELECT 1 AS customer_id, TIMESTAMPTZ '2024-01-01 10:00:00+02' AS date"
    )
    with pytest.raises(InvalidDataError, match=r"timestamp with time zone.*local time"):
        clvmodels.summarize(relation)


def test_engine_settings_are_checked(files):
    with pytest.raises(InvalidDataError, match="engine='sql'"):
        clvmodels.summarize(files["frame"], engine="sql")
    with pytest.raises(InvalidDataError, match="needs a PySpark DataFrame"):
        clvmodels.summarize(files["frame"], engine="spark")
    with pytest.raises(InvalidDataError, match="unknown option 'memory'"):
        clvmodels.summarize(files["parquet"], engine_options={"memory": "1GB"})
    limited = clvmodels.summarize(files["parquet"], engine_options={"memory_limit": "500MB",
                                                                    "threads": 1})  # fmt: skip
    assert_same_summary(clvmodels.summarize(files["frame"]), limited)


def _setting(source, name):
    return source._connection.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


def test_connections_are_bounded_and_quiet_by_default(files):
    from clvmodels.data.duckdb_engine import DuckDBSource, default_memory_limit

    with duckdb.connect(config={"memory_limit": default_memory_limit()}) as reference:
        bound = reference.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    with duckdb.connect(config={"memory_limit": "80%"}) as reference:
        duckdb_default = reference.execute(
            "SELECT current_setting('memory_limit')"
        ).fetchall()[0][0]
    with DuckDBSource(files["parquet"]) as source:
        # DuckDB's own default is 80 % of RAM; a summary takes a quarter unless told
        assert _setting(source, "memory_limit") == bound != duckdb_default
        assert _setting(source, "enable_progress_bar") is False
    with DuckDBSource(files["parquet"], memory_limit="80%") as source:
        assert _setting(source, "memory_limit") == duckdb_default


def test_spill_goes_to_the_given_folder_and_is_removed(files, tmp_path):
    from clvmodels.data.duckdb_engine import DuckDBSource

    with DuckDBSource(files["parquet"], temp_directory=tmp_path) as source:
        spill = _setting(source, "temp_directory")
        assert spill.startswith(str(tmp_path)) and len(list(tmp_path.iterdir())) == 1
    assert list(tmp_path.iterdir()) == []
    summary = clvmodels.summarize(
        files["parquet"], engine_options={"temp_directory": str(tmp_path), "threads": 1}
    )
    assert_same_summary(clvmodels.summarize(files["frame"]), summary)
    with pytest.raises(InvalidDataError, match="not an existing folder"):
        clvmodels.summarize(files["parquet"], engine_options={"temp_directory": tmp_path / "x"})


def test_the_result_is_built_after_the_connection_is_closed(files, monkeypatch):
    """DuckDB's buffers are returned before the pandas frame is built (the peak memory
    of a large summary is the larger of the two, not their sum)."""
    from clvmodels.data import _sql
    from clvmodels.data.duckdb_engine import DuckDBSource

    opened: list[DuckDBSource] = []
    original_init, original_publish = DuckDBSource.__init__, _sql.SummaryPlan.publish

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        opened.append(self)

    def publish(self, rows):
        assert opened and all(source._connection is None for source in opened)
        return original_publish(self, rows)

    monkeypatch.setattr(DuckDBSource, "__init__", init)
    monkeypatch.setattr(_sql.SummaryPlan, "publish", publish)
    summary = clvmodels.summarize(files["parquet"], amount="amount")
    split = clvmodels.calibration_holdout(
        files["parquet"], calibration_end="1997-09-30", holdout_end="1998-06-30"
    )
    assert len(opened) == 2 and len(summary) == len(split) == 23570


def test_the_callers_frame_and_relation_are_untouched(files):
    frame = files["frame"].copy()
    relation = duckdb.read_parquet(str(files["parquet"]))
    clvmodels.summarize(frame, engine="duckdb")
    clvmodels.summarize(relation)
    pd.testing.assert_frame_equal(frame, files["frame"])
    assert relation.shape == (len(frame), 3)


def test_the_default_memory_limit_is_a_quarter_of_ram_and_at_least_750mb(monkeypatch):
    from clvmodels.data import duckdb_engine

    ram = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 24 * 2**30 // 4096}
    monkeypatch.setattr(duckdb_engine.os, "sysconf", ram.__getitem__)
    assert duckdb_engine.default_memory_limit() == "6144MB"
    ram["SC_PHYS_PAGES"] = 2**30 // 4096  # 1 GB of RAM: the floor
    assert duckdb_engine.default_memory_limit() == "750MB"
    assert duckdb_engine.memory_limit_bytes("5.5 GiB") == int(5.5 * 2**30)
    assert duckdb_engine.memory_limit_bytes("715.2 MiB") == int(715.2 * 2**20)


def test_the_in_memory_route_and_the_streaming_route_agree(tmp_path, monkeypatch):
    # typed Parquet that fits the memory limit is fetched and summarised by the numpy
    # engine; data over the limit is aggregated by DuckDB: the same summary either way
    from clvmodels.data import summary as summary_module

    rng = np.random.default_rng(5)
    n = 20_000
    frame = pd.DataFrame({
        "customer_id": rng.integers(0, 2_000, n),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), "s"),
        "amount": rng.integers(0, 10_000, n) / 100,
    })  # fmt: skip
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path)
    routes: list[bool] = []
    original = summary_module._fetched_if_faster

    def spy(source, settings):
        fetched = original(source, settings)
        routes.append(fetched is not None)
        return fetched

    monkeypatch.setattr(summary_module, "_fetched_if_faster", spy)
    settings = {"amount": "amount", "time_unit": "W", "duplicates": "keep"}
    fetched = clvmodels.summarize(str(path), **settings)
    monkeypatch.setattr(summary_module, "IN_MEMORY_BYTES_PER_ROW", 10**9)  # never fits
    streamed = clvmodels.summarize(str(path), **settings)
    assert routes == [True, False]
    expected = clvmodels.summarize(frame, **settings)
    pd.testing.assert_frame_equal(fetched, expected, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(streamed, expected, check_exact=False, rtol=1e-12)

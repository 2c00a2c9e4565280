"""clvmodels.score: the model's own predictions, in memory or chunk by chunk from files."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError, NotFittedError


@pytest.fixture(scope="module")
def fitted(cdnow_calibration):
    return clvmodels.BGNBD().fit(cdnow_calibration)


@pytest.fixture(scope="module")
def summary_file(tmp_path_factory, cdnow_calibration):
    path = tmp_path_factory.mktemp("score") / "summary.parquet"
    with duckdb.connect() as con:
        con.register("s", cdnow_calibration.reset_index())
        con.execute(f"COPY s TO '{path}' (FORMAT parquet)")
    return path


def test_score_frame_is_the_models_own_predictions(fitted, cdnow_calibration):
    scores = clvmodels.score(fitted, cdnow_calibration, horizon=39)
    pd.testing.assert_series_equal(
        scores["expected_purchases"],
        fitted.expected_purchases(cdnow_calibration, 39).rename("expected_purchases"),
    )
    pd.testing.assert_series_equal(
        scores["probability_alive"],
        fitted.probability_alive(cdnow_calibration).rename("probability_alive"),
    )
    # a duration is converted with the model's time unit (weeks)
    by_duration = clvmodels.score(fitted, cdnow_calibration, horizon="273D")
    np.testing.assert_allclose(by_duration["expected_purchases"], scores["expected_purchases"])


@pytest.mark.parametrize("chunk_rows", [333, 10_000])
def test_files_scored_in_chunks_equal_scoring_in_memory(
    fitted, cdnow_calibration, summary_file, tmp_path, chunk_rows
):
    expected = clvmodels.score(fitted, cdnow_calibration, horizon=39, interval=0.9,
                               random_state=3)  # fmt: skip
    out = clvmodels.score(fitted, summary_file, horizon=39, interval=0.9, random_state=3,
                          out=tmp_path / "scores.parquet", chunk_rows=chunk_rows)  # fmt: skip
    written = duckdb.read_parquet(str(out)).df().set_index("customer_id")
    assert sorted(written.index) == sorted(expected.index)
    pd.testing.assert_frame_equal(written.loc[expected.index], expected, check_exact=True)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no leftovers


def test_spend_and_bgbb_models_score_too(cdnow_calibration):
    spenders = cdnow_calibration[cdnow_calibration["frequency_cal"] > 0]
    spend = clvmodels.GammaGamma().fit(spenders)
    scored = clvmodels.score(spend, spenders)
    pd.testing.assert_series_equal(
        scored["expected_spend"], spend.expected_spend(spenders).rename("expected_spend")
    )
    donations = clvmodels.datasets.load_donations()
    bgbb = clvmodels.BGBB().fit(donations)
    scored = clvmodels.score(bgbb, donations, horizon=5)
    np.testing.assert_allclose(scored["expected_purchases"],
                               bgbb.expected_purchases(donations, 5))  # fmt: skip
    with pytest.raises(InvalidDataError, match="whole number of future periods"):
        clvmodels.score(bgbb, donations, horizon="12M")


def test_output_rules(fitted, summary_file, tmp_path):
    with pytest.raises(InvalidDataError, match="pass out="):
        clvmodels.score(fitted, summary_file)
    with pytest.raises(InvalidDataError, match=r"use a \.parquet name"):
        clvmodels.score(fitted, summary_file, out=tmp_path / "scores.csv")
    existing = tmp_path / "taken.parquet"
    existing.write_text("keep me")
    with pytest.raises(InvalidDataError, match="exists; pass overwrite=True"):
        clvmodels.score(fitted, summary_file, out=existing)
    assert existing.read_text() == "keep me"
    clvmodels.score(fitted, summary_file, out=existing, overwrite=True, horizon=1)
    assert len(duckdb.read_parquet(str(existing)).df()) == 2357
    with pytest.raises(InvalidDataError, match="no column 'id'"):
        clvmodels.score(fitted, summary_file, out=tmp_path / "x.parquet", id_column="id")
    with pytest.raises(NotFittedError, match="call fit"):
        clvmodels.score(clvmodels.BGNBD(), summary_file, out=tmp_path / "y.parquet")
    with pytest.raises(InvalidDataError, match="chunk_rows"):
        clvmodels.score(fitted, summary_file, out=tmp_path / "z.parquet", chunk_rows=0)


def test_files_without_the_id_column_are_refused(fitted, summary_file, tmp_path):
    # the customers must not be written under made-up ids (row numbers)
    out = tmp_path / "scores.parquet"
    with pytest.raises(InvalidDataError) as caught:
        clvmodels.score(fitted, summary_file, out=out, id_column="cust")
    message = str(caught.value)
    assert "no column 'cust'" in message
    assert "'customer_id', 'frequency_cal'" in message  # what the file has
    assert "id_column=" in message
    assert list(tmp_path.iterdir()) == []  # no output, no staging leftovers


@pytest.mark.parametrize("interval", [None, 0.9])
def test_output_columns_are_known_without_data(cdnow_calibration, interval):
    # the schema of Spark scores is built from them before any row is computed
    from clvmodels.scoring import _prediction_columns, _predictions

    spenders = cdnow_calibration[cdnow_calibration["frequency_cal"] > 0]
    donations = clvmodels.datasets.load_donations()
    cases = [
        (clvmodels.BGNBD().fit(cdnow_calibration), cdnow_calibration, "12M"),
        (clvmodels.GammaGamma().fit(spenders), spenders, "12M"),
        (clvmodels.BGBB().fit(donations), donations, 5),
    ]
    for model, frame, horizon in cases:
        scored = clvmodels.score(model, frame.head(50), horizon=horizon, interval=interval)
        expected = _prediction_columns(_predictions(model, horizon, interval, 0), interval)
        assert list(scored.columns) == expected

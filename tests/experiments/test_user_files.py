"""Runs on files as users have them: ids with leading zeros, day-first dates, other
separators, duplicated exports, end dates past the data. Each gives the right answer or
stops before the first fit with an error that names the field."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import (
    ConfigError,
    DuplicateRowsWarning,
    EndDateWarning,
    InvalidDataError,
)
from clvmodels.experiments.config import parse_config
from clvmodels.experiments.runner import run_experiment

CALIBRATION = {"time_unit": "W", "calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """The CDNOW sample with text ids padded to six digits (a CRM export)."""
    tx = clvmodels.datasets.load_cdnow()[["customer_id", "date", "amount"]].copy()
    tx["customer_id"] = tx["customer_id"].map(lambda i: f"{i:06d}")
    return tx


def _config(path: Path, **data: Any) -> Any:
    raw = {
        "name": "files", "seed": 1,
        "data": {"path": str(path), "columns": {"amount": "amount"}, **data},
        "periods": dict(CALIBRATION),
        "models": [{"name": "bgnbd", "kind": "bgnbd"}, {"name": "gg", "kind": "gamma_gamma"}],
        "clv": {"n_draws": 10}, "evaluation": {"baselines": ["naive"]},
        "output": {"plots": False},
    }  # fmt: skip
    return parse_config(raw)


def _run(config: Any, folder: Path) -> tuple[Any, list[str]]:
    lines: list[str] = []
    return run_experiment(config, output_dir=folder, log=lines.append), lines


def test_zero_padded_ids_keep_their_history(log, tmp_path):
    path = tmp_path / "log.csv"
    log.assign(date=log["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    result, _ = _run(_config(path, duplicates="keep"), tmp_path / "run")
    predictions = result.predictions
    assert predictions.index.tolist() == sorted(set(log["customer_id"]))  # zeros kept
    expected = clvmodels.historical_clv(log, as_of="1997-09-30", duplicates="keep")["value"]
    assert (predictions["historical_clv"] > 0).mean() > 0.99  # not the zeros of a failed join
    pd.testing.assert_series_equal(
        predictions["historical_clv"], expected.reindex(predictions.index), check_names=False
    )


def test_day_first_dates_follow_date_format_or_stop_before_fitting(log, tmp_path):
    path = tmp_path / "log.csv"
    log.assign(date=log["date"].dt.strftime("%d/%m/%Y")).to_csv(path, index=False)
    # days above 12 tell the order: inferred the same way by every engine
    inferred, _ = _run(_config(path, duplicates="keep"), tmp_path / "inferred")
    given, _ = _run(_config(path, duplicates="keep", date_format="%d/%m/%Y"), tmp_path / "given")
    pd.testing.assert_frame_equal(inferred.predictions, given.predictions)
    wrong = _config(path, duplicates="keep", date_format="%m/%d/%Y")
    lines: list[str] = []
    with pytest.raises(InvalidDataError, match=r"column 'date'.*not dates that can be parsed"):
        run_experiment(wrong, output_dir=tmp_path / "wrong", log=lines.append)
    assert not any("fit " in line for line in lines)  # found before the first fit
    assert not (tmp_path / "wrong").exists()


def test_dates_that_cannot_be_told_apart_ask_for_date_format(tmp_path):
    path = tmp_path / "ambiguous.csv"
    path.write_text("customer_id,date,amount\n1,01/02/1997,5\n1,03/04/1997,5\n2,05/06/1997,1\n")
    raw = _config(path).model_dump()
    raw["periods"] = {"time_unit": "W", "calibration_end": "1997-03-31",
                      "holdout_end": "1997-05-31"}  # fmt: skip
    with pytest.raises(InvalidDataError, match=r"day/month or month/day.*date_format"):
        run_experiment(parse_config(raw), output_dir=tmp_path / "run")


@pytest.mark.parametrize("separator", [";", "\t"])
def test_semicolon_and_tab_files_run(log, tmp_path, separator):
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False, sep=separator)
    result, _ = _run(_config(path, duplicates="keep"), tmp_path / "run")
    assert len(result.predictions) == 2357


def test_a_duplicated_export_is_counted_and_can_be_dropped(log, tmp_path):
    twice = tmp_path / "twice.parquet"
    once = tmp_path / "once.parquet"
    pd.concat([log, log]).to_parquet(twice)
    log.drop_duplicates().to_parquet(once)
    with pytest.warns(DuplicateRowsWarning, match=r"6,940 of 13,838 transactions"):
        _run(_config(twice), tmp_path / "warned")
    run_json = json.loads((tmp_path / "warned" / "run.json").read_text())
    assert run_json["data"]["duplicate_rows"] == 6940
    assert run_json["data"]["duplicates_dropped"] == 0
    dropped, lines = _run(_config(twice, duplicates="drop"), tmp_path / "dropped")
    assert any("6,940 exact duplicate rows dropped" in line for line in lines)
    single, _ = _run(_config(once), tmp_path / "single")
    pd.testing.assert_frame_equal(dropped.predictions, single.predictions)
    with pytest.raises(InvalidDataError, match="exact duplicates"):
        _run(_config(twice, duplicates="error"), tmp_path / "refused")


def test_a_holdout_past_the_data_is_refused_unless_allowed(log, tmp_path):
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    raw = _config(path, duplicates="keep").model_dump()
    raw["periods"]["holdout_end"] = "1999-06-30"
    with pytest.raises(InvalidDataError, match=r"holdout_end=1999-06-30 is 365 days after"):
        run_experiment(parse_config(raw), output_dir=tmp_path / "refused")
    raw["periods"]["holdout_past_data"] = "allow"
    with pytest.warns(EndDateWarning, match="1998-06-30"):
        run_experiment(parse_config(raw), output_dir=tmp_path / "allowed")


def test_rows_left_out_are_counted(log, tmp_path):
    late = pd.DataFrame({"customer_id": ["000004", "999999"],
                         "date": pd.to_datetime(["1998-07-02", "1998-03-01"]),
                         "amount": [10.0, 20.0]})  # fmt: skip
    path = tmp_path / "log.parquet"
    pd.concat([log, late]).to_parquet(path)
    _, lines = _run(_config(path, duplicates="keep"), tmp_path / "run")
    counts = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    assert counts["rows_after_end"] == 1  # after holdout_end
    assert counts["rows_of_customers_acquired_later"] == 1  # first purchase in the holdout
    assert any("1 rows after the last end date left out" in line for line in lines)


def test_a_missing_column_names_the_yaml_key(log, tmp_path):
    path = tmp_path / "log.csv"
    log.rename(columns={"amount": "value"}).to_csv(path, index=False, sep=";")
    with pytest.raises(ConfigError) as caught:
        run_experiment(_config(path), output_dir=tmp_path / "run")
    assert caught.value.field == "data.columns.amount"


def test_the_fingerprint_depends_on_the_rows_not_the_format(log, tmp_path):
    csv, parquet = tmp_path / "log.csv", tmp_path / "log.parquet"
    log.to_csv(csv, index=False)
    log.to_parquet(parquet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRowsWarning)
        _run(_config(csv, duplicates="keep"), tmp_path / "a")
        _run(_config(parquet, duplicates="keep"), tmp_path / "b")
    prints = [json.loads((tmp_path / n / "run.json").read_text())["data_fingerprint"]
              for n in ("a", "b")]  # fmt: skip
    assert prints[0] == prints[1]

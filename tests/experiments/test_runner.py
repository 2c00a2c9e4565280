"""Running an experiment: the run directory, published CDNOW numbers, determinism, the
report in a browser, atomic writes, file data sources, runs without holdout, BG/BB, MLflow.

The main job (``configs/cdnow.yaml``) runs once per module (``cdnow_run``) and a second
time only to prove the outputs are reproducible; the other tests use a small, fast
configuration (one purchase model, no plots, few draws).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clvmodels
from clvmodels.exceptions import ConfigError, InvalidDataError
from clvmodels.experiments import runner
from clvmodels.experiments.config import ExperimentConfig, load_config, parse_config
from clvmodels.experiments.runner import RunResult, run_experiment

REPO = Path(__file__).resolve().parents[2]
CDNOW = REPO / "configs" / "cdnow.yaml"
FAST = ["clv.n_draws=50"]  # the intervals of the main job, with fewer draws
CALIBRATION = {"time_unit": "W", "calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}

# published estimates for the CDNOW sample, weeks, calibration to 1997-09-30
BGNBD = {"r": 0.2426, "alpha": 4.414, "a": 0.7929, "b": 2.426}  # Fader, Hardie & Lee 2005
PARETO_NBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # Fader & Hardie 2005
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # Fader, Hardie & Lee 2005 (RFM & CLV)


@dataclass
class Run:
    config: ExperimentConfig
    result: RunResult
    dir: Path


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }  # fmt: skip


def leftovers(parent: Path) -> list[str]:
    """Staging or retired directories a run left beside its target."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def small(**changes: Any) -> dict[str, Any]:
    """A fast experiment: BG/NBD and Gamma-Gamma on the CDNOW sample, no plots."""
    raw: dict[str, Any] = {
        "name": "small",
        "seed": 3,
        "data": {"dataset": "cdnow_sample", "columns": {"amount": "amount"}},
        "periods": dict(CALIBRATION),
        "models": [{"name": "bgnbd", "kind": "bgnbd"}, {"name": "gg", "kind": "gamma_gamma"}],
        "clv": {"n_draws": 10},
        "evaluation": {"baselines": ["naive"]},
        "output": {"plots": False},
    }
    raw.update(changes)
    return raw


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``clvmodels run configs/cdnow.yaml`` (fewer interval draws), once per module."""
    config, _ = load_config(CDNOW, FAST)
    out = tmp_path_factory.mktemp("cdnow") / "run"
    result = run_experiment(config, output_dir=out)
    return Run(config, result, out)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = parse_config(small())
    out = tmp_path_factory.mktemp("small") / "run"
    return Run(config, run_experiment(config, output_dir=out), out)


# ---------------------------------------------------------------- the main job


def test_run_directory_layout(cdnow_run: Run) -> None:
    out = cdnow_run.dir
    assert cdnow_run.result.output_dir == out
    for name in ("config.yaml", "run.json", "metrics.json", "metrics.csv",
                 "predictions.parquet", "predictions.csv", "manifest.json", "report.html"):
        assert (out / name).is_file(), name  # fmt: skip
    names = [model.name for model in cdnow_run.config.models]
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(names)
    for name in names:
        for file in ("model.json", "summary.json", "summary.csv"):
            assert (out / "models" / name / file).is_file(), f"{name}/{file}"
    tables = {p.name for p in (out / "tables").glob("*.csv")}
    assert tables >= {
        "data.csv", "fit.csv", "metrics.csv", "conditional_expectations.csv", "tracking.csv",
        "top_customers.csv", "clv_segments.csv", *(f"parameters_{name}.csv" for name in names),
    }  # fmt: skip
    plots = {p.name for p in (out / "plots").glob("*.png")}
    assert plots >= {
        "conditional_expectations.png", "tracking.png", "tracking_cumulative.png",
        "deciles.png", "probability_alive.png", "clv_comparison.png",
        *(f"heterogeneity_{name}.png" for name in names),
    }  # fmt: skip
    for plot in (out / "plots").iterdir():
        assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), plot.name
    # everything the report lists was written, and nothing was left beside the run
    manifest = json.loads((out / "manifest.json").read_text())
    for section in manifest["sections"]:
        for entry in section["tables"] + section["plots"]:
            assert (out / entry["file"]).is_file(), entry["file"]
    assert leftovers(out.parent) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]


def test_published_parameters(cdnow_run: Run) -> None:
    for name, published in (("bgnbd", BGNBD), ("pnbd", PARETO_NBD),
                            ("gamma_gamma", GAMMA_GAMMA)):  # fmt: skip
        summary = json.loads((cdnow_run.dir / "models" / name / "summary.json").read_text())
        estimates = {k: v["estimate"] for k, v in summary["parameters"].items()}
        assert set(estimates) == set(published), name
        for param, value in published.items():
            assert estimates[param] == pytest.approx(value, rel=2e-3), f"{name}.{param}"
        assert summary["fit"]["converged"] is True
        for row in summary["parameters"].values():
            assert row["lower"] < row["estimate"] < row["upper"]
            assert row["std_error"] > 0
    fit = json.loads((cdnow_run.dir / "models" / "bgnbd" / "summary.json").read_text())["fit"]
    assert fit["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert fit["n_customers"] == 2357
    assert fit["time_unit"] == "W"
    parameters = pd.read_csv(cdnow_run.dir / "models" / "bgnbd" / "summary.csv", index_col=0)
    assert parameters.loc["r", "estimate"] == pytest.approx(BGNBD["r"], rel=2e-3)


def test_metrics(cdnow_run: Run) -> None:
    metrics = json.loads((cdnow_run.dir / "metrics.json").read_text())
    assert metrics["experiment"] == "cdnow"
    assert metrics["seed"] == 42
    assert metrics["holdout"] == {
        "actual_repeat_transactions": 1882.0, "calibration_end": "1997-09-30",
        "holdout_end": "1998-06-30",
    }  # fmt: skip
    rows = metrics["metrics"]
    assert set(rows) == {"bgnbd", "pnbd", "mbgnbd", "naive", "gradient_boosting"}
    for name, row in rows.items():
        assert 0 < row["mae"] < row["rmse"], name
        assert -1 <= row["spearman"] <= 1
    # the models predict the holdout within a few percent of the published BG/NBD
    assert rows["bgnbd"]["total_error_pct"] == pytest.approx(-12.1, abs=0.5)
    assert rows["bgnbd"]["mae"] < rows["naive"]["mae"]
    assert {model["n_customers"] for model in metrics["fit"].values()} >= {2357}
    run = json.loads((cdnow_run.dir / "run.json").read_text())
    assert run["data"]["customers"] == 2357
    assert run["data"]["rows_read"] == 6919
    # the CDNOW sample's 21 exact duplicate rows, kept as the papers keep them
    assert run["data"]["duplicate_rows"] == 0  # duplicates: keep does not look for them
    assert run["data"]["rows_after_end"] == 0
    assert run["data"]["rows_of_customers_acquired_later"] == 0
    assert run["data"]["repeat_transactions_holdout"] == 1882
    assert run["seed"] == 42
    assert run["data_fingerprint"].startswith("sha256:")
    assert run["clvmodels_version"] == clvmodels.__version__
    # metrics.csv and the result hold the same numbers
    table = pd.read_csv(cdnow_run.dir / "metrics.csv", index_col=0)
    expected = pd.DataFrame(rows).T.loc[table.index, table.columns]
    pd.testing.assert_frame_equal(table, expected.astype(float), rtol=1e-9, check_names=False)
    pd.testing.assert_frame_equal(
        cdnow_run.result.metrics.loc[table.index, table.columns], table, rtol=1e-9,
        check_names=False,
    )  # fmt: skip


def test_predictions_parquet_equals_csv(cdnow_run: Run) -> None:
    out = cdnow_run.dir
    from_parquet = pq.read_table(out / "predictions.parquet").to_pandas()
    from_csv = pd.read_csv(out / "predictions.csv")
    assert list(from_parquet.columns) == list(from_csv.columns)
    assert from_parquet.columns[0] == "customer_id"
    assert len(from_parquet) == 2357
    assert from_parquet["customer_id"].is_unique
    pd.testing.assert_frame_equal(from_parquet, from_csv, rtol=1e-9, check_dtype=False)
    # the parquet file holds the result exactly
    result = cdnow_run.result.predictions.reset_index()
    pd.testing.assert_frame_equal(from_parquet, result, check_dtype=False)
    columns = set(from_csv.columns)
    for name in ("bgnbd", "pnbd", "mbgnbd"):
        assert {f"{name}_expected_purchases", f"{name}_expected_purchases_lower",
                f"{name}_expected_purchases_upper", f"{name}_probability_alive"} <= columns
    assert {"bgnbd_clv", "pnbd_clv", "gamma_gamma_expected_spend", "historical_clv",
            "frequency", "recency", "T", "frequency_holdout"} <= columns  # fmt: skip
    assert "mbgnbd_clv" not in columns  # clv.purchase_models names two models
    assert from_csv["frequency_holdout"].sum() == 1882
    assert (from_csv["bgnbd_expected_purchases_lower"]
            <= from_csv["bgnbd_expected_purchases"] + 1e-12).all()  # fmt: skip
    assert (from_csv["bgnbd_expected_purchases"]
            <= from_csv["bgnbd_expected_purchases_upper"] + 1e-12).all()  # fmt: skip
    assert from_csv["bgnbd_probability_alive"].between(0, 1).all()


def test_recorded_config_validates_and_matches(cdnow_run: Run) -> None:
    config, _ = load_config(cdnow_run.dir / "config.yaml")
    assert config.resolved() == cdnow_run.config.resolved()
    assert config.clv.n_draws == 50


def test_callers_config_is_not_modified(cdnow_run: Run) -> None:
    fresh, _ = load_config(CDNOW, FAST)
    assert cdnow_run.config.model_dump() == fresh.model_dump()
    assert cdnow_run.config.output.dir == "runs/cdnow"


def test_same_config_gives_identical_outputs(cdnow_run: Run, tmp_path: Path) -> None:
    config, _ = load_config(CDNOW, FAST)
    again = run_experiment(config, output_dir=tmp_path / "again")
    first, second = files_of(cdnow_run.dir), files_of(again.output_dir)
    assert sorted(first) == sorted(second)
    assert first["metrics.json"] == second["metrics.json"]
    assert first["predictions.csv"] == second["predictions.csv"]
    assert pq.read_table(cdnow_run.dir / "predictions.parquet").equals(
        pq.read_table(again.output_dir / "predictions.parquet")
    )
    # only the run date and the timings (run.json, and the report that shows them) differ
    differ = sorted(name for name in first if first[name] != second[name])
    assert set(differ) <= {"run.json", "manifest.json", "report.html"}, differ

    def without_timings(data: bytes) -> dict[str, Any]:
        record = json.loads(data)
        for key in ("timings_seconds", "timings", "run_date"):
            record.pop(key, None)
        return record

    for name in ("run.json", "manifest.json"):
        assert without_timings(first[name]) == without_timings(second[name]), name


def test_report_renders_in_a_browser(cdnow_run: Run, browser_probe) -> None:
    counts = browser_probe(cdnow_run.dir / "report.html", screenshot="cdnow-1280x900.png")
    n_plots = len(list((cdnow_run.dir / "plots").glob("*.png")))
    assert counts["tables"] > 5
    assert counts["tables_with_rows"] == counts["tables"]
    assert counts["images"] == n_plots >= 8
    assert counts["images_decoded"] == counts["images"]
    # at 1280 px nothing is wider than the window, and the tables fit their boxes
    layout = counts["layout"]
    assert layout["scroll_width"] <= layout["client_width"] <= layout["inner_width"] == 1280
    assert layout["too_wide"] == []
    assert all(b["scroll_width"] <= b["client_width"] for b in layout["scroll_boxes"]), layout


def test_report_shows_when_the_run_was_made_and_in_run_order(cdnow_run: Run) -> None:
    run = json.loads((cdnow_run.dir / "run.json").read_text())
    assert dt.datetime.fromisoformat(run["run_date"]).tzinfo is not None
    steps = [timing["step"] for timing in run["timings_seconds"]]
    assert steps == list(cdnow_run.result.timings)[: len(steps)]  # the order they ran
    assert steps[:2] == ["data", "fit bgnbd (BG/NBD, mle)"] and steps[-1] == "plots"
    manifest = json.loads((cdnow_run.dir / "manifest.json").read_text())
    assert manifest["run_date"] == run["run_date"]
    assert [name for name, _ in manifest["versions"]][:3] == ["clvmodels", "Python", "numpy"]
    assert manifest["timings"] == run["timings_seconds"]
    top = pd.read_csv(cdnow_run.dir / "tables" / "top_customers.csv")
    assert list(top.columns[:4]) == ["customer_id", "bgnbd_clv", "bgnbd_clv_lower",
                                     "bgnbd_clv_upper"]  # fmt: skip
    assert top["bgnbd_clv"].is_monotonic_decreasing
    page = (cdnow_run.dir / "report.html").read_text(encoding="utf-8")
    assert "over the next 12 months" in page


def test_log_lines(tmp_path: Path) -> None:
    lines: list[str] = []
    run_experiment(parse_config(small()), output_dir=tmp_path / "run", log=lines.append)
    text = "\n".join(lines)
    assert "fit bgnbd (BG/NBD, mle)" in text
    assert "2,357 customers" in text
    assert lines[-1].endswith(f"done: {tmp_path / 'run'}")


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize(
    "target", ["clvmodels.experiments.runner.write_manifest",
               "clvmodels.experiments.report.build_report",
               "clvmodels.experiments.runner._move_into_place"],
)  # fmt: skip
def test_failed_run_leaves_nothing(tmp_path: Path, monkeypatch, target: str) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("late failure")

    monkeypatch.setattr(target, fail)
    parent = tmp_path / "runs"
    with pytest.raises(RuntimeError, match="late failure"):
        run_experiment(parse_config(small()), output_dir=parent / "run")
    assert not (parent / "run").exists()
    assert list(parent.iterdir()) == []


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_evaluation", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(parse_config(small()), output_dir=tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_run(tmp_path: Path,
                                                                  monkeypatch) -> None:  # fmt: skip
    # Python ignores an exception raised inside a __del__: a Ctrl-C arriving while one
    # runs is lost, unless the run remembers the signal and stops at the next step
    import signal

    original = runner._evaluation

    def swallowed(*args: Any, **kwargs: Any) -> Any:
        class Finalizer:
            def __del__(self) -> None:
                signal.raise_signal(signal.SIGINT)

        Finalizer()  # the KeyboardInterrupt is raised in __del__ and ignored
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_evaluation", swallowed)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(parse_config(small()), output_dir=tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_earlier_run(small_run: Run, tmp_path: Path,
                                                monkeypatch) -> None:  # fmt: skip
    earlier = tmp_path / "run"
    run_experiment(small_run.config, output_dir=earlier)
    (earlier / "notes.txt").write_text("mine")
    before = files_of(earlier)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("report failed")

    monkeypatch.setattr("clvmodels.experiments.report.build_report", fail)
    with pytest.raises(RuntimeError, match="report failed"):
        run_experiment(small_run.config, output_dir=earlier, overwrite=True)
    assert files_of(earlier) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing_call", [1, 2])
def test_failed_move_keeps_the_earlier_run(small_run: Run, tmp_path: Path, monkeypatch,
                                           failing_call: int) -> None:  # fmt: skip
    """os.replace fails moving the old run aside (1) or the new one into place (2)."""
    earlier = tmp_path / "run"
    run_experiment(small_run.config, output_dir=earlier)
    (earlier / "notes.txt").write_text("mine")
    before = files_of(earlier)
    real_replace = os.replace
    calls: list[tuple[str, str]] = []

    def replace(src: Any, dst: Any) -> None:
        if Path(src) == earlier or Path(dst) == earlier:
            calls.append((str(src), str(dst)))
            if len(calls) == failing_call:
                raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(runner.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        run_experiment(small_run.config, output_dir=earlier, overwrite=True)
    monkeypatch.undo()
    assert files_of(earlier) == before
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_the_earlier_run(small_run: Run, tmp_path: Path) -> None:
    earlier = tmp_path / "run"
    run_experiment(small_run.config, output_dir=earlier)
    (earlier / "notes.txt").write_text("mine")
    result = run_experiment(small_run.config, output_dir=earlier, overwrite=True)
    assert result.output_dir == earlier
    assert not (earlier / "notes.txt").exists()
    assert (earlier / "metrics.json").read_bytes() == (small_run.dir / "metrics.json").read_bytes()
    assert leftovers(tmp_path) == []
    # output.overwrite in the configuration does the same
    config = parse_config(small(output={"plots": False, "overwrite": True}))
    run_experiment(config, output_dir=earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_existing_directory_is_refused(small_run: Run, tmp_path: Path) -> None:
    existing = tmp_path / "run"
    existing.mkdir()
    (existing / "precious.txt").write_text("keep")
    for overwrite in (False, None):  # explicit, and output.overwrite: false
        with pytest.raises(ConfigError) as caught:
            run_experiment(small_run.config, output_dir=existing, overwrite=overwrite)
        assert caught.value.field == "output.dir"
        assert str(existing) in str(caught.value)
        assert "--overwrite" in str(caught.value)
    assert files_of(existing) == {"precious.txt": b"keep"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_existing_file_is_refused_even_with_overwrite(small_run: Run, tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("a file")
    with pytest.raises(ConfigError) as caught:
        run_experiment(small_run.config, output_dir=target, overwrite=True)
    assert caught.value.field == "output.dir"
    assert target.read_text() == "a file"


def test_output_dir_from_the_config(tmp_path: Path) -> None:
    config = parse_config(small(output={"dir": str(tmp_path / "runs" / "{name}-x"),
                                        "plots": False}))  # fmt: skip
    result = run_experiment(config)
    assert result.output_dir == tmp_path / "runs" / "small-x"
    assert (result.output_dir / "report.html").is_file()


# ---------------------------------------------------------------- data sources


@pytest.fixture(scope="module")
def renamed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The CDNOW sample as CSV and Parquet files with columns cust, when, value."""
    folder = tmp_path_factory.mktemp("data")
    log = clvmodels.datasets.load_cdnow("sample")
    renamed = log.rename(columns={"customer_id": "cust", "date": "when", "amount": "value"})
    renamed = renamed[["value", "when", "cust"]]  # another column order too
    renamed.to_csv(folder / "log.csv", index=False)
    pq.write_table(pa.Table.from_pandas(renamed, preserve_index=False), folder / "log.parquet")
    return {"csv": folder / "log.csv", "parquet": folder / "log.parquet"}


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_file_source_gives_the_same_results(small_run: Run, renamed_files: dict[str, Path],
                                            tmp_path: Path, kind: str) -> None:  # fmt: skip
    path = renamed_files[kind]
    data = {"path": path.name, "columns": {"customer_id": "cust", "date": "when",
                                           "amount": "value"}, "engine": "pandas"}  # fmt: skip
    config = parse_config(small(data=data), base_dir=path.parent)
    assert config.data.path == str(path.resolve())
    result = run_experiment(config, output_dir=tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").read_bytes() == (
        small_run.dir / "metrics.json"
    ).read_bytes()
    pd.testing.assert_frame_equal(result.predictions, small_run.result.predictions)
    table = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert table.columns[0] == "customer_id"  # the index keeps the standard name
    # by default the file is summarised by DuckDB: the same results, amounts to rounding
    data["engine"] = "auto"
    config = parse_config(small(data=data), base_dir=path.parent)
    by_duckdb = run_experiment(config, output_dir=tmp_path / "duckdb")
    assert_close(json.loads((tmp_path / "duckdb" / "metrics.json").read_text()),
                 json.loads((small_run.dir / "metrics.json").read_text()))  # fmt: skip
    # (the Gamma-Gamma optimum moves by about 1e-8 with last-bit changes of the spends)
    pd.testing.assert_frame_equal(by_duckdb.predictions, small_run.result.predictions,
                                  rtol=1e-6)  # fmt: skip


def test_file_source_through_a_yaml_file(renamed_files: dict[str, Path], tmp_path: Path,
                                         monkeypatch) -> None:  # fmt: skip
    text = (
        "name: file_run\nseed: 3\n"
        f"data: {{path: {renamed_files['csv'].name}, columns: "
        "{customer_id: cust, date: when, amount: value}}\n"
        "periods: {time_unit: W, calibration_end: 1997-09-30, holdout_length: 39W}\n"
        "models: [{name: bgnbd, kind: bgnbd}]\n"
        "clv: {n_draws: 10}\nevaluation: {baselines: [naive]}\noutput: {plots: false}\n"
    )
    yaml_path = renamed_files["csv"].parent / "file_run.yaml"
    yaml_path.write_text(text)
    monkeypatch.chdir(tmp_path)
    config, _ = load_config(yaml_path)
    result = run_experiment(config)  # output.dir runs/{name}, relative to the working dir
    assert result.output_dir == Path("runs/file_run")
    metrics = json.loads((tmp_path / "runs" / "file_run" / "metrics.json").read_text())
    assert metrics["holdout"]["holdout_end"] == "1998-06-30"
    assert metrics["holdout"]["actual_repeat_transactions"] == 1882


def test_missing_column(tmp_path: Path, renamed_files: dict[str, Path]) -> None:
    config = parse_config(small(data={"dataset": "cdnow_sample", "columns": {"amount": "price"}}))
    with pytest.raises(ConfigError) as caught:
        run_experiment(config, output_dir=tmp_path / "run")
    assert caught.value.field == "data.columns.amount"
    assert "'price'" in str(caught.value)
    assert "amount" in str(caught.value)  # lists the columns there are
    data = {"path": str(renamed_files["csv"]), "columns": {"customer_id": "cust",
                                                           "amount": "value"}}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        run_experiment(parse_config(small(data=data)), output_dir=tmp_path / "run")
    assert caught.value.field == "data.columns.date"
    assert "when" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_rows_in_the_data(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("cust,when,value\n1,1997-01-01,10\n1,1997-02-01,12\n2,not-a-date,5\n")
    data = {"path": str(log), "columns": {"customer_id": "cust", "date": "when",
                                          "amount": "value"}}  # fmt: skip
    raw = small(data=data, periods={"time_unit": "W"})
    del raw["evaluation"]
    with pytest.raises(InvalidDataError, match="column 'when'") as caught:
        run_experiment(parse_config(raw), output_dir=tmp_path / "runs" / "run")
    assert "\n" not in str(caught.value)
    assert list((tmp_path / "runs").iterdir()) == []


def test_unreadable_data_file(tmp_path: Path) -> None:
    bad = tmp_path / "log.parquet"
    bad.write_bytes(b"not parquet at all")
    config = parse_config(small(data={"path": str(bad), "columns": {"amount": "amount"}}))
    with pytest.raises(ConfigError) as caught:
        run_experiment(config, output_dir=tmp_path / "run")
    assert caught.value.field == "data.path"
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- other experiments


def test_holdout_length_equals_holdout_end(small_run: Run, tmp_path: Path) -> None:
    periods = {"time_unit": "W", "calibration_end": "1997-09-30", "holdout_length": "9M"}
    run_experiment(parse_config(small(periods=periods)), output_dir=tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").read_bytes() == (
        small_run.dir / "metrics.json"
    ).read_bytes()


def test_run_without_holdout(tmp_path: Path) -> None:
    raw = small(periods={"time_unit": "W", "calibration_end": "1997-09-30"})
    del raw["evaluation"]
    raw["output"] = {"plots": True}
    result = run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    out = result.output_dir
    assert result.metrics is None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["holdout"] is None
    assert metrics["metrics"] == {}
    assert set(metrics["fit"]) == {"bgnbd", "gg"}
    assert not (out / "tables" / "metrics.csv").exists()
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 2357  # acquired by the end of calibration
    assert {"bgnbd_expected_purchases", "bgnbd_probability_alive", "bgnbd_clv",
            "gg_expected_spend", "historical_clv"} <= set(predictions.columns)  # fmt: skip
    assert not any("holdout" in column for column in predictions.columns)
    manifest = json.loads((out / "manifest.json").read_text())
    ids = [section["id"] for section in manifest["sections"]]
    assert "holdout" not in ids
    assert "predictions" in ids
    assert (out / "report.html").is_file()
    # the recorded configuration validates again
    config, _ = load_config(out / "config.yaml")
    assert not config.periods.has_holdout


def test_run_without_any_period(tmp_path: Path) -> None:
    raw = {"name": "plain", "data": {"dataset": "cdnow_sample"},
           "periods": {"time_unit": "W"}, "models": [{"name": "bgnbd", "kind": "bgnbd"}],
           "clv": {"interval": None}, "output": {"plots": False}}  # fmt: skip
    result = run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    assert list(result.predictions.columns) == [
        "frequency", "recency", "T", "bgnbd_expected_purchases", "bgnbd_probability_alive",
    ]
    assert len(result.predictions) == 2357


def test_bgbb_model(tmp_path: Path) -> None:
    raw = small(models=[{"name": "bb", "kind": "bgbb", "period": "M"}],
                output={"plots": True})  # fmt: skip
    result = run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    out = result.output_dir
    model = clvmodels.load(out / "models" / "bb" / "model.json")
    assert model.kind == "bgbb"
    assert set(model.params_.index) == {"alpha", "beta", "gamma", "delta"}
    assert result.models["bb"].params_.equals(model.params_)
    metrics = json.loads((out / "metrics.json").read_text())
    assert "bb" in metrics["metrics"]
    assert np.isfinite(metrics["metrics"]["bb"]["mae"])
    predictions = pd.read_csv(out / "predictions.csv", index_col=0)
    assert predictions["bb_probability_alive"].between(0, 1).all()
    assert (predictions["bb_expected_purchases"] >= 0).all()
    # 12 monthly opportunities at most
    assert predictions["bb_expected_purchases"].max() <= 12
    assert (out / "report.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    for section in manifest["sections"]:
        for entry in section["tables"] + section["plots"]:
            assert (out / entry["file"]).is_file(), entry["file"]


def test_bgbb_next_to_continuous_models(tmp_path: Path) -> None:
    raw = small(models=[{"name": "bgnbd", "kind": "bgnbd"},
                        {"name": "bb", "kind": "bgbb", "period": "M"},
                        {"name": "gg", "kind": "gamma_gamma"}])  # fmt: skip
    result = run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    assert {"bgnbd", "bb", "naive"} <= set(result.metrics.index)
    assert {"bgnbd_clv", "bb_clv"} <= set(result.predictions.columns)


# ---------------------------------------------------------------- Bayesian models


def test_bayesian_models_in_an_experiment(tmp_path: Path) -> None:
    # method map (posterior mode and Laplace draws) for the purchase model, a short NUTS
    # run for the spend model: posterior summaries in every prediction and in CLV
    raw = small(models=[
        {"name": "bgnbd", "kind": "bgnbd", "method": "map", "sampler": {"draws": 200}},
        {"name": "gg", "kind": "gamma_gamma", "method": "mcmc",
         "sampler": {"chains": 2, "tune": 200, "draws": 200, "hdi_prob": 0.9}},
    ], output={"plots": True})  # fmt: skip
    with warnings.catch_warnings():
        # a 2 x 200 NUTS run may be flagged as short (SamplingWarning): not the point here
        warnings.simplefilter("ignore", clvmodels.exceptions.SamplingWarning)
        result = run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    out = result.output_dir
    model = clvmodels.bayes.load(out / "models" / "bgnbd" / "model.nc")
    assert model.params_.equals(result.models["bgnbd"].params_)
    assert (out / "models" / "gg" / "model.nc").is_file()
    predictions = result.predictions
    for prefix in ("bgnbd_expected_purchases", "gg_expected_spend", "bgnbd_clv"):
        lower, upper = predictions[f"{prefix}_lower"], predictions[f"{prefix}_upper"]
        assert (lower <= predictions[prefix]).all() and (predictions[prefix] <= upper).all()
        assert (predictions[f"{prefix}_sd"] >= 0).all()
    fit = json.loads((out / "metrics.json").read_text())["fit"]
    assert fit["bgnbd"]["method"] == "map"
    assert fit["gg"]["method"] == "mcmc" and "max_r_hat" in fit["gg"]
    # the posterior mode under weak priors sits next to the published estimates
    for name, value in BGNBD.items():
        assert result.models["bgnbd"].params_[name] == pytest.approx(value, rel=0.1)
    assert np.isfinite(result.metrics.loc["bgnbd", "mae"])
    # the manifest (and so the report) says how each model was fitted
    manifest = json.loads((out / "manifest.json").read_text())
    models = next(section for section in manifest["sections"] if section["id"] == "models")
    assert "inverse Hessian" not in models["text"] and "maximum likelihood" not in models["text"]
    assert "bgnbd: posterior mode under default priors, with a Laplace" in models["text"]
    assert "gg: posterior under default priors, sampled by NUTS (sampler 'clvmodels', 2 " \
        "chains of 200 warm-up and 200 kept draws" in models["text"]
    r_hat = fit["gg"]["max_r_hat"]
    assert f"largest r_hat {r_hat:.3f}" in models["text"]
    titles = [table["caption"] for table in models["tables"]]
    assert titles[0] == "Fit statistics"
    assert "posterior means, standard deviations and 90% highest-density" in titles[2]


def test_manifest_of_a_maximum_likelihood_run_names_the_method(small_run: Run) -> None:
    manifest = json.loads((small_run.dir / "manifest.json").read_text())
    models = next(section for section in manifest["sections"] if section["id"] == "models")
    assert "bgnbd: maximum likelihood; intervals from the inverse Hessian" in models["text"]
    assert models["tables"][0]["caption"] == "Fit statistics (maximum likelihood)"
    assert "estimates, standard errors and 95 % intervals" in models["tables"][1]["caption"]


# ---------------------------------------------------------------- MLflow


@pytest.fixture
def fake_mlflow(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """A stand-in ``mlflow`` module that records its calls."""
    calls: list[tuple[str, tuple, dict]] = []
    module = types.ModuleType("mlflow")

    def recorder(name: str):
        def record(*args: Any, **kwargs: Any) -> None:
            calls.append((name, args, kwargs))
        return record

    for name in ("set_tracking_uri", "set_experiment", "log_params", "log_metrics"):
        setattr(module, name, recorder(name))

    def log_artifacts(local_dir: str, *args: Any, **kwargs: Any) -> None:
        # the run is complete when its artifacts are logged
        present = sorted(p.name for p in Path(local_dir).iterdir())
        calls.append(("log_artifacts", (local_dir, *args), {**kwargs, "present": present}))

    @contextlib.contextmanager
    def start_run(*args: Any, **kwargs: Any):
        calls.append(("start_run", args, kwargs))
        try:
            yield types.SimpleNamespace(info=types.SimpleNamespace(run_id="fake"))
        finally:
            calls.append(("end_run", (), {}))

    module.log_artifacts = log_artifacts
    module.start_run = start_run
    monkeypatch.setitem(sys.modules, "mlflow", module)
    return calls


def test_mlflow_logs_params_metrics_and_artifacts(fake_mlflow, tmp_path: Path) -> None:
    tracking = {"mlflow": {"tracking_uri": "file:///tmp/mlruns", "experiment": "cdnow-tests",
                           "run_name": "trial"}}  # fmt: skip
    config = parse_config(small(tracking=tracking))
    result = run_experiment(config, output_dir=tmp_path / "run")
    names = [name for name, _, _ in fake_mlflow]
    assert names == ["set_tracking_uri", "set_experiment", "start_run", "log_params",
                     "log_metrics", "log_artifacts", "end_run"]  # fmt: skip
    calls = {name: (args, kwargs) for name, args, kwargs in fake_mlflow}
    assert calls["set_tracking_uri"][0] == ("file:///tmp/mlruns",)
    assert calls["set_experiment"][0] == ("cdnow-tests",)
    assert calls["start_run"][1] == {"run_name": "trial"}
    (params,), _ = calls["log_params"]
    assert params["name"] == "small"
    assert params["models.0.kind"] == "bgnbd"
    assert params["models.1.name"] == "gg"
    assert params["clv.n_draws"] == "10"
    assert params["periods.holdout_end"] == "1998-06-30"
    assert all(isinstance(value, str) for value in params.values())
    (metrics,), _ = calls["log_metrics"]
    assert metrics["bgnbd.mae"] == pytest.approx(result.metrics.loc["bgnbd", "mae"])
    assert metrics["naive.rmse"] == pytest.approx(result.metrics.loc["naive", "rmse"])
    assert metrics["bgnbd.log_likelihood"] == pytest.approx(
        result.models["bgnbd"].log_likelihood_
    )
    assert "gg.log_likelihood" in metrics
    assert all(isinstance(value, float) and value == value for value in metrics.values())
    args, kwargs = calls["log_artifacts"]
    assert Path(args[0]) == tmp_path / "run"
    assert {"report.html", "metrics.json", "predictions.parquet"} <= set(kwargs["present"])


def test_mlflow_defaults(fake_mlflow, tmp_path: Path) -> None:
    run_experiment(parse_config(small(tracking={"mlflow": {}})), output_dir=tmp_path / "run")
    names = [name for name, _, _ in fake_mlflow]
    assert "set_tracking_uri" not in names  # MLflow's own default
    calls = {name: (args, kwargs) for name, args, kwargs in fake_mlflow}
    assert calls["set_experiment"][0] == ("clvmodels",)
    assert calls["start_run"][1] == {"run_name": "small"}


def test_mlflow_disabled_is_not_imported(fake_mlflow, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # importing it would fail
    config = parse_config(small(tracking={"mlflow": {"enabled": False}}))
    run_experiment(config, output_dir=tmp_path / "run")
    assert fake_mlflow == []


def test_mlflow_missing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    config = parse_config(small(tracking={"mlflow": {}}))
    with pytest.raises(ConfigError) as caught:
        run_experiment(config, output_dir=tmp_path / "run")
    assert caught.value.field == "tracking.mlflow"
    assert "pip install mlflow" in str(caught.value)
    assert "enabled: false" in str(caught.value)
    # refused before the run, so nothing was written
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("engine", ["duckdb", "pandas"])
def test_data_engine_gives_the_same_run(small_run: Run, tmp_path: Path, engine: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # a Parquet copy of the bundled log: summarised by DuckDB from the file (auto) or in
    # memory; the outcomes equal those of the bundled dataset
    import duckdb

    path = tmp_path / "cdnow.parquet"
    with duckdb.connect() as con:
        con.register("tx", clvmodels.datasets.load_cdnow("sample"))
        con.execute(f"COPY tx TO '{path}' (FORMAT parquet)")
    spill = tmp_path / "spill"
    spill.mkdir()
    raw = small(data={"path": str(path), "columns": {"amount": "amount"}, "engine": engine,
                      "memory_limit": "1GB", "temp_directory": "spill"})  # fmt: skip
    config = parse_config(raw, base_dir=tmp_path)
    assert config.data.temp_directory == str(spill.resolve())
    if engine == "duckdb":  # the options reach DuckDB
        from clvmodels.data import duckdb_engine

        seen = []
        original = duckdb_engine.DuckDBSource.__init__

        def spy(self, *args, **kwargs):
            seen.append({k: kwargs.get(k) for k in ("memory_limit", "temp_directory")})
            original(self, *args, **kwargs)

        monkeypatch.setattr(duckdb_engine.DuckDBSource, "__init__", spy)
    result = run_experiment(config, output_dir=tmp_path / "run")
    if engine == "duckdb":
        assert {"memory_limit": "1GB", "temp_directory": str(spill.resolve())} in seen
    assert list(spill.iterdir()) == []  # DuckDB's spill folder inside it is removed
    expected = json.loads((small_run.dir / "metrics.json").read_text())
    got = json.loads((result.output_dir / "metrics.json").read_text())
    assert_close(got, expected)


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    """Equal structure and values; floats to 1e-5: amounts are summed in another order,
    so spends differ in the last bit, which can reorder ties in rank correlations."""
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected), where
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for k, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{where}[{k}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-12), where
    elif where.endswith("gg.n_patterns"):
        # Gamma-Gamma's patterns are distinct (frequency, mean spend); spends that differ
        # in the last bit count as different patterns
        assert abs(got - expected) <= 0.01 * expected, where
    else:
        assert got == expected, where


# ------------------------------------------------------------- killed runs


def _slow_config(folder: Path) -> Path:
    """A run of several seconds: the master log, three purchase models and plots."""
    import yaml

    path = folder / "run.yaml"
    models = [{"name": k, "kind": k} for k in ("pnbd", "bgnbd", "mbgnbd")]
    raw = small(models=models, clv={"n_draws": 300}, output={"plots": True})
    raw["data"] = {"dataset": "cdnow_master", "columns": {"amount": "amount"},
                   "duplicates": "keep"}  # fmt: skip
    path.write_text(yaml.safe_dump(raw))
    return path


def _start_run(config_path: Path, out: Path) -> Any:
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "clvmodels", "run", str(config_path), "--output", str(out),
         "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for_staging(parent: Path, process: Any, seconds: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(".partial-" in p.name for p in parent.iterdir()):
            time.sleep(0.2)  # into the run, past the marker
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never started writing")


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_terminated_run_leaves_nothing(tmp_path: Path, signal_name: str) -> None:
    import signal

    path = _slow_config(tmp_path)
    parent = tmp_path / "runs"
    parent.mkdir()
    process = _start_run(path, parent / "x")
    _wait_for_staging(parent, process)
    process.send_signal(getattr(signal, signal_name))
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert list(parent.iterdir()) == []


def test_a_later_run_removes_what_a_killed_one_left(tmp_path: Path) -> None:
    import signal

    path = _slow_config(tmp_path)
    parent = tmp_path / "runs"
    parent.mkdir()
    process = _start_run(path, parent / "x")
    _wait_for_staging(parent, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert leftovers(parent)  # SIGKILL cannot be caught
    foreign = parent / ".y.partial-mine"  # not clvmodels' own: never touched
    foreign.mkdir()
    (foreign / "note.txt").write_text("mine")
    process = _start_run(path, parent / "z")
    process.communicate(timeout=300)
    assert process.returncode == 0
    assert sorted(p.name for p in parent.iterdir()) == [".y.partial-mine", "z"]


def test_a_model_data_problem_stops_the_run_before_the_first_fit(tmp_path: Path) -> None:
    # the master log has a repeat buyer whose repeat purchases are worth 0: Gamma-Gamma
    # refuses it, and the run says so before fitting BG/NBD
    raw = small()
    raw["data"] = {"dataset": "cdnow_master", "columns": {"amount": "amount"},
                   "duplicates": "keep"}  # fmt: skip
    lines: list[str] = []
    with pytest.raises(clvmodels.exceptions.InvalidDataError,
                       match=r"model 'gg': column 'monetary_value_cal'.*drop_zero_values"):
        run_experiment(parse_config(raw), output_dir=tmp_path / "run", log=lines.append)
    assert not any("fit " in line for line in lines), lines
    assert list(tmp_path.iterdir()) == []


def test_mcmc_progress_reaches_the_log_off_a_terminal(tmp_path: Path, monkeypatch) -> None:
    """The sampler's progress lines (logger clvmodels.bayes) go to the run's log, which
    is what `clvmodels run` prints on stderr, terminal or not."""
    from clvmodels.bayes import _nuts

    monkeypatch.setattr(_nuts, "_PROGRESS_AFTER", 0.0)  # normally only runs beyond 5 s
    raw = small(models=[
        {"name": "gg", "kind": "gamma_gamma", "method": "mcmc",
         "sampler": {"chains": 2, "tune": 100, "draws": 100}},
    ], output={"plots": False})  # fmt: skip
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvmodels.exceptions.SamplingWarning)  # short run
        run_experiment(parse_config(raw), output_dir=tmp_path / "run", log=lines.append)
    progress = [line for line in lines if "NUTS:" in line]
    assert "]   NUTS: 2 chains of 100 warm-up + 100 draws, " in progress[0]
    assert "100 % of 400 iterations" in progress[-1]
    fit = next(i for i, line in enumerate(lines) if "fit gg" in line)
    assert fit < lines.index(progress[0])


def test_parameter_tables_use_each_familys_interval_level() -> None:
    """The report says a Bayesian parameter table holds hdi_prob intervals and a
    maximum-likelihood one 95 % intervals: the tables written are those."""
    from clvmodels import bayes

    draws = np.random.default_rng(0).lognormal(0.0, 0.1, size=(4, 2, 200))
    model = bayes.BGNBD.from_samples(
        {name: draws[i] for i, name in enumerate(bayes.BGNBD.param_names)}, hdi_prob=0.8
    )
    model.log_likelihood_, model.aic_, model.bic_ = -1.0, 1.0, 1.0
    model.n_customers_, model.n_patterns_ = 10, 5
    table, stats = runner.model_summary(model)
    assert table.attrs["hdi_prob"] == 0.8
    assert list(table.columns)[:4] == ["estimate", "std_error", "lower", "upper"]
    assert stats["method"] == "samples"
    narrow, _ = runner.model_summary(model, level=0.5)
    assert (narrow["upper"] - narrow["lower"] < table["upper"] - table["lower"]).all()

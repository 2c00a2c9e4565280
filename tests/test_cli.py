"""The ``clvmodels`` command: exit codes, one-line errors naming the field, and every
subcommand (run, validate, summarize, predict, report, datasets).

Commands run in-process through ``clvmodels.cli.main``; two real subprocesses prove that
``python -m clvmodels`` works.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clvmodels
from clvmodels.cli import main
from clvmodels.exceptions import ConfigError, ConvergenceError

REPO = Path(__file__).resolve().parents[1]
CDNOW = REPO / "configs" / "cdnow.yaml"

VALID = """\
name: tiny
data:
  dataset: cdnow_sample
  columns: {amount: amount}
  duplicates: keep  # the sample's 21 exact duplicate rows, as the papers keep them
periods: {time_unit: W, calibration_end: 1997-09-30, holdout_end: 1998-06-30}
models:
  - {name: bg, kind: bgnbd}
"""

# (file text, field the one-line error must name)
INVALID = {
    "unknown_key": (VALID + "colour: blue\n", "colour"),
    "unknown_nested_key": (VALID.replace("time_unit: W", "time_units: W"), "periods.time_units"),
    "dates_in_wrong_order": (
        VALID.replace("holdout_end: 1998-06-30", "holdout_end: 1997-06-30"),
        "periods.holdout_end",
    ),
    "unknown_model_kind": (VALID.replace("kind: bgnbd", "kind: bg_nbd"), "models[0].kind"),
    "duplicate_model_names": (VALID + "  - {name: bg, kind: pnbd}\n", "models[1].name"),
    "gamma_gamma_without_amount": (
        VALID.replace("  columns: {amount: amount}\n", "") + "  - {name: gg, kind: gamma_gamma}\n",
        "data.columns.amount",
    ),
    "missing_data_file": (
        VALID.replace("dataset: cdnow_sample", "path: no_such_file.csv"), "data.path"
    ),
    "malformed_date": (
        VALID.replace("calibration_end: 1997-09-30", "calibration_end: 1997-09-31"),
        "periods.calibration_end",
    ),
    "unknown_method": (VALID.replace("kind: bgnbd}", "kind: bgnbd, method: nuts}"),
                       "models[0].method"),
    "sbg_kind": (VALID.replace("kind: bgnbd", "kind: sbg"), "models[0].kind"),
    "holdout_end_and_length": (
        VALID.replace("holdout_end: 1998-06-30", "holdout_end: 1998-06-30, holdout_length: 39W"),
        "periods.holdout_length",
    ),
}
# files that fail before any field: (text, what the line says)
BROKEN = {
    "yaml_syntax": ("name: tiny\nmodels: [\n", "line 3"),
    "empty": ("", "empty"),
    "not_a_mapping": ("- name: tiny\n", "mapping"),
}


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def call(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Outcome:
    capsys.readouterr()  # drop what came before
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def one_error_line(outcome: Outcome, *fragments: str) -> str:
    assert outcome.code == 2, outcome
    assert len(outcome.err_lines) == 1, outcome.err
    line = outcome.err_lines[0]
    assert line.startswith("clvmodels: error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW sample as a CSV file with columns cust, when, value."""
    log = clvmodels.datasets.load_cdnow("sample")
    path = tmp_path_factory.mktemp("log") / "log.csv"
    log.rename(columns={"customer_id": "cust", "date": "when", "amount": "value"})[
        ["cust", "when", "value"]
    ].to_csv(path, index=False)
    return path


@dataclass
class CliRun:
    outcome: Outcome
    dir: Path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """``clvmodels run configs/cdnow.yaml --output DIR --set clv.n_draws=20``, once."""
    out = tmp_path_factory.mktemp("cli") / "cdnow"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", str(CDNOW), "--output", str(out), "--set", "clv.n_draws=20"])
    return CliRun(Outcome(code, stdout.getvalue(), stderr.getvalue()), out)


# ---------------------------------------------------------------- invalid configurations


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_config_is_one_line_naming_the_field(
    capsys, tmp_path: Path, monkeypatch, command: str, case: str
) -> None:
    text, field = INVALID[case]
    path = write(tmp_path / f"{case}.yaml", text)
    monkeypatch.chdir(tmp_path)  # a run must not write anything
    outcome = call(capsys, command, path)
    line = one_error_line(outcome, str(path), f"{field}: ")
    assert outcome.out == ""
    assert "Traceback" not in outcome.err
    assert len(line) < 400
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{case}.yaml"]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_is_one_line(capsys, tmp_path: Path, case: str) -> None:
    text, fragment = BROKEN[case]
    path = write(tmp_path / f"{case}.yaml", text)
    one_error_line(call(capsys, "validate", path), str(path), fragment)


def test_missing_config_file(capsys, tmp_path: Path) -> None:
    one_error_line(call(capsys, "run", tmp_path / "nope.yaml"), "no such configuration file")


def test_bad_set_override(capsys) -> None:
    one_error_line(call(capsys, "validate", CDNOW, "--set", "clv.horizon"), "key=value")
    one_error_line(call(capsys, "validate", CDNOW, "--set", "models.nope.penalizer=1"),
                   "no list item 'nope'")  # fmt: skip
    one_error_line(call(capsys, "validate", CDNOW, "--set", "clv.n_draws=many"), "clv.n_draws: ")


def test_debug_reraises(capsys, tmp_path: Path) -> None:
    text, _ = INVALID["unknown_model_kind"]
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        main(["--debug", "validate", str(path)])
    assert caught.value.field == "models[0].kind"


def test_unknown_command(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1
    assert "frobnicate" in err[0]


def test_unknown_option(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate", str(CDNOW), "--colour"])
    assert caught.value.code == 2
    assert "--colour" in capsys.readouterr().err


def test_no_command_prints_help(capsys) -> None:
    outcome = call(capsys)
    assert outcome.code == 2
    assert "usage: clvmodels" in outcome.out
    for command in ("run", "validate", "summarize", "predict", "report", "datasets"):
        assert command in outcome.out


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"clvmodels {clvmodels.__version__}"


# ---------------------------------------------------------------- validate


def test_validate_shipped_config(capsys) -> None:
    outcome = call(capsys, "validate", CDNOW)
    assert outcome.code == 0, outcome
    assert "valid" in outcome.out
    assert "'cdnow'" in outcome.out
    assert outcome.err == ""


def test_validate_with_overrides(capsys) -> None:
    outcome = call(capsys, "validate", CDNOW, "--set", "models.bgnbd.penalizer=0.001",
                   "--set", "output.dir=elsewhere")  # fmt: skip
    assert outcome.code == 0, outcome
    assert "output elsewhere" in outcome.out


def test_validate_needs_a_file(capsys) -> None:
    one_error_line(call(capsys, "validate"), "CONFIG")


def test_validate_schema(capsys) -> None:
    outcome = call(capsys, "validate", "--schema")
    assert outcome.code == 0
    schema = json.loads(outcome.out)
    assert schema == clvmodels.experiments.config_json_schema()
    assert {"name", "data", "models"} <= set(schema["properties"])


# ---------------------------------------------------------------- run


def test_run(cli_run: CliRun) -> None:
    outcome = cli_run.outcome
    assert outcome.code == 0, outcome.err
    assert f"cdnow: wrote {cli_run.dir}" in outcome.out
    assert "lowest holdout MAE" in outcome.out
    assert str(cli_run.dir / "report.html") in outcome.out
    assert "fit bgnbd" in outcome.err  # the progress log
    for name in ("metrics.json", "predictions.parquet", "report.html", "models/bgnbd/model.json"):
        assert (cli_run.dir / name).is_file(), name
    config = clvmodels.experiments.load_config(cli_run.dir / "config.yaml")[0]
    assert config.clv.n_draws == 20
    metrics = json.loads((cli_run.dir / "metrics.json").read_text())
    assert metrics["holdout"]["actual_repeat_transactions"] == 1882


def test_run_refuses_an_existing_directory(cli_run: CliRun, capsys) -> None:
    before = (cli_run.dir / "metrics.json").read_bytes()
    outcome = call(capsys, "run", CDNOW, "--output", cli_run.dir, "--quiet")
    one_error_line(outcome, "output.dir", str(cli_run.dir), "--overwrite")
    assert outcome.out == ""
    assert (cli_run.dir / "metrics.json").read_bytes() == before


def test_data_warnings_are_one_line_even_when_quiet(capsys, tmp_path: Path) -> None:
    config = write(tmp_path / "tiny.yaml", VALID.replace("  duplicates: keep", "  #")
                   + "clv: {n_draws: 10}\nevaluation: {baselines: [naive]}\n"
                   "output: {plots: false}\n")  # fmt: skip
    outcome = call(capsys, "run", config, "--output", tmp_path / "run", "--quiet")
    assert outcome.code == 0, outcome
    assert outcome.err_lines == [
        line for line in outcome.err_lines if line.startswith("clvmodels: warning: 21 of")
    ] and len(outcome.err_lines) == 1, outcome.err


def test_run_quiet_overwrite(capsys, tmp_path: Path) -> None:
    config = write(tmp_path / "tiny.yaml", VALID + "clv: {n_draws: 10}\n"
                   "evaluation: {baselines: [naive]}\noutput: {plots: false}\n")  # fmt: skip
    out = tmp_path / "run"
    outcome = call(capsys, "run", config, "--output", out, "--quiet")
    assert outcome.code == 0 and outcome.err == "", outcome
    (out / "old.txt").write_text("old")  # a run of clvmodels: replaced whole
    outcome = call(capsys, "run", config, "--output", out, "--overwrite", "--quiet")
    assert outcome.code == 0, outcome
    assert outcome.err == ""
    assert not (out / "old.txt").exists()
    assert (out / "report.html").is_file()


def test_overwrite_never_replaces_a_folder_clvmodels_did_not_write(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    config = write(tmp_path / "tiny.yaml", VALID + "clv: {n_draws: 10}\n"
                   "evaluation: {baselines: [naive]}\noutput: {plots: false}\n")  # fmt: skip
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    outcome = call(capsys, "run", config, "--output", mine, "--overwrite", "--quiet")
    one_error_line(outcome, "output.dir", "not a run of clvmodels", ".clvmodels-run")
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "tiny.yaml"]
    monkeypatch.chdir(mine)
    for folder in (".", ".."):
        outcome = call(capsys, "run", config, "--output", folder, "--overwrite", "--quiet")
        one_error_line(outcome, "output.dir", "working directory")
    assert (mine / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = call(capsys, "run", config, "--output", empty, "--overwrite", "--quiet")
    assert outcome.code == 0 and (empty / ".clvmodels-run").is_file(), outcome


def test_run_failure_is_exit_1(capsys, tmp_path: Path) -> None:
    outcome = call(capsys, "run", CDNOW, "--output", tmp_path / "run", "--quiet",
                   "--set", "models.bgnbd.max_iter=1")  # fmt: skip
    assert outcome.code == 1, outcome
    assert len(outcome.err_lines) == 1, outcome.err
    assert "model 'bgnbd'" in outcome.err
    assert "did not converge" in outcome.err
    assert "What to try" not in outcome.err
    assert list(tmp_path.iterdir()) == []


def test_unexpected_error_is_exit_1(capsys, monkeypatch, tmp_path: Path) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops\nsecond line")

    monkeypatch.setattr("clvmodels.experiments.runner.run_experiment", broken)
    outcome = call(capsys, "run", CDNOW, "--output", tmp_path / "run")
    assert outcome.code == 1
    assert len(outcome.err_lines) == 1
    assert "unexpected ZeroDivisionError: oops second line" in outcome.err
    assert "--debug" in outcome.err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "run", str(CDNOW), "--output", str(tmp_path / "run")])


def test_convergence_error_keeps_only_its_first_line(capsys, monkeypatch) -> None:
    def fails(*args, **kwargs):
        raise ConvergenceError("BGNBD did not converge")

    monkeypatch.setattr("clvmodels.experiments.runner.run_experiment", fails)
    outcome = call(capsys, "run", CDNOW, "--output", "unused")
    assert outcome.code == 1
    assert outcome.err_lines == ["clvmodels: error: BGNBD did not converge"]


def test_interrupted_run(capsys, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("clvmodels.experiments.runner.run_experiment", interrupted)
    outcome = call(capsys, "run", CDNOW, "--output", "unused")
    assert outcome.code == 130
    assert outcome.err_lines == ["clvmodels: interrupted; nothing was written."]


# ---------------------------------------------------------------- summarize


def expected_summary(transactions: Path, **settings) -> pd.DataFrame:
    return clvmodels.summarize(pd.read_csv(transactions), customer_id="cust", date="when",
                               amount="value", time_unit="W", **settings)  # fmt: skip


def test_summarize_to_csv(capsys, transactions: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.csv"
    outcome = call(capsys, "summarize", transactions, "--out", out, "--customer-id", "cust",
                   "--date", "when", "--amount", "value", "--time-unit", "W")  # fmt: skip
    assert outcome.code == 0, outcome
    assert "2,357 customers (duckdb)" in outcome.out
    expected = expected_summary(transactions)
    written = pd.read_csv(out, index_col=0)
    assert written.index.name == "cust"
    assert list(written.columns) == list(expected.columns)
    numeric = expected.select_dtypes("number").columns
    pd.testing.assert_frame_equal(written[numeric], expected[numeric], rtol=1e-9)
    for column in expected.columns.difference(numeric):
        assert (pd.to_datetime(written[column]) == expected[column]).all(), column
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_summarize_to_parquet(capsys, transactions: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.parquet"
    outcome = call(capsys, "summarize", transactions, "--out", out, "--customer-id", "cust",
                   "--date", "when", "--amount", "value", "--time-unit", "W")  # fmt: skip
    assert outcome.code == 0, outcome
    written = pq.read_table(out).to_pandas().set_index("cust")
    pd.testing.assert_frame_equal(written, expected_summary(transactions), check_dtype=False)


def test_summarize_calibration_split(capsys, transactions: Path, tmp_path: Path) -> None:
    out = tmp_path / "split.csv"
    outcome = call(capsys, "summarize", transactions, "--out", out, "--customer-id", "cust",
                   "--date", "when", "--time-unit", "W", "--calibration-end", "1997-09-30",
                   "--holdout-end", "1998-06-30")  # fmt: skip
    assert outcome.code == 0, outcome
    written = pd.read_csv(out, index_col=0)
    assert written["frequency_holdout"].sum() == 1882
    assert written["frequency_cal"].sum() == 2457
    one_error_line(
        call(capsys, "summarize", transactions, "--out", tmp_path / "x.csv", "--customer-id",
             "cust", "--date", "when", "--calibration-end", "1997-09-30"),
        "--holdout-end",
    )  # fmt: skip


def test_summarize_engines_agree(capsys, transactions: Path, tmp_path: Path) -> None:
    written = {}
    for engine in ("duckdb", "pandas"):
        out = tmp_path / f"{engine}.parquet"
        outcome = call(capsys, "summarize", transactions, "--out", out, "--customer-id", "cust",
                       "--date", "when", "--amount", "value", "--engine", engine,
                       "--memory-limit", "1GB", "--temp-directory", tmp_path)  # fmt: skip
        assert outcome.code == 0, outcome
        written[engine] = pq.read_table(out).to_pandas()
    pd.testing.assert_frame_equal(written["duckdb"], written["pandas"], rtol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["duckdb.parquet", "pandas.parquet"]


def test_summarize_refuses_an_existing_output(capsys, transactions: Path,
                                              tmp_path: Path) -> None:  # fmt: skip
    out = write(tmp_path / "summary.csv", "precious\n")
    argv = ["summarize", transactions, "--out", out, "--customer-id", "cust", "--date", "when"]
    one_error_line(call(capsys, *argv), "--out", "exists", "--overwrite")
    assert out.read_text() == "precious\n"
    assert call(capsys, *argv, "--overwrite").code == 0
    assert len(pd.read_csv(out)) == 2357


def test_summarize_input_errors(capsys, transactions: Path, tmp_path: Path) -> None:
    one_error_line(call(capsys, "summarize", tmp_path / "none.csv", "--out", tmp_path / "s.csv"),
                   "no file matches", "none.csv")  # fmt: skip
    one_error_line(call(capsys, "summarize", transactions, "--out", tmp_path / "s.txt.xlsx"),
                   ".csv or .parquet")  # fmt: skip
    # the default column names are not in this file: a data error, exit 2
    one_error_line(call(capsys, "summarize", transactions, "--out", tmp_path / "s.csv"),
                   "customer_id")  # fmt: skip
    assert not (tmp_path / "s.csv").exists()


# ---------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def calibration_summary(transactions: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("summary") / "summary.csv"
    code = main(["summarize", str(transactions), "--out", str(out), "--customer-id", "cust",
                 "--date", "when", "--amount", "value", "--time-unit", "W",
                 "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"])  # fmt: skip
    assert code == 0
    return out


def test_predict_with_a_purchase_model(capsys, cli_run: CliRun, calibration_summary: Path,
                                       tmp_path: Path) -> None:  # fmt: skip
    model_path = cli_run.dir / "models" / "bgnbd" / "model.json"
    out = tmp_path / "p.csv"
    outcome = call(capsys, "predict", "--model", model_path, "--data", calibration_summary,
                   "--out", out, "--id-column", "cust")  # fmt: skip
    assert outcome.code == 0, outcome
    assert "2,357 customers scored" in outcome.out
    predicted = pd.read_csv(out, index_col=0)
    assert list(predicted.columns) == ["expected_purchases", "probability_alive"]
    # the model's own predictions over 12 months (in its time unit, weeks)
    model = clvmodels.load(model_path)
    data = pd.read_csv(calibration_summary, index_col=0)
    horizon = clvmodels.duration_in_units("12M", "W")
    pd.testing.assert_series_equal(
        predicted["expected_purchases"], model.expected_purchases(data, horizon),
        rtol=1e-9, check_names=False,
    )  # fmt: skip
    pd.testing.assert_series_equal(
        predicted["probability_alive"], model.probability_alive(data), rtol=1e-9,
        check_names=False,
    )  # fmt: skip
    # and those of the run itself
    run = pd.read_csv(cli_run.dir / "predictions.csv", index_col=0)
    pd.testing.assert_series_equal(
        predicted["expected_purchases"], run["bgnbd_expected_purchases"], rtol=1e-8,
        check_names=False, check_index_type=False,
    )  # fmt: skip


def test_predict_streams_parquet_to_parquet(capsys, cli_run: CliRun, calibration_summary: Path,
                                            tmp_path: Path) -> None:  # fmt: skip
    model_path = cli_run.dir / "models" / "bgnbd" / "model.json"
    summary = tmp_path / "summary.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(calibration_summary)), summary)
    streamed, in_memory = tmp_path / "p.parquet", tmp_path / "p.csv"
    for out in (streamed, in_memory):
        outcome = call(capsys, "predict", "--model", model_path, "--data", summary,
                       "--out", out, "--id-column", "cust", "--interval", "0.8")  # fmt: skip
        assert outcome.code == 0, outcome
        assert "2,357 customers scored" in outcome.out
    got = pq.read_table(streamed).to_pandas().set_index("cust").sort_index()
    expected = pd.read_csv(in_memory, index_col=0).sort_index()
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9)


def test_predict_with_gamma_gamma_to_parquet(capsys, cli_run: CliRun, calibration_summary: Path,
                                            tmp_path: Path) -> None:  # fmt: skip
    model_path = cli_run.dir / "models" / "gamma_gamma" / "model.json"
    out = tmp_path / "spend.parquet"
    outcome = call(capsys, "predict", "--model", model_path, "--data", calibration_summary,
                   "--out", out, "--id-column", "cust", "--interval", "0.9")  # fmt: skip
    assert outcome.code == 0, outcome
    predicted = pq.read_table(out).to_pandas().set_index("cust")
    assert list(predicted.columns) == ["expected_spend", "expected_spend_lower",
                                       "expected_spend_upper"]  # fmt: skip
    model = clvmodels.load(model_path)
    data = pd.read_csv(calibration_summary, index_col=0)
    pd.testing.assert_series_equal(
        predicted["expected_spend"], model.expected_spend(data), check_names=False
    )
    assert (predicted["expected_spend_lower"] <= predicted["expected_spend"]).all()
    assert (predicted["expected_spend"] <= predicted["expected_spend_upper"]).all()
    run = pd.read_csv(cli_run.dir / "predictions.csv", index_col=0)
    pd.testing.assert_series_equal(
        predicted["expected_spend"], run["gamma_gamma_expected_spend"], rtol=1e-8,
        check_names=False, check_index_type=False,
    )  # fmt: skip


def test_predict_errors(capsys, cli_run: CliRun, calibration_summary: Path,
                        tmp_path: Path) -> None:  # fmt: skip
    model_path = cli_run.dir / "models" / "bgnbd" / "model.json"
    one_error_line(call(capsys, "predict", "--model", tmp_path / "none.json", "--data",
                        calibration_summary, "--out", tmp_path / "p.csv"), "--model")  # fmt: skip
    damaged = write(tmp_path / "damaged.json", "{not json")
    one_error_line(call(capsys, "predict", "--model", damaged, "--data", calibration_summary,
                        "--out", tmp_path / "p.csv"), "damaged.json")  # fmt: skip
    one_error_line(call(capsys, "predict", "--model", model_path, "--data", tmp_path / "no.csv",
                        "--out", tmp_path / "p.csv"), "--data")  # fmt: skip
    existing = write(tmp_path / "existing.csv", "x\n")
    one_error_line(call(capsys, "predict", "--model", model_path, "--data", calibration_summary,
                        "--out", existing), "exists")  # fmt: skip
    assert existing.read_text() == "x\n"
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(("data_suffix", "out_suffix"),
                         [("csv", "csv"), ("csv", "parquet"), ("parquet", "parquet"),
                          ("parquet", "csv")])  # fmt: skip
@pytest.mark.parametrize("id_column", [None, "customer"])
def test_predict_refuses_data_without_the_id_column(
    capsys, cli_run: CliRun, calibration_summary: Path, tmp_path: Path, data_suffix: str,
    out_suffix: str, id_column: str | None,
) -> None:  # fmt: skip
    # the summary's id column is "cust": neither the default nor "customer" is there, and
    # the rows must not be written under their row numbers instead
    model_path = cli_run.dir / "models" / "bgnbd" / "model.json"
    data = tmp_path / f"summary.{data_suffix}"
    frame = pd.read_csv(calibration_summary)
    if data_suffix == "csv":
        frame.to_csv(data, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data)
    out = tmp_path / f"p.{out_suffix}"
    option = [] if id_column is None else ["--id-column", id_column]
    outcome = call(capsys, "predict", "--model", model_path, "--data", data, "--out", out,
                   *option)  # fmt: skip
    missing = id_column or "customer_id"
    line = one_error_line(outcome, f"--id-column {missing}: ", f"no column {missing!r}",
                          str(data), "'cust', 'frequency_cal'", "pass --id-column")  # fmt: skip
    assert "Traceback" not in outcome.err
    assert outcome.out == ""
    assert line.count("'") == 2 * 13  # the missing name and the file's 12 columns
    assert sorted(p.name for p in tmp_path.iterdir()) == [data.name]  # no output, no leftover


# ---------------------------------------------------------------- report, datasets


def test_report_rebuilds_the_page(capsys, cli_run: CliRun, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(cli_run.dir, copy)
    original = (copy / "report.html").read_bytes()
    (copy / "report.html").unlink()
    outcome = call(capsys, "report", copy)
    assert outcome.code == 0, outcome
    assert str(copy / "report.html") in outcome.out
    assert (copy / "report.html").read_bytes() == original


def test_report_errors(capsys, tmp_path: Path) -> None:
    one_error_line(call(capsys, "report", tmp_path / "none"), "does not exist")
    one_error_line(call(capsys, "report", tmp_path), "manifest.json")


def test_datasets(capsys) -> None:
    outcome = call(capsys, "datasets")
    assert outcome.code == 0
    names = [line.split()[0] for line in outcome.out.splitlines()]
    assert names == list(clvmodels.datasets.DATASETS)
    assert "cdnow_sample" in names


# ---------------------------------------------------------------- a real process


def test_python_dash_m(tmp_path: Path) -> None:
    version = subprocess.run([sys.executable, "-m", "clvmodels", "--version"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"clvmodels {clvmodels.__version__}"
    datasets = subprocess.run([sys.executable, "-m", "clvmodels", "datasets"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert datasets.returncode == 0, datasets.stderr
    assert datasets.stdout.startswith("cdnow_sample ")


def test_entry_point_exit_code_2(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("clvmodels")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "clvmodels"]
    text, field = INVALID["duplicate_model_names"]
    path = write(tmp_path / "dup.yaml", text)
    done = subprocess.run([*command, "validate", str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"{field}: duplicate model name 'bg'" in lines[0]


def test_text_ids_keep_their_zeros_from_log_to_scores(capsys, tmp_path: Path) -> None:
    # a semicolon log with zero-padded ids and a duplicated row: summarized (the
    # duplicate named in one warning line), fitted, scored from the summary CSV
    log = tmp_path / "log.csv"
    log.write_text("id;day;value\n007;2024-01-31;5\n007;2024-01-31;5\n007;2024-03-01;2\n"
                   "010;2024-02-13;1\n")  # fmt: skip
    summary = tmp_path / "summary.csv"
    outcome = call(capsys, "summarize", log, "--out", summary, "--customer-id", "id",
                   "--date", "day", "--amount", "value")  # fmt: skip
    assert outcome.code == 0, outcome
    assert [line.split(":")[1].strip() for line in outcome.err_lines] == ["warning"]
    assert "1 of 4 transactions are exact duplicates" in outcome.err
    frame = pd.read_csv(summary, dtype={"id": str})
    assert frame["id"].tolist() == ["007", "010"]
    assert frame["total_amount"].tolist() == [12.0, 1.0]  # the duplicate kept, as warned
    dropped = tmp_path / "dropped.csv"
    outcome = call(capsys, "summarize", log, "--out", dropped, "--customer-id", "id",
                   "--date", "day", "--amount", "value", "--duplicates", "drop")  # fmt: skip
    assert outcome.code == 0 and outcome.err_lines == [], outcome
    assert pd.read_csv(dropped)["total_amount"].tolist() == [7.0, 1.0]
    model = tmp_path / "model.json"
    clvmodels.BGNBD().fit(clvmodels.calibration_holdout(
        clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
        holdout_end="1998-06-30", duplicates="keep",
    )).save(model)  # fmt: skip
    scores = tmp_path / "scores.csv"
    outcome = call(capsys, "predict", "--model", model, "--data", summary, "--out", scores,
                   "--id-column", "id", "--horizon", "30D")  # fmt: skip
    assert outcome.code == 0, outcome
    assert pd.read_csv(scores, dtype={"id": str})["id"].tolist() == ["007", "010"]

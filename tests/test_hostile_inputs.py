"""A catalogue of hostile inputs a user can give the command line and the Python API.

Each CLI case runs ``clvmodels ...`` in-process in one working folder that already holds
the user's files and an earlier run, and checks: exit code 2, one line starting
``clvmodels: error:`` that contains the word naming the problem (the option, field,
column or file), no "unexpected" and no traceback, and every file in the folder unchanged,
with nothing new written. Each API case checks the documented exception and its words.
Two cases run in a real subprocess, to see what a terminal would show.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.cli import main
from clvmodels.exceptions import InvalidDataError

REPO = Path(__file__).resolve().parents[1]

CONFIG = """\
name: hostile
data:
  path: tx.csv
  columns: {amount: amount}
  duplicates: keep
periods: {time_unit: W, calibration_end: 1997-06-30, holdout_end: 1997-12-31}
models:
  - {name: bg, kind: bgnbd}
output: {dir: runs/hostile}
"""


def _user_folder(root: Path) -> None:
    """The files a user has beside their runs: logs good and bad, a summary, a model,
    an earlier run and a folder of their own."""
    log = clvmodels.datasets.load_cdnow("sample")
    log = log[log["date"] < "1998-01-01"].head(4000)
    log.to_csv(root / "tx.csv", index=False)
    summary = clvmodels.summarize(log, amount="amount", time_unit="W", duplicates="keep")
    summary.to_csv(root / "summary.csv")
    model = clvmodels.BGNBD().fit(summary)
    model.save(root / "model.json")
    state = json.loads((root / "model.json").read_text(encoding="utf-8"))
    state["params"] = {name: -1.0 for name in state["params"]}
    (root / "negative_model.json").write_text(json.dumps(state), encoding="utf-8")
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "empty.csv").write_bytes(b"")
    (root / "empty.yaml").write_bytes(b"")
    (root / "excel.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)
    (root / "old_excel.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64))
    (root / "binary.csv").write_bytes(b"customer_id,date\x00\x01\x02" + bytes(range(256)))
    (root / "utf16.csv").write_bytes("customer_id,date\n1,2020-01-01\n".encode("utf-16"))
    (root / "utf16.yaml").write_bytes("name: x\n".encode("utf-16"))
    (root / "not_parquet.parquet").write_bytes(b"customer_id,date\n1,2020-01-01\n")
    pd.DataFrame({"customer_id": [1], "date": ["2020-01-01"]}).to_parquet(
        root / "parquet_named.csv"
    )
    (root / "headers.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / "ambiguous.csv").write_text(
        "customer_id,date\n1,01/02/2020\n1,03/04/2020\n2,05/06/2020\n", encoding="utf-8"
    )
    (root / "mixed_dates.csv").write_text(
        "customer_id,date\n1,2020-01-01\n2,yesterday\n", encoding="utf-8"
    )
    (root / "negative.csv").write_text(
        "customer_id,date,amount\n1,2020-01-01,5\n1,2020-02-01,-5\n", encoding="utf-8"
    )
    (root / "duplicates.csv").write_text(
        "customer_id,date,amount\n1,2020-01-01,5\n1,2020-01-01,5\n2,2020-01-03,1\n",
        encoding="utf-8",
    )
    (root / "no_id.csv").write_text("frequency,recency,T\n1,2,3\n", encoding="utf-8")
    (root / "scores.csv").write_text("an earlier output of the user\n", encoding="utf-8")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("my own notes\n", encoding="utf-8")
    (root / "folder.csv").mkdir()
    (root / "runs").mkdir()
    assert main(["run", str(root / "config.yaml"), "--quiet"]) == 0


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user")
    cwd = os.getcwd()
    os.chdir(root)  # config paths and relative --out paths are the user's
    try:
        _user_folder(root)
    finally:
        os.chdir(cwd)
    return root


def _exit_code(argv: list[str]) -> int:
    """``clvmodels ARGV`` in-process; argparse's own errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) with a hash of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# (argv, the word the error line must contain)
CLI_CASES: dict[str, tuple[list[str], str]] = {
    # summarize: the transaction file
    "summarize_missing_file": (["summarize", "nope.csv", "--out", "o.csv"], "nope.csv"),
    "summarize_a_folder": (["summarize", "mine", "--out", "o.csv"], "directory"),
    "summarize_empty_file": (["summarize", "empty.csv", "--out", "o.csv"], "empty"),
    "summarize_excel_as_csv": (["summarize", "excel.csv", "--out", "o.csv"], "Excel"),
    "summarize_old_excel_as_csv": (["summarize", "old_excel.csv", "--out", "o.csv"], "Excel"),
    "summarize_binary_csv": (["summarize", "binary.csv", "--out", "o.csv"], "binary"),
    "summarize_utf16_csv": (["summarize", "utf16.csv", "--out", "o.csv"], "UTF-16"),
    "summarize_parquet_named_csv": (
        ["summarize", "parquet_named.csv", "--out", "o.csv"], "Parquet"
    ),
    "summarize_not_parquet": (["summarize", "not_parquet.parquet", "--out", "o.csv"], "Parquet"),
    "summarize_unknown_extension": (["summarize", "config.yaml", "--out", "o.csv"], "format"),
    "summarize_wrong_headers": (["summarize", "headers.csv", "--out", "o.csv"], "customer_id"),
    "summarize_missing_amount_column": (
        ["summarize", "tx.csv", "--out", "o.csv", "--amount", "price"], "price"
    ),
    "summarize_one_column_two_roles": (
        ["summarize", "tx.csv", "--out", "o.csv", "--customer-id", "date"], "same column"
    ),
    "summarize_ambiguous_dates": (["summarize", "ambiguous.csv", "--out", "o.csv"],
                                  "date_format"),
    "summarize_unparseable_dates": (["summarize", "mixed_dates.csv", "--out", "o.csv"], "date"),
    "summarize_wrong_date_format": (
        ["summarize", "tx.csv", "--out", "o.csv", "--date-format", "%d.%m.%Y"], "date"
    ),
    "summarize_negative_amounts": (
        ["summarize", "negative.csv", "--out", "o.csv", "--amount", "amount"], "negative"
    ),
    "summarize_duplicates_refused": (
        ["summarize", "duplicates.csv", "--out", "o.csv", "--amount", "amount",
         "--duplicates", "error"], "duplicate",
    ),
    # summarize: options
    "summarize_bad_time_unit": (
        ["summarize", "tx.csv", "--out", "o.csv", "--time-unit", "fortnight"], "time_unit"
    ),
    "summarize_bad_granularity": (
        ["summarize", "tx.csv", "--out", "o.csv", "--granularity", "xyz"], "granularity"
    ),
    "summarize_end_not_a_date": (
        ["summarize", "tx.csv", "--out", "o.csv", "--observation-end", "today"],
        "observation_end",
    ),
    "summarize_end_before_the_data": (
        ["summarize", "tx.csv", "--out", "o.csv", "--observation-end", "1990-01-01"],
        "observation_end",
    ),
    "summarize_split_in_wrong_order": (
        ["summarize", "tx.csv", "--out", "o.csv", "--calibration-end", "1997-09-30",
         "--holdout-end", "1997-03-01"], "calibration_end",
    ),
    "summarize_holdout_past_the_data": (
        ["summarize", "tx.csv", "--out", "o.csv", "--calibration-end", "1997-09-30",
         "--holdout-end", "2005-01-01"], "holdout",
    ),
    "summarize_half_a_split": (
        ["summarize", "tx.csv", "--out", "o.csv", "--calibration-end", "1997-09-30"],
        "--holdout-end",
    ),
    "summarize_bad_memory_limit": (
        ["summarize", "tx.csv", "--out", "o.csv", "--memory-limit", "lots"], "memory_limit"
    ),
    "summarize_missing_temp_directory": (
        ["summarize", "tx.csv", "--out", "o.csv", "--temp-directory", "nodir"],
        "temp_directory",
    ),
    "summarize_bad_engine": (
        ["summarize", "tx.csv", "--out", "o.csv", "--engine", "excel"], "--engine"
    ),
    # summarize: the output
    "summarize_out_in_missing_folder": (
        ["summarize", "tx.csv", "--out", "nodir/o.csv"], "does not exist"
    ),
    "summarize_out_exists": (["summarize", "tx.csv", "--out", "scores.csv"], "--overwrite"),
    "summarize_out_not_a_table": (["summarize", "tx.csv", "--out", "o.xlsx"], ".parquet"),
    "summarize_out_is_a_folder": (["summarize", "tx.csv", "--out", "folder.csv"], "folder"),
    # predict
    "predict_horizon_without_unit": (
        ["predict", "--model", "model.json", "--data", "summary.csv", "--out", "p.csv",
         "--horizon", "52"], "horizon",
    ),
    "predict_horizon_words": (
        ["predict", "--model", "model.json", "--data", "summary.csv", "--out", "p.csv",
         "--horizon", "abc"], "horizon",
    ),
    "predict_interval_in_percent": (
        ["predict", "--model", "model.json", "--data", "summary.csv", "--out", "p.csv",
         "--interval", "90"], "interval",
    ),
    "predict_seed_not_a_number": (
        ["predict", "--model", "model.json", "--data", "summary.csv", "--out", "p.csv",
         "--seed", "abc"], "--seed",
    ),
    "predict_missing_model": (
        ["predict", "--model", "nope.json", "--data", "summary.csv", "--out", "p.csv"],
        "--model",
    ),
    "predict_model_is_a_folder": (
        ["predict", "--model", "mine", "--data", "summary.csv", "--out", "p.csv"], "folder"
    ),
    "predict_model_not_json": (
        ["predict", "--model", "tx.csv", "--data", "summary.csv", "--out", "p.csv"],
        "model file",
    ),
    "predict_model_negative_parameters": (
        ["predict", "--model", "negative_model.json", "--data", "summary.csv", "--out",
         "p.csv"], "negative_model.json",
    ),
    "predict_missing_data": (
        ["predict", "--model", "model.json", "--data", "nope.csv", "--out", "p.csv"], "--data"
    ),
    "predict_data_empty": (
        ["predict", "--model", "model.json", "--data", "empty.csv", "--out", "p.csv"], "empty"
    ),
    "predict_data_excel": (
        ["predict", "--model", "model.json", "--data", "excel.csv", "--out", "p.csv"], "Excel"
    ),
    "predict_data_not_parquet": (
        ["predict", "--model", "model.json", "--data", "not_parquet.parquet", "--out",
         "p.parquet"], "Parquet",
    ),
    "predict_data_without_id_column": (
        ["predict", "--model", "model.json", "--data", "no_id.csv", "--out", "p.csv"],
        "--id-column",
    ),
    "predict_data_is_a_log_not_a_summary": (
        ["predict", "--model", "model.json", "--data", "tx.csv", "--out", "p.csv"], "frequency"
    ),
    "predict_out_in_missing_folder": (
        ["predict", "--model", "model.json", "--data", "summary.csv", "--out", "nodir/p.csv"],
        "does not exist",
    ),
    "predict_out_exists": (
        ["predict", "--model", "model.json", "--data", "summary.csv", "--out", "scores.csv"],
        "--overwrite",
    ),
    # run, validate, report
    "run_missing_config": (["run", "nope.yaml"], "nope.yaml"),
    "run_config_is_a_folder": (["run", "mine"], "mine"),
    "run_empty_config": (["run", "empty.yaml"], "empty"),
    "run_utf16_config": (["run", "utf16.yaml"], "UTF-8"),
    "run_config_is_binary": (["run", "excel.csv"], "UTF-8"),
    "run_horizon_without_unit": (
        ["run", "config.yaml", "--set", "clv.horizon=52"], "clv.horizon"
    ),
    "run_unknown_setting": (["run", "config.yaml", "--set", "clv.colour=blue"], "clv.colour"),
    "run_set_without_value": (["run", "config.yaml", "--set", "clv.horizon"], "KEY=VALUE"),
    "run_data_file_missing": (["run", "config.yaml", "--set", "data.path=nope.csv"],
                              "data.path"),
    "run_data_file_empty": (["run", "config.yaml", "--set", "data.path=empty.csv",
                             "--output", "runs/new", "--quiet"], "empty"),
    "run_data_file_excel": (["run", "config.yaml", "--set", "data.path=excel.csv",
                             "--output", "runs/new", "--quiet"], "Excel"),
    "run_overwrite_users_folder": (
        ["run", "config.yaml", "--output", "mine", "--overwrite"], "mine"
    ),
    "run_overwrite_working_directory": (
        ["run", "config.yaml", "--output", ".", "--overwrite"], "working directory"
    ),
    "run_existing_run_without_overwrite": (["run", "config.yaml"], "--overwrite"),
    "validate_without_config": (["validate"], "CONFIG"),
    "report_missing_folder": (["report", "nope"], "nope"),
    "report_not_a_run": (["report", "mine"], "manifest.json"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_refuses_with_one_line_naming_the_problem(
    case: str, folder: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    argv, word = CLI_CASES[case]
    monkeypatch.chdir(folder)
    before = _snapshot(folder)
    capsys.readouterr()
    code = _exit_code(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (code, captured.err)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(("clvmodels: error: ", "clvmodels run: error: ",
                                "clvmodels summarize: error: ",
                                "clvmodels predict: error: ")), lines[0]  # fmt: skip
    assert word.lower() in lines[0].lower(), lines[0]
    assert "unexpected" not in captured.err and "Traceback" not in captured.err
    assert _snapshot(folder) == before, "a refused command changed the user's files"


def test_the_catalogue_is_large() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 40


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(errno.EACCES, "Permission denied", "sales.csv"),
        IsADirectoryError(errno.EISDIR, "Is a directory", "sales.csv"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "sales.csv"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_operating_system_errors_are_one_line_exit_2(
    error: OSError, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # whatever command meets the error (here `datasets`, made to raise it)
    from clvmodels import cli

    def fail(args: object) -> int:
        raise error

    monkeypatch.setitem(cli._COMMANDS, "datasets", fail)
    capsys.readouterr()
    assert main(["datasets"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clvmodels: error: "), err
    assert "unexpected" not in err
    assert error.strerror.lower() in err.lower()
    if error.filename:
        assert "sales.csv" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads files whatever their permissions")  # fmt: skip
def test_unreadable_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked.csv"
    locked.write_text("customer_id,date\n1,2020-01-01\n", encoding="utf-8")
    locked.chmod(0)
    try:
        capsys.readouterr()
        assert main(["summarize", str(locked), "--out", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err
        assert "locked.csv" in err and "permission" in err.lower()
    finally:
        locked.chmod(0o600)


def test_unreadable_file_is_named_by_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same check as above where the tests run as root: open() made to refuse
    import builtins

    from clvmodels.data import duckdb_engine

    locked = tmp_path / "locked.csv"
    locked.write_text("customer_id,date\n1,2020-01-01\n", encoding="utf-8")
    real_open = builtins.open

    def refusing_open(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(InvalidDataError, match=r"cannot read .*locked\.csv.: Permission"):
        duckdb_engine.check_readable(str(locked), "csv")


# ------------------------------------------------------------------ the Python API


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"frequency": [2, 0, 5], "recency": [10.0, 0.0, 30.0],
                         "T": [40.0, 20.0, 35.0], "monetary_value": [10.0, 0.0, 12.0]})  # fmt: skip


def _fitted() -> clvmodels.BGNBD:
    return clvmodels.BGNBD().fit(
        clvmodels.calibration_holdout(
            clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
            holdout_end="1998-06-30", time_unit="W", duplicates="keep",
        )
    )


def _log() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a", "a", "b"],
                         "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-05"]),
                         "amount": [5.0, 6.0, 7.0]})  # fmt: skip


# (call, exception, words the message must contain)
API_CASES: dict[str, tuple[Callable[[], object], type[Exception], tuple[str, ...]]] = {
    "summarize_missing_column": (
        lambda: clvmodels.summarize(_log(), customer_id="client"), InvalidDataError,
        ("client",),
    ),
    "summarize_mixed_id_types": (
        lambda: clvmodels.summarize(_log().assign(customer_id=["a", 1, "b"])),
        InvalidDataError, ("customer_id",),
    ),
    "summarize_one_column_two_roles": (
        lambda: clvmodels.summarize(_log(), customer_id="date"), InvalidDataError,
        ("same column",),
    ),
    "summarize_bad_duplicates_policy": (
        lambda: clvmodels.summarize(_log(), amount="amount", duplicates="remove"),
        InvalidDataError, ("duplicates",),
    ),
    "fit_negative_frequency": (
        lambda: clvmodels.BGNBD().fit(_frame().assign(frequency=[-1, 0, 5])),
        InvalidDataError, ("frequency", "negative"),
    ),
    "fit_recency_after_t": (
        lambda: clvmodels.BGNBD().fit(_frame().assign(recency=[50.0, 0.0, 30.0])),
        InvalidDataError, ("recency",),
    ),
    "fit_nan_t": (
        lambda: clvmodels.ParetoNBD().fit(_frame().assign(T=[np.nan, 20.0, 35.0])),
        InvalidDataError, ("T",),
    ),
    "gamma_gamma_amounts_of_1e300": (
        lambda: clvmodels.GammaGamma().fit(_frame().assign(monetary_value=[1e300, 0, 2e300])),
        InvalidDataError, ("monetary_value", "units"),
    ),
    "gamma_gamma_zero_value_repeat_buyer": (
        lambda: clvmodels.GammaGamma().fit(_frame().assign(monetary_value=[0.0, 0.0, 12.0])),
        InvalidDataError, ("monetary_value",),
    ),
    "negative_penalizer": (
        lambda: clvmodels.BGNBD(penalizer=-1).fit(_frame()), InvalidDataError, ("penalizer",)
    ),
    "predict_interval_in_percent": (
        lambda: _fitted().expected_purchases(_frame(), t=10, interval=90), InvalidDataError,
        ("interval",),
    ),
    "clv_horizon_negative": (
        lambda: clvmodels.predictive_clv(_fitted(), None, _frame(), horizon=-52,
                                         discount_rate=0.1),
        InvalidDataError, ("horizon",),
    ),
    "prediction_horizon_in_words": (
        lambda: _fitted().expected_purchases(_frame(), t="next year"), InvalidDataError,
        ("t=",),
    ),
    "clv_models_swapped": (
        lambda: clvmodels.predictive_clv(clvmodels.GammaGamma(), _fitted(), _frame(),
                                         horizon="12M", discount_rate=0.1),
        InvalidDataError, ("swapped",),
    ),
    "holdout_past_the_data": (
        lambda: clvmodels.calibration_holdout(_log(), calibration_end="2020-01-31",
                                              holdout_end="2030-01-01"),
        InvalidDataError, ("holdout_past_data",),
    ),
    "calibration_end_not_a_date": (
        lambda: clvmodels.calibration_holdout(_log(), calibration_end="soon",
                                              holdout_end="2020-03-01"),
        InvalidDataError, ("calibration_end",),
    ),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_raises_the_documented_error_naming_the_problem(case: str) -> None:
    call, exception, words = API_CASES[case]
    with pytest.raises(exception) as raised:
        call()
    message = str(raised.value)
    for word in words:
        assert word.lower() in message.lower(), message


@pytest.mark.parametrize(
    ("argv", "word"),
    [(["summarize", "excel.csv", "--out", "o.csv"], "Excel"),
     (["predict", "--model", "model.json", "--data", "summary.csv", "--out", "p.csv",
       "--horizon", "52"], "horizon")],
    ids=["excel", "horizon"],
)
def test_a_real_process_prints_one_line_and_no_traceback(
    argv: list[str], word: str, folder: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clvmodels", *argv], cwd=folder, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and word in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr

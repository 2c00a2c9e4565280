"""The ``clvmodels`` command.

::

    clvmodels run CONFIG [--set KEY=VALUE ...] [--output DIR] [--overwrite]
    clvmodels validate CONFIG [--set KEY=VALUE ...] | --schema
    clvmodels summarize TRANSACTIONS --out FILE [--time-unit W] [--calibration-end DATE ...]
    clvmodels predict --model MODEL.json --data SUMMARY --out FILE [--horizon 12M]
                      [--covariates CUSTOMERS]
    clvmodels predict --model MODEL.json --transactions LOG --covariate-history TABLE
                      --observation-end DATE --out FILE [--horizon 12M]
    clvmodels report RUN_DIR
    clvmodels datasets

Exit codes: 0 success; 2 a wrong configuration, option or input, or a file that cannot
be read or written (one line naming the field, option or file, the value and what is
expected); 1 any other failure (e.g. a fit that does not
converge); 130 interrupted. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clvmodels",
        description="Customer-lifetime-value experiments: from transactions to a report.",
    )
    parser.add_argument("--version", action="version", version=f"clvmodels {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser("run", help="run an experiment from a YAML file")
    run.add_argument("config", help="the experiment's YAML file")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a setting, e.g. clv.horizon=6M")
    run.add_argument("--output", help="run directory (replaces output.dir)")
    run.add_argument("--overwrite", action="store_true", default=None,
                     help="replace an existing run directory")
    run.add_argument("--quiet", action="store_true", help="print only the result")

    validate = commands.add_parser("validate", help="check an experiment file")
    validate.add_argument("config", nargs="?", help="the experiment's YAML file")
    validate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE")
    validate.add_argument("--schema", action="store_true",
                          help="print the JSON Schema of experiment files instead")

    summarize = commands.add_parser(
        "summarize", help="per-customer summary (frequency, recency, T, ...) of a log"
    )
    summarize.add_argument("transactions",
                           help="CSV or Parquet file(s) of transactions; a glob in quotes")
    summarize.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    summarize.add_argument("--customer-id", default="customer_id", help="id column")
    summarize.add_argument("--date", default="date", help="date column")
    summarize.add_argument("--amount", help="amount column (adds monetary_value)")
    summarize.add_argument("--date-format", help="strftime format of the dates")
    summarize.add_argument("--time-unit", default="D", help="D, W, M or Y (default D)")
    summarize.add_argument("--granularity", default="D", help="merge window (default D)")
    summarize.add_argument("--observation-end", help="last day observed (inclusive)")
    summarize.add_argument("--calibration-end", help="with --holdout-end: a split")
    summarize.add_argument("--holdout-end", help="last day of the holdout (inclusive)")
    summarize.add_argument("--duplicates", choices=["warn", "keep", "drop", "error"],
                           default="warn", help="exact duplicate rows: warn (and keep), "
                           "keep, drop or error (default warn)")
    summarize.add_argument("--holdout-past-data", choices=["error", "allow"], default="error",
                           help="a holdout past the last transaction: error (default) or "
                           "allow, with a warning")
    summarize.add_argument("--overwrite", action="store_true", help="replace --out")
    summarize.add_argument("--engine", choices=["duckdb", "pandas"], default="duckdb",
                           help="duckdb (default: out of core) or pandas (in memory)")
    summarize.add_argument("--memory-limit",
                           help="DuckDB memory limit (default: a quarter of RAM, at least "
                           "750MB; e.g. 4GB or 80%%)")
    summarize.add_argument("--temp-directory",
                           help="existing folder for DuckDB's spill (default: system temp)")

    predict = commands.add_parser("predict", help="score customers with a saved model")
    predict.add_argument("--model", required=True, help="model.json written by a run or save()")
    predict.add_argument("--data", help="summary file (.csv or .parquet)")
    predict.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    predict.add_argument("--horizon", default="12M", help="future period (default 12M)")
    predict.add_argument("--interval", type=float, help="level of intervals, e.g. 0.9")
    predict.add_argument("--id-column", default="customer_id",
                         help="customer id column of --data (default customer_id)")
    predict.add_argument("--seed", type=int, default=0, help="seed of the interval draws")
    predict.add_argument("--covariates",
                         help="per-customer file (.csv or .parquet) with the model's "
                              "covariates, joined on --id-column")  # fmt: skip
    predict.add_argument("--overwrite", action="store_true", help="replace --out")
    history = predict.add_argument_group(
        "time-varying covariates", "for a Pareto/NBD fitted on a covariate history: the "
        "customers' summaries and covariate paths are built from the log and the table "
        "(which must reach the end of --horizon), instead of --data")  # fmt: skip
    history.add_argument("--transactions", help="transaction log (.csv or .parquet)")
    history.add_argument("--covariate-history",
                         help="covariate table (.csv or .parquet), one row per period")
    history.add_argument("--observation-end", help="end of observation of the log (a date)")
    history.add_argument("--date", default="date", help="date column of the log (date)")
    history.add_argument("--covariate-date", default="date",
                         help="date column of the covariate table (date)")
    history.add_argument("--granularity", default="D",
                         help="window within which purchases count as one (D)")

    report = commands.add_parser("report", help="(re)build report.html of a run directory")
    report.add_argument("run_dir")

    commands.add_parser("datasets", help="list the bundled datasets")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Examples
    --------
    >>> main(["datasets"])  # doctest: +ELLIPSIS
    cdnow_sample ...
    0
    """
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from .exceptions import ClvModelsError, ConfigError, InvalidDataError

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _data_warnings_on_one_line(warnings.showwarning)
            return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("clvmodels: interrupted; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigError, InvalidDataError) as error:
        if args.debug:
            raise
        print(f"clvmodels: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except ClvModelsError as error:
        if args.debug:
            raise
        print(f"clvmodels: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:  # a file the user named: missing, a folder, not permitted
        if args.debug:
            raise
        print(f"clvmodels: error: {_os_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # a bug, or an environment problem: say so, briefly
        if args.debug:
            raise
        print(
            f"clvmodels: unexpected {type(error).__name__}: {_one_line(error)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _data_warnings_on_one_line(show: Any) -> Any:
    """``warnings.showwarning`` printing warnings about the user's data as one line
    each, like errors; other warnings as ``show`` does."""
    from .exceptions import DataWarning

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, DataWarning):
            print(f"clvmodels: warning: {_one_line(Exception(str(message)))}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    return showwarning


def _os_error(error: OSError) -> str:
    """``[Errno 13] Permission denied: 'x.csv'`` as ``x.csv: permission denied`` and what
    to check."""
    reason = (error.strerror or _one_line(error)).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: {reason}; check the path and its permissions"


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = text.splitlines()
    if not lines:
        return type(error).__name__
    # a checklist after the first line (ConvergenceError's "What to try:") is left out
    checklists = ("What to try", "Things to try", "Checklist")
    if len(lines) > 1 and lines[1].strip().startswith(checklists):
        return lines[0]
    return " ".join(line.strip() for line in lines if line.strip())


# ------------------------------------------------------------------ commands


class _StepLog:
    """Log lines on stderr. On a terminal, a step in progress ("... ") shows its elapsed
    time, updated in place, until the next line; elsewhere plain lines only."""

    def __init__(self, stream: Any, *, live: bool) -> None:
        import threading

        self.stream = stream
        self.live = live
        self.pending: tuple[str, float] | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True) if live else None
        if self.ticker is not None:
            self.ticker.start()

    def __call__(self, line: str) -> None:
        with self.lock:
            if self.pending is not None:
                self.stream.write("\n")
            waiting = self.live and line.endswith("...")
            self.stream.write(line if waiting else line + "\n")
            self.stream.flush()
            self.pending = (line, time.perf_counter()) if waiting else None

    def _tick(self) -> None:
        while not self.stop.wait(0.5):
            with self.lock:
                if self.pending is not None:
                    line, since = self.pending
                    self.stream.write(f"\r{line} {time.perf_counter() - since:.0f}s")
                    self.stream.flush()

    def close(self) -> None:
        self.stop.set()
        with self.lock:
            if self.pending is not None:
                self.stream.write("\n")
                self.pending = None
            self.stream.flush()



def _run(args: argparse.Namespace) -> int:
    from .experiments.config import load_config
    from .experiments.runner import run_experiment

    config, _ = load_config(args.config, args.overrides)
    started = time.perf_counter()
    terminal = sys.stderr.isatty()
    log = None if args.quiet else _StepLog(sys.stderr, live=terminal)
    try:
        result = run_experiment(
            config, output_dir=args.output, overwrite=args.overwrite, log=log,
            progressbar=not args.quiet and terminal,
        )  # fmt: skip
    finally:
        if log is not None:
            log.close()
    elapsed = time.perf_counter() - started
    print(f"{config.name}: wrote {result.output_dir} in {elapsed:.1f} s")
    if result.metrics is not None and "mae" in result.metrics.columns:
        best = result.metrics["mae"].idxmin()
        print(f"  lowest holdout MAE: {best} ({result.metrics.loc[best, 'mae']:.4f})")
    print(f"  report: {result.output_dir / 'report.html'}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from .experiments.config import config_json_schema, load_config

    if args.schema:
        import json

        print(json.dumps(config_json_schema(), indent=2))
        return EXIT_OK
    if args.config is None:
        from .exceptions import ConfigError

        raise ConfigError("validate: give a CONFIG file (or --schema)")
    config, _ = load_config(args.config, args.overrides)
    models = ", ".join(f"{m.name} ({m.kind}, {m.method})" for m in config.models)
    print(f"{args.config}: valid. Experiment {config.name!r}; models {models}; "
          f"output {config.output_dir()}")  # fmt: skip
    return EXIT_OK


def _output_path(path: str, overwrite: bool) -> Path:
    from .exceptions import ConfigError
    from .experiments.config import data_format

    out = Path(path)
    if data_format(out) is None:
        raise ConfigError(f"--out {path}: use a .csv or .parquet file name")
    # checked before any work, so that a long summary is not lost at the last step
    folder = out.parent
    if not folder.is_dir():
        raise ConfigError(
            f"--out {path}: the folder {str(folder)!r} does not exist; create it first"
        )
    if out.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name inside it")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {path} exists; pass --overwrite to replace it")
    import os

    if not os.access(folder, os.W_OK):
        raise ConfigError(f"--out {path}: the folder {str(folder)!r} is not writable")
    return out


def _read_table(path: str, option: str, id_column: str | None = None) -> Any:
    """A summary file as pandas; a CSV's id column read by the rule of every reader
    (integers only when all are plain integers, so "007" keeps its zeros)."""
    import pandas as pd

    from .exceptions import ConfigError
    from .experiments.config import data_format

    file = _input_file(path, option)
    kind = data_format(file)
    if kind is None:
        raise ConfigError(f"{option} {path}: use a .csv or .parquet file")
    from .data.duckdb_engine import check_readable

    check_readable(str(file), kind)
    if kind == "csv":
        text = {id_column: str} if id_column is not None else None
        try:
            frame = pd.read_csv(file, dtype=text)
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise ConfigError(
                f"{option} {path}: not a readable UTF-8 CSV file ({_one_line(error)})"
            ) from None
        if id_column is not None and id_column in frame.columns:
            from .data.reader import ids_from_text

            frame[id_column] = ids_from_text(frame[id_column])
        return frame
    import duckdb

    try:
        return duckdb.read_parquet(str(file)).df()
    except duckdb.Error as error:
        raise ConfigError(f"{option} {path}: not a readable Parquet file ({error})") from None


def _input_file(path: str, option: str) -> Path:
    """``path`` as an existing file; a folder or a missing file is named as such."""
    from .exceptions import ConfigError

    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file")
    if not file.is_file():
        raise ConfigError(f"{option} {path}: no such file")
    return file


def _write_table(frame: Any, out: Path) -> None:
    """Write atomically: a temporary file beside ``out``, then a rename."""
    import os
    import tempfile

    from .experiments.config import data_format
    from .experiments.runner import write_parquet

    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or ".")
    os.close(handle)
    try:
        if data_format(out) == "csv":
            frame.to_csv(temporary, float_format="%.10g", lineterminator="\n")
        else:
            Path(temporary).unlink()
            write_parquet(frame, Path(temporary))
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _summarize(args: argparse.Namespace) -> int:
    from .data.summary import calibration_holdout, summarize
    from .exceptions import ConfigError

    out = _output_path(args.out, args.overwrite)
    transactions = args.transactions  # read by the engine, never loaded whole by pandas
    options = {
        name: value for name, value in (("memory_limit", args.memory_limit),
                                        ("temp_directory", args.temp_directory)) if value
    } or None  # fmt: skip
    common = {
        "customer_id": args.customer_id, "date": args.date, "amount": args.amount,
        "date_format": args.date_format, "time_unit": args.time_unit,
        "granularity": args.granularity, "engine": args.engine, "engine_options": options,
        "duplicates": args.duplicates,
    }  # fmt: skip
    if (args.calibration_end is None) != (args.holdout_end is None):
        raise ConfigError("--calibration-end and --holdout-end go together")
    if args.calibration_end is not None:
        if args.observation_end is not None:
            raise ConfigError("--observation-end does not combine with a calibration split")
        frame = calibration_holdout(
            transactions, calibration_end=args.calibration_end, holdout_end=args.holdout_end,
            after_end="drop", holdout_past_data=args.holdout_past_data, **common,
        )  # fmt: skip
    else:
        frame = summarize(transactions, observation_end=args.observation_end, **common)
    _write_table(frame, out)
    print(f"{out}: {len(frame):,} customers ({args.engine})")
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    from .exceptions import ConfigError
    from .experiments.config import data_format
    from .models._base import load
    from .scoring import score, score_frame

    out = _output_path(args.out, args.overwrite)
    _input_file(args.model, "--model")
    model = load(args.model)
    varying = bool(getattr(model, "time_varying_", False))
    given = [o for o, v in (("--transactions", args.transactions),
                            ("--covariate-history", args.covariate_history),
                            ("--observation-end", args.observation_end)) if v]  # fmt: skip
    if varying and args.covariates is not None:
        raise ConfigError(
            f"--covariates: {Path(args.model).name} has time-varying covariates; they come "
            "from --covariate-history"
        )
    if varying and args.data is not None:
        raise ConfigError(
            f"--data: {Path(args.model).name} was fitted with time-varying covariates; "
            "give --transactions, --covariate-history and --observation-end instead"
        )
    if not varying and given:
        raise ConfigError(f"{given[0]}: {Path(args.model).name} has no time-varying "
                          "covariates; score a summary with --data")  # fmt: skip
    if not varying:
        if args.data is None:
            raise ConfigError("--data: give the summary file to score")
        _input_file(args.data, "--data")
    from . import registry

    role = registry.get(model.kind).role
    if role == "retention":
        raise ConfigError("--model: an sBG model describes a cohort, not customers to score")
    if role == "purchase" and getattr(model, "time_unit_", None) is None:
        raise ConfigError(
            f"--model {args.model}: the model does not record its time unit, so "
            f"--horizon {args.horizon} cannot be converted; refit it on a summary"
        )
    settings = {"horizon": args.horizon, "interval": args.interval, "random_state": args.seed}
    if varying:
        result = score_frame(model, _history_for(args, model.time_unit_), **settings)
        result.index.name = args.id_column
        _write_table(result, out)
        print(f"{out}: {len(result):,} customers scored with {Path(args.model).name} "
              f"({model.kind}, time-varying covariates)")  # fmt: skip
        return EXIT_OK
    covariates = _covariate_columns(model)
    if args.covariates is not None and not covariates:
        raise ConfigError(f"--covariates: the model {Path(args.model).name} has no covariates")
    if args.covariates is not None:
        from .data.customers import attach_attributes, read_attributes
        from .exceptions import InvalidDataError

        _input_file(args.covariates, "--covariates")
        data = _read_table(args.data, "--data", args.id_column)
        _require_id_column(args, data.columns)
        try:
            table = read_attributes(args.covariates, args.id_column, covariates)
            data = attach_attributes(data.set_index(args.id_column), table, covariates,
                                     Path(args.covariates).name)  # fmt: skip
        except InvalidDataError as error:
            raise ConfigError(f"--covariates {args.covariates}: {error}") from None
        result = score_frame(model, data, **settings)
        result.index.name = args.id_column
        _write_table(result, out)
        count = len(result)
    elif data_format(out) == "parquet" and data_format(Path(args.data)) == "parquet":
        # streamed by DuckDB in chunks: memory does not grow with the customers
        import duckdb

        from .data.duckdb_engine import check_readable

        check_readable(args.data, "parquet")
        try:
            columns = duckdb.read_parquet(str(args.data)).columns
        except duckdb.Error as error:
            raise ConfigError(
                f"--data {args.data}: not a readable Parquet file ({error})"
            ) from None
        _require_id_column(args, columns)
        score(model, args.data, id_column=args.id_column, out=out, overwrite=True, **settings)
        count = duckdb.read_parquet(str(out)).shape[0]
    else:
        data = _read_table(args.data, "--data", args.id_column)
        _require_id_column(args, data.columns)
        result = score_frame(model, data.set_index(args.id_column), **settings)
        result.index.name = args.id_column
        _write_table(result, out)
        count = len(result)
    print(f"{out}: {count:,} customers scored with {Path(args.model).name} ({model.kind})")
    return EXIT_OK


def _history_for(args: argparse.Namespace, time_unit: str) -> Any:
    """The covariate history of ``predict``'s time-varying options, read by the
    library's readers (ids as text where a CSV writes them so)."""
    from .data.customers import read_covariate_table
    from .data.dynamic import covariate_history
    from .data.reader import read_log
    from .exceptions import ConfigError, InvalidDataError

    for option in ("transactions", "covariate_history", "observation_end"):
        if getattr(args, option) is None:
            raise ConfigError(f"--{option.replace('_', '-')}: needed for a model fitted with "
                              "time-varying covariates")  # fmt: skip
    _input_file(args.transactions, "--transactions")
    _input_file(args.covariate_history, "--covariate-history")
    try:
        log = read_log(args.transactions, customer_id=args.id_column, date=args.date,
                       duplicates="keep")  # fmt: skip
    except InvalidDataError as error:
        raise ConfigError(f"--transactions {args.transactions}: {error}") from None
    try:
        table = read_covariate_table(args.covariate_history, args.id_column,
                                     args.covariate_date)  # fmt: skip
        return covariate_history(
            log, table, calibration_end=args.observation_end, time_unit=time_unit,
            granularity=args.granularity, customer_id=args.id_column, date=args.date,
            covariate_date=args.covariate_date, duplicates="keep", after_end="drop",
        )  # fmt: skip
    except InvalidDataError as error:
        raise ConfigError(f"--covariate-history {args.covariate_history}: {error}") from None


def _covariate_columns(model: Any) -> list[str]:
    design = getattr(model, "covariates_", None)
    return [] if design is None else list(design.settings.columns)


def _require_id_column(args: argparse.Namespace, columns: Sequence[Any]) -> None:
    """Refuse a ``--data`` file without the ``--id-column`` column: its rows would
    otherwise be written under made-up ids (their row numbers)."""
    from .exceptions import ConfigError

    if args.id_column in columns:
        return
    columns = list(columns)
    shown = ", ".join(map(repr, columns[:12])) + (
        f" and {len(columns) - 12} more" if len(columns) > 12 else ""
    )
    raise ConfigError(
        f"--id-column {args.id_column}: --data {args.data} has no column "
        f"{args.id_column!r} (its columns: {shown}); pass --id-column with the name of "
        "the customer id column"
    )


def _report(args: argparse.Namespace) -> int:
    from .experiments.report import build_report

    path = build_report(args.run_dir)
    print(f"wrote {path}")
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    from .datasets import DATASETS

    width = max(map(len, DATASETS))
    for name, description in DATASETS.items():
        print(f"{name:<{width}}  {description}")
    return EXIT_OK


_COMMANDS = {
    "run": _run, "validate": _validate, "summarize": _summarize, "predict": _predict,
    "report": _report, "datasets": _datasets,
}  # fmt: skip

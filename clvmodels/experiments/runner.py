"""Run an experiment: data → summaries → fits → predictions, CLV, evaluation → a run
directory with tables, plots, ``metrics.json`` and ``report.html``.

The run is written into a temporary directory beside the target and moved into place
only when complete, so a failed or interrupted run leaves nothing half-written and an
earlier run is replaced only with ``output.overwrite``. Everything random takes the
experiment's ``seed``; ``metrics.json`` and the predictions depend only on the
configuration and the data (timings go into ``run.json`` and the report).

Layout of a run directory::

    config.yaml                 the resolved configuration (defaults filled in)
    run.json                    metadata: versions, seed, data fingerprint, timings
    metrics.json, metrics.csv   holdout metrics per model and baseline; fit statistics
    predictions.parquet, .csv   one row per customer
    segments.csv                with an economics block: value, CLV / CAC, payback per segment
    models/NAME/model.json      the fitted model (clvmodels.load)
    models/NAME/summary.json, summary.csv
    tables/*.csv                the tables of the report
    plots/*.png
    manifest.json               what the report shows (clvmodels.experiments.report)
    report.html
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from .._validation import require_columns
from .._version import __version__
from ..exceptions import ConfigError, InvalidDataError
from ..models._base import point_estimate
from .config import PURCHASE_KINDS, ExperimentConfig, SamplerConfig, data_format

__all__ = ["RunResult", "run_experiment"]

@dataclass
class RunResult:
    """What a run produced (the files are in ``output_dir``)."""

    output_dir: Path
    models: dict[str, Any]
    predictions: pd.DataFrame
    metrics: pd.DataFrame | None
    timings: dict[str, float] = field(default_factory=dict)


class _Log:
    """Timed steps, reported as plain lines (``[  1.2s] fit bgnbd ...``)."""

    def __init__(self, emit: Callable[[str], None] | None) -> None:
        self.emit = emit
        self.start = time.perf_counter()
        self.started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.timings: dict[str, float] = {}  # in the order the steps ran

    def line(self, message: str) -> None:
        if self.emit is not None:
            self.emit(f"[{time.perf_counter() - self.start:6.1f}s] {message}")

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        _raise_if_stopped()
        begin = time.perf_counter()
        self.line(f"{name} ...")
        yield
        _raise_if_stopped()
        self.timings[name] = round(time.perf_counter() - begin, 3)

    @contextmanager
    def forwarding(self, logger_name: str) -> Iterator[None]:
        """INFO records of the logger ``logger_name`` as lines of this log while the
        block runs (a long MCMC run's progress, on a terminal or not)."""
        import logging

        if self.emit is None:
            yield
            return
        log = self

        class Forward(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                log.line(f"  {record.getMessage()}")

        logger = logging.getLogger(logger_name)
        handler, level = Forward(logging.INFO), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)


# ------------------------------------------------------------------ data


def load_transactions(config: ExperimentConfig) -> pd.DataFrame:
    """The run's one typed transaction table, read once (see
    :func:`clvmodels.data.reader.read_log`): only the mapped columns, ids of one type,
    dates as wall times, every data problem raised now, before anything is fitted."""
    from ..data.reader import read_log

    columns = config.data.columns
    if config.data.dataset is not None:
        from ..datasets import load_cdnow

        source: Any = load_cdnow(config.data.dataset.removeprefix("cdnow_"))  # type: ignore[arg-type]
    else:
        source = config.data.path
    try:
        return read_log(
            source, customer_id=columns.customer_id, date=columns.date,
            amount=columns.amount, date_format=config.data.date_format,
            duplicates=config.data.duplicates, engine_options=_duckdb_options(config),
        )  # fmt: skip
    except InvalidDataError as error:
        named = _column_error(error, config)
        if named is not None:
            raise named from None
        if "cannot read" in str(error) and config.data.path is not None:
            raise ConfigError(f"data.path: {error}", field="data.path") from None
        raise InvalidDataError(f"data: {error}") from None


def load_spark_transactions(config: ExperimentConfig) -> Any:
    """The log as a lazy Spark DataFrame, read by the active SparkSession alone (any
    location Spark reads, such as ``s3://``): a CSV with every column as text, typed by
    clvmodels as DuckDB's reading of the same file is; only the mapped columns."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "data.engine: spark needs pyspark (pip install 'clvmodels[spark]')",
            field="data.engine",
        ) from None
    spark = SparkSession.builder.getOrCreate()
    columns = config.data.columns
    wanted = [c for c in (columns.customer_id, columns.date, columns.amount) if c is not None]
    if config.data.dataset is not None:
        from ..datasets import load_cdnow

        frame = load_cdnow(config.data.dataset.removeprefix("cdnow_"))[wanted]  # type: ignore[arg-type]
        return spark.createDataFrame(frame)
    path = str(config.data.path)
    try:
        if data_format(Path(path)) == "csv":
            log = spark.read.csv(path, header=True, sep=_spark_delimiter(spark, path))
        else:
            log = spark.read.parquet(path)
    except Exception as error:  # Spark's own errors (AnalysisException, ...) name the path
        raise ConfigError(f"data.path: Spark cannot read {path}: {error}",
                          field="data.path") from None  # fmt: skip
    for key, column in (("customer_id", columns.customer_id), ("date", columns.date),
                        ("amount", columns.amount)):  # fmt: skip
        if column is not None and column not in log.columns:
            raise ConfigError(
                f"data.columns.{key}: {path} has no column {column!r}; its columns are "
                f"{', '.join(log.columns[:12])}", field=f"data.columns.{key}",
            )  # fmt: skip
    return log.select(*wanted)


def _spark_delimiter(spark: Any, path: str) -> str:
    """The separator of a CSV file's header line: the most frequent of , ; tab |."""
    first = spark.read.text(path).limit(1).collect()
    header = first[0][0] if first else ""
    return max((",", ";", "\t", "|"), key=header.count)


def spark_fingerprint(log: Any) -> str:
    """An order-independent digest of the rows computed by Spark (nothing collected)."""
    from pyspark.sql import functions as F

    row = log.select(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64(*log.columns).cast("decimal(38,0)")).alias("h"),
    ).collect()[0]
    return f"spark-xxhash64:{row['n']}:{row['h']}"


def _column_error(error: InvalidDataError, config: ExperimentConfig) -> ConfigError | None:
    """A missing column as an error of the YAML key that names it."""
    message = str(error)
    head = message.split(";")[0].split(" (columns:")[0]
    if "not found" not in head and "has no column" not in head:
        return None
    columns = config.data.columns
    for key in ("customer_id", "date", "amount"):
        column = getattr(columns, key)
        if column is not None and repr(column) in head:
            return ConfigError(f"data.columns.{key}: {message}", field=f"data.columns.{key}")
    return None


def _duckdb_options(config: ExperimentConfig) -> dict[str, Any] | None:
    options = {"memory_limit": config.data.memory_limit,
               "temp_directory": config.data.temp_directory}  # fmt: skip
    options = {name: value for name, value in options.items() if value is not None}
    return options or None


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the typed rows (values and order): the same for the same rows, whatever
    the file format they came from."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def _settings(config: ExperimentConfig) -> dict[str, Any]:
    """The column names and the period settings every step reads the log with (the
    log is typed already, so its duplicates are not looked at again)."""
    columns = config.data.columns
    return {
        "customer_id": columns.customer_id, "date": columns.date, "amount": columns.amount,
        "time_unit": config.periods.time_unit, "granularity": config.periods.granularity,
        "duplicates": "keep",
    }  # fmt: skip


def _summary(config: ExperimentConfig, transactions: Any) -> pd.DataFrame:
    from ..data.summary import calibration_holdout, summarize

    common = _settings(config)
    periods = config.periods
    engine = config.data.engine
    common["engine"] = "duckdb" if engine == "duckdb" else "pandas"
    if engine == "duckdb" and _duckdb_options(config):
        common["engine_options"] = _duckdb_options(config)
    if engine == "spark":
        common["engine"] = "spark"
    try:
        if periods.has_holdout:
            summary = calibration_holdout(
                transactions, calibration_end=periods.calibration_end,
                holdout_end=periods.holdout_end_date, after_end="drop",
                holdout_past_data=periods.holdout_past_data, **common,
            )  # fmt: skip
        else:
            summary = summarize(
                transactions, observation_end=periods.calibration_end, after_end="drop",
                **common,
            )  # fmt: skip
    except InvalidDataError as error:
        raise InvalidDataError(f"data: {error}") from None
    if engine == "spark":
        from ..data.spark_engine import collect_summary

        # the per-customer summary is computed once, here; every later step reads it
        summary = collect_summary(summary, config.data.columns.customer_id)
    return summary


def _with_covariates(config: ExperimentConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """The summary with the covariates the models name and the economics segment: from
    the per-customer file
    (data.customers), or from the transaction file where they are constant per
    customer; every customer of the summary must have them."""
    from ..data.customers import attach_attributes, read_attributes

    columns = config.customer_columns
    if not columns:
        return frame
    customers = config.data.customers
    try:
        if customers is not None:
            source = customers.path
            table = read_attributes(
                source, customers.customer_id or config.data.columns.customer_id, columns
            )
        else:
            source = str(config.data.path)
            table = read_attributes(source, config.data.columns.customer_id, columns,
                                    per_customer=False)  # fmt: skip
        return attach_attributes(frame, table, columns, Path(source).name)
    except InvalidDataError as error:
        field = "data.customers" if customers is not None else "data.path"
        raise InvalidDataError(f"{field}: {error}") from None


def _covariate_history(config: ExperimentConfig, transactions: Any) -> Any:
    """The customers with their time-varying covariates (data.covariate_history), from
    the same typed log and settings as the summary; None without the key."""
    from ..data.customers import read_covariate_table
    from ..data.dynamic import covariate_history
    from ..data.timeunits import duration_in_units

    source = config.data.covariate_history
    if source is None:
        return None
    own = config.data.columns.customer_id
    periods = config.periods
    try:
        table = read_covariate_table(source.path, source.customer_id or own, source.date)
        if source.customer_id not in (None, own):
            require_columns(table.columns, [source.customer_id], Path(source.path).name,
                            hint="Name its id column (data.covariate_history.customer_id).")
            table = table.rename(columns={source.customer_id: own})
        history = covariate_history(
            transactions, table, calibration_end=periods.calibration_end,
            holdout_end=periods.holdout_end_date if periods.has_holdout else None,
            covariate_date=source.date, after_end="drop",
            holdout_past_data=periods.holdout_past_data, **_settings(config),
        )  # fmt: skip
        # the predictions read the table up to the horizon (and the holdout's end): a
        # short table is said now, before any fit
        ahead = duration_in_units(config.clv.horizon, periods.time_unit)
        what = f"clv.horizon = {config.clv.horizon}"
        if "duration_holdout" in history.frame.columns:
            holdout = float(history.frame["duration_holdout"].max())
            ahead, what = (holdout, "the holdout") if holdout > ahead else (ahead, what)
        history.segments(history.columns[:1], history.columns[:1], history.T + ahead, what)
        return history
    except InvalidDataError as error:
        raise InvalidDataError(f"data.covariate_history: {error}") from None


class _OnHistory:
    """A model fitted on a covariate history, asked about the summary's customers: the
    evaluation, plots and tables pass the summary (or part of it), and the answer comes
    from the history, whose table carries the covariates over the holdout and horizon.
    Everything else is the model's own."""

    def __init__(self, model: Any, history: Any) -> None:
        self.model, self.history = model, history

    def __getattr__(self, name: str) -> Any:
        # only called for names not set on the wrapper: never for its own two (a copy
        # or pickle looks them up before __init__ ran), nor for the protocol's
        if name in ("model", "history") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def _ask(self, method: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        customers = self.history.frame.index
        if not pd.Index(data.index).isin(customers).all():
            raise InvalidDataError(
                f"{method}: the model answers for the covariate history's customers only."
            )
        result = getattr(self.model, method)(self.history, *args, **kwargs)
        return result.loc[pd.Index(data.index)]

    def expected_purchases(self, data: Any, t: float, **kwargs: Any) -> Any:
        return self._ask("expected_purchases", data, t, **kwargs)

    def probability_alive(self, data: Any, t: float = 0.0, **kwargs: Any) -> Any:
        return self._ask("probability_alive", data, t, **kwargs)

    def probability_purchases(self, data: Any, t: float, n: Any, **kwargs: Any) -> Any:
        return self._ask("probability_purchases", data, t, n, **kwargs)


def _opportunity_summary(
    config: ExperimentConfig, transactions: pd.DataFrame, period: str
) -> pd.DataFrame:
    """BG/BB histories (Fader, Hardie & Shang 2010) in calendar windows of ``period``."""
    from ..data.opportunities import calibration_holdout_opportunities, summarize_opportunities

    columns = config.data.columns
    common = {
        "customer_id": columns.customer_id, "date": columns.date, "amount": columns.amount,
        "period": period, "after_end": "drop", "duplicates": "keep",
    }  # fmt: skip
    periods = config.periods
    try:
        if periods.has_holdout:
            return calibration_holdout_opportunities(
                transactions, calibration_end=periods.calibration_end,
                holdout_end=periods.holdout_end_date, **common,
            )  # fmt: skip
        return summarize_opportunities(
            transactions, observation_end=periods.calibration_end, **common
        )
    except InvalidDataError as error:
        raise InvalidDataError(f"data (BG/BB periods of {period}): {error}") from None


def model_frames(
    config: ExperimentConfig, transactions: pd.DataFrame, frame: pd.DataFrame,
    history: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """The data each model is fitted on: the summary, BG/BB histories in its period, or
    the covariate history for a model with time-varying covariates."""
    frames: dict[str, Any] = {}
    by_period: dict[str, pd.DataFrame] = {}
    for spec in config.models:
        if spec.covariates is not None and spec.covariates.time_varying:
            frames[spec.name] = history
        elif spec.kind == "bgbb":
            period = spec.period or config.periods.time_unit
            if period not in by_period:
                by_period[period] = _opportunity_summary(config, transactions, period)
            frames[spec.name] = by_period[period]
        else:
            frames[spec.name] = frame
    return frames


# ------------------------------------------------------------------ models


def _new_model(spec: Any) -> Any:
    if spec.method == "mle":
        return registry.model_class(spec.kind)(**spec.settings())
    return registry.model_class(spec.kind, bayesian=True)(**spec.bayes_settings())


def _check_model_data(config: ExperimentConfig, frames: dict[str, pd.DataFrame]) -> None:
    """What a model's fit would refuse in its data, found before the first fit."""
    for spec in config.models:
        try:
            data = frames[spec.name]
            if hasattr(data, "segments"):  # a covariate history, checked as it was read
                missing = [c for c in spec.covariates.columns if c not in data.columns]
                if missing:
                    raise InvalidDataError(
                        f"{missing} are not columns of data.covariate_history "
                        f"({', '.join(data.columns)})."
                    )
                continue
            _new_model(spec).check_data(data)
        except InvalidDataError as error:
            raise InvalidDataError(f"model {spec.name!r}: {error}") from None


def _fit_models(
    config: ExperimentConfig, frames: dict[str, pd.DataFrame], log: _Log,
    progressbar: bool = False,
) -> dict[str, Any]:  # fmt: skip
    from ..exceptions import ConvergenceError

    models = {}
    for spec in config.models:
        with log.step(f"fit {spec.name} ({registry.get(spec.kind).label}, {spec.method})"):
            model = _new_model(spec)
            try:
                if spec.method == "mle":
                    model.fit(frames[spec.name])
                else:
                    with log.forwarding("clvmodels.bayes"):  # the sampler's progress lines
                        model.fit(
                            frames[spec.name], progressbar=progressbar,
                            **spec.fit_options(config.seed),
                        )  # fmt: skip
            except ConvergenceError as error:
                raise ConvergenceError(f"model {spec.name!r}: {error}") from None
            except InvalidDataError as error:
                raise InvalidDataError(f"model {spec.name!r}: {error}") from None
            models[spec.name] = model
            params = ", ".join(f"{k} {v:.4g}" for k, v in model.params_.items())
            what = "posterior means" if spec.method != "mle" else "estimates"
            log.line(
                f"  {spec.name}: {what} {params}; log-likelihood {model.log_likelihood_:.2f}"
            )
    return models


def model_summary(model: Any, level: float | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The parameter table and the fit statistics of a fitted model; the intervals at
    ``level``, by default each family's own (95 %, or a Bayesian model's ``hdi_prob``,
    as the report says)."""
    table = model.summary() if level is None else model.summary(level)
    stats = {
        "kind": model.kind,
        "log_likelihood": float(model.log_likelihood_),
        "aic": float(model.aic_),
        "bic": float(model.bic_),
        "n_customers": float(model.n_customers_),
        "n_patterns": int(model.n_patterns_),
        "converged": bool(model.converged_),
        "time_unit": getattr(model, "time_unit_", None),
        "method": getattr(model, "method_", "mle"),
    }
    if getattr(model, "method_", None) == "mcmc":
        diagnostics = model.diagnostics()
        stats["max_r_hat"] = float(diagnostics["r_hat"].max())
        stats["min_ess_bulk"] = float(diagnostics["ess_bulk"].min())
        stats["divergences"] = int(diagnostics.attrs["divergences"])
    return table, stats


# ------------------------------------------------------------------ predictions


def _with_interval(result: Any, prefix: str) -> dict[str, pd.Series]:
    """Prediction columns from one output of the contract: a Series, or ``estimate,
    lower, upper`` (and a posterior's ``sd``)."""
    if not isinstance(result, pd.DataFrame):
        return {prefix: result}
    columns = {prefix: result["estimate"]}
    if "sd" in result.columns:
        columns[f"{prefix}_sd"] = result["sd"]
    columns[f"{prefix}_lower"], columns[f"{prefix}_upper"] = result["lower"], result["upper"]
    return columns


def _horizon_in(config: ExperimentConfig, model: Any) -> float:
    """The CLV horizon in the model's time unit; whole opportunities for BG/BB."""
    from ..data.timeunits import duration_in_units

    unit = getattr(model, "time_unit_", None) or config.periods.time_unit
    units = duration_in_units(config.clv.horizon, unit)
    if getattr(model, "discrete_time", False):
        units = float(np.floor(units + 1e-9))
    return units


def _predictions(
    config: ExperimentConfig, models: dict[str, Any], frames: dict[str, pd.DataFrame],
    frame: pd.DataFrame, historical: pd.DataFrame | None, log: _Log,
) -> pd.DataFrame:  # fmt: skip
    from ..clv import predictive_clv

    clv = config.clv
    seed = config.seed
    draws = {"interval": clv.interval, "n_draws": clv.n_draws, "random_state": seed}
    suffix = "_cal" if "frequency_cal" in frame.columns else ""
    keep = [
        f"{name}{suffix}" for name in ("frequency", "recency", "T", "monetary_value")
        if f"{name}{suffix}" in frame.columns
    ] + [name for name in ("frequency_holdout", "monetary_value_holdout") if name in frame]
    columns: dict[str, pd.Series] = {
        name.removesuffix(suffix) if suffix else name: frame[name] for name in keep
    }
    spend_name = config.spend_model_name
    spend_model = models.get(spend_name) if spend_name else None
    for spec in config.models:
        model = models[spec.name]
        data = frames[spec.name]
        # a Bayesian prediction's interval is its HDI at the model's hdi_prob
        options = {"interval": model.hdi_prob} if spec.method != "mle" else draws
        if spec.kind in PURCHASE_KINDS:
            with log.step(f"predict {spec.name}"):
                columns.update(_with_interval(
                    model.expected_purchases(data, _horizon_in(config, model), **options),
                    f"{spec.name}_expected_purchases",
                ))  # fmt: skip
                columns[f"{spec.name}_probability_alive"] = point_estimate(
                    model.probability_alive(data)
                )
        elif spec.kind == "gamma_gamma":
            with log.step(f"predict {spec.name}"):
                columns.update(_with_interval(
                    model.expected_spend(frame, **options), f"{spec.name}_expected_spend"
                ))  # fmt: skip
    if spend_model is not None:
        for name in config.clv_purchase_models:
            with log.step(f"CLV {name} x {spend_name}"):
                bayesian = [m for m in (models[name], spend_model) if hasattr(m, "idata_")]
                model, data = models[name], frames[name]
                if isinstance(model, _OnHistory):
                    model, data = model.model, model.history
                value = predictive_clv(
                    model, spend_model, data, horizon=clv.horizon,
                    discount_rate=clv.discount_rate, margin=clv.margin,
                    interval=bayesian[0].hdi_prob if bayesian else clv.interval,
                    n_draws=clv.n_draws, random_state=seed,
                )  # fmt: skip
                columns.update(_with_interval(value, f"{name}_clv"))
    if historical is not None:
        columns["historical_clv"] = _aligned_history(historical["value"], frame.index)
    # BG/BB frames hold the same customers (acquired by the end of calibration)
    result = pd.DataFrame({k: v.reindex(frame.index) for k, v in columns.items()})
    result.index.name = "customer_id"
    return result


def covariate_effects(config: ExperimentConfig, frame: pd.DataFrame,
                      predictions: pd.DataFrame,
                      models: dict[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Per model with covariates: its mean predictions by group of each covariate (a
    category or value, or a quartile of a numeric covariate with more than ten
    values): what CLV by channel, say, looks like under the model. For time-varying
    covariates, the mean predictions with the table as given and with each covariate
    at 0 over the future (:func:`_scenario_effects`)."""
    tables = {}
    for spec in config.models:
        if spec.covariates is None:
            continue
        if spec.covariates.time_varying:
            tables[spec.name] = _scenario_effects(config, spec, models, predictions)
            continue
        measures = {
            "expected_purchases": f"{spec.name}_expected_purchases",
            "probability_alive": f"{spec.name}_probability_alive",
            "clv": f"{spec.name}_clv",
        }
        measures = {k: v for k, v in measures.items() if v in predictions.columns}
        parts = []
        for column in spec.covariates.columns:
            values = frame[column].reindex(predictions.index)
            types = pd.api.types
            numeric = types.is_numeric_dtype(values) and not types.is_bool_dtype(values)
            if numeric and values.nunique() > 10:
                groups = pd.qcut(values, 4, duplicates="drop").astype(str)
            else:
                groups = values.astype(str)
            table = predictions[list(measures.values())].groupby(groups.to_numpy()).mean()
            table.columns = [f"mean_{k}" for k in measures]
            table.insert(0, "customers", groups.value_counts().reindex(table.index).to_numpy())
            table.insert(0, "value", table.index)
            table.insert(0, "covariate", column)
            parts.append(table.reset_index(drop=True))
        tables[spec.name] = pd.concat(parts, ignore_index=True)
    return tables


def _scenario_effects(config: ExperimentConfig, spec: Any, models: dict[str, Any],
                      predictions: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Mean predictions over the horizon with the covariate table as given, and with
    each time-varying covariate at 0 in every period starting after a customer's
    observation end: what the covariate adds to expected purchases and CLV."""
    import dataclasses

    from ..clv import predictive_clv
    from ..data.timeunits import time_unit_nanoseconds

    model = models[spec.name]
    history = model.history
    horizon = _horizon_in(config, model)
    unit = time_unit_nanoseconds(history.time_unit)
    ends = history.origin_ns + np.round(history.T * unit).astype(np.int64)
    future = history.row_start_ns >= ends[history.row_customer]
    spend = models.get(config.spend_model_name) if config.spend_model_name else None
    rows = []
    given = {"expected_purchases": f"{spec.name}_expected_purchases", "clv": f"{spec.name}_clv"}
    for column in spec.covariates.columns:
        values = history.row_values.copy()
        values[future, history.columns.index(column)] = 0.0
        without = dataclasses.replace(history, row_values=values)
        means = {"expected_purchases": float(model.model.expected_purchases(
            without, horizon).mean())}  # fmt: skip
        if given["clv"] in predictions.columns and spend is not None:
            clv = config.clv
            means["clv"] = float(predictive_clv(
                model.model, spend, without, horizon=clv.horizon,
                discount_rate=clv.discount_rate, margin=clv.margin).mean())  # fmt: skip
        for label, measured in (("as in the table", {k: float(predictions[v].mean())
                                                     for k, v in given.items()
                                                     if v in predictions.columns}),
                                ("0 after observation", means)):  # fmt: skip
            rows.append({"covariate": column, "value": label, "customers": len(history.frame),
                         **{f"mean_{k}": v for k, v in measured.items()}})  # fmt: skip
    return pd.DataFrame(rows)


def _aligned_history(value: pd.Series, customers: pd.Index) -> pd.Series:
    """Historical value per customer of the summary. Every customer of the summary
    bought by the end of calibration, so a customer missing here is a fault (ids read
    two ways), never a zero to fill in."""
    missing = customers.difference(value.index)
    if len(missing):
        raise InvalidDataError(
            f"historical CLV: {len(missing):,} of {len(customers):,} customers of the "
            f"summary have no history (e.g. customer {missing[0]!r}); the ids of the two "
            "do not match. Please report this with the data's column types."
        )
    return value.reindex(customers)


def _historical(config: ExperimentConfig, transactions: pd.DataFrame) -> pd.DataFrame | None:
    from ..historical import historical_clv

    columns = config.data.columns
    if columns.amount is None:
        return None
    return historical_clv(
        transactions, as_of=config.periods.calibration_end, customer_id=columns.customer_id,
        date=columns.date, amount=columns.amount, margin=config.clv.margin,
        time_unit=config.periods.time_unit, granularity=config.periods.granularity,
        duplicates="keep",
    )  # fmt: skip


# ------------------------------------------------------------------ economics


def _acquisition_costs(config: ExperimentConfig, frame: pd.DataFrame) -> Any:
    """The economics block's costs (a mapping per segment, or a Series per customer),
    checked with the segments and the retention periods against the summary before any
    fit."""
    from ..economics import check_segments

    economics = config.economics
    if economics is None:
        return None
    costs: Any = economics.acquisition_costs
    field = "economics.acquisition_costs"
    if not isinstance(costs, dict):
        costs = _read_costs(config, frame)
        field += ".path"
    segments = _segment_column(config, frame)
    if isinstance(costs, dict) and segments is not None:
        # the file's keys are text; a numeric segment column is named by its values
        label = {}
        for value in pd.unique(segments.dropna()):
            label[str(value)] = value
            if isinstance(value, float | np.floating) and float(value).is_integer():
                label[str(int(value))] = value  # the file's "1" names a column's 1.0
        costs = {label.get(key, key): value for key, value in costs.items()}
    try:
        check_segments(frame, acquisition_costs=costs, segments=segments,
                       cohort=economics.cohort, name="economics")  # fmt: skip
    except InvalidDataError as error:
        raise InvalidDataError(f"{field}: {error}") from None
    _check_retention(config, frame)
    return costs


def _check_retention(config: ExperimentConfig, frame: pd.DataFrame) -> None:
    """Some customer must be observed for a whole retention period."""
    from ..data.timeunits import duration_in_units

    economics = config.economics
    assert economics is not None
    period = economics.retention_period or f"1{economics.retention_cohort}"
    length = duration_in_units(period, config.periods.time_unit, "retention_period")
    observed = frame["T_cal" if "T_cal" in frame.columns else "T"]
    if not (observed >= length - 1e-9).any():
        raise InvalidDataError(
            f"economics.retention_period: no customer is observed for a whole period of "
            f"{period} ({length:g} {config.periods.time_unit}; the longest observation is "
            f"{observed.max():g}); give a shorter retention_period or retention_cohort."
        )


def _segment_column(config: ExperimentConfig, frame: pd.DataFrame) -> pd.Series | None:
    economics = config.economics
    if economics is None or economics.segments is None:
        return None
    return frame[economics.segments]


def _read_costs(config: ExperimentConfig, frame: pd.DataFrame) -> Any:
    """Costs from a file: totals per segment (a mapping) or a Series per customer read
    with the transaction files' id typing."""
    from ..data.customers import attach_attributes, read_attributes

    spec = config.economics.acquisition_costs  # type: ignore[union-attr]
    name = Path(spec.path).name
    try:
        if spec.by == "customer":
            key = spec.key or config.data.columns.customer_id
            table = read_attributes(spec.path, key, [spec.cost])
            missing = ~frame.index.isin(table.index)
            if missing.any():
                raise InvalidDataError(
                    f"{name}: {int(missing.sum()):,} of {len(frame):,} customers have no "
                    f"cost (e.g. customer {frame.index[missing][0]!r}); give every "
                    "customer a row (0 if winning them cost nothing)."
                )
            return attach_attributes(frame[[]], table, [spec.cost], name)[spec.cost]
        key = spec.key or "segment"
        table = (pd.read_parquet(spec.path) if data_format(Path(spec.path)) == "parquet"
                 else pd.read_csv(spec.path, dtype={key: str}))  # fmt: skip
        require_columns(table.columns, [key, spec.cost], name)
        repeated = table[key][table[key].duplicated()]
        if len(repeated):
            raise InvalidDataError(
                f"{name}: segment {repeated.iloc[0]!r} has more than one row; give one "
                "total per segment."
            )
        values = pd.to_numeric(table[spec.cost], errors="coerce")
        bad = values.isna() & table[spec.cost].notna()
        if bad.any():
            raise InvalidDataError(
                f"{name}: column {spec.cost!r} has {int(bad.sum())} value(s) that are not "
                f"numbers (e.g. {table[spec.cost][bad].iloc[0]!r} for segment "
                f"{table[key][bad].iloc[0]!r})."
            )
        return dict(zip(table[key].astype(str), values, strict=True))
    except InvalidDataError as error:
        raise InvalidDataError(f"economics.acquisition_costs.path: {error}") from None


def _economics(config: ExperimentConfig, models: dict[str, Any],
               frames: dict[str, pd.DataFrame], transactions: pd.DataFrame,
               costs: Any) -> dict[str, pd.DataFrame]:  # fmt: skip
    """The segment table, the payback curves and the retention curves by cohort."""
    from ..economics import cohort_retention, payback_curves, segment_value

    economics, clv = config.economics, config.clv
    assert economics is not None
    name = config.economics_purchase_model
    spend_name = config.spend_model_name
    assert name is not None and spend_name is not None
    model, spend, frame = models[name], models[spend_name], frames[name]
    columns = config.data.columns
    read = {"transactions": transactions, "customer_id": columns.customer_id,
            "date": columns.date}  # fmt: skip
    segments = {"segments": _segment_column(config, frame), "cohort": economics.cohort,
                "acquisition_costs": costs, "horizon": clv.horizon,
                "margin": economics.margin or clv.margin, "amount": columns.amount}  # fmt: skip
    table = segment_value(model, spend, frame, **read, **segments,
                          discount_rate=clv.discount_rate, interval=clv.interval,
                          n_draws=clv.n_draws, random_state=config.seed)  # fmt: skip
    curves = payback_curves(model, spend, frame, **read, **segments)
    retention = cohort_retention(model, frame, **read, cohort=economics.retention_cohort,
                                 period=economics.retention_period, interval=clv.interval,
                                 n_draws=clv.n_draws, random_state=config.seed)  # fmt: skip
    return {"segments": table, "payback_curves": curves, "retention": retention}


# ------------------------------------------------------------------ evaluation


def _evaluation(
    config: ExperimentConfig, models: dict[str, Any], frames: dict[str, pd.DataFrame],
    frame: pd.DataFrame, transactions: pd.DataFrame, log: _Log,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    from ..evaluation import conditional_expectations, evaluate, tracking

    specs = {s.name: registry.get(s.kind) for s in config.models}
    continuous = [name for name, spec in specs.items() if spec.continuous_purchase]
    discrete = [name for name, spec in specs.items() if spec.role == "purchase" and spec.discrete]
    purchase = {name: models[name] for name in continuous}
    if not (continuous or discrete) or not config.periods.has_holdout:
        return {}
    columns = config.data.columns
    spend_name = config.spend_model_name
    tables = {}
    with log.step("evaluate on the holdout"):
        metrics = evaluate(
            purchase or {}, frame, spend_model=models.get(spend_name) if spend_name else None,
            baselines=config.evaluation.baselines, transactions=transactions,
            customer_id=columns.customer_id, date=columns.date, amount=columns.amount,
            duplicates="keep", bins=config.evaluation.bins,
            random_state=config.seed,
        )  # fmt: skip
        rows = [metrics] if continuous else []
        for name in discrete:
            # BG/BB counts periods with a purchase, so it is scored on its own outcome
            rows.append(evaluate(
                {name: models[name]}, frames[name],
                spend_model=models.get(spend_name) if spend_name else None, baselines=[],
            ))  # fmt: skip
        metrics = pd.concat(rows) if len(rows) > 1 else rows[0]
        if config.evaluation.metrics is not None:
            metrics = metrics[[m for m in config.evaluation.metrics if m in metrics.columns]]
        tables["metrics"] = metrics
        if continuous:
            tables["conditional_expectations"] = conditional_expectations(purchase, frame)
    if not continuous:
        return tables
    if config.data.engine == "spark":
        log.line("  tracking: not computed with data.engine spark (it needs the daily "
                 "transactions on the driver)")  # fmt: skip
        return tables
    varying = [name for name, model in purchase.items() if isinstance(model, _OnHistory)]
    if varying:
        # the cohort curve of a model with time-varying covariates needs each future
        # customer's covariates: not defined for customers not yet acquired
        log.line(f"  tracking: without {', '.join(varying)} (time-varying covariates)")
        purchase = {k: v for k, v in purchase.items() if k not in varying}
        if not purchase:
            return tables
    with log.step("tracking"):
        tables["tracking"] = tracking(
            purchase, transactions, calibration_end=config.periods.calibration_end,
            holdout_end=config.periods.holdout_end_date, customer_id=columns.customer_id,
            date=columns.date, time_unit=config.periods.time_unit,
            granularity=config.periods.granularity, duplicates="keep",
            covariates=frame if config.covariate_columns else None,
        )  # fmt: skip
    return tables


# ------------------------------------------------------------------ writing


def _clean(value: Any) -> Any:
    """JSON-ready plain data: NaN and infinities become null, numpy scalars Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | pd.Timestamp):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> None:
    """Deterministic JSON: sorted keys, two-space indent, final newline."""
    path.write_text(json.dumps(_clean(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, float_format="%.10g", lineterminator="\n")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet through DuckDB (a dependency already), index as the first column."""
    import duckdb

    flat = frame.reset_index()
    connection = duckdb.connect()
    try:
        connection.register("frame_to_write", flat)
        target = str(path).replace("'", "''")
        connection.execute(f"COPY frame_to_write TO '{target}' (FORMAT parquet)")
    finally:
        connection.close()


#: the file that makes a folder a run of clvmodels: only such folders are replaced
RUN_MARKER = ".clvmodels-run"


def _staging_dir(target: Path) -> Path:
    """A new staging folder beside ``target``, marked with this process's id so that a
    later run can tell one left by a killed process from one still being written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    marker = {"clvmodels": __version__, "pid": os.getpid(), "host": platform.node()}
    (staging / RUN_MARKER).write_text(json.dumps(marker), encoding="utf-8")
    return staging


def _remove_abandoned_staging(parent: Path) -> None:
    """Remove staging and retired folders of runs whose process is gone (killed with
    SIGKILL, or by a power cut): clvmodels' own marker, this host, no such process."""
    for folder in parent.glob(".*.partial-*"):
        _remove_if_abandoned(folder)
    for folder in parent.glob(".*.old-*"):
        inner = [p for p in folder.iterdir()] if folder.is_dir() else []
        if len(inner) == 1 and _is_run(inner[0]):
            _remove_if_abandoned(inner[0], container=folder)


def _remove_if_abandoned(folder: Path, container: Path | None = None) -> None:
    try:
        marker = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))
        pid, host = int(marker["pid"]), str(marker["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # not clvmodels' own, or still being created: left alone
    if host != platform.node() or _process_alive(pid):
        return
    shutil.rmtree(container or folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _is_run(folder: Path) -> bool:
    return folder.is_dir() and (folder / RUN_MARKER).is_file()


def _move_into_place(staging: Path, target: Path, overwrite: bool) -> None:
    if target.exists():
        if not overwrite:
            raise ConfigError(
                f"output.dir: {target} appeared while the run was going; the new run is "
                "discarded. Choose another directory (--output) or pass --overwrite.",
                field="output.dir",
            )
        check_output_dir(target, overwrite)  # still a run of clvmodels?
        # the old run survives until the new one is in place
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        try:
            os.replace(target, retired / target.name)
        except BaseException:
            retired.rmdir()  # still empty: leave no trace
            raise
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(retired / target.name, target)
            retired.rmdir()
            raise
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)


def check_output_dir(target: Path, overwrite: bool) -> None:
    """Refuse an existing folder unless ``overwrite``, and even then anything that is
    not a run of clvmodels (its marker file) or an empty folder: the working directory,
    its parents, a folder of the user's own files."""
    if not target.exists():
        return
    if not overwrite:
        raise ConfigError(
            f"output.dir: {target} already exists; choose another directory (--output DIR) "
            "or replace it (--overwrite, or output.overwrite: true)",
            field="output.dir",
        )
    if not target.is_dir():
        raise ConfigError(f"output.dir: {target} is a file, not a directory", field="output.dir")
    here = Path.cwd().resolve()
    resolved = target.resolve()
    if resolved == here or resolved in here.parents:
        raise ConfigError(
            f"output.dir: {target} is the working directory or one of its parents; "
            "--overwrite replaces only a run folder. Choose a folder of its own.",
            field="output.dir",
        )
    if _is_run(target) or not any(target.iterdir()):
        return
    raise ConfigError(
        f"output.dir: {target} is not a run of clvmodels (it has no {RUN_MARKER} file), "
        "so --overwrite will not replace it: its files would be lost. Choose another "
        "directory, or empty or remove this one yourself.",
        field="output.dir",
    )


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises SystemExit and SIGINT KeyboardInterrupt while the run goes, so the
    staging folder is removed; each is also remembered and raised again when the next
    step starts or ends, because Python ignores an exception raised inside a finalizer
    (a ``__del__`` running when the signal arrives) and the run would then finish as if
    never stopped. Only in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        _STOPPED[0] = signum
        _raise_if_stopped()

    _STOPPED[0] = 0
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _STOPPED[0] = 0


# The signal that stopped the run being written (0: none), see _terminate_as_interrupt.
_STOPPED = [0]


def _raise_if_stopped() -> None:
    import signal

    if _STOPPED[0] == signal.SIGINT:
        raise KeyboardInterrupt
    if _STOPPED[0]:
        raise SystemExit(128 + _STOPPED[0])


# ------------------------------------------------------------------ the run


def run_experiment(
    config: ExperimentConfig,
    *,
    output_dir: str | Path | None = None,
    overwrite: bool | None = None,
    log: Callable[[str], None] | None = None,
    progressbar: bool = False,
) -> RunResult:
    """Run an experiment and write its run directory.

    Parameters
    ----------
    config : ExperimentConfig
        From :func:`clvmodels.experiments.load_config`.
    output_dir : str or Path, optional
        Replaces ``config.output.dir``.
    overwrite : bool, optional
        Replaces ``config.output.overwrite``.
    log : callable, optional
        Receives one line per step (e.g. ``print``); silent by default.
    progressbar : bool, default False
        Show the sampler's progress bar (Bayesian models).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from clvmodels.experiments import parse_config, run_experiment
    >>> config = parse_config({
    ...     "name": "demo", "data": {"dataset": "cdnow_sample"},
    ...     "periods": {"time_unit": "W", "calibration_end": "1997-09-30",
    ...                 "holdout_end": "1998-06-30"},
    ...     "models": [{"name": "bgnbd", "kind": "bgnbd"}],
    ...     "evaluation": {"baselines": ["naive"]}, "output": {"plots": False}})
    >>> result = run_experiment(config, output_dir=pathlib.Path(tempfile.mkdtemp()) / "run")
    >>> round(float(result.metrics.loc["bgnbd", "mae"]), 4)
    0.7855
    """
    target = Path(output_dir) if output_dir is not None else config.output_dir()
    overwrite = config.output.overwrite if overwrite is None else overwrite
    check_output_dir(target, overwrite)
    tracked = config.tracking.mlflow is not None and config.tracking.mlflow.enabled
    if tracked:
        from .tracking import import_mlflow

        import_mlflow()  # a missing MLflow fails now, not after the run is written
    steps = _Log(log)
    with _terminate_as_interrupt():
        staging = _staging_dir(target)
        try:
            result = _run(config, staging, steps, progressbar)
            metadata = _write_run_metadata(
                config, staging, steps, result["fingerprint"], result["counts"]
            )
            with steps.step("report"):
                from .report import build_report

                write_manifest(config, staging, result, metadata)
                build_report(staging)
            _move_into_place(staging, target, overwrite)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    steps.line(f"done: {target}")
    run = RunResult(
        output_dir=target, models=result["models"], predictions=result["predictions"],
        metrics=result["metrics"], timings=dict(steps.timings),
    )  # fmt: skip
    if tracked:
        from .tracking import log_to_mlflow

        with steps.step("mlflow"):
            log_to_mlflow(config, run)
    return run


def _run(
    config: ExperimentConfig, out: Path, log: _Log, progressbar: bool = False
) -> dict[str, Any]:
    import yaml

    (out / "config.yaml").write_text(
        yaml.safe_dump(config.resolved(), sort_keys=False), encoding="utf-8"
    )
    # Every data problem is found in this step, before the first model is fitted.
    with log.step("data"):
        if config.data.engine == "spark":
            transactions = load_spark_transactions(config)
            digest = spark_fingerprint(transactions)
        else:
            transactions = load_transactions(config)
            digest = fingerprint(transactions)
        frame = _with_covariates(config, _summary(config, transactions))
        history = _covariate_history(config, transactions)
        frames = model_frames(config, transactions, frame, history)
        _check_model_data(config, frames)
        historical = _historical(config, transactions)
        costs = _acquisition_costs(config, frame)
        counts = _data_counts(config, transactions, frame)
        for line in _count_lines(counts, config):
            log.line(line)
    models = _fit_models(config, frames, log, progressbar)
    # later steps ask a model fitted on the covariate history about the summary's
    # customers; it answers from the history
    for spec in config.models:
        if frames[spec.name] is history and history is not None:
            models[spec.name] = _OnHistory(models[spec.name], history)
            frames[spec.name] = frame
    predictions = _predictions(config, models, frames, frame, historical, log)
    tables = _evaluation(config, models, frames, frame, transactions, log)
    if config.economics is not None:
        with log.step("economics"):
            tables.update(_economics(config, models, frames, transactions, costs))
    with log.step("write tables"):
        _write_outputs(config, out, models, predictions, tables, counts)
    comparison = _comparison(config, predictions)
    if comparison is not None:
        _write_table(comparison.segments, out / "tables" / "clv_segments.csv")
    for name, table in covariate_effects(config, frame, predictions, models).items():
        _write_table(table.set_index("covariate"), out / "tables" / f"covariates_{name}.csv")
    plots: dict[str, str] = {}
    if config.output.plots:
        with log.step("plots"):
            from .figures import draw_plots

            plots = draw_plots(config, models, frames, predictions, tables, comparison, out)
    # the caller gets the fitted models themselves
    models = {name: getattr(m, "model", m) if isinstance(m, _OnHistory) else m
              for name, m in models.items()}  # fmt: skip
    return {
        "models": models, "predictions": predictions, "metrics": tables.get("metrics"),
        "tables": tables, "comparison": comparison, "plots": plots, "fingerprint": digest,
        "counts": counts,
    }  # fmt: skip


def _data_counts(
    config: ExperimentConfig, transactions: pd.DataFrame, frame: pd.DataFrame
) -> dict[str, Any]:
    """What the run read, what it left out and why (``run.json`` and the log)."""
    suffix = "_cal" if "frequency_cal" in frame.columns else ""
    if isinstance(transactions, pd.DataFrame):
        read = transactions.attrs.get("clvmodels_read", {})
        counts: dict[str, Any] = {
            "rows_read": int(read.get("rows", len(transactions))),
            "duplicate_rows": int(read.get("duplicate_rows", 0)),
            "duplicates_dropped": int(read.get("duplicates_dropped", 0)),
            **_left_out(config, transactions),
        }
    else:  # Spark: what the summary's validation pass counted (the log stays in Spark)
        rows = frame.attrs.get("clvmodels_rows", {})
        counts = {
            "rows_read": int(rows.get("rows_read", 0)),
            "duplicate_rows": int(rows.get("duplicate_rows", 0)),
            "duplicates_dropped": int(rows.get("duplicates_dropped", 0)),
            "rows_after_end": int(rows.get("rows_after_end", 0)),
            "rows_of_customers_acquired_later": None,  # not counted: a join in Spark
        }
    counts.update({
        "customers": len(frame),
        "repeat_transactions_calibration": int(frame[f"frequency{suffix}"].sum()),
        "patterns": int(frame.groupby([f"frequency{suffix}", f"recency{suffix}", f"T{suffix}"])
                        .ngroups),
    })  # fmt: skip
    if "frequency_holdout" in frame.columns:
        counts["repeat_transactions_holdout"] = int(frame["frequency_holdout"].sum())
    settings = frame.attrs.get("clvmodels", {})
    for key in ("calibration_end", "holdout_end", "observation_end"):
        if key in settings:
            counts[key] = str(settings[key])
    return counts


def _left_out(config: ExperimentConfig, transactions: pd.DataFrame) -> dict[str, int]:
    """Rows of the log that no summary uses: after the last end date, and (with a
    holdout) those of customers whose first purchase came after calibration_end."""
    from ..data.semantics import parse_end

    periods = config.periods
    dates = transactions[config.data.columns.date]
    last = periods.holdout_end_date if periods.has_holdout else periods.calibration_end
    if last is None:
        return {"rows_after_end": 0, "rows_of_customers_acquired_later": 0}
    after = dates.to_numpy() > np.datetime64(parse_end(last, "end").last_ns, "ns")
    result = {"rows_after_end": int(after.sum()), "rows_of_customers_acquired_later": 0}
    if periods.has_holdout:
        cal_end = parse_end(periods.calibration_end, "calibration_end")
        ids = transactions[config.data.columns.customer_id].to_numpy()
        first = dates.groupby(ids).transform("min")
        cal_ns = np.datetime64(cal_end.last_ns, "ns")
        later = (first.to_numpy() > cal_ns) & ~after
        result["rows_of_customers_acquired_later"] = int(later.sum())
    return result


def _count_lines(counts: dict[str, Any], config: ExperimentConfig) -> list[str]:
    lines = [
        f"  {counts['rows_read']:,} rows read, {counts['customers']:,} customers, time unit "
        f"{config.periods.time_unit}"
    ]
    if counts["duplicate_rows"]:
        what = "dropped" if counts["duplicates_dropped"] else "kept (data.duplicates)"
        lines.append(f"  {counts['duplicate_rows']:,} exact duplicate rows {what}")
    if counts["rows_after_end"]:
        lines.append(f"  {counts['rows_after_end']:,} rows after the last end date left out")
    if counts.get("rows_of_customers_acquired_later"):
        lines.append(
            f"  {counts['rows_of_customers_acquired_later']:,} rows of customers whose first "
            "purchase came after calibration_end left out"
        )
    return lines


def _write_outputs(
    config: ExperimentConfig, out: Path, models: dict[str, Any], predictions: pd.DataFrame,
    tables: dict[str, pd.DataFrame], counts: dict[str, Any],
) -> None:  # fmt: skip
    (out / "tables").mkdir()
    fits = {}
    for name, model in models.items():
        folder = out / "models" / name
        folder.mkdir(parents=True)
        model.save(folder / ("model.nc" if hasattr(model, "idata_") else "model.json"))
        table, stats = model_summary(model)
        fits[name] = stats
        write_json(folder / "summary.json", {
            "parameters": table.to_dict(orient="index"), "fit": stats,
        })  # fmt: skip
        _write_table(table, folder / "summary.csv")
        _write_table(table, out / "tables" / f"parameters_{name}.csv")
    _write_table(pd.DataFrame(fits).T.rename_axis("model"), out / "tables" / "fit.csv")
    _write_table(
        pd.Series(counts, name="value").rename_axis("quantity").to_frame(),
        out / "tables" / "data.csv",
    )
    metrics = tables.get("metrics")
    write_json(out / "metrics.json", {
        "experiment": config.name,
        "seed": config.seed,
        "holdout": _holdout_totals(config, predictions) if metrics is not None else None,
        "metrics": metrics.to_dict(orient="index") if metrics is not None else {},
        "fit": fits,
    })  # fmt: skip
    if metrics is not None:
        _write_table(metrics, out / "metrics.csv")
        _write_table(metrics, out / "tables" / "metrics.csv")
    else:
        _write_table(pd.DataFrame(fits).T.rename_axis("model"), out / "metrics.csv")
    for name in ("conditional_expectations", "tracking", "payback_curves", "retention"):
        if name in tables:
            _write_table(tables[name], out / "tables" / f"{name}.csv")
    if "segments" in tables:
        _write_table(tables["segments"], out / "segments.csv")
    _write_table(predictions, out / "predictions.csv")
    write_parquet(predictions, out / "predictions.parquet")
    top = _top_customers(config, predictions)
    if top is not None:
        _write_table(top, out / "tables" / "top_customers.csv")


def _holdout_totals(config: ExperimentConfig, predictions: pd.DataFrame) -> dict[str, Any]:
    return {
        "calibration_end": config.periods.calibration_end,
        "holdout_end": config.periods.holdout_end_date,
        "actual_repeat_transactions": float(predictions["frequency_holdout"].sum()),
    }


def _primary_clv(config: ExperimentConfig, predictions: pd.DataFrame) -> str | None:
    for name in config.clv_purchase_models:
        if f"{name}_clv" in predictions.columns:
            return name
    return None


def _top_customers(config: ExperimentConfig, predictions: pd.DataFrame) -> pd.DataFrame | None:
    name = _primary_clv(config, predictions)
    if name is None:
        return None
    # the CLV the rows are ranked by comes first (right after the customer id), then
    # its uncertainty, then the model's other predictions and the customer's history
    clv = [f"{name}_clv", *(f"{name}_clv_{part}" for part in ("sd", "lower", "upper"))]
    columns = [c for c in clv if c in predictions.columns]
    columns += [
        c for c in predictions.columns if c.startswith(f"{name}_") and c not in columns
    ] + [
        c for c in ("frequency", "recency", "T", "monetary_value", "historical_clv")
        if c in predictions.columns
    ]  # fmt: skip
    return predictions.sort_values(f"{name}_clv", ascending=False, kind="stable")[columns].head(20)


def _comparison(config: ExperimentConfig, predictions: pd.DataFrame) -> Any:
    from ..historical import compare_clv

    name = _primary_clv(config, predictions)
    if name is None or "historical_clv" not in predictions.columns:
        return None
    return compare_clv(
        predictions["historical_clv"], predictions[f"{name}_clv"],
        probability_alive=predictions[f"{name}_probability_alive"],
    )  # fmt: skip


def _package_versions(config: ExperimentConfig) -> dict[str, str]:
    """Versions of the packages the run's numbers and plots came from, by package name
    (read from the installed metadata, so nothing is imported for it)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["numpy", "scipy", "pandas", "duckdb"]
    if config.output.plots:
        names.append("matplotlib")
    if any(spec.method != "mle" for spec in config.models):
        names += ["pymc", "arviz"]
        samplers = {spec.sampler.sampler for spec in config.models if spec.sampler}
        names += sorted(samplers & {"nutpie", "numpyro"})
    if config.data.engine == "spark":
        names.append("pyspark")
    found = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _write_run_metadata(
    config: ExperimentConfig, out: Path, log: _Log, digest: str, counts: dict[str, Any]
) -> dict[str, Any]:
    metadata = {
        "experiment": config.name,
        "run_date": log.started.isoformat(),
        "clvmodels_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **_package_versions(config),
        "seed": config.seed,
        "data_fingerprint": digest,
        "data": counts,
        "command": " ".join(sys.argv) if sys.argv else None,
        # a list, not an object: run.json is written with sorted keys, and the steps
        # are read in the order they ran
        "timings_seconds": [
            {"step": step, "seconds": seconds} for step, seconds in log.timings.items()
        ],
    }  # fmt: skip
    write_json(out / "run.json", metadata)
    return metadata


# ------------------------------------------------------------------ manifest (report)

_UNIT_NAMES = {
    "h": "hours", "D": "days", "W": "weeks", "M": "months", "Q": "quarters", "Y": "years",
}


def _duration_text(duration: str) -> str:
    """A configured duration for people: ``"12M"`` reads as ``12 months``.

    Examples
    --------
    >>> _duration_text("12M"), _duration_text("1Y"), _duration_text("1.5Y"), _duration_text("52W")
    ('12 months', '1 year', '1.5 years', '52 weeks')
    """
    from .config import parse_duration

    count, unit = parse_duration(duration)
    name = _UNIT_NAMES[unit]
    return f"{count:g} {name[:-1] if count == 1 else name}"


def _table(file: str, caption: str, max_rows: int = 50) -> dict[str, Any]:
    return {"file": file, "caption": caption, "max_rows": max_rows}


def _plot(plots: dict[str, str], key: str, caption: str) -> list[dict[str, str]]:
    return [{"file": plots[key], "caption": caption}] if key in plots else []


def _summary_kind(spec: Any) -> str:
    """What a model's parameter table holds, by how it was fitted."""
    if spec.method == "mle":
        return "estimates, standard errors and 95 % intervals"
    hdi = (spec.sampler or SamplerConfig()).hdi_prob
    return f"posterior means, standard deviations and {hdi:.0%} highest-density intervals"


def _fit_description(spec: Any, stats: dict[str, Any]) -> str:
    """One sentence on how ``spec`` was fitted: the method, for MCMC the sampler, its
    settings and diagnostics (``stats`` from :func:`model_summary`)."""
    if spec.method == "mle":
        return (
            f"{spec.name}: maximum likelihood; intervals from the inverse Hessian (delta "
            "method on the log scale)."
        )
    sampler = spec.sampler or SamplerConfig()
    priors = "the priors given in the configuration" if spec.priors else "default priors"
    if spec.method == "map":
        return (
            f"{spec.name}: posterior mode under {priors}, with a Laplace approximation "
            f"({sampler.draws:,} draws) for the intervals."
        )
    text = (
        f"{spec.name}: posterior under {priors}, sampled by NUTS (sampler "
        f"{sampler.sampler!r}, {sampler.chains} chains of {sampler.tune:,} warm-up and "
        f"{sampler.draws:,} kept draws, target acceptance {sampler.target_accept:g})"
    )
    if "max_r_hat" in stats:
        text += (
            f"; largest r_hat {stats['max_r_hat']:.3f}, smallest bulk ESS "
            f"{stats['min_ess_bulk']:,.0f}, {stats['divergences']:,} divergent transitions"
        )
    return text + "."


def write_manifest(
    config: ExperimentConfig, out: Path, result: dict[str, Any], metadata: dict[str, Any]
) -> None:
    """Describe the report's sections (``manifest.json``), read by ``build_report``."""
    periods, clv = config.periods, config.clv
    unit = _UNIT_NAMES.get(periods.time_unit, periods.time_unit)
    plots: dict[str, str] = result["plots"]
    counts = result["counts"]
    source = config.data.dataset or Path(config.data.path or "").name
    if periods.has_holdout:
        period_text = (
            f"Calibration through {periods.calibration_end}, holdout through "
            f"{periods.holdout_end_date} (both inclusive); customers acquired after the "
            "calibration period are left out."
        )
    else:
        period_text = (
            f"Observation through {periods.calibration_end or 'the last transaction'}; "
            "no holdout, so the run fits and predicts without evaluation."
        )
    sections = [{
        "id": "data", "title": "Data",
        "text": (
            f"Source: {source} ({counts['rows_read']:,} transaction rows, "
            f"{counts['customers']:,} customers). Time is measured in {unit}; purchases "
            f"within the same {_UNIT_NAMES.get(periods.granularity, periods.granularity)[:-1]} "
            f"count as one transaction. {period_text}"
        ),
        "tables": [_table("tables/data.csv", "Data and periods")],
        "plots": [],
    }]  # fmt: skip
    methods = {spec.method for spec in config.models}
    fit_title = "Fit statistics" + (" (maximum likelihood)" if methods == {"mle"} else "")
    model_tables = [_table("tables/fit.csv", fit_title)]
    model_plots = []
    for spec in config.models:
        label = registry.get(spec.kind).label
        model_tables.append(_table(
            f"tables/parameters_{spec.name}.csv", f"{spec.name} ({label}): {_summary_kind(spec)}",
        ))  # fmt: skip
        model_plots += _plot(
            plots, f"heterogeneity_{spec.name}", f"{spec.name}: how customers differ"
        )
    fitted = result["models"]
    described = " ".join(
        _fit_description(spec, model_summary(fitted[spec.name])[1] if spec.name in fitted else {})
        for spec in config.models
    )
    sections.append({
        "id": "models", "title": "Models",
        "text": (
            f"Every model is fitted on the calibration summary. {described} The curves show "
            "the fitted mixing distributions (at the estimates, or the posterior means)."
        ),
        "tables": model_tables, "plots": model_plots,
    })  # fmt: skip
    if result["metrics"] is not None:
        holdout_tables = [_table("tables/metrics.csv", "Holdout metrics")]
        if "conditional_expectations" in result["tables"]:  # not in a BG/BB-only run
            holdout_tables.append(_table(
                "tables/conditional_expectations.csv",
                "Mean holdout purchases by calibration purchases (Fader, Hardie & Lee "
                "2005, figure 5)",
            ))  # fmt: skip
        sections.append({
            "id": "holdout", "title": "Holdout evaluation",
            "text": (
                "Predicted against actual repeat purchases in the holdout period, for every "
                "model and the baselines (naive: each customer repeats their calibration "
                "rate; gradient boosting: trained on an earlier split of the calibration "
                "period). Lower mae, rmse, brier and calibration_error are better; higher "
                "spearman and topN_share are better."
                + (
                    " BG/BB rows (" + ", ".join(s.name for s in config.models if s.kind == "bgbb")
                    + ") predict the number of holdout periods with a purchase, and are scored "
                    "against that count, not against repeat transactions."
                    if any(s.kind == "bgbb" for s in config.models) else ""
                )
            ),
            "tables": holdout_tables,
            "plots": _plot(plots, "conditional_expectations", "Conditional expectations")
            + _plot(plots, "tracking", f"Repeat transactions per {unit[:-1]}")
            + _plot(plots, "tracking_cumulative", "Cumulative repeat transactions")
            + _plot(plots, "deciles", "Holdout purchases by decile of the prediction"),
        })  # fmt: skip
    primary = _primary_clv(config, result["predictions"])
    interval = f" with {clv.interval:.0%} intervals" if clv.interval else ""
    sections.append({
        "id": "predictions", "title": "Predictions and predictive CLV",
        "text": (
            f"Per customer over the next {_duration_text(clv.horizon)}: expected "
            "purchases, P(alive)"
            + (", expected spend and CLV" if primary else "")
            + f"{interval} (predictions.csv / predictions.parquet). CLV discounts at "
            f"{clv.discount_rate:.1%} a year (annual effective) with a margin of "
            f"{clv.margin:.0%}; intervals reflect parameter uncertainty of both models."
        ),
        "tables": [{
            **_table("tables/top_customers.csv", f"Top customers by {primary} CLV", 20),
            "sorted_by": f"{primary}_clv",
        }] if primary else [],
        "plots": _plot(plots, "probability_alive", "P(alive) by frequency and recency"),
    })  # fmt: skip
    covariate_models = [spec for spec in config.models if spec.covariates is not None]
    if covariate_models:
        sections.append({
            "id": "covariates", "title": "Covariates",
            "text": (
                "The coefficients are in each model's parameter table, with their "
                "intervals: a purchase coefficient g multiplies the mean purchase rate by "
                "exp(g) per unit of its covariate (alpha_i = alpha exp(-g'z_i)); a Pareto/NBD "
                "dropout coefficient multiplies the mean dropout rate by exp(g); a BG/NBD "
                "dropout coefficient scales both a and b by exp(g). A text covariate is "
                "compared with its first category. The tables give each model's mean "
                "predictions by group of each covariate (quartiles of a numeric one with "
                "more than ten values): the customers as they are, not ceteris paribus. "
                "Time-varying covariates (data.covariate_history) change within each "
                "customer's life: their table compares the mean predictions over the "
                "horizon with the covariate table as given and with the covariate at 0 "
                "in every period after the observation end, which is what its future "
                "values add."
            ),
            "tables": [_table(f"tables/covariates_{spec.name}.csv",
                              f"{spec.name}: predictions by covariate")
                       for spec in covariate_models],
            "plots": [],
        })  # fmt: skip
    comparison = result["comparison"]
    if comparison is not None:
        sections.append({
            "id": "historical", "title": "Historical vs predictive CLV",
            "text": (
                "What customers have been worth (margin × revenue through the end of "
                f"calibration) next to what {primary} predicts they will be worth. Spearman "
                f"rank correlation {comparison.rank_correlation:.3f}. 'At risk': high past "
                "value and P(alive) below 0.5; 'rising': low past, high predicted value."
            ),
            "tables": [_table("tables/clv_segments.csv", "Quadrants and segments")],
            "plots": _plot(plots, "clv_comparison", "Historical vs predicted CLV"),
        })  # fmt: skip
    if config.economics is not None and "segments" in result["tables"]:
        sections.append(_economics_section(config, result, plots))
    versions = [["clvmodels", metadata["clvmodels_version"]], ["Python", metadata["python"]]]
    versions += [[name, metadata[name]] for name in _package_versions(config) if name in metadata]
    manifest = {
        "title": f"{config.name}: CLV experiment",
        "run_date": metadata["run_date"],
        "versions": versions,
        "metadata": {
            "experiment": config.name,
            "seed": config.seed,
            "data_fingerprint": metadata["data_fingerprint"],
            "config_file": "config.yaml",
        },
        "timings": metadata["timings_seconds"],
        "sections": sections,
    }
    write_json(out / "manifest.json", manifest)


def _economics_section(config: ExperimentConfig, result: dict[str, Any],
                       plots: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The report's acquisition-economics section."""
    economics, clv = config.economics, config.clv
    assert economics is not None
    margin = economics.margin or clv.margin
    by = (f"segments from the column {economics.segments!r}" if economics.segments
          else f"cohorts of first purchases by {_period_name(economics.cohort)}")  # fmt: skip
    unit = _UNIT_NAMES.get(config.periods.time_unit, config.periods.time_unit)
    interval = (f" Bounds ({clv.interval:.0%}) come from joint parameter draws summed over "
                "each segment's customers at each draw (the payback period's: the payback "
                "at each draw)." if clv.interval else "")  # fmt: skip
    retention = result["tables"]["retention"]
    length = _duration_text(economics.retention_period or f"1{economics.retention_cohort}")
    return {
        "id": "economics", "title": "Acquisition economics",
        "text": (
            f"Per segment ({by}; {config.economics_purchase_model} with "
            f"{config.spend_model_name}), in {economics.currency} at a margin of "
            f"{margin:.0%}: historical value (margin x revenue through the end of "
            f"calibration, undiscounted), predicted value over the next "
            f"{_duration_text(clv.horizon)} (discounted at {clv.discount_rate:.1%} a year), "
            "CLV = historical + predicted (what the segment's customers are worth from "
            "acquisition to the end of the horizon), CAC, CLV / CAC, the payback period "
            f"in {unit} (the customer age at which the segment's cumulative margin, "
            "undiscounted, covers its cost: from history, from the model, or not within "
            "the horizon) "
            f"and the share still alive.{interval} Retention: the share of each cohort "
            f"(first purchase by {_period_name(economics.retention_cohort)}) that purchases "
            "in each "
            f"period of {length} after acquisition, among the customers observed through "
            f"that period ({retention.index.get_level_values(0).nunique()} cohorts), "
            f"beside {config.economics_purchase_model}'s expected share for a new customer."
        ),
        "tables": [_table("segments.csv", "Value, CLV / CAC and payback per segment"),
                   _table("tables/retention.csv", "Retention by cohort", 60)],
        "plots": _plot(plots, "segment_value", "CLV / CAC per segment")
        + _plot(plots, "payback_curves", "Payback curves")
        + _plot(plots, "retention", "Retention by acquisition cohort"),
    }  # fmt: skip


def _period_name(period: str | None) -> str:
    """'calendar month' for ``"M"``."""
    names = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}
    return f"calendar {names.get(period or '', period)}"

"""The schema of an experiment file (YAML), in pydantic.

One file names the data, the periods, the models and the CLV settings; see
``configs/template.yaml`` for every key with a comment. Unknown keys are refused, and
every error names its field as a dotted path (``models[1].kind``), the value and what is
expected, in one line (:class:`clvmodels.exceptions.ConfigError`).

Conventions that differ from the Python API on purpose, so that a file reads the same
whatever the model:

- ``clv.discount_rate`` is always an *annual effective* rate (0.1 = 10 % a year); the
  runner converts it into each model's time unit (:func:`clvmodels.clv.predictive_clv`).
- Durations are calendar durations with a unit: ``"12M"``, ``"52W"``, ``"1Y"``, ``"90D"``.
  A holdout length in months or years moves the calendar (1997-09-30 + 9M = 1998-06-30).
- ``data.path`` and ``data.temp_directory`` are relative to the YAML file; ``output.dir`` to
  the working directory.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .. import registry
from ..exceptions import ConfigError

__all__ = [
    "ClvConfig",
    "ColumnsConfig",
    "CovariatesConfig",
    "CustomersConfig",
    "DataConfig",
    "EconomicsConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OutputConfig",
    "PeriodsConfig",
    "TrackingConfig",
    "apply_overrides",
    "config_json_schema",
    "load_config",
    "parse_config",
]

MODEL_KINDS = registry.kinds()
PURCHASE_KINDS = tuple(spec.kind for spec in registry.purchase_models())
TRANSACTION_DATASETS = ("cdnow_sample", "cdnow_master")
METRICS = (
    "mae", "rmse", "total_error_pct", "spearman", "top10_share", "top20_share", "brier",
    "calibration_error", "value_mae", "value_rmse", "value_spearman", "value_gini",
)  # fmt: skip
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([DWMQY])\s*$")


# tags of the forms a field may take (economics.acquisition_costs: a file or a mapping)
_UNION_TAGS = {"acquisition_costs": ("file", "mapping")}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_time_unit(value: str, setting: str) -> str:
    from ..data.timeunits import time_unit_nanoseconds

    try:
        time_unit_nanoseconds(value)
    except ValueError as error:
        raise ValueError(str(error).replace(f"{setting}=", "")) from None
    return value


def parse_duration(value: str) -> tuple[float, str]:
    """Split a calendar duration such as ``"12M"`` into ``(12.0, "M")``.

    Units: ``D`` days, ``W`` weeks, ``M`` months, ``Q`` quarters, ``Y`` years.

    Examples
    --------
    >>> parse_duration("52W")
    (52.0, 'W')
    """
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"{value!r} is not a duration: use a positive number and a unit D, W, M, Q or Y, "
            "such as '12M', '52W' or '90D'"
        )
    return float(match.group(1)), match.group(2)


def add_duration(start: dt.date, duration: str) -> dt.date:
    """The date ``duration`` after ``start``: days and weeks exactly, months, quarters
    and years on the calendar (the same day of the month, or the month's last day).

    Examples
    --------
    >>> add_duration(dt.date(1997, 9, 30), "39W")
    datetime.date(1998, 6, 30)
    >>> add_duration(dt.date(1997, 9, 30), "9M")
    datetime.date(1998, 6, 30)
    """
    count, unit = parse_duration(duration)
    if unit in "DW":
        days = count * (7 if unit == "W" else 1)
        if days != int(days):
            raise ValueError(f"{duration!r}: use a whole number of days")
        return start + dt.timedelta(days=int(days))
    if count != int(count):
        raise ValueError(f"{duration!r}: use a whole number of months, quarters or years")
    months = int(count) * {"M": 1, "Q": 3, "Y": 12}[unit]
    month_index = start.year * 12 + start.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    # last day of the target month if the start is its month's last day or beyond
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    start_is_month_end = (start + dt.timedelta(days=1)).day == 1
    day = last_day if start_is_month_end else min(start.day, last_day)
    return dt.date(year, month, day)


class ColumnsConfig(_Strict):
    """Which columns of the transaction file hold the customer, the date and the amount."""

    customer_id: str = "customer_id"
    date: str = "date"
    amount: str | None = Field(
        None, description="Column of transaction values; needed by gamma_gamma and CLV."
    )


def _relative_to_yaml(value: str, info: ValidationInfo) -> Path:
    """``value`` as an absolute path, read relative to the YAML file's folder."""
    base = Path((info.context or {}).get("base_dir", "."))
    return (base / Path(value).expanduser()).resolve()


class CustomersConfig(_Strict):
    """A per-customer file (CSV or Parquet): one row per customer with the static
    covariates the models name."""

    path: str = Field(description="CSV or Parquet file, relative to the YAML file.")
    customer_id: str | None = Field(
        None, description="Its customer id column (default: data.columns.customer_id)."
    )

    @field_validator("path")
    @classmethod
    def _existing_file(cls, value: str, info: ValidationInfo) -> str:
        path = _relative_to_yaml(value, info)
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        if data_format(path) is None:
            raise ValueError(f"{path.name}: use a .csv, .csv.gz, .parquet or .pq file")
        return str(path)


class CovariateHistoryConfig(_Strict):
    """A long table of time-varying covariates (CSV or Parquet): one row per period,
    from its date until the next row's, for the models with ``covariates.time_varying``
    (see docs/covariates.md)."""

    path: str = Field(description="CSV or Parquet file, relative to the YAML file.")
    date: str = Field("date", description="Its column with the start of each period.")
    customer_id: str | None = Field(
        None, description=(
            "Its customer id column (default: data.columns.customer_id); a file without "
            "that column is one calendar common to every customer."
        ),
    )

    _existing_file = field_validator("path")(CustomersConfig._existing_file.__func__)


class DataConfig(_Strict):
    """Where the transactions come from: a bundled dataset or a CSV/Parquet file."""

    dataset: str | None = Field(
        None, description=f"Bundled transaction log: one of {', '.join(TRANSACTION_DATASETS)}."
    )
    path: str | None = Field(
        None, description="CSV or Parquet file of transactions, relative to the YAML file."
    )
    columns: ColumnsConfig = ColumnsConfig()
    date_format: str | None = Field(
        None, description="strftime format of the date column, e.g. '%Y%m%d'."
    )
    engine: Literal["auto", "pandas", "duckdb", "spark"] = Field(
        "auto",
        description=(
            "Who computes the summary: auto (DuckDB for a file, pandas for a bundled "
            "dataset), pandas (in memory), duckdb (out of core) or spark (the active "
            "SparkSession reads the file; pyspark needed)."
        ),
    )
    memory_limit: str | None = Field(
        None, description=(
            "DuckDB memory limit (default: a quarter of RAM, at least '750MB'; e.g. '4GB' "
            "or '80%' of RAM); beyond it DuckDB spills to disk."
        ),
    )
    duplicates: Literal["warn", "keep", "drop", "error"] = Field(
        "warn", description=(
            "Exact duplicate rows (same customer, time and amount): warn and keep them, "
            "keep them silently, drop them, or refuse the data. Counted in run.json."
        ),
    )
    temp_directory: str | None = Field(
        None, description=(
            "An existing folder for DuckDB's spill files, relative to the YAML file "
            "(default: the system's temporary folder); they can reach several times the "
            "input's size and are removed after the summary."
        ),
    )
    customers: CustomersConfig | None = Field(
        None, description=(
            "Per-customer file holding the models' covariates; without it they are "
            "columns of the transaction file, constant within each customer."
        ),
    )
    covariate_history: CovariateHistoryConfig | None = Field(
        None, description="Time-varying covariates, for models with covariates.time_varying."
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str | None) -> str | None:
        if value is not None and value not in TRANSACTION_DATASETS:
            raise ValueError(
                f"unknown dataset {value!r}: use one of {', '.join(TRANSACTION_DATASETS)} "
                "(`clvmodels datasets` lists them)"
            )
        return value

    @field_validator("path")
    @classmethod
    def _existing_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if is_uri(value):  # s3://, dbfs:/, hdfs://: read by Spark, which checks it
            if data_format(Path(value)) is None:
                raise ValueError(f"{value}: use a .csv or .parquet path of transactions")
            return value
        path = _relative_to_yaml(value, info)
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        if data_format(path) is None:
            raise ValueError(
                f"{path.name}: use a .csv, .csv.gz, .parquet or .pq file of transactions"
            )
        return str(path)

    @field_validator("temp_directory")
    @classmethod
    def _existing_folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        folder = _relative_to_yaml(value, info)
        if not folder.is_dir():
            raise ValueError(f"not an existing folder: {folder}")
        return str(folder)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.dataset is None) == (self.path is None):
            raise _FieldError(
                "path" if self.path else "dataset",
                "give exactly one of dataset (bundled data) or path (a file)",
            )
        if self.path is not None and is_uri(self.path) and self.engine != "spark":
            raise _FieldError(
                "path", f"{self.path}: a URI is read by Spark only; set data.engine: spark "
                "or give a local file"
            )
        return self


def is_uri(path: str) -> bool:
    """A location with a scheme (``s3://bucket/x.parquet``, ``dbfs:/x.csv``), not a local
    path (a Windows drive letter is no scheme)."""
    scheme, colon, _ = path.partition(":")
    return bool(colon) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


def data_format(path: Path) -> Literal["csv", "parquet"] | None:
    """``"csv"`` or ``"parquet"`` from a file name, ``None`` if neither."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return None


class PeriodsConfig(_Strict):
    """How time is measured, and the calibration and holdout periods."""

    time_unit: str = Field("D", description="Unit of recency, T and horizons: D, W, M, Y.")
    granularity: str = Field(
        "D", description="Purchases within one window count as one: D, W, M (calendar)."
    )
    calibration_end: dt.date | None = Field(
        None, description="Last day of calibration (inclusive); default the last purchase."
    )
    holdout_end: dt.date | None = Field(None, description="Last day of the holdout (inclusive).")
    holdout_past_data: Literal["error", "allow"] = Field(
        "error", description=(
            "A holdout that runs more than a day (and 5 % of its length) past the last "
            "transaction is an error; 'allow' accepts it with a warning."
        ),
    )
    holdout_length: str | None = Field(
        None, description="Holdout as a duration after calibration_end, e.g. '39W' or '9M'."
    )

    @field_validator("time_unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        return _check_time_unit(value, "time_unit")

    @field_validator("granularity")
    @classmethod
    def _granularity(cls, value: str) -> str:
        from ..data.timeunits import parse_granularity

        try:
            parse_granularity(value)
        except ValueError as error:
            raise ValueError(str(error).replace("granularity=", "")) from None
        return value

    @field_validator("holdout_length")
    @classmethod
    def _length(cls, value: str | None) -> str | None:
        if value is not None:
            add_duration(dt.date(2000, 1, 31), value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> PeriodsConfig:
        if self.holdout_end is not None and self.holdout_length is not None:
            raise _FieldError("holdout_length", "give holdout_end or holdout_length, not both")
        if self.has_holdout and self.calibration_end is None:
            raise _FieldError(
                "calibration_end", "a holdout needs calibration_end (the day before it starts)"
            )
        end = self.holdout_end_date
        if end is not None and self.calibration_end is not None and end <= self.calibration_end:
            raise _FieldError(
                "holdout_length" if self.holdout_length else "holdout_end",
                f"holdout_end {end} must be after calibration_end {self.calibration_end}"
            )
        return self

    @property
    def has_holdout(self) -> bool:
        return self.holdout_end is not None or self.holdout_length is not None

    @property
    def holdout_end_date(self) -> dt.date | None:
        """``holdout_end``, or ``calibration_end + holdout_length``."""
        if self.holdout_length is not None and self.calibration_end is not None:
            return add_duration(self.calibration_end, self.holdout_length)
        return self.holdout_end


class PriorConfig(_Strict):
    """A prior distribution by its PyMC name and parameters (Bayesian methods)."""

    distribution: str
    params: dict[str, float] = {}


class SamplerConfig(_Strict):
    """NUTS settings (method ``mcmc``); ``draws`` is also the number of Laplace draws
    of method ``map``."""

    # Upper bounds: those of BayesianModel.fit (clvmodels.bayes._base: MAX_CHAINS,
    # MAX_SAMPLER_DRAWS, MAX_POSTERIOR_DRAWS), checked here so that a file asking for,
    # say, 100,000 chains is refused by `clvmodels validate` instead of running for ever
    # without output: more than 64 chains only repeat the convergence check 4 make, and
    # more than 1e6 draws per chain or 1e7 in all improve no summary.
    draws: int = Field(1000, ge=1, le=1_000_000)
    tune: int = Field(1000, ge=0, le=1_000_000)
    chains: int = Field(4, ge=1, le=64, description="At most 64 (4 is usual).")
    sampler: Literal["clvmodels", "pymc", "nutpie", "numpyro"] = "clvmodels"
    target_accept: float = Field(0.8, gt=0, lt=1)
    hdi_prob: float = Field(0.94, gt=0, lt=1, description="Probability of the HDIs.")

    @model_validator(mode="after")
    def _posterior_size(self) -> SamplerConfig:
        if self.chains * self.draws > 10_000_000:
            raise _FieldError(
                "draws",
                f"chains x draws = {self.chains * self.draws:,} posterior draws; at most "
                "10,000,000 (the posterior and its statistics are kept in memory)",
            )
        return self


class CovariatesConfig(_Strict):
    """Static covariates of one model (BG/NBD, MBG/NBD, Pareto/NBD): which columns of
    the per-customer data enter which process (see docs/covariates.md)."""

    purchase: list[str] = Field([], description="Columns moving the purchase rate.")
    dropout: list[str] = Field([], description="Columns moving dropout.")
    shared: list[str] = Field(
        [], description="Columns with one coefficient for both processes."
    )
    penalizer: float | dict[Literal["purchase", "dropout"], float] = Field(
        0.0, description="L2 penalty on the coefficients: one number, or one per process."
    )
    time_varying: bool = Field(
        False, description=(
            "pnbd, method mle only: the columns are time-varying, read from "
            "data.covariate_history (Bachmann, Meierer & Naef 2021)."
        ),
    )

    @model_validator(mode="after")
    def _columns(self) -> CovariatesConfig:
        if not (self.purchase or self.dropout or self.shared):
            raise _FieldError("purchase", "name at least one covariate column")
        for process in ("purchase", "dropout"):
            both = sorted(set(getattr(self, process)) & set(self.shared))
            if both:
                raise _FieldError(
                    "shared", f"{both} are in both shared and {process}: name a shared "
                    "covariate only in shared",
                )
        values = self.penalizer.values() if isinstance(self.penalizer, dict) else [self.penalizer]
        if any(not (v >= 0) for v in values):
            raise _FieldError("penalizer", "give numbers >= 0")
        return self

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.purchase, *self.dropout, *self.shared]))

    def settings(self) -> dict[str, Any]:
        """Keyword arguments of the model class."""
        return {
            "purchase_covariates": self.purchase or None,
            "dropout_covariates": self.dropout or None,
            "shared_covariates": self.shared or None,
            "covariate_penalizer": self.penalizer,
        }


class ModelConfig(_Strict):
    """One model of the experiment."""

    name: Annotated[str, Field(pattern=_NAME, description="Unique name; names output files.")]
    kind: Literal[MODEL_KINDS]  # type: ignore[valid-type]
    method: Literal["mle", "map", "mcmc"] = "mle"
    penalizer: float = Field(0.0, ge=0, description="L2 penalty on the parameters (MLE).")
    initial_params: dict[str, float] | None = None
    tol: float = Field(1e-9, gt=0)
    max_iter: int = Field(2000, ge=1)
    drop_zero_values: bool | None = Field(
        None, description="gamma_gamma only: drop customers whose mean spend is 0."
    )
    period: str | None = Field(
        None,
        description="bgbb only: the calendar window of one transaction opportunity (D, W, M, "
        "Q, Y); default periods.time_unit. calibration_end must close a window.",
    )
    priors: dict[str, PriorConfig] | None = Field(None, description="map / mcmc only.")
    sampler: SamplerConfig | None = Field(None, description="mcmc only.")
    covariates: CovariatesConfig | None = Field(
        None, description="Static covariates (bgnbd, mbgnbd, pnbd)."
    )

    @model_validator(mode="after")
    def _options_fit_kind(self) -> ModelConfig:
        if self.period is not None:
            if self.kind != "bgbb":
                raise _FieldError("period", "period applies to bgbb models only")
            from ..data.timeunits import parse_granularity

            try:
                parse_granularity(self.period)
            except ValueError as error:
                raise _FieldError("period", str(error).replace("granularity=", "")) from None
        if self.drop_zero_values is not None and self.kind != "gamma_gamma":
            raise _FieldError(
                "drop_zero_values", "drop_zero_values applies to gamma_gamma models only"
            )
        if self.method == "mle" and self.priors is not None:
            raise _FieldError("priors", "priors apply to method map or mcmc only")
        if self.method == "mle" and self.sampler is not None:
            raise _FieldError("sampler", "sampler settings apply to method map or mcmc only")
        for name in self.priors or {}:
            parameters = registry.get(self.kind).parameters
            coefficient = name.split(".", 1)[0] in ("purchase", "dropout", "shared")
            if name not in parameters and not (coefficient and self.covariates is not None):
                raise _FieldError(
                    f"priors.{name}",
                    f"{self.kind} has no parameter {name!r}; its parameters are "
                    f"{', '.join(parameters)}",
                )
        if self.covariates is not None:
            penalty = self.covariates.penalizer
            if self.method != "mle" and any(
                penalty.values() if isinstance(penalty, dict) else [penalty]
            ):
                raise _FieldError(
                    "covariates.penalizer", "the penalty belongs to method mle; a Bayesian "
                    "model's coefficients are regularised by their priors",
                )
            if not registry.get(self.kind).continuous_purchase:
                raise _FieldError(
                    "covariates", f"covariates apply to bgnbd, mbgnbd and pnbd, not {self.kind}"
                )
            if self.covariates.time_varying and (self.kind != "pnbd" or self.method != "mle"):
                raise _FieldError(
                    "covariates.time_varying", "time-varying covariates are fitted for kind "
                    f"pnbd with method mle, not {self.kind} with {self.method}",
                )
        if self.method != "mle" and (self.penalizer or self.initial_params):
            raise _FieldError(
                "penalizer" if self.penalizer else "initial_params",
                "penalizer and initial_params belong to method mle; a Bayesian model is "
                "regularised by its priors",
            )
        if not registry.get(self.kind).in_experiments:
            raise _FieldError(
                "kind",
                "kind 'sbg' is a contractual model fitted on retention counts, not on a "
                "transaction log: fit clvmodels.ShiftedBetaGeometric from Python"
            )
        return self

    def bayes_settings(self) -> dict[str, Any]:
        """Constructor arguments of the Bayesian class (:mod:`clvmodels.bayes`)."""
        sampler = self.sampler or SamplerConfig()
        settings: dict[str, Any] = {"hdi_prob": sampler.hdi_prob}
        if self.priors:
            settings["priors"] = {
                name: (prior.distribution, dict(prior.params))
                for name, prior in self.priors.items()
            }  # fmt: skip
        if self.drop_zero_values is not None:
            settings["drop_zero_values"] = self.drop_zero_values
        if self.covariates is not None:
            covariates = self.covariates.settings()
            covariates.pop("covariate_penalizer")  # 0: checked by the schema
            settings.update(covariates)
        return settings

    def fit_options(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of the Bayesian ``fit``."""
        sampler = self.sampler or SamplerConfig()
        return {
            "method": self.method, "draws": sampler.draws, "tune": sampler.tune,
            "chains": sampler.chains, "sampler": sampler.sampler,
            "target_accept": sampler.target_accept, "random_seed": seed,
        }  # fmt: skip

    def settings(self) -> dict[str, Any]:
        """Keyword arguments of the model class."""
        settings = {
            "penalizer": self.penalizer, "initial_params": self.initial_params,
            "tol": self.tol, "max_iter": self.max_iter,
        }  # fmt: skip
        if self.drop_zero_values is not None:
            settings["drop_zero_values"] = self.drop_zero_values
        if self.covariates is not None:
            settings.update(self.covariates.settings())
        return settings


class ClvConfig(_Strict):
    """Predictive CLV and per-customer predictions."""

    horizon: str = Field("12M", description="Future period of predictions and CLV.")
    discount_rate: float = Field(
        0.1, ge=0, le=1, description="Annual effective discount rate (0.1 = 10 % a year)."
    )
    margin: float = Field(1.0, gt=0, le=1, description="Share of revenue that is profit.")
    interval: float | None = Field(
        0.9, gt=0, lt=1, description="Level of prediction intervals; null for none."
    )
    # At most clvmodels._validation.MAX_DRAWS: memory is bounded anyway (intervals are
    # computed in blocks), but 10,000,000 draws would take 76 MiB per customer at a time
    # and hours, for bounds no better than from 10,000.
    n_draws: int = Field(
        500, ge=10, description="Parameter draws behind the intervals (at most 1,000,000)."
    )

    @field_validator("n_draws")
    @classmethod
    def _n_draws(cls, value: int) -> int:
        if value > 1_000_000:
            raise ValueError(
                f"{value:,} is more than 1,000,000 draws ({value * 8 / 2**20:,.0f} MiB per "
                "customer while its interval is computed, for bounds no better than from "
                "10,000); 500 to 10,000 is plenty"
            )
        return value
    purchase_models: list[str] | None = Field(
        None, description="Names of the purchase models to value; default all."
    )
    spend_model: str | None = Field(
        None, description="Name of the gamma_gamma model; default the only one."
    )

    @field_validator("horizon", mode="before")
    @classmethod
    def _horizon(cls, value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f"{value!r} has no unit: give a duration such as '12M', '52W' or '1Y'"
            )
        parse_duration(value)
        return value


class AcquisitionCostsFile(_Strict):
    """Acquisition costs in a CSV or Parquet file: a total per segment (``by:
    segment``, one row per segment) or a cost per customer (``by: customer``)."""

    path: str = Field(description="CSV or Parquet file, relative to the YAML file.")
    by: Literal["segment", "customer"] = Field(
        "segment", description="Rows are segments (totals) or customers (a cost each)."
    )
    key: str | None = Field(
        None, description=(
            "Its column naming the segment (default 'segment') or the customer (default "
            "data.columns.customer_id)."
        ),
    )
    cost: str = Field("cost", description="Its column with the cost (>= 0).")

    _existing_file = field_validator("path")(CustomersConfig._existing_file.__func__)


def _costs_kind(value: Any) -> str:
    """A mapping with a ``path`` is a file of costs; any other, costs per segment."""
    is_file = isinstance(value, AcquisitionCostsFile) or (
        isinstance(value, Mapping) and "path" in value
    )
    return "file" if is_file else "mapping"


class EconomicsConfig(_Strict):
    """Acquisition economics: value, CLV / CAC and payback per segment (an acquisition
    channel or a cohort of first purchases), and retention curves by cohort (see
    docs/economics.md)."""

    segments: str | None = Field(
        None, description=(
            "Column holding each customer's segment, e.g. an acquisition channel: in "
            "data.customers, or constant per customer in the transaction file."
        ),
    )
    cohort: Literal["D", "W", "M", "Q", "Y"] | None = Field(
        None, description="Or segments by the calendar period of the first purchase."
    )
    acquisition_costs: Annotated[
        Annotated[AcquisitionCostsFile, Tag("file")] | Annotated[dict[str, float], Tag("mapping")],
        Discriminator(_costs_kind),
    ] = Field(description=(
        "What winning the customers cost: a mapping segment -> total cost, or a file "
        "(path, by, key, cost)."
    ))  # fmt: skip
    currency: Annotated[str, Field(min_length=1, max_length=12)] = Field(
        description="Currency of the amounts and costs, e.g. USD (shown in the report)."
    )
    margin: float | None = Field(
        None, gt=0, le=1, description="Share of revenue that is profit (default clv.margin)."
    )
    purchase_model: str | None = Field(
        None, description=(
            "Name of the purchase model (bgnbd, mbgnbd or pnbd kind) to value with; "
            "default the first of clv.purchase_models that is one."
        ),
    )
    retention_cohort: Literal["D", "W", "M", "Q", "Y"] = Field(
        "M", description="Cohorts of the retention curves (calendar period of acquisition)."
    )
    retention_period: str | None = Field(
        None, description="Length of a retention period, e.g. '1M' (default one cohort period)."
    )

    @field_validator("acquisition_costs", mode="before")
    @classmethod
    def _segment_names(cls, value: Any) -> Any:
        # YAML reads an unquoted 1997-01-01 as a date: the segment is its ISO text
        if not isinstance(value, Mapping) or "path" in value:
            return value
        costs = {}
        for key, cost in value.items():
            name = key.isoformat() if isinstance(key, dt.date) else str(key)
            number = cost if isinstance(cost, int | float) and not isinstance(cost, bool) else None
            if number is None or not math.isfinite(number) or number < 0:
                raise ValueError(
                    f"the cost of segment {name!r} is {cost!r}: give a number >= 0 (a total "
                    "per segment, in economics.currency)"
                )
            costs[name] = float(number)
        return costs

    @field_validator("retention_period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_kind_of_segment(self) -> EconomicsConfig:
        if (self.segments is None) == (self.cohort is None):
            raise _FieldError(
                "segments", "give segments (a column, e.g. channel) or cohort (e.g. M), "
                "one of them",
            )
        if isinstance(self.acquisition_costs, dict) and not self.acquisition_costs:
            raise _FieldError("acquisition_costs", "give a cost for every segment")
        return self


class EvaluationConfig(_Strict):
    """Holdout evaluation (needs a holdout period)."""

    metrics: list[Literal[METRICS]] | None = Field(  # type: ignore[valid-type]
        None, description="Metrics to report; default all that apply."
    )
    baselines: list[Literal["naive", "gradient_boosting"]] = ["naive", "gradient_boosting"]
    bins: int = Field(10, ge=2, description="Bins of the probability calibration table.")


class OutputConfig(_Strict):
    """Where the run is written."""

    dir: str = Field("runs/{name}", description="Run directory; {name} is the experiment.")
    overwrite: bool = Field(False, description="Replace an existing run directory.")
    plots: bool = True


class MlflowConfig(_Strict):
    """Logging to MLflow (``pip install mlflow``)."""

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "clvmodels"
    run_name: str | None = None


class TrackingConfig(_Strict):
    """Experiment tracking."""

    mlflow: MlflowConfig | None = None


class ExperimentConfig(_Strict):
    """A whole experiment: what ``clvmodels run`` reads.

    Examples
    --------
    >>> config = parse_config({
    ...     "name": "demo", "data": {"dataset": "cdnow_sample"},
    ...     "models": [{"name": "bgnbd", "kind": "bgnbd"}]})
    >>> config.models[0].method, config.periods.time_unit
    ('mle', 'D')
    """

    name: Annotated[str, Field(pattern=_NAME, description="Name of the experiment.")]
    seed: int = Field(0, ge=0, description="Seed of every random step.")
    data: DataConfig
    periods: PeriodsConfig = PeriodsConfig()
    models: list[ModelConfig] = Field(min_length=1)
    clv: ClvConfig = ClvConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    economics: EconomicsConfig | None = Field(
        None, description="Acquisition economics per segment (default: none)."
    )
    output: OutputConfig = OutputConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        seen: dict[str, int] = {}
        for i, model in enumerate(self.models):
            if model.name in seen:
                raise _FieldError(
                    f"models[{i}].name",
                    f"duplicate model name {model.name!r} (also models[{seen[model.name]}])",
                )
            seen[model.name] = i
            if model.kind == "gamma_gamma" and self.data.columns.amount is None:
                raise _FieldError(
                    "data.columns.amount",
                    f"model {model.name!r} (gamma_gamma) needs transaction amounts: name "
                    "the amount column in data.columns.amount",
                )
        kinds = {model.name: model.kind for model in self.models}
        for name in self.clv.purchase_models or []:
            if kinds.get(name) not in PURCHASE_KINDS:
                raise _FieldError(
                    "clv.purchase_models",
                    f"{name!r} is not a purchase model of this experiment "
                    f"({', '.join(self.purchase_model_names) or 'none'})",
                )
        if self.clv.spend_model is not None and kinds.get(self.clv.spend_model) != "gamma_gamma":
            raise _FieldError(
                "clv.spend_model", f"{self.clv.spend_model!r} is not a gamma_gamma model here"
            )
        spend = [name for name, kind in kinds.items() if kind == "gamma_gamma"]
        if self.clv.spend_model is None and len(spend) > 1:
            raise _FieldError(
                "clv.spend_model", f"several gamma_gamma models ({', '.join(spend)}): name one"
            )
        self._covariates_readable()
        if self.economics is not None:
            self._economics_consistent()
        if self.data.engine == "spark":
            self._spark_compatible()
        if "evaluation" in self.model_fields_set and not self.periods.has_holdout:
            raise _FieldError(
                "evaluation", "evaluation needs a holdout: set periods.holdout_end"
            )
        return self

    def _covariates_readable(self) -> None:
        varying = [m.name for m in self.models if m.covariates and m.covariates.time_varying]
        if varying and self.data.covariate_history is None:
            raise _FieldError(
                "data.covariate_history", f"models {varying} have time-varying covariates: "
                "give their table (data.covariate_history.path)",
            )
        if self.data.covariate_history is not None and not varying:
            raise _FieldError(
                "data.covariate_history", "no model has covariates.time_varying: drop "
                "data.covariate_history or set time_varying: true on a pnbd model",
            )
        if varying and self.data.engine == "spark":
            raise _FieldError(
                "data.engine", "time-varying covariates are not read with data.engine: "
                "spark; use duckdb or pandas",
            )
        columns = self.covariate_columns
        segment = self.economics.segments if self.economics is not None else None
        if not columns:
            if self.data.customers is not None and segment is None:
                raise _FieldError(
                    "data.customers", "no model names covariates and economics.segments "
                    "is not set: drop data.customers or add covariates to a model",
                )
            return
        if self.data.customers is None and self.data.dataset is not None:
            raise _FieldError(
                "data.customers", f"the models name covariates ({', '.join(columns)}) and "
                f"the bundled dataset {self.data.dataset} has none: give them in a "
                "per-customer file (data.customers.path)",
            )
        own = self.data.columns
        clash = sorted(set(columns) & {own.customer_id, own.date, own.amount or ""})
        if clash:
            raise _FieldError(
                "models", f"{clash} cannot be covariates: they are the transaction columns"
            )
        if self.data.engine == "spark":
            raise _FieldError(
                "data.engine", "covariates are not read with data.engine: spark yet; use "
                "duckdb or pandas",
            )

    def _economics_consistent(self) -> None:
        economics = self.economics
        assert economics is not None
        kinds = {model.name: model for model in self.models}
        valued = ("bgnbd", "mbgnbd", "pnbd")
        if economics.purchase_model is not None:
            model = kinds.get(economics.purchase_model)
            if model is None or model.kind not in valued:
                raise _FieldError(
                    "economics.purchase_model", f"{economics.purchase_model!r} is not a "
                    "bgnbd, mbgnbd or pnbd model of this experiment",
                )
            if model.covariates is not None and model.covariates.time_varying:
                raise _FieldError(
                    "economics.purchase_model", f"{model.name!r} has time-varying "
                    "covariates: segment economics on a covariate history are not "
                    "available yet; name another model",
                )
        elif self.economics_purchase_model is None:
            raise _FieldError(
                "economics", "needs a bgnbd, mbgnbd or pnbd model without time-varying "
                "covariates among clv.purchase_models",
            )
        if self.spend_model_name is None:
            raise _FieldError(
                "economics", "values segments with a spend model: add a gamma_gamma model "
                "(and data.columns.amount)",
            )
        if self.data.engine == "spark":
            raise _FieldError(
                "data.engine", "economics reads the transaction log in memory (history "
                "and payback); with data.engine: spark leave economics out",
            )
        if economics.segments is not None:
            own = self.data.columns
            if economics.segments in {own.customer_id, own.date, own.amount}:
                raise _FieldError(
                    "economics.segments", f"{economics.segments!r} is a transaction column, "
                    "not a segment",
                )
            if self.data.customers is None and self.data.dataset is not None:
                raise _FieldError(
                    "economics.segments", f"the bundled dataset {self.data.dataset} has no "
                    f"column {economics.segments!r}: give it in a per-customer file "
                    "(data.customers.path)",
                )

    @property
    def economics_purchase_model(self) -> str | None:
        """The purchase model economics values with: named, or the first CLV purchase
        model of a continuous-time kind without time-varying covariates."""
        if self.economics is None:
            return None
        if self.economics.purchase_model is not None:
            return self.economics.purchase_model
        specs = {model.name: model for model in self.models}
        for name in self.clv_purchase_models:
            spec = specs[name]
            varying = spec.covariates is not None and spec.covariates.time_varying
            if spec.kind in ("bgnbd", "mbgnbd", "pnbd") and not varying:
                return name
        return None

    @property
    def customer_columns(self) -> list[str]:
        """Every per-customer column the run reads: the covariates and the segment."""
        segment = self.economics.segments if self.economics is not None else None
        return list(dict.fromkeys([*self.covariate_columns, *([segment] if segment else [])]))

    @property
    def covariate_columns(self) -> list[str]:
        """Every static covariate column any model names, once."""
        names: list[str] = []
        for model in self.models:
            if model.covariates is not None and not model.covariates.time_varying:
                names.extend(model.covariates.columns)
        return list(dict.fromkeys(names))

    def _spark_compatible(self) -> None:
        """With data.engine spark only per-customer results reach the driver: steps
        that learn from the transaction log itself are refused by name."""
        for i, model in enumerate(self.models):
            if model.kind == "bgbb":
                raise _FieldError(
                    f"models[{i}].kind", "bgbb histories are built in memory from the log; "
                    "not available with data.engine: spark",
                )
        if "gradient_boosting" in self.evaluation.baselines and self.periods.has_holdout:
            raise _FieldError(
                "evaluation.baselines", "gradient_boosting learns from the transaction log "
                "in memory; with data.engine: spark use [naive]",
            )

    @property
    def purchase_model_names(self) -> list[str]:
        return [model.name for model in self.models if model.kind in PURCHASE_KINDS]

    @property
    def clv_purchase_models(self) -> list[str]:
        return list(self.clv.purchase_models or self.purchase_model_names)

    @property
    def spend_model_name(self) -> str | None:
        if self.clv.spend_model is not None:
            return self.clv.spend_model
        spend = [model.name for model in self.models if model.kind == "gamma_gamma"]
        return spend[0] if spend else None

    def output_dir(self) -> Path:
        return Path(self.output.dir.replace("{name}", self.name)).expanduser()

    def resolved(self) -> dict[str, Any]:
        """Every setting, defaults included, as plain data (what the run records).

        Without a holdout the ``evaluation`` block is left out: it would not validate
        (evaluation needs a holdout), and the recorded file must.
        """
        resolved = self.model_dump(mode="json")
        if not self.periods.has_holdout:
            del resolved["evaluation"]
        return resolved


class _FieldError(ValueError):
    """A cross-field check that knows the field to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _field_path(location: Sequence[Any]) -> str:
    path = ""
    previous = None
    for part in location:
        # which form of a field was read is not a key of the file
        tagged = previous in _UNION_TAGS and part in _UNION_TAGS[previous]
        previous = part
        if tagged:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _config_error(error: ValidationError, source: str) -> ConfigError:
    problems = []
    first_field = None
    for item in error.errors(include_url=False):
        location = list(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        context_error = (item.get("ctx") or {}).get("error")
        if isinstance(context_error, _FieldError):
            # the check names its field relative to the model that ran it
            location += context_error.field.split(".")
            message = str(context_error)
        field = _field_path(location) or "(top level)"
        if not isinstance(context_error, _FieldError):
            if item["type"] == "extra_forbidden":
                message = "unknown key (see configs/template.yaml for the keys)"
            elif item["type"] == "missing":
                message = "missing (required)"
            elif "input" in item and item["type"] not in ("value_error", "assertion_error"):
                message = f"{message}; got {_describe(item['input'])}"
        first_field = first_field or field
        problems.append(f"{field}: {message}")
    more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if problems[1:] else ""
    return ConfigError(f"{source}: {problems[0]}{more}", field=first_field)


def parse_config(
    raw: Mapping[str, Any], *, base_dir: str | Path = ".", source: str = "config"
) -> ExperimentConfig:
    """Validate a configuration given as plain data (e.g. a parsed YAML mapping).

    Parameters
    ----------
    raw : mapping
        The configuration.
    base_dir : str or Path, default "."
        Directory that relative ``data.path`` values are relative to.
    source : str
        Name of the source, for error messages.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        One line naming the first wrong field (and listing any others).

    Examples
    --------
    >>> try:
    ...     parse_config({"name": "x", "data": {"dataset": "cdnow_sample"}, "models": [],
    ...                   "colour": "blue"})
    ... except Exception as error:
    ...     print(error)
    config: models: List should have at least 1 item after validation, not 0; got [] \
(and 1 more: colour: unknown key (see configs/template.yaml for the keys))
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{source}: the file must be a mapping of settings (name:, data:, models: ...), "
            f"not {type(raw).__name__}"
        )
    try:
        return ExperimentConfig.model_validate(
            dict(raw), context={"base_dir": str(Path(base_dir).resolve())}
        )
    except ValidationError as error:
        raise _config_error(error, source) from None


def _safe_load(stream: Any) -> Any:
    """``yaml.safe_load``, except that an impossible date (``1997-09-31``) stays a string,
    so the schema refuses it naming its field instead of PyYAML raising ``ValueError``."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_yaml_timestamp(self, node: Any) -> Any:
            try:
                return super().construct_yaml_timestamp(node)
            except ValueError:
                return self.construct_scalar(node)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)
    return yaml.load(stream, Loader=Loader)  # a SafeLoader: plain data only


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file into a mapping, with a one-line error on failure."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the experiment's YAML file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        with path.open(encoding="utf-8") as handle:
            raw = _safe_load(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the file must be a mapping of settings (name:, data: ...)")
    return raw


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (``--set``) to a raw configuration.

    Keys are dotted paths; list items are addressed by index (``models.0.penalizer``) or,
    for models, by name (``models.bgnbd.penalizer``). Values are parsed as YAML
    (``0.1``, ``true``, ``[naive]``). The input is not modified.

    Examples
    --------
    >>> raw = {"clv": {"horizon": "12M"}, "models": [{"name": "bg", "kind": "bgnbd"}]}
    >>> apply_overrides(raw, ["clv.horizon=6M", "models.bg.penalizer=0.01"])
    {'clv': {'horizon': '6M'}, 'models': [{'name': 'bg', 'kind': 'bgnbd', 'penalizer': 0.01}]}
    """
    import copy

    import yaml

    result = copy.deepcopy(dict(raw))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: use key=value, e.g. clv.horizon=6M")
        try:
            value = _safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {override!r}: the value is not valid YAML") from None
        parts = key.strip().split(".")
        node: Any = result
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                index = _list_index(node, part, override)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:  # absent, or an empty YAML section
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(
                    f"--set {override!r}: {'.'.join(parts[:depth])} is a value, not a section"
                )
    return result


def _list_index(items: list, part: str, override: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return index
    raise ConfigError(f"--set {override!r}: no list item {part!r} (use an index or a name)")


def load_config(
    path: str | Path, overrides: Sequence[str] = ()
) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Read, override and validate an experiment file.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    overrides : sequence of str
        ``key=value`` settings applied before validation (``clvmodels run --set``).

    Returns
    -------
    (ExperimentConfig, dict)
        The validated configuration and the raw mapping it came from.

    Examples
    --------
    >>> import importlib.resources, pathlib
    >>> config, _ = load_config(pathlib.Path("configs/cdnow.yaml"))  # doctest: +SKIP
    """
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides)
    return parse_config(raw, base_dir=path.parent, source=str(path)), raw


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of an experiment file (``clvmodels validate --schema``).

    Examples
    --------
    >>> sorted(config_json_schema()["required"])
    ['data', 'models', 'name']
    """
    return ExperimentConfig.model_json_schema()

"""The Spark engine: summaries and patterns of PySpark DataFrames, in Spark.

A PySpark DataFrame passed to :func:`clvmodels.summarize`,
:func:`clvmodels.calibration_holdout` or :func:`clvmodels.compress` never goes to the
driver whole (:func:`clvmodels.score` of one is in :mod:`clvmodels.scoring`, above this
layer):

* **summaries** run the shared SQL of :mod:`clvmodels.data._sql` in Spark: one
  validation pass (a single row is collected; bad input raises the pandas engine's
  errors), then the per-customer aggregates, which are range-partitioned by customer
  and turned into the published columns on the executors by ``mapInPandas`` calling
  the same Python code as the pandas and DuckDB engines
  (:meth:`~clvmodels.data._sql.SummaryPlan.finish`). The result is a lazy PySpark
  DataFrame: the customer id column (named ``customer_id=``, with its Spark type),
  then exactly the columns of the pandas result with the same values, sorted by
  customer id;
* :func:`compress_spark` groups the patterns in Spark and collects only them.

Differences from the in-memory result, all forced by Spark:

* a PySpark DataFrame has no ``attrs``: the settings that pandas keeps in
  ``frame.attrs["clvmodels"]`` (time unit, granularity, end dates) are stored in the
  metadata of every field of the schema instead
  (``df.schema["frequency"].metadata["clvmodels"]``); :func:`clvmodels.compress` of
  such a frame restores them as the ``attrs`` of the patterns, so a model fitted on
  them knows its time unit, and :func:`collect_summary` collects a summary with its
  ``attrs`` (``toPandas()`` drops them). Selecting columns keeps field metadata;
  computing new columns does not;
* ``first_purchase`` and ``last_purchase`` are ``TIMESTAMP_NTZ`` (wall times, like the
  naive pandas columns; ``toPandas()`` gives the same values in any session time
  zone);
* times are local wall time as everywhere in clvmodels. A ``TIMESTAMP_NTZ`` column
  *is* a wall time. A ``TIMESTAMP`` column holds instants, which Spark shows (in
  ``show()``, ``collect()``, ``toPandas()``) in the session time zone
  ``spark.sql.session.timeZone``: its wall time is taken in the session time zone at
  the time of the call, i.e. the summary is that of ``df.toPandas()`` then. That zone
  is written into the SQL (``from_utc_timestamp``) and all other time arithmetic is on
  ``TIMESTAMP_NTZ``, so the lazy result does not change when the session time zone
  changes before it is computed. While the SQL is analysed and the validation pass
  runs, the session time zone is set to UTC (and restored afterwards), so that strings
  parsed with ``date_format`` cannot meet a daylight-saving gap; another thread using
  the same session at that moment would see UTC;
* strings without ``date_format`` are read by Spark's ``CAST(... AS TIMESTAMP_NTZ)``
  (ISO 8601 forms, a UTC offset is ignored, i.e. the local time kept); pandas'
  fallback that infers other layouts (``"01/31/2024"``) is not available: pass
  ``date_format=``, whose ``strptime`` directives are translated to a Spark datetime
  pattern (``%Y %m %d %H %I %M %S %f %p %j %b %B``; ``%y``, ``%z``, ``%Z``, weekday
  names and the week directives are refused);
* the example customer of an error is the smallest id among the bad rows (as with
  DuckDB), not the first bad row; rows without a customer id are counted but not
  located (pandas names the first row);
* floating-point sums (amounts) are added in Spark's order: they agree with pandas to
  about 1e-15 relative; counts, recency, T and timestamps are identical.

The executors import clvmodels (the functions passed to ``mapInPandas`` live here), so
it must be installed where the Python workers run; pyarrow is needed for
``mapInPandas``. The source is bound to the SQL through ``spark.sql``'s DataFrame
arguments, not a temporary view of the caller's session. Tested with classic PySpark
(local mode); Spark Connect uses the same calls but is not tested.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InvalidDataError
from ._sql import (
    Column,
    SqlSource,
    SummaryPlan,
    pattern_counts,
    plan_calibration_holdout,
    plan_summary,
)

__all__ = [
    "SparkSource",
    "calibration_holdout_sql",
    "collect_summary",
    "compress_spark",
    "strptime_to_spark",
    "summarize_sql",
]

_TIME_ZONE = "spark.sql.session.timeZone"
_EPOCH = "TIMESTAMP_NTZ '1970-01-01 00:00:00'"


def _string_literal(text: str) -> str:
    """A Spark SQL string literal (Spark escapes with backslashes, not doubled quotes)."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------- date formats

# strptime directive -> (lenient Spark pattern, fixed width next to another number)
_NUMBERS = {
    "Y": ("yyyy", "yyyy"), "m": ("M", "MM"), "d": ("d", "dd"), "H": ("H", "HH"),
    "I": ("h", "hh"), "M": ("m", "mm"), "S": ("s", "ss"), "f": ("SSSSSS", "SSSSSS"),
    "j": ("D", "DDD"),
}  # fmt: skip
_WORDS = {"p": "a", "b": "MMM", "h": "MMM", "B": "MMMM"}
_REFUSED = {
    "y": "two-digit years (Spark reads 00-99 as 2000-2099, Python as 1969-2068)",
    "z": "UTC offsets", "Z": "time zone names", "U": "week numbers", "W": "week numbers",
    "V": "ISO weeks", "G": "ISO years", "u": "weekday numbers", "w": "weekday numbers",
    "c": "locale formats", "x": "locale formats", "X": "locale formats",
    "a": "weekday names, which Spark does not parse",
    "A": "weekday names, which Spark does not parse",
}  # fmt: skip


def strptime_to_spark(date_format: str) -> str:
    """Translate a ``strptime`` format into a Spark datetime pattern.

    A number directive between separators is read leniently (``%d`` accepts ``5``
    and ``05``, as ``strptime`` does); next to another number it has its fixed width
    (``%Y%m%d`` reads ``19970101``). Literal text is quoted.

    Parameters
    ----------
    date_format : str
        A ``strptime`` format such as ``"%Y-%m-%d"`` or ``"%d/%m/%Y %H:%M"``.

    Returns
    -------
    str
        The pattern for Spark's ``to_timestamp``.

    Raises
    ------
    InvalidDataError
        For directives Spark cannot read with the same meaning (``%y``, ``%z``,
        ``%Z``, weekday names, week numbers, locale formats) or a lone ``%``.

    Examples
    --------
    >>> strptime_to_spark("%Y%m%d")
    'yyyyMMdd'
    >>> strptime_to_spark("%d/%m/%Y %H:%M")
    'd/M/yyyy H:m'
    >>> strptime_to_spark("%Y-%m-%dT%H:%M:%S.%f")
    "yyyy-M-d'T'H:m:s.SSSSSS"
    """
    tokens: list[tuple[str, str]] = []  # ("directive", letter) or ("text", characters)
    position = 0
    while position < len(date_format):
        char = date_format[position]
        if char != "%":
            tokens.append(("text", char))
            position += 1
            continue
        if position + 1 >= len(date_format):
            raise InvalidDataError(f"date_format={date_format!r} ends with a lone '%'.")
        letter = date_format[position + 1]
        position += 2
        if letter == "%":
            tokens.append(("text", "%"))
        elif letter in _NUMBERS or letter in _WORDS:
            tokens.append(("directive", letter))
        else:
            what = _REFUSED.get(letter, "this directive")
            raise InvalidDataError(
                f"date_format={date_format!r}: the Spark engine cannot read %{letter} "
                f"({what}) as Python does. Parse the column in Spark yourself (e.g. "
                "to_timestamp) and pass the timestamps, or change the format."
            )
    pattern: list[str] = []
    text = ""
    for k, (kind, value) in enumerate(tokens):
        if kind == "text":
            text += value
            continue
        if text:
            pattern.append(_pattern_text(text))
            text = ""
        if value in _WORDS:
            pattern.append(_WORDS[value])
            continue
        neighbours = tokens[max(k - 1, 0) : k] + tokens[k + 1 : k + 2]
        adjacent = any(other == "directive" and letter in _NUMBERS
                       for other, letter in neighbours)  # fmt: skip
        pattern.append(_NUMBERS[value][1 if adjacent else 0])
    if text:
        pattern.append(_pattern_text(text))
    return "".join(pattern)


def _pattern_text(text: str) -> str:
    if any(c.isalpha() or c in "'[]{}#" for c in text):
        return "'" + text.replace("'", "''") + "'"
    return text


# -------------------------------------------------------------------- source


def _kind(data_type: Any) -> str:
    from pyspark.sql import types as T

    if isinstance(data_type, T.TimestampNTZType):
        return "timestamp"
    if isinstance(data_type, T.TimestampType):
        return "timestamp_session"
    if isinstance(data_type, T.DateType):
        return "date"
    if isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
        return "string"
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "integer"
    if isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        return "float"
    if isinstance(data_type, T.BooleanType):
        return "bool"
    return "other"


class SparkSource(SqlSource):
    """Transactions (or a summary) held by a PySpark DataFrame, queried with Spark SQL.

    The generated SQL reads the source under a unique name (:attr:`view`), which
    :meth:`query` binds to the DataFrame through ``spark.sql``'s DataFrame arguments:
    no temporary view is left behind, and the queries also work with Spark Connect.
    Timestamps are handled as ``TIMESTAMP_NTZ`` wall times (see the module docstring).

    Parameters
    ----------
    data : pyspark.sql.DataFrame
        The transactions or the summary; only read.

    Examples
    --------
    >>> with SparkSource(spark_frame) as source:  # doctest: +SKIP
    ...     kinds = {name: column.kind for name, column in source.columns().items()}
    """

    engine = "spark"
    timestamp_type = "TIMESTAMP_NTZ"
    text_type = "STRING"

    def __init__(self, data: Any) -> None:
        from pyspark.sql import types as T

        self.frame = data
        self.spark = data.sparkSession
        # Every column text: what spark.read.csv gives without inferSchema. clvmodels
        # then types the ids as it does a CSV file's (integers only when all are).
        self.untyped = all(
            isinstance(f.dataType, T.StringType) for f in data.schema.fields
        )
        # the zone in which TIMESTAMP columns are shown to the caller: their wall time
        self.time_zone = self.spark.conf.get(_TIME_ZONE)
        self.view = f"clvmodels_src_{uuid.uuid4().hex}"

    def query(self, sql: str) -> Any:
        """``sql`` (reading :attr:`view`) as a PySpark DataFrame, analysed now."""
        # spark.sql formats its text with str.format: braces of the SQL are escaped
        text = sql.replace("{", "{{").replace("}", "}}").replace(self.view, "{source}")
        return self.spark.sql(text, source=self.frame)

    @contextlib.contextmanager
    def utc(self) -> Iterator[None]:
        """Run (and analyse) SQL with the session time zone set to UTC, then restore it."""
        before = self.spark.conf.get(_TIME_ZONE)
        self.spark.conf.set(_TIME_ZONE, "UTC")
        try:
            yield
        finally:
            self.spark.conf.set(_TIME_ZONE, before)

    def columns(self) -> dict[str, Column]:
        return {
            field.name: Column(field.name, _kind(field.dataType), field.dataType.simpleString())
            for field in self.frame.schema.fields
        }

    def fetch(self, sql: str) -> dict[str, np.ndarray]:
        """Collect a small result (the validation row) as arrays; NULLs are masked."""
        result = self.query(sql)
        names = result.columns
        rows = result.collect()
        arrays: dict[str, np.ndarray] = {}
        for k, name in enumerate(names):
            values = [row[k] for row in rows]
            missing = [v is None for v in values]
            if any(missing):
                arrays[name] = np.ma.masked_array(np.array(values, dtype=object), mask=missing)
            else:
                arrays[name] = np.array(values) if values else np.array([], dtype=object)
        return arrays

    def fetch_frame(self, sql: str) -> pd.DataFrame:
        """The result of ``sql`` through ``toPandas()`` (Arrow when enabled)."""
        return self.query(sql).toPandas()

    def metadata(self) -> dict[str, Any]:
        """The settings stored in the schema by :func:`summarize_sql` (see the module
        docstring), as ``attrs``."""
        return _schema_settings(self.frame.schema)

    # ----------------------------------------------------------------- dialect
    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def floor_div(self, a: str, b: int) -> str:
        return f"((({a}) - pmod(({a}), {b})) div {b})"

    def epoch_ns(self, ts: str) -> str:
        # on TIMESTAMP_NTZ a difference in microseconds does not depend on any time zone
        return f"(timestampdiff(MICROSECOND, {_EPOCH}, {ts}) * 1000)"

    def session_wall_time(self, expr: str) -> str:
        # the instant's wall time in the caller's session time zone, as TIMESTAMP_NTZ
        zone = _string_literal(self.time_zone)
        micros = f"unix_micros(from_utc_timestamp({expr}, {zone}))"
        return f"timestampadd(MICROSECOND, {micros}, {_EPOCH})"

    def try_cast(self, expr: str, sql_type: str) -> str:
        return f"try_cast({expr} AS {sql_type})"

    def parse_time(self, expr: str, date_format: str) -> str:
        pattern = _string_literal(strptime_to_spark(date_format))
        # parsed in the session time zone (UTC while clvmodels runs), read back in it
        return f"CAST(try_to_timestamp({expr}, {pattern}) AS TIMESTAMP_NTZ)"

    def timestamp_literal(self, text: str) -> str:
        return f"TIMESTAMP_NTZ '{text}'"

    def literal(self, text: str) -> str:
        return _string_literal(text)

    def replace_all(self, expr: str, pattern: str, replacement: str) -> str:
        return f"regexp_replace({expr}, {self.literal(pattern)}, {self.literal(replacement)})"

    def backref(self, group: int) -> str:
        return f"${group}"

    def full_match(self, expr: str, pattern: str) -> str:
        return f"({expr} RLIKE {self.literal('^(' + pattern + ')$')})"

    # --------------------------------------------------------------- summaries
    def summary(self, plan: SummaryPlan) -> Any:
        """The summary of ``plan`` as a lazy PySpark DataFrame (see the module docstring)."""
        from pyspark.sql import types as T

        customer_type = (
            T.LongType() if plan.integer_ids else self.frame.schema[plan.customer_id].dataType
        )
        template = plan.finish(_no_rows(plan.with_amount))
        if plan.customer_id in template.columns:
            raise InvalidDataError(
                f"customer_id={plan.customer_id!r} is also the name of a summary column; "
                "rename the customer id column first."
            )
        metadata = {key: plan.metadata[key] for key in ("clvmodels", "clvmodels_rows")
                    if key in plan.metadata}  # fmt: skip
        fields = [T.StructField(plan.customer_id, customer_type, False, metadata)]
        fields += [T.StructField(name, _spark_type(dtype), True, metadata)
                   for name, dtype in template.dtypes.items()]  # fmt: skip
        aggregates = self.query(plan.sql)
        # a range partitioning on the customer keeps all rows of a customer together
        # (and the result sorted); the sort puts them next to each other in a partition
        grouped = aggregates.repartitionByRange("customer").sortWithinPartitions(
            "customer", "period"
        )
        return grouped.mapInPandas(_finisher(plan), T.StructType(fields))


def _schema_settings(schema: Any) -> dict[str, Any]:
    for field in schema.fields:
        settings = (field.metadata or {}).get("clvmodels")
        if isinstance(settings, dict):
            found = {"clvmodels": dict(settings)}
            rows = (field.metadata or {}).get("clvmodels_rows")
            if isinstance(rows, dict):
                found["clvmodels_rows"] = dict(rows)
            return found
    return {}


def _no_rows(with_amount: bool) -> dict[str, np.ndarray]:
    """Aggregate rows of no customer: :meth:`SummaryPlan.finish` gives the columns."""
    names = ["period", "n_windows", "first_window", "last_window", "first_time_ns",
             "last_time_ns"]  # fmt: skip
    rows = {"customer": np.array([], dtype=object)}
    rows.update({name: np.array([], dtype=np.int64) for name in names})
    if with_amount:
        rows["total_amount"] = np.array([], dtype=np.float64)
        rows["first_window_amount"] = np.array([], dtype=np.float64)
    return rows


def _spark_type(dtype: Any) -> Any:
    from pyspark.sql import types as T

    if pd.api.types.is_datetime64_any_dtype(dtype):
        return T.TimestampNTZType()
    if pd.api.types.is_integer_dtype(dtype):
        return T.LongType()
    return T.DoubleType()


def _finisher(plan: SummaryPlan) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function: aggregate rows (sorted by customer within the
    partition) to summary rows. A customer whose rows reach the end of an Arrow batch
    waits for the next batch, so that :meth:`SummaryPlan.finish` sees all of them."""

    def finish(batch: pd.DataFrame) -> Iterator[pd.DataFrame]:
        rows = {name: batch[name].to_numpy() for name in batch.columns}
        summary = plan.finish(rows)
        if len(summary):  # (no customer of a calibration period in this batch)
            yield summary.reset_index()

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        pending: pd.DataFrame | None = None
        for batch in batches:
            if pending is not None:
                batch = pd.concat([pending, batch], ignore_index=True)
            if len(batch) == 0:
                continue
            customers = batch["customer"]
            last = (customers == customers.iloc[-1]).to_numpy()
            pending = batch[last]
            if not last.all():
                yield from finish(batch[~last])
        if pending is not None and len(pending):
            yield from finish(pending)

    return run


def _check_options(options: dict[str, Any] | None) -> None:
    if options:
        raise InvalidDataError(
            f"engine_options: the Spark engine takes none (got {sorted(options)[0]!r}); "
            "configure Spark through its session (spark.conf.set)."
        )


def summarize_sql(data: Any, options: dict[str, Any] | None, **settings: Any) -> Any:
    """:func:`clvmodels.summarize` of a PySpark DataFrame, computed in Spark.

    Parameters
    ----------
    data : pyspark.sql.DataFrame
        The transactions.
    options : dict, optional
        ``engine_options``; the Spark engine takes none.
    **settings
        The settings of :func:`clvmodels.summarize` (``customer_id``, ``date``,
        ``amount``, ``observation_end``, ``time_unit``, ``granularity``,
        ``date_format``, ``after_end``).

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy: the customer id column, then the columns of the pandas result, sorted by
        customer id; the settings are in the fields' metadata. Bad input has already
        raised (the validation pass runs now).

    Examples
    --------
    >>> import clvmodels
    >>> tx = spark.createDataFrame(clvmodels.datasets.load_cdnow())  # doctest: +SKIP
    >>> summary = clvmodels.summarize(tx, amount="amount", time_unit="W")  # doctest: +SKIP
    >>> summary.columns[:4]  # doctest: +SKIP
    ['customer_id', 'frequency', 'recency', 'T']
    """
    _check_options(options)
    with SparkSource(data) as source, source.utc():
        return source.summary(plan_summary(source, ordered=False, **settings))


def calibration_holdout_sql(data: Any, options: dict[str, Any] | None, **settings: Any) -> Any:
    """:func:`clvmodels.calibration_holdout` of a PySpark DataFrame, computed in Spark.

    Parameters and result as in :func:`summarize_sql`, with the settings of
    :func:`clvmodels.calibration_holdout`; only customers with a purchase in the
    calibration period are kept.

    Examples
    --------
    >>> frame = clvmodels.calibration_holdout(  # doctest: +SKIP
    ...     tx, calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")
    >>> frame.count()  # doctest: +SKIP
    2357
    """
    _check_options(options)
    with SparkSource(data) as source, source.utc():
        return source.summary(plan_calibration_holdout(source, ordered=False, **settings))


def compress_spark(summary: Any, columns: list[str] | None, weight: str) -> pd.DataFrame:
    """The patterns of a PySpark summary and their weights, grouped in Spark: only they
    are collected, for :func:`clvmodels.compress` to check and finish. The settings a
    Spark summary carries in its schema become the ``attrs`` of the result.

    Examples
    --------
    >>> patterns = clvmodels.compress(frame)  # doctest: +SKIP
    >>> patterns.attrs["clvmodels"]["time_unit"]  # doctest: +SKIP
    'W'
    """
    with SparkSource(summary) as source:
        return pattern_counts(source, columns, weight)


def collect_summary(summary: Any, customer_id: str | None = None) -> pd.DataFrame:
    """Collect a Spark summary as the pandas engine returns it.

    Parameters
    ----------
    summary : pyspark.sql.DataFrame
        From :func:`clvmodels.summarize` or :func:`clvmodels.calibration_holdout` on a
        PySpark DataFrame (small enough for the driver).
    customer_id : str, optional
        The customer id column; by default the first column.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id, times as ``datetime64[ns]``, and the settings stored in
        the schema as ``attrs["clvmodels"]``: equal to the pandas engine's result.

    Examples
    --------
    >>> summary = clvmodels.summarize(spark.createDataFrame(tx))  # doctest: +SKIP
    >>> collect_summary(summary).attrs["clvmodels"]["time_unit"]  # doctest: +SKIP
    'D'
    """
    frame = summary.toPandas().set_index(customer_id or summary.columns[0])
    for name in frame.columns:
        if frame[name].dtype.kind == "M":  # Arrow gives microseconds
            frame[name] = frame[name].astype("datetime64[ns]")
    frame.attrs.update(_schema_settings(summary.schema))
    return frame

"""Summaries computed by a SQL engine (DuckDB, Spark), with the semantics of summary.py.

An engine turns the transactions where they live into the per-customer
:class:`~clvmodels.data.summary.CustomerAggregates` of :mod:`clvmodels.data.summary`;
everything after that (``finalize``: frequency, recency, T, monetary value, the window
starts, the end dates) is the shared Python code, so every engine publishes the same
numbers. What SQL computes is deliberately small and exact:

* each row's time as int64 nanoseconds since the epoch, in local wall time, and the
  number of its granularity window (:meth:`Granularity.index`, restated below in integer
  SQL: floor division, calendar months since 1970-01);
* per customer (and per period in a calibration/holdout split): the count of distinct
  windows with a purchase, the first and last window numbers, the first and last raw
  times, the total amount and the amount of the first window.

Window numbers go back to Python, which turns them into window starts with the very
function the pandas engine uses. Only amounts are floating-point sums, whose order of
addition differs between engines (results agree to about 1e-15 relative).

Validation runs as one aggregate pass before the summary: every problem the pandas
engine reports (missing ids or dates, unparseable or out-of-range dates, missing,
infinite, negative or non-numeric amounts, rows after the end) is counted, with the
smallest customer id among the bad rows as the example.

A :class:`SqlSource` knows one engine: how to run a query on the source (a view named
:attr:`SqlSource.view`), its column types, and its dialect (quoting, floor division,
date parsing, the timestamp type). The work is split so that an engine can also finish
the summary where the data lives (Spark): :func:`plan_summary` and
:func:`plan_calibration_holdout` validate the transactions (one small result) and
return a :class:`SummaryPlan`, whose :meth:`~SummaryPlan.finish` turns the aggregate
rows of any set of whole customers into the published frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InvalidDataError
from .dates import (
    DATE_RANGE,
    FIRST_FIELD,
    OFFSET_PATTERN,
    SECOND_FIELD,
    Shape,
    choose_formats,
    split_zone,
    unparsed_dates_fix,
)
from .semantics import (
    NAT,
    CustomerAggregates,
    EndDate,
    canonical_index,
    check_duplicates_choice,
    check_holdout_within_data,
    finalize,
    handle_duplicates,
    parse_end,
    parse_period_ends,
    period_windows,
    row_counts,
    summary_metadata,
    time_label,
    warn_if_end_after_data,
    window_of,
)
from .timeunits import NS_PER_DAY, Granularity, parse_granularity, time_unit_nanoseconds

# The representable times of the summary semantics (int64 ns), as SQL timestamp literals.
_LOWEST_TIME = "1678-01-01 00:00:00"
_HIGHEST_TIME = "2262-04-11 23:47:16.854775"
#: the attrs key under which a frame typed by an engine records the duplicates it found
#: (private, so that a caller's own attrs are never taken for it)
TYPED_DUPLICATES = "_clvmodels_typed_duplicates"
#: a CSV id read as text is an integer when every value is one (at most 18 digits)
INTEGER_TEXT = "-?(0|[1-9][0-9]{0,17})"


@dataclass(frozen=True)
class Column:
    """A source column: its name and a coarse kind of its SQL type."""

    name: str
    # "timestamp" (naive wall time), "timestamp_tz" (an instant with a zone: refused),
    # "timestamp_session" (an instant shown in the engine's session time zone, Spark's
    # TIMESTAMP: read as that wall time), "date", "string", "integer", "float", "bool",
    # "other"
    kind: str
    sql_type: str


class SqlSource:
    """One engine's access to transactions or a summary (subclassed per engine)."""

    engine = "sql"
    #: the name under which the generated SQL reads the source
    view = "src"
    #: the SQL type of naive (wall-clock) timestamps, and of text
    timestamp_type = "TIMESTAMP"
    text_type = "VARCHAR"
    #: every column is text that clvmodels types itself (a CSV file)
    untyped = False

    def columns(self) -> dict[str, Column]:
        raise NotImplementedError

    def fetch(self, sql: str) -> dict[str, np.ndarray]:
        """Run ``sql`` (reading :attr:`view`) and return its columns as arrays."""
        raise NotImplementedError

    def fetch_frame(self, sql: str) -> pd.DataFrame:
        """The result of ``sql`` as a pandas DataFrame (missing values as NaN)."""
        rows = self.fetch(sql)
        return pd.DataFrame({name: masked_to_array(values, np.nan) if np.ma.isMaskedArray(values)
                             else values for name, values in rows.items()})  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        """The ``attrs`` a summary held by the engine carries (none by default)."""
        return {}

    def close(self) -> None:
        """Release what the source opened itself."""

    def __enter__(self) -> SqlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- dialect
    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def floor_div(self, a: str, b: int) -> str:
        """Integer floor division (SQL's integer division truncates towards zero)."""
        return f"((({a}) - (((({a}) % {b}) + {b}) % {b})) // {b})"

    def epoch_ns(self, ts: str) -> str:
        return f"epoch_ns({ts})"

    def session_wall_time(self, expr: str) -> str:
        """A ``timestamp_session`` column as a naive timestamp of its wall time."""
        raise NotImplementedError

    def try_cast(self, expr: str, sql_type: str) -> str:
        return f"TRY_CAST({expr} AS {sql_type})"

    def parse_time(self, expr: str, date_format: str) -> str:
        return f"try_strptime({expr}, '{_escape(date_format)}')"

    def min_by(self, value: str, key: str) -> str:
        return f"min_by({value}, {key})"

    def timestamp_literal(self, text: str) -> str:
        return f"TIMESTAMP '{text}'"

    def literal(self, text: str) -> str:
        """A string literal (regular expressions here use no backslashes)."""
        return f"'{_escape(text)}'"

    def replace_all(self, expr: str, pattern: str, replacement: str) -> str:
        return (
            f"regexp_replace({expr}, {self.literal(pattern)}, {self.literal(replacement)}, 'g')"
        )

    def backref(self, group: int) -> str:
        """The replacement text that stands for a captured group."""
        return f"\\{group}"

    def extract(self, expr: str, pattern: str) -> str:
        """The first group of ``pattern`` in ``expr`` ('' when it does not match)."""
        return f"regexp_extract({expr}, {self.literal(pattern)}, 1)"

    def full_match(self, expr: str, pattern: str) -> str:
        return f"regexp_full_match({expr}, {self.literal(pattern)})"

    def zone_of(self, column: str) -> str | None:
        """The time zone whose wall time a zoned timestamp column stands for, if known."""
        return None

    def wall_time_in(self, expr: str, zone: str) -> str:
        """A zoned timestamp as the naive wall time in ``zone``."""
        return f"timezone({self.literal(zone)}, {expr})"


def _escape(text: str) -> str:
    return text.replace("'", "''")


# ------------------------------------------------------------------- building SQL


def _require(columns: dict[str, Column], names: list[str], what: str, hint: str) -> None:
    missing = [n for n in names if n not in columns]
    if missing:
        available = ", ".join(repr(c) for c in list(columns)[:20])
        raise InvalidDataError(
            f"{what} has no column {missing[0]!r} (columns: {available}). {hint}"
        )


def _stripped(src: SqlSource, q: str, strip_offset: bool = True) -> str:
    """The text of a date column as :mod:`clvmodels.data.dates` reads it: trimmed of
    spaces and (``strip_offset``) without a UTC offset after the time of day."""
    text = f"trim(CAST({q} AS {src.text_type}))"
    if not strip_offset:
        return text
    return src.replace_all(text, OFFSET_PATTERN, src.backref(1))


def _shape(src: SqlSource, text: str) -> str:
    """The shape of a stripped date text (digits as 0); other characters than the
    recognised separators make it ``'?'``, so that free text has one shape."""
    shape = src.replace_all(text, "[0-9]", "0")
    return (
        f"CASE WHEN {src.full_match(shape, '[0 T:/.-]{1,32}')} THEN {shape} ELSE '?' END"
    )


def discover(
    src: SqlSource, columns: dict[str, Column], *, customer_id: str, date: str,
    date_format: str | None,
) -> tuple[list[Shape] | None, bool]:  # fmt: skip
    """What the types of an untyped source depend on, in one pass: the shapes of a text
    date column without ``date_format`` (None when not needed), and whether a CSV's id
    column holds only integers."""
    need_shapes = columns[date].kind == "string" and date_format is None
    need_ids = src.untyped and columns[customer_id].kind == "string"
    if not (need_shapes or need_ids):
        return None, False
    text = _stripped(src, src.quote(date))
    id_text = src.quote(customer_id)
    shape = _shape(src, "d") if need_shapes else "''"
    parts = [
        f"{shape} AS shape",
        "count(*) AS n",
        f"max({src.try_cast(src.extract(text, FIRST_FIELD), 'BIGINT')}) AS max_first",
        f"max({src.try_cast(src.extract(text, SECOND_FIELD), 'BIGINT')}) AS max_second",
        "min(d) AS example",
    ]
    if need_ids:  # only a text column can be matched against a regular expression
        parts.append(
            f"sum(CASE WHEN {id_text} IS NOT NULL AND NOT "
            f"{src.full_match(id_text, INTEGER_TEXT)} THEN 1 ELSE 0 END) AS not_integer"
        )
    rows = src.fetch(
        f"SELECT {', '.join(parts)} FROM (SELECT *, {text} AS d FROM {src.view}) AS s "
        "GROUP BY 1 ORDER BY 1"  # in shape order, as pandas groups them
    )
    n = len(rows["n"])
    shapes = [
        Shape(
            str(_python(rows["shape"][k])), _integer(rows["n"][k]),
            _optional(rows["max_first"][k]), _optional(rows["max_second"][k]),
            _python(rows["example"][k]),
        )
        for k in range(n)
        if _python(rows["shape"][k]) not in (None, "?")
    ]
    integer_ids = need_ids and sum(_integer(rows["not_integer"][k]) for k in range(n)) == 0
    return (shapes if need_shapes else None), integer_ids


def _optional(value: Any) -> int | None:
    value = _python(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value)


def _time_expression(
    src: SqlSource, column: Column, date_format: str | None, shapes: list[Shape] | None
) -> str:
    """SQL expression of the purchase time as a naive timestamp (NULL if unparseable)."""
    q = src.quote(column.name)
    timestamp = src.timestamp_type
    if column.kind == "timestamp_session":
        return src.session_wall_time(q)  # already times: a date_format has nothing to do
    if column.kind in ("timestamp", "date"):
        return f"CAST({q} AS {timestamp})" if column.kind == "date" else q
    if column.sql_type.strip('"').upper() in ("NULL", "VOID"):  # nothing but missing values
        return f"CAST(NULL AS {timestamp})"
    if column.kind == "timestamp_tz":
        zone = src.zone_of(column.name)
        if zone is not None:
            return src.wall_time_in(q, zone)
        raise InvalidDataError(
            f"column '{column.name}' is a timestamp with time zone ({column.sql_type}); "
            "clvmodels counts purchases in local wall time, which such a column no longer "
            "holds. Convert it to the customers' local time first (in SQL, e.g. "
            f"\"{column.name} AT TIME ZONE 'Europe/Berlin'\"), or pass a pandas "
            "DataFrame with a tz-aware column."
        )
    if column.kind == "string":
        if date_format is not None:
            fmt, zoned = split_zone(date_format)
            return src.parse_time(_stripped(src, q, strip_offset=zoned), fmt)
        formats = sorted(set(choose_formats(shapes or [], column.name).values()),
                         key=lambda f: (-len(f), f))  # fmt: skip
        if not formats:
            return f"CAST(NULL AS {timestamp})"
        text = _stripped(src, q)
        attempts = [src.parse_time(text, fmt) for fmt in formats]
        return attempts[0] if len(attempts) == 1 else f"coalesce({', '.join(attempts)})"
    if column.kind in ("integer", "float"):
        if date_format is None:
            raise InvalidDataError(
                f"column '{column.name}' holds numbers ({column.sql_type}), not dates. Pass "
                "date_format= (e.g. '%Y%m%d' for 19970101)."
            )
        digits = f"CAST(CAST({q} AS BIGINT) AS {src.text_type})"
        if column.kind == "float":
            digits = f"CASE WHEN {q} = floor({q}) THEN {digits} END"
        return src.parse_time(digits, date_format)
    raise InvalidDataError(
        f"column '{column.name}' has type {column.sql_type}, which is not a date or time. "
        "Pass the purchase time column as date=."
    )


def _amount_expression(src: SqlSource, column: Column) -> str:
    q = src.quote(column.name)
    if column.kind == "bool":
        raise InvalidDataError(
            f"column '{column.name}' is boolean ({column.sql_type}), not purchase values. "
            "Pass the column with the amounts as amount=."
        )
    if column.kind in ("integer", "float"):
        return f"CAST({q} AS DOUBLE)"
    return src.try_cast(q, "DOUBLE")


@dataclass
class Plan:
    """The normalised transactions of a source as a SQL subquery, and its checks."""

    src: SqlSource
    normalised: str  # SELECT customer, ts, ns, amount, and validity flags FROM src
    customer_column: str
    date_column: str
    amount_column: str | None
    granularity: Granularity
    integer_ids: bool = False  # text ids of an untyped source, read as integers
    date_format: str | None = None  # as given


def plan_transactions(
    src: SqlSource, *, customer_id: str, date: str, amount: str | None,
    granularity: Granularity, date_format: str | None,
) -> Plan:  # fmt: skip
    """Read the source's types and build the normalising subquery."""
    columns = src.columns()
    names = [customer_id, date] + ([amount] if amount is not None else [])
    _require(columns, names, "transactions",
             "Name the right column with customer_id=, date= or amount=.")  # fmt: skip
    if columns[customer_id].kind == "bool":
        raise InvalidDataError(
            f"column '{customer_id}' is boolean ({columns[customer_id].sql_type}), not "
            "customer ids. Pass the id column as customer_id=."
        )
    shapes, integer_ids = discover(
        src, columns, customer_id=customer_id, date=date, date_format=date_format
    )
    ts = _time_expression(src, columns[date], date_format, shapes)
    customer = src.quote(customer_id)
    if integer_ids:
        customer = f"CAST({customer} AS BIGINT)"
    low = src.timestamp_literal(_LOWEST_TIME)
    high = src.timestamp_literal(_HIGHEST_TIME)
    in_range = f"(ts >= {low} AND ts <= {high})"
    amount_sql = "CAST(0 AS DOUBLE)"
    raw_amount = "CAST(NULL AS DOUBLE)"
    if amount is not None:
        amount_sql = _amount_expression(src, columns[amount])
        raw_amount = src.quote(amount)
    normalised = (
        f"SELECT customer, raw_date, ts, raw_amount, amount, "
        f"CASE WHEN {in_range} THEN {src.epoch_ns('ts')} END AS ns, "
        f"{in_range} AS in_range FROM ("
        f"SELECT {customer} AS customer, {src.quote(date)} AS raw_date, "
        f"{ts} AS ts, {raw_amount} AS raw_amount, {amount_sql} AS amount "
        f"FROM {src.view}) AS typed"
    )
    return Plan(src, normalised, customer_id, date, amount, granularity, integer_ids,
                date_format)  # fmt: skip


def _count(condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _example(condition: str) -> str:
    return f"min(CASE WHEN {condition} THEN customer END)"


def check_transactions(
    plan: Plan, *, end_ns: int | None, split_ns: int | None = None
) -> dict[str, Any]:
    """One pass over the transactions: raise the pandas engine's errors, and return the
    row count, the latest time, the rows after ``end_ns`` (``n_after``, with an example
    customer) and those at or before ``split_ns`` (``n_through_split``)."""
    checks: list[tuple[str, str, str, str]] = [
        (plan.customer_column, "customer IS NULL", "have no customer id",
         "Drop them or fill in the id."),
        (plan.date_column, "raw_date IS NULL", "have a missing date (NaT/None)",
         "Fix or drop these rows."),
        (plan.date_column, "raw_date IS NOT NULL AND ts IS NULL",
         "are not dates that can be parsed",
         unparsed_dates_fix(plan.date_format)),
        (plan.date_column, "ts IS NOT NULL AND NOT in_range",
         f"are outside {DATE_RANGE}, the dates that can be used",
         "Placeholder dates such as 9999-12-31 or 0001-01-01 are not purchase times: "
         "fix or drop these rows."),
    ]  # fmt: skip
    if plan.amount_column is not None:
        inf = "CAST('Infinity' AS DOUBLE)"
        checks += [
            (plan.amount_column, "raw_amount IS NOT NULL AND amount IS NULL", "are not numbers",
             "Clean the column (e.g. remove currency symbols) and convert it to numbers."),
            (plan.amount_column, "raw_amount IS NULL OR isnan(amount)", "are missing (NaN)",
             "Fill or drop them; zero is allowed."),
            (plan.amount_column, f"abs(amount) = {inf}", "are infinite", "Fix or drop them."),
            (plan.amount_column, "amount < 0", "are negative",
             "Refunds and returns are not purchases: net them out or drop them first."),
        ]  # fmt: skip
    parts = ["count(*) AS n_rows", "max(ns) AS max_ns", "min(ns) AS min_ns"]
    for k, (_, condition, _, _) in enumerate(checks):
        parts += [f"{_count(condition)} AS bad_{k}", f"{_example(condition)} AS example_{k}"]
    if end_ns is not None:
        parts += [f"{_count(f'ns > {int(end_ns)}')} AS n_after",
                  f"{_example(f'ns > {int(end_ns)}')} AS example_after"]  # fmt: skip
    if split_ns is not None:
        parts.append(f"{_count(f'ns <= {int(split_ns)}')} AS n_through_split")
    row = plan.src.fetch(f"SELECT {', '.join(parts)} FROM ({plan.normalised}) AS t")
    values = {k: v[0] for k, v in row.items()}
    n_rows = int(values["n_rows"])
    if n_rows == 0:
        raise InvalidDataError(
            "transactions are empty: there are no rows to summarise. Check the filter or "
            "the file that produced them."
        )
    # the pandas engine's order: ids, then dates, then amounts
    for k, (column, _, problem, fix) in enumerate(checks):
        bad = _integer(values[f"bad_{k}"])
        if bad:
            example = _python(values[f"example_{k}"])
            where = "" if example is None else f" (e.g. customer {example!r})"
            raise InvalidDataError(
                f"column '{column}': {bad:,} of {n_rows:,} rows {problem}{where}. {fix}"
            )
    result = {"n_rows": n_rows, "max_ns": int(values["max_ns"]),
              "min_ns": int(values["min_ns"])}  # fmt: skip
    if end_ns is not None:
        result["n_after"] = _integer(values["n_after"])
        result["example_after"] = _python(values["example_after"])
    if split_ns is not None:
        result["n_through_split"] = _integer(values["n_through_split"])
    return result


def _integer(value: Any) -> int:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return 0
    if np.ma.is_masked(value):
        return 0
    return int(value)


def _python(value: Any) -> Any:
    if value is None or np.ma.is_masked(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def window_expression(src: SqlSource, granularity: Granularity) -> str:
    """:meth:`Granularity.index` in SQL, on the columns ``ns`` and ``ts``."""
    if granularity.kind == "fixed":
        return src.floor_div("ns", granularity.width_ns)
    if granularity.kind == "week":
        # 1970-01-01 was a Thursday: shift by 3 days so that weeks start on Monday
        return src.floor_div(f"{src.floor_div('ns', NS_PER_DAY)} + 3", 7)
    months = "((CAST(year(ts) AS BIGINT) - 1970) * 12 + CAST(month(ts) AS BIGINT) - 1)"
    per_window = {"month": 1, "quarter": 3, "year": 12}[granularity.kind]
    return months if per_window == 1 else src.floor_div(months, per_window)


def aggregate_sql(
    plan: Plan, *, end_ns: int, split_ns: int | None, with_amount: bool, ordered: bool = True
) -> str:
    """Per customer (and period: 0 = up to ``split_ns``, 1 = after; 0 when no split)
    aggregates of the transactions at or before ``end_ns``, ordered by customer and
    period unless not ``ordered``."""
    src = plan.src
    window = window_expression(src, plan.granularity)
    # The inner level has about one group per row, so it sets the memory of the query:
    # it carries only what the outer level needs (no constant period key, no raw times
    # without amounts, which only first_purchase / last_purchase use).
    if split_ns is None:
        inner_period, outer_period, inner_keys = "", "0 AS period", "customer, win"
    else:
        inner_period = f"CASE WHEN ns <= {int(split_ns)} THEN 0 ELSE 1 END AS period, "
        outer_period, inner_keys = "period", "customer, period, win"
    inner = ", min(ns) AS first_ns, max(ns) AS last_ns, sum(amount) AS amount" if (
        with_amount) else ""  # fmt: skip
    outer = (
        ", min(first_ns) AS first_time_ns, max(last_ns) AS last_time_ns, "
        f"sum(amount) AS total_amount, {src.min_by('amount', 'win')} AS first_window_amount"
        if with_amount else ""
    )  # fmt: skip
    return (
        f"SELECT customer, {outer_period}, count(*) AS n_windows, min(win) AS first_window, "
        f"max(win) AS last_window{outer} FROM ("
        f"SELECT customer, {inner_period}{window} AS win{inner} "
        f"FROM ({plan.normalised}) AS t WHERE ns <= {int(end_ns)} "
        f"GROUP BY {inner_keys}) AS w GROUP BY customer"
        + ("" if split_ns is None else ", period")
        + (" ORDER BY customer, period" if ordered else "")
    )


def customer_index(values: np.ndarray, name: str) -> pd.Index:
    """The customer ids of a result as a pandas Index named like the input column, of
    the dtype every reader gives them (:func:`~clvmodels.data.semantics.canonical_index`)."""
    if isinstance(values, np.ma.MaskedArray):
        values = values.filled()
    return canonical_index(values, name)


def masked_to_array(values: np.ndarray, fill: Any) -> np.ndarray:
    if isinstance(values, np.ma.MaskedArray):
        return values.filled(fill)
    return np.asarray(values)


# ------------------------------------------------------------------ the summaries


def _aggregates(
    rows: dict[str, np.ndarray], period: int, customers: pd.Index, granularity: Granularity,
    with_amount: bool, *, aligned: bool = False,
) -> Any:  # fmt: skip
    """The :class:`CustomerAggregates` of one period, aligned with ``customers``.

    ``aligned``: ``customers`` are the ids of this period's rows, in their order, so
    the columns are taken as they are (no lookup, no copy: at 10M customers the
    lookup table and the copies cost more memory than the result).
    """
    mine = masked_to_array(rows["period"], -1) == period
    everything = bool(mine.all())
    if aligned:
        if len(customers) != int(mine.sum()):
            raise AssertionError("aligned customers must be this period's rows")

        def spread(name: str, fill: Any, dtype: Any) -> np.ndarray:
            values = masked_to_array(rows[name], fill)
            return (values if everything else values[mine]).astype(dtype, copy=False)
    else:
        ids = customer_index(rows["customer"], customers.name)
        position = customers.get_indexer(ids[mine])
        known = position >= 0  # holdout rows of customers not acquired in calibration: dropped
        position = position[known]

        def spread(name: str, fill: Any, dtype: Any) -> np.ndarray:
            out = np.full(len(customers), fill, dtype=dtype)
            out[position] = masked_to_array(rows[name][mine], fill)[known]
            return out

    n_windows = spread("n_windows", 0, np.int64)
    present = n_windows > 0
    first_ns = np.full(len(customers), NAT, dtype=np.int64)
    last_ns = np.full(len(customers), NAT, dtype=np.int64)
    first_ns[present] = granularity.start_ns(spread("first_window", 0, np.int64)[present])
    last_ns[present] = granularity.start_ns(spread("last_window", 0, np.int64)[present])
    agg = CustomerAggregates(customers, n_windows, first_ns, last_ns)
    if with_amount:
        agg.total_amount = spread("total_amount", 0.0, np.float64)
        agg.first_window_amount = spread("first_window_amount", 0.0, np.float64)
        agg.first_time_ns = spread("first_time_ns", NAT, np.int64)
        agg.last_time_ns = spread("last_time_ns", NAT, np.int64)
    return agg


def _prepare(src: SqlSource, customer_id, date, amount, granularity, date_format) -> Plan:
    return plan_transactions(
        src, customer_id=customer_id, date=date, amount=amount,
        granularity=parse_granularity(granularity), date_format=date_format,
    )  # fmt: skip


def apply_duplicates(plan: Plan, n_rows: int, duplicates: str) -> int:
    """Count exact duplicate rows (same customer, time and amount) unless they are
    kept unseen; warn, refuse, or drop them from ``plan`` as ``duplicates`` says.
    Returns their number (0 when not counted)."""
    check_duplicates_choice(duplicates)
    if duplicates == "keep" or plan.amount_column is None:
        return 0  # without amounts a repeated row falls in its own window: no effect
    row = plan.src.fetch(
        "SELECT sum(n - 1) AS extra, min(CASE WHEN n > 1 THEN customer END) AS example "
        f"FROM (SELECT customer, ns, amount, count(*) AS n FROM ({plan.normalised}) AS t "
        "GROUP BY customer, ns, amount) AS d"
    )
    extra = _integer(row["extra"][0])
    if extra and duplicates == "drop":
        plan.normalised = (
            f"SELECT DISTINCT customer, ts, ns, amount FROM ({plan.normalised}) AS all_rows"
        )
    handle_duplicates(extra, n_rows, plan.customer_column, _python(row["example"][0]),
                      duplicates)  # fmt: skip
    return extra


def plan_typed_rows(
    src: SqlSource, *, customer_id: str, date: str, amount: str | None,
    date_format: str | None, duplicates: str = "warn",
) -> pd.DataFrame:  # fmt: skip
    """The transactions of ``src`` typed by the engine, checked as a summary checks them,
    as a pandas frame of the three columns (dates as naive wall times)."""
    plan = plan_transactions(
        src, customer_id=customer_id, date=date, amount=amount,
        granularity=parse_granularity("D"), date_format=date_format,
    )  # fmt: skip
    checked = check_transactions(plan, end_ns=None)
    found = apply_duplicates(plan, checked["n_rows"], duplicates)
    names = {"customer": customer_id, "ts": date}
    if amount is not None:
        names["amount"] = amount
    chosen = ", ".join(f"{key} AS {src.quote(name)}" for key, name in names.items())
    frame = src.fetch_frame(f"SELECT {chosen} FROM ({plan.normalised}) AS t")
    if frame[date].dtype.kind == "M":
        frame[date] = frame[date].astype("datetime64[ns]")
    else:  # engines without a native datetime result give Python datetimes
        frame[date] = pd.to_datetime(frame[date])
    frame.attrs[TYPED_DUPLICATES] = found
    return frame


def _after_end_error(plan: Plan, checked: dict[str, Any], name: str, given: Any) -> None:
    example = checked["example_after"]
    where = "" if example is None else f" (e.g. customer {example!r})"
    raise InvalidDataError(
        f"column '{plan.date_column}': {checked['n_after']:,} of {checked['n_rows']:,} rows "
        f"are after {name}={given!r}{where}. Pass a later {name}, filter the "
        "transactions, or pass after_end='drop' to ignore them."
    )


@dataclass
class SummaryPlan:
    """A validated summary waiting for its aggregates.

    ``sql`` is the aggregate query (:func:`aggregate_sql`); :meth:`finish` turns its
    rows into the published frame. It holds no engine, so it can travel to Spark's
    executors, and :meth:`finish` needs all rows of each customer it sees but nothing
    else: any set of whole customers can be finished on its own.
    """

    sql: str
    customer_id: str
    granularity: Granularity
    with_amount: bool
    unit_ns: float
    end_window_ns: int  # start of the window of the observation (or calibration) end
    holdout_end_window_ns: int | None  # start of the window of holdout_end; None: summarize
    metadata: dict[str, Any]  # the ``attrs`` of the result
    integer_ids: bool = False  # the customer column as the engine returns it is BIGINT

    def finish(self, rows: dict[str, np.ndarray]) -> pd.DataFrame:
        """The summary (indexed by customer, without ``attrs``) of the customers in the
        aggregate ``rows``: for a calibration/holdout split, those with a calibration
        row; holdout rows of other customers are dropped."""
        ids = customer_index(rows["customer"], self.customer_id)
        if self.holdout_end_window_ns is None:
            agg = _aggregates(rows, 0, ids, self.granularity, self.with_amount, aligned=True)
            return finalize(agg, end_window_ns=self.end_window_ns, unit_ns=self.unit_ns,
                            with_amount=self.with_amount)  # fmt: skip
        customers = ids[masked_to_array(rows["period"], -1) == 0]  # acquired in calibration
        calibration = finalize(
            _aggregates(rows, 0, customers, self.granularity, self.with_amount, aligned=True),
            end_window_ns=self.end_window_ns, unit_ns=self.unit_ns,
            with_amount=self.with_amount, suffix="_cal",
        )  # fmt: skip
        holdout = _aggregates(rows, 1, customers, self.granularity, self.with_amount)
        calibration["frequency_holdout"] = holdout.n_windows.astype(np.int64)
        if self.with_amount:
            calibration["monetary_value_holdout"] = np.divide(
                holdout.total_amount, holdout.n_windows,
                out=np.zeros(len(holdout.n_windows)), where=holdout.n_windows > 0,
            )  # fmt: skip
        calibration["duration_holdout"] = (
            self.holdout_end_window_ns - self.end_window_ns
        ) / self.unit_ns
        return calibration

    def publish(self, rows: dict[str, np.ndarray]) -> pd.DataFrame:
        """:meth:`finish` with the settings in ``attrs``: the summary as returned."""
        summary = self.finish(rows)
        summary.attrs.update(self.metadata)
        return summary


def plan_summary(
    src: SqlSource, *, customer_id: str, date: str, amount: str | None, observation_end: Any,
    time_unit: str, granularity: str, date_format: str | None, after_end: str,
    duplicates: str = "warn", ordered: bool = True,
) -> SummaryPlan:  # fmt: skip
    """Check the transactions of ``src`` (raising the pandas engine's errors) and plan
    :func:`clvmodels.summarize`."""
    unit_ns = time_unit_nanoseconds(time_unit)
    end = None if observation_end is None else parse_end(observation_end, "observation_end")
    plan = _prepare(src, customer_id, date, amount, granularity, date_format)
    checked = check_transactions(plan, end_ns=None if end is None else end.last_ns)
    found = apply_duplicates(plan, checked["n_rows"], duplicates)  # warned first, as in pandas
    if end is None:
        end = EndDate(None, checked["max_ns"], time_label(checked["max_ns"]))
    else:
        warn_if_end_after_data("observation_end", end, checked["min_ns"], checked["max_ns"])
    if checked.get("n_after"):
        if after_end == "raise":
            _after_end_error(plan, checked, "observation_end", observation_end)
        if checked["n_after"] == checked["n_rows"]:
            raise InvalidDataError(
                f"no transactions on or before observation_end={observation_end!r}; "
                "check the date."
            )
    with_amount = amount is not None
    sql = aggregate_sql(plan, end_ns=end.last_ns, split_ns=None, with_amount=with_amount,
                        ordered=ordered)  # fmt: skip
    end_ns = int(plan.granularity.start_ns(window_of(plan.granularity, end.last_ns)))
    metadata = summary_metadata(
        time_unit=time_unit, granularity=granularity, observation_end=end.label
    )
    metadata.update(row_counts(checked["n_rows"], found, duplicates, checked.get("n_after", 0)))
    return SummaryPlan(
        sql, customer_id, plan.granularity, with_amount, unit_ns, end_ns, None, metadata,
        plan.integer_ids,
    )  # fmt: skip


def plan_calibration_holdout(
    src: SqlSource, *, calibration_end: Any, holdout_end: Any, customer_id: str, date: str,
    amount: str | None, time_unit: str, granularity: str, date_format: str | None,
    after_end: str, duplicates: str = "warn", holdout_past_data: str = "error",
    ordered: bool = True,
) -> SummaryPlan:  # fmt: skip
    """Check the transactions of ``src`` and plan :func:`clvmodels.calibration_holdout`."""
    unit_ns = time_unit_nanoseconds(time_unit)
    cal, hold = parse_period_ends(calibration_end, holdout_end)
    plan = _prepare(src, customer_id, date, amount, granularity, date_format)
    # the checks in the in-memory engine's order: the data, its duplicates, the periods'
    # windows, the holdout against the data, rows after the end, the calibration period
    checked = check_transactions(plan, end_ns=hold.last_ns, split_ns=cal.last_ns)
    found = apply_duplicates(plan, checked["n_rows"], duplicates)
    cal_window, hold_window = period_windows(cal, hold, plan.granularity, granularity)
    check_holdout_within_data(cal, hold, checked["min_ns"], checked["max_ns"],
                              holdout_past_data)  # fmt: skip
    if checked["n_after"] and after_end == "raise":
        _after_end_error(plan, checked, "holdout_end", holdout_end)
    if not checked["n_through_split"]:
        raise InvalidDataError(
            f"no transactions on or before calibration_end={calibration_end!r}; check "
            "the date."
        )
    with_amount = amount is not None
    sql = aggregate_sql(plan, end_ns=hold.last_ns, split_ns=cal.last_ns,
                        with_amount=with_amount, ordered=ordered)  # fmt: skip
    cal_end_ns, hold_end_ns = (
        int(v) for v in plan.granularity.start_ns([cal_window, hold_window])
    )
    metadata = summary_metadata(
        time_unit=time_unit, granularity=granularity,
        calibration_end=cal.label, holdout_end=hold.label,
    )  # fmt: skip
    metadata.update(row_counts(checked["n_rows"], found, duplicates, checked["n_after"]))
    return SummaryPlan(sql, customer_id, plan.granularity, with_amount, unit_ns, cal_end_ns,
                       hold_end_ns, metadata, plan.integer_ids)  # fmt: skip


def summarize_sql(src: SqlSource, **settings: Any) -> pd.DataFrame:
    """:func:`clvmodels.summarize` computed by the engine of ``src`` (the settings of
    :func:`plan_summary`); the aggregates are fetched whole."""
    plan = plan_summary(src, **settings)
    return plan.publish(src.fetch(plan.sql))


def calibration_holdout_sql(src: SqlSource, **settings: Any) -> pd.DataFrame:
    """:func:`clvmodels.calibration_holdout` computed by the engine of ``src`` (the
    settings of :func:`plan_calibration_holdout`)."""
    plan = plan_calibration_holdout(src, **settings)
    return plan.publish(src.fetch(plan.sql))


def pattern_counts(src: SqlSource, columns: list[str] | None, weight: str) -> pd.DataFrame:
    """The distinct patterns of a summary held by the engine and their weights, grouped
    there: only they are returned, for :func:`clvmodels.compress` to check and finish
    as it does any frame."""
    from .semantics import PATTERN_COLUMNS

    available = src.columns()
    if columns is None:
        columns = [c for c in PATTERN_COLUMNS if c in available]
        if not columns:
            raise InvalidDataError(
                "compress: none of the columns frequency, recency, T, n_periods (or their "
                "_cal forms) is in the summary; name the pattern columns with columns=."
            )
    hint = "Name the pattern columns with columns= and the weight column with weight=."
    _require(available, columns, "summary", hint)
    keys = ", ".join(src.quote(c) for c in columns)
    total = f"sum({src.quote(weight)})" if weight in available else "count(*)"
    frame = src.fetch_frame(
        f"SELECT {keys}, {total} AS {src.quote(weight)} FROM {src.view} GROUP BY {keys} "
        f"ORDER BY {keys}"
    )
    frame.attrs.update(src.metadata())
    return frame

"""Per-customer summaries of transaction logs: the statistics every BTYD model consumes.

The public entry points (:func:`summarize`, :func:`calibration_holdout`,
:func:`compress`). What the numbers mean is defined once in
:mod:`clvmodels.data.semantics`; how any input is read and typed in
:mod:`clvmodels.data.reader` (in memory) and :mod:`clvmodels.data._sql` (DuckDB,
Spark), with the date rules of :mod:`clvmodels.data.dates`. This module only picks the
engine and hands each the same settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._validation import (
    as_pandas,
    bad_rows_error,
    require_columns,
    require_numeric,
    validate_summary,
)
from ..exceptions import InvalidDataError
from ._sql import TYPED_DUPLICATES
from .engines import resolve_engine
from .reader import Columns, is_in_memory, prepare_transactions, typed_frame
from .semantics import (
    PATTERN_COLUMNS,
    AfterEnd,
    EndDate,
    acquired_by_calibration_end,
    aggregate,
    check_after_end,
    check_duplicates_choice,
    check_holdout_within_data,
    cut_at_observation_end,
    finalize,
    parse_end,
    parse_period_ends,
    period_windows,
    row_counts,
    split_after,
    summary_metadata,
    time_label,
    warn_if_end_after_data,
    window_of,
)
from .timeunits import time_unit_nanoseconds

__all__ = ["calibration_holdout", "compress", "summarize"]


def summarize(
    transactions: Any,
    *,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    observation_end: Any = None,
    time_unit: str = "D",
    granularity: str = "D",
    date_format: str | None = None,
    after_end: AfterEnd = "raise",
    duplicates: str = "warn",
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> Any:
    """Summarise a transaction log into one row per customer.

    Parameters
    ----------
    transactions : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        One row per purchase. Only read, never modified. A pandas or polars DataFrame;
        CSV or Parquet files (``"sales/2024-*.parquet"``, or a list of paths), read by
        DuckDB out of core; a ``duckdb.DuckDBPyRelation``; or a PySpark DataFrame
        (summarised in Spark; the result is then a PySpark DataFrame).
    customer_id, date : str
        Names of the customer id and purchase time columns. Ids keep their type (text
        ids keep leading zeros; a column mixing text and numbers is an error). Dates
        may be datetimes (tz-aware ones keep their local wall time), ``datetime.date``
        objects or text, read by the rules of :mod:`clvmodels.data.dates`.
    amount : str, optional
        Name of the (non-negative) purchase value column; adds ``monetary_value`` and the
        historical columns.
    observation_end : date-like, optional
        End of observation, inclusive: a date means through the end of that day, a date
        and time that instant (see the module docstring). Defaults to the latest
        transaction. ``T`` runs to the start of the window that contains it.
    time_unit : str, default "D"
        Unit of ``recency`` and ``T``: "D", "W", "M" (30.4375 days), "Y" (365.25 days),
        or a multiple such as "7D". See :mod:`clvmodels.data.timeunits`.
    granularity : str, default "D"
        Window within which several purchases count as one: a calendar day by
        default; "h", "W" (calendar week from Monday), "M" (calendar month), ...
    date_format : str, optional
        ``strptime`` format of text (or integer, e.g. 19970131) dates, used by every
        engine. Without it the format is inferred from the whole column; dates that
        could be day/month or month/day are an error that asks for it.
    after_end : {"raise", "drop"}, default "raise"
        What to do with transactions after ``observation_end`` (checked first, even
        when there are none). An ``observation_end`` more than a week (and 2 % of
        the span) after the last transaction gets an
        :class:`~clvmodels.exceptions.EndDateWarning`.
    duplicates : {"warn", "keep", "drop", "error"}, default "warn"
        Exact duplicate rows (same customer, time and amount): kept with a
        :class:`~clvmodels.exceptions.DuplicateRowsWarning` that counts them, kept
        silently, dropped, or refused.
    engine : {"auto", "pandas", "duckdb", "spark"}, default "auto"
        Who computes: "auto" keeps DataFrames in memory (pandas), sends files and DuckDB
        relations to DuckDB and PySpark DataFrames to Spark. "duckdb" on a DataFrame
        scans it with DuckDB; "pandas" on a file loads it first. Every engine gives the
        same summary (amount sums agree to rounding).
    engine_options : dict, optional
        DuckDB: ``memory_limit`` (default a quarter of RAM, at least ``"750MB"``; e.g.
        ``"4GB"`` or ``"80%"`` of RAM; beyond it DuckDB spills to disk; typed files
        that fit it are summarised in memory), ``temp_directory`` (where it spills;
        default the system's temporary folder) and ``threads``. See
        ``docs/scaling.md``.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted), with ``frequency`` (repeat transactions),
        ``recency`` and ``T``; with ``amount`` also ``monetary_value`` (mean of the
        repeat transactions, 0 when there are none), ``n_purchases`` (transactions,
        i.e. windows with a purchase, first included), ``total_amount`` (all
        purchases), ``first_purchase`` and ``last_purchase`` (raw timestamps).
        ``frame.attrs["clvmodels"]`` records the settings, ``observation_end`` as its
        normalised text ("2024-01-29" for the whole day, else date and time; by default
        that of the latest transaction).

    Raises
    ------
    InvalidDataError
        Missing columns, empty input, missing or unparseable dates, dates outside
        1678-01-01 .. 2262-04-11, NaN, negative or boolean amounts, transactions after
        ``observation_end``, an ``observation_end`` that is not a date.

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "date": ["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"],
    ...     "amount": [10.0, 5.0, 20.0, 7.0],
    ... })
    >>> clvmodels.summarize(tx, amount="amount", observation_end="2024-01-29",
    ...                     time_unit="W")[["frequency", "recency", "T", "monetary_value"]]
                 frequency  recency    T  monetary_value
    customer_id                                         
    a                    1      2.0  4.0            20.0
    b                    0      0.0  3.0             0.0
    """  # noqa: W291
    check_after_end(after_end)
    unit_ns = time_unit_nanoseconds(time_unit)
    check_duplicates_choice(duplicates)
    settings = dict(
        customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
        granularity=granularity, date_format=date_format, after_end=after_end,
        duplicates=duplicates,
    )  # fmt: skip
    policy = duplicates
    transactions, sql_engine, duplicates = _engine_input(
        transactions, engine, engine_options, Columns(customer_id, date, amount),
        date_format, duplicates,
    )  # fmt: skip
    if sql_engine is not None:
        return _run_sql(sql_engine, transactions, engine_options, "summarize_sql",
                        observation_end=observation_end, **settings)  # fmt: skip
    end = None if observation_end is None else parse_end(observation_end, "observation_end")
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=granularity, date_format=date_format, duplicates=duplicates,
    )  # fmt: skip
    last_ns = int(tx.time_ns.max())
    rows = _row_counts(transactions, tx, policy, 0)
    if end is None:
        end = EndDate(None, last_ns, time_label(last_ns))
    else:
        warn_if_end_after_data("observation_end", end, int(tx.time_ns.min()), last_ns)
        rows["clvmodels_rows"]["rows_after_end"] = int((tx.time_ns > end.last_ns).sum())
        tx = cut_at_observation_end(tx, end, observation_end, after_end)
    end_ns = int(tx.granularity.start_ns(window_of(tx.granularity, end.last_ns)))
    agg = aggregate(tx, with_amount=amount is not None, order=tx.order)
    summary = finalize(agg, end_window_ns=end_ns, unit_ns=unit_ns, with_amount=amount is not None)
    summary.attrs.update(
        summary_metadata(time_unit=time_unit, granularity=granularity, observation_end=end.label)
    )
    summary.attrs.update(rows)
    return summary


def calibration_holdout(
    transactions: Any,
    *,
    calibration_end: Any,
    holdout_end: Any,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    time_unit: str = "D",
    granularity: str = "D",
    date_format: str | None = None,
    after_end: AfterEnd = "raise",
    duplicates: str = "warn",
    holdout_past_data: str = "error",
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> Any:
    """Split a transaction log into a calibration summary and holdout outcomes.

    Both end dates are inclusive and cut the raw purchase times (see the module
    docstring): the calibration period holds the transactions up to ``calibration_end``
    (a date: through the end of that day; a date and time: up to that instant), the
    holdout those after it up to ``holdout_end``, like the CDNOW papers (1997-01-01 ..
    1997-09-30 and 1997-10-01 .. 1998-06-30). With weekly or monthly windows a window
    can thus straddle ``calibration_end``; its purchases still go to the period they
    belong to. Only customers whose first purchase falls in the calibration period are
    kept.

    Parameters
    ----------
    transactions : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        One row per purchase; only read. As in :func:`summarize`.
    calibration_end, holdout_end : date-like
        Ends of the two periods; ``calibration_end`` must be earlier, and in an earlier
        window of ``granularity``. ``T_cal`` and ``duration_holdout`` are measured
        between the starts of the windows that contain them (and the first purchase).
    customer_id, date, amount, time_unit, granularity, date_format, after_end, duplicates
        As in :func:`summarize`; ``after_end`` applies to transactions after
        ``holdout_end``.
    holdout_past_data : {"error", "allow"}, default "error"
        A ``holdout_end`` more than a day (and 5 % of the holdout's length) after the
        last transaction of the log makes up inactivity that was never observed: an
        error, or with "allow" an :class:`~clvmodels.exceptions.EndDateWarning`.
    engine, engine_options
        As in :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`summarize` suffixed ``_cal`` (``frequency_cal``,
        ``recency_cal``, ``T_cal``, ...), plus ``frequency_holdout`` (transactions in
        the holdout, each window counted once), ``duration_holdout`` (in
        ``time_unit``) and, with ``amount``, ``monetary_value_holdout`` (mean value
        of the holdout transactions, 0 when there are none).
        ``frame.attrs["clvmodels"]`` records the settings, the ends as normalised text.

    Examples
    --------
    >>> import clvmodels
    >>> tx = clvmodels.datasets.load_cdnow()
    >>> frame = clvmodels.calibration_holdout(
    ...     tx, calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")
    >>> len(frame), int(frame["frequency_holdout"].sum())
    (2357, 1882)
    """
    check_after_end(after_end)
    unit_ns = time_unit_nanoseconds(time_unit)
    check_duplicates_choice(duplicates)
    transactions, sql_engine, kept = _engine_input(
        transactions, engine, engine_options, Columns(customer_id, date, amount),
        date_format, duplicates,
    )  # fmt: skip
    if sql_engine is not None:
        return _run_sql(
            sql_engine, transactions, engine_options, "calibration_holdout_sql",
            calibration_end=calibration_end, holdout_end=holdout_end,
            customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
            granularity=granularity, date_format=date_format, after_end=after_end,
            duplicates=duplicates, holdout_past_data=holdout_past_data,
        )  # fmt: skip
    cal, hold = parse_period_ends(calibration_end, holdout_end)
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=amount,
        granularity=granularity, date_format=date_format, duplicates=kept,
    )  # fmt: skip
    cal_window, hold_window = period_windows(cal, hold, tx.granularity, granularity)
    check_holdout_within_data(cal, hold, int(tx.time_ns.min()), int(tx.time_ns.max()),
                              holdout_past_data)  # fmt: skip
    rows = _row_counts(transactions, tx, duplicates, int((tx.time_ns > hold.last_ns).sum()))
    tx = split_after(tx, hold, "holdout_end", after_end)
    in_calibration = tx.time_ns <= cal.last_ns
    tx = acquired_by_calibration_end(tx, in_calibration, calibration_end)
    in_calibration = tx.time_ns <= cal.last_ns

    with_amount = amount is not None
    cal_end_ns, hold_end_ns = (
        int(v) for v in tx.granularity.start_ns([cal_window, hold_window])
    )
    calibration = finalize(
        aggregate(tx.subset(in_calibration), with_amount=with_amount),
        end_window_ns=cal_end_ns, unit_ns=unit_ns, with_amount=with_amount, suffix="_cal",
    )  # fmt: skip
    holdout = aggregate(tx.subset(~in_calibration), with_amount=with_amount)
    calibration["frequency_holdout"] = holdout.n_windows.astype(np.int64)
    if with_amount:
        calibration["monetary_value_holdout"] = np.divide(
            holdout.total_amount, holdout.n_windows,
            out=np.zeros(len(holdout.n_windows)), where=holdout.n_windows > 0,
        )  # fmt: skip
    calibration["duration_holdout"] = (hold_end_ns - cal_end_ns) / unit_ns
    calibration.attrs.update(
        summary_metadata(
            time_unit=time_unit, granularity=granularity,
            calibration_end=cal.label, holdout_end=hold.label,
        )
    )  # fmt: skip
    calibration.attrs.update(rows)
    return calibration


def _row_counts(transactions: Any, tx: Any, policy: str, after_end: int) -> dict[str, Any]:
    """``attrs["clvmodels_rows"]`` of an in-memory summary; a file read for it by an
    engine (``engine="pandas"``) had its duplicates counted (and dropped) there."""
    found = tx.duplicate_rows
    if isinstance(transactions, pd.DataFrame) and TYPED_DUPLICATES in transactions.attrs:
        found = int(transactions.attrs[TYPED_DUPLICATES])
    dropped = found if policy == "drop" else 0
    return row_counts(len(tx.codes) + dropped, found, policy, after_end)


def _engine_input(
    data: Any, engine: str, options: dict[str, Any] | None, columns: Columns | None,
    date_format: str | None = None, duplicates: str = "warn",
) -> tuple[Any, str | None, str]:
    """``(data, None, duplicates)`` for the pandas engine, with files, relations and
    Spark frames read into a typed frame first when it is asked for (their duplicates
    then already handled: ``"keep"``); else ``(data, "duckdb" | "spark", duplicates)``."""
    chosen = resolve_engine(data, engine)
    if chosen != "pandas" or is_in_memory(data):
        return data, (None if chosen == "pandas" else chosen), duplicates
    if columns is None:  # a summary, not transactions: loaded as it is
        from .engines import read_with_duckdb

        return read_with_duckdb(data, [], options), None, duplicates
    frame = typed_frame(data, columns, date_format=date_format, engine_options=options,
                        duplicates=duplicates)  # fmt: skip
    return frame, None, "keep"


def _run_sql(engine: str, data: Any, options: dict[str, Any] | None, function: str,
             **settings: Any) -> Any:  # fmt: skip
    if engine == "spark":
        from . import spark_engine

        return getattr(spark_engine, function)(data, options, **settings)
    from . import _sql
    from .engines import open_duckdb

    planner = {"summarize_sql": _sql.plan_summary,
               "calibration_holdout_sql": _sql.plan_calibration_holdout}[function]  # fmt: skip
    text = [settings["customer_id"], settings["date"]]
    with open_duckdb(data, options, text) as source:
        frame = _fetched_if_faster(source, settings)
        if frame is None:
            plan = planner(source, **settings)
            rows = source.fetch(plan.sql)
    if frame is not None:  # the same settings on the in-memory engine
        public = {"summarize_sql": summarize, "calibration_holdout_sql": calibration_holdout}
        return public[function](frame, **settings, engine="pandas")
    # Closing the connection first returns DuckDB's buffers (about 1.5 GB at 100M rows)
    # before the pandas frame is built: the peak is the larger of the two, not their sum.
    return plan.publish(rows)


#: what the in-memory engine holds per row at its peak (ids, times, windows, amounts,
#: the sort key and the codes), with room for pandas' copies
IN_MEMORY_BYTES_PER_ROW = 160


def _fetched_if_faster(source: Any, settings: dict[str, Any]) -> pd.DataFrame | None:
    """The transactions as a pandas frame when the in-memory engine is the faster
    route: typed columns with nothing to parse (integer ids, timestamps or dates,
    numeric amounts) whose rows fit in DuckDB's memory limit. On two cores the numpy
    engine summarises 10M such rows in about half of DuckDB's time (BENCHMARKS.md);
    larger data, or text to parse, stay in DuckDB, which streams and spills."""
    limit = source.memory_limit()
    if limit is None:  # a caller's relation: queried where it lives
        return None
    columns = source.columns()
    wanted = {settings["customer_id"]: ("integer",), settings["date"]: ("timestamp", "date")}
    if settings["amount"] is not None:
        wanted[settings["amount"]] = ("integer", "float")
    for name, kinds in wanted.items():
        if name not in columns or columns[name].kind not in kinds:
            return None
    if source.row_count() * IN_MEMORY_BYTES_PER_ROW > limit:
        return None
    quoted = ", ".join(source.quote(name) for name in wanted)
    return source.relation.query("src", f"SELECT {quoted} FROM src").df()


def compress(
    summary: Any,
    columns: str | list[str] | None = None,
    *,
    weight: str = "weight",
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Collapse identical customers into patterns with a ``weight`` (their count).

    Every likelihood in clvmodels is a sum over customers of a function of these
    columns, so a model fitted on the compressed frame (with its weights) is the same
    as one fitted on all customers, at a cost that grows with distinct patterns.

    Parameters
    ----------
    summary : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        Per-customer summary (from :func:`summarize` or :func:`calibration_holdout`),
        or an already compressed frame, whose ``weight`` column is then summed. In
        files, relations and Spark, the patterns are grouped by the engine and only
        they are collected.
    columns : str or list of str, optional
        Column(s) that define a pattern; by default those of ``frequency``, ``recency``,
        ``T``, ``n_periods`` (or their ``_cal`` forms) present in ``summary``. These
        must be numeric.
    weight : str, default "weight"
        Name of the weight column (read if present, written in the result).
    engine, engine_options
        As in :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        One row per distinct pattern, sorted, with the pattern columns and ``weight``
        (int64 when counting customers or summing whole-number weights, else float64).

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> s = pd.DataFrame({"frequency": [0, 0, 2], "recency": [0.0, 0.0, 3.0],
    ...                   "T": [5.0, 5.0, 5.0]})
    >>> clvmodels.compress(s).to_numpy().tolist()
    [[0.0, 0.0, 5.0, 2.0], [2.0, 3.0, 5.0, 1.0]]
    """
    if isinstance(columns, str):
        columns = [columns]
    elif columns is not None:
        columns = list(columns)
    summary, sql_engine, _ = _engine_input(summary, engine, engine_options, None)
    if sql_engine is not None:  # patterns grouped by the engine, finished here
        from ._sql import pattern_counts
        from .engines import open_source

        with open_source(summary, engine_options) as source:
            summary = pattern_counts(source, columns, weight)
    hint = "Name the pattern columns with columns= and the weight column with weight=."
    if not isinstance(summary, pd.DataFrame):
        present = list(getattr(summary, "columns", []))
        wanted = [c for c in PATTERN_COLUMNS if c in present] if columns is None else columns
        extra = [weight] if weight in present else []
        summary = as_pandas(summary, wanted + extra, "summary", hint=hint)
    if columns is None:
        columns = [c for c in PATTERN_COLUMNS if c in summary.columns]
        if not columns:
            raise InvalidDataError(
                "compress: none of the columns frequency, recency, T, n_periods (or their "
                "_cal forms) is in the summary; name the pattern columns with columns=."
            )
    require_columns(summary.columns, columns, "summary", hint=hint)
    for column in columns:
        if column in PATTERN_COLUMNS:
            require_numeric(summary, column, "summary")
    for suffix in ("", "_cal"):
        names = [f"frequency{suffix}", f"recency{suffix}", f"T{suffix}"]
        if all(n in columns for n in names):
            validate_summary(summary, frequency=names[0], recency=names[1], T=names[2])
    for column in columns:
        values = summary[column]
        if values.isna().any():
            raise bad_rows_error(
                column, values.isna().to_numpy(), summary.index, "are missing (NaN)",
                "Drop or fill them before compressing.",
            )  # fmt: skip
    patterns = summary[columns].reset_index(drop=True)  # a new frame: the caller's is kept
    if weight in summary.columns:
        require_columns(summary.columns, [weight], "summary", hint=hint)
        try:
            weights = summary[weight].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise InvalidDataError(
                f"column {weight!r} of the summary is not numeric (dtype "
                f"{summary[weight].dtype}). Convert it with pandas.to_numeric."
            ) from None
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            raise bad_rows_error(
                weight, bad, summary.index, "are negative, NaN or infinite",
                "Weights count customers: fix or drop these rows.",
            )  # fmt: skip
        if np.all(weights == np.floor(weights)) and weights.max(initial=0.0) < 2.0**63:
            patterns[weight] = weights.astype(np.int64)
        else:
            patterns[weight] = weights
        grouped = patterns.groupby(columns, sort=True)[weight].sum()
    else:
        grouped = patterns.groupby(columns, sort=True).size().astype(np.int64)
    result = grouped.rename(weight).reset_index()
    result.index.name = "pattern"
    result.attrs.update(summary.attrs)
    return result

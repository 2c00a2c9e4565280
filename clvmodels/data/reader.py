"""One way in: any transaction input to one typed table.

Every step that reads a transaction log (summaries, historical value, cohorts,
tracking, the machine-learning baseline, the experiment runner) reads it here, so ids,
dates and amounts get one set of types whatever the input:

* **ids keep their type**: strings stay strings (leading zeros included), numbers stay
  numbers; a column that mixes both (``"00004"`` and ``4``) is an error, since they
  would silently become different customers. A CSV file has no types: its id column is
  read as integers when every value is a plain integer (``-?(0|[1-9][0-9]*)``, at most
  18 digits), else as text, so ``"00001"`` keeps its zeros;
* **dates** follow :mod:`clvmodels.data.dates` on every engine;
* **amounts** are numbers (text is converted; non-numbers are an error);
* **exact duplicate rows** (same customer, time and amount) are counted and, by
  ``duplicates``, kept with a :class:`~clvmodels.exceptions.DuplicateRowsWarning`,
  kept silently, dropped, or refused. Without an amount column they are not looked
  for: a repeated row falls in the window of its original and changes nothing.

Files (CSV, Parquet, globs), DuckDB relations and Spark DataFrames are typed by their
engine (:mod:`clvmodels.data._sql`) and fetched as a typed frame; pandas and polars
DataFrames are typed here with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_pandas, bad_rows_error
from ..exceptions import InvalidDataError
from ._sql import TYPED_DUPLICATES
from .dates import dates_to_ns
from .semantics import (
    TimeOrder,
    Transactions,
    canonical_index,
    check_duplicates_choice,
    handle_duplicates,
    time_order,
)
from .timeunits import parse_granularity

__all__ = ["prepare_transactions", "read_log", "typed_frame"]

# ------------------------------------------------------------------------- ids


def customer_codes(series: pd.Series, column: str) -> tuple[np.ndarray, pd.Index]:
    """Codes into the sorted distinct ids, and those ids with their type kept."""
    missing = series.isna().to_numpy()
    if missing.any():  # worded as the SQL engines word it (they know no row numbers)
        raise InvalidDataError(
            f"column '{column}': {int(missing.sum()):,} of {len(series):,} rows have no "
            "customer id. Drop them or fill in the id."
        )
    series = _typed_ids(series, column)
    dense = _dense_integer_codes(series)
    if dense is not None:
        return dense[0], canonical_index(dense[1], column)
    codes, uniques = pd.factorize(series, sort=True)
    return codes.astype(np.int64, copy=False), canonical_index(uniques, column)


def _dense_integer_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted codes of integer ids spread over a range at most a few times their count,
    by direct indexing: what factorize does, without hashing (10M ids: 0.1 s, not 1 s)."""
    if not pd.api.types.is_integer_dtype(series.dtype) or len(series) == 0:
        return None
    values = series.to_numpy()
    if values.dtype.kind not in "iu":  # nullable integers with no missing value
        values = values.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low >= 4 * len(values) + 1024:
        return None
    offset = values - low
    seen = np.zeros(high - low + 1, dtype=bool)
    seen[offset] = True
    position = np.cumsum(seen) - 1
    return position[offset].astype(np.int64, copy=False), np.flatnonzero(seen) + low


def _typed_ids(series: pd.Series, column: str) -> pd.Series:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(dtype.categories.dtype)
        dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise InvalidDataError(
            f"column '{column}' is boolean ({dtype}), not customer ids. Pass the id "
            "column as customer_id=."
        )
    if dtype is not np.dtype(object):
        return series
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind in ("string", "integer", "floating", "mixed-integer-float", "decimal"):
        if kind == "string":
            return series
        return series.astype(np.int64 if kind == "integer" else np.float64)
    types = series.map(lambda v: type(v).__name__)
    counts = types.value_counts()
    parts = []
    for name, count in counts.items():
        example = series[types == name].iloc[0]
        parts.append(f"{count:,} rows hold {name} (e.g. {example!r})")
    raise InvalidDataError(
        f"column '{column}' mixes types: {'; '.join(parts)}. Ids of different types are "
        "different customers ('00004' is not 4): convert the column to one type first, "
        "e.g. with .astype(str), which keeps leading zeros of text ids."
    )


def ids_from_text(values: pd.Series) -> pd.Series:
    """Ids read from text (a CSV file) by the rule every reader applies: integers when
    every value is a plain integer of at most 18 digits, else the text as it is."""
    from ._sql import INTEGER_TEXT

    text = values.astype(str)
    if len(text) and text.str.fullmatch(INTEGER_TEXT).all():
        return text.astype(np.int64)
    return text


# --------------------------------------------------------------------- amounts


def amounts(series: pd.Series, column: str, ids: Any) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype) or (
        series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "boolean"
    ):
        raise InvalidDataError(
            f"column '{column}' is boolean (dtype {series.dtype}), not purchase values. "
            "Pass the column with the amounts as amount=, or convert it to numbers "
            "explicitly if True/False really are 1/0."
        )
    if not pd.api.types.is_numeric_dtype(series.dtype):
        numeric = pd.to_numeric(series, errors="coerce")
        bad = (numeric.isna() & series.notna()).to_numpy()
        if bad.any():
            raise bad_rows_error(
                column, bad, ids, "are not numbers",
                "Clean the column (e.g. remove currency symbols) and convert it with "
                "pandas.to_numeric.",
            )  # fmt: skip
        series = numeric
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    checks = (
        (np.isnan(values), "are missing (NaN)", "Fill or drop them; zero is allowed."),
        (np.isinf(values), "are infinite", "Fix or drop them."),
        (
            values < 0,
            "are negative",
            "Refunds and returns are not purchases: net them out or drop them first.",
        ),
    )
    for mask, problem, fix in checks:
        if mask.any():
            raise bad_rows_error(column, mask, ids, problem, fix)
    return values


# ----------------------------------------------------------------- the reader


@dataclass(frozen=True)
class Columns:
    """The caller's names of the transaction columns."""

    customer_id: str
    date: str
    amount: str | None = None

    def __post_init__(self) -> None:
        roles = {"customer_id": self.customer_id, "date": self.date, "amount": self.amount}
        given = [(role, name) for role, name in roles.items() if name is not None]
        for i, (role, name) in enumerate(given):
            for other, other_name in given[i + 1:]:
                if name == other_name:
                    raise InvalidDataError(
                        f"{role}={name!r} and {other}={other_name!r} name the same column; "
                        "each role needs its own column."
                    )

    def names(self) -> list[str]:
        return [self.customer_id, self.date] + ([self.amount] if self.amount else [])


def is_in_memory(data: Any) -> bool:
    """Read here, not by an engine: a pandas or polars DataFrame, or anything that is
    not a path, a DuckDB relation or a Spark DataFrame (refused by ``as_pandas``)."""
    from .duckdb_engine import is_path_like
    from .engines import is_duckdb_relation, is_spark_frame

    return not (is_path_like(data) or is_duckdb_relation(data) or is_spark_frame(data))


def typed_frame(
    data: Any, columns: Columns, *, date_format: str | None,
    engine_options: dict[str, Any] | None = None, duplicates: str = "warn",
) -> pd.DataFrame:  # fmt: skip
    """A file, relation or Spark DataFrame as a typed pandas frame of the three columns:
    ids as the engine types them, dates as naive ``datetime64[ns]`` wall times, amounts
    as float64. Every data error is raised here, as the engine's summary would."""
    from ._sql import plan_typed_rows
    from .engines import open_source

    with open_source(data, engine_options, [columns.customer_id, columns.date]) as source:
        return plan_typed_rows(
            source, customer_id=columns.customer_id, date=columns.date,
            amount=columns.amount, date_format=date_format, duplicates=duplicates,
        )  # fmt: skip


def prepare_transactions(
    transactions: Any,
    *,
    customer_id: str,
    date: str,
    amount: str | None,
    granularity: str,
    date_format: str | None,
    duplicates: str = "warn",
    engine_options: dict[str, Any] | None = None,
) -> Transactions:
    """Validate a transaction log of any kind and reduce it to typed arrays (the
    caller's data are only read).

    Pandas and polars DataFrames are typed here; files, DuckDB relations and Spark
    DataFrames by their engine (only the three columns are fetched).
    """
    check_duplicates_choice(duplicates)
    names = Columns(customer_id, date, amount)
    if is_in_memory(transactions):
        frame = as_pandas(transactions, names.names(), "transactions")
    else:
        frame = typed_frame(
            transactions, names, date_format=date_format, engine_options=engine_options,
            duplicates=duplicates,
        )  # fmt: skip
        duplicates = "keep"  # already handled by the engine
    if len(frame) == 0:
        raise InvalidDataError(
            "transactions are empty: there are no rows to summarise. Check the filter "
            "or the file that produced them."
        )
    window = parse_granularity(granularity)
    codes, customers = customer_codes(frame[customer_id], customer_id)
    row_ids = _LazyIds(customers, codes)
    time_ns = dates_to_ns(frame[date], date, row_ids, date_format)
    values = amounts(frame[amount], amount, row_ids) if amount is not None else None
    tx = Transactions(customers, codes, time_ns, window.index(time_ns), values, window, str(date))
    return _deduplicated(tx, customer_id, duplicates)


def read_log(
    data: Any, *, customer_id: str = "customer_id", date: str = "date",
    amount: str | None = None, date_format: str | None = None, duplicates: str = "warn",
    engine_options: dict[str, Any] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Read a transaction log of any kind once into the typed table every later step
    can use as it is.

    Returns
    -------
    pandas.DataFrame
        The columns ``customer_id``, ``date`` (naive ``datetime64[ns]`` wall times) and
        ``amount`` (float64) under the caller's names, ids of one type, every data
        error already raised; ``attrs["clvmodels_read"]`` counts the ``rows`` read and
        the exact ``duplicate_rows`` found (``duplicates_dropped`` of them removed).

    Examples
    --------
    >>> import pandas as pd
    >>> log = read_log(pd.DataFrame({"customer_id": ["007", "007"],
    ...                              "date": ["2024-01-31", "2024-02-01 10:00"]}))
    >>> log["customer_id"].tolist(), log["date"].dt.day.tolist()
    (['007', '007'], [31, 1])
    """
    check_duplicates_choice(duplicates)
    names = Columns(customer_id, date, amount)
    if is_in_memory(data):
        tx = prepare_transactions(
            data, customer_id=customer_id, date=date, amount=amount, granularity="D",
            date_format=date_format, duplicates=duplicates,
        )  # fmt: skip
        columns: dict[str, Any] = {
            customer_id: tx.customers.take(tx.codes),
            date: tx.time_ns.view("datetime64[ns]"),
        }
        if amount is not None:
            columns[amount] = tx.amount
        frame = pd.DataFrame(columns)
        found, rows = tx.duplicate_rows, len(tx.codes) + tx.dropped_rows
        dropped = tx.dropped_rows
    else:
        frame = typed_frame(data, names, date_format=date_format,
                            engine_options=engine_options, duplicates=duplicates)  # fmt: skip
        found = int(frame.attrs.get(TYPED_DUPLICATES, 0))
        dropped = found if duplicates == "drop" else 0
        rows = len(frame) + dropped
    frame.attrs = {"clvmodels_read": {"rows": rows, "duplicate_rows": found,
                                      "duplicates_dropped": dropped}}  # fmt: skip
    return frame


def duplicate_mask(
    codes: np.ndarray, time_ns: np.ndarray, amount: np.ndarray, order: TimeOrder | None
) -> np.ndarray | None:
    """Rows that repeat an earlier row exactly (same customer, time and amount), or
    None when no row does.

    Duplicates are neighbours in ``order`` (rows sorted by customer and time, the sort
    the aggregation needs anyway); only rows with such a neighbour are compared in
    full. Without an order (times that do not pack), a sorted 64-bit hash of each row
    finds the candidates. Hashing every row with pandas would cost several times more.
    """
    if len(codes) < 2:
        return None
    if order is not None:
        keys, ordered = order.key(codes, time_ns), order.sorted_key
    else:
        keys = _row_hash(codes, time_ns, amount)
        ordered = np.sort(keys)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(shared) == 0:
        return None
    candidates = np.flatnonzero(np.isin(keys, shared))
    exact = pd.DataFrame(
        {"c": codes[candidates], "t": time_ns[candidates], "a": amount[candidates]}, copy=False
    ).duplicated().to_numpy()
    if not exact.any():
        return None
    mask = np.zeros(len(codes), dtype=bool)
    mask[candidates[exact]] = True
    return mask


def _row_hash(codes: np.ndarray, time_ns: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """A 64-bit mix of the three columns (multiplications wrap around on purpose)."""
    bits = (amount + 0.0).view(np.uint64)  # + 0.0 makes -0.0 equal to 0.0
    h = codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= time_ns.view(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= bits * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return h


def _deduplicated(tx: Transactions, column: str, duplicates: str) -> Transactions:
    """``tx`` after the ``duplicates`` policy (exact duplicates: same customer, raw time
    and amount); ``duplicate_rows`` and ``dropped_rows`` say what was found."""
    if duplicates == "keep" or tx.amount is None:
        return tx  # without amounts a repeated row falls in its own window: no effect
    tx.order = time_order(tx.codes, tx.time_ns, tx.granularity)  # kept for aggregate
    repeated = duplicate_mask(tx.codes, tx.time_ns, tx.amount, tx.order)
    if repeated is None:
        return tx
    count = int(repeated.sum())
    if count == 0:
        return tx
    example = tx.customers[int(tx.codes[repeated].min())]  # the smallest, as in SQL
    if isinstance(example, np.generic):
        example = example.item()
    if duplicates == "drop":
        kept = tx.subset(~repeated)
        kept.duplicate_rows = kept.dropped_rows = count
        return kept
    handle_duplicates(count, len(tx.codes), column, example, duplicates)
    tx.duplicate_rows = count
    return tx


class _LazyIds:
    """Row -> customer id, computed only for the row an error message shows."""

    def __init__(self, customers: pd.Index, codes: np.ndarray) -> None:
        self._customers, self._codes = customers, codes

    def __getitem__(self, position: int) -> Any:
        return self._customers[self._codes[position]]

"""Per-customer attributes (static covariates) from a file, joined to a summary.

Two sources: a per-customer file (one row per customer), or columns of the transaction
file that are constant within each customer. Ids follow the rule of every reader (a
CSV's ids are integers only when every value is a plain integer, so ``"007"`` keeps its
zeros); a customer of the summary without attributes, a customer listed twice and a
"static" column that changes within a customer are errors naming the column, the count
and an example customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._validation import require_columns
from ..exceptions import InvalidDataError
from .reader import ids_from_text

__all__ = ["attach_attributes", "read_attributes"]


def read_attributes(path: str | Path, customer_id: str, columns: Sequence[str], *,
                    per_customer: bool = True) -> pd.DataFrame:  # fmt: skip
    """``columns`` of a CSV or Parquet file, one row per customer, indexed by id.

    With ``per_customer`` the file has one row per customer (a repeated id is an
    error); otherwise it is a transaction file whose ``columns`` must be the same on
    every row of a customer (their distinct values are read, so memory grows with the
    customers, not the rows).

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "customers.csv")
    >>> _ = open(path, "w").write("id,channel\\n007,search\\n008,social\\n")
    >>> read_attributes(path, "id", ["channel"]).index.tolist()
    ['007', '008']
    """
    import duckdb

    from .duckdb_engine import check_readable

    path = str(path)
    kind = "parquet" if path.lower().endswith((".parquet", ".pq")) else "csv"
    check_readable(path, kind)
    try:
        if kind == "csv":
            relation = duckdb.read_csv(path, dtype={customer_id: "VARCHAR"})
        else:
            relation = duckdb.read_parquet(path)
        hint = "Name the customer id column and the covariates as in the file."
        require_columns(relation.columns, [customer_id, *columns], path, hint=hint)
        selected = ", ".join(_quoted(c) for c in (customer_id, *columns))
        query = f"SELECT {'' if per_customer else 'DISTINCT '}{selected} FROM relation"
        frame = duckdb.sql(query).df()
    except duckdb.Error as error:
        raise InvalidDataError(f"{path}: cannot be read ({str(error).splitlines()[0]})") from None
    ids = frame[customer_id]
    frame[customer_id] = ids_from_text(ids) if kind == "csv" else ids
    repeated = frame[customer_id].duplicated(keep=False).to_numpy()
    if repeated.any():
        example = frame.loc[repeated, customer_id].iloc[0]
        if per_customer:
            raise InvalidDataError(
                f"{path}: {int(repeated.sum()):,} rows repeat a customer id in column "
                f"'{customer_id}' (e.g. {example!r}); give one row per customer."
            )
        rows = frame[frame[customer_id] == example]
        changing = [c for c in columns if rows[c].nunique(dropna=False) > 1]
        customers = frame.loc[repeated, customer_id].nunique()
        raise InvalidDataError(
            f"{path}: covariate {changing[0]!r} changes within {customers:,} "
            f"customer{'s' if customers != 1 else ''} "
            f"(e.g. customer {example!r}: {rows[changing[0]].tolist()[:5]}); a static "
            "covariate has one value per customer: give it in a per-customer file "
            "(data.customers) or make it constant."
        )
    return frame.set_index(customer_id)


def read_covariate_table(path: str | Path, customer_id: str, date: str) -> pd.DataFrame:
    """A long covariate table (CSV or Parquet) as a DataFrame for
    :func:`clvmodels.covariate_history`: every column, customer ids (when the file has
    ``customer_id``) read as the transaction files' are, so that ``"007"`` stays text.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "promotions.csv")
    >>> _ = open(path, "w").write("week,promo\\n2021-01-04,1\\n2021-01-11,0\\n")
    >>> read_covariate_table(path, "customer_id", "week")["promo"].tolist()
    [1, 0]
    """
    import duckdb

    from .duckdb_engine import check_readable

    path = str(path)
    kind = "parquet" if path.lower().endswith((".parquet", ".pq")) else "csv"
    check_readable(path, kind)
    try:
        if kind == "csv":
            header = duckdb.read_csv(path).columns
            types = {customer_id: "VARCHAR"} if customer_id in header else None
            relation = duckdb.read_csv(path, dtype=types) if types else duckdb.read_csv(path)
        else:
            relation = duckdb.read_parquet(path)
        require_columns(relation.columns, [date], path,
                        hint="Name its date column (data.covariate_history.date).")  # fmt: skip
        frame = relation.df()
    except duckdb.Error as error:
        raise InvalidDataError(f"{path}: cannot be read ({str(error).splitlines()[0]})") from None
    if customer_id in frame.columns and kind == "csv":
        frame[customer_id] = ids_from_text(frame[customer_id])
    return frame


def attach_attributes(summary: pd.DataFrame, attributes: pd.DataFrame,
                      columns: Sequence[str], source: str) -> pd.DataFrame:  # fmt: skip
    """``summary`` with ``columns`` of ``attributes`` joined on the customer id; every
    customer of the summary must have a row (the caller's frames are not changed).

    Examples
    --------
    >>> summary = pd.DataFrame({"frequency": [1, 0]}, index=pd.Index([7, 8], name="id"))
    >>> table = pd.DataFrame({"vip": [1, 0]}, index=[8, 7])
    >>> attach_attributes(summary, table, ["vip"], "customers.csv")["vip"].tolist()
    [0, 1]
    """
    clash = [c for c in columns if c in summary.columns]
    if clash:
        raise InvalidDataError(
            f"{source}: {clash} are already columns of the summary; rename the covariates."
        )
    missing = ~summary.index.isin(attributes.index)
    if missing.any():
        example = summary.index[missing][0]
        types = ""
        if len(attributes) and type(attributes.index[0]) is not type(example):
            types = (f" (its ids are {type(attributes.index[0]).__name__}, the "
                     f"transactions' {type(example).__name__}: write them alike)")  # fmt: skip
        raise InvalidDataError(
            f"{source}: {int(missing.sum()):,} of {len(summary):,} customers have no row "
            f"(e.g. customer {_plain(example)!r}){types}; every customer needs covariate "
            "values."
        )
    joined = summary.copy()
    for column in columns:
        joined[column] = attributes[column].reindex(summary.index).to_numpy()
    return joined


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value

"""Input validation shared by the data layer and the models.

Every check raises :class:`~clvmodels.exceptions.InvalidDataError` with one message
shape: the column, how many rows, one example customer id, what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InvalidDataError

__all__ = [
    "as_pandas",
    "bad_rows_error",
    "require_columns",
    "validate_summary",
]


def bad_rows_error(
    column: str, mask: np.ndarray, ids: Sequence[Any] | pd.Index, problem: str, fix: str
) -> InvalidDataError:
    """Build the standard error for rows of ``column`` flagged by ``mask``.

    ``ids`` are the customer ids aligned with ``mask``.
    """
    mask = np.asarray(mask, dtype=bool)
    count = int(mask.sum())
    example = ids[int(np.argmax(mask))]
    if isinstance(example, np.generic):
        example = example.item()
    return InvalidDataError(
        f"column '{column}': {count:,} of {mask.size:,} rows {problem} "
        f"(e.g. customer {example!r}). {fix}"
    )


def as_pandas(data: Any, columns: Iterable[str], what: str = "transactions") -> pd.DataFrame:
    """Return the needed ``columns`` of a pandas or polars DataFrame as pandas.

    The caller's object is never modified: a pandas input is only read, a polars input
    is converted after selecting the columns.
    """
    columns = list(dict.fromkeys(columns))
    if isinstance(data, pd.DataFrame):
        require_columns(data.columns, columns, what)
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        require_columns(data.columns, columns, what)
        return data.select(columns).to_pandas()
    raise InvalidDataError(
        f"{what} must be a pandas or polars DataFrame, got {type(data).__name__}. "
        "Read files with pandas.read_csv / read_parquet first."
    )


def require_columns(available: Iterable[Any], needed: Iterable[str], what: str) -> None:
    """Raise if any of ``needed`` is not among ``available`` column names."""
    available = [str(c) for c in available]
    missing = [c for c in needed if c not in available]
    if missing:
        shown = ", ".join(repr(c) for c in available[:12])
        more = "" if len(available) <= 12 else f" and {len(available) - 12} more"
        names = ", ".join(repr(c) for c in missing)
        raise InvalidDataError(
            f"{what}: column {names} not found; the data has {shown}{more}. "
            "Name the right column with the matching argument (e.g. customer_id=, date=, "
            "amount=, frequency=)."
        )


def _finite(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values)


def check_summary_arrays(
    x: np.ndarray,
    t_x: np.ndarray | None,
    big_t: np.ndarray | None,
    ids: Any,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
) -> None:
    """The checks of :func:`validate_summary` on finite arrays; names are for messages."""
    if (x < 0).any():
        raise bad_rows_error(
            frequency, x < 0, ids, "are negative",
            "Frequency counts repeat purchases and cannot be below 0.",
        )
    if (x != np.floor(x)).any():
        raise bad_rows_error(
            frequency, x != np.floor(x), ids, "are not whole numbers",
            "Frequency counts repeat purchase periods; did you pass a rate or a mean?",
        )
    if t_x is not None:
        if (t_x < 0).any():
            raise bad_rows_error(recency, t_x < 0, ids, "are negative", "Recency is >= 0.")
        mask = (x == 0) & (t_x > 0)
        if mask.any():
            raise bad_rows_error(
                recency, mask, ids, f"are > 0 while '{frequency}' is 0",
                "Recency is the time from the first to the last repeat purchase and must "
                "be 0 for customers without repeat purchases.",
            )
        if big_t is not None:
            # A relative tolerance absorbs rounding when T and recency were converted
            # between time units separately.
            mask = t_x > big_t * (1 + 1e-9) + 1e-12
            if mask.any():
                raise bad_rows_error(
                    recency, mask, ids, f"exceed column '{T}'",
                    "The last purchase cannot come after the end of observation; check "
                    "that both are in the same time unit and the same observation end.",
                )
    if big_t is not None and (big_t < 0).any():
        raise bad_rows_error(T, big_t < 0, ids, "are negative", "T is >= 0.")


def validate_summary(
    summary: pd.DataFrame,
    *,
    frequency: str = "frequency",
    recency: str | None = "recency",
    T: str | None = "T",
    weight: str | None = None,
    what: str = "summary",
) -> None:
    """Check a per-customer summary before a model or ``compress`` uses it.

    Raises on NaN or infinite values, negative or non-integer frequency, frequency 0
    with recency > 0, negative recency, recency greater than T, negative T, and
    negative or non-finite weights.

    Examples
    --------
    >>> import pandas as pd
    >>> bad = pd.DataFrame({"frequency": [1], "recency": [5.0], "T": [3.0]})
    >>> try:
    ...     validate_summary(bad)
    ... except ValueError as err:
    ...     print(str(err)[:47])
    column 'recency': 1 of 1 rows exceed column 'T'
    """
    columns = [c for c in (frequency, recency, T, weight) if c is not None]
    require_columns(summary.columns, columns, what)
    if len(summary) == 0:
        raise InvalidDataError(f"{what} is empty: there are no customers to use.")
    ids = summary.index
    arrays: dict[str, np.ndarray] = {}
    for column in columns:
        try:
            values = np.asarray(summary[column], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidDataError(
                f"column '{column}' of the {what} is not numeric (dtype "
                f"{summary[column].dtype}). Convert it with pandas.to_numeric."
            ) from None
        bad = ~_finite(values)
        if bad.any():
            raise bad_rows_error(
                column, bad, ids, "are NaN or infinite",
                "Drop or fill these customers before fitting.",
            )
        arrays[column] = values
    check_summary_arrays(
        arrays[frequency],
        None if recency is None else arrays[recency],
        None if T is None else arrays[T],
        ids,
        frequency=frequency,
        recency=recency or "recency",
        T=T or "T",
    )
    if weight is not None and (arrays[weight] < 0).any():
        raise bad_rows_error(
            weight, arrays[weight] < 0, ids, "are negative", "Weights count customers."
        )

"""Input validation shared by the data layer and the models.

Every check raises :class:`~clvmodels.exceptions.InvalidDataError` with one message
shape: the column, how many rows, one example customer id, what to do.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InvalidDataError

__all__ = [
    "MAX_DRAWS",
    "as_array",
    "as_pandas",
    "bad_rows_error",
    "check_draws",
    "check_interval",
    "finite_number",
    "format_bytes",
    "is_integer",
    "is_real",
    "require_columns",
    "require_numeric",
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


TRANSACTIONS_HINT = "Name the right column with customer_id=, date= or amount=."


def as_pandas(
    data: Any, columns: Iterable[Any], what: str = "transactions", *, hint: str | None = None
) -> pd.DataFrame:
    """Return the needed ``columns`` of a pandas or polars DataFrame as pandas.

    The caller's object is never modified: a pandas input is only read, a polars input
    is converted after selecting the columns. ``hint`` is passed to
    :func:`require_columns`.
    """
    columns = list(dict.fromkeys(columns))
    if isinstance(data, pd.DataFrame):
        require_columns(data.columns, columns, what, hint=hint)
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        require_columns(data.columns, columns, what, hint=hint)
        return data.select(columns).to_pandas()
    raise InvalidDataError(
        f"{what} must be a pandas or polars DataFrame, got {type(data).__name__}. "
        "Read files with pandas.read_csv / read_parquet first."
    )


def require_columns(
    available: Iterable[Any], needed: Iterable[Any], what: str, *, hint: str | None = None
) -> None:
    """Raise unless each of ``needed`` is exactly one of the ``available`` column names.

    Names are compared as they are (an integer column name ``0`` is found by ``0``, not
    by ``"0"``). A needed name that appears more than once is an error too, since its
    values would be a frame rather than a column. ``hint`` ends the message about
    missing columns: what argument names the right column (default: the transaction
    arguments ``customer_id=``, ``date=``, ``amount=``).
    """
    index = pd.Index(list(available), dtype=object, tupleize_cols=False)
    missing: list[Any] = []
    duplicated: list[Any] = []
    for name in list(needed):
        if name in missing or name in duplicated:
            continue
        try:
            location = index.get_loc(name)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            missing.append(name)
            continue
        if not isinstance(location, (int, np.integer)):
            duplicated.append(name)
    if missing:
        shown = ", ".join(repr(c) for c in index[:12])
        more = "" if len(index) <= 12 else f" and {len(index) - 12} more"
        names = ", ".join(repr(c) for c in missing)
        raise InvalidDataError(
            f"{what}: column {names} not found; the data has {shown}{more}. "
            f"{TRANSACTIONS_HINT if hint is None else hint}"
        )
    if duplicated:
        name = duplicated[0]
        count = int(sum(1 for c in index if c is name or c == name))
        raise InvalidDataError(
            f"{what}: column {name!r} appears {count} times, so it is ambiguous. Rename or "
            "drop the duplicates (e.g. data.loc[:, ~data.columns.duplicated()])."
        )


def require_numeric(frame: pd.DataFrame, column: Any, what: str = "summary") -> None:
    """Raise unless ``frame[column]`` has a numeric (not boolean, not text) dtype."""
    dtype = frame[column].dtype
    if pd.api.types.is_bool_dtype(dtype):
        kind = "is boolean"
    elif pd.api.types.is_numeric_dtype(dtype):
        return
    elif pd.api.types.is_string_dtype(dtype):
        kind = "holds text, not numbers"
    else:
        kind = "is not numeric"
    raise InvalidDataError(
        f"column {column!r} of the {what} {kind} (dtype {dtype}). Convert it with "
        "pandas.to_numeric."
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

    Raises on non-numeric (text or boolean) frequency, recency or T columns, NaN or
    infinite values, negative or non-integer frequency, frequency 0 with recency > 0,
    negative recency, recency greater than T, negative T, and negative or non-finite
    weights.

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
    require_columns(
        summary.columns, columns, what,
        hint="Name the right columns with frequency=, recency= and T=.",
    )  # fmt: skip
    if len(summary) == 0:
        raise InvalidDataError(f"{what} is empty: there are no customers to use.")
    ids = summary.index
    arrays: dict[str, np.ndarray] = {}
    for column in columns:
        if column != weight:
            require_numeric(summary, column, what)
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


# ------------------------------------------------------- settings and arguments

# Most parameter draws behind an interval (n_draws; clv.n_draws in an experiment file).
# An interval holds all draws of a customer at once (8 bytes each), and the draws
# themselves take 8 bytes per parameter: at this limit 8 MiB per customer and 32 MiB,
# beyond it the quantiles gain nothing (the Monte Carlo error of a 90 % bound from
# 1e6 draws is about 0.1 % of the posterior spread) while the time grows with n_draws.
MAX_DRAWS = 1_000_000


def check_interval(interval: Any, name: str = "interval") -> None:
    if not is_real(interval) or not 0 < interval < 1:
        raise InvalidDataError(
            f"{name}={interval!r}: give a level strictly between 0 and 1, e.g. 0.9 (not 90)."
        )


def is_real(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def is_integer(value: Any) -> bool:
    """A whole number (Python or numpy int), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None (a
    Python int too large for a float included)."""
    if not is_real(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if np.isfinite(number) else None


def check_draws(n_draws: Any, n_params: int = 4, setting: str = "n_draws") -> None:
    """``n_draws`` is a whole number from 1 to MAX_DRAWS; the error names ``setting``
    and the memory it would take."""
    if not is_integer(n_draws) or n_draws < 1:
        raise InvalidDataError(
            f"{setting}={n_draws!r}: give a whole number of parameter draws >= 1, e.g. 1000."
        )
    if n_draws > MAX_DRAWS:
        raise InvalidDataError(
            f"{setting}={n_draws:,}: at most {MAX_DRAWS:,} parameter draws. {n_draws:,} "
            f"would take {format_bytes(8 * n_draws * n_params)} for the draws and "
            f"{format_bytes(8 * n_draws)} per customer while its interval is computed, for "
            "no gain: the bounds from 1,000 to 10,000 draws are stable to about 1 %."
        )


def format_bytes(count: float) -> str:
    """``count`` bytes in binary units: '76 MiB', '1.5 GiB'.

    Examples
    --------
    >>> format_bytes(8 * 10_000_000 * 2357)
    '176 GiB'
    """
    if count < 1024:
        return f"{int(count)} bytes"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.3g} {unit}"
    return f"{value / 1024:.3g} PiB"


def as_array(value: Any, name: str) -> np.ndarray:
    """A non-negative finite float array from a scalar or sequence (horizons, n)."""
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidDataError(f"{name}={value!r}: use finite numbers >= 0.") from None
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidDataError(f"{name}={value!r}: use finite values >= 0.")
    return values

"""Scoring customers with a fitted model, where the summaries live.

:func:`score` computes the same per-customer predictions as the model's own methods
(and as ``clvmodels predict``): for a purchase model the expected purchases over a
horizon and the probability of being alive, for BG/BB the expected transaction
opportunities with a purchase, for Gamma-Gamma the expected spend. A DataFrame is
scored in memory; files and DuckDB relations are read by DuckDB in chunks and the
predictions written, chunk by chunk, to one Parquet file (memory bounded by the chunk,
not the customers); a PySpark DataFrame is scored on the executors with
``mapInPandas``, the model shipped once to each task. Every path calls
:func:`score_frame` on pandas chunks, so the numbers are those of local prediction.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InvalidDataError
from .models._base import horizon_in_units

__all__ = ["score", "score_frame"]


def score_frame(
    model: Any,
    frame: pd.DataFrame,
    *,
    horizon: Any = "12M",
    interval: float | None = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """Per-customer predictions of ``model`` for the rows of ``frame`` (pandas).

    Parameters
    ----------
    model : fitted clvmodels model
        BG/NBD, MBG/NBD, Pareto/NBD, BG/BB or Gamma-Gamma (maximum likelihood).
    frame : pandas.DataFrame or CovariateHistory
        Summary rows with the columns the model reads; the index is kept. For a
        Pareto/NBD fitted with time-varying covariates, a
        :func:`clvmodels.covariate_history` whose table reaches the horizon.
    horizon : str or float, default "12M"
        Future period of the purchase predictions: a duration such as ``"12M"`` or
        ``"52W"`` (converted with the model's ``time_unit_``), or a number in the
        model's time unit. For BG/BB, a number of transaction opportunities.
    interval : float, optional
        Also the bounds of this central interval (parameter uncertainty), as the
        model's prediction methods compute them.
    random_state : int, default 0
        Seed of the interval draws (the same draws for every chunk).

    Returns
    -------
    pandas.DataFrame
        ``expected_purchases`` and ``probability_alive`` (purchase models),
        ``expected_purchases`` (BG/BB), or ``expected_spend`` (Gamma-Gamma); with
        ``interval``, ``<name>_lower`` and ``<name>_upper`` after each.

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W")
    >>> model = clvmodels.BGNBD().fit(frame)
    >>> scores = score_frame(model, frame, horizon=39)
    >>> round(float(scores["expected_purchases"].sum()), 1)
    1653.4
    """
    predictions = _predictions(model, horizon, interval, random_state)
    parts = []
    for name, (predict, _) in predictions.items():
        value = predict(frame)
        if isinstance(value, pd.DataFrame):
            value = value.rename(columns={"estimate": name, "lower": f"{name}_lower",
                                          "upper": f"{name}_upper"})  # fmt: skip
        parts.append(value.rename(name) if isinstance(value, pd.Series) else value)
    return pd.concat(parts, axis=1)


# output column -> (its prediction for a frame, whether an interval adds bounds)
_Predictions = dict[str, tuple[Callable[[pd.DataFrame], Any], bool]]


def _predictions(model: Any, horizon: Any, interval: float | None,
                 random_state: int) -> _Predictions:  # fmt: skip
    """What :func:`score_frame` computes for ``model``. The model kind and the horizon
    are checked here, before any data is read, so that a Spark input can be refused
    on the driver and its output schema known without computing it."""
    draws = {"interval": interval, "random_state": random_state}
    from . import registry

    spec = registry.MODELS.get(getattr(model, "kind", None))
    role = spec.role if spec is not None else None
    if role == "spend":
        return {"expected_spend": (lambda frame: model.expected_spend(frame, **draws), True)}
    if role == "purchase" and spec.discrete:
        n = horizon if isinstance(horizon, (int, np.integer)) else None
        if n is None or n < 0:
            raise InvalidDataError(
                f"horizon={horizon!r}: BG/BB counts transaction opportunities; pass a "
                "whole number of future periods."
            )
        t: float = int(n)
    elif role == "purchase":
        t = horizon_in_units(horizon, getattr(model, "time_unit_", None))
    else:
        raise InvalidDataError(
            f"score: {type(model).__name__} is not a customer-level model to score; use a "
            "fitted BGNBD, MBGNBD, ParetoNBD, BGBB or GammaGamma."
        )
    return {
        "expected_purchases": (lambda frame: model.expected_purchases(frame, t, **draws), True),
        "probability_alive": (model.probability_alive, False),
    }


def _prediction_columns(predictions: _Predictions, interval: float | None) -> list[str]:
    """The columns of :func:`score_frame`'s result, in order."""
    names = []
    for name, (_, bounded) in predictions.items():
        names.append(name)
        if bounded and interval is not None:
            names += [f"{name}_lower", f"{name}_upper"]
    return names


def score(
    model: Any,
    data: Any,
    *,
    horizon: Any = "12M",
    interval: float | None = None,
    random_state: int = 0,
    id_column: str = "customer_id",
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    chunk_rows: int = 1_000_000,
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
) -> Any:
    """Score every customer of ``data`` with a fitted model, on the data's engine.

    Parameters
    ----------
    model : fitted clvmodels model
        See :func:`score_frame`.
    data : DataFrame, path, glob, DuckDB relation or PySpark DataFrame
        Per-customer summaries (``summarize`` / ``calibration_holdout`` output).
    horizon, interval, random_state
        As in :func:`score_frame`.
    id_column : str, default "customer_id"
        Customer id column of files, relations and Spark DataFrames (kept as the first
        output column); for a pandas DataFrame the index is the id.
    out : path, optional
        For files and relations: the Parquet file to write (required there); the
        predictions are written chunk by chunk and the file appears only when complete.
    overwrite : bool, default False
        Replace an existing ``out``.
    chunk_rows : int, default 1,000,000
        Rows per chunk read by DuckDB (memory grows with it, not with the file).
    engine, engine_options
        As in :func:`clvmodels.summarize`.

    Returns
    -------
    pandas.DataFrame, pathlib.Path or pyspark.sql.DataFrame
        The predictions for a DataFrame; ``out`` for files and relations; for Spark a
        lazy PySpark DataFrame (``id_column`` plus the prediction columns): ``score``
        computes nothing in Spark, so a lazy summary is computed once, when the scores
        are, and an empty one gives no scores rather than an error.

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W")
    >>> model = clvmodels.BGNBD().fit(frame)
    >>> clvmodels.score(model, frame, horizon=39).shape
    (2357, 2)
    """
    from .data.duckdb_engine import is_path_like
    from .data.engines import is_duckdb_relation, resolve_engine

    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise InvalidDataError(f"chunk_rows={chunk_rows!r}: a whole number >= 1.")
    if not hasattr(model, "params_"):
        from .exceptions import NotFittedError

        raise NotFittedError(f"score: {type(model).__name__} is not fitted; call fit first.")
    settings = {"horizon": horizon, "interval": interval, "random_state": random_state}
    chosen = resolve_engine(data, engine)
    if chosen == "spark":
        return _score_spark(model, data, id_column, settings)
    if chosen == "pandas" and not (is_path_like(data) or is_duckdb_relation(data)):
        from ._validation import as_pandas

        frame = as_pandas(data, list(getattr(data, "columns", [])), "data")
        return score_frame(model, frame, **settings)
    if out is None:
        raise InvalidDataError(
            "score: pass out= (a .parquet path) to score files or DuckDB relations; the "
            "predictions are written there chunk by chunk."
        )
    return _score_to_parquet(model, data, Path(out), overwrite, chunk_rows, id_column,
                             engine_options, settings)  # fmt: skip


def _score_spark(model: Any, data: Any, id_column: str, settings: dict[str, Any]) -> Any:
    """:func:`score` of a PySpark DataFrame: every Arrow batch is scored on the
    executors by :func:`score_frame` (``mapInPandas``), the model travelling with the
    task.

    Nothing is computed here: the model, the horizon and the columns are checked
    against the schema (errors are raised now, not in a task), so a lazy ``data``
    (a Spark summary) is computed once, when the scores are. An empty ``data`` gives
    no scores rather than an error, as finding that out would compute it.

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy: ``id_column`` (its Spark type) and the prediction columns (doubles).
    """
    from pyspark.sql import types as T

    columns = list(data.columns)
    if id_column not in columns:
        raise InvalidDataError(
            f"data has no column {id_column!r} (columns: "
            f"{', '.join(map(repr, columns[:20]))}); name the customer id column with "
            "id_column=."
        )
    names = _prediction_columns(_predictions(model, **settings), settings["interval"])
    # the columns the model reads, found as its prediction methods will find them in a
    # batch (the id column is its index there)
    readable = [name for name in columns if name != id_column]
    needed = [*model._column_names(pd.DataFrame(columns=readable)).values(),
              *getattr(model, "_extra_columns", tuple)()]
    model._require(readable, needed, "data")
    if id_column in names:
        raise InvalidDataError(
            f"id_column={id_column!r} is also the name of a prediction column; rename it."
        )
    id_field = data.schema[id_column]
    schema = T.StructType(
        [T.StructField(id_column, id_field.dataType, id_field.nullable)]
        + [T.StructField(name, T.DoubleType(), True) for name in names]
    )

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch):
                scores = score_frame(model, batch.set_index(id_column), **settings)
                yield scores[names].astype(np.float64).reset_index()

    return data.mapInPandas(run, schema)


def _score_to_parquet(model, data, out: Path, overwrite, chunk_rows, id_column, options,
                      settings) -> Path:  # fmt: skip
    from .data.engines import open_duckdb

    if out.suffix.lower() not in (".parquet", ".pq"):
        raise InvalidDataError(f"out={str(out)!r}: score writes Parquet; use a .parquet name.")
    if out.exists() and not overwrite:
        raise InvalidDataError(f"out={str(out)!r} exists; pass overwrite=True to replace it.")
    if not out.parent.exists():
        raise InvalidDataError(f"out={str(out)!r}: the folder {str(out.parent)!r} does not exist.")
    import duckdb

    with open_duckdb(data, options) as source:
        if id_column not in source.columns():
            raise InvalidDataError(
                f"data has no column {id_column!r} (columns: "
                f"{', '.join(map(repr, list(source.columns())[:20]))}); name the customer "
                "id column with id_column=."
            )
        handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".duckdb",
                                           dir=out.parent)  # fmt: skip
        os.close(handle)
        os.unlink(staging)  # DuckDB creates the database file itself
        partial = out.with_name(f".{out.name}.partial")
        try:
            with duckdb.connect(staging) as sink:
                created = False
                for chunk in source.iter_frames("SELECT * FROM src", chunk_rows):
                    frame = chunk.set_index(id_column)
                    scores = score_frame(model, frame, **settings).reset_index()
                    sink.register("clvmodels_chunk", scores)
                    if created:
                        sink.execute("INSERT INTO scores SELECT * FROM clvmodels_chunk")
                    else:
                        sink.execute("CREATE TABLE scores AS SELECT * FROM clvmodels_chunk")
                        created = True
                    sink.unregister("clvmodels_chunk")
                if not created:
                    raise InvalidDataError("score: the data has no rows to score.")
                sink.execute(f"COPY scores TO '{_sql_text(partial)}' (FORMAT parquet)")
            os.replace(partial, out)
        finally:
            Path(staging).unlink(missing_ok=True)
            Path(str(staging) + ".wal").unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
    return out


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")

"""Which engine computes a summary: pandas in memory, DuckDB out of core, or Spark.

``engine="auto"`` follows the data: pandas and polars DataFrames stay in memory (the
numpy engine of :mod:`clvmodels.data.summary`), paths, globs and DuckDB relations go to
DuckDB, PySpark DataFrames to Spark. Every engine implements the same definitions (see
:mod:`clvmodels.data._sql`) and is tested to give the same summaries.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import InvalidDataError

__all__ = ["ENGINES", "resolve_engine"]

ENGINES = ("auto", "pandas", "duckdb", "spark")


def _module(data: Any) -> str:
    return type(data).__module__.split(".")[0]


def is_spark_frame(data: Any) -> bool:
    return _module(data) == "pyspark" and type(data).__name__ == "DataFrame"


def is_duckdb_relation(data: Any) -> bool:
    return _module(data) in ("duckdb", "_duckdb") and type(data).__name__ == "DuckDBPyRelation"


def resolve_engine(data: Any, engine: str) -> str:
    """The engine that will compute: ``"pandas"``, ``"duckdb"`` or ``"spark"``."""
    from .duckdb_engine import is_path_like

    if engine not in ENGINES:
        raise InvalidDataError(
            f"engine={engine!r}: use 'auto', 'pandas', 'duckdb' or 'spark'."
        )
    spark = is_spark_frame(data)
    if engine == "spark" or spark:
        if not spark:
            raise InvalidDataError(
                f"engine='spark' needs a PySpark DataFrame, got {type(data).__name__}. "
                "Read the data with spark.read..., or use engine='duckdb' for files."
            )
        if engine not in ("auto", "spark"):
            raise InvalidDataError(
                f"engine={engine!r} cannot read a PySpark DataFrame; use engine='spark' "
                "(or 'auto'), or collect it with toPandas() yourself."
            )
        return "spark"
    if engine != "auto":
        return engine
    if is_path_like(data) or is_duckdb_relation(data):
        return "duckdb"
    return "pandas"


def open_duckdb(
    data: Any, options: dict[str, Any] | None, text_columns: list[str] | None = None
) -> Any:
    """A :class:`~clvmodels.data.duckdb_engine.DuckDBSource` of ``data``."""
    from .duckdb_engine import DuckDBSource

    return DuckDBSource(
        data, text_columns=text_columns,
        **_options(options, ("memory_limit", "threads", "temp_directory")),
    )  # fmt: skip


def open_source(
    data: Any, options: dict[str, Any] | None, text_columns: list[str] | None = None
) -> Any:
    """The SQL source of a file, relation, DataFrame (DuckDB) or Spark DataFrame."""
    if is_spark_frame(data):
        from .spark_engine import SparkSource

        if options:
            raise InvalidDataError(
                f"engine_options: the Spark engine takes none (got {sorted(options)[0]!r}); "
                "configure Spark through its session (spark.conf.set)."
            )
        return SparkSource(data)
    return open_duckdb(data, options, text_columns)


def read_with_duckdb(data: Any, columns: list[str], options: dict[str, Any] | None) -> Any:
    """A file or relation loaded into pandas (``engine="pandas"`` on a path)."""
    with open_duckdb(data, options) as source:
        present = set(source.columns())
        chosen = [c for c in columns if c in present] or list(present)
        quoted = ", ".join(source.quote(c) for c in chosen)
        return source.relation.query("src", f"SELECT {quoted} FROM src").df()


def _options(options: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidDataError(
            f"engine_options: unknown option {unknown[0]!r}; use {', '.join(allowed)}."
        )
    return options

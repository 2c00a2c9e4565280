"""The DuckDB engine: summaries of files (CSV, Parquet; paths or globs), DuckDB
relations and in-memory frames, computed out of core by embedded DuckDB.

DuckDB streams the files through its aggregation (spilling to a temporary directory of
its own when the groups outgrow ``memory_limit``), so a file never has to fit in pandas:
only the per-customer aggregates come back. The SQL and its semantics are in
:mod:`clvmodels.data._sql`; this module only opens the source.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..exceptions import InvalidDataError
from ._sql import Column, SqlSource

__all__ = ["DuckDBSource", "check_readable", "default_memory_limit", "is_path_like"]

#: The smallest memory_limit clvmodels picks by itself; a cap of this size keeps a
#: 10M-row summary under 1 GB of process memory (BENCHMARKS.md, "Scale").
MINIMUM_MEMORY_LIMIT = "750MB"


def default_memory_limit() -> str:
    """A quarter of the machine's memory (at least :data:`MINIMUM_MEMORY_LIMIT`).

    DuckDB's own default, 80 % of RAM, let a 100M-row summary take 11 GB on a 24 GB
    machine; a fixed 750MB made a 10M-row summary spill and run 25 % slower than it
    needs to. A quarter of RAM keeps a summary from crowding out the rest of the
    machine while most files are summarised without spilling (and fit the in-memory
    route of :mod:`clvmodels.data.summary`). Pass ``memory_limit`` to choose.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: the floor
        return MINIMUM_MEMORY_LIMIT
    return f"{max(750, total // 4 // 2**20)}MB"


def memory_limit_bytes(text: str) -> int | None:
    """Bytes of a DuckDB memory setting as DuckDB reports it ("5.5 GiB", "750.0 MiB")."""
    units = {"bytes": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
             "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}  # fmt: skip
    number, _, unit = text.strip().partition(" ")
    try:
        return int(float(number) * units[unit.strip().lower() or "bytes"])
    except (KeyError, ValueError):
        return None

_PARQUET = (".parquet", ".pq", ".parq")
_CSV = (".csv", ".tsv", ".txt")
_COMPRESSED = (".gz", ".zst", ".gzip")


def is_path_like(data: Any) -> bool:
    """A path, a glob, or a list of them."""
    if isinstance(data, (str, os.PathLike)):
        return True
    return (
        isinstance(data, Sequence)
        and not isinstance(data, (str, bytes))
        and len(data) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    )


def _file_format(path: str) -> str:
    name = path.lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(_PARQUET):
        return "parquet"
    if name.endswith(_CSV):
        return "csv"
    raise InvalidDataError(
        f"{path!r}: cannot tell the file format from its name. Use files ending in "
        ".parquet or .csv (optionally .csv.gz), or read the file yourself and pass a "
        "DataFrame or a DuckDB relation."
    )


def _expand(data: Any) -> tuple[list[str], str]:
    """The paths (globs kept for DuckDB) and their common format; every pattern must
    match at least one file."""
    items = [os.fspath(data)] if isinstance(data, (str, os.PathLike)) else [
        os.fspath(p) for p in data
    ]  # fmt: skip
    formats = set()
    for item in items:
        matches = glob.glob(item, recursive=True) if glob.has_magic(item) else [item]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            if os.path.isdir(item):
                raise InvalidDataError(
                    f"{item!r} is a directory. Pass a glob of its files, e.g. "
                    f"{os.path.join(item, '*.parquet')!r}."
                )
            raise InvalidDataError(f"no file matches {item!r}; check the path.")
        for match in matches:
            formats.add(_file_format(match))
            check_readable(match, _file_format(match))
    if len(formats) > 1:
        raise InvalidDataError(
            f"{items!r} mixes CSV and Parquet files; pass files of one format."
        )
    return items, formats.pop()


# First bytes of files that are often saved or renamed as .csv, and what they are.
_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx or OpenDocument file?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel (.xls) or other Office file"),
    (b"PAR1", "a Parquet file"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
    (b"%PDF", "a PDF document"),
)
_PARQUET_MAGIC = b"PAR1"


def check_readable(path: str, file_format: str) -> None:
    """Refuse, by name, a file that cannot be read or is not of its format (empty, not
    permitted, binary in a .csv, no Parquet magic), before DuckDB reports it in its own
    terms or reads binary bytes as column names."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as error:
        raise InvalidDataError(
            f"cannot read {path!r}: {error.strerror or error}. Check the file's "
            "permissions and path."
        ) from None
    if not head:
        raise InvalidDataError(
            f"cannot read {path!r}: it is empty (0 bytes); check the export that wrote it."
        )
    compressed = path.lower().endswith(_COMPRESSED)
    if file_format == "parquet":
        if not head.startswith(_PARQUET_MAGIC):
            raise InvalidDataError(
                f"cannot read {path!r}: not a Parquet file (it does not start with the Parquet "
                f"magic bytes{_looks_like(head)}). Check the file, or rename it if it is CSV."
            )
        return
    if compressed:
        return  # DuckDB decompresses; the text is checked as it is read
    kind = _looks_like(head)
    if kind or b"\x00" in head:
        raise InvalidDataError(
            f"cannot read {path!r}: not CSV text{kind or ' (it holds binary bytes)'}. Export the "
            "table as CSV (UTF-8) or Parquet, or read it yourself and pass a DataFrame."
        )


def _looks_like(head: bytes) -> str:
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return f": it is {what}"
    return ""


_KINDS = {
    "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp", "DATETIME": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp_tz", "TIMESTAMPTZ": "timestamp_tz",
    "TIMESTAMPTZ_NS": "timestamp_tz", "TIMESTAMP_NS WITH TIME ZONE": "timestamp_tz",
    "DATE": "date", "VARCHAR": "string",
    "TINYINT": "integer", "SMALLINT": "integer", "INTEGER": "integer", "BIGINT": "integer",
    "HUGEINT": "integer", "UTINYINT": "integer", "USMALLINT": "integer",
    "UINTEGER": "integer", "UBIGINT": "integer", "UHUGEINT": "integer",
    "FLOAT": "float", "DOUBLE": "float", "BOOLEAN": "bool",
}  # fmt: skip


def _wall_times(data: Any) -> Any:
    """A pandas or polars frame with its tz-aware columns as naive local wall times (a
    new frame; the caller's is not changed), so DuckDB reads them as the pandas engine
    does; other data as they are."""
    import pandas as pd

    if type(data).__module__.split(".")[0] == "polars":
        import polars as pl

        zoned = [name for name, dtype in data.schema.items()
                 if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None]  # fmt: skip
        # replace_time_zone(None) keeps each value's wall clock and drops the zone
        return data.with_columns([pl.col(c).dt.replace_time_zone(None) for c in zoned])
    if not isinstance(data, pd.DataFrame):
        return data
    zoned = [c for c in data.columns if _zoned(data[c].dtype)]
    if not zoned:
        return data
    data = data.copy(deep=False)
    for column in zoned:
        data[column] = data[column].dt.tz_localize(None)
    return data


def _zoned(dtype: Any) -> bool:
    import pandas as pd

    if isinstance(dtype, pd.DatetimeTZDtype):
        return True
    return isinstance(dtype, pd.ArrowDtype) and getattr(dtype.pyarrow_dtype, "tz", None) is not None


def _parquet_zones(connection: Any, paths: list[str]) -> dict[str, str]:
    """The time zone pandas recorded for each zoned column of the first file."""
    import json

    first = next(iter(glob.glob(paths[0], recursive=True) or paths))
    try:
        rows = connection.execute(
            "SELECT decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = 'pandas'",
            [first],
        ).fetchall()
        columns = json.loads(rows[0][0])["columns"] if rows else []
    except Exception:  # no pandas metadata, or metadata of another shape
        return {}
    zones = {}
    for column in columns:
        zone = (column.get("metadata") or {}).get("timezone")
        if zone and column.get("name") is not None:
            zones[str(column["name"])] = str(zone)
    return zones


def _kind(sql_type: str) -> str:
    if sql_type.startswith("DECIMAL"):
        return "float"
    return _KINDS.get(sql_type, "other")


class DuckDBSource(SqlSource):
    """Transactions (or a summary) read by DuckDB.

    Parameters
    ----------
    data : str, pathlib.Path, list of them, duckdb.DuckDBPyRelation or DataFrame
        CSV or Parquet files (globs such as ``"sales/*.parquet"`` allowed), a relation
        of the caller's own connection (queried there; its settings are left alone), or
        a pandas / polars DataFrame (scanned in place, not copied).
    memory_limit : str, optional
        DuckDB's ``memory_limit`` for the connection opened here (e.g. ``"4GB"``, or
        ``"80%"`` of RAM); beyond it, aggregation spills to a temporary directory that
        is removed on :meth:`close`. Default :func:`default_memory_limit` (a quarter
        of RAM, at least 750MB): a
        summary does not compete with the rest of the machine; raise it for speed on
        large files.
    temp_directory : str or pathlib.Path, optional
        An existing folder in which that temporary directory is made (default: the
        system's temporary folder). The spill can reach several times the size of
        the input files (100M rows of Parquet, 2 GB: 13 GB of spill).
    threads : int, optional
        DuckDB's ``threads`` (default: all cores).
    text_columns : list of str, optional
        Columns of a CSV file read as text whatever DuckDB's sniffer thinks (the
        customer id and the date of a transaction log: clvmodels types them itself, so
        that ``"00001"`` keeps its zeros and ``date_format`` is obeyed).
    """

    engine = "duckdb"

    def __init__(
        self, data: Any, *, memory_limit: str | None = None, threads: int | None = None,
        temp_directory: str | os.PathLike[str] | None = None,
        text_columns: Sequence[str] | None = None,
    ) -> None:
        import duckdb

        self._connection = None
        self._temp_dir: str | None = None
        self._zones: dict[str, str] = {}
        self.untyped = False
        if isinstance(data, duckdb.DuckDBPyRelation):
            self.relation = data
            return
        if temp_directory is not None and not os.path.isdir(temp_directory):
            raise InvalidDataError(
                f"temp_directory={os.fspath(temp_directory)!r} is not an existing folder; "
                "create it first, or leave it out to use the system's temporary folder."
            )
        self._temp_dir = tempfile.mkdtemp(prefix="clvmodels-duckdb-", dir=temp_directory)
        config: dict[str, Any] = {
            "temp_directory": self._temp_dir,
            # no insertion order to keep: lets DuckDB stream and spill more freely
            "preserve_insertion_order": False,
        }
        config["memory_limit"] = str(
            default_memory_limit() if memory_limit is None else memory_limit
        )
        if threads is not None:
            config["threads"] = int(threads)
        try:
            self._connection = duckdb.connect(":memory:", config=config)
            # a library call prints nothing of its own (DuckDB draws a bar on long queries)
            self._connection.execute("SET enable_progress_bar = false")
        except duckdb.Error as error:
            self.close()
            given = {"memory_limit": memory_limit, "threads": threads}
            named = ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None)
            raise InvalidDataError(
                f"DuckDB refused the engine options{' ' + named if named else ''}: "
                f"{error}. Give memory_limit as an amount such as '4GB' or '80%' and "
                "threads as a whole number."
            ) from None
        if is_path_like(data):
            paths, file_format = _expand(data)
            try:
                self.relation = self._read(paths, file_format, list(text_columns or []))
            except duckdb.Error as error:
                self.close()
                raise InvalidDataError(f"DuckDB cannot read {paths!r}: {error}") from None
        else:
            self._connection.register("clvmodels_input", _wall_times(data))
            self.relation = self._connection.view("clvmodels_input")

    def _read(self, paths: list[str], file_format: str, text_columns: list[str]) -> Any:
        target = paths if len(paths) > 1 else paths[0]
        assert self._connection is not None
        if file_format == "parquet":
            self._zones = _parquet_zones(self._connection, paths)
            # union_by_name: files whose column types differ (a part whose dates are all
            # missing is typed NULL) are read as one table, not refused
            return self._connection.read_parquet(target, union_by_name=True)
        # RFC 4180 quoting (what pandas, Excel and Spark write): left to the sniffer, an
        # apostrophe at the start of a field can be taken for the quote character
        quoting = {"quotechar": '"', "escapechar": '"'}
        relation = self._connection.read_csv(target, **quoting)
        present = [c for c in text_columns if c in relation.columns]
        if not present:
            return relation
        self.untyped = text_columns[0] in present  # the id column: typed by clvmodels
        return self._connection.read_csv(
            target, dtype={c: "VARCHAR" for c in present}, **quoting
        )

    def zone_of(self, column: str) -> str | None:
        # Parquet stores zoned times as UTC instants; pandas records the zone they came
        # from, and without it UTC is the wall time a reader of the file sees.
        return self._zones.get(column, "UTC") if self._connection is not None else None

    def memory_limit(self) -> int | None:
        """The connection's memory limit in bytes (None for a caller's relation)."""
        if self._connection is None:
            return None
        rows = self._connection.execute("SELECT current_setting('memory_limit')").fetchall()
        return memory_limit_bytes(str(rows[0][0])) if rows else None

    def row_count(self) -> int:
        """The number of rows (read from the metadata for Parquet)."""
        return int(self.fetch(f"SELECT count(*) AS n FROM {self.view}")["n"][0])

    def columns(self) -> dict[str, Column]:
        return {
            name: Column(name, _kind(str(sql_type)), str(sql_type))
            for name, sql_type in zip(self.relation.columns, self.relation.types, strict=True)
        }

    def fetch(self, sql: str) -> dict[str, np.ndarray]:
        import duckdb

        try:
            return self.relation.query("src", sql).fetchnumpy()
        except duckdb.OutOfMemoryException as error:
            raise InvalidDataError(
                f"DuckDB ran out of memory: {error}. Pass a larger memory_limit, or fewer "
                "threads (each thread holds its own hash tables)."
            ) from None
        except duckdb.ConversionException as error:
            raise InvalidDataError(f"DuckDB could not convert a value: {error}") from None

    def iter_frames(self, sql: str, rows: int) -> Iterator[Any]:
        """The result of ``sql`` (reading the view ``src``) as pandas chunks of about
        ``rows`` rows, streamed: never the whole result at once."""
        if self._connection is not None:
            self.relation.create_view("src", replace=True)
            cursor = self._connection.execute(sql)
            vectors = max(1, rows // 2048)  # DuckDB's vectors hold 2048 rows
            while True:
                chunk = cursor.fetch_df_chunk(vectors)
                if len(chunk) == 0:
                    return
                yield chunk
        # a caller's relation: its connection is not reachable, so read Arrow batches
        try:
            reader = self.relation.query("src", sql).to_arrow_reader(rows)
        except ImportError:
            raise InvalidDataError(
                "reading a DuckDB relation in chunks needs pyarrow (pip install pyarrow); "
                "or pass the files themselves."
            ) from None
        for batch in reader:
            yield batch.to_pandas()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


"""Scale benchmarks (issue #7): DuckDB out of core, BG/NBD on 10M customers, Spark.

What is measured
----------------
Four cases (select with ``--only``); every measurement runs in its own fresh
subprocess of the current interpreter, which reports its wall times, its CPU time and
that of every other process on the machine meanwhile ("others' CPU", from
``/proc/stat``: a measure of contention, near 0 on a quiet machine), and its peak
memory. The input files are generated once under ``--data-dir`` (with a manifest of
the generator settings, checked before they are reused) and never in a timed process.

``duckdb10m``
    10M transactions (the generator of ``bench_summarize.py``: N/10 = 1M customers,
    int64 ids, times of day over 2023-01-01 .. 2024-12-31, Gamma(2, 25) amounts, seed
    20240601), written by DuckDB to one Parquet file with the times truncated to
    microseconds (Parquet ``TIMESTAMP(MICROS)``, which Spark reads too). Three tools:

    * ``duckdb``: ``clvmodels.summarize("tx10m.parquet", amount="amount",
      time_unit="D", granularity="D")``, i.e. DuckDB reads the file (out of core);
      the timed call includes the reading;
    * ``pandas``: ``pd.read_parquet`` then ``clvmodels.summarize(df, ...)`` (the
      in-memory engine), reported for the call alone and with the read;
    * ``lifetimes``: ``pd.read_parquet`` then ``summary_data_from_transaction_data(df,
      "customer_id", "date", monetary_value_col="amount",
      observation_period_end=df["date"].max(), freq="D")``, call alone and with read;
    * ``duckdb@<limit>`` for each ``--limits-10m`` setting: the DuckDB call with
      ``engine_options={"memory_limit": <limit>}``.

    Peak memory is ``getrusage(RUSAGE_SELF).ru_maxrss`` of the process (interpreter,
    imports, input, DuckDB's buffers). One extra process checks that the DuckDB and
    pandas engines agree (same customers; frequency, recency, T, n_purchases,
    first/last purchase exactly; monetary_value and total_amount to 1e-12 relative)
    and that lifetimes agrees with both (1e-9 relative).
``duckdb100m``
    100M transactions over 10M customers (same design; ten files of 10M rows, chunk k
    drawn with ``default_rng([seed, k])`` and written by DuckDB, never more than one
    chunk in memory), summarised from the glob ``tx100m/*.parquet`` by
    ``clvmodels.summarize(glob, amount="amount", time_unit="D", granularity="D",
    engine_options=...)``, once per setting of ``--limits-100m`` ("default" is
    clvmodels' own memory_limit, 750MB; "80%" is DuckDB's default). The worker's temporary
    directory is a private folder under ``--data-dir``, so DuckDB's spill (its size
    sampled every 0.2 s) is measured too.
``fit10m``
    10M customers from ``clvmodels.simulate.simulate_transactions("bgnbd", ...)``
    (r = 0.25, alpha = 4, a = 0.8, b = 2.4 in weeks; first purchases uniform over 2023,
    observation to 2024-12-31 23:59:59; Gamma-Gamma spend p = 6.25, q = 3.74,
    gamma = 15.44), ten chunks of 1M customers (chunk k seeded ``[seed, 100 + k]``,
    ids offset by k x 1M) written by DuckDB. Timed stages in one process:
    ``summarize(glob, time_unit="W")`` (DuckDB, no amount: the fit does not read it),
    ``compress(summary)`` (pandas) and ``BGNBD().fit(patterns)``.
``spark``
    Spark local mode (``local[2]``, ``--spark-driver-memory``, session time zone UTC)
    on the 10M file of ``duckdb10m`` read with ``spark.read.parquet``: session start,
    ``clvmodels.summarize(sdf, amount="amount", time_unit="D", granularity="D")``
    forced with ``.write.format("noop")`` and again written to Parquet, then
    ``clvmodels.score(model, spark.read.parquet(summary), id_column="customer_id",
    horizon="12M")`` written to Parquet. The model is a ``BGNBD(penalizer=0.01)``
    fitted on the DuckDB summary of the same file (these synthetic customers never
    drop out, so without a penalty the fit runs to the edge of the parameter space);
    a reference process computes the DuckDB summary and ``clvmodels.score`` of it
    through DuckDB (timed too), and a check process compares Spark's summary and
    scores with them, joined on the customer id. Memory of the Spark runs is the sum
    of the RSS of the worker and all its descendants (the JVM, Python workers),
    sampled every 0.2 s.

How to run
----------
From the repository root (the data need about 3 GB in ``--data-dir``, and DuckDB's
spill of the 100M case with a memory_limit about 13 GB in the same folder; roughly
50 minutes with the defaults)::

    python benchmarks/bench_scale.py --only duckdb10m,duckdb100m,fit10m,spark \\
        --data-dir /tmp/clvbench --repeats 3 --profile --wait-quiet 90 \\
        --json /tmp/bench_scale.json --markdown

``--profile`` adds one process per case that times the phases of a summary through
clvmodels' internal API (DuckDB: validation pass, aggregation query + fetch, finishing
in numpy/pandas, with the peak RSS after each; for the 100M case at the last
``--limits-100m`` setting, once as ``summarize`` runs and once with the DuckDB
connection closed before the finishing; Spark: scan, validation pass, aggregation SQL,
range partitioning, mapInPandas). ``--yield-to TEXT`` waits before every process while
another process's command line contains TEXT (e.g. another benchmark).

``--scale 0.01`` runs every case at 1/100 of its size (a smoke test; data in their own
sub-folder). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

CASES = ("duckdb10m", "duckdb100m", "fit10m", "spark")
PACKAGES = ("numpy", "pandas", "pyarrow", "duckdb", "lifetimes", "pyspark", "clvmodels")
SEED = 20240601
START = "2023-01-01"
SPAN_DAYS = 731  # 2023-01-01 .. 2024-12-31, as bench_summarize.py
GENERATOR_VERSION = 1
MIB = _common.MIB
GB_MIB = 1e9 / MIB  # 1 GB = 10^9 bytes = 953.7 MiB
SUBPROCESS_TIMEOUT_S = 3600

TX10M_ROWS = 10_000_000
TX100M_ROWS = 100_000_000
TX100M_CUSTOMERS = 10_000_000
TX100M_FILES = 10
FIT_CUSTOMERS = 10_000_000
FIT_FILES = 10
FIT_PARAMS = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.4}  # weeks
FIT_SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
FIT_START, FIT_ACQUISITION_END, FIT_END = "2023-01-01", "2024-01-01", "2024-12-31 23:59:59"
SCORE_PENALIZER = 0.01
SCORE_HORIZON = "12M"

TARGET_SPEEDUP = 5.0
TARGET_PEAK_10M_MIB = GB_MIB
TARGET_PEAK_100M_MIB = 4 * GB_MIB
TARGET_FIT_S = 30.0
EXACT_RELATIVE = 1e-12
LIFETIMES_RELATIVE = 1e-9


# ----------------------------------------------------------------- process metrics


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, list[str]] | None:
    """(parent pid, fields after the command name) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields


def _descendants(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _tree_cpu_seconds() -> float:
    """CPU seconds of this process, its live descendants and the children they reaped."""
    total = 0
    for pid in _descendants(os.getpid()):
        stat = _proc_stat(pid)
        if stat is not None:  # utime, stime, cutime, cstime are fields 14-17 of stat
            total += sum(int(v) for v in stat[1][11:15])
    return total / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _folder_bytes(folder: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total


class CpuMeter:
    """Wall time, CPU of this process tree and CPU of every other process meanwhile."""

    def __enter__(self) -> CpuMeter:
        self.machine, self.own = _machine_busy_seconds(), _tree_cpu_seconds()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = _tree_cpu_seconds() - self.own
        machine = _machine_busy_seconds() - self.machine
        self.other_cpu_seconds = max(0.0, machine - self.cpu_seconds)

    def fields(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}seconds": self.seconds,
            f"{prefix}cpu_seconds": self.cpu_seconds,
            f"{prefix}other_cpu_seconds": self.other_cpu_seconds,
        }


class Sampler:
    """Peak size of the temporary folder (DuckDB's spill) and, with ``tree``, peak summed
    RSS of this process tree, sampled every ``interval`` seconds in a background thread
    (without ``tree`` it does not scan /proc, which would cost the timed call CPU)."""

    def __init__(self, interval: float = 0.2, tree: bool = False) -> None:
        self.interval = interval
        self.tree = tree
        self.peak_tree_rss = 0
        self.peak_spill = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        if self.tree:
            rss = sum(_rss_bytes(pid) for pid in _descendants(os.getpid()))
        else:
            rss = _rss_bytes(os.getpid())
        self.peak_tree_rss = max(self.peak_tree_rss, rss)
        self.peak_spill = max(self.peak_spill, _folder_bytes(tempfile.gettempdir()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _memory(sampler: Sampler, after_import: int) -> dict[str, float]:
    return {
        "rss_after_import_mib": after_import / MIB,
        "peak_rss_mib": _common.peak_rss_bytes() / MIB,
        "peak_tree_rss_mib": sampler.peak_tree_rss / MIB,
        "peak_spill_mib": sampler.peak_spill / MIB,
    }


# ----------------------------------------------------------------- data generation


def dataset_settings(name: str, seed: int, scale: float) -> dict[str, Any]:
    """The generator settings of a data set (what its manifest must match)."""
    common = {"dataset": name, "version": GENERATOR_VERSION, "seed": seed, "scale": scale}
    if name == "tx10m":
        rows = max(int(TX10M_ROWS * scale), 10)
        return {
            **common,
            "rows": rows,
            "customers": rows // 10,
            "files": 1,
            "generator": "bench_summarize.make_transactions, times truncated to us",
        }
    if name == "tx100m":
        return {
            **common,
            "rows": max(int(TX100M_ROWS * scale), 10),
            "customers": max(int(TX100M_CUSTOMERS * scale), 1),
            "files": TX100M_FILES,
            "generator": "uniform ids, uniform times, gamma(2, 25) amounts; "
            "chunk k: default_rng([seed, k]); times truncated to us",
        }
    if name == "fit10m":
        return {
            **common,
            "customers": max(int(FIT_CUSTOMERS * scale), 10),
            "files": FIT_FILES,
            "params_weeks": FIT_PARAMS,
            "spend": FIT_SPEND,
            "start": FIT_START,
            "acquisition_end": FIT_ACQUISITION_END,
            "observation_end": FIT_END,
            "generator": "clvmodels.simulate.simulate_transactions('bgnbd'); chunk k: "
            "random_state default_rng([seed, 100 + k]), ids offset",
        }
    raise ValueError(name)


def dataset_paths(data_dir: Path, name: str) -> tuple[Path, str]:
    """Manifest path and the path / glob that the benchmark reads."""
    if name == "tx10m":
        return data_dir / "tx10m.manifest.json", str(data_dir / "tx10m.parquet")
    folder = data_dir / name
    return folder / "manifest.json", str(folder / "*.parquet")


def dataset_ready(data_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest if the files exist as it records them and its settings match."""
    manifest_path, _ = dataset_paths(data_dir, settings["dataset"])
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("settings") != settings:
        return None
    for name, size in manifest["file_sizes"].items():
        path = manifest_path.parent / name
        if not path.is_file() or path.stat().st_size != size:
            return None
    return manifest


def _write_parquet(con: Any, frame: Any, path: Path) -> None:
    """Write ``frame`` with DuckDB to ``path`` (via a temporary name)."""
    partial = path.with_name(path.name + ".partial")
    con.register("chunk", frame)
    con.execute(f"COPY (SELECT * FROM chunk) TO '{partial}' (FORMAT parquet)")
    con.unregister("chunk")
    os.replace(partial, path)


def _us(time_ns: Any) -> Any:
    """int64 ns -> datetime64[us], truncated (Parquet TIMESTAMP(MICROS))."""
    return (time_ns // 1000).view("datetime64[us]")


def worker_generate(data_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Generate one data set chunk by chunk and write its manifest last."""
    import duckdb
    import numpy as np
    import pandas as pd

    name, seed = settings["dataset"], settings["seed"]
    manifest_path, _ = dataset_paths(Path(data_dir), name)
    folder = manifest_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    con = duckdb.connect(config={"preserve_insertion_order": True})
    start = time.perf_counter()
    sizes: dict[str, int] = {}
    rows = 0
    if name == "tx10m":
        import bench_summarize

        frame = bench_summarize.make_transactions(settings["rows"], seed)
        frame["date"] = _us(frame["date"].to_numpy().view(np.int64))
        path = folder / "tx10m.parquet"
        _write_parquet(con, frame, path)
        sizes[path.name], rows = path.stat().st_size, len(frame)
    elif name == "tx100m":
        n_files, n_customers = settings["files"], settings["customers"]
        origin = np.datetime64(START, "ns").astype(np.int64)
        for k in range(n_files):
            n = settings["rows"] // n_files + (k < settings["rows"] % n_files)
            rng = np.random.default_rng([seed, k])
            customer_id = rng.integers(0, n_customers, size=n, dtype=np.int64)
            time_ns = rng.integers(0, SPAN_DAYS * 86_400 * 10**9, size=n, dtype=np.int64)
            time_ns += origin
            amount = rng.gamma(shape=2.0, scale=25.0, size=n)
            frame = pd.DataFrame(
                {"customer_id": customer_id, "date": _us(time_ns), "amount": amount}, copy=False
            )
            path = folder / f"part-{k:03d}.parquet"
            _write_parquet(con, frame, path)
            sizes[path.name], rows = path.stat().st_size, rows + n
            del frame, customer_id, time_ns, amount
    elif name == "fit10m":
        from clvmodels.simulate import simulate_transactions

        n_files, n_customers = settings["files"], settings["customers"]
        offset = 0
        for k in range(n_files):
            n = n_customers // n_files + (k < n_customers % n_files)
            frame = simulate_transactions(
                "bgnbd",
                n,
                params=settings["params_weeks"],
                start=settings["start"],
                acquisition_end=settings["acquisition_end"],
                observation_end=settings["observation_end"],
                time_unit="W",
                spend=settings["spend"],
                random_state=np.random.default_rng([seed, 100 + k]),
            )
            frame["customer_id"] += offset
            frame["date"] = _us(frame["date"].to_numpy().view(np.int64))
            offset += n
            path = folder / f"part-{k:03d}.parquet"
            _write_parquet(con, frame, path)
            sizes[path.name], rows = path.stat().st_size, rows + len(frame)
            del frame
    con.close()
    manifest = {
        "settings": settings,
        "rows": rows,
        "file_sizes": sizes,
        "total_mib": sum(sizes.values()) / MIB,
        "created_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "seconds": time.perf_counter() - start,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


# ----------------------------------------------------------------- workers: DuckDB


SUMMARY_SETTINGS = {"amount": "amount", "time_unit": "D", "granularity": "D"}


def _engine_options(limit: str, threads: str) -> dict[str, Any] | None:
    options: dict[str, Any] = {}
    if limit != "default":
        options["memory_limit"] = limit
    if threads != "default":
        options["threads"] = int(threads)
    return options or None


def worker_duck10m(tool: str, path: str) -> dict[str, Any]:
    """One tool on the 10M file: DuckDB on the file (``duckdb@<memory_limit>`` with
    that limit), or read_parquet then the call."""
    import pandas as pd

    options = None
    if tool.startswith("duckdb@"):
        options = {"memory_limit": tool.split("@", 1)[1]}

    if tool == "lifetimes":
        from lifetimes.utils import summary_data_from_transaction_data

        def call(df: Any) -> Any:
            return summary_data_from_transaction_data(
                df,
                "customer_id",
                "date",
                monetary_value_col="amount",
                observation_period_end=df["date"].max(),
                freq="D",
            )
    else:
        import clvmodels

        summarize = clvmodels.summarize

        def call(df: Any) -> Any:
            return summarize(df, engine_options=options, **SUMMARY_SETTINGS)

    after_import = _common.current_rss_bytes()
    result: dict[str, Any] = {"tool": tool}
    with Sampler() as sampler:
        if tool.startswith("duckdb"):
            with CpuMeter() as meter:
                summary = call(path)
            result.update(meter.fields())
            result["read_seconds"] = 0.0
            result["total_seconds"] = meter.seconds
        else:
            with CpuMeter() as read:
                df = pd.read_parquet(path)
            after_read = _common.current_rss_bytes()
            with CpuMeter() as meter:
                summary = call(df)
            result.update(meter.fields())
            result["read_seconds"] = read.seconds
            result["total_seconds"] = read.seconds + meter.seconds
            result["read_other_cpu_seconds"] = read.other_cpu_seconds
            result["rss_after_read_mib"] = after_read / MIB
            result["date_dtype"] = str(df["date"].dtype)
    result.update(_memory(sampler, after_import))
    result["n_customers"] = len(summary)
    result["engine_options"] = options
    return result


def _max_relative(a: Any, b: Any) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    relative = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    relative[np.isnan(a) != np.isnan(b)] = np.inf
    return float(relative.max()) if len(relative) else 0.0


def _exact(a: Any, b: Any) -> bool:
    import numpy as np

    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def worker_check10m(path: str) -> dict[str, Any]:
    """DuckDB engine vs pandas engine vs lifetimes on the 10M file."""
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    import clvmodels

    ours = clvmodels.summarize(path, **SUMMARY_SETTINGS)
    df = pd.read_parquet(path)
    memory = clvmodels.summarize(df, **SUMMARY_SETTINGS)
    same = bool(ours.index.equals(memory.index)) and list(ours.columns) == list(memory.columns)
    exact = {
        c: _exact(ours[c], memory[c])
        for c in ("frequency", "recency", "T", "n_purchases", "first_purchase", "last_purchase")
    }
    relative = {c: _max_relative(ours[c], memory[c]) for c in ("monetary_value", "total_amount")}
    theirs = summary_data_from_transaction_data(
        df,
        "customer_id",
        "date",
        monetary_value_col="amount",
        observation_period_end=df["date"].max(),
        freq="D",
    )
    same_lifetimes = len(theirs) == len(ours) and bool(
        theirs.index.sort_values().equals(ours.index)
    )
    theirs = theirs.reindex(ours.index)
    lifetimes = {
        c: _max_relative(ours[c], theirs[c])
        for c in ("frequency", "recency", "T", "monetary_value")
    }
    agree = same and all(exact.values()) and all(v <= EXACT_RELATIVE for v in relative.values())
    agree_lifetimes = same_lifetimes and all(v <= LIFETIMES_RELATIVE for v in lifetimes.values())
    return {
        "n_customers": len(ours),
        "n_rows": len(df),
        "duckdb_vs_pandas": {
            "same_customers_and_columns": same,
            "exact": exact,
            "max_relative": relative,
            "tolerance": EXACT_RELATIVE,
            "agree": agree,
        },
        "duckdb_vs_lifetimes": {
            "same_customers": same_lifetimes,
            "max_relative": lifetimes,
            "tolerance": LIFETIMES_RELATIVE,
            "agree": agree_lifetimes,
        },
        "columns": list(ours.columns),
    }


def worker_duck100m(pattern: str, limit: str, threads: str) -> dict[str, Any]:
    """The 100M glob summarised by DuckDB with the given memory_limit / threads."""
    import duckdb

    import clvmodels

    summarize = clvmodels.summarize
    default_limit = duckdb.connect().execute("SELECT current_setting('memory_limit')")
    default_limit = default_limit.fetchone()[0]
    after_import = _common.current_rss_bytes()
    options = _engine_options(limit, threads)
    with Sampler() as sampler, CpuMeter() as meter:
        summary = summarize(pattern, engine_options=options, **SUMMARY_SETTINGS)
    return {
        "memory_limit": limit,
        "threads": threads,
        "engine_options": options,
        "duckdb_default_memory_limit": default_limit,
        **meter.fields(),
        **_memory(sampler, after_import),
        "n_customers": len(summary),
        "summary_mib": int(summary.memory_usage(deep=True).sum()) / MIB,
        "n_transactions_windows": int((summary["frequency"] + 1).sum()),
    }


def worker_phases(
    pattern: str, limit: str, threads: str, settings: str = "", close_first: str = "1"
) -> dict[str, Any]:
    """Where the DuckDB summary's time goes: the validation pass, the aggregation
    query (fetched as numpy), and the finishing in numpy/pandas (internal API). The
    DuckDB connection is closed before the finishing, as ``clvmodels.summarize`` does;
    ``close_first="0"`` keeps it open, to show what closing saves in peak memory."""
    import clvmodels  # noqa: F401
    from clvmodels.data._sql import plan_summary
    from clvmodels.data.engines import open_duckdb

    options = _engine_options(limit, threads)
    chosen = json.loads(settings) if settings else SUMMARY_SETTINGS
    chosen = {"amount": None, **chosen}
    phases: dict[str, Any] = {}
    with Sampler() as sampler:
        with CpuMeter() as meter:
            source = open_duckdb(pattern, options)
        phases["open"] = meter.fields()
        with source:
            with CpuMeter() as meter:
                plan = plan_summary(
                    source,
                    customer_id="customer_id",
                    date="date",
                    observation_end=None,
                    date_format=None,
                    after_end="raise",
                    **chosen,
                )
            phases["validation pass (plan_summary)"] = meter.fields()
            phases["validation pass (plan_summary)"]["peak_rss_mib"] = (
                _common.peak_rss_bytes() / MIB
            )
            rss_before = _common.current_rss_bytes()
            with CpuMeter() as meter:
                rows = source.fetch(plan.sql)
            phases["aggregation query + fetchnumpy"] = meter.fields()
            phases["aggregation query + fetchnumpy"]["peak_rss_mib"] = (
                _common.peak_rss_bytes() / MIB
            )
            rss_rows = _common.current_rss_bytes()
            if close_first == "1":
                source.close()
            rss_closed = _common.current_rss_bytes()
            with CpuMeter() as meter:
                summary = plan.finish(rows)
            phases["finish (numpy/pandas)"] = meter.fields()
            phases["finish (numpy/pandas)"]["peak_rss_mib"] = _common.peak_rss_bytes() / MIB
            rss_summary = _common.current_rss_bytes()
    return {
        "pattern": pattern,
        "settings": chosen,
        "memory_limit": f"DuckDB, memory_limit {limit}",
        "phases": phases,
        "aggregate_rows": len(rows["customer"]),
        "aggregate_mib": sum(v.nbytes for v in rows.values()) / MIB,
        "rss_before_fetch_mib": rss_before / MIB,
        "rss_after_fetch_mib": rss_rows / MIB,
        "closed_before_finish": close_first == "1",
        "rss_before_finish_mib": rss_closed / MIB,
        "rss_after_finish_mib": rss_summary / MIB,
        "peak_rss_mib": _common.peak_rss_bytes() / MIB,
        "peak_spill_mib": sampler.peak_spill / MIB,
        "n_customers": len(summary),
    }


def worker_fit10m(pattern: str) -> dict[str, Any]:
    """Parquet -> summarize (DuckDB) -> compress -> BGNBD().fit, each stage timed."""
    import warnings

    import clvmodels

    summarize, compress, bgnbd = clvmodels.summarize, clvmodels.compress, clvmodels.BGNBD
    import scipy.optimize  # noqa: F401  (imported by the model module; keep it out of the timing)

    after_import = _common.current_rss_bytes()
    stages: dict[str, Any] = {}
    with Sampler() as sampler, CpuMeter() as total:
        with CpuMeter() as meter:
            summary = summarize(pattern, time_unit="W", granularity="D")
        stages["summarize (DuckDB, Parquet)"] = meter.fields()
        rss_summary = _common.current_rss_bytes()
        with CpuMeter() as meter:
            patterns = compress(summary)
        stages["compress"] = meter.fields()
        with warnings.catch_warnings(record=True) as caught, CpuMeter() as meter:
            warnings.simplefilter("always")
            model = bgnbd().fit(patterns)
        stages["BGNBD().fit"] = meter.fields()
    params = {k: float(v) for k, v in model.params_.items()}
    return {
        **total.fields(),
        "stages": stages,
        **_memory(sampler, after_import),
        "rss_after_summary_mib": rss_summary / MIB,
        "n_customers": len(summary),
        "n_repeat_customers": int((summary["frequency"] > 0).sum()),
        "n_windows": int((summary["frequency"] + 1).sum()),
        "n_patterns": len(patterns),
        "params": params,
        "true_params": FIT_PARAMS,
        "time_unit": getattr(model, "time_unit_", None),
        "warnings": [str(w.message) for w in caught],
    }


# ----------------------------------------------------------------- workers: Spark


def worker_sparkref(path: str, workdir: str) -> dict[str, Any]:
    """DuckDB reference for the Spark case: summary to Parquet, the scoring model, and
    clvmodels.score of the summary through DuckDB (timed)."""
    import warnings

    import clvmodels

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    with CpuMeter() as summary_meter:
        summary = clvmodels.summarize(path, **SUMMARY_SETTINGS)
    summary_path = work / "summary_duckdb.parquet"
    summary.reset_index().to_parquet(summary_path, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = clvmodels.BGNBD(penalizer=SCORE_PENALIZER).fit(clvmodels.compress(summary))
    model_path = model.save(work / "model.json", overwrite=True)
    scores_path = work / "scores_duckdb.parquet"
    with CpuMeter() as score_meter:
        clvmodels.score(
            model,
            str(summary_path),
            out=scores_path,
            overwrite=True,
            id_column="customer_id",
            horizon=SCORE_HORIZON,
        )
    return {
        "summary": summary_meter.fields(),
        "score_duckdb": score_meter.fields(),
        "n_customers": len(summary),
        "model": str(model_path),
        "params": {k: float(v) for k, v in model.params_.items()},
        "warnings": [str(w.message) for w in caught],
    }


def _spark_session(driver_memory: str) -> Any:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("clvmodels-bench-scale")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def worker_spark(path: str, workdir: str, driver_memory: str, repeat: str) -> dict[str, Any]:
    """Spark local[2]: session start, summary (noop, then Parquet), scoring to Parquet."""
    import clvmodels

    summarize, score, load = clvmodels.summarize, clvmodels.score, clvmodels.load
    model = load(Path(workdir) / "model.json")
    out = Path(workdir) / f"spark_{repeat}"
    shutil.rmtree(out, ignore_errors=True)
    stages: dict[str, Any] = {}
    after_import = _common.current_rss_bytes()
    with Sampler(tree=True) as sampler:
        with CpuMeter() as meter:
            spark = _spark_session(driver_memory)
            spark.sparkContext.setLogLevel("ERROR")
        stages["session start"] = meter.fields()
        try:
            transactions = spark.read.parquet(path)
            with CpuMeter() as meter:
                summary = summarize(transactions, **SUMMARY_SETTINGS)
                summary.write.format("noop").mode("overwrite").save()
            stages["summary -> noop"] = meter.fields()
            with CpuMeter() as meter:
                summary = summarize(transactions, **SUMMARY_SETTINGS)
                summary.write.parquet(str(out / "summary"))
            stages["summary -> Parquet"] = meter.fields()
            with CpuMeter() as meter:
                saved = spark.read.parquet(str(out / "summary"))
                scores = score(model, saved, id_column="customer_id", horizon=SCORE_HORIZON)
                scores.write.parquet(str(out / "scores"))
            stages["score -> Parquet"] = meter.fields()
            schema = {f.name: f.dataType.simpleString() for f in transactions.schema.fields}
            partitions = transactions.rdd.getNumPartitions()
        finally:
            spark.stop()
    return {
        "repeat": int(repeat),
        "stages": stages,
        **_memory(sampler, after_import),
        "driver_memory": driver_memory,
        "input_schema": schema,
        "input_partitions": partitions,
        "output": str(out),
    }


def worker_sparkphases(path: str, driver_memory: str) -> dict[str, Any]:
    """Where Spark's summary time goes (internal API), each part forced with a noop
    write: a plain scan of the file, the validation pass, the aggregation SQL alone,
    with the range partitioning and sort by customer, and the whole summary
    (mapInPandas finishing)."""
    import clvmodels
    from clvmodels.data._sql import plan_summary
    from clvmodels.data.spark_engine import SparkSource

    def noop(frame: Any) -> None:
        frame.write.format("noop").mode("overwrite").save()

    phases: dict[str, Any] = {}
    with Sampler(tree=True) as sampler:
        spark = _spark_session(driver_memory)
        spark.sparkContext.setLogLevel("ERROR")
        try:
            transactions = spark.read.parquet(path)
            for label in ("scan -> noop (first job)", "scan -> noop"):
                with CpuMeter() as meter:
                    noop(transactions)
                phases[label] = meter.fields()
            with SparkSource(transactions) as source, source.utc():
                with CpuMeter() as meter:
                    plan = plan_summary(
                        source,
                        customer_id="customer_id",
                        date="date",
                        observation_end=None,
                        date_format=None,
                        after_end="raise",
                        ordered=False,
                        **SUMMARY_SETTINGS,
                    )
                phases["validation pass (plan_summary)"] = meter.fields()
                # the engine's own way to run its SQL on the source (a DataFrame argument
                # of spark.sql in the current engine; a temporary view in older ones)
                aggregates = getattr(source, "query", spark.sql)(plan.sql)
                with CpuMeter() as meter:
                    noop(aggregates)
                phases["aggregation SQL -> noop"] = meter.fields()
                grouped = aggregates.repartitionByRange("customer").sortWithinPartitions(
                    "customer", "period"
                )
                with CpuMeter() as meter:
                    noop(grouped)
                phases["+ repartitionByRange + sort -> noop"] = meter.fields()
                with CpuMeter() as meter:
                    noop(source.summary(plan))
                phases["+ mapInPandas finish (whole summary) -> noop"] = meter.fields()
            with CpuMeter() as meter:
                noop(clvmodels.summarize(transactions, **SUMMARY_SETTINGS))
            phases["clvmodels.summarize -> noop"] = meter.fields()
            partitions = aggregates.rdd.getNumPartitions()
        finally:
            spark.stop()
    return {
        "phases": phases,
        "memory_limit": f"Spark, driver memory {driver_memory}",
        "aggregate_partitions": partitions,
        "aggregate_rows": 0,
        "aggregate_mib": 0.0,
        "peak_rss_mib": sampler.peak_tree_rss / MIB,
    }


def worker_sparkcheck(workdir: str, output: str) -> dict[str, Any]:
    """Spark's summary and scores against the DuckDB reference, joined on the id."""
    import pandas as pd

    work = Path(workdir)
    ref_summary = pd.read_parquet(work / "summary_duckdb.parquet")
    ref_scores = pd.read_parquet(work / "scores_duckdb.parquet")
    spark_summary = pd.read_parquet(Path(output) / "summary")
    spark_scores = pd.read_parquet(Path(output) / "scores")
    result: dict[str, Any] = {}
    for what, ref, got, exact_columns in (
        (
            "summary",
            ref_summary,
            spark_summary,
            ["frequency", "recency", "T", "n_purchases", "first_purchase", "last_purchase"],
        ),
        ("scores", ref_scores, spark_scores, []),
    ):
        merged = ref.merge(
            got, on="customer_id", how="outer", suffixes=("_ref", "_spark"), indicator=True
        )
        both = merged["_merge"] == "both"
        merged = merged[both]
        columns = [c for c in ref.columns if c != "customer_id"]
        exact = {}
        for c in exact_columns:
            a, b = merged[f"{c}_ref"], merged[f"{c}_spark"]
            if str(a.dtype).startswith("datetime"):
                a, b = a.astype("datetime64[ns]"), b.astype("datetime64[ns]")
            exact[c] = _exact(a, b)
        relative = {
            c: _max_relative(merged[f"{c}_ref"], merged[f"{c}_spark"])
            for c in columns
            if c not in exact_columns
        }
        same = bool(both.all()) and len(ref) == len(got)
        result[what] = {
            "rows_reference": len(ref),
            "rows_spark": len(got),
            "same_customers": same,
            "columns_equal": sorted(columns)
            == sorted(c for c in got.columns if c != "customer_id"),
            "exact": exact,
            "max_relative": relative,
            "tolerance": EXACT_RELATIVE,
            "agree": same
            and all(exact.values())
            and all(v <= EXACT_RELATIVE for v in relative.values()),
        }
    return result


# ----------------------------------------------------------------- parent side


QUIET: dict[str, Any] = {"max_wait_s": 60.0, "yield_to": None}


def _loadavg() -> list[float]:
    with open("/proc/loadavg") as handle:
        return [float(v) for v in handle.read().split()[:3]]


def wait_for_quiet(threshold: float = 0.25, window: float = 5.0) -> float:
    """Wait (at most ``--wait-quiet`` seconds) until other processes use less than
    ``threshold`` CPUs over ``window`` seconds; return the seconds waited."""
    waited = 0.0
    while waited < QUIET["max_wait_s"]:
        before = _machine_busy_seconds()
        time.sleep(window)
        waited += window
        if (_machine_busy_seconds() - before) / window < threshold:
            break
    if waited > window:
        print(f"    (waited {waited:.0f} s for a quiet machine)", flush=True)
    return waited


def _others_matching(pattern: str) -> list[int]:
    """Processes (not this script's) whose command line contains ``pattern``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in command and "bench_scale" not in command:
            found.append(int(entry))
    return found


def yield_to_others() -> float:
    """Wait (polling every 60 s, at most an hour) while a process matching
    ``--yield-to`` runs; return the seconds waited."""
    waited = 0.0
    while QUIET["yield_to"] and _others_matching(QUIET["yield_to"]) and waited < 3600:
        if waited == 0:
            print(f"    (waiting for '{QUIET['yield_to']}' to finish)", flush=True)
        time.sleep(60)
        waited += 60
    return waited


def run_worker(args: list[str], data_dir: Path, timed: bool = True) -> dict[str, Any]:
    """Run a worker in a fresh interpreter with its own temporary directory."""
    yielded = yield_to_others()
    waited = wait_for_quiet() if timed else 0.0
    load = _loadavg()
    tmp = data_dir / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    command = [sys.executable, os.path.abspath(__file__), "--worker", *args]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed ({done.returncode}):\n{done.stderr[-5000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_seconds"] = time.perf_counter() - started
    result["loadavg_before"] = load
    result["waited_for_quiet_s"] = waited
    result["waited_for_others_s"] = yielded
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def ensure_dataset(data_dir: Path, name: str, seed: int, scale: float) -> dict[str, Any]:
    settings = dataset_settings(name, seed, scale)
    manifest = dataset_ready(data_dir, settings)
    if manifest is not None:
        print(
            f"  data {name}: reusing {manifest['rows']:,} rows "
            f"({manifest['total_mib']:,.0f} MiB, made {manifest['created_utc']} UTC)"
        )
        return manifest
    free = shutil.disk_usage(data_dir).free / 2**30
    print(f"  data {name}: generating ({free:,.1f} GiB free in {data_dir}) ...", flush=True)
    manifest = run_worker(["generate", str(data_dir), json.dumps(settings)], data_dir, False)
    print(
        f"  data {name}: {manifest['rows']:,} rows, {manifest['total_mib']:,.0f} MiB in "
        f"{manifest['seconds']:.0f} s"
    )
    return manifest


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _stage_median(runs: list[dict[str, Any]], stage: str, key: str = "seconds") -> float:
    return statistics.median(r["stages"][stage][key] for r in runs)


def case_duckdb10m(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    manifest = ensure_dataset(data_dir, "tx10m", args.seed, args.scale)
    _, path = dataset_paths(data_dir, "tx10m")
    check = None
    if not args.no_check:
        check = run_worker(["check10m", path], data_dir, timed=False)
        print(
            f"  check: DuckDB vs pandas engine agree: {check['duckdb_vs_pandas']['agree']} "
            f"({check['duckdb_vs_pandas']}); vs lifetimes: "
            f"{check['duckdb_vs_lifetimes']['agree']}",
            flush=True,
        )
    tools = ["duckdb", "pandas", "lifetimes"]
    tools += [f"duckdb@{limit}" for limit in args.limits_10m.split(",") if limit]
    runs = []
    for repeat in range(args.repeats):
        for tool in tools:
            run = run_worker(["duck10m", tool, path], data_dir)
            run["repeat"] = repeat
            runs.append(run)
            print(
                f"  {tool:9s} #{repeat}: call {run['seconds']:7.3f} s, with read "
                f"{run['total_seconds']:7.3f} s, peak {run['peak_rss_mib']:7,.0f} MiB, "
                f"others' CPU {run['other_cpu_seconds']:.1f} s",
                flush=True,
            )
    medians = {}
    for tool in tools:
        mine = [r for r in runs if r["tool"] == tool]
        medians[tool] = {
            "seconds": _median(mine, "seconds"),
            "read_seconds": _median(mine, "read_seconds"),
            "total_seconds": _median(mine, "total_seconds"),
            "peak_rss_mib": _median(mine, "peak_rss_mib"),
            "rss_after_import_mib": _median(mine, "rss_after_import_mib"),
            "other_cpu_seconds": _median(mine, "other_cpu_seconds"),
            "all_seconds": [r["seconds"] for r in mine],
            "all_total_seconds": [r["total_seconds"] for r in mine],
            "all_peak_rss_mib": [r["peak_rss_mib"] for r in mine],
        }
    duck, life = medians["duckdb"], medians["lifetimes"]
    targets = {
        "speedup_call": life["seconds"] / duck["seconds"],
        "speedup_with_read": life["total_seconds"] / duck["seconds"],
        "peak_rss_mib": duck["peak_rss_mib"],
    }
    targets["speedup_met"] = targets["speedup_call"] >= TARGET_SPEEDUP
    targets["peak_met"] = duck["peak_rss_mib"] < TARGET_PEAK_10M_MIB
    phases = None
    if args.profile:
        phases = run_worker(["phases", path, "default", "default"], data_dir)
    return {
        "manifest": manifest,
        "check": check,
        "runs": runs,
        "medians": medians,
        "targets": targets,
        "phases": phases,
    }


def case_duckdb100m(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    manifest = ensure_dataset(data_dir, "tx100m", args.seed, args.scale)
    _, pattern = dataset_paths(data_dir, "tx100m")
    runs = []
    for limit in args.limits_100m.split(","):
        for repeat in range(args.repeats_100m):
            run = run_worker(["duck100m", pattern, limit, args.threads_100m], data_dir)
            run["repeat"] = repeat
            runs.append(run)
            print(
                f"  memory_limit {limit:8s} #{repeat}: {run['seconds']:7.1f} s, peak "
                f"{run['peak_rss_mib']:7,.0f} MiB, spill {run['peak_spill_mib']:6,.0f} MiB, "
                f"others' CPU {run['other_cpu_seconds']:.1f} s",
                flush=True,
            )
    medians = {}
    for limit in args.limits_100m.split(","):
        mine = [r for r in runs if r["memory_limit"] == limit]
        medians[limit] = {
            "seconds": _median(mine, "seconds"),
            "peak_rss_mib": _median(mine, "peak_rss_mib"),
            "peak_spill_mib": _median(mine, "peak_spill_mib"),
            "other_cpu_seconds": _median(mine, "other_cpu_seconds"),
            "cpu_seconds": _median(mine, "cpu_seconds"),
            "all_seconds": [r["seconds"] for r in mine],
            "all_peak_rss_mib": [r["peak_rss_mib"] for r in mine],
            "peak_met": _median(mine, "peak_rss_mib") < TARGET_PEAK_100M_MIB,
        }
    phases = None
    phases = phases_closed = None
    if args.profile:
        # the phases at the last limit listed, as summarize runs them and with the
        # DuckDB connection closed before the finishing
        last = list(medians)[-1]
        phases = run_worker(["phases", pattern, last, args.threads_100m], data_dir)
        phases_closed = run_worker(["phases", pattern, last, args.threads_100m, "", "1"], data_dir)
    return {
        "manifest": manifest,
        "runs": runs,
        "medians": medians,
        "phases": phases,
        "phases_closed_before_finish": phases_closed,
    }


def case_fit10m(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    manifest = ensure_dataset(data_dir, "fit10m", args.seed, args.scale)
    _, pattern = dataset_paths(data_dir, "fit10m")
    runs = []
    for repeat in range(args.repeats):
        run = run_worker(["fit10m", pattern], data_dir)
        run["repeat"] = repeat
        runs.append(run)
        stages = ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in run["stages"].items())
        print(
            f"  #{repeat}: total {run['seconds']:6.2f} s ({stages}); {run['n_patterns']:,} "
            f"patterns; peak {run['peak_rss_mib']:,.0f} MiB; others' CPU "
            f"{run['other_cpu_seconds']:.1f} s; params {run['params']}",
            flush=True,
        )
    phases = None
    if args.profile:
        settings = json.dumps({"time_unit": "W", "granularity": "D"})
        phases = run_worker(["phases", pattern, "default", "default", settings], data_dir)
    stages = list(runs[0]["stages"])
    medians = {
        "seconds": _median(runs, "seconds"),
        "stages": {s: _stage_median(runs, s) for s in stages},
        "peak_rss_mib": _median(runs, "peak_rss_mib"),
        "other_cpu_seconds": _median(runs, "other_cpu_seconds"),
        "all_seconds": [r["seconds"] for r in runs],
    }
    medians["met"] = medians["seconds"] < TARGET_FIT_S
    return {"manifest": manifest, "runs": runs, "medians": medians, "phases": phases}


def case_spark(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    missing = []
    if not (Path(__file__).resolve().parents[1] / "clvmodels/data/spark_engine.py").exists():
        missing.append("clvmodels/data/spark_engine.py")
    if _common.package_version("pyspark") == "not installed":
        missing.append("pyspark")
    if missing:
        print(f"  skipped: {', '.join(missing)} missing")
        return {"skipped": f"{', '.join(missing)} missing"}
    manifest = ensure_dataset(data_dir, "tx10m", args.seed, args.scale)
    _, path = dataset_paths(data_dir, "tx10m")
    workdir = data_dir / "spark_work"
    shutil.rmtree(workdir, ignore_errors=True)
    reference = run_worker(["sparkref", path, str(workdir)], data_dir)
    print(
        f"  DuckDB reference: summary {reference['summary']['seconds']:.2f} s, "
        f"score {reference['score_duckdb']['seconds']:.2f} s, model {reference['params']}",
        flush=True,
    )
    runs = []
    for repeat in range(args.repeats):
        run = run_worker(
            ["spark", path, str(workdir), args.spark_driver_memory, str(repeat)], data_dir
        )
        runs.append(run)
        stages = ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in run["stages"].items())
        print(
            f"  #{repeat}: {stages}; peak tree RSS {run['peak_tree_rss_mib']:,.0f} MiB; "
            f"others' CPU {sum(v['other_cpu_seconds'] for v in run['stages'].values()):.1f} s",
            flush=True,
        )
    check = run_worker(["sparkcheck", str(workdir), runs[-1]["output"]], data_dir, timed=False)
    print(
        f"  Spark vs DuckDB: summary agree {check['summary']['agree']}, scores agree "
        f"{check['scores']['agree']}: {check}",
        flush=True,
    )
    for run in runs[:-1]:
        shutil.rmtree(run["output"], ignore_errors=True)
    phases = None
    if args.profile:
        phases = run_worker(["sparkphases", path, args.spark_driver_memory], data_dir)
    stages = list(runs[0]["stages"])
    medians = {
        "stages": {s: _stage_median(runs, s) for s in stages},
        "stage_cpu": {s: _stage_median(runs, s, "cpu_seconds") for s in stages},
        "stage_other_cpu": {s: _stage_median(runs, s, "other_cpu_seconds") for s in stages},
        "all_stages": {s: [r["stages"][s]["seconds"] for r in runs] for s in stages},
        "peak_tree_rss_mib": _median(runs, "peak_tree_rss_mib"),
        "peak_rss_mib": _median(runs, "peak_rss_mib"),
    }
    return {
        "phases": phases,
        "manifest": manifest,
        "reference": reference,
        "runs": runs,
        "medians": medians,
        "check": check,
    }


# ----------------------------------------------------------------- reporting


def git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", *command], cwd=root, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "clvmodels").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_under_clvmodels": changed}


def java_version() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "not found"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else "unknown"


def _met(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _phases_table(phases: dict[str, Any] | None) -> list[str]:
    if not phases:
        return []
    fetched = ""
    if phases["aggregate_rows"]:
        fetched = (
            f"; {phases['aggregate_rows']:,} aggregate rows, "
            f"{phases['aggregate_mib']:,.0f} MiB fetched"
        )
    if phases.get("closed_before_finish"):
        fetched += "; DuckDB connection closed before the finishing"
    out = [
        f"\nPhases of one summary ({phases['memory_limit']}{fetched}; peak RSS "
        f"{phases['peak_rss_mib']:,.0f} MiB):\n"
    ]
    titles = ["phase", "wall (s)", "CPU (s)", "others' CPU (s)", "peak RSS so far (MiB)"]
    out += _common.markdown_header(titles, "lrrrr")
    for name, m in phases["phases"].items():
        cells = [name, f"{m['seconds']:.2f}", f"{m['cpu_seconds']:.1f}"]
        peak = f"{m['peak_rss_mib']:,.0f}" if "peak_rss_mib" in m else "-"
        out.append(_common.markdown_row([*cells, f"{m['other_cpu_seconds']:.1f}", peak]))
    return out


def markdown(results: dict[str, Any]) -> str:
    out: list[str] = []
    header, row = _common.markdown_header, _common.markdown_row
    case = results.get("duckdb10m")
    if case:
        out.append(
            f"{case['manifest']['rows']:,} transactions "
            f"({case['runs'][0]['n_customers']:,} customers), one Parquet file, medians of "
            f"{len(case['runs']) // len(case['medians'])} fresh processes per tool:\n"
        )
        out += header(
            [
                "tool",
                "call (s)",
                "read_parquet (s)",
                "call + read (s)",
                "speed-up (call / call + read)",
                "peak RSS (MiB)",
                "others' CPU (s)",
            ],
            "lrrrrrr",
        )
        life = case["medians"]["lifetimes"]
        names = {
            "duckdb": "clvmodels, DuckDB on the file",
            "pandas": "clvmodels, pandas engine",
            "lifetimes": "lifetimes",
        }
        for tool, m in case["medians"].items():
            if tool.startswith("duckdb@"):
                names[tool] = f"clvmodels, DuckDB on the file, memory_limit {tool[7:]}"
            read = "-" if tool.startswith("duckdb") else f"{m['read_seconds']:.3f}"
            speed = f"{life['seconds'] / m['seconds']:.1f}x / {life['total_seconds'] / m['total_seconds']:.1f}x"
            out.append(
                row(
                    [
                        names[tool],
                        f"{m['seconds']:.3f}",
                        read,
                        f"{m['total_seconds']:.3f}",
                        speed,
                        f"{m['peak_rss_mib']:,.0f}",
                        f"{m['other_cpu_seconds']:.1f}",
                    ]
                )
            )
        out += _phases_table(case["phases"])
        out.append("")
    case = results.get("duckdb100m")
    if case:
        out.append(
            f"{case['manifest']['rows']:,} transactions "
            f"({case['runs'][0]['n_customers']:,} customers), "
            f"{len(case['manifest']['file_sizes'])} Parquet files "
            f"({case['manifest']['total_mib']:,.0f} MiB):\n"
        )
        out += header(
            [
                "memory_limit",
                "runs",
                "median time (s)",
                "CPU (s)",
                "peak RSS (MiB)",
                "peak spill (MiB)",
                "others' CPU (s)",
                "< 4 GB?",
            ],
            "lrrrrrrl",
        )
        for limit, m in case["medians"].items():
            runs = ", ".join(f"{s:.1f}" for s in m["all_seconds"])
            out.append(
                row(
                    [
                        limit,
                        runs,
                        f"{m['seconds']:.1f}",
                        f"{m['cpu_seconds']:.1f}",
                        f"{m['peak_rss_mib']:,.0f}",
                        f"{m['peak_spill_mib']:,.0f}",
                        f"{m['other_cpu_seconds']:.1f}",
                        _met(m["peak_met"]),
                    ]
                )
            )
        out += _phases_table(case["phases"])
        out += _phases_table(case.get("phases_closed_before_finish"))
        out.append("")
    case = results.get("fit10m")
    if case:
        m = case["medians"]
        run = case["runs"][0]
        out.append(
            f"BG/NBD from Parquet, {run['n_customers']:,} customers, "
            f"{case['manifest']['rows']:,} transactions, {run['n_patterns']:,} "
            f"patterns (medians of {len(case['runs'])}):\n"
        )
        out += header(["stage", "median (s)"], "lr")
        for stage, seconds in m["stages"].items():
            out.append(row([stage, f"{seconds:.2f}"]))
        out.append(row(["**total**", f"**{m['seconds']:.2f}**"]))
        out.append(
            f"\nPeak RSS {m['peak_rss_mib']:,.0f} MiB; fitted {run['params']} "
            f"(simulated with {run['true_params']})."
        )
        out += _phases_table(case.get("phases"))
        out.append("")
    case = results.get("spark")
    if case and "skipped" not in case:
        m = case["medians"]
        ref = case["reference"]
        out.append(
            f"Spark local[2], {case['manifest']['rows']:,} transactions "
            f"(medians of {len(case['runs'])}):\n"
        )
        out += header(["stage", "median (s)", "CPU (s)", "others' CPU (s)"], "lrrr")
        for stage, seconds in m["stages"].items():
            out.append(
                row(
                    [
                        stage,
                        f"{seconds:.2f}",
                        f"{m['stage_cpu'][stage]:.1f}",
                        f"{m['stage_other_cpu'][stage]:.1f}",
                    ]
                )
            )
        out.append(
            f"\nPeak RSS of the process tree (driver, JVM, Python workers): "
            f"{m['peak_tree_rss_mib']:,.0f} MiB. DuckDB reference: summary "
            f"{ref['summary']['seconds']:.2f} s, score {ref['score_duckdb']['seconds']:.2f} s. "
            f"Agreement: summary {case['check']['summary']['agree']}, scores "
            f"{case['check']['scores']['agree']}."
        )
        out += _phases_table(case.get("phases"))
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(CASES), help=f"comma-separated cases out of {', '.join(CASES)}"
    )
    parser.add_argument("--data-dir", default="/tmp/clvbench")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement")
    parser.add_argument(
        "--repeats-100m",
        type=int,
        default=None,
        help="repeats of the 100M case (default: --repeats)",
    )
    parser.add_argument(
        "--limits-100m",
        default="default,80%,2GB",
        help="DuckDB memory_limit settings for the 100M case ('default': clvmodels' 750MB; "
        "'80%%': DuckDB's own default)",
    )
    parser.add_argument("--threads-100m", default="default")
    parser.add_argument(
        "--limits-10m",
        default="80%,1GB",
        help="extra DuckDB runs on the 10M file with these memory_limit settings "
        "(default: DuckDB's own, 80%% of RAM, and 1GB)",
    )
    parser.add_argument("--spark-driver-memory", default="4g")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of every size (smoke tests); data in <data-dir>/scale-<s>",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="seconds to wait at most for a quiet machine before each run",
    )
    parser.add_argument(
        "--yield-to",
        metavar="TEXT",
        help="before each process, wait while another process's command line contains TEXT",
    )
    parser.add_argument("--no-check", action="store_true", help="skip the 10M agreement check")
    parser.add_argument(
        "--profile", action="store_true", help="add a phase breakdown of the DuckDB summaries"
    )
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        workers = {
            "generate": lambda: worker_generate(rest[0], json.loads(rest[1])),
            "duck10m": lambda: worker_duck10m(*rest),
            "check10m": lambda: worker_check10m(*rest),
            "duck100m": lambda: worker_duck100m(*rest),
            "phases": lambda: worker_phases(*rest),
            "fit10m": lambda: worker_fit10m(*rest),
            "sparkref": lambda: worker_sparkref(*rest),
            "spark": lambda: worker_spark(*rest),
            "sparkcheck": lambda: worker_sparkcheck(*rest),
            "sparkphases": lambda: worker_sparkphases(*rest),
        }
        print(json.dumps(workers[kind](), default=str))
        return 0

    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    if args.repeats_100m is None:
        args.repeats_100m = args.repeats
    QUIET["max_wait_s"] = args.wait_quiet
    QUIET["yield_to"] = args.yield_to
    data_dir = Path(args.data_dir)
    if args.scale != 1.0:
        data_dir = data_dir / f"scale-{args.scale:g}"
    data_dir.mkdir(parents=True, exist_ok=True)

    info = _common.machine_info(PACKAGES)
    info["java"] = java_version()
    info.update(git_state())
    _common.print_machine(info)
    print(
        f"  data dir          {data_dir} ({shutil.disk_usage(data_dir).free / 2**30:,.1f} GiB free)"
    )

    functions = {
        "duckdb10m": case_duckdb10m,
        "duckdb100m": case_duckdb100m,
        "fit10m": case_fit10m,
        "spark": case_spark,
    }
    results: dict[str, Any] = {}
    machine_before = _machine_busy_seconds()
    own_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for name in cases:
        print(f"\n{name}", flush=True)
        results[name] = functions[name](args, data_dir)
        if args.json:
            _common.write_json(
                args.json, {"machine": info, "scale": args.scale, "results": results}
            )
    own_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    wall = time.perf_counter() - started
    overall = {
        "wall_seconds": wall,
        "cpu_seconds_of_workers": own,
        "other_cpu_seconds": max(0.0, _machine_busy_seconds() - machine_before - own),
    }
    print(f"\nWhole run: {wall:.0f} s wall; others' CPU {overall['other_cpu_seconds']:.0f} s")
    if args.markdown:
        print("\n" + markdown(results))
    if args.json:
        _common.write_json(
            args.json,
            {"machine": info, "scale": args.scale, "results": results, "overall": overall},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

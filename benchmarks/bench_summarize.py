"""Benchmark ``clvmodels.summarize`` against lifetimes' ``summary_data_from_transaction_data``.

What is measured
----------------
For each transaction count in ``--sizes`` (default 1M and 10M) and each tool, the script
starts ``--repeats`` fresh subprocesses of the current interpreter. Each subprocess

1. imports its tool (so import cost is not part of the call's memory increment),
2. generates the synthetic transaction log itself with ``numpy.random.default_rng(seed)``:
   N rows over N/10 customers (int64 ids), datetime64[ns] timestamps with time of day
   spread over two years (2023-01-01 .. 2024-12-31), gamma-distributed amounts,
3. reads its resident set size (RSS) right after the input DataFrame is built,
4. times only the summary call with ``time.perf_counter``:
   ``clvmodels.summarize(df, amount="amount", time_unit="D", granularity="D")`` or
   ``summary_data_from_transaction_data(df, "customer_id", "date",
   monetary_value_col="amount", observation_period_end=df["date"].max(), freq="D")``,
5. reads its peak RSS with ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.

Reported per (size, tool): the median wall time of the call, the median peak RSS of the
process and the median increment (peak RSS minus the RSS after the input was built, i.e.
the memory the call itself needed on top of its input). Runs of the two tools are
interleaved so that drift of the machine affects both alike.

The script also checks, in one extra subprocess on the 1M case (``--check-size``), that
both tools agree (frequency, recency, T, monetary_value equal within 1e-9 relative), and
measures the time of ``import clvmodels`` (median of 5 fresh interpreters) and, because
clvmodels loads pandas lazily, of ``import clvmodels`` plus the first access to
``clvmodels.summarize``.

How to run
----------
From the repository root, with clvmodels and lifetimes installed::

    python benchmarks/bench_summarize.py --sizes 1000000 10000000 --repeats 3 \\
        --json /tmp/bench_summarize.json --markdown

Use ``--sizes 100000 --repeats 1`` for a quick smoke run. Peak memory is read from the
Linux ``/proc`` file system and ``getrusage``; other systems are not supported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

TOOLS = ("clvmodels", "lifetimes")
PACKAGES = ("numpy", "pandas", "lifetimes", "clvmodels")  # versions reported with the machine
SEED = 20240601
START = "2023-01-01"
SPAN_DAYS = 731  # two years: 2023-01-01 .. 2024-12-31
MIB = _common.MIB
RELATIVE_TOLERANCE = 1e-9
SUBPROCESS_TIMEOUT_S = 3600
IMPORT_RUNS = 5
TARGET_SIZE = 10_000_000
TARGET_SPEEDUP = 5.0
TARGET_MEMORY_RATIO = 0.5


# ----------------------------------------------------------------- worker side


def make_transactions(n_rows: int, seed: int) -> Any:
    """Synthetic transaction log; built in place so it needs no memory beyond its columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_customers = max(n_rows // 10, 1)
    customer_id = rng.integers(0, n_customers, size=n_rows, dtype=np.int64)
    time_ns = rng.integers(0, SPAN_DAYS * 86_400 * 10**9, size=n_rows, dtype=np.int64)
    time_ns += np.datetime64(START, "ns").astype(np.int64)
    amount = rng.gamma(shape=2.0, scale=25.0, size=n_rows)
    return pd.DataFrame(
        {"customer_id": customer_id, "date": time_ns.view("datetime64[ns]"), "amount": amount},
        copy=False,
    )


def _summary_function(tool: str) -> Any:
    """Import ``tool`` and return a callable df -> summary with the benchmarked settings."""
    if tool == "clvmodels":
        import clvmodels

        summarize = clvmodels.summarize  # resolves the lazy attribute (imports pandas)

        def run(df: Any) -> Any:
            return summarize(
                df, customer_id="customer_id", date="date", amount="amount",
                time_unit="D", granularity="D",
            )  # fmt: skip

        return run
    if tool == "lifetimes":
        from lifetimes.utils import summary_data_from_transaction_data

        def run(df: Any) -> Any:
            return summary_data_from_transaction_data(
                df, "customer_id", "date", monetary_value_col="amount",
                observation_period_end=df["date"].max(), freq="D",
            )  # fmt: skip

        return run
    raise ValueError(f"unknown tool {tool!r}")


def worker_measure(tool: str, n_rows: int, seed: int) -> dict[str, Any]:
    """One measurement, meant to run in a fresh process."""
    run = _summary_function(tool)
    df, after_import, after_input = _common.measure_input(lambda: make_transactions(n_rows, seed))
    peak_before_call = _common.peak_rss_bytes()
    start = time.perf_counter()
    summary = run(df)
    seconds = time.perf_counter() - start
    peak = _common.peak_rss_bytes()
    return {
        "tool": tool,
        "size": n_rows,
        "seed": seed,
        "seconds": seconds,
        "rss_after_import_mib": after_import / MIB,
        "rss_after_input_mib": after_input / MIB,
        "peak_before_call_mib": peak_before_call / MIB,
        "peak_rss_mib": peak / MIB,
        "increment_mib": (peak - after_input) / MIB,
        "input_frame_mib": int(df.memory_usage(deep=True).sum()) / MIB,
        "n_customers": len(summary),
    }


def worker_check(n_rows: int, seed: int) -> dict[str, Any]:
    """Run both tools on the same input and compare the common columns."""
    import numpy as np

    df = make_transactions(n_rows, seed)
    ours = _summary_function("clvmodels")(df)
    theirs = _summary_function("lifetimes")(df)
    same_customers = len(ours) == len(theirs) and bool(
        ours.index.sort_values().equals(theirs.index.sort_values())
    )
    theirs = theirs.reindex(ours.index)
    columns = {}
    for column in ("frequency", "recency", "T", "monetary_value"):
        a = ours[column].to_numpy(dtype=np.float64)
        b = theirs[column].to_numpy(dtype=np.float64)
        scale = np.maximum(np.abs(a), np.abs(b))
        diff = np.abs(a - b)
        relative = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        relative[np.isnan(a) | np.isnan(b)] = np.inf
        columns[column] = float(relative.max())
    agree = same_customers and all(v <= RELATIVE_TOLERANCE for v in columns.values())
    return {
        "size": n_rows,
        "seed": seed,
        "n_customers": len(ours),
        "same_customers": same_customers,
        "max_relative_difference": columns,
        "tolerance": RELATIVE_TOLERANCE,
        "agree": agree,
    }


# ----------------------------------------------------------------- parent side


def _run_worker(args: list[str]) -> dict[str, Any]:
    return _common.run_worker(__file__, args, SUBPROCESS_TIMEOUT_S)


def _import_times(statement: str, runs: int) -> list[float]:
    code = f"import time; t=time.perf_counter(); {statement}; print(time.perf_counter()-t)"
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return times


def summarise_runs(runs: list[dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        medians = {}
        for tool in TOOLS:
            mine = [r for r in runs if r["size"] == size and r["tool"] == tool]
            medians[tool] = _common.median_stats(mine)
        reference = medians["lifetimes"]
        for tool in TOOLS:
            m = medians[tool]
            rows.append(
                {
                    "size": size,
                    "tool": tool,
                    **m,
                    "speedup": reference["seconds"] / m["seconds"],
                    "peak_ratio": m["peak_rss_mib"] / reference["peak_rss_mib"],
                    "increment_ratio": m["increment_mib"] / reference["increment_mib"],
                }
            )
    return rows


def evaluate_targets(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    at_target = {r["tool"]: r for r in rows if r["size"] == TARGET_SIZE}
    if set(at_target) != set(TOOLS):
        return None
    ours = at_target["clvmodels"]
    return {
        "size": TARGET_SIZE,
        "speedup": ours["speedup"],
        "speedup_met": ours["speedup"] >= TARGET_SPEEDUP,
        "peak_ratio": ours["peak_ratio"],
        "peak_met": ours["peak_ratio"] <= TARGET_MEMORY_RATIO,
        "increment_ratio": ours["increment_ratio"],
        "increment_met": ours["increment_ratio"] <= TARGET_MEMORY_RATIO,
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    titles = ["transactions", "tool", "median time (s)", "speed-up vs lifetimes"]
    titles += ["peak RSS (MiB)", "increment (MiB)"]
    lines = _common.markdown_header(titles, "rlrrrr")
    for r in rows:
        cells = [f"{r['size']:,}", r["tool"], f"{r['seconds']:.3f}", f"{r['speedup']:.1f}x"]
        cells += [f"{r['peak_rss_mib']:,.0f}", f"{r['increment_mib']:,.0f}"]
        lines.append(_common.markdown_row(cells))
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "met" if flag else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per (tool, size)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--check-size",
        type=int,
        default=1_000_000,
        help="transactions for the agreement check (0 to skip)",
    )
    parser.add_argument("--json", metavar="PATH", help="write all measurements as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "measure":
            result = worker_measure(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = worker_check(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return 0

    info = _common.machine_info(PACKAGES)
    _common.print_machine(info)

    import_times = _import_times("import clvmodels", IMPORT_RUNS)
    first_use_times = _import_times("import clvmodels; clvmodels.summarize", IMPORT_RUNS)
    print(
        f"\nimport clvmodels: median {statistics.median(import_times) * 1000:.1f} ms "
        f"over {IMPORT_RUNS} fresh interpreters"
    )
    print(
        f"import clvmodels + first access to clvmodels.summarize: median "
        f"{statistics.median(first_use_times) * 1000:.1f} ms"
    )

    check = None
    if args.check_size:
        check = _run_worker(["check", str(args.check_size), str(args.seed)])
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in check["max_relative_difference"].items())
        print(
            f"\nAgreement on {check['size']:,} transactions ({check['n_customers']:,} "
            f"customers): {'OK' if check['agree'] else 'MISMATCH'}; same customers: "
            f"{check['same_customers']}; max relative difference: {diffs}"
        )

    runs = []
    print("\nRuns (each a fresh process)")
    for size in args.sizes:
        for repeat in range(args.repeats):
            for tool in TOOLS:
                run = _run_worker(["measure", tool, str(size), str(args.seed)])
                run["repeat"] = repeat
                runs.append(run)
                print(
                    f"  {size:>11,} {tool:9s} #{repeat}: {run['seconds']:7.3f} s, "
                    f"peak {run['peak_rss_mib']:7,.0f} MiB, increment "
                    f"{run['increment_mib']:7,.0f} MiB (input built: "
                    f"{run['rss_after_input_mib']:,.0f} MiB)",
                    flush=True,
                )

    rows = summarise_runs(runs, args.sizes)
    print("\nMedians")
    for r in rows:
        print(
            f"  {r['size']:>11,} {r['tool']:9s} {r['seconds']:7.3f} s "
            f"({r['speedup']:5.1f}x)  peak {r['peak_rss_mib']:7,.0f} MiB "
            f"({r['peak_ratio']:.2f} of lifetimes)  increment {r['increment_mib']:7,.0f} MiB "
            f"({r['increment_ratio']:.2f} of lifetimes)"
        )

    targets = evaluate_targets(rows)
    if targets:
        print(
            f"\nTargets at {TARGET_SIZE:,} transactions: speed-up {targets['speedup']:.1f}x "
            f"(>= {TARGET_SPEEDUP:g}x: {_yes(targets['speedup_met'])}); peak RSS "
            f"{targets['peak_ratio']:.2f} of lifetimes (<= {TARGET_MEMORY_RATIO}: "
            f"{_yes(targets['peak_met'])}); increment {targets['increment_ratio']:.2f} of "
            f"lifetimes (<= {TARGET_MEMORY_RATIO}: {_yes(targets['increment_met'])})"
        )

    if args.markdown:
        print("\n" + markdown_table(rows))

    if args.json:
        _common.write_json(
            args.json,
            {
                "machine": info,
                "import_clvmodels_s": import_times,
                "import_and_first_access_s": first_use_times,
                "agreement": check,
                "runs": runs,
                "medians": rows,
                "targets": targets,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Helpers shared by the benchmark scripts in this folder.

The scripts run as ``python benchmarks/bench_<name>.py`` and import this module from their
own directory. It uses only the standard library, so importing it in a measuring worker
adds nothing worth counting to the worker's memory. What is here:

* the memory of the current process (for the workers): :func:`current_rss_bytes`,
  :func:`peak_rss_bytes`, :func:`measure_input`, :func:`memory_fields`;
* running a script's worker in a fresh interpreter: :func:`run_worker`;
* the machine a run was measured on: :func:`machine_info`, :func:`print_machine`;
* medians over repeated runs: :func:`median_stats`;
* output: :func:`markdown_header`, :func:`markdown_row`, :func:`write_json`.

Memory is read from the Linux ``/proc`` file system and ``getrusage``.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from typing import Any, TypeVar

MIB = 2**20

T = TypeVar("T")


# ----------------------------------------------------------------- worker side


def current_rss_bytes() -> int:
    """Resident set size of this process now (VmRSS from /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def peak_rss_bytes() -> int:
    """Peak RSS of this process so far; ru_maxrss is in KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure_input(build: Callable[[], T]) -> tuple[T, int, int]:
    """Build a worker's input with ``build()``; return it with the RSS (bytes) before and after.

    The RSS after is read after a garbage collection, so temporaries of ``build`` that are
    already freed do not count.
    """
    before = current_rss_bytes()
    value = build()
    gc.collect()
    return value, before, current_rss_bytes()


def memory_fields(after_import: int, after_input: int, peak: int) -> dict[str, float]:
    """A worker's memory report in MiB from RSS readings in bytes.

    ``increment_mib`` is the peak minus the RSS after the input was built: what the timed
    call needed on top of its input.
    """
    return {
        "rss_after_import_mib": after_import / MIB,
        "rss_after_input_mib": after_input / MIB,
        "peak_rss_mib": peak / MIB,
        "increment_mib": (peak - after_input) / MIB,
    }


# ----------------------------------------------------------------- parent side


def run_worker(script: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``script --worker *args`` in a fresh interpreter; return the JSON it printed last.

    Raises ``RuntimeError`` with the worker's stderr if it fails.
    """
    command = [sys.executable, os.path.abspath(script), "--worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {list(args)} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def repeated_runs(script: str, args: Sequence[str], repeats: int,
                  timeout: float = 1800) -> dict[str, Any]:  # fmt: skip
    """``repeats`` runs of ``script --worker *args``, each in a fresh interpreter: every
    run's JSON (a failed one as ``{"error": its last line}``) and the medians of those
    that worked."""
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        try:
            runs.append(run_worker(script, args, timeout))
        except RuntimeError as error:
            runs.append({"error": str(error).strip().splitlines()[-1]})
    good = [run for run in runs if "error" not in run]
    return {"runs": runs, **(median_stats(good) if good else {})}


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "processor\t: ")):
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_memory_gib() -> float | None:
    """Total memory of the machine in GiB (MemTotal from /proc/meminfo), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    return None


def package_version(package: str) -> str:
    """The installed version of ``package``, or ``"not installed"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(packages: Iterable[str]) -> dict[str, Any]:
    """Date, platform, CPU, memory, Python and the versions of ``packages``, in that order."""
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "total_memory_gib": total_memory_gib(),
        "python": platform.python_version(),
        **{package: package_version(package) for package in packages},
    }


def print_machine(info: dict[str, Any]) -> None:
    """Print :func:`machine_info` as an indented ``Machine`` block."""
    print("Machine")
    for key, value in info.items():
        shown = f"{value:.1f} GiB" if key == "total_memory_gib" and value else value
        print(f"  {key:17s} {shown}")


def median_stats(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians of time and memory over the runs of one (case, tool), and the run count.

    Each run needs ``seconds``, ``peak_rss_mib``, ``increment_mib`` and
    ``rss_after_input_mib``; ``all_seconds`` keeps every run's time.
    """
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
        "increment_mib": statistics.median(r["increment_mib"] for r in runs),
        "rss_after_input_mib": statistics.median(r["rss_after_input_mib"] for r in runs),
        "repeats": len(runs),
        "all_seconds": [r["seconds"] for r in runs],
    }


def markdown_header(titles: Sequence[str], align: str) -> list[str]:
    """The title and separator lines of a markdown table.

    ``align`` has one letter a column: ``l`` (left, ``:---``) or ``r`` (right, ``---:``).
    """
    if len(align) != len(titles) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} does not fit {len(titles)} columns")
    rules = {"l": ":---", "r": "---:"}
    return [markdown_row(titles), "|" + "|".join(rules[a] for a in align) + "|"]


def markdown_row(cells: Iterable[object]) -> str:
    """One markdown table row: ``| a | b | c |``."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` plus the command line that ran the script to ``path``, and say so."""
    with open(path, "w") as out:
        json.dump({**data, "command": [os.path.basename(sys.executable), *sys.argv]}, out, indent=2)
    print(f"\nWrote {path}")

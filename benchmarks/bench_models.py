"""Benchmark model fitting (BG/NBD, Pareto/NBD) in clvmodels against lifetimes.

What is measured
----------------
Four cases (select with ``--only``), each fitted by both tools on the same data:

``bgnbd_days``
    BG/NBD on 1M customers simulated with ``clvmodels.simulate.simulate_bgnbd`` in days
    with CDNOW-like parameters (r = 0.24, alpha = 4.4 per week = 30.8 per day,
    a = 0.79, b = 2.4), T per customer uniform over the whole days 1 .. 365 and recency
    floored to whole days, so many customers share a (frequency, recency, T) pattern.
``bgnbd_continuous``
    The same model and parameters, T uniform(1, 365) continuous and recency kept
    continuous: (almost) every customer is a distinct pattern.
``pnbd``
    Pareto/NBD on 100k customers simulated with ``simulate_pnbd`` (r = 0.55,
    alpha = 10.58, s = 0.61, beta = 11.67, per week), T uniform over the whole days
    1 .. 365 and recency floored to whole days, both expressed in weeks (days / 7).
``cdnow``
    BG/NBD on the CDNOW calibration frame (``calibration_holdout(load_cdnow(),
    calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")``, 2,357
    customers) in a warm process: 2 warm-up fits, then 20 timed fits; the time of a
    process is the median of its 20 fits, and the case reports the median over
    ``--repeats`` such processes.

The fits timed are ``clvmodels.BGNBD().fit(frame)`` / ``clvmodels.ParetoNBD().fit(frame)``
and ``lifetimes.BetaGeoFitter().fit(frame["frequency"], frame["recency"], frame["T"])`` /
``lifetimes.ParetoNBDFitter().fit(...)``, all with default settings (including what each
``fit`` does after optimising: clvmodels' covariance, lifetimes' autograd Hessian for
BG/NBD).

The simulated data of a case are drawn once with a fixed seed
(``numpy.random.default_rng(seed)``) and written to a temporary ``.npz`` file. Every
measurement then runs in a fresh subprocess of the current interpreter which

1. imports its tool,
2. loads the ``.npz`` into a DataFrame and reads its resident set size (RSS),
3. times only the ``fit`` call with ``time.perf_counter``,
4. reads its peak RSS with ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.

Per (case, tool) the script reports the median fit time, the median peak RSS of the
process and the median increment (peak RSS minus the RSS after the input was loaded).
Runs of the two tools are interleaved. clvmodels gets ``--repeats`` processes (default
3); lifetimes too, unless its first fit took longer than 30 s, in which case it gets one
(the output says so). lifetimes' Pareto/NBD starts from random values
(``numpy.random.normal``); its processes seed the global generator for repeatability.

Agreement: one more subprocess per case evaluates both tools' log-likelihood functions
(clvmodels' per-customer log-likelihood of the model class, and lifetimes'
``_negative_log_likelihood``) at both tools' optima, and reports the largest relative
difference of the parameters. At the true optimum, clvmodels' parameters should give a
log-likelihood at least as high as lifetimes' (up to rounding) under either function.

``--profile`` runs cProfile on clvmodels' first fit in a fresh process (as timed) for
each selected case and prints the top functions, to see where the time goes.

How to run
----------
From the repository root, with clvmodels and lifetimes installed::

    python benchmarks/bench_models.py --json /tmp/bench_models.json --markdown

Use ``--only cdnow`` or ``--only pnbd --repeats 1`` for a quicker run; the full run takes
about 3 minutes, most of it lifetimes. Peak memory is read from the Linux ``/proc`` file
system and ``getrusage``; other systems are not supported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

TOOLS = ("clvmodels", "lifetimes")
PACKAGES = ("numpy", "scipy", "pandas", "autograd", "lifetimes", "clvmodels")  # with the machine
SEED = 20240601
SUBPROCESS_TIMEOUT_S = 3 * 3600
SLOW_LIFETIMES_S = 30.0  # lifetimes fits slower than this are not repeated
CDNOW_WARMUP = 2
CDNOW_FITS = 20

BGNBD_DAY_PARAMS = {"r": 0.24, "alpha": 4.4 * 7, "a": 0.79, "b": 2.4}  # alpha per day
PNBD_WEEK_PARAMS = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}  # per week
MAX_DAYS = 365

CASES: dict[str, dict[str, Any]] = {
    "bgnbd_days": {
        "model": "bgnbd",
        "customers": 1_000_000,
        "description": "BG/NBD, 1M customers, recency and T in whole days",
        "target": ("speed-up", 20.0),
    },
    "bgnbd_continuous": {
        "model": "bgnbd",
        "customers": 1_000_000,
        "description": "BG/NBD, 1M customers, continuous recency and T (no duplicates)",
        "target": ("speed-up", 5.0),
    },
    "pnbd": {
        "model": "pnbd",
        "customers": 100_000,
        "description": "Pareto/NBD, 100k customers, recency and T in whole days (as weeks)",
        "target": ("speed-up", 50.0),
    },
    "cdnow": {
        "model": "bgnbd",
        "customers": None,
        "description": "BG/NBD on CDNOW calibration (weeks), warm process",
        "target": ("seconds", 0.050),
    },
}


# ----------------------------------------------------------------- worker side


def simulate_case(case: str, seed: int) -> dict[str, Any]:
    """The customers of a simulated case as arrays frequency, recency, T."""
    import numpy as np

    from clvmodels.simulate import simulate_bgnbd, simulate_pnbd

    n = CASES[case]["customers"]
    rng = np.random.default_rng(seed)
    if case == "bgnbd_days":
        T = rng.integers(1, MAX_DAYS + 1, size=n).astype(np.float64)
        frame = simulate_bgnbd(n, **BGNBD_DAY_PARAMS, T=T, random_state=rng)
        recency = np.floor(frame["recency"].to_numpy())
    elif case == "bgnbd_continuous":
        T = rng.uniform(1.0, float(MAX_DAYS), size=n)
        frame = simulate_bgnbd(n, **BGNBD_DAY_PARAMS, T=T, random_state=rng)
        recency = frame["recency"].to_numpy()
    elif case == "pnbd":
        T_days = rng.integers(1, MAX_DAYS + 1, size=n).astype(np.float64)
        frame = simulate_pnbd(n, **PNBD_WEEK_PARAMS, T=T_days / 7, random_state=rng)
        # whole days, then weeks; floor(recency * 7) <= T_days, so recency <= T holds
        recency = np.minimum(np.floor(frame["recency"].to_numpy() * 7), T_days) / 7
        T = T_days / 7
    else:
        raise ValueError(f"{case!r} is not a simulated case")
    return {
        "frequency": frame["frequency"].to_numpy(dtype=np.int64),
        "recency": np.ascontiguousarray(recency, dtype=np.float64),
        "T": np.ascontiguousarray(T, dtype=np.float64),
    }


def worker_generate(case: str, seed: int, path: str) -> dict[str, Any]:
    """Simulate a case once and save it; report its size and distinct patterns."""
    import numpy as np
    import pandas as pd

    arrays = simulate_case(case, seed)
    np.savez(path, **arrays)
    frame = pd.DataFrame(arrays)
    return {
        "case": case,
        "seed": seed,
        "customers": len(frame),
        "patterns": len(frame.drop_duplicates()),
        "mean_frequency": float(frame["frequency"].mean()),
        "share_zero_frequency": float((frame["frequency"] == 0).mean()),
    }


def load_frame(case: str, path: str | None) -> Any:
    """The input DataFrame of a case: the saved simulation, or the CDNOW calibration frame."""
    import numpy as np
    import pandas as pd

    if case == "cdnow":
        import clvmodels

        frame = clvmodels.calibration_holdout(
            clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
            holdout_end="1998-06-30", time_unit="W",
        )  # fmt: skip
        return frame[["frequency_cal", "recency_cal", "T_cal"]].rename(
            columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"}
        )
    with np.load(path) as saved:
        return pd.DataFrame({k: saved[k] for k in ("frequency", "recency", "T")})


def _fit_function(tool: str, model: str, seed: int) -> Any:
    """Import ``tool``; return frame -> fitted model (params as a list) with default settings."""
    if tool == "clvmodels":
        import clvmodels

        cls = clvmodels.BGNBD if model == "bgnbd" else clvmodels.ParetoNBD

        def run(frame: Any) -> Any:
            return cls().fit(frame)

        return run
    if tool == "lifetimes":
        import numpy as np
        from lifetimes import BetaGeoFitter, ParetoNBDFitter

        cls = BetaGeoFitter if model == "bgnbd" else ParetoNBDFitter

        def run(frame: Any) -> Any:
            # lifetimes' Pareto/NBD draws its start values from the global generator
            np.random.seed(seed % 2**32)  # noqa: NPY002
            # frame["T"], not frame.T: on a DataFrame .T is the transpose
            return cls().fit(frame["frequency"], frame["recency"], frame["T"])

        return run
    raise ValueError(f"unknown tool {tool!r}")


def _model_info(tool: str, fitted: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"params": [float(v) for v in fitted.params_.to_numpy()]}
    if tool == "clvmodels":
        info["log_likelihood"] = float(fitted.log_likelihood_)
        info["patterns_fitted"] = int(fitted.n_patterns_)
    return info


def worker_measure(tool: str, case: str, path: str | None, seed: int) -> dict[str, Any]:
    """One measurement of a simulated case, meant to run in a fresh process."""
    run = _fit_function(tool, CASES[case]["model"], seed)
    frame, after_import, after_input = _common.measure_input(lambda: load_frame(case, path))
    start = time.perf_counter()
    fitted = run(frame)
    seconds = time.perf_counter() - start
    peak = _common.peak_rss_bytes()
    return {
        "tool": tool,
        "case": case,
        "seconds": seconds,
        **_common.memory_fields(after_import, after_input, peak),
        **_model_info(tool, fitted),
    }


def worker_warm(tool: str, case: str, path: str | None, seed: int) -> dict[str, Any]:
    """Warm-process timing: CDNOW_WARMUP untimed fits, then CDNOW_FITS timed ones."""
    run = _fit_function(tool, CASES[case]["model"], seed)
    frame, after_import, after_input = _common.measure_input(lambda: load_frame(case, path))
    for _ in range(CDNOW_WARMUP):
        run(frame)
    times = []
    for _ in range(CDNOW_FITS):
        start = time.perf_counter()
        fitted = run(frame)
        times.append(time.perf_counter() - start)
    peak = _common.peak_rss_bytes()
    return {
        "tool": tool,
        "case": case,
        "seconds": statistics.median(times),
        "all_fit_seconds": times,
        "warmup_fits": CDNOW_WARMUP,
        **_common.memory_fields(after_import, after_input, peak),
        "customers": len(frame),
        "patterns": len(frame.drop_duplicates()),
        **_model_info(tool, fitted),
    }


def _clvmodels_loglik(model: str, frame: Any, params: list[float]) -> float:
    """Total log-likelihood under clvmodels' own per-customer function."""
    import numpy as np

    import clvmodels

    instance = clvmodels.BGNBD() if model == "bgnbd" else clvmodels.ParetoNBD()
    arrays, _ = instance._read(frame)
    ll, _ = instance._loglik(np.asarray(params, dtype=np.float64), instance._prepare(arrays), False)
    return float(np.sum(ll))


def _lifetimes_loglik(model: str, frame: Any, params: list[float]) -> float:
    """Total log-likelihood under lifetimes' ``_negative_log_likelihood`` (unscaled time)."""
    import numpy as np
    from lifetimes import BetaGeoFitter, ParetoNBDFitter

    x = frame["frequency"].to_numpy().astype(int)
    t_x = frame["recency"].to_numpy(dtype=np.float64)
    T = frame["T"].to_numpy(dtype=np.float64)
    weights = np.ones(len(x), dtype=np.int64)
    theta = np.asarray(params, dtype=np.float64)
    if model == "bgnbd":  # mean negative log-likelihood of log-parameters
        mean = BetaGeoFitter._negative_log_likelihood(np.log(theta), x, t_x, T, weights, 0.0)
        return float(-mean * len(x))
    # sum(w * ll) / mean(w), i.e. the total for unit weights
    return float(-ParetoNBDFitter._negative_log_likelihood(theta, x, t_x, T, weights, 0.0))


def worker_compare(case: str, path: str | None, params_json: str) -> dict[str, Any]:
    """Both log-likelihood functions at both optima, and the parameter differences."""
    import numpy as np

    model = CASES[case]["model"]
    params = json.loads(params_json)
    frame = load_frame(case, path)
    out: dict[str, Any] = {"case": case, "params": params, "loglik": {}}
    for function, evaluate in (("clvmodels", _clvmodels_loglik), ("lifetimes", _lifetimes_loglik)):
        try:
            out["loglik"][function] = {t: evaluate(model, frame, params[t]) for t in params}
        except Exception as error:  # report, do not lose the rest of the run
            out["loglik"][function] = {"error": f"{type(error).__name__}: {error}"}
    if set(params) == set(TOOLS):
        ours, theirs = np.asarray(params["clvmodels"]), np.asarray(params["lifetimes"])
        relative = np.abs(ours - theirs) / np.abs(theirs)
        out["relative_difference"] = [float(v) for v in relative]
        out["max_relative_difference"] = float(relative.max())
        gaps = {}
        for function, values in out["loglik"].items():
            if "error" not in values:
                gaps[function] = values["clvmodels"] - values["lifetimes"]
        out["loglik_ours_minus_theirs"] = gaps
    return out


def worker_profile(case: str, path: str | None, top: int) -> dict[str, Any]:
    """cProfile of clvmodels' first fit in a fresh process (the one the timings measure),
    then the time of a second, unprofiled fit in the same (now warm) process."""
    import cProfile
    import io
    import pstats

    run = _fit_function("clvmodels", CASES[case]["model"], 0)
    frame = load_frame(case, path)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    run(frame)
    profiler.disable()
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    run(frame)
    warm_seconds = time.perf_counter() - start
    reports = {}
    for order in ("tottime", "cumulative"):
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats(order).print_stats(top)
        reports[order] = stream.getvalue()
    return {
        "case": case,
        "seconds_under_profiler": seconds,
        "warm_seconds_unprofiled": warm_seconds,
        "reports": reports,
    }


# ----------------------------------------------------------------- parent side


def _run_worker(args: list[str]) -> dict[str, Any]:
    return _common.run_worker(__file__, args, SUBPROCESS_TIMEOUT_S)


def _pareto_available() -> bool:
    """Whether clvmodels.ParetoNBD can be imported (checked in a fresh interpreter)."""
    done = subprocess.run(
        [sys.executable, "-c", "import clvmodels; clvmodels.ParetoNBD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


def _print_run(run: dict[str, Any]) -> None:
    extra = (
        f", fits {min(run['all_fit_seconds']):.4f}..{max(run['all_fit_seconds']):.4f} s"
        if ("all_fit_seconds" in run)
        else ""
    )
    print(
        f"  {run['case']:17s} {run['tool']:9s} #{run['repeat']}: {run['seconds']:9.4f} s, "
        f"peak {run['peak_rss_mib']:6,.0f} MiB, increment {run['increment_mib']:6,.0f} MiB"
        f"{extra}; params {[round(p, 5) for p in run['params']]}",
        flush=True,
    )


def measure_case(
    case: str, path: str | None, repeats: int, seed: int, tools: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Interleaved runs of a case; lifetimes is not repeated once a fit took > 30 s."""
    kind = "warm" if case == "cdnow" else "measure"
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        for tool in tools:
            previous = [r for r in runs if r["tool"] == tool]
            if tool == "lifetimes" and previous and previous[0]["seconds"] > SLOW_LIFETIMES_S:
                continue
            run = _run_worker([kind, tool, case, path or "-", str(seed)])
            run["repeat"] = repeat
            runs.append(run)
            _print_run(run)
    return runs


def summarise_case(case: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    medians: dict[str, dict[str, Any]] = {}
    for tool in TOOLS:
        mine = [r for r in runs if r["tool"] == tool]
        if not mine:
            continue
        medians[tool] = {"case": case, "tool": tool, **_common.median_stats(mine)}
    reference = medians.get("lifetimes")
    for m in medians.values():
        m["speedup"] = reference["seconds"] / m["seconds"] if reference else None
    return list(medians.values())


def evaluate_target(case: str, rows: list[dict[str, Any]], pending: bool) -> dict[str, Any]:
    kind, threshold = CASES[case]["target"]
    ours = next((r for r in rows if r["tool"] == "clvmodels"), None)
    if ours is None or (kind == "speed-up" and ours["speedup"] is None):
        return {"case": case, "kind": kind, "threshold": threshold, "value": None,
                "met": None, "pending": pending}  # fmt: skip
    value = ours["speedup"] if kind == "speed-up" else ours["seconds"]
    met = value >= threshold if kind == "speed-up" else value < threshold
    return {"case": case, "kind": kind, "threshold": threshold, "value": value, "met": met,
            "pending": False}  # fmt: skip


def _met(target: dict[str, Any]) -> str:
    if target["pending"]:
        return "pending (clvmodels.ParetoNBD not available)"
    if target["met"] is None:
        return "not measured"
    return "met" if target["met"] else "NOT met"


def _target_text(target: dict[str, Any]) -> tuple[str, str]:
    if target["kind"] == "speed-up":
        wanted = f"speed-up >= {target['threshold']:g}x"
        got = "-" if target["value"] is None else f"{target['value']:.1f}x"
    else:
        wanted = f"median fit < {target['threshold'] * 1000:g} ms"
        got = "-" if target["value"] is None else f"{target['value'] * 1000:.1f} ms"
    return wanted, got


def markdown_tables(
    rows: list[dict[str, Any]],
    datasets: dict[str, dict[str, Any]],
    targets: list[dict[str, Any]],
    comparisons: dict[str, dict[str, Any]],
) -> str:
    titles = ["case", "customers", "patterns", "tool", "fits timed", "median time (s)"]
    titles += ["speed-up vs lifetimes", "peak RSS (MiB)", "increment (MiB)"]
    lines = _common.markdown_header(titles, "lrrlrrrrr")
    for r in rows:
        info = datasets.get(r["case"], {})
        customers = f"{info['customers']:,}" if "customers" in info else "-"
        patterns = f"{info['patterns']:,}" if "patterns" in info else "-"
        timed = (f"{r['repeats']} x {CDNOW_FITS}" if r["case"] == "cdnow"
                 else f"{r['repeats']}")  # fmt: skip
        speedup = "-" if r["speedup"] is None else f"{r['speedup']:.1f}x"
        cells = [r["case"], customers, patterns, r["tool"], timed, f"{r['seconds']:.4f}"]
        cells += [speedup, f"{r['peak_rss_mib']:,.0f}", f"{r['increment_mib']:,.0f}"]
        lines.append(_common.markdown_row(cells))
    lines += ["", *_common.markdown_header(["case", "target", "result", "met?"], "llll")]
    for t in targets:
        wanted, got = _target_text(t)
        lines.append(_common.markdown_row([t["case"], wanted, got, _met(t)]))
    titles = ["case", "max relative parameter difference"]
    titles += [f"log-lik. gap, {tool} function" for tool in TOOLS]
    lines += ["", *_common.markdown_header(titles, "lrrr")]
    for case, c in comparisons.items():
        if "max_relative_difference" not in c:
            continue
        gaps = c["loglik_ours_minus_theirs"]
        shown = [f"{gaps[f]:+.3g}" if f in gaps else "error" for f in TOOLS]
        lines.append(_common.markdown_row([case, f"{c['max_relative_difference']:.1e}", *shown]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(CASES),
        help=f"comma-separated cases to run (default all: {','.join(CASES)})",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per (case, tool); lifetimes gets 1 if its "
                        f"first fit takes > {SLOW_LIFETIMES_S:g} s")  # fmt: skip
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", metavar="PATH", help="write all measurements as JSON")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one clvmodels fit per case")  # fmt: skip
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        rest = [None if value == "-" else value for value in rest]  # "-": no data file
        if kind == "generate":  # case seed path
            result = worker_generate(rest[0], int(rest[1]), rest[2])
        elif kind in ("measure", "warm"):  # tool case path seed
            worker = worker_measure if kind == "measure" else worker_warm
            result = worker(rest[0], rest[1], rest[2], int(rest[3]))
        elif kind == "compare":  # case path params-json
            result = worker_compare(rest[0], rest[1], rest[2])
        else:  # profile: case path top
            result = worker_profile(rest[0], rest[1], int(rest[2]))
        print(json.dumps(result))
        return 0

    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")

    info = _common.machine_info(PACKAGES)
    _common.print_machine(info)

    datasets: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    comparisons: dict[str, dict[str, Any]] = {}
    profiles: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_models_") as tmp:
        for case in cases:
            print(f"\n{case}: {CASES[case]['description']}", flush=True)
            path = None
            if case != "cdnow":
                path = os.path.join(tmp, f"{case}.npz")
                datasets[case] = _run_worker(["generate", case, str(args.seed), path])
                d = datasets[case]
                print(
                    f"  data: {d['customers']:,} customers, {d['patterns']:,} distinct "
                    f"(frequency, recency, T) patterns, mean frequency "
                    f"{d['mean_frequency']:.3f}, {d['share_zero_frequency']:.1%} with none",
                    flush=True,
                )
            tools = TOOLS
            pending = case == "pnbd" and not _pareto_available()
            if pending:
                print("  clvmodels.ParetoNBD is not importable: clvmodels part pending")
                tools = ("lifetimes",)
            case_runs = measure_case(case, path, args.repeats, args.seed, tools)
            runs += case_runs
            case_rows = summarise_case(case, case_runs)
            rows += case_rows
            if case == "cdnow":
                datasets[case] = {k: case_runs[0][k] for k in ("customers", "patterns")}
            slow = [
                r for r in case_rows if r["tool"] == "lifetimes" and r["repeats"] < args.repeats
            ]
            if slow:
                print(f"  lifetimes took > {SLOW_LIFETIMES_S:g} s: measured once")
            for r in case_rows:
                speedup = "" if r["speedup"] is None else f" ({r['speedup']:.1f}x)"
                print(f"  median {r['tool']:9s} {r['seconds']:9.4f} s{speedup}, peak "
                      f"{r['peak_rss_mib']:,.0f} MiB over {r['repeats']} process(es)")  # fmt: skip
            target = evaluate_target(case, case_rows, pending)
            targets.append(target)
            wanted, got = _target_text(target)
            print(f"  target {wanted}: {got}, {_met(target)}")

            params = {}
            for tool in tools:
                first = next(r for r in case_runs if r["tool"] == tool)
                params[tool] = first["params"]
            comparison = _run_worker(["compare", case, path or "-", json.dumps(params)])
            comparisons[case] = comparison
            for function, values in comparison["loglik"].items():
                text = ", ".join(
                    f"at {t}' optimum {v:,.4f}" if isinstance(v, float) else f"{t} {v}"
                    for t, v in values.items()
                )
                print(f"  total log-likelihood ({function}' function): {text}")
            if "max_relative_difference" in comparison:
                print(
                    "  relative parameter difference: "
                    + ", ".join(f"{v:.1e}" for v in comparison["relative_difference"])
                    + "; log-likelihood clvmodels - lifetimes optimum: "
                    + ", ".join(
                        f"{v:+.4g} ({f}' function)"
                        for f, v in comparison["loglik_ours_minus_theirs"].items()
                    )
                )
            if args.profile and not pending:
                profiles[case] = _run_worker(["profile", case, path or "-", "25"])
                prof = profiles[case]
                print(f"\n  cProfile of clvmodels' first fit in a fresh process "
                      f"({prof['seconds_under_profiler']:.3f} s under the profiler; a second, "
                      f"unprofiled fit took {prof['warm_seconds_unprofiled']:.3f} s)")  # fmt: skip
                for order, report in profiles[case]["reports"].items():
                    print(f"  --- sorted by {order}")
                    print(report)

    if args.markdown:
        print("\n" + markdown_tables(rows, datasets, targets, comparisons))

    if args.json:
        _common.write_json(
            args.json,
            {
                "machine": info,
                "seed": args.seed,
                "datasets": datasets,
                "runs": runs,
                "medians": rows,
                "targets": targets,
                "agreement": comparisons,
                "profiles": profiles,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

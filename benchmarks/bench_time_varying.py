"""Benchmark the Pareto/NBD with a time-varying covariate (issue #16, item 6).

What is measured
----------------
100k customers acquired over the first 26 weeks, observed to the end of week 104, with
one weekly covariate (``promo``), simulated from the model (r = 0.8, alpha = 6,
s = 0.7, beta = 8 per week; purchase coefficient 0.6, dropout coefficient 0.5) by
inverting the integrated rates A and B (a Poisson process of rate lambda a(t) is one of
rate lambda on the clock A(t); the lifetime ends at B^-1(E / mu), E ~ Exp(1)).

``common``
    The covariate is a campaign calendar shared by every customer (30 % of the weeks).
``per_customer``
    Each customer has their own weekly 0/1 covariate (30 % of their weeks): 10M rows in
    the covariate table, and every week a piece of its own for about half the customers.

Each case times, in a fresh process, ``clvmodels.covariate_history(log, table, ...)``
and then ``ParetoNBD(purchase_covariates=["promo"], dropout_covariates=["promo"])
.fit(history)`` (covariance included), and reports medians over ``--repeats``. No other
Python tool fits this model (CLVTools, in R, is the reference implementation).

Run ``python benchmarks/bench_time_varying.py [--only CASE] [--repeats 3] [--json F]``
on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, median_stats, write_json

TRUTH = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 8.0}
EFFECTS = {"purchase": 0.6, "dropout": 0.5}
WEEKS = 104
START = np.datetime64("2020-01-06")


def build(case: str, n: int, seed: int, folder: str) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    periods = WEEKS + 1
    if case == "common":
        promo = np.tile((rng.uniform(size=periods) < 0.3) * 1.0, (n, 1))
    else:
        promo = (rng.uniform(size=(n, periods)) < 0.3) * 1.0
    a = np.exp(EFFECTS["purchase"] * promo)
    b = np.exp(EFFECTS["dropout"] * promo)
    A = np.concatenate([np.zeros((n, 1)), np.cumsum(a, axis=1)], axis=1)
    B = np.concatenate([np.zeros((n, 1)), np.cumsum(b, axis=1)], axis=1)
    grid = np.arange(periods + 1, dtype=np.float64)
    first = rng.integers(0, 26 * 7, n) / 7.0
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    mu = rng.gamma(TRUTH["s"], 1 / TRUTH["beta"], n)
    customers, days = [], []
    for i in range(n):
        A0, B0 = np.interp(first[i], grid, A[i]), np.interp(first[i], grid, B[i])
        death = np.interp(B0 + rng.exponential() / mu[i], B[i], grid)
        stop = min(death, float(WEEKS))
        A1 = np.interp(stop, grid, A[i])
        count = rng.poisson(lam[i] * max(A1 - A0, 0.0))
        times = np.interp(np.sort(rng.uniform(A0, A1, count)), A[i], grid)
        stamps = np.floor(np.r_[first[i], times] * 7.0).astype(np.int64)
        customers.append(np.full(stamps.size, i))
        days.append(stamps)
    log = pd.DataFrame({"customer_id": np.concatenate(customers),
                        "date": START + np.concatenate(days).astype("timedelta64[D]")})  # fmt: skip
    log.to_parquet(os.path.join(folder, "log.parquet"))
    dates = START + (7 * np.arange(periods)).astype("timedelta64[D]")
    if case == "common":
        table = pd.DataFrame({"date": dates, "promo": promo[0]})
    else:
        table = pd.DataFrame({"customer_id": np.repeat(np.arange(n), periods),
                              "date": np.tile(dates, n), "promo": promo.reshape(-1)})  # fmt: skip
    table.to_parquet(os.path.join(folder, "table.parquet"))


def worker(folder: str) -> dict:
    import pandas as pd
    from _common import current_rss_bytes, memory_fields, peak_rss_bytes

    import clvmodels

    after_import = current_rss_bytes()
    log = pd.read_parquet(os.path.join(folder, "log.parquet"))
    table = pd.read_parquet(os.path.join(folder, "table.parquet"))
    after_input = current_rss_bytes()
    end = str(START + np.timedelta64(7 * WEEKS - 1, "D"))
    start = time.perf_counter()
    history = clvmodels.covariate_history(log, table, calibration_end=end, time_unit="W",
                                          duplicates="keep")  # fmt: skip
    built = time.perf_counter() - start
    model = clvmodels.ParetoNBD(purchase_covariates=["promo"], dropout_covariates=["promo"])
    model.fit(history)
    seconds = time.perf_counter() - start
    seg = history.segments(["promo"], ["promo"], history.T)
    return {"seconds": seconds, "history_seconds": built, "customers": len(history.frame),
            "pieces": int(seg.customer.size), "transactions": len(log),
            "params": {k: float(v) for k, v in model.params_.items()},
            "std_errors": {k: float(v) for k, v in model.summary()["std_error"].items()},
            **memory_fields(after_import, after_input, peak_rss_bytes())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["common", "per_customer"], action="append")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json")
    args = parser.parse_args()
    packages = ("clvmodels", "numpy", "scipy", "numba", "pandas")
    print(json.dumps(machine_info(packages)))
    results = {}
    for case in args.only or ["common", "per_customer"]:
        with tempfile.TemporaryDirectory() as folder:
            build(case, args.customers, args.seed, folder)
            runs = []
            for _ in range(args.repeats):
                done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                                       folder], capture_output=True, text=True, timeout=1800)  # fmt: skip
                if done.returncode != 0:
                    runs.append({"error": done.stderr.strip().splitlines()[-1]})
                else:
                    runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            good = [r for r in runs if "error" not in r]
            results[case] = {"runs": runs, **(median_stats(good) if good else {})}
            print(json.dumps({case: results[case]}))
    if args.json:
        write_json(args.json, {"machine": machine_info(packages), "results": results})


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2])))
    else:
        main()

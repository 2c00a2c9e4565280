"""Benchmark the Pareto/NBD with a time-varying covariate (issue #16, item 6).

What is measured
----------------
100k customers acquired over the first 26 weeks, observed to the end of week 104, with
one weekly covariate (``promo``), simulated from the model (r = 0.8, alpha = 6,
s = 0.7, beta = 8 per week; purchase coefficient 0.6, dropout coefficient 0.5) by
``clvmodels.simulate.simulate_transactions`` (exact in continuous time) and summarised
in hourly windows. Each run also reports how many standard errors each estimate lies
from the truth (``z_scores``).

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
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, repeated_runs, write_json

TRUTH = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 8.0}
EFFECTS = {"purchase": 0.6, "dropout": 0.5}
TRUTH_ALL = {**TRUTH, **{f"{k}.promo": v for k, v in EFFECTS.items()}}
WEEKS = 104
START = np.datetime64("2020-01-06")
# the end of week 104 (the last day's noon): with hourly windows T ends where the
# simulation does
END = str(START + np.timedelta64(7 * WEEKS - 1, "D")) + " 12:00"


def build(case: str, n: int, seed: int, folder: str) -> None:
    import pandas as pd

    from clvmodels.simulate import simulate_transactions

    rng = np.random.default_rng(seed)
    periods = WEEKS + 1
    dates = START + (7 * np.arange(periods)).astype("timedelta64[D]")
    if case == "common":
        table = pd.DataFrame({"date": dates, "promo": (rng.uniform(size=periods) < 0.3) * 1.0})
    else:
        table = pd.DataFrame({"customer_id": np.repeat(np.arange(n), periods),
                              "date": np.tile(dates, n),
                              "promo": (rng.uniform(size=n * periods) < 0.3) * 1.0})  # fmt: skip
    log = simulate_transactions(
        "pnbd", n, params=TRUTH, start=START, acquisition_end=START + np.timedelta64(26 * 7, "D"),
        observation_end=END, time_unit="W", covariates=table,
        purchase_coefficients={"promo": EFFECTS["purchase"]},
        dropout_coefficients={"promo": EFFECTS["dropout"]}, random_state=seed,
    )  # fmt: skip
    log.to_parquet(os.path.join(folder, "log.parquet"))
    table.to_parquet(os.path.join(folder, "table.parquet"))


def worker(folder: str) -> dict:
    import pandas as pd
    from _common import current_rss_bytes, memory_fields, peak_rss_bytes

    import clvmodels

    after_import = current_rss_bytes()
    log = pd.read_parquet(os.path.join(folder, "log.parquet"))
    table = pd.read_parquet(os.path.join(folder, "table.parquet"))
    after_input = current_rss_bytes()
    start = time.perf_counter()
    history = clvmodels.covariate_history(log, table, calibration_end=END, time_unit="W",
                                          granularity="h")  # fmt: skip
    built = time.perf_counter() - start
    model = clvmodels.ParetoNBD(purchase_covariates=["promo"], dropout_covariates=["promo"])
    model.fit(history)
    seconds = time.perf_counter() - start
    seg = history.segments(["promo"], ["promo"], history.T)
    return {"seconds": seconds, "history_seconds": built, "customers": len(history.frame),
            "pieces": int(seg.customer.size), "transactions": len(log),
            "params": {k: float(v) for k, v in model.params_.items()},
            "z_scores": {k: float((model.params_[k] - v) / model.summary()["std_error"][k])
                         for k, v in TRUTH_ALL.items()},
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
            results[case] = repeated_runs(__file__, [folder], args.repeats)
            print(json.dumps({case: results[case]}))
    if args.json:
        write_json(args.json, {"machine": machine_info(packages), "results": results})


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2])))
    else:
        main()

"""Scoring cost at boundary parameters against interior ones (issue #14, item 4).

A fit that runs to the boundary (customers who never drop out) ends with huge dropout
parameters: BG/NBD and MBG/NBD with a, b of about 1e12 (a / (a + b) fixed), Pareto/NBD
with s, beta of about 1e12 (s / beta fixed). Predictions there used to take the slow
fallbacks of the 2F1 (about 3 s per 1,000 customers for BG/NBD, so 500,000 customers
did not finish in 13 minutes); they now cost about as much as at interior parameters.

What is measured
----------------
For each model and parameter set, on ``--customers`` simulated histories (frequency
Poisson(3), T uniform(1, 60) weeks, recency uniform(0, T); fixed seed), the wall time
of

* ``expected_purchases`` (horizon 39 weeks),
* ``probability_alive`` 39 weeks ahead (BG/NBD and MBG/NBD: a 2F1; Pareto/NBD: closed),
* ``predictive_clv`` over 52 weeks, 10 % a year, with a 90 % interval from 200
  parameter draws on a tenth of the customers (the draws spread the parameters over
  several orders of magnitude at the boundary),

each the median of ``--repeats`` calls in this process, after one warm-up call.

Timings mean something only on a quiet machine: the script reads the 1-minute load
average first and, above ``--max-load`` (default 0.5), waits up to ``--wait-quiet``
seconds for it to drop, then refuses to time (exit 3) unless ``--force``.

How to run
----------
From the repository root::

    python benchmarks/bench_boundary.py --customers 100000 --repeats 3
    python benchmarks/bench_boundary.py --customers 2000 --repeats 1 --force  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

import clvmodels

CASES = {
    "bgnbd interior": ("BGNBD", {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.4}),
    "bgnbd a=b=1e12": ("BGNBD", {"r": 0.5, "alpha": 5.0, "a": 1e12, "b": 1e12}),
    "bgnbd a=1e12,b=3e12": ("BGNBD", {"r": 0.5, "alpha": 5.0, "a": 1e12, "b": 3e12}),
    "bgnbd a=b=1e6": ("BGNBD", {"r": 0.5, "alpha": 5.0, "a": 1e6, "b": 1e6}),
    "mbgnbd interior": ("MBGNBD", {"r": 0.5, "alpha": 5.0, "a": 0.9, "b": 1.6}),
    "mbgnbd a=b=1e12": ("MBGNBD", {"r": 0.5, "alpha": 5.0, "a": 1e12, "b": 1e12}),
    "pnbd interior": ("ParetoNBD", {"r": 0.5, "alpha": 5.0, "s": 0.6, "beta": 11.0}),
    "pnbd s=1e12,beta=1e13": ("ParetoNBD", {"r": 0.5, "alpha": 5.0, "s": 1e12, "beta": 1e13}),
    "pnbd s=1e12,beta=1e24": ("ParetoNBD", {"r": 0.5, "alpha": 5.0, "s": 1e12, "beta": 1e24}),
}


def customers(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(14)
    T = rng.uniform(1, 60, n)
    x = rng.poisson(3, n).astype(float)
    recency = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": recency, "T": T})
    frame.attrs["clvmodels"] = {"time_unit": "W"}
    return frame


def model(class_name: str, params: dict[str, float]):
    """A fitted model at ``params``, its covariance 10 % standard errors on the log scale
    (what a fit at the boundary reports is no better)."""
    fitted = getattr(clvmodels, class_name)()
    names = list(fitted.param_names)
    values = np.array([params[name] for name in names])
    fitted.params_ = pd.Series(values, index=names, name="estimate")
    fitted.covariance_ = pd.DataFrame(np.diag((0.1 * values) ** 2), index=names, columns=names)
    fitted.time_unit_ = "W"
    return fitted


def timed(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wait_quiet(max_load: float, wait: float) -> float:
    waited = 0.0
    while os.getloadavg()[0] > max_load and waited < wait:
        time.sleep(5.0)
        waited += 5.0
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated case names (default all)")
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--wait-quiet", type=float, default=0.0)
    parser.add_argument("--force", action="store_true", help="time even on a busy machine")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    load = wait_quiet(args.max_load, args.wait_quiet)
    if load > args.max_load and not args.force:
        print(f"load average {load:.2f} > {args.max_load}: timing pending (use --force "
              "for a smoke run)", file=sys.stderr)  # fmt: skip
        return 3
    frame = customers(args.customers)
    few = frame.iloc[: max(1, args.customers // 10)]
    chosen = args.only.split(",") if args.only else list(CASES)
    results = {"customers": args.customers, "load_average": load, "cases": {}}
    print(f"{args.customers:,} customers, load average {load:.2f}")
    print(f"{'case':26} {'E[X] (s)':>10} {'P(alive,t) (s)':>15} {'CLV+interval (s)':>17}")
    for name in chosen:
        fitted = model(*CASES[name])
        row = {
            "expected_purchases": timed(lambda m=fitted: m.expected_purchases(frame, 39.0),
                                        args.repeats),
            "probability_alive_ahead": timed(
                lambda m=fitted: m.probability_alive(frame, 39.0), args.repeats),
            "clv_interval_tenth": timed(
                lambda m=fitted: clvmodels.predictive_clv(
                    m, None, few, horizon="52W", discount_rate=0.1, interval=0.9,
                    n_draws=200), args.repeats),
        }  # fmt: skip
        results["cases"][name] = row
        print(f"{name:26} {row['expected_purchases']:10.3f} "
              f"{row['probability_alive_ahead']:15.3f} {row['clv_interval_tenth']:17.3f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

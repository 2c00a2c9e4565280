"""Benchmark Pareto/NBD with static covariates (issue #16, item 6).

What is measured
----------------
``pnbd_static``
    Pareto/NBD with two static covariates on 1M customers simulated with
    ``clvmodels.simulate.simulate_pnbd`` (r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67
    per week): ``female`` (0/1, half the customers) and ``channel`` (three categories,
    uniform; two indicators), with purchase coefficients female 0.3, channel[b] 0.2,
    channel[c] -0.2 and dropout coefficients female -0.3, channel[b] 0.2. T is uniform
    over the whole days 1 .. 365 and recency floored to whole days, both in weeks, as in
    ``bench_models.py``'s ``pnbd`` case: customers share patterns.
``pnbd_continuous``
    The same with ``female`` and a continuous ``age`` (standard normal, coefficient 0.2
    in both processes): every customer is a distinct pattern, the worst case.

The fit timed is ``clvmodels.ParetoNBD(purchase_covariates=..., dropout_covariates=...)
.fit(frame)`` with default settings (covariance included). Each measurement runs in a
fresh subprocess (import, load the ``.npz`` input, time ``fit``, read the peak RSS), and
the case reports medians over ``--repeats`` processes.

The anchor is pymc-marketing's ``ParetoNBDModel`` with the same covariates
(``purchase_covariate_cols`` / ``dropout_covariate_cols``) and ``fit(method="map")``, the
only Python implementation of covariate Pareto/NBD, run in ``--anchor-python`` (a
virtual environment with pymc-marketing) on the first ``--anchor-customers`` customers
(it does not compress patterns; the time of a MAP fit grows with the customers), and
clvmodels again on those same customers.

Run ``python benchmarks/bench_covariates.py [--only CASE] [--repeats 3] [--json F]
[--anchor-python PY]`` on a quiet machine.
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

TRUTH = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
CASES = {
    "pnbd_static": {
        "purchase": {"female": 0.3, "channel_b": 0.2, "channel_c": -0.2},
        "dropout": {"female": -0.3, "channel_b": 0.2},
        "columns": ["female", "channel"],
    },
    "pnbd_continuous": {
        "purchase": {"female": 0.3, "age": 0.2},
        "dropout": {"female": -0.3, "age": 0.2},
        "columns": ["female", "age"],
    },
}


def build(case: str, n: int, seed: int, path: str) -> None:
    from clvmodels.simulate import simulate_pnbd

    rng = np.random.default_rng(seed)
    female = rng.integers(0, 2, n).astype(float)
    channel = rng.integers(0, 3, n)
    z = {"female": female, "channel_b": (channel == 1) * 1.0, "channel_c": (channel == 2) * 1.0,
         "age": rng.normal(0.0, 1.0, n)}  # fmt: skip
    spec = CASES[case]
    days = rng.integers(1, 366, n)
    frame = simulate_pnbd(
        n, **TRUTH, T=days / 7.0, random_state=rng, covariates={k: z[k] for k in z},
        purchase_coefficients=spec["purchase"], dropout_coefficients=spec["dropout"],
    )  # fmt: skip
    recency = np.floor(frame["recency"].to_numpy() * 7.0) / 7.0
    np.savez(path, frequency=frame["frequency"].to_numpy(), recency=recency,
             T=frame["T"].to_numpy(), female=female, channel=channel, age=z["age"])  # fmt: skip


def worker(tool: str, case: str, path: str, customers: int) -> dict:
    import pandas as pd
    from _common import current_rss_bytes, memory_fields, peak_rss_bytes

    after_import = current_rss_bytes()
    data = np.load(path)
    frame = pd.DataFrame({k: data[k][:customers] for k in data.files})
    frame["channel"] = np.array(["a", "b", "c"])[frame["channel"].to_numpy()]
    columns = CASES[case]["columns"]
    if tool == "clvmodels":
        import clvmodels

        model = clvmodels.ParetoNBD(purchase_covariates=columns, dropout_covariates=columns)
        after_input = current_rss_bytes()
        start = time.perf_counter()
        model.fit(frame)
        seconds = time.perf_counter() - start
        params = {k: float(v) for k, v in model.params_.items()}
        extra = {"patterns": int(model.n_patterns_), "log_likelihood": model.log_likelihood_}
    else:
        from pymc_marketing.clv import ParetoNBDModel

        design = pd.get_dummies(frame[columns], drop_first=True, dtype=float)
        names = list(design.columns)
        data_frame = pd.concat([
            pd.DataFrame({"customer_id": np.arange(len(frame)), "frequency": frame["frequency"],
                          "recency": frame["recency"], "T": frame["T"]}),
            design], axis=1)  # fmt: skip
        model = ParetoNBDModel(data=data_frame, model_config={
            "purchase_covariate_cols": names, "dropout_covariate_cols": names})  # fmt: skip
        after_input = current_rss_bytes()
        start = time.perf_counter()
        model.fit(method="map", progressbar=False)
        seconds = time.perf_counter() - start
        summary = model.fit_summary()
        params = {str(k): float(v) for k, v in summary.items() if "[" not in str(k)
                  or "coef" in str(k)}  # the population's, not each customer's
        extra = {"customers": len(frame)}
    memory = memory_fields(after_import, after_input, peak_rss_bytes())
    return {"tool": tool, "case": case, "seconds": seconds, "params": params, **extra, **memory}


def run_worker(python: str, tool: str, case: str, path: str, customers: int,
               timeout: float) -> dict:  # fmt: skip
    command = [python, os.path.abspath(__file__), "--worker", tool, case, path, str(customers)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "case": case, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"tool": tool, "case": case, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--anchor-python", help="interpreter with pymc-marketing")
    parser.add_argument("--anchor-customers", type=int, default=100_000)
    parser.add_argument("--anchor-timeout", type=float, default=1800.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    packages = ("clvmodels", "numpy", "scipy", "numba")
    print(json.dumps(machine_info(packages)))
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for case in args.only or sorted(CASES):
            path = os.path.join(folder, f"{case}.npz")
            build(case, args.customers, args.seed, path)
            runs = [run_worker(sys.executable, "clvmodels", case, path, args.customers, 600)
                    for _ in range(args.repeats)]  # fmt: skip
            good = [r for r in runs if "error" not in r]
            entry = {"clvmodels": {"runs": runs, **(median_stats(good) if good else {})}}
            if args.anchor_python:
                anchor = run_worker(args.anchor_python, "pymc-marketing", case, path,
                                    args.anchor_customers, args.anchor_timeout)  # fmt: skip
                entry["pymc-marketing"] = anchor
                # clvmodels on the anchor's customers: the same data, the same run
                same = [run_worker(sys.executable, "clvmodels", case, path,
                                   args.anchor_customers, 600) for _ in range(args.repeats)]
                good = [r for r in same if "error" not in r]
                entry["clvmodels_on_anchor_data"] = {"runs": same,
                                                     **(median_stats(good) if good else {})}
            results[case] = entry
            print(json.dumps({case: entry}, default=float))
    if args.json:
        write_json(args.json, {"machine": machine_info(packages), "results": results})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        tool, case, path, customers = sys.argv[2:6]
        print(json.dumps(worker(tool, case, path, int(customers)), default=float))
    else:
        main()

"""Benchmark segment_value on a million customers (issue #17, item 6).

What is measured
----------------
1M customers of BG/NBD with Gamma-Gamma spend (CDNOW's published parameters, weeks),
acquired over 12 weeks and observed for a year, drawn by
``clvmodels.simulate.simulate_transactions``; each customer gets one of four channels
at random and the channels a total acquisition cost. The models are fitted once; each
run, in a fresh process, times ``clvmodels.segment_value(bgnbd, spend, frame,
transactions=log, segments="channel", acquisition_costs=..., interval=0.9,
n_draws=500)``: historical value from the log, predicted value, CLV / CAC, payback
and share alive, with intervals from 500 joint draws summed per segment.

With ``--reference`` the same process also times what the per-customer route costs:
``predictive_clv(..., interval=0.9, n_draws=500)`` on the same customers (the
customers' own bounds, which do not add up to a segment's; minutes at 1M). No peer
library computes segment economics.

Run ``python benchmarks/bench_segments.py [--customers 1000000] [--repeats 3]
[--reference] [--json F]`` on a quiet machine.
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

PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
END = "2021-12-31"
CHANNELS = ("search", "social", "email", "affiliate")
# cost per acquired customer: a cheap channel paid back by first purchases, others later
COST_PER_CUSTOMER = {"search": 60.0, "social": 90.0, "email": 30.0, "affiliate": 120.0}


def build(n: int, seed: int, folder: str) -> None:
    import clvmodels
    from clvmodels.simulate import simulate_transactions

    log = simulate_transactions("bgnbd", n, params=PARAMS, start="2021-01-01",
                                acquisition_end="2021-03-26", observation_end=END,
                                time_unit="W", spend=SPEND, random_state=seed)  # fmt: skip
    log.to_parquet(os.path.join(folder, "log.parquet"))
    frame = clvmodels.summarize(log, observation_end=END, time_unit="W", amount="amount")
    rng = np.random.default_rng(seed)
    frame["channel"] = np.asarray(CHANNELS)[rng.integers(0, len(CHANNELS), len(frame))]
    frame.to_parquet(os.path.join(folder, "frame.parquet"))
    clvmodels.BGNBD().fit(frame).save(os.path.join(folder, "bgnbd.json"))
    clvmodels.GammaGamma().fit(frame).save(os.path.join(folder, "spend.json"))


def worker(folder: str, reference: bool = False) -> dict:
    import pandas as pd
    from _common import current_rss_bytes, memory_fields, peak_rss_bytes

    import clvmodels

    after_import = current_rss_bytes()
    log = pd.read_parquet(os.path.join(folder, "log.parquet"))
    frame = pd.read_parquet(os.path.join(folder, "frame.parquet"))
    frame.attrs["clvmodels"] = {"time_unit": "W", "granularity": "D", "observation_end": END}
    bgnbd = clvmodels.load(os.path.join(folder, "bgnbd.json"))
    spend = clvmodels.load(os.path.join(folder, "spend.json"))
    after_input = current_rss_bytes()
    costs = {c: COST_PER_CUSTOMER[c] * (frame["channel"] == c).sum() for c in CHANNELS}
    start = time.perf_counter()
    table = clvmodels.segment_value(bgnbd, spend, frame, transactions=log, segments="channel",
                                    acquisition_costs=costs, interval=0.9, n_draws=500)  # fmt: skip
    seconds = time.perf_counter() - start
    per_customer = None
    if reference:
        start = time.perf_counter()
        clvmodels.predictive_clv(bgnbd, spend, frame, horizon="12M", discount_rate=0.1,
                                 interval=0.9, n_draws=500)  # fmt: skip
        per_customer = time.perf_counter() - start
    return {"seconds": seconds, "per_customer_clv_seconds": per_customer,
            "customers": len(frame), "transactions": len(log),
            "histories": int(frame.groupby(["frequency", "recency", "T"]).ngroups),
            "clv_to_cac": table["clv_to_cac"].round(4).tolist(),
            "payback": table["payback_period"].round(2).tolist(),
            "payback_from": table["payback_from"].tolist(),
            **memory_fields(after_import, after_input, peak_rss_bytes())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json")
    parser.add_argument("--reference", action="store_true",
                        help="also time per-customer predictive_clv bounds (slow at 1M)")
    args = parser.parse_args()
    packages = ("clvmodels", "numpy", "scipy", "pandas")
    print(json.dumps(machine_info(packages)))
    with tempfile.TemporaryDirectory() as folder:
        build(args.customers, args.seed, folder)
        extra = ["reference"] if args.reference else []
        result = repeated_runs(__file__, [folder, *extra], args.repeats)
        print(json.dumps(result))
    if args.json:
        write_json(args.json, {"machine": machine_info(packages), "result": result})


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], reference="reference" in sys.argv[3:])))
    else:
        main()

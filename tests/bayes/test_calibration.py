"""Calibration of the posterior by simulation: data simulated from known BG/NBD
parameters, fitted by NUTS many times; the 90 % credible intervals must contain the
true parameters about 90 % of the time.

The truth is fixed (near the CDNOW estimates) rather than drawn from the prior, so this
checks the frequentist coverage of the credible intervals, which the weakly informative
default priors should leave close to nominal with 300 customers. 50 replications of
2 chains x (300 tune + 300 draws), run in two worker processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

TRUE = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
REPLICATIONS = 50
CUSTOMERS = 300
LEVEL = 0.9

# One worker: fits the replications whose seeds it is given, prints one JSON line each
# (the central and highest-density 90 % intervals of every parameter).
WORKER = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    warnings.filterwarnings("error", category=RuntimeWarning, module="clvmodels.*")
    from clvmodels import bayes
    from clvmodels.bayes._base import hdi_bounds
    from clvmodels.exceptions import SamplingWarning
    from clvmodels.simulate import simulate_bgnbd

    true, customers, level = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    for seed in map(int, sys.argv[4:]):
        data = simulate_bgnbd(customers, T=39.0, random_state=seed, **true)
        with warnings.catch_warnings():
            # 600 draws: the ESS check (400) may fire; r_hat is recorded below
            warnings.simplefilter("ignore", SamplingWarning)
            model = bayes.BGNBD().fit(
                data, chains=2, tune=300, draws=300, cores=1, random_seed=seed
            )
        samples = model.posterior_samples()
        central = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
        hdi = hdi_bounds(samples, level)
        print(json.dumps({
            "seed": seed,
            "central": central.tolist(),
            "hdi": [hdi[0].tolist(), hdi[1].tolist()],
            "r_hat": model.diagnostics()["r_hat"].tolist(),
            "divergences": model.divergences(),
        }), flush=True)
    """
)


def _run_replications(seeds: list[int], workers: int = 2) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    args = [json.dumps(TRUE), str(CUSTOMERS), str(LEVEL)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args, *map(str, seeds[i::workers])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for i in range(workers)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
        results += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sorted(r["seed"] for r in results) == sorted(seeds)
    return results


@pytest.mark.slow
def test_credible_intervals_cover_the_truth_about_90_percent_of_the_time():
    results = _run_replications(list(range(1000, 1000 + REPLICATIONS)))
    truth = np.array(list(TRUE.values()))
    coverage = {}
    for kind in ("central", "hdi"):
        lower = np.array([r[kind][0] for r in results])
        upper = np.array([r[kind][1] for r in results])
        coverage[kind] = ((lower <= truth) & (truth <= upper)).mean(axis=0)
    report = {k: dict(zip(TRUE, np.round(v, 2).tolist(), strict=True)) for k, v in coverage.items()}
    r_hat = np.array([r["r_hat"] for r in results]).max(axis=1)
    # The short chains still mix. Two chains of 300 draws put r_hat above 1.05 now and
    # then by chance, and which seed does so depends on the CPU's floating-point path
    # (seed 1041 gives 1.18 on some machines), so a few such fits are allowed; a stuck
    # chain would give far more, and far larger values.
    assert np.sum(r_hat >= 1.05) <= 2 and r_hat.max() < 1.5, (np.sort(r_hat)[-3:], report)
    assert sum(r["divergences"] for r in results) <= 2, report
    for kind, per_parameter in coverage.items():
        # pooled over the four parameters: 200 intervals, nominal 90 %
        assert 0.80 <= per_parameter.mean() <= 0.97, (kind, report)
        # and no parameter far off on its own (binomial sd of one is 4 points)
        assert np.all(per_parameter >= 0.70), (kind, report)
    print("coverage of the 90 % intervals:", report)

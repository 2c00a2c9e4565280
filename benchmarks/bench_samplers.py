"""Samplers: clvmodels' own NUTS against nutpie on a compiled likelihood (issue #15, item 4).

The question
------------
``clvmodels.bayes`` samples by default with its own NUTS (``sampler="clvmodels"``:
numpy, chains in forked processes, on PyMC's log density whose likelihood is the numpy
function of the maximum-likelihood model, called through a PyTensor Op). Its
``sampler="nutpie"`` calls the same Python likelihood from nutpie's threads, which then
wait on the GIL. Would nutpie win if the likelihood were *compiled*, so that no gradient
calls back into Python? This script answers by measurement.

The compiled models
-------------------
For each case it builds a PyMC model whose likelihood is a pure PyTensor expression of
the weighted pattern log-likelihood, ``pm.Potential(sum_k w_k log L(pattern_k))``, on
the patterns of ``clvmodels.compress`` and with the priors of ``clvmodels.bayes``
(``prior_specs()``: LogNormal(0, 2) on shapes, LogNormal(0, 3) on scales), so that its
posterior is clvmodels'. The likelihoods, written here from the papers:

* BG/NBD (Fader, Hardie & Lee 2005, eq. 6), for whole-number frequencies x:
  ln L = [lnG(r+x) - lnG(r)] + r ln(alpha) + [ln B(a, b+x) - ln B(a, b)]
  - (r+x) ln(alpha+T) + [x > 0] softplus(ln a - ln(b+x-1) + (r+x) ln((alpha+T)/(alpha+t_x))).
  The two bracketed differences are written as prefix sums over j < x,
  sum ln(r+j) and -sum log1p(a / (b+j)), evaluated once per distinct x and gathered:
  as differences of ``gammaln`` they cancel catastrophically where b is large (about
  0.26 nats wrong at b = 5e12), and a chain that wandered there stuck.
* Pareto/NBD (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model and
  related expressions", section 3), rearranged into two positive terms:
  L = G(r+x) alpha^r beta^s / G(r) [s J(r+x, s+1; t_x) + (r+x) J(r+x+1, s; T)] with
  J(p, q; t) = int_t^inf (alpha+tau)^-p (beta+tau)^-q dtau (integration by parts turns
  FH's ``(alpha+T)^-(r+x) (beta+T)^-s + s int_{t_x}^T ...`` into this sum). With (A, a')
  the larger of (alpha, beta) and its exponent, (B, b') the other, m = p + q - 1 and
  z = (A - B) / (A + t) in [0, 1), Euler's integral and transformation give
  J = (A+t)^-a' (B+t)^(1-b') / m * 2F1(a', 1; m+1; z), evaluated with ``pt.hyp2f1``
  (scipy's compiled ``hyp2f1`` under numba; PyTensor's series loop for the gradient in
  a' and m). The sum of the two logs is a ``logaddexp``.

Before any timing, ``check`` compares these graphs with clvmodels' own weighted
log-likelihood (``BaseModel._weighted_loglik`` on the same patterns) at the
maximum-likelihood estimate and at 20 points around it, under PyTensor's C and numba
backends, and the whole log posterior (priors and log-Jacobian included) with that of
clvmodels' own PyMC model.

Samplers, each 4 chains x (1000 tune + 1000 draws), ``cores=2``, same seeds
-----------------------------------------------------------------------------
``clvmodels``
    ``clvmodels.bayes.<Model>().fit(patterns, method="mcmc", sampler="clvmodels")``.
``nutpie-numba``
    ``nutpie.compile_pymc_model(model, backend="numba", initial_points=MLE)`` then
    ``nutpie.sample(..., cores=2)`` (its default diagonal mass-matrix adaptation).
``nutpie-numba-lowrank``
    the same with ``low_rank_modified_mass_matrix=True`` (what clvmodels' own nutpie
    path passes: it learns the posterior correlations).
``pymc``
    ``pm.sample(..., initvals=MLE, cores=2)`` on the same compiled-graph model (PyMC's
    defaults otherwise: jitter+adapt_diag, PyTensor's C backend).
``clvmodels-nutpie-op``
    reference: ``fit(..., sampler="nutpie")``, nutpie calling the Python likelihood Op.

Every sampler starts from the maximum-likelihood estimate (clvmodels: draws around it
with its covariance as the first metric; the others: PyMC's +-1 jitter around it on the
log scale), as a fit inside clvmodels would. For the compiled samplers that estimate is
computed first and timed apart (``mle_s``); clvmodels' ``fit`` computes it inside.

What is timed
-------------
Each run is a fresh process. ``sampler_s`` is the sampler from a built model to the
InferenceData: clvmodels: ``BayesianModel._sample`` (compiling the PyMC density with
PyTensor's C backend, forking, NUTS); compiled samplers: building the graph model,
compiling it and sampling. ``end_to_end_s`` adds the rest a user waits for: clvmodels'
whole ``fit`` (its maximum-likelihood start, pointwise log-likelihood for LOO, checks);
for the compiled samplers the maximum-likelihood estimate plus ``sampler_s``. Per case
and sampler the first run has empty caches (``PYTENSOR_FLAGS=base_compiledir=<new
dir>``, which holds PyTensor's C modules and its numba cache, and ``NUMBA_CACHE_DIR=<new
dir>``); the repeats reuse those caches (warm). ESS is the minimum bulk ESS over the four
parameters (ArviZ); ESS/s divides it by the warm ``sampler_s``. Memory: peak RSS of the
worker (nutpie's threads run in it) and of its largest child process (clvmodels' and
PyMC's chains run in forked children).

Quiet machine: before each case the parent waits (30 s steps, at most ``--max-wait``
seconds over the whole run) until the 1-minute load average is below ``--max-load``,
and before each run (at most ``--run-wait`` seconds) until other processes use less
than a quarter of a CPU over 5 s (the load average still counts the previous run's own
work); every run records the load average at its start and end and the CPU seconds
other processes used meanwhile. A sampler whose run took more than ``SLOW_S`` gets
one warm run only.

How to run
----------
::

    pip install -e ".[test,nutpie]"
    python benchmarks/bench_samplers.py --repeats 3 --profile \\
        --json /tmp/bench_samplers.json --markdown

``--only`` picks cases (``cdnow_bgnbd,cdnow_pnbd,sim_bgnbd_1m``), ``--samplers`` picks
samplers, ``--large-repeats`` sets the warm repeats of the 1M case. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import bench_bayes  # its CPU meter and code fingerprint (standard library only at import)

PACKAGES = ("numpy", "scipy", "pytensor", "pymc", "numba", "nutpie", "arviz", "clvmodels")
SEED = 20240601
CORES = 2
TIMEOUT_S = 2 * 3600
SLOW_S = 300.0  # a sampler whose run took longer than this gets one warm run only
SETTINGS = {"chains": 4, "tune": 1000, "draws": 1000}
SAMPLERS = ("clvmodels", "nutpie-numba", "nutpie-numba-lowrank", "pymc", "clvmodels-nutpie-op")
# opt-in (--samplers): the data frozen into the compiled code as constants
EXTRA_SAMPLERS = ("nutpie-numba-lowrank-frozen",)
PARAMS = {"bgnbd": ("r", "alpha", "a", "b"), "pnbd": ("r", "alpha", "s", "beta")}
SIM = {"customers": 1_000_000, "r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43,
       "min_days": 140, "max_days": 364, "random_state": 1}  # fmt: skip

CASES: dict[str, dict[str, str]] = {
    "cdnow_bgnbd": {"model": "bgnbd", "data": "cdnow", "title": "CDNOW BG/NBD"},
    "cdnow_pnbd": {"model": "pnbd", "data": "cdnow", "title": "CDNOW Pareto/NBD"},
    "sim_bgnbd_1m": {"model": "bgnbd", "data": "sim", "title": "1M simulated BG/NBD"},
}
LABELS = {
    "clvmodels": "clvmodels own NUTS",
    "nutpie-numba": "nutpie, compiled graph (numba)",
    "nutpie-numba-lowrank": "nutpie, compiled graph (numba), low-rank mass matrix",
    "nutpie-numba-lowrank-frozen": "nutpie, compiled graph (numba), low-rank, data frozen",
    "pymc": "PyMC NUTS, compiled graph (C)",
    "clvmodels-nutpie-op": 'clvmodels sampler="nutpie" (Python Op)',
}


# ----------------------------------------------------------------- the likelihoods


def _log_rising(u: Any, count: Any, term: Any) -> Any:
    """[sum_{j<k} term(u + j) for k = 0 .. count] as a PyTensor vector."""
    import pytensor.tensor as pt

    return pt.concatenate([pt.zeros(1), pt.cumsum(term(u + pt.arange(count, dtype="float64")))])


def _distinct(values: Any) -> tuple[Any, Any]:
    import numpy as np

    unique, row = np.unique(values, axis=0, return_inverse=True)
    return unique, row.reshape(-1).astype(np.int64)


def layout(model: str, patterns: dict[str, Any]) -> dict[str, Any]:
    """The patterns arranged for the likelihood graphs (numpy, once per data set): each
    special function is evaluated at the distinct values it depends on and gathered.

    Both: distinct frequencies ``x_values`` (whole numbers) with their weights
    ``x_weight``, the total weight. BG/NBD: distinct T with the sums of w and w x over
    them (the alive term of every row), and for rows with x > 0 (the only ones where
    dropping out before T is possible) their indices into the distinct x, T and t_x.
    Pareto/NBD: distinct (x, t_x) and (x, T) pairs, and each row's indices into them.
    """
    import numpy as np

    x, t_x, T, w = (np.asarray(patterns[k], dtype=np.float64)
                    for k in ("frequency", "recency", "T", "weight"))  # fmt: skip
    if np.any(x != np.round(x)) or np.any(x < 0):
        raise ValueError("the graphs need whole-number frequencies")
    x_values, x_row = _distinct(x)
    out = {"x_values": x_values, "x_weight": np.bincount(x_row, w, x_values.size),
           "total_weight": np.array(w.sum())}  # fmt: skip
    if model == "bgnbd":
        T_values, T_row = _distinct(T)
        repeat = x > 0
        t_values, t_row = _distinct(t_x[repeat])
        out.update({
            "T_values": T_values, "T_weight": np.bincount(T_row, w, T_values.size),
            "T_weight_x": np.bincount(T_row, w * x, T_values.size), "t_values": t_values,
            "row_x": x[repeat], "row_w": w[repeat], "row_x_index": x_row[repeat],
            "row_T_index": T_row[repeat], "row_t_index": t_row,
        })  # fmt: skip
    else:
        early, early_row = _distinct(np.column_stack([x, t_x]))
        late, late_row = _distinct(np.column_stack([x, T]))
        out.update({"early_x": early[:, 0], "early_t": early[:, 1], "late_x": late[:, 0],
                    "late_T": late[:, 1], "row_w": w, "row_early": early_row,
                    "row_late": late_row})  # fmt: skip
    return out


def bgnbd_weighted_loglik(r: Any, alpha: Any, a: Any, b: Any, d: dict[str, Any]) -> Any:
    """sum_k w_k ln L(x_k, t_x,k, T_k) of BG/NBD (FHL 2005, eq. 6) as a PyTensor scalar.

    ln L = [lnG(r+x) - lnG(r)] + r ln(alpha) + [ln B(a, b+x) - ln B(a, b)]
    - (r+x) ln(alpha+T) + [x > 0] softplus(ln a - ln(b+x-1) + (r+x) ln((alpha+T)/(alpha+t_x))).

    The bracketed differences are prefix sums over j < x, sum ln(r+j) and
    -sum log1p(a / (b+j)): as differences of ``gammaln`` they cancel where b is large
    (0.26 nats wrong at b = 5e12, where a chain wandered and stuck). ``d`` is
    :func:`layout` (numpy arrays or PyMC data).
    """
    import pytensor.tensor as pt

    k = pt.cast(pt.round(d["x_values"]), "int64")
    count = pt.max(k)
    rate = _log_rising(r, count, pt.log)[k]  # lnG(r+x) - lnG(r)
    ratio = -_log_rising(b, count, lambda v: pt.log1p(a / v))[k]  # ln B(a, b+x) - ln B(a, b)
    log_T = pt.log(alpha + d["T_values"])
    alive = (pt.sum(d["x_weight"] * (rate + ratio)) + r * pt.log(alpha) * d["total_weight"]
             - pt.sum((r * d["T_weight"] + d["T_weight_x"]) * log_T))  # fmt: skip
    # dead relative to alive, rows with x > 0: a / (b+x-1) ((alpha+T) / (alpha+t_x))^(r+x)
    log_b = pt.log(b + pt.maximum(d["x_values"], 1.0) - 1.0)
    log_t = pt.log(alpha + d["t_values"])
    shift = (pt.log(a) - log_b[d["row_x_index"]]
             + (r + d["row_x"]) * (log_T[d["row_T_index"]] - log_t[d["row_t_index"]]))  # fmt: skip
    return alive + pt.sum(d["row_w"] * pt.softplus(shift))


def pnbd_weighted_loglik(r: Any, alpha: Any, s: Any, beta: Any, d: dict[str, Any]) -> Any:
    """sum_k w_k ln L_k of Pareto/NBD as a PyTensor scalar (FH 2005 note, section 3).

    L = G(r+x) alpha^r beta^s / G(r) [s J(r+x, s+1; t_x) + (r+x) J(r+x+1, s; T)] with
    J(p, q; t) = int_t^inf (alpha+tau)^-p (beta+tau)^-q dtau: integrating by parts turns
    FH's (alpha+T)^-(r+x) (beta+T)^-s + s int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1)
    dtau into this sum of two positive terms. With (A, p') the larger of (alpha, beta)
    and its exponent, (B, q') the other, m = p + q - 1 and z = (A - B) / (A + t) in
    [0, 1), Euler's integral (A&S 15.3.1) and transformation (15.3.3) give
    J = (A+t)^-p' (B+t)^(1-q') / m 2F1(p', 1; m+1; z) (``pt.hyp2f1``).
    """
    import pytensor.tensor as pt

    alpha_larger = alpha >= beta
    big = pt.switch(alpha_larger, alpha, beta)
    small = pt.switch(alpha_larger, beta, alpha)

    def log_j(p: Any, q: Any, t: Any) -> Any:
        p_big = pt.switch(alpha_larger, p, q)  # the exponent of the larger scale
        q_small = pt.switch(alpha_larger, q, p)
        m = p + q - 1.0
        z = (big - small) / (big + t)
        return (-p_big * pt.log(big + t) + (1.0 - q_small) * pt.log(small + t) - pt.log(m)
                + pt.log(pt.hyp2f1(p_big, 1.0, m + 1.0, z)))  # fmt: skip

    k = pt.cast(pt.round(d["x_values"]), "int64")
    common = (pt.sum(d["x_weight"] * _log_rising(r, pt.max(k), pt.log)[k])
              + (r * pt.log(alpha) + s * pt.log(beta)) * d["total_weight"])  # fmt: skip
    early = pt.log(s) + log_j(r + d["early_x"], s + 1.0, d["early_t"])  # alive until t_x
    late = pt.log(r + d["late_x"]) + log_j(r + d["late_x"] + 1.0, s, d["late_T"])
    return common + pt.sum(d["row_w"] * pt.logaddexp(early[d["row_early"]], late[d["row_late"]]))


LOGLIK = {"bgnbd": bgnbd_weighted_loglik, "pnbd": pnbd_weighted_loglik}


def bayes_class(model: str) -> Any:
    from clvmodels import bayes

    return bayes.BGNBD if model == "bgnbd" else bayes.ParetoNBD


def twin_class(model: str) -> Any:
    from clvmodels.models import bgnbd, pnbd

    return bgnbd.BGNBD if model == "bgnbd" else pnbd.ParetoNBD


def build_model(model: str, patterns: dict[str, Any]) -> Any:
    """The PyMC model: clvmodels' priors and the compiled-graph weighted likelihood."""
    import pymc as pm

    specs = bayes_class(model)().prior_specs()
    with pm.Model() as pymc_model:
        # the data as pm.Data (shared variables): the compiled code, and so the
        # compilation cache, is the same for any data
        data = {k: pm.Data(k, v) for k, v in layout(model, patterns).items()}
        params = [getattr(pm, specs[n][0])(n, **specs[n][1]) for n in PARAMS[model]]
        pm.Potential("log_likelihood", LOGLIK[model](*params, data))
    return pymc_model



# ----------------------------------------------------------------- worker side


def write_data(kind: str, path: str) -> dict[str, Any]:
    """Compressed patterns (frequency, recency, T, weight) of a data set, as .npz."""
    import numpy as np
    import pandas as pd

    import clvmodels

    start = time.perf_counter()
    if kind == "cdnow":
        frame = clvmodels.calibration_holdout(
            clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
            holdout_end="1998-06-30", time_unit="W", duplicates="keep",
        )  # fmt: skip
        frame = frame[["frequency_cal", "recency_cal", "T_cal"]].set_axis(
            ["frequency", "recency", "T"], axis=1)  # fmt: skip
    else:
        from clvmodels.simulate import simulate_bgnbd

        rng = np.random.default_rng(SIM["random_state"])
        t_days = rng.integers(SIM["min_days"], SIM["max_days"] + 1, size=SIM["customers"])
        t_days = t_days.astype(np.float64)
        sim = simulate_bgnbd(SIM["customers"], r=SIM["r"], alpha=SIM["alpha"], a=SIM["a"],
                             b=SIM["b"], T=t_days / 7, random_state=SIM["random_state"])  # fmt: skip
        # whole days, in weeks (what summarize of daily data gives); recency <= T
        recency_days = np.minimum(np.floor(sim["recency"].to_numpy() * 7), t_days)
        frame = pd.DataFrame({"frequency": sim["frequency"].to_numpy(),
                              "recency": recency_days / 7, "T": t_days / 7})  # fmt: skip
    compressed = clvmodels.compress(frame)
    arrays = {k: compressed[k].to_numpy(dtype=np.float64)
              for k in ("frequency", "recency", "T", "weight")}  # fmt: skip
    np.savez(path, **arrays)
    return {"customers": int(arrays["weight"].sum()), "patterns": len(arrays["weight"]),
            "max_frequency": int(arrays["frequency"].max()),
            "share_zero_frequency": float(arrays["weight"][arrays["frequency"] == 0].sum()
                                          / arrays["weight"].sum()),
            "seconds": time.perf_counter() - start}  # fmt: skip


def load_patterns(path: str) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as saved:
        return {k: saved[k] for k in saved.files}


def as_frame(patterns: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.DataFrame(patterns)


def _clvmodels_patterns(model: str, frame: Any) -> tuple[Any, Any, Any]:
    """clvmodels' own prepared patterns of ``frame`` and its weighted log-likelihood."""
    from clvmodels.models._base import _patterns

    twin = twin_class(model)()
    arrays, _ = twin._read(twin._frame(frame, "data", None))
    arrays, weights = _patterns(arrays, twin._weights(frame, None))
    arrays = twin._prepare(arrays)
    return twin, twin._weighted_patterns(arrays, weights), (arrays, weights)


def worker_check(case: str, path: str, points: int) -> dict[str, Any]:
    """The graph's weighted log-likelihood and gradient against clvmodels' own, and the
    whole log posterior against clvmodels' PyMC model, at the estimate and around it."""
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    model = CASES[case]["model"]
    patterns = load_patterns(path)
    frame = as_frame(patterns)
    twin, weighted, _ = _clvmodels_patterns(model, frame)
    fitted = twin_class(model)().fit(frame)
    mle = fitted.params_.to_numpy()
    vector = pt.dvector("params")
    total = LOGLIK[model](*[vector[k] for k in range(4)], layout(model, patterns))
    functions = {backend: pytensor.function([vector], [total, pt.grad(total, vector)], mode=mode)
                 for backend, mode in (("c", "FAST_RUN"), ("numba", "NUMBA"))}  # fmt: skip
    rng = np.random.default_rng(0)
    grid = [mle] + [mle * np.exp(rng.normal(0.0, 0.5, size=4)) for _ in range(points)]
    out: dict[str, Any] = {"case": case, "mle": dict(zip(PARAMS[model], mle.tolist(), strict=True)),
                           "mle_log_likelihood": float(fitted.log_likelihood_), "points": len(grid)}  # fmt: skip
    for backend, function in functions.items():
        value_err = gradient_err = 0.0
        for params in grid:
            mine, mine_grad = function(params)
            ref, ref_grad = twin._weighted_loglik(params, weighted)
            value_err = max(value_err, abs(float(mine) - ref) / abs(ref))
            scale = max(float(np.max(np.abs(ref_grad))), 1.0)
            gradient_err = max(gradient_err, float(np.max(np.abs(mine_grad - ref_grad))) / scale)
        out[f"{backend}_max_rel_loglik_error"] = value_err
        out[f"{backend}_max_rel_gradient_error"] = gradient_err
        if backend == "c":
            out["graph_loglik_at_mle"] = float(function(mle)[0])
    # the whole log posterior (priors, log-Jacobian) against clvmodels' own PyMC model
    own = bayes_class(model)()
    fitting = own._fitting_twin()
    fitting.fit(frame)  # keeps the patterns in fitting._patterns
    theirs = own._build(*fitting._patterns).compile_logp()
    mine_model = build_model(model, patterns)
    mine = mine_model.compile_logp()
    names = [v.name for v in mine_model.value_vars]  # r_log__, ... in parameter order
    posterior_err = 0.0
    for params in grid:
        point = dict(zip(names, np.log(params), strict=True))
        a, b = float(mine(point)), float(theirs(point))
        posterior_err = max(posterior_err, abs(a - b) / abs(b))
    out["max_rel_logposterior_error"] = posterior_err
    return out


def _report(model: str, idata: Any) -> dict[str, Any]:
    """Posterior means, sds, MCSE of the means, bulk ESS, r_hat; sampler statistics."""
    import arviz as az
    import numpy as np

    out: dict[str, Any] = {k: {} for k in ("means", "sds", "mcse_mean", "ess_bulk", "r_hat")}
    for name in PARAMS[model]:
        values = np.asarray(idata.posterior[name].values, dtype=np.float64)
        out["means"][name] = float(values.mean())
        out["sds"][name] = float(values.std(ddof=1))
        out["mcse_mean"][name] = float(np.ravel(az.mcse(values, method="mean"))[0])
        out["ess_bulk"][name] = float(az.ess(values, method="bulk"))
        out["r_hat"][name] = float(az.rhat(values))
    stats = idata.sample_stats
    steps = np.asarray(stats["n_steps"].values)
    out.update({
        "draws_shape": list(np.asarray(idata.posterior[PARAMS[model][0]].values).shape),
        "min_ess_bulk": min(out["ess_bulk"].values()), "max_r_hat": max(out["r_hat"].values()),
        "divergences": int(np.asarray(stats["diverging"].values).sum()),
        "mean_n_steps": float(steps.mean()), "total_n_steps": int(steps.sum()),
    })  # fmt: skip
    return out


class _Phases:
    """Wall time of wrapped functions, summed per label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - begin

        setattr(owner, name, timed)


def _quiet_logs() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    for name in ("pymc", "pytensor", "numba"):
        logging.getLogger(name).setLevel(logging.ERROR)


def worker_fit(sampler: str, case: str, path: str, seed: int, settings: dict[str, int]) -> dict[str, Any]:
    """One timed run of one sampler in this fresh process."""
    import resource

    import numpy as np

    start = time.perf_counter()
    import pymc as pm

    import clvmodels.bayes  # noqa: F401

    if "nutpie" in sampler:
        import nutpie
    import_seconds = time.perf_counter() - start
    _quiet_logs()
    model = CASES[case]["model"]
    patterns, after_import, after_input = _common.measure_input(lambda: load_patterns(path))
    frame = as_frame(patterns)
    phases = _Phases()
    out: dict[str, Any] = {"sampler": sampler, "case": case, "seed": seed, "settings": settings,
                           "cores": CORES, "import_seconds": import_seconds}  # fmt: skip
    if sampler.startswith("clvmodels"):
        from clvmodels.bayes import _base, _nuts, _samplers

        phases.wrap(twin_class(model), "fit", "mle")
        phases.wrap(_base.BayesianModel, "_sample", "sampler")
        phases.wrap(_samplers._Density, "__init__", "compile")
        if sampler == "clvmodels":
            phases.wrap(_nuts, "sample_nuts", "sampling")
        else:
            phases.wrap(nutpie, "sample", "sampling")
        with bench_bayes.CpuMeter() as meter:
            begin = time.perf_counter()
            fitted = bayes_class(model)().fit(
                frame, method="mcmc", sampler="clvmodels" if sampler == "clvmodels" else "nutpie",
                random_seed=seed, cores=CORES, **settings,
            )  # fmt: skip
            end_to_end = time.perf_counter() - begin
        idata = fitted.idata_
        out.update({"end_to_end_s": end_to_end, "sampler_s": phases.seconds["sampler"],
                    "mle_s": phases.seconds.get("mle", 0.0),
                    "compile_s": phases.seconds.get("compile", 0.0),
                    "sampling_s": phases.seconds.get("sampling", float("nan"))})  # fmt: skip
    else:
        with bench_bayes.CpuMeter() as meter:
            begin = time.perf_counter()
            mle = twin_class(model)().fit(frame).params_
            mle_s = time.perf_counter() - begin
            initial = {name: float(mle[name]) for name in PARAMS[model]}
            pymc_model = build_model(model, patterns)
            built = time.perf_counter()
            if sampler.startswith("nutpie"):
                compiled = nutpie.compile_pymc_model(
                    pymc_model, backend="numba", initial_points=initial,
                    freeze_model=sampler.endswith("frozen"),
                )  # fmt: skip
                compiled_at = time.perf_counter()
                idata = nutpie.sample(
                    compiled, seed=seed, cores=CORES, progress_bar=False, save_warmup=False,
                    low_rank_modified_mass_matrix="lowrank" in sampler, **settings,
                )  # fmt: skip
                done = time.perf_counter()
                compile_s, sampling_s = compiled_at - built, done - compiled_at
            else:
                with pymc_model:
                    idata = pm.sample(random_seed=seed, cores=CORES, initvals=initial,
                                      progressbar=False, compute_convergence_checks=False,
                                      **settings)  # fmt: skip
                done = time.perf_counter()
                sampling_s = float(idata.sample_stats.attrs.get("sampling_time", np.nan))
                compile_s = done - built - sampling_s  # compilation and NUTS set-up
        out.update({"end_to_end_s": done - begin, "sampler_s": done - mle_s - begin,
                    "mle_s": mle_s, "build_s": built - begin - mle_s, "compile_s": compile_s,
                    "sampling_s": sampling_s})  # fmt: skip
    peak = _common.peak_rss_bytes()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out.update({
        **meter.fields(), **_common.memory_fields(after_import, after_input, peak),
        "child_peak_rss_mib": children / _common.MIB, **_report(model, idata),
        "phases": phases.seconds, "clvmodels_code": bench_bayes._tool_code("clvmodels"),
    })  # fmt: skip
    return out


def worker_profile(case: str, path: str, evaluations: int) -> dict[str, Any]:
    """Seconds per call of log density + gradient (what NUTS pays per leapfrog step):
    clvmodels' PyMC density (numpy Op, C backend), and the graph under C and numba."""
    import numpy as np
    import pytensor.tensor as pt
    from pytensor.compile.function import function

    _quiet_logs()
    from clvmodels.bayes._samplers import _Density

    model = CASES[case]["model"]
    patterns = load_patterns(path)
    frame = as_frame(patterns)
    own = bayes_class(model)()
    fitting = own._fitting_twin()
    fitting.fit(frame)
    point = np.log(fitting.params_.to_numpy())
    out: dict[str, Any] = {"case": case, "evaluations": evaluations}
    logp, _ = _Density(own._build(*fitting._patterns)).for_chain()
    out["clvmodels_density_ms"] = 1e3 * bench_bayes._per_call(lambda: logp(point), evaluations)
    graph = build_model(model, patterns)
    value = graph.logp()
    inputs = graph.value_vars
    gradient = pt.grad(value, inputs)
    values = dict(zip([v.name for v in inputs], point, strict=True))
    numba_function = None
    for backend, mode in (("graph_c", "FAST_RUN"), ("graph_numba", "NUMBA")):
        begin = time.perf_counter()
        compiled = function(inputs, [value, *gradient], mode=mode)
        out[f"{backend}_compile_s"] = time.perf_counter() - begin
        out[f"{backend}_ms"] = 1e3 * bench_bayes._per_call(
            lambda compiled=compiled: compiled(**values), evaluations)  # fmt: skip
        numba_function = compiled
    if model == "pnbd":
        # out on the (s, beta) ridge: s and beta both k times the estimate (about the same
        # mean lifetime), where z = (beta - alpha) / (beta + t) nears 1
        out["ridge"] = []
        for k in (10.0, 100.0, 1000.0):
            far = point + np.log([1.0, 1.0, k, k])
            far_values = dict(zip([v.name for v in inputs], far, strict=True))
            calls = max(3, evaluations // int(k))
            out["ridge"].append({
                "factor": k, "s": float(np.exp(far[2])), "beta": float(np.exp(far[3])),
                "clvmodels_density_ms": 1e3 * bench_bayes._per_call(lambda far=far: logp(far), calls),
                "graph_numba_ms": 1e3 * bench_bayes._per_call(
                    lambda far_values=far_values: numba_function(**far_values), calls),
            })  # fmt: skip
    return out


# ----------------------------------------------------------------- parent side


def load_average() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


class Quiet:
    """Wait (30 s steps, a budget over the whole run) for the 1-minute load to drop."""

    def __init__(self, max_load: float, budget_s: float) -> None:
        self.max_load, self.budget_s, self.waited_s = max_load, budget_s, 0.0

    def wait(self, what: str) -> dict[str, Any]:
        first = load_average()
        while load_average() >= self.max_load and self.waited_s < self.budget_s:
            time.sleep(30)
            self.waited_s += 30
        load = load_average()
        quiet = load < self.max_load
        print(f"  [{what}] load {first:.2f} -> {load:.2f} ({'quiet' if quiet else 'UNDER LOAD'}; "
              f"waited {self.waited_s:.0f} s in all)", flush=True)  # fmt: skip
        return {"load_before_wait": first, "load_at_start": load, "quiet": quiet}


def run(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """This script's worker in a fresh process; load averages around it."""
    before = load_average()
    command = [sys.executable, os.path.abspath(__file__), "--worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_start"], result["load_end"] = before, load_average()
    return result


def cache_env(directory: str) -> dict[str, str]:
    return {"PYTENSOR_FLAGS": f"base_compiledir={directory}/pytensor",
            "NUMBA_CACHE_DIR": f"{directory}/numba"}  # fmt: skip


def _print_run(r: dict[str, Any], label: str) -> None:
    print(f"    {r['sampler']:21s} {label:5s} sampler {r['sampler_s']:7.2f} s (compile "
          f"{r['compile_s']:.2f}, sampling {r['sampling_s']:.2f}), end-to-end "
          f"{r['end_to_end_s']:.2f} s, min ESS {r['min_ess_bulk']:,.0f}, r_hat "
          f"{r['max_r_hat']:.3f}, div {r['divergences']}, steps/draw {r['mean_n_steps']:.2f}, "
          f"peak {r['peak_rss_mib']:,.0f}/{r['child_peak_rss_mib']:,.0f} MiB, others' CPU "
          f"{r['other_cpu_seconds']:.1f} s, load {r['load_start']:.2f}->{r['load_end']:.2f}",
          flush=True)  # fmt: skip


def summarize(case: str, sampler: str, cold: dict[str, Any] | None,
              warm: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Medians over the warm runs, and the cold run."""
    med = (lambda key: statistics.median(r[key] for r in warm)) if warm else (lambda key: None)
    row: dict[str, Any] = {"case": case, "sampler": sampler, "repeats": len(warm)}
    for key in ("sampler_s", "end_to_end_s", "compile_s", "sampling_s", "mle_s",
                "min_ess_bulk", "mean_n_steps", "max_r_hat", "peak_rss_mib",
                "child_peak_rss_mib", "other_cpu_seconds", "cpu_seconds"):  # fmt: skip
        row[key] = med(key)
    row["all_sampler_s"] = [r["sampler_s"] for r in warm]
    row["divergences"] = [r["divergences"] for r in warm]
    row["ess_per_s"] = (statistics.median(r["min_ess_bulk"] / r["sampler_s"] for r in warm)
                        if warm else None)  # fmt: skip
    row["load"] = [(r["load_start"], r["load_end"]) for r in ([cold] if cold else []) + warm]
    if cold:
        row.update({"cold_sampler_s": cold["sampler_s"], "cold_compile_s": cold["compile_s"],
                    "cold_end_to_end_s": cold["end_to_end_s"]})  # fmt: skip
    first = warm[0] if warm else cold
    if first:
        row.update({"means": first["means"], "sds": first["sds"], "mcse_mean": first["mcse_mean"]})
    return row


def agreement(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per case and sampler, (mean - clvmodels' mean) / combined MCSE per parameter."""
    out = []
    for row in rows:
        ref = next((r for r in rows if r["case"] == row["case"] and r["sampler"] == "clvmodels"),
                   None)  # fmt: skip
        if ref is None or row is ref or "means" not in row or "means" not in ref:
            continue
        z = {k: (row["means"][k] - ref["means"][k])
             / (row["mcse_mean"][k] ** 2 + ref["mcse_mean"][k] ** 2) ** 0.5 for k in row["means"]}
        sd_ratio = {k: row["sds"][k] / ref["sds"][k] for k in row["sds"]}
        out.append({"case": row["case"], "sampler": row["sampler"], "z": z, "sd_ratio": sd_ratio})
    return out


def _f(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(rows: list[dict[str, Any]], checks: list[dict[str, Any]],
             profiles: list[dict[str, Any]]) -> str:  # fmt: skip
    titles = ["case", "sampler", "cold: sampler s (compile s)", "warm runs", "warm sampler s (runs)",
              "compile s", "sampling s", "end-to-end s", "min bulk ESS", "ESS/s",
              "time / clvmodels'", "ESS/s / clvmodels'", "steps/draw", "divergences",
              "max r_hat", "peak RSS main / child MiB", "others' CPU s", "load start->end"]  # fmt: skip
    lines = _common.markdown_header(titles, "llrrlrrrrrrrrlrlrl")
    for r in rows:
        ref = next((q for q in rows if q["case"] == r["case"] and q["sampler"] == "clvmodels"), {})
        time_ratio = ess_ratio = None
        if ref.get("sampler_s") and r["sampler_s"]:
            time_ratio = r["sampler_s"] / ref["sampler_s"]
            ess_ratio = r["ess_per_s"] / ref["ess_per_s"]
        runs = ", ".join(f"{s:.2f}" for s in r["all_sampler_s"])
        loads = ", ".join(f"{a:.2f}->{b:.2f}" for a, b in r["load"])
        cold = (f"{r['cold_sampler_s']:.2f} ({r['cold_compile_s']:.2f})"
                if "cold_sampler_s" in r else "-")  # fmt: skip
        lines.append(_common.markdown_row([
            CASES[r["case"]]["title"], LABELS[r["sampler"]], cold, r["repeats"],
            f"**{_f(r['sampler_s'], '.2f')}** ({runs})", _f(r["compile_s"], ".2f"),
            _f(r["sampling_s"], ".2f"), _f(r["end_to_end_s"], ".2f"),
            _f(r["min_ess_bulk"], ",.0f"), _f(r["ess_per_s"], ",.0f"),
            _f(time_ratio, ".2f"), _f(ess_ratio, ".2f"), _f(r["mean_n_steps"], ".2f"), "/".join(map(str, r["divergences"])) or "-",
            _f(r["max_r_hat"], ".3f"),
            f"{_f(r['peak_rss_mib'], ',.0f')} / {_f(r['child_peak_rss_mib'], ',.0f')}",
            _f(r["other_cpu_seconds"], ".1f"), loads,
        ]))  # fmt: skip
    lines += ["", *_common.markdown_header(
        ["case", "sampler", "posterior mean (sd)", "(mean - clvmodels') / MCSE", "sd / clvmodels' sd"],
        "lllll")]  # fmt: skip
    agree = {(a["case"], a["sampler"]): a for a in agreement(rows)}
    for r in rows:
        if "means" not in r:
            continue
        text = ", ".join(f"{k} {v:.4g} ({r['sds'][k]:.3g})" for k, v in r["means"].items())
        a = agree.get((r["case"], r["sampler"]))
        z = ", ".join(f"{k} {v:+.1f}" for k, v in a["z"].items()) if a else "(reference)"
        ratio = ", ".join(f"{k} {v:.2f}" for k, v in a["sd_ratio"].items()) if a else ""
        lines.append(_common.markdown_row([CASES[r["case"]]["title"], LABELS[r["sampler"]],
                                           text, z, ratio]))  # fmt: skip
    if checks:
        lines += ["", *_common.markdown_header(
            ["case", "points", "log-lik rel. error C / numba", "gradient rel. error C / numba",
             "log-posterior rel. error", "log-lik at MLE: graph / clvmodels"], "lrllll")]  # fmt: skip
        for c in checks:
            lines.append(_common.markdown_row([
                CASES[c["case"]]["title"], c["points"],
                f"{c['c_max_rel_loglik_error']:.1e} / {c['numba_max_rel_loglik_error']:.1e}",
                f"{c['c_max_rel_gradient_error']:.1e} / {c['numba_max_rel_gradient_error']:.1e}",
                f"{c['max_rel_logposterior_error']:.1e}",
                f"{c['graph_loglik_at_mle']:.6f} / {c['mle_log_likelihood']:.6f}",
            ]))  # fmt: skip
    if profiles:
        lines += ["", *_common.markdown_header(
            ["case", "clvmodels density (numpy Op) ms", "graph, C ms", "graph, numba ms",
             "compile C / numba s"], "lrrrl")]  # fmt: skip
        for p in profiles:
            lines.append(_common.markdown_row([
                CASES[p["case"]]["title"], f"{p['clvmodels_density_ms']:.3f}",
                f"{p['graph_c_ms']:.3f}", f"{p['graph_numba_ms']:.3f}",
                f"{p['graph_c_compile_s']:.1f} / {p['graph_numba_compile_s']:.1f}",
            ]))  # fmt: skip
    return "\n".join(lines)


def contended(result: dict[str, Any]) -> bool:
    """Whether other processes used more than 5 % of the machine (plus 0.5 CPU s)
    during a run."""
    return result["other_cpu_seconds"] > 0.05 * result["end_to_end_s"] * CORES + 0.5


def _warm_up(sampler: str, case: str, path: str, seed: int, cache: str) -> None:
    """One short untimed run that fills an empty cache (before warm runs whose cold run
    was kept from an earlier invocation)."""
    short = {"chains": 2, "tune": 20, "draws": 20}
    run(["fit", sampler, case, path, str(seed), json.dumps(short)], env=cache_env(cache))
    print(f"    {sampler:21s} (untimed warm-up of the cache)", flush=True)


def measure(sampler: str, case: str, path: str, repeat: int, args: Any,
            settings: dict[str, int], cache: str, quiet: Quiet,
            results: dict[str, Any]) -> dict[str, Any] | None:  # fmt: skip
    """One run, repeated (up to ``--retries`` times) while other processes took more
    than 5 % of the machine; a cold run gets a new empty cache each time. The
    contended attempts are kept in ``results["discarded_runs"]``; if every attempt was
    contended the last one is used, marked ``contended``."""
    seed = args.seed + max(repeat, 0)
    result = None
    for attempt in range(args.retries + 1):
        if attempt:
            quiet.wait(f"{case} {sampler}: retry {attempt} after contention")
        if repeat < 0:  # cold: empty caches
            shutil.rmtree(cache, ignore_errors=True)
            os.makedirs(cache)
        waited = bench_bayes.wait_for_quiet()  # others idle over 5 s, at most --run-wait
        try:
            result = run(["fit", sampler, case, path, str(seed), json.dumps(settings)],
                         env=cache_env(cache))  # fmt: skip
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            note = f"{case} {sampler} repeat {repeat}: {str(error)[-600:]}"
            print(f"    FAILED {note}", flush=True)
            results["failures"].append(note)
            return None
        result.update({"repeat": repeat, "cold": repeat < 0, "waited_for_idle_s": waited,
                       "attempt": attempt, "contended": contended(result)})  # fmt: skip
        _print_run(result, ("cold" if repeat < 0 else "warm")
                   + (" (contended)" if result["contended"] else ""))  # fmt: skip
        if not result["contended"]:
            break
        if attempt < args.retries:
            results["discarded_runs"].append(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated samplers")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per CDNOW case")
    parser.add_argument("--large-repeats", type=int, default=1, help="warm runs, 1M case")
    parser.add_argument("--no-cold", action="store_true", help="skip the empty-cache runs")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--chains", type=int, default=SETTINGS["chains"])
    parser.add_argument("--tune", type=int, default=SETTINGS["tune"])
    parser.add_argument("--draws", type=int, default=SETTINGS["draws"])
    parser.add_argument("--check-points", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="per-call log density cost")
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--max-wait", type=float, default=2400.0,
                        help="seconds of waiting for a quiet machine, over the whole run")
    parser.add_argument("--run-wait", type=float, default=120.0,
                        help="before each run wait up to this long for other processes to idle")
    parser.add_argument("--retries", type=int, default=2,
                        help="runs repeated while other processes took > 5 %% of the machine")
    parser.add_argument("--resume", metavar="JSON",
                        help="keep the uncontended runs of an earlier --json, run the rest")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "data":
            result = write_data(rest[0], rest[1])
        elif kind == "check":
            result = worker_check(rest[0], rest[1], int(rest[2]))
        elif kind == "profile":
            result = worker_profile(rest[0], rest[1], int(rest[2]))
        else:  # fit: sampler case path seed settings
            result = worker_fit(rest[0], rest[1], rest[2], int(rest[3]), json.loads(rest[4]))
        print(json.dumps(result))
        return 0

    cases = [c for c in args.only.split(",") if c]
    samplers = [s for s in args.samplers.split(",") if s]
    bad = [c for c in cases if c not in CASES] + [
        s for s in samplers if s not in SAMPLERS + EXTRA_SAMPLERS]
    if bad:
        parser.error(f"unknown {bad}; cases: {', '.join(CASES)}; samplers: "
                     f"{', '.join(SAMPLERS + EXTRA_SAMPLERS)}")
    settings = {"chains": args.chains, "tune": args.tune, "draws": args.draws}
    info = _common.machine_info(PACKAGES)
    import clvmodels

    info["clvmodels_code"] = bench_bayes.code_state(os.path.dirname(clvmodels.__file__))
    _common.print_machine(info)
    quiet = Quiet(args.max_load, args.max_wait)
    bench_bayes.QUIET["max_wait_s"] = args.run_wait
    data: dict[str, Any] = {}
    results: dict[str, Any] = {"machine": info, "seed": args.seed, "settings": settings,
                               "cores": CORES, "simulation": SIM, "data": data, "checks": [],
                               "profiles": [], "runs": [], "medians": [], "failures": [],
                               "quiet": [], "discarded_runs": []}  # fmt: skip
    kept: dict[tuple[str, str, int], dict[str, Any]] = {}
    if args.resume:
        with open(args.resume) as handle:
            earlier = json.load(handle)
        for r in earlier["runs"]:
            if not r.get("contended", contended(r)):
                kept[(r["case"], r["sampler"], r["repeat"])] = {**r, "kept_from": args.resume}
        results["discarded_runs"] = earlier.get("discarded_runs", []) + [
            r for r in earlier["runs"] if r.get("contended", contended(r))]
        results["earlier_invocations"] = [*earlier.get("earlier_invocations", []),
                                          {"machine": earlier["machine"],
                                           "command": earlier.get("command")}]  # fmt: skip

    def save() -> None:
        if args.json:
            _common.write_json(args.json, results)

    with tempfile.TemporaryDirectory(prefix="bench_samplers_") as tmp:
        for case in cases:
            kind = CASES[case]["data"]
            path = os.path.join(tmp, f"{kind}.npz")
            if kind not in data:
                data[kind] = run(["data", kind, path])
                print(f"\ndata {kind}: {data[kind]}", flush=True)
            check = run(["check", case, path, str(args.check_points)])
            results["checks"].append(check)
            print(f"\n{case}: check against clvmodels' likelihood at {check['points']} points: "
                  f"log-lik rel. error C {check['c_max_rel_loglik_error']:.1e}, numba "
                  f"{check['numba_max_rel_loglik_error']:.1e}; gradient "
                  f"{check['c_max_rel_gradient_error']:.1e} / "
                  f"{check['numba_max_rel_gradient_error']:.1e}; log posterior "
                  f"{check['max_rel_logposterior_error']:.1e}", flush=True)  # fmt: skip
            if max(check["c_max_rel_loglik_error"], check["numba_max_rel_loglik_error"],
                   check["max_rel_logposterior_error"]) > 1e-8:  # fmt: skip
                raise SystemExit(f"{case}: the graph does not match clvmodels' likelihood")
            results["quiet"].append({"case": case, **quiet.wait(case)})
            if args.profile:
                profile = run(["profile", case, path, "200"])
                results["profiles"].append(profile)
                print(f"  per call: clvmodels density {profile['clvmodels_density_ms']:.3f} ms, "
                      f"graph C {profile['graph_c_ms']:.3f} ms, numba "
                      f"{profile['graph_numba_ms']:.3f} ms", flush=True)  # fmt: skip
                for far in profile.get("ridge", []):
                    print(f"    s, beta x {far['factor']:g}: clvmodels density "
                          f"{far['clvmodels_density_ms']:.3f} ms, graph numba "
                          f"{far['graph_numba_ms']:.3f} ms", flush=True)  # fmt: skip
            repeats = args.large_repeats if kind == "sim" else args.repeats
            caches = {s: tempfile.mkdtemp(prefix=f"cache_{s}_", dir=tmp) for s in samplers}
            cold: dict[str, Any] = {}
            warm: dict[str, list[dict[str, Any]]] = {s: [] for s in samplers}
            plan = ([] if args.no_cold else [(-1, s) for s in samplers])
            plan += [(k, s) for k in range(repeats) for s in samplers]
            slow: set[str] = set()
            warmed: set[str] = set()  # samplers whose cache this invocation has filled
            for repeat, sampler in plan:
                if repeat >= 1 and sampler in slow:
                    continue
                result = kept.pop((case, sampler, repeat), None)
                if result is not None:
                    print(f"    (kept from {args.resume}: {sampler} repeat {repeat})", flush=True)
                else:
                    if repeat >= 0 and sampler not in warmed:  # a warm run needs a filled cache
                        _warm_up(sampler, case, path, args.seed, caches[sampler])
                    result = measure(sampler, case, path, repeat, args, settings,
                                     caches[sampler], quiet, results)  # fmt: skip
                    if result is None:
                        continue
                warmed.add(sampler)
                if result["sampler_s"] > SLOW_S:
                    slow.add(sampler)
                results["runs"].append(result)
                if repeat < 0:
                    cold[sampler] = result
                else:
                    warm[sampler].append(result)
                save()
            for sampler in samplers:
                if warm[sampler] or sampler in cold:
                    results["medians"].append(summarize(case, sampler, cold.get(sampler),
                                                        warm[sampler]))  # fmt: skip
            for directory in caches.values():
                shutil.rmtree(directory, ignore_errors=True)
            save()
    results["agreement"] = agreement(results["medians"])
    print("\nMedians (warm)")
    for r in results["medians"]:
        print(f"  {r['case']:13s} {r['sampler']:21s} sampler {_f(r['sampler_s'], '8.2f')} s, "
              f"ESS/s {_f(r['ess_per_s'], ',.0f')}, cold {_f(r.get('cold_sampler_s'), '.2f')} s")
    if args.markdown:
        print("\n" + markdown(results["medians"], results["checks"], results["profiles"]))
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

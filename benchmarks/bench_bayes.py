"""Benchmark the Bayesian models (clvmodels.bayes) against pymc-marketing (issue #6).

What is measured
----------------
Three cases (select with ``--only``):

``cdnow_bgnbd``
    BG/NBD on the CDNOW calibration frame (``calibration_holdout(load_cdnow(),
    calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="W")``: 2,357
    customers, 1,016 distinct patterns), 4 chains x (1000 tune + 1000 draws), by
    ``clvmodels.bayes.BGNBD().fit(frame, chains=4, tune=1000, draws=1000, cores=2)`` and
    by pymc-marketing's ``BetaGeoModel(data=frame).fit(method="mcmc", chains=4,
    tune=1000, draws=1000, cores=2)``.
``cdnow_pnbd``
    Pareto/NBD on the same frame: clvmodels' ``bayes.ParetoNBD`` at 4 chains x
    (1000 + 1000); pymc-marketing's ``ParetoNBDModel`` at 2 chains x (500 + 500), the
    setting of the issue (``--anchor-pnbd-full`` also tries 4 x (1000 + 1000) with a
    10-minute limit).
``sim_bgnbd_1m``
    clvmodels only: BG/NBD on 1M customers simulated by ``simulate_bgnbd`` with the
    CDNOW parameters in weeks (r = 0.24, alpha = 4.41, a = 0.79, b = 2.43), each
    customer observed for a whole number of days T_days uniform on 1 .. 365 and the
    recency floored to whole days (what ``summarize`` of daily data gives), both
    expressed in weeks (days / 7); spend from ``simulate_gamma_gamma`` (p = 6.25,
    q = 3.74, gamma = 15.44), rounded to cents. NUTS (``--large-chains``,
    ``--large-tune``, ``--large-draws``; default 4 x (1000 + 1000)), then a
    maximum-likelihood ``GammaGamma`` and ``predictive_clv(bayes_model, spend_model,
    frame, horizon="12M", discount_rate=0.1, time_unit="W", n_draws=--clv-draws)``
    for all 1M customers.

Both tools run their whole user-facing call in a fresh subprocess: the timed wall time
starts after the imports (``import pymc`` and the tool, timed separately) and the
input frame, and covers model building, PyTensor compilation, initialisation, sampling
and what each ``fit`` does afterwards (clvmodels: the maximum-likelihood start, the
per-pattern log-likelihood for LOO and the convergence check; pymc-marketing: the
InferenceData with its ``fit_data`` group). ``cores=2`` is passed to both (PyMC's own
default on this 2-CPU machine is 1 process, i.e. sequential chains; ``--anchor-default-cores``
adds one pymc-marketing run so). PyTensor's compilation cache is the user's usual one
and is warmed by one short untimed run per tool and case (4 x (20 + 20)); ``--cold``
adds one run per tool with an empty cache (``PYTENSOR_FLAGS=base_compiledir=<new
dir>``), which compiles every C module.

Outside the timed part each worker reads from the posterior (ArviZ, same version in
both environments): the minimum bulk ESS and maximum (rank-normalised) r_hat over the
four model parameters (pymc-marketing's BG/NBD samples phi, kappa and derives a, b: the
four reported are r, alpha, a, b), the divergences, the mean leapfrog steps per draw,
PyMC's own sampling time, and the posterior means. Peak memory: ``getrusage`` of the
worker (``RUSAGE_SELF``) and of its largest sampler process (``RUSAGE_CHILDREN``).
Medians over ``--repeats`` fresh processes (a tool whose first run took longer than
120 s is not repeated).

``--profile`` adds, for both CDNOW cases and both tools, the cost of one evaluation of
the model's joint log-density and gradient (what NUTS calls per leapfrog step) and, for
clvmodels, of its numpy likelihood alone, plus a phase breakdown of one more clvmodels
BG/NBD fit.

How to run
----------
pymc-marketing 0.19 needs Python 3.11 and is run from its own environment::

    python3.11 -m venv ../venv-pmm
    ../venv-pmm/bin/pip install "pymc-marketing==0.19.*"
    python benchmarks/bench_bayes.py --anchor-python ../venv-pmm/bin/python \\
        --json /tmp/bench_bayes.json --markdown --cold --profile

Linux only (``/proc`` and ``getrusage``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

PACKAGES = ("numpy", "scipy", "pandas", "pytensor", "pymc", "arviz", "clvmodels")
ANCHOR_PACKAGES = ("numpy", "pytensor", "pymc", "arviz", "pymc-marketing")
TOOLS = ("clvmodels", "pymc-marketing")
SEED = 20240601
CORES = 2
TIMEOUT_S = 3 * 3600
SLOW_S = 120.0  # a tool whose first run took longer than this is not repeated
FULL_PNBD_LIMIT_S = 600.0
WARMUP = {"chains": 4, "tune": 20, "draws": 20}

BGNBD_WEEK = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
MAX_DAYS = 365
PARAMS = {"bgnbd": ("r", "alpha", "a", "b"), "pnbd": ("r", "alpha", "s", "beta")}

CASES: dict[str, dict[str, Any]] = {
    "cdnow_bgnbd": {
        "model": "bgnbd",
        "description": "BG/NBD on CDNOW calibration (weeks), 4 chains x (1000 + 1000)",
        "settings": {
            "clvmodels": {"chains": 4, "tune": 1000, "draws": 1000},
            "pymc-marketing": {"chains": 4, "tune": 1000, "draws": 1000},
        },
    },
    "cdnow_pnbd": {
        "model": "pnbd",
        "description": "Pareto/NBD on CDNOW calibration (weeks)",
        "settings": {
            "clvmodels": {"chains": 4, "tune": 1000, "draws": 1000},
            "pymc-marketing": {"chains": 2, "tune": 500, "draws": 500},
        },
    },
    "sim_bgnbd_1m": {
        "model": "bgnbd",
        "description": "BG/NBD on 1M simulated customers (whole days, in weeks), then CLV",
        "settings": {"clvmodels": {"chains": 4, "tune": 1000, "draws": 1000}},
    },
}


# ----------------------------------------------------------------- worker side


def write_cdnow(path: str) -> dict[str, Any]:
    """Save the CDNOW calibration frame (customer_id, frequency, recency, T) as .npz."""
    import numpy as np

    import clvmodels

    frame = clvmodels.calibration_holdout(
        clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
        holdout_end="1998-06-30", time_unit="W",
    )  # fmt: skip
    arrays = {
        "customer_id": frame.index.to_numpy(dtype=np.int64),
        "frequency": frame["frequency_cal"].to_numpy(dtype=np.int64),
        "recency": frame["recency_cal"].to_numpy(dtype=np.float64),
        "T": frame["T_cal"].to_numpy(dtype=np.float64),
    }
    np.savez(path, **arrays)
    return _describe(arrays)


def write_simulated(path: str, customers: int, seed: int) -> dict[str, Any]:
    """Simulate the 1M-customer case once (see the module docstring) and save it."""
    import numpy as np

    from clvmodels.simulate import simulate_bgnbd, simulate_gamma_gamma

    rng = np.random.default_rng(seed)
    t_days = rng.integers(1, MAX_DAYS + 1, size=customers).astype(np.float64)
    frame = simulate_bgnbd(customers, **BGNBD_WEEK, T=t_days / 7, random_state=rng)
    # whole days, then weeks; floor(recency * 7) <= T_days keeps recency <= T
    recency_days = np.minimum(np.floor(frame["recency"].to_numpy() * 7), t_days)
    frequency = frame["frequency"].to_numpy(dtype=np.int64)
    spend = simulate_gamma_gamma(frequency, **GG, random_state=rng)
    spend = spend["monetary_value"] if hasattr(spend, "columns") else spend
    spend = np.asarray(spend, dtype=np.float64)
    arrays = {
        "customer_id": np.arange(customers, dtype=np.int64),
        "frequency": frequency,
        "recency": recency_days / 7,
        "T": t_days / 7,
        "monetary_value": np.where(frequency > 0, np.round(spend, 2), 0.0),
    }
    np.savez(path, **arrays)
    return _describe(arrays)


def _describe(arrays: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    keys = np.column_stack([arrays["frequency"], arrays["recency"], arrays["T"]])
    info = {
        "customers": len(arrays["frequency"]),
        "patterns": len(np.unique(keys, axis=0)),
        "mean_frequency": float(np.mean(arrays["frequency"])),
        "share_zero_frequency": float(np.mean(arrays["frequency"] == 0)),
    }
    if "monetary_value" in arrays:
        full = np.column_stack([keys, arrays["monetary_value"]])
        info["patterns_with_spend"] = len(np.unique(full, axis=0))
    return info


def load_frame(path: str) -> Any:
    import numpy as np
    import pandas as pd

    with np.load(path) as saved:
        return pd.DataFrame({k: saved[k] for k in saved.files})


def code_state(package_dir: str) -> dict[str, Any]:
    """SHA-256 over the package's .py files and the newest modification time: the code a
    run measured (the working tree may change between runs)."""
    import datetime as dt
    import hashlib

    digest = hashlib.sha256()
    newest = 0.0
    for file in sorted(Path(package_dir).rglob("*.py")):
        digest.update(str(file.relative_to(package_dir)).encode())
        digest.update(file.read_bytes())
        newest = max(newest, file.stat().st_mtime)
    stamp = dt.datetime.fromtimestamp(newest, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"sha256": digest.hexdigest()[:12], "newest_file_utc": stamp}


def _import_tool(tool: str) -> None:
    import pymc  # noqa: F401  (both tools build PyMC models; its import is not timed)

    if tool == "clvmodels":
        import clvmodels.bayes.models  # noqa: F401
    else:
        import pymc_marketing.clv  # noqa: F401


def _fit(tool: str, model: str, frame: Any, settings: dict[str, int], seed: int,
         cores: int | None) -> tuple[Any, Any]:  # fmt: skip
    """Fit; return (the fitted object or None, the InferenceData)."""
    if tool == "clvmodels":
        from clvmodels import bayes

        cls = bayes.BGNBD if model == "bgnbd" else bayes.ParetoNBD
        fitted = cls().fit(
            frame[["frequency", "recency", "T"]], method="mcmc", random_seed=seed,
            cores=cores, **settings,
        )  # fmt: skip
        return fitted, fitted.idata_
    import warnings

    from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

    cls = BetaGeoModel if model == "bgnbd" else ParetoNBDModel
    data = frame[["customer_id", "frequency", "recency", "T"]]
    kwargs = {} if cores is None else {"cores": cores}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = cls(data=data)
        idata = instance.fit(method="mcmc", random_seed=seed, progressbar=False,
                             **settings, **kwargs)  # fmt: skip
    return instance, idata


def _tool_code(tool: str) -> dict[str, Any]:
    if tool != "clvmodels":
        return {}
    import clvmodels

    return code_state(os.path.dirname(clvmodels.__file__))


def _posterior_report(model: str, idata: Any) -> dict[str, Any]:
    import arviz as az
    import numpy as np

    posterior = idata.posterior
    report: dict[str, Any] = {"means": {}, "sds": {}, "ess_bulk": {}, "ess_tail": {}, "r_hat": {}}
    for name in PARAMS[model]:
        values = np.asarray(posterior[name].values, dtype=np.float64)
        report["means"][name] = float(values.mean())
        report["sds"][name] = float(values.std(ddof=1))
        report["ess_bulk"][name] = float(az.ess(values, method="bulk"))
        report["ess_tail"][name] = float(az.ess(values, method="tail"))
        report["r_hat"][name] = float(az.rhat(values))
    stats = idata.sample_stats
    report["min_ess_bulk"] = min(report["ess_bulk"].values())
    report["max_r_hat"] = max(report["r_hat"].values())
    report["divergences"] = int(np.asarray(stats["diverging"].values).sum())
    report["mean_n_steps"] = float(np.asarray(stats["n_steps"].values).mean())
    report["total_n_steps"] = int(np.asarray(stats["n_steps"].values).sum())
    report["sampling_time_s"] = float(stats.attrs.get("sampling_time", float("nan")))
    return report


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the sampler processes)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """CPU used by the timed call, and by every other process on the machine meanwhile
    (a measure of contention: on a quiet machine the latter is near 0)."""

    def __enter__(self) -> CpuMeter:
        self.machine, self.own = _machine_busy_seconds(), _own_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_seconds = _own_cpu_seconds() - self.own
        machine = _machine_busy_seconds() - self.machine
        self.other_cpu_seconds = max(0.0, machine - self.cpu_seconds)

    def fields(self) -> dict[str, float]:
        return {"cpu_seconds": self.cpu_seconds, "other_cpu_seconds": self.other_cpu_seconds}


def worker_fit(tool: str, case: str, path: str, settings: dict[str, int], seed: int,
               cores: int | None) -> dict[str, Any]:  # fmt: skip
    """One timed fit in a fresh process."""
    import resource

    start = time.perf_counter()
    _import_tool(tool)
    import_seconds = time.perf_counter() - start
    frame, after_import, after_input = _common.measure_input(lambda: load_frame(path))
    with CpuMeter() as meter:
        start = time.perf_counter()
        fitted, idata = _fit(tool, CASES[case]["model"], frame, settings, seed, cores)
        seconds = time.perf_counter() - start
    peak = _common.peak_rss_bytes()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out = {
        "tool": tool, "case": case, "settings": settings, "cores": cores, "seed": seed,
        "seconds": seconds, "import_seconds": import_seconds, **meter.fields(),
        **_common.memory_fields(after_import, after_input, peak),
        "child_peak_rss_mib": children / _common.MIB,
        **_posterior_report(CASES[case]["model"], idata),
        "code": _tool_code(tool),
    }  # fmt: skip
    if tool == "clvmodels" and fitted.mle_params_ is not None:
        out["mle"] = {k: float(v) for k, v in fitted.mle_params_.items()}
    return out


def _reset_peak() -> bool:
    """Reset this process's VmHWM (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found")


def worker_large(path: str, settings: dict[str, int], seed: int, clv_draws: int) -> dict[str, Any]:
    """NUTS on the 1M-customer case, then predictive CLV of every customer."""
    import resource

    import numpy as np

    start = time.perf_counter()
    _import_tool("clvmodels")
    import clvmodels

    import_seconds = time.perf_counter() - start
    frame, after_import, after_input = _common.measure_input(lambda: load_frame(path))
    frame = frame.set_index("customer_id")
    with CpuMeter() as meter:
        start = time.perf_counter()
        fitted, idata = _fit("clvmodels", "bgnbd", frame, settings, seed, CORES)
        fit_seconds = time.perf_counter() - start
    fit_peak = _common.peak_rss_bytes()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out: dict[str, Any] = {
        "tool": "clvmodels", "case": "sim_bgnbd_1m", "settings": settings, "cores": CORES,
        "seed": seed, "seconds": fit_seconds, "import_seconds": import_seconds, **meter.fields(),
        **_common.memory_fields(after_import, after_input, fit_peak),
        "child_peak_rss_mib": children / _common.MIB,
        **_posterior_report("bgnbd", idata),
        "mle": {k: float(v) for k, v in fitted.mle_params_.items()},
        "patterns_fitted": int(fitted.n_patterns_),
        "code": _tool_code("clvmodels"),
    }  # fmt: skip
    if clv_draws <= 0:
        return out
    start = time.perf_counter()
    spend = clvmodels.GammaGamma().fit(frame[["frequency", "monetary_value"]])
    spend_seconds = time.perf_counter() - start
    import gc

    gc.collect()
    before_clv = _common.current_rss_bytes()
    reset = _reset_peak()
    with CpuMeter() as clv_meter:
        start = time.perf_counter()
        clv = clvmodels.predictive_clv(
            fitted, spend, frame, horizon="12M", discount_rate=0.1, time_unit="W",
            n_draws=clv_draws, interval=0.94,
        )  # fmt: skip
        clv_seconds = time.perf_counter() - start
    clv_peak = _vm_hwm_bytes() if reset else _common.peak_rss_bytes()
    draws_used = min(clv_draws, len(fitted.posterior_samples()))
    out.update({
        "spend_params": {k: float(v) for k, v in spend.params_.items()},
        "spend_fit_seconds": spend_seconds,
        "clv_seconds": clv_seconds, "clv_draws": draws_used,
        "clv_cpu_seconds": clv_meter.cpu_seconds,
        "clv_other_cpu_seconds": clv_meter.other_cpu_seconds,
        "clv_rss_before_mib": before_clv / _common.MIB,
        "clv_peak_rss_mib": clv_peak / _common.MIB,
        "clv_peak_is_stage_only": reset,
        "clv_full_array_mib": draws_used * len(frame) * 8 / _common.MIB,
        "clv_rows": len(clv), "clv_columns": list(clv.columns),
        "clv_finite": bool(np.isfinite(clv.to_numpy()).all()),
        "clv_total_mean": float(clv["estimate"].sum()),
        "clv_mean_relative_sd": float((clv["sd"] / clv["estimate"]).median()),
    })  # fmt: skip
    return out


def worker_logp(tool: str, case: str, path: str, evaluations: int) -> dict[str, Any]:
    """Seconds per call of the model's joint log-density-and-gradient function (what
    NUTS calls per leapfrog step), and for clvmodels of its numpy likelihood alone."""
    import numpy as np

    _import_tool(tool)
    model_kind = CASES[case]["model"]
    frame = load_frame(path)
    out: dict[str, Any] = {"tool": tool, "case": case, "evaluations": evaluations}
    if tool == "clvmodels":
        from clvmodels import bayes
        from clvmodels.bayes._op import WeightedLogLikelihood

        cls = bayes.BGNBD if model_kind == "bgnbd" else bayes.ParetoNBD
        instance = cls()
        fitting = instance._fitting_twin()
        start = time.perf_counter()
        fitting.fit(frame[["frequency", "recency", "T"]])  # keeps the patterns
        out["mle_fit_seconds"] = time.perf_counter() - start
        arrays, weights = fitting._patterns
        params = fitting.params_.to_numpy()
        twin = cls.twin_class
        start = time.perf_counter()
        pymc_model = instance._build(arrays, weights)
        out["build_seconds"] = time.perf_counter() - start
        op = WeightedLogLikelihood(twin(), arrays, weights)
        out["patterns"] = len(weights)
        out["likelihood_seconds"] = _per_call(lambda: op.value_and_gradient(params), evaluations)
        out["likelihood_only_seconds"] = _per_call(
            lambda: twin()._loglik(params, arrays, True), evaluations
        )
        point = np.log(params)
    else:
        import warnings

        from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

        cls = BetaGeoModel if model_kind == "bgnbd" else ParetoNBDModel
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            instance = cls(data=frame[["customer_id", "frequency", "recency", "T"]])
            start = time.perf_counter()
            instance.build_model()
            out["build_seconds"] = time.perf_counter() - start
        pymc_model = instance.model
        point = None
    import contextlib

    import pytensor

    flags: Any = contextlib.nullcontext()
    if tool != "clvmodels" and model_kind == "pnbd":
        # as ParetoNBDModel.fit(method="mcmc") compiles it
        from pytensor.compile.mode import Mode, get_default_mode

        mode = get_default_mode()
        optimizer = mode.provided_optimizer.including("local_reduce_max_num_iters_hyp2f1_grad")
        flags = pytensor.config.change_flags(mode=Mode(linker=mode.linker, optimizer=optimizer))
    start = time.perf_counter()
    with flags:
        function = pymc_model.logp_dlogp_function(ravel_inputs=True)
    function.set_extra_values({})
    out["compile_seconds"] = time.perf_counter() - start
    initial = pymc_model.initial_point()
    vector = np.concatenate([np.ravel(initial[v.name]) for v in pymc_model.value_vars])
    if point is not None:
        vector = point  # the value variables are log(parameter), in parameter order
    out["logp_dlogp_seconds"] = _per_call(lambda: function(vector), evaluations)
    out["value_variables"] = [v.name for v in pymc_model.value_vars]
    return out


def _per_call(call: Any, evaluations: int) -> float:
    for _ in range(3):
        call()
    start = time.perf_counter()
    for _ in range(evaluations):
        call()
    return (time.perf_counter() - start) / evaluations


def worker_phases(case: str, path: str, settings: dict[str, int], seed: int) -> dict[str, Any]:
    """Wall time of the phases of one clvmodels fit (functions wrapped in this process)."""
    _import_tool("clvmodels")
    import pymc.sampling.mcmc as mcmc

    from clvmodels.bayes import _base
    from clvmodels.models import bgnbd, pnbd

    phases: dict[str, float] = {}

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:  # not in this version of the code
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - begin

        setattr(owner, name, timed)

    twin = bgnbd.BGNBD if CASES[case]["model"] == "bgnbd" else pnbd.ParetoNBD
    wrap(twin, "fit", "maximum-likelihood start")
    wrap(_base, "_positive_support", "prior support checks (in build)")
    wrap(_base.BayesianModel, "_build", "build PyMC model")
    wrap(mcmc, "init_nuts", "compile logp/dlogp + NUTS init")
    wrap(mcmc, "_mp_sample", "sampling (worker processes)")
    wrap(mcmc, "_sample_many", "sampling (sequential)")
    wrap(mcmc, "_sample_return", "InferenceData")
    wrap(_base.BayesianModel, "_attach_log_likelihood", "per-pattern log-lik. for LOO")
    wrap(_base.BayesianModel, "_set_posterior", "posterior summary")
    wrap(_base.BayesianModel, "_warn_diagnostics", "convergence check")
    frame = load_frame(path)
    start = time.perf_counter()
    _fit("clvmodels", CASES[case]["model"], frame, settings, seed, CORES)
    total = time.perf_counter() - start
    return {"case": case, "seconds": total, "phases": phases}


# ----------------------------------------------------------------- parent side


QUIET = {"max_wait_s": 0.0}


def wait_for_quiet(threshold: float = 0.25, window: float = 5.0) -> float:
    """Wait (at most ``--wait-quiet`` seconds) until other processes use less than
    ``threshold`` CPUs over ``window`` seconds; return the seconds waited."""
    waited = 0.0
    while waited < QUIET["max_wait_s"]:
        before = _machine_busy_seconds()
        time.sleep(window)
        waited += window
        if (_machine_busy_seconds() - before) / window < threshold:
            break
    if waited > 5.0:
        print(f"    (waited {waited:.0f} s for a quiet machine)", flush=True)
    return waited


def run(python: str, args: list[str], timeout: float, env: dict[str, str] | None = None
        ) -> dict[str, Any]:  # fmt: skip
    """Run this script's worker under ``python``; on timeout kill its process group."""
    if args[0] in ("fit", "large", "logp", "phases"):
        wait_for_quiet()
    command = [python, os.path.abspath(__file__), "--worker", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"worker {args} failed ({process.returncode}):\n{stderr[-4000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def anchor_info(python: str) -> dict[str, Any]:
    code = (
        "import json, platform\nfrom importlib import metadata\n"
        f"print(json.dumps({{'python': platform.python_version(), **{{p: metadata.version(p) "
        f"for p in {ANCHOR_PACKAGES!r}}}}}))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _print_run(run_: dict[str, Any], label: str = "") -> None:
    s = run_["settings"]
    print(
        f"  {run_['tool']:14s}{label} {s['chains']}x({s['tune']}+{s['draws']}) cores="
        f"{run_['cores']}: {run_['seconds']:7.2f} s (sampling {run_['sampling_time_s']:.2f} s, "
        f"import {run_['import_seconds']:.1f} s), min ESS {run_['min_ess_bulk']:,.0f}, "
        f"ESS/s {run_['min_ess_bulk'] / run_['seconds']:,.1f}, r_hat {run_['max_r_hat']:.4f}, "
        f"div {run_['divergences']}, steps/draw {run_['mean_n_steps']:.2f}, CPU "
        f"{run_['cpu_seconds']:.1f} s (other processes {run_['other_cpu_seconds']:.1f} s), peak "
        f"{run_['peak_rss_mib']:,.0f} MiB (+ sampler process {run_['child_peak_rss_mib']:,.0f} "
        f"MiB); means " + ", ".join(f"{k} {v:.4f}" for k, v in run_["means"].items()),
        flush=True,
    )


def median_row(case: str, tool: str, runs: list[dict[str, Any]], label: str = "") -> dict[str, Any]:
    med = _common.median_stats(runs)
    pick = {k: statistics.median(r[k] for r in runs) for k in (
        "min_ess_bulk", "max_r_hat", "mean_n_steps", "sampling_time_s", "child_peak_rss_mib",
        "import_seconds", "cpu_seconds", "other_cpu_seconds")}  # fmt: skip
    ess_per_s = statistics.median(r["min_ess_bulk"] / r["seconds"] for r in runs)
    return {
        "case": case, "tool": tool, "label": label, "settings": runs[0]["settings"],
        "cores": runs[0]["cores"], **med, **pick, "ess_per_second": ess_per_s,
        "divergences": [r["divergences"] for r in runs], "means": runs[0]["means"],
        "sds": runs[0]["sds"], "mle": runs[0].get("mle"),
    }  # fmt: skip


def markdown(rows: list[dict[str, Any]]) -> str:
    titles = ["case", "tool", "chains x (tune + draws)", "runs", "median wall (s)",
              "sampling (s)", "min bulk ESS", "ESS/s", "max r_hat", "divergences",
              "steps/draw", "CPU (s)", "others' CPU (s)", "peak RSS main / sampler (MiB)"]  # fmt: skip
    lines = _common.markdown_header(titles, "lllrrrrrrrrrrr")
    for r in rows:
        s = r["settings"]
        lines.append(_common.markdown_row([
            r["case"], r["tool"] + r["label"], f"{s['chains']} x ({s['tune']} + {s['draws']})",
            r["repeats"], f"{r['seconds']:.1f}", f"{r['sampling_time_s']:.1f}",
            f"{r['min_ess_bulk']:,.0f}", f"{r['ess_per_second']:,.1f}", f"{r['max_r_hat']:.3f}",
            "/".join(map(str, r["divergences"])), f"{r['mean_n_steps']:.1f}",
            f"{r['cpu_seconds']:.1f}", f"{r['other_cpu_seconds']:.1f}",
            f"{r['peak_rss_mib']:,.0f} / {r['child_peak_rss_mib']:,.0f}",
        ]))  # fmt: skip
    lines += ["", *_common.markdown_header(["case", "tool", "posterior mean (sd)"], "lll")]
    for r in rows:
        text = ", ".join(f"{k} {v:.3f} ({r['sds'][k]:.3f})" for k, v in r["means"].items())
        lines.append(_common.markdown_row([r["case"], r["tool"] + r["label"], text]))
        if r.get("mle"):
            mle = ", ".join(f"{k} {v:.3f}" for k, v in r["mle"].items())
            lines.append(_common.markdown_row([r["case"], "(maximum likelihood)", mle]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(CASES),
        help=f"comma-separated cases (default all: {','.join(CASES)})",
    )
    parser.add_argument(
        "--anchor-python",
        help="interpreter with pymc-marketing 0.19 (default: this one, if it has pymc_marketing)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per tool")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="one more run per tool with an empty PyTensor cache (CDNOW BG/NBD)",
    )
    parser.add_argument(
        "--anchor-default-cores",
        action="store_true",
        help="one pymc-marketing run with PyMC's default cores (CDNOW BG/NBD)",
    )
    parser.add_argument(
        "--anchor-pnbd-full",
        action="store_true",
        help="also try pymc-marketing's Pareto/NBD at 4 x (1000 + 1000), 10 min max",
    )
    parser.add_argument("--large-customers", type=int, default=1_000_000)
    parser.add_argument("--large-chains", type=int, default=4)
    parser.add_argument("--large-tune", type=int, default=1000)
    parser.add_argument("--large-draws", type=int, default=1000)
    parser.add_argument("--large-repeats", type=int, default=1)
    parser.add_argument(
        "--clv-draws",
        type=int,
        default=500,
        help="posterior draws for predictive_clv (0: skip the CLV)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="per-call log-density cost and a phase breakdown"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to this long for other processes to go idle",
    )
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "cdnow":
            result = write_cdnow(rest[0])
        elif kind == "simulate":
            result = write_simulated(rest[0], int(rest[1]), int(rest[2]))
        elif kind == "fit":  # tool case path settings seed cores
            cores = None if rest[5] == "-" else int(rest[5])
            result = worker_fit(rest[0], rest[1], rest[2], json.loads(rest[3]), int(rest[4]),
                                cores)  # fmt: skip
        elif kind == "large":  # path settings seed clv_draws
            result = worker_large(rest[0], json.loads(rest[1]), int(rest[2]), int(rest[3]))
        elif kind == "logp":  # tool case path evaluations
            result = worker_logp(rest[0], rest[1], rest[2], int(rest[3]))
        else:  # phases: case path settings seed
            result = worker_phases(rest[0], rest[1], json.loads(rest[2]), int(rest[3]))
        print(json.dumps(result))
        return 0

    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    QUIET["max_wait_s"] = args.wait_quiet
    ours = sys.executable
    anchor = args.anchor_python or sys.executable
    info = _common.machine_info(PACKAGES)
    _common.print_machine(info)
    needs_anchor = any(c != "sim_bgnbd_1m" for c in cases)
    anchor_versions = anchor_info(anchor) if needs_anchor else {}
    if needs_anchor:
        print(f"  anchor            {anchor}: {anchor_versions}")

    datasets: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"logp": [], "phases": [], "notes": []}

    def save() -> None:  # after every case, so that a failure keeps what was measured
        if args.json:
            with open(args.json, "w") as out:
                json.dump({
                    "machine": info, "anchor": {"python": anchor, **anchor_versions},
                    "seed": args.seed, "datasets": datasets, "runs": runs, "medians": rows,
                    **extra, "command": [os.path.basename(sys.executable), *sys.argv],
                }, out, indent=2)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench_bayes_") as tmp:
        cdnow = os.path.join(tmp, "cdnow.npz")
        if needs_anchor:
            datasets["cdnow"] = run(ours, ["cdnow", cdnow], 600)
            print(f"\nCDNOW calibration: {datasets['cdnow']}", flush=True)
        for case in cases:
            save()
            print(f"\n{case}: {CASES[case]['description']}", flush=True)
            if case == "sim_bgnbd_1m":
                path = os.path.join(tmp, "sim.npz")
                datasets[case] = run(ours, ["simulate", path, str(args.large_customers),
                                            str(args.seed)], 1800)  # fmt: skip
                print(f"  data: {datasets[case]}", flush=True)
                settings = {"chains": args.large_chains, "tune": args.large_tune,
                            "draws": args.large_draws}  # fmt: skip
                large_runs = []
                for repeat in range(args.large_repeats):
                    result = run(ours, ["large", path, json.dumps(settings),
                                        str(args.seed + repeat), str(args.clv_draws)],
                                 TIMEOUT_S)  # fmt: skip
                    result["repeat"] = repeat
                    _print_run(result)
                    if "clv_seconds" in result:
                        print(f"  predictive_clv ({result['clv_draws']} draws, 1M customers): "
                              f"{result['clv_seconds']:.1f} s, peak RSS in that stage "
                              f"{result['clv_peak_rss_mib']:,.0f} MiB (before "
                              f"{result['clv_rss_before_mib']:,.0f} MiB); a full draws x "
                              f"customers float64 array: {result['clv_full_array_mib']:,.0f} MiB",
                              flush=True)  # fmt: skip
                    large_runs.append(result)
                runs += large_runs
                rows.append(median_row(case, "clvmodels", large_runs))
                extra["large"] = large_runs
                continue

            for tool, python in (("clvmodels", ours), ("pymc-marketing", anchor)):
                warm = run(python, ["fit", tool, case, cdnow, json.dumps(WARMUP),
                                    str(args.seed), str(CORES)], TIMEOUT_S)  # fmt: skip
                print(f"  warm-up {tool}: {warm['seconds']:.1f} s (untimed)", flush=True)
            if args.cold and case == "cdnow_bgnbd":
                for tool, python in (("clvmodels", ours), ("pymc-marketing", anchor)):
                    settings = CASES[case]["settings"][tool]
                    with tempfile.TemporaryDirectory(prefix="pytensor_cold_") as cache:
                        result = run(python, ["fit", tool, case, cdnow, json.dumps(settings),
                                              str(args.seed), str(CORES)], TIMEOUT_S,
                                     env={"PYTENSOR_FLAGS": f"base_compiledir={cache}"})  # fmt: skip
                    result["label"] = " (empty compile cache)"
                    _print_run(result, result["label"])
                    runs.append(result)
                    rows.append(median_row(case, tool, [result], result["label"]))
            case_runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TOOLS}
            for repeat in range(args.repeats):
                for tool, python in (("clvmodels", ours), ("pymc-marketing", anchor)):
                    previous = case_runs[tool]
                    if previous and previous[0]["seconds"] > SLOW_S:
                        continue
                    settings = CASES[case]["settings"][tool]
                    result = run(python, ["fit", tool, case, cdnow, json.dumps(settings),
                                          str(args.seed + repeat), str(CORES)], TIMEOUT_S)  # fmt: skip
                    result["repeat"] = repeat
                    _print_run(result)
                    previous.append(result)
            for tool in TOOLS:
                runs += case_runs[tool]
                if case_runs[tool]:  # none with --repeats 0 (e.g. only --profile)
                    rows.append(median_row(case, tool, case_runs[tool]))
            if args.anchor_default_cores and case == "cdnow_bgnbd":
                settings = CASES[case]["settings"]["pymc-marketing"]
                result = run(anchor, ["fit", "pymc-marketing", case, cdnow, json.dumps(settings),
                                      str(args.seed), "-"], TIMEOUT_S)  # fmt: skip
                result["label"] = " (PyMC default cores)"
                _print_run(result, result["label"])
                runs.append(result)
                rows.append(median_row(case, "pymc-marketing", [result], result["label"]))
            if args.anchor_pnbd_full and case == "cdnow_pnbd":
                settings = {"chains": 4, "tune": 1000, "draws": 1000}
                try:
                    result = run(anchor, ["fit", "pymc-marketing", case, cdnow,
                                          json.dumps(settings), str(args.seed), str(CORES)],
                                 FULL_PNBD_LIMIT_S)  # fmt: skip
                    result["label"] = " (4 x (1000 + 1000))"
                    _print_run(result, result["label"])
                    runs.append(result)
                    rows.append(median_row(case, "pymc-marketing", [result], result["label"]))
                except subprocess.TimeoutExpired:
                    note = (f"pymc-marketing ParetoNBDModel 4 x (1000 + 1000) did not finish "
                            f"in {FULL_PNBD_LIMIT_S:.0f} s")  # fmt: skip
                    print(f"  {note}", flush=True)
                    extra["notes"].append(note)
            if args.profile:
                for tool, python in (("clvmodels", ours), ("pymc-marketing", anchor)):
                    result = run(python, ["logp", tool, case, cdnow, "300"], TIMEOUT_S)
                    extra["logp"].append(result)
                    print(f"  per call {tool}: logp+dlogp {result['logp_dlogp_seconds'] * 1e3:.3f} ms"
                          + (f", numpy likelihood + weighting {result['likelihood_seconds'] * 1e3:.3f} ms"
                             f" (likelihood alone {result['likelihood_only_seconds'] * 1e3:.3f} ms)"
                             if tool == "clvmodels" else "")
                          + f"; build {result['build_seconds']:.2f} s, compile "
                          f"{result['compile_seconds']:.2f} s", flush=True)  # fmt: skip
                if case != "cdnow_bgnbd":  # one more full fit; for BG/NBD only
                    continue
                settings = CASES[case]["settings"]["clvmodels"]
                try:
                    result = run(ours, ["phases", case, cdnow, json.dumps(settings),
                                        str(args.seed)], TIMEOUT_S)  # fmt: skip
                except RuntimeError as error:
                    print(f"  phases failed: {error}", flush=True)
                    continue
                extra["phases"].append(result)
                print(
                    f"  phases of one clvmodels fit ({result['seconds']:.2f} s): "
                    + ", ".join(f"{k} {v:.2f} s" for k, v in result["phases"].items()),
                    flush=True,
                )

    print("\nMedians")
    for r in rows:
        s = r["settings"]
        print(f"  {r['case']:13s} {r['tool'] + r['label']:40s} {s['chains']}x({s['tune']}+"
              f"{s['draws']}) {r['seconds']:8.2f} s over {r['repeats']} run(s), ESS/s "
              f"{r['ess_per_second']:.1f}")  # fmt: skip
    if args.markdown:
        print("\n" + markdown(rows))
    if args.json:
        save()
        print(f"\nWrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

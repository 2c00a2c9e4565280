"""A compact No-U-Turn sampler in numpy for the low-dimensional posteriors of clvmodels.

PyMC's NUTS spends about 0.15 ms of Python per leapfrog step on its tree bookkeeping,
more than the log density of a BG/NBD posterior on compressed CDNOW patterns; the
posteriors here have two to four parameters, so the sampler's own arithmetic is tiny
and what matters is how little it does per step. This module is the sampler of
``sampler="clvmodels"`` (the default of :meth:`BayesianModel.fit`); the log density
it samples is PyMC's model (priors, Jacobian, the shared likelihood Op), compiled once.

The algorithm is Stan's (Stan Reference Manual, "MCMC sampling"; Betancourt 2017,
"A Conceptual Introduction to Hamiltonian Monte Carlo", arXiv:1701.02434):

* NUTS with multinomial sampling of the trajectory: uniform (weights exp(-H)) within a
  subtree, biased progressive sampling when a subtree is added to the trajectory
  (Betancourt 2017, sec. A.3.2);
* the generalised no-U-turn criterion on the momenta p and p# = M^-1 p at the ends of
  every subtree, plus the two extra checks across the join of two subtrees that Stan
  adds since version 2.26 (they catch U-turns between neighbouring subtrees);
* divergence when the energy error exceeds 1000; tree depth at most ``max_treedepth``;
* step size by dual averaging (Hoffman and Gelman 2014, JMLR 15, Algorithm 6, with
  gamma = 0.05, t0 = 10, kappa = 0.75, mu = log(10 eps0), eps0 from Stan's heuristic),
  running through the whole warm-up as PyMC's does. Stan restarts it after each metric
  update; on CDNOW's BG/NBD that leaves the final step about 25 % shorter (acceptance
  0.90 for a target of 0.8) and costs 5 instead of 3 leapfrog steps per draw, even with
  a single restart at the one metric update of an informed start (Pareto/NBD: 6.1
  instead of 4.5 steps per draw, for 0 instead of 0-1 divergences in 4,000 draws);
* a dense metric (the inverse mass matrix, an estimate of the posterior covariance on
  the unconstrained scale) learnt in Stan's windowed warm-up (buffers of 75 and 50
  iterations, windows of 25, 50, 100, ...), each estimate shrunk towards 1e-3 I as
  Stan does: (n / (n + 5)) S + 1e-3 (5 / (n + 5)) I. Where the caller has a good
  starting matrix (the maximum-likelihood covariance of the log parameters), the
  metric starts there and is re-estimated once, from one window spanning the slow
  phase: the short early windows exist to escape a poor start, and with a good one
  their noisy estimates only disturb the step size (BG/NBD, 300,000 simulated
  customers: 4.9 leapfrog steps per draw with the doubling windows, 2.9 with one).

Chains are independent: each has its own generator seeded from (seed, chain), so the
draws do not depend on how many processes run them.

Progress goes to the logger ``clvmodels.bayes`` at level INFO (nothing is printed
unless logging is set up; ``clvmodels run`` forwards it to its log, on a terminal or
not): one line when sampling starts, then one at each further tenth of all
iterations once the run has taken ``_PROGRESS_AFTER`` seconds, so a long run says how
far it is and a short one (tests) stays quiet. Chains in forked processes report to
the parent through a queue.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import queue as queue_module
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

__all__ = ["NutsResult", "sample_nuts"]

LogDensity = Callable[[np.ndarray], tuple[float, np.ndarray]]

_MAX_DELTA_H = 1000.0
_LOG_08 = math.log(0.8)
_LOG = logging.getLogger("clvmodels.bayes")
# Progress lines start once a run has taken this many seconds (see the module docstring);
# chains report every hundredth of their iterations.
_PROGRESS_AFTER = 5.0
_REPORTS_PER_CHAIN = 100


@dataclass
class NutsResult:
    """Draws (chain, draw, dimension) on the unconstrained scale and per-draw statistics
    (chain, draw): the names of ArviZ's ``sample_stats``."""

    draws: np.ndarray
    stats: dict[str, np.ndarray]


@dataclass
class _Point:
    """A state of the Hamiltonian system: position, momentum, log density, gradient."""

    q: np.ndarray
    p: np.ndarray
    logp: float
    grad: np.ndarray


class _Subtree(NamedTuple):
    """A built subtree of the trajectory (Betancourt 2017, sec. A.3.2)."""

    valid: bool  # False after a divergence or a U-turn inside it
    edge: _Point  # its last state in the direction of travel
    proposal: _Point  # the state sampled from it
    log_weight: float  # log of the sum of exp(-H) over its states, relative to H0
    rho: np.ndarray  # the sum of its momenta
    sharp_begin: np.ndarray  # M^-1 p at its first and last states
    sharp_end: np.ndarray
    p_begin: np.ndarray  # p at its first and last states
    p_end: np.ndarray


class _Transition(NamedTuple):
    """One NUTS iteration: the new state and the statistics ArviZ's sample_stats keep."""

    point: _Point
    diverging: bool
    tree_depth: int
    n_steps: int
    acceptance_rate: float
    energy: float
    step_size: float


_STATISTICS = ("diverging", "tree_depth", "n_steps", "acceptance_rate", "energy", "step_size")


class _Chain:
    """One chain's state: the metric, the step size and the tree building."""

    def __init__(self, logp_grad: LogDensity, rng: np.random.Generator, covariance: np.ndarray,
                 max_treedepth: int) -> None:  # fmt: skip
        self.logp_grad = logp_grad
        self.rng = rng
        self.max_treedepth = max_treedepth
        self.set_metric(covariance)
        self.step_size = 1.0

    # ------------------------------------------------------------------ metric
    def set_metric(self, covariance: np.ndarray) -> None:
        self.covariance = covariance
        # p ~ N(0, covariance^-1): p = L^-T z with covariance = L L^T
        self.chol = np.linalg.cholesky(covariance)

    def draw_momentum(self) -> np.ndarray:
        z = self.rng.standard_normal(self.covariance.shape[0])
        return np.linalg.solve(self.chol.T, z)

    def kinetic(self, p: np.ndarray) -> float:
        return 0.5 * float(p @ self.covariance @ p)

    # -------------------------------------------------------------- dynamics
    def evaluate(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        """The log density and its gradient; -inf (and a zero gradient) where either is
        not finite. Callers hold ``np.errstate`` for the step they take."""
        logp, grad = self.logp_grad(q)
        logp = float(logp)
        if not math.isfinite(logp) or not np.all(np.isfinite(grad)):
            return -math.inf, np.zeros_like(q)
        return logp, np.asarray(grad, dtype=np.float64)

    def leapfrog(self, point: _Point, eps: float) -> _Point:
        p = point.p + 0.5 * eps * point.grad
        q = point.q + eps * (self.covariance @ p)
        logp, grad = self.evaluate(q)
        return _Point(q, p + 0.5 * eps * grad, logp, grad)

    def hamiltonian(self, point: _Point) -> float:
        return -point.logp + self.kinetic(point.p)

    # ------------------------------------------------------------ tree building
    def build_tree(self, depth: int, edge: _Point, direction: int, h0: float) -> _Subtree:
        """Extend the trajectory from ``edge`` by 2**depth steps in ``direction``."""
        if depth == 0:
            return self._one_step(edge, direction, h0)
        first = self.build_tree(depth - 1, edge, direction, h0)
        if not first.valid:
            return first
        second = self.build_tree(depth - 1, first.edge, direction, h0)
        if not second.valid:
            return second
        log_w = _log_add(first.log_weight, second.log_weight)
        # uniform multinomial sampling within a subtree
        take_second = self.rng.uniform() < math.exp(second.log_weight - log_w)
        rho = first.rho + second.rho
        return _Subtree(
            valid=_joined_without_u_turn(first, second, rho),
            edge=second.edge,
            proposal=second.proposal if take_second else first.proposal,
            log_weight=log_w, rho=rho,
            sharp_begin=first.sharp_begin, sharp_end=second.sharp_end,
            p_begin=first.p_begin, p_end=second.p_end,
        )  # fmt: skip

    def _one_step(self, edge: _Point, direction: int, h0: float) -> _Subtree:
        """The subtree of one leapfrog step (depth 0)."""
        # a step far out may overflow (its position, the density, the kinetic energy):
        # it then has H = inf and counts as divergent, so its warnings are not news
        with np.errstate(all="ignore"):
            point = self.leapfrog(edge, direction * self.step_size)
            h = self.hamiltonian(point)
        self.n_steps += 1
        if math.isnan(h):
            h = math.inf
        if h - h0 > _MAX_DELTA_H:
            self.divergent = True
        delta = h0 - h
        self.sum_accept += 1.0 if delta > 0 else math.exp(delta)
        sharp = self.covariance @ point.p
        return _Subtree(
            valid=not self.divergent, edge=point, proposal=point, log_weight=delta,
            rho=point.p.copy(), sharp_begin=sharp, sharp_end=sharp,
            p_begin=point.p, p_end=point.p,
        )  # fmt: skip

    def transition(self, q: np.ndarray, logp: float, grad: np.ndarray) -> _Transition:
        """One NUTS iteration from ``q``: trees doubled in random directions until a
        U-turn, a divergence or ``max_treedepth``."""
        p0 = self.draw_momentum()
        start = _Point(q, p0, logp, grad)
        h0 = self.hamiltonian(start)
        sharp0 = self.covariance @ p0
        # the whole trajectory so far, as a subtree whose ends are its two edges
        minus = plus = _Subtree(True, start, start, 0.0, p0.copy(), sharp0, sharp0, p0, p0)
        sample, log_w, rho = start, 0.0, p0.copy()
        self.n_steps, self.sum_accept, self.divergent = 0, 0.0, False
        depth = 0
        while depth < self.max_treedepth:
            direction = 1 if self.rng.uniform() < 0.5 else -1
            grown = self.build_tree(depth, (plus if direction == 1 else minus).edge,
                                    direction, h0)  # fmt: skip
            if not grown.valid:
                break
            depth += 1
            # biased progressive sampling: favour the new subtree
            if grown.log_weight > log_w or self.rng.uniform() < math.exp(grown.log_weight - log_w):
                sample = grown.proposal
            log_w = _log_add(log_w, grown.log_weight)
            if direction == 1:
                persist = _extended_without_u_turn(minus, plus, grown, rho, forward=True)
                plus = grown
            else:
                persist = _extended_without_u_turn(minus, plus, grown, rho, forward=False)
                minus = grown
            rho = rho + grown.rho
            if not persist:
                break
        return _Transition(
            point=sample, diverging=self.divergent, tree_depth=depth, n_steps=self.n_steps,
            acceptance_rate=self.sum_accept / max(self.n_steps, 1),
            energy=self.hamiltonian(sample), step_size=self.step_size,
        )  # fmt: skip

    # --------------------------------------------------------------- step size
    def initial_step_size(self, q: np.ndarray, logp: float, grad: np.ndarray) -> None:
        """Stan's heuristic: double or halve the step until one leapfrog step's
        acceptance probability crosses 0.8."""
        direction = 0
        for _ in range(100):
            p = self.draw_momentum()
            start = _Point(q, p, logp, grad)
            h0 = self.hamiltonian(start)
            with np.errstate(all="ignore"):  # a trial step may overflow: H = inf
                h = self.hamiltonian(self.leapfrog(start, self.step_size))
            delta = h0 - h if math.isfinite(h) else -math.inf
            if direction == 0:
                direction = 1 if delta > _LOG_08 else -1
            if direction == 1 and not delta > _LOG_08:
                return
            if direction == -1 and not delta < _LOG_08:
                return
            self.step_size = self.step_size * 2.0 if direction == 1 else self.step_size / 2.0
            if not 1e-8 < self.step_size < 1e7:
                self.step_size = min(max(self.step_size, 1e-8), 1e7)
                return


class _DualAveraging:
    """Hoffman and Gelman (2014), Algorithm 6, with Stan's constants."""

    def __init__(self, step_size: float, target: float) -> None:
        self.mu = math.log(10.0 * step_size)
        self.counter, self.s_bar, self.x_bar = 0, 0.0, 0.0
        self.target = target

    def update(self, accept: float) -> float:
        """The next step size after an iteration with mean acceptance ``accept``."""
        self.counter += 1
        accept = min(1.0, accept)
        eta = 1.0 / (self.counter + 10.0)
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept)
        x = self.mu - self.s_bar * math.sqrt(self.counter) / 0.05
        weight = self.counter**-0.75
        self.x_bar = weight * x + (1.0 - weight) * self.x_bar
        return math.exp(x)

    def final(self) -> float:
        return math.exp(self.x_bar)


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for finite or -inf arguments."""
    high, low = (a, b) if a >= b else (b, a)
    if low == -math.inf:
        return high
    return high + math.log1p(math.exp(low - high))


def _no_u_turn(sharp_left: np.ndarray, sharp_right: np.ndarray, rho: np.ndarray) -> bool:
    """The generalised no-U-turn criterion between two ends with summed momentum rho."""
    return float(sharp_right @ rho) > 0.0 and float(sharp_left @ rho) > 0.0


def _joined_without_u_turn(first: _Subtree, second: _Subtree, rho: np.ndarray) -> bool:
    """No U-turn across two neighbouring subtrees joined into one: over the whole, and
    (Stan >= 2.26) between each subtree and the first state of the other."""
    return (
        _no_u_turn(first.sharp_begin, second.sharp_end, rho)
        and _no_u_turn(first.sharp_begin, second.sharp_begin, first.rho + second.p_begin)
        and _no_u_turn(first.sharp_end, second.sharp_end, second.rho + first.p_end)
    )


def _extended_without_u_turn(minus: _Subtree, plus: _Subtree, grown: _Subtree,
                             rho: np.ndarray, *, forward: bool) -> bool:  # fmt: skip
    """No U-turn after the trajectory (momentum sum ``rho``) grew by ``grown`` at its
    forward or backward end. ``minus`` and ``plus`` are the subtrees last added at each
    end (the start state at first): their ``sharp_end`` and ``p_end`` are the
    trajectory's outermost states."""
    total = rho + grown.rho
    if forward:
        return (
            _no_u_turn(minus.sharp_end, grown.sharp_end, total)
            and _no_u_turn(minus.sharp_end, grown.sharp_begin, rho + grown.p_begin)
            and _no_u_turn(plus.sharp_end, grown.sharp_end, grown.rho + plus.p_end)
        )
    return (
        _no_u_turn(grown.sharp_end, plus.sharp_end, total)
        and _no_u_turn(grown.sharp_begin, plus.sharp_end, rho + grown.p_begin)
        and _no_u_turn(grown.sharp_end, minus.sharp_end, grown.rho + minus.p_end)
    )


class _Windows(NamedTuple):
    """Where the metric is learnt during warm-up."""

    first: int  # the first iteration of the first window (after the initial buffer)
    ends: set[int]  # the iterations (0-based) after which the metric is re-estimated


def _windows(tune: int, informed: bool = False) -> _Windows:
    """Stan's windowed warm-up: the first iteration of the first window, and the
    iterations (0-based) after which the metric is updated; one window only where the
    metric starts ``informed``.

    As Stan's ``compute_next_window`` for warm-ups of 150 and more. For 20-149 Stan
    shrinks the buffers to 15 % and 10 % but (without a ``restart()``) never ends the
    window; here that one shrunk window does update the metric."""
    init, term, window = 75, 50, 25
    if tune < 20:
        return _Windows(tune, set())
    if init + term + window > tune:
        init, term = int(0.15 * tune), int(0.1 * tune)
        window = tune - init - term
    last = tune - term - 1  # the last iteration of the slow phase
    if informed:
        return _Windows(init, {last})
    # The first window keeps its base size; each later one doubles, and one that would
    # leave less than twice its own size before the terminal buffer stretches to it.
    ends, end, size = set(), init + window - 1, window
    while True:
        ends.add(end)
        if end == last:
            return _Windows(init, ends)
        size *= 2
        end += size
        if end + 2 * size > last:
            end = last


def _window_start(ends: set[int], iteration: int, init: int) -> int:
    earlier = [e for e in ends if e < iteration]
    return max(earlier) + 1 if earlier else init


def _regularised(samples: np.ndarray) -> np.ndarray:
    n, dim = samples.shape
    covariance = np.atleast_2d(np.cov(samples, rowvar=False))
    return (n / (n + 5.0)) * covariance + 1e-3 * (5.0 / (n + 5.0)) * np.eye(dim)


def run_chain(logp_grad: LogDensity, start: np.ndarray, *, draws: int, tune: int, seed: Any,
              covariance: np.ndarray | None, target_accept: float, max_treedepth: int,
              report: Callable[[int], None] | None = None,
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """One chain: ``tune`` warm-up iterations (not kept), then ``draws``; ``report``
    (if given) is called with the iterations done, every hundredth of them."""
    dim = start.size
    rng = np.random.default_rng(seed)
    chain = _Chain(logp_grad, rng, np.eye(dim) if covariance is None else covariance,
                   max_treedepth)  # fmt: skip
    return _run(chain, start, draws=draws, tune=tune, target_accept=target_accept,
                windows=_windows(tune, informed=covariance is not None),
                report=report)  # fmt: skip


class _WarmUp:
    """Adaptation during warm-up: the step size by dual averaging at every iteration,
    the metric from the draws of each window as it ends."""

    def __init__(self, chain: _Chain, tune: int, windows: _Windows, target_accept: float,
                 dim: int) -> None:  # fmt: skip
        self.chain, self.tune, self.windows = chain, tune, windows
        self.step_size = _DualAveraging(chain.step_size, target_accept)
        self.draws = np.empty((tune, dim))

    def adapt(self, iteration: int, result: _Transition) -> None:
        chain = self.chain
        self.draws[iteration] = result.point.q
        chain.step_size = self.step_size.update(result.acceptance_rate)
        if iteration in self.windows.ends:
            first = _window_start(self.windows.ends, iteration, self.windows.first)
            chain.set_metric(_regularised(self.draws[first : iteration + 1]))
        if iteration == self.tune - 1:
            chain.step_size = self.step_size.final()


def _run(chain: _Chain, start: np.ndarray, *, draws: int, tune: int, target_accept: float,
         windows: _Windows, report: Callable[[int], None] | None = None,
         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    dim = start.size
    q = np.asarray(start, dtype=np.float64).copy()
    with np.errstate(all="ignore"):  # a start outside the support is refused below
        logp, grad = chain.evaluate(q)
    if not math.isfinite(logp):
        raise FloatingPointError("the log density is not finite at the start")
    chain.initial_step_size(q, logp, grad)
    warm_up = _WarmUp(chain, tune, windows, target_accept, dim)
    out = np.empty((draws, dim))
    stats = {name: np.empty(draws) for name in (*_STATISTICS, "lp")}
    every = max(1, (tune + draws) // _REPORTS_PER_CHAIN)
    for iteration in range(tune + draws):
        if report is not None and iteration % every == 0 and iteration:
            report(iteration)
        result = chain.transition(q, logp, grad)
        q, logp, grad = result.point.q, result.point.logp, result.point.grad
        if iteration < tune:
            warm_up.adapt(iteration, result)
            continue
        k = iteration - tune
        out[k] = q
        for name in _STATISTICS:
            stats[name][k] = getattr(result, name)
        stats["lp"][k] = logp
    if report is not None:
        report(tune + draws)
    stats["diverging"] = stats["diverging"].astype(bool)
    stats["tree_depth"] = stats["tree_depth"].astype(np.int64)
    stats["n_steps"] = stats["n_steps"].astype(np.int64)
    return out, stats


# The work of a chain process: set in the child by the pool's initializer; with the fork
# start method the initializer's arguments are inherited, not pickled, so the compiled
# log density needs no pickling.
_TASK: dict[str, Any] = {}


def _set_task(task: dict[str, Any]) -> None:
    _TASK.update(task)


def _chain_in_child(chain: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    task = _TASK
    channel = task.get("progress")
    report = None if channel is None else (lambda done: channel.put((chain, done)))
    return run_chain(task["logp_grad"], task["starts"][chain], seed=task["seeds"][chain],
                     report=report, **task["settings"])  # fmt: skip


class _Progress:
    """Progress lines of a run on the logger ``clvmodels.bayes`` (module docstring)."""

    def __init__(self, chains: int, per_chain: int, processes: int, tune: int) -> None:
        self.done = [0] * chains
        self.per_chain = max(per_chain, 1)
        self.total = chains * self.per_chain
        self.start = time.perf_counter()
        self.reported = 0  # tenths of all iterations already said
        where = f"in {processes} processes" if processes > 1 else "one after another"
        _LOG.info("NUTS: %d chain%s of %s warm-up + %s draws, %s", chains,
                  "s" if chains > 1 else "", f"{tune:,}", f"{per_chain - tune:,}", where)

    def update(self, chain: int, done: int) -> None:
        self.done[chain] = done
        total_done = sum(self.done)
        tenth = 10 * total_done // self.total
        elapsed = time.perf_counter() - self.start
        if tenth <= self.reported or elapsed < _PROGRESS_AFTER:
            return
        self.reported = tenth
        finished = sum(d >= self.per_chain for d in self.done)
        left = elapsed * (self.total - total_done) / max(total_done, 1)
        _LOG.info("NUTS: %d %% of %s iterations after %.0f s, about %.0f s left (%d of %d "
                  "chains finished)", 10 * tenth, f"{self.total:,}", elapsed, left, finished,
                  len(self.done))  # fmt: skip


def _drain(channel: Any, progress: _Progress) -> None:
    """Pass every report waiting in ``channel`` to ``progress``."""
    while True:
        try:
            chain, done = channel.get_nowait()
        except queue_module.Empty:
            return
        progress.update(chain, done)


def _drain_last(channel: Any, progress: _Progress, patience: float = 5.0) -> None:
    """After the chains returned: the reports still in flight (a child's queue feeds
    the pipe from its own thread, so its last reports can arrive after its result),
    until every chain has reported its end or ``patience`` seconds pass."""
    deadline = time.perf_counter() + patience
    while min(progress.done) < progress.per_chain:
        try:
            chain, done = channel.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue_module.Empty:
            return
        progress.update(chain, done)


def _fork_refusal() -> str | None:
    """Why this (Linux) process must not fork now, or None: not in a daemonic process
    (it may not have children), not while another non-daemon Python thread runs (it may
    hold a lock the child would wait on for ever). Daemon threads, such as a Jupyter
    kernel's message threads, are service loops and do not stop the fork."""
    if multiprocessing.current_process().daemon:
        return "this is a daemonic process, which may not start processes"
    current = threading.current_thread()
    others = [thread.name for thread in threading.enumerate()
              if thread is not current and not thread.daemon and thread.is_alive()]  # fmt: skip
    if others:
        return (f"{len(others)} other Python thread(s) run ({', '.join(others[:3])}), and "
                "forking beside them can deadlock")  # fmt: skip
    return None


def _processes(cores: int) -> int:
    """How many processes can run the chains: ``cores`` where forking is possible, else
    1. Only on Linux (macOS's system libraries are not fork-safe; Windows cannot fork);
    there, a refusal (:func:`_fork_refusal`) is said in a warning."""
    if cores == 1 or not sys.platform.startswith("linux"):
        return 1
    reason = _fork_refusal()
    if reason is not None:
        warnings.warn(f"NUTS chains run one after another, not in {cores} processes: "
                      f"{reason}.", UserWarning, stacklevel=4)  # fmt: skip
        return 1
    return cores


def _forked(task: dict[str, Any], chains: int, cores: int,
            progress: _Progress | None = None) -> list | None:  # fmt: skip
    """Run the chains in ``cores`` forked processes (``_processes`` said forking is
    possible); None where the processes cannot be had."""
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork when the process has any other OS thread; here those
        # are native pools (OpenBLAS), which register fork handlers, and at most daemon
        # Python threads (see _fork_refusal)
        warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork",
                                category=DeprecationWarning)  # fmt: skip
        channel = context.Queue() if progress is not None else None
        try:
            pool = context.Pool(processes=cores, initializer=_set_task,
                                initargs=({**task, "progress": channel},))  # fmt: skip
        except OSError:  # no processes to be had (limits, memory): run serially
            return None
    with pool:
        pending = pool.map_async(_chain_in_child, range(chains), chunksize=1)
        if channel is not None and progress is not None:
            while not pending.ready():
                pending.wait(0.25)
                _drain(channel, progress)
            _drain_last(channel, progress)
        return pending.get()


def sample_nuts(logp_grad: LogDensity, starts: np.ndarray, *, draws: int, tune: int,
                random_seed: int, covariance: np.ndarray | None = None,
                target_accept: float = 0.8, max_treedepth: int = 10,
                cores: int = 1) -> NutsResult:  # fmt: skip
    """NUTS chains from ``starts`` (chain, dimension) on ``logp_grad`` (the log density
    and its gradient on the unconstrained scale).

    ``cores`` > 1 runs chains in forked processes where forking is safe (Linux, no
    other non-daemon Python thread, not itself a daemonic process; see
    :func:`_fork_refusal`), else one after another, with a warning on Linux; the draws
    are the same either way.

    Examples
    --------
    >>> import numpy as np
    >>> from clvmodels.bayes._nuts import sample_nuts
    >>> def standard_normal(x):
    ...     return -0.5 * float(x @ x), -x
    >>> result = sample_nuts(standard_normal, np.zeros((2, 3)), draws=500, tune=300,
    ...                      random_seed=1)
    >>> result.draws.shape, bool(abs(result.draws.mean()) < 0.1)
    ((2, 500, 3), True)
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    chains = starts.shape[0]
    seeds = [[int(random_seed), chain, 1701] for chain in range(chains)]
    settings = {"draws": draws, "tune": tune, "covariance": covariance,
                "target_accept": target_accept, "max_treedepth": max_treedepth}  # fmt: skip
    cores = _processes(max(1, min(int(cores), chains)))
    task = {"logp_grad": logp_grad, "starts": starts, "seeds": seeds, "settings": settings}
    # (after the decision to fork: the first line says how the chains run)
    progress = (_Progress(chains, tune + draws, cores, tune)
                if _LOG.isEnabledFor(logging.INFO) else None)  # fmt: skip
    results = _forked(task, chains, cores, progress) if cores > 1 else None
    if results is None:
        results = [run_chain(logp_grad, starts[c], seed=seeds[c], **settings,
                             report=None if progress is None else partial(progress.update, c))
                   for c in range(chains)]  # fmt: skip
    draws_array = np.stack([r[0] for r in results])
    stats = {name: np.stack([r[1][name] for r in results]) for name in results[0][1]}
    return NutsResult(draws_array, stats)

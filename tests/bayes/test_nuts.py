"""The numpy NUTS of ``sampler="clvmodels"``: right moments on targets with known answers,
divergences where NUTS must diverge, Stan's warm-up schedule, reproducible draws."""

from __future__ import annotations

import math
import sys
import threading
import warnings

import numpy as np
import pytest

from clvmodels.bayes import _nuts
from clvmodels.bayes._nuts import _windows, run_chain, sample_nuts


def standard_normal(x):
    return -0.5 * float(x @ x), -x


def correlated_normal():
    mean = np.array([1.0, -2.0, 0.5])
    sd = np.array([0.1, 3.0, 1.0])
    correlation = np.array([[1.0, 0.95, 0.3], [0.95, 1.0, 0.2], [0.3, 0.2, 1.0]])
    covariance = correlation * np.outer(sd, sd)
    precision = np.linalg.inv(covariance)

    def density(x):
        d = x - mean
        gradient = -(precision @ d)
        return 0.5 * float(d @ gradient), gradient

    return density, mean, covariance


def test_standard_normal_moments():
    result = sample_nuts(standard_normal, np.zeros((2, 3)), draws=3000, tune=500,
                         random_seed=11)  # fmt: skip
    draws = result.draws.reshape(-1, 3)
    # 6,000 draws of nearly independent samples: 5 standard errors
    np.testing.assert_allclose(draws.mean(axis=0), 0.0, atol=5 / np.sqrt(6000))
    np.testing.assert_allclose(draws.var(axis=0), 1.0, atol=0.1)
    assert not result.stats["diverging"].any()
    assert result.stats["acceptance_rate"].mean() > 0.7


def test_correlated_normal_from_the_identity_metric():
    """The dense metric learnt in warm-up recovers scales 30x apart and a correlation of
    0.95; the draws then have the right covariance."""
    density, mean, covariance = correlated_normal()
    result = sample_nuts(density, np.zeros((2, 3)), draws=3000, tune=1000, random_seed=3)
    draws = result.draws.reshape(-1, 3)
    sd = np.sqrt(np.diag(covariance))
    np.testing.assert_allclose((draws.mean(axis=0) - mean) / sd, 0.0, atol=0.1)
    np.testing.assert_allclose(np.cov(draws, rowvar=False) / np.outer(sd, sd),
                               covariance / np.outer(sd, sd), atol=0.08)  # fmt: skip
    # with the learnt metric the target is a standard normal: short trajectories
    assert result.stats["n_steps"].mean() < 8
    assert not result.stats["diverging"].any()


def test_a_skewed_target_on_the_log_scale():
    """Gamma(k, 1) parameters sampled as log(theta), Jacobian included: E theta = k and
    Var theta = k, for a shape well below 1 (strong skew) up to 8."""
    shape = np.array([0.5, 2.0, 8.0])

    def density(x):
        theta = np.exp(x)
        return float(np.sum(shape * x - theta)), shape - theta

    result = sample_nuts(density, np.zeros((2, 3)), draws=4000, tune=500, random_seed=5)
    theta = np.exp(result.draws.reshape(-1, 3))
    np.testing.assert_allclose(theta.mean(axis=0), shape, rtol=0.05)
    np.testing.assert_allclose(theta.var(axis=0), shape, rtol=0.15)


def test_the_funnel_diverges():
    """Neal's funnel without reparametrisation: NUTS cannot follow its neck and must
    report divergences rather than hide them."""

    def funnel(x):
        v, z = x[0], x[1:]
        scale2 = np.exp(v)
        value = -v * v / 18.0 - 0.5 * float(z @ z) / scale2 - 0.5 * z.size * v
        gradient = np.empty_like(x)
        gradient[0] = -v / 9.0 + 0.5 * float(z @ z) / scale2 - 0.5 * z.size
        gradient[1:] = -z / scale2
        return value, gradient

    result = sample_nuts(funnel, np.zeros((2, 3)), draws=500, tune=300, random_seed=2)
    assert result.stats["diverging"].sum() > 0


def test_same_seed_same_draws_whatever_the_processes():
    serial = sample_nuts(standard_normal, np.zeros((3, 2)), draws=50, tune=50,
                         random_seed=9, cores=1)  # fmt: skip
    forked = sample_nuts(standard_normal, np.zeros((3, 2)), draws=50, tune=50,
                         random_seed=9, cores=3)  # fmt: skip
    np.testing.assert_array_equal(serial.draws, forked.draws)
    other = sample_nuts(standard_normal, np.zeros((3, 2)), draws=50, tune=50, random_seed=10)
    assert not np.array_equal(serial.draws, other.draws)
    # chains differ from each other
    assert not np.array_equal(serial.draws[0], serial.draws[1])
    assert set(serial.stats) == {"diverging", "tree_depth", "n_steps", "acceptance_rate",
                                 "energy", "step_size", "lp"}  # fmt: skip
    assert serial.stats["diverging"].dtype == bool and serial.stats["lp"].shape == (3, 50)


def test_stan_warmup_windows():
    # Stan's defaults for 1000 warm-up iterations: buffers 75 / 50, windows 25, 50, 100,
    # 200 and the last stretched to the terminal buffer (Stan Reference Manual)
    assert _windows(1000) == (75, {99, 149, 249, 449, 949})
    # short warm-ups: 15 % / 10 % buffers and one window
    assert _windows(100) == (15, {89})
    assert _windows(10) == (10, set())
    # from a good starting metric: one window over the slow phase
    assert _windows(1000, informed=True) == (75, {949})
    assert _windows(100, informed=True) == (15, {89})


def _stan_metric_updates(num_warmup: int) -> tuple[int, set[int]]:
    """Stan's windowed_adaptation (stan/mcmc/windowed_adaptation.hpp) step by step: the
    iteration counter runs through the warm-up and, where end_adaptation_window() holds,
    compute_next_window() moves the next end; returns (init buffer, update iterations).

    One liberty: for 20 <= warm-up < 150 Stan's set_window_params shrinks the buffers
    but does not call restart(), so its next window end stays at an unsigned -1 and the
    metric is never updated; here (and in clvmodels) the shrunk window is used, as
    restart() would set it."""
    init, term, base = 75, 50, 25
    if num_warmup < 20:
        return num_warmup, set()
    if init + base + term > num_warmup:
        init, term = int(0.15 * num_warmup), int(0.1 * num_warmup)
        base = num_warmup - (init + term)
    size, next_end, updates = base, init + base - 1, set()
    for counter in range(num_warmup):
        in_window = init <= counter < num_warmup - term
        if in_window and counter == next_end:
            updates.add(counter)
            if next_end != num_warmup - term - 1:  # compute_next_window()
                size *= 2
                next_end = counter + size
                if (next_end != num_warmup - term - 1
                        and next_end + 2 * size >= num_warmup - term):  # fmt: skip
                    next_end = num_warmup - term - 1
    return init, updates


def test_warmup_windows_follow_stan_for_every_length():
    """Including the first window never stretched (warm-ups of 151-199: Stan updates at
    iteration 99 and again at the end of the slow phase)."""
    assert _windows(160) == (75, {99, 109})
    for tune in range(2001):
        assert _windows(tune) == _stan_metric_updates(tune), tune


def _gaussian(mean, covariance):
    precision = np.linalg.inv(covariance)

    def density(x):
        d = x - mean
        gradient = -(precision @ d)
        return 0.5 * float(d @ gradient), gradient

    return density


def _transitions(density, start, *, metric, step_size, n, seed, max_treedepth=10):
    """``n`` NUTS transitions at a fixed step size and metric (no adaptation)."""
    chain = _nuts._Chain(density, np.random.default_rng(seed), metric, max_treedepth)
    chain.step_size = step_size
    q = np.asarray(start, dtype=float)
    logp, grad = chain.evaluate(q)
    draws, results = np.empty((n, q.size)), []
    for k in range(n):
        result = chain.transition(q, logp, grad)
        point = result.point
        q, logp, grad = point.q, point.logp, point.grad
        draws[k] = q
        results.append(result)
    return draws, results


def test_transitions_leave_the_target_invariant_with_a_wrong_metric():
    """NUTS is exact for any step size and metric: from an exact draw of a correlated
    normal, with a metric of the wrong scales and orientation and no adaptation, the
    draws keep the target's mean and covariance. Also Stan's bounds on the work of a
    tree of depth d: 2^d - 1 steps if it stopped at a U-turn between subtrees, up to
    2^(d+1) - 1 if the last subtree ended early."""
    mean = np.array([1.0, -2.0])
    covariance = np.array([[0.25, 0.9 * 0.5 * 2.0], [0.9 * 0.5 * 2.0, 4.0]])
    metric = np.array([[2.0, -0.5], [-0.5, 0.5]])
    start = np.random.default_rng(0).multivariate_normal(mean, covariance)
    # step 0.2: the leapfrog is stable at the fastest frequency of this metric (at 0.3
    # it is not, and acceptance drops to 0.23); acceptance 0.86, about 20 steps a draw
    draws, results = _transitions(_gaussian(mean, covariance), start, metric=metric,
                                  step_size=0.2, n=6000, seed=4)  # fmt: skip
    sd = np.sqrt(np.diag(covariance))
    # effective sizes of 1,000-1,400: over seeds 0-9 the largest errors were 0.079 in the
    # means and 0.106 in the standardised covariance; a sampler off by a correlation of
    # 0.15 or a mean of 0.12 sd fails
    np.testing.assert_allclose((draws.mean(axis=0) - mean) / sd, 0.0, atol=0.12)
    np.testing.assert_allclose(np.cov(draws, rowvar=False) / np.outer(sd, sd),
                               covariance / np.outer(sd, sd), atol=0.15)  # fmt: skip
    for result in results:
        depth, steps = result.tree_depth, result.n_steps
        assert 2**depth - 1 <= steps <= 2 ** (depth + 1) - 1
        assert 0.0 <= result.acceptance_rate <= 1.0
    # both ways of ending occur: at a U-turn between subtrees and inside a subtree
    assert any(r.n_steps != 2 ** r.tree_depth - 1 for r in results)
    assert any(r.n_steps == 2 ** r.tree_depth - 1 for r in results)


def test_a_boundary_inside_the_trajectory():
    """A half-normal: the log density is -inf for x < 0, which trajectories cross; those
    subtrees end as divergent and the draws still have the half-normal's moments."""

    def half_normal(x):
        if x[0] < 0:
            return -np.inf, np.zeros(1)
        return -0.5 * float(x[0] ** 2), -x.copy()

    draws, results = _transitions(half_normal, [0.5], metric=np.eye(1), step_size=0.5,
                                  n=8000, seed=2)  # fmt: skip
    assert draws.min() >= 0.0
    assert any(r.diverging for r in results)
    np.testing.assert_allclose(draws.mean(), math.sqrt(2 / math.pi), atol=0.04)
    np.testing.assert_allclose(draws.var(), 1 - 2 / math.pi, atol=0.06)


def test_acceptance_statistic_of_a_single_step():
    """With max_treedepth = 1 a transition is one leapfrog step from (q0, p0), and the
    acceptance statistic is min(1, exp(H0 - H1)), computed here by hand."""
    eps, q0 = 0.9, np.array([1.3])
    for seed in range(20):
        _, (result,) = _transitions(lambda x: (-0.5 * float(x @ x), -x), q0, metric=np.eye(1),
                                    step_size=eps, n=1, seed=seed, max_treedepth=1)  # fmt: skip
        rng = np.random.default_rng(seed)  # the sampler's draws, in its order
        p0 = rng.standard_normal(1)
        direction = 1.0 if rng.uniform() < 0.5 else -1.0
        step = direction * eps
        p_half = p0 - 0.5 * step * q0
        q1 = q0 + step * p_half
        p1 = p_half - 0.5 * step * q1
        h0, h1 = 0.5 * float(q0 @ q0 + p0 @ p0), 0.5 * float(q1 @ q1 + p1 @ p1)
        assert result.n_steps == 1 and result.tree_depth <= 1
        assert result.acceptance_rate == pytest.approx(min(1.0, math.exp(h0 - h1)),
                                                          rel=1e-12)  # fmt: skip


def _run_beside(thread_is_daemon: bool):
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=thread_is_daemon, name="helper")
    helper.start()
    try:
        refusal = _nuts._fork_refusal()
        result = sample_nuts(standard_normal, np.zeros((2, 2)), draws=30, tune=30,
                             random_seed=4, cores=2)  # fmt: skip
    finally:
        stop.set()
        helper.join()
    return refusal, result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="chains fork on Linux only")
def test_chains_run_serially_where_forking_is_unsafe(monkeypatch):
    """Beside another (non-daemon) Python thread forking could deadlock: the chains run
    one after another, with the same draws and a warning that says why; likewise where
    no process can be started. Daemon threads (a Jupyter kernel's) do not stop it."""
    serial = sample_nuts(standard_normal, np.zeros((2, 2)), draws=30, tune=30,
                         random_seed=4, cores=1)  # fmt: skip
    with pytest.warns(UserWarning, match=r"one after another, not in 2 processes: 1 other"):
        refusal, threaded = _run_beside(thread_is_daemon=False)
    assert "helper" in refusal
    np.testing.assert_array_equal(threaded.draws, serial.draws)

    contexts = []
    get_context = _nuts.multiprocessing.get_context

    def spy(method):
        contexts.append(method)
        return get_context(method)

    monkeypatch.setattr(_nuts.multiprocessing, "get_context", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback warning
        refusal, forked = _run_beside(thread_is_daemon=True)
    assert refusal is None and contexts == ["fork"]  # the chains went to processes
    np.testing.assert_array_equal(forked.draws, serial.draws)

    class NoProcesses:
        def Pool(self, *args, **kwargs):  # multiprocessing's name
            raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(_nuts.multiprocessing, "get_context", lambda method: NoProcesses())
    refused = sample_nuts(standard_normal, np.zeros((2, 2)), draws=30, tune=30,
                          random_seed=4, cores=2)  # fmt: skip
    np.testing.assert_array_equal(refused.draws, serial.draws)


def test_a_start_outside_the_support_is_refused():
    def half_line(x):
        if x[0] <= 0:
            return -np.inf, np.zeros(1)
        return -float(x[0]), -np.ones(1)

    with pytest.raises(FloatingPointError, match="not finite at the start"):
        run_chain(half_line, np.array([-1.0]), draws=5, tune=5, seed=0, covariance=None,
                  target_accept=0.8, max_treedepth=10)  # fmt: skip


# ------------------------------------------------------------------ progress lines


@pytest.mark.parametrize("cores", [1, 2])
def test_progress_lines_go_to_the_log(cores, caplog, monkeypatch) -> None:
    """A run says how far it is on the logger clvmodels.bayes (INFO), chains in forked
    processes included, whether or not anything is a terminal; nothing is printed."""
    import logging

    monkeypatch.setattr(_nuts, "_PROGRESS_AFTER", 0.0)  # long runs only, normally
    with caplog.at_level(logging.INFO, logger="clvmodels.bayes"):
        _nuts.sample_nuts(standard_normal, np.zeros((2, 3)), draws=200, tune=100,
                          random_seed=1, cores=cores)  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "clvmodels.bayes"]
    where = "in 2 processes" if cores == 2 else "one after another"
    assert lines[0] == f"NUTS: 2 chains of 100 warm-up + 200 draws, {where}"
    percents = [int(line.split()[1]) for line in lines[1:]]
    assert percents == sorted(set(percents)) and percents[-1] == 100 and len(percents) >= 5
    assert lines[-1].endswith("(2 of 2 chains finished)")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="chains fork on Linux only")
def test_the_first_progress_line_says_how_the_chains_run(caplog, monkeypatch) -> None:
    """Where forking is refused the chains run one after another, and the first line
    says so (not "in 2 processes")."""
    import logging

    monkeypatch.setattr(_nuts, "_fork_refusal", lambda: "a test says no")
    with caplog.at_level(logging.INFO, logger="clvmodels.bayes"), \
            pytest.warns(UserWarning, match="one after another, not in 2 processes"):
        _nuts.sample_nuts(standard_normal, np.zeros((2, 2)), draws=20, tune=20,
                          random_seed=1, cores=2)  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "clvmodels.bayes"]
    assert lines[0].endswith("one after another")


def test_no_progress_work_without_a_listener(monkeypatch) -> None:
    """Without INFO logging (the default) no progress is tracked at all."""

    def refuse(*args, **kwargs):
        raise AssertionError("progress tracked")

    monkeypatch.setattr(_nuts, "_Progress", refuse)
    result = sample_nuts(standard_normal, np.zeros((2, 2)), draws=20, tune=20,
                         random_seed=0, cores=2)
    assert result.draws.shape == (2, 20, 2)

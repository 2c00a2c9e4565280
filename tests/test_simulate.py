"""Tests of clvmodels.simulate: conventions, invariants and distributions.

The distributional checks compare 200k simulated customers with closed forms derived
from each model's assumptions, with a tolerance of 4.5 standard errors; the recency and
transaction-time checks compare the vectorised samplers with a naive event-by-event
simulation of the same story. Seeds are fixed, so every check is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from clvmodels.exceptions import InvalidDataError
from clvmodels.simulate import (
    sbg_lost_per_period,
    simulate_bgbb,
    simulate_bgnbd,
    simulate_gamma_gamma,
    simulate_mbgnbd,
    simulate_pnbd,
    simulate_sbg,
    simulate_transactions,
)

N_BIG = 200_000
TOLERANCE = 4.5  # standard errors
P_MIN = 1e-3  # p-value floor of the goodness-of-fit tests (fixed seeds: deterministic)

BGNBD = dict(r=0.8, alpha=5.0, a=2.5, b=4.0)  # a > 1 so that E[X(t)] is finite
PARETO = dict(r=0.8, alpha=6.0, s=2.5, beta=10.0)  # s > 1 likewise
BGBB = dict(alpha=1.2, beta=0.75, gamma=1.66, delta=2.78)  # gamma > 1 likewise
SPEND = dict(p=6.25, q=3.74, gamma=15.44)  # Fader & Hardie (2013) CDNOW estimates


def assert_mean(sample: np.ndarray, expected: float, label: str = "") -> None:
    sample = np.asarray(sample, dtype=float)
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    assert abs(sample.mean() - expected) <= TOLERANCE * se, (
        f"{label}: sample mean {sample.mean():.5f} vs expected {expected:.5f} (se {se:.5f})"
    )


def assert_share(hits: np.ndarray, expected: float, label: str = "") -> None:
    hits = np.asarray(hits, dtype=bool)
    se = math.sqrt(expected * (1 - expected) / hits.size)
    assert abs(hits.mean() - expected) <= TOLERANCE * se, (
        f"{label}: share {hits.mean():.5f} vs expected {expected:.5f} (se {se:.5f})"
    )


# ----------------------------------------------------------------- closed forms


def bgnbd_expected(t: float | np.ndarray, r: float, alpha: float, a: float, b: float):
    """E[X(t)] of the BG/NBD: Fader, Hardie & Lee (2005), eq. (9)."""
    z = t / (alpha + t)
    return (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))
    )


def bgnbd_pmf(x: int, t: float, r: float, alpha: float, a: float, b: float) -> float:
    """P(X(t) = x) of the BG/NBD: Fader, Hardie & Lee (2005), eq. (8)."""
    log_beta_ab = special.betaln(a, b)

    def nbd(j: int) -> float:
        return math.exp(
            special.gammaln(r + j)
            - special.gammaln(r)
            - special.gammaln(j + 1)
            + r * math.log(alpha / (alpha + t))
            + j * math.log(t / (alpha + t))
        )

    alive = math.exp(special.betaln(a, b + x) - log_beta_ab) * nbd(x)
    if x == 0:
        return alive
    died = math.exp(special.betaln(a + 1, b + x - 1) - log_beta_ab)
    return alive + died * (1 - sum(nbd(j) for j in range(x)))


def mbgnbd_expected(t: float, r: float, alpha: float, a: float, b: float) -> float:
    """E[X(t)] of the MBG/NBD (Batislam, Denizel & Filiztekin 2007).

    Given (λ, p) the MBG/NBD count is the BG/NBD one thinned by the extra dropout at
    time 0, so E[X(t) | λ, p] = (1 - p) / p * (1 - exp(-λ p t)); integrating over
    p ~ Beta(a, b) and λ ~ Gamma(r, α) as in FHL (2005) appendix gives
    b / (a - 1) * [1 - (α / (α + t))^r 2F1(r, b + 1; a + b; t / (α + t))].
    """
    z = t / (alpha + t)
    return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b + 1, a + b, z))


def mbgnbd_p0(t: float, r: float, alpha: float, a: float, b: float) -> float:
    """P(X(t) = 0) of the MBG/NBD: dropout at 0 (prob. p) or alive and no purchase."""
    return a / (a + b) + b / (a + b) * (alpha / (alpha + t)) ** r


def pareto_expected(t: float, r: float, alpha: float, s: float, beta: float) -> float:
    """E[X(t)] of the Pareto/NBD: Fader & Hardie (2005) note 009, eq. (27)."""
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def bgbb_expected(n: int, alpha: float, beta: float, gamma: float, delta: float) -> float:
    """E[X(n)] of the BG/BB: Fader, Hardie & Shang (2010)."""
    log_ratio = (
        special.gammaln(gamma + delta)
        + special.gammaln(1 + delta + n)
        - special.gammaln(gamma + delta + n)
        - special.gammaln(1 + delta)
    )
    return alpha / (alpha + beta) * delta / (gamma - 1) * (1 - math.exp(log_ratio))


def bgbb_pattern_probability(
    x: int, t_x: int, n: int, alpha: float, beta: float, gamma: float, delta: float
) -> float:
    """P(frequency = x, recency = t_x) of the BG/BB.

    Fader, Hardie & Shang (2010) give the likelihood of one transaction sequence with
    summary (x, t_x, n); C(t_x - 1, x - 1) sequences share it (x >= 1).
    """

    def b(u: float, v: float) -> float:
        return math.exp(special.betaln(u, v) - special.betaln(alpha, beta))

    def g(u: float, v: float) -> float:
        return math.exp(special.betaln(u, v) - special.betaln(gamma, delta))

    likelihood = b(alpha + x, beta + n - x) * g(gamma, delta + n)
    for i in range(n - t_x):
        likelihood += b(alpha + x, beta + t_x - x + i) * g(gamma + 1, delta + t_x + i)
    sequences = 1 if x == 0 else math.comb(t_x - 1, x - 1)
    return sequences * likelihood


# -------------------------------------------------- naive reference simulations


def naive_bgnbd(n, r, alpha, a, b, T, seed, *, dropout_at_zero=False):
    """Event-by-event BG/NBD (or MBG/NBD) story, one customer at a time."""
    rng = np.random.default_rng(seed)
    frequency, recency = np.zeros(n, dtype=np.int64), np.zeros(n)
    for i in range(n):
        lam, p = rng.gamma(r, 1 / alpha), rng.beta(a, b)
        if dropout_at_zero and rng.random() < p:
            continue
        t = 0.0
        while True:
            t += rng.exponential(1 / lam)
            if t > T:
                break
            frequency[i] += 1
            recency[i] = t
            if rng.random() < p:
                break
    return frequency, recency


def naive_pareto(n, r, alpha, s, beta, T, seed):
    """Event-by-event Pareto/NBD story, one customer at a time."""
    rng = np.random.default_rng(seed)
    frequency, recency = np.zeros(n, dtype=np.int64), np.zeros(n)
    for i in range(n):
        lam, mu = rng.gamma(r, 1 / alpha), rng.gamma(s, 1 / beta)
        end = min(rng.exponential(1 / mu), T)
        t = rng.exponential(1 / lam)
        while t <= end:
            frequency[i] += 1
            recency[i] = t
            t += rng.exponential(1 / lam)
    return frequency, recency


def assert_same_law(fast: pd.DataFrame, naive: tuple[np.ndarray, np.ndarray]) -> None:
    """Frequency and recency of the vectorised and the naive sampler agree."""
    frequency, recency = naive
    fast_x = fast["frequency"].to_numpy()
    # Frequencies above 5 are pooled so that every cell has expected counts >> 5.
    table = np.array([np.bincount(np.minimum(v, 5), minlength=6) for v in (fast_x, frequency)])
    assert stats.chi2_contingency(table).pvalue > P_MIN
    ks = stats.ks_2samp(fast["recency"].to_numpy()[fast_x > 0], recency[frequency > 0])
    assert ks.pvalue > P_MIN


# -------------------------------------------------------------- conventions

SIMULATORS = {
    "bgnbd": lambda n, seed: simulate_bgnbd(n, **BGNBD, T=30.0, random_state=seed),
    "mbgnbd": lambda n, seed: simulate_mbgnbd(n, **BGNBD, T=30.0, random_state=seed),
    "pnbd": lambda n, seed: simulate_pnbd(n, **PARETO, T=30.0, random_state=seed),
    "bgbb": lambda n, seed: simulate_bgbb(n, **BGBB, n_periods=6, random_state=seed),
    "sbg": lambda n, seed: simulate_sbg(n, alpha=0.7, beta=3.8, n_periods=8, random_state=seed),
    "gamma_gamma": lambda n, seed: simulate_gamma_gamma(
        np.arange(n) % 4, **SPEND, random_state=seed
    ),
    "transactions": lambda n, seed: simulate_transactions(
        "bgnbd",
        n,
        params=BGNBD,
        acquisition_end="2020-06-30",
        time_unit="W",
        spend=SPEND,
        random_state=seed,
    ),
}


@pytest.mark.parametrize("name", list(SIMULATORS))
def test_same_seed_same_output_other_seed_differs(name):
    simulate = SIMULATORS[name]
    first = simulate(2000, 7)
    pd.testing.assert_frame_equal(first, simulate(2000, 7))
    pd.testing.assert_frame_equal(first, simulate(2000, np.random.default_rng(7)))
    assert not first.equals(simulate(2000, 8))


COLUMNS = {
    "bgnbd": {"frequency": "int64", "recency": "float64", "T": "float64"},
    "mbgnbd": {"frequency": "int64", "recency": "float64", "T": "float64"},
    "pnbd": {"frequency": "int64", "recency": "float64", "T": "float64"},
    "bgbb": {"frequency": "int64", "recency": "int64", "n_periods": "int64"},
    "sbg": {"lifetime": "int64", "censored": "bool"},
    "gamma_gamma": {"frequency": "int64", "monetary_value": "float64"},
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_columns_dtypes_and_index(name):
    frame = SIMULATORS[name](50, 0)
    assert {c: str(t) for c, t in frame.dtypes.items()} == COLUMNS[name]
    assert frame.index.name == "customer_id"
    assert frame.index.equals(pd.RangeIndex(50))


@pytest.mark.parametrize(
    ("simulate", "params", "latent"),
    [
        (simulate_bgnbd, BGNBD, ["purchase_rate", "dropout_probability", "alive"]),
        (simulate_mbgnbd, BGNBD, ["purchase_rate", "dropout_probability", "alive"]),
        (simulate_pnbd, PARETO, ["purchase_rate", "dropout_rate", "lifetime", "alive"]),
    ],
)
def test_return_latent_adds_columns_without_changing_the_draws(simulate, params, latent):
    plain = simulate(500, **params, T=20.0, random_state=3)
    full = simulate(500, **params, T=20.0, random_state=3, return_latent=True)
    assert list(full.columns) == [*plain.columns, *latent]
    pd.testing.assert_frame_equal(full[plain.columns], plain)
    assert (full["purchase_rate"] > 0).all()


def test_latent_columns_of_the_discrete_models():
    bgbb = simulate_bgbb(300, **BGBB, n_periods=6, random_state=0, return_latent=True)
    assert list(bgbb.columns[3:]) == [
        "transaction_probability",
        "dropout_probability",
        "alive_opportunities",
    ]
    assert (bgbb["recency"] <= bgbb["alive_opportunities"]).all()
    sbg = simulate_sbg(300, alpha=1.0, beta=2.0, n_periods=5, random_state=0, return_latent=True)
    assert sbg["churn_probability"].between(0, 1).all()
    gg = simulate_gamma_gamma([1, 2], **SPEND, random_state=0, return_latent=True)
    assert np.allclose(gg["mean_transaction_value"], SPEND["p"] / gg["nu"])


# --------------------------------------------------------------- invariants

positive = st.floats(min_value=0.02, max_value=50.0)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def check_summary_invariants(frame: pd.DataFrame, T: np.ndarray) -> None:
    x, t_x = frame["frequency"].to_numpy(), frame["recency"].to_numpy()
    assert frame["frequency"].dtype == np.int64
    assert (x >= 0).all()
    assert ((t_x >= 0) & (t_x <= T)).all()
    assert (t_x[x == 0] == 0).all()
    assert (t_x[x > 0] > 0).all()
    np.testing.assert_array_equal(frame["T"].to_numpy(), T)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    r=positive,
    alpha=positive,
    a=positive,
    b=positive,
    T=st.floats(min_value=0.01, max_value=200.0),
    seed=seeds,
    modified=st.booleans(),
)
def test_bgnbd_invariants(r, alpha, a, b, T, seed, modified):
    simulate = simulate_mbgnbd if modified else simulate_bgnbd
    lengths = np.random.default_rng(seed).uniform(0.01, T, size=300)
    frame = simulate(300, r=r, alpha=alpha, a=a, b=b, T=lengths, random_state=seed)
    check_summary_invariants(frame, lengths)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    r=positive,
    alpha=positive,
    s=positive,
    beta=positive,
    T=st.floats(min_value=0.01, max_value=200.0),
    seed=seeds,
)
def test_pnbd_invariants(r, alpha, s, beta, T, seed):
    frame = simulate_pnbd(
        300, r=r, alpha=alpha, s=s, beta=beta, T=T, random_state=seed, return_latent=True
    )
    check_summary_invariants(frame, np.full(300, T))
    # Purchases stop at the end of the lifetime.
    assert (frame["recency"] <= frame["lifetime"]).all()
    assert (frame["alive"] == (frame["lifetime"] > T)).all()


@settings(max_examples=40, deadline=None)
@given(
    alpha=positive,
    beta=positive,
    gamma=positive,
    delta=positive,
    n_periods=st.integers(min_value=1, max_value=60),
    seed=seeds,
)
def test_bgbb_invariants(alpha, beta, gamma, delta, n_periods, seed):
    frame = simulate_bgbb(
        300,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        delta=delta,
        n_periods=n_periods,
        random_state=seed,
    )
    x, t_x = frame["frequency"].to_numpy(), frame["recency"].to_numpy()
    assert ((x >= 0) & (x <= t_x) & (t_x <= n_periods)).all()
    assert ((x == 0) == (t_x == 0)).all()
    assert (frame["n_periods"] == n_periods).all()


@settings(max_examples=30, deadline=None)
@given(alpha=positive, beta=positive, n_periods=st.integers(1, 40), seed=seeds)
def test_sbg_invariants(alpha, beta, n_periods, seed):
    frame = simulate_sbg(300, alpha=alpha, beta=beta, n_periods=n_periods, random_state=seed)
    life = frame["lifetime"].to_numpy()
    assert ((life >= 1) & (life <= n_periods)).all()
    assert (life[frame["censored"].to_numpy()] == n_periods).all()
    table = sbg_lost_per_period(frame, n_periods)
    assert table["lost"].sum() == (~frame["censored"]).sum()
    assert table["active"].iloc[-1] == frame["censored"].sum()


# ------------------------------------------------------------ distributions


def test_bgnbd_mean_and_pmf_match_fhl_2005():
    t = 30.0
    frame = simulate_bgnbd(N_BIG, **BGNBD, T=t, random_state=11)
    x = frame["frequency"].to_numpy()
    assert_mean(x, bgnbd_expected(t, **BGNBD), "E[X(t)]")
    # P(X(t) = 0) = (α / (α + t))^r: no dropout before the first repeat purchase.
    assert math.isclose(bgnbd_pmf(0, t, **BGNBD), (5.0 / 35.0) ** 0.8)
    for k in range(6):
        assert_share(x == k, bgnbd_pmf(k, t, **BGNBD), f"P(X(t)={k})")


def test_bgnbd_per_customer_T():
    lengths = np.random.default_rng(0).uniform(1.0, 60.0, size=N_BIG)
    frame = simulate_bgnbd(N_BIG, **BGNBD, T=lengths, random_state=12, return_latent=True)
    np.testing.assert_array_equal(frame["T"].to_numpy(), lengths)
    expected = bgnbd_expected(lengths, **BGNBD)
    # E[X(T_i)] averaged over the customers' own T_i.
    assert_mean(frame["frequency"] - expected, 0.0, "E[X(T_i)] - closed form")
    assert_share(frame["frequency"] == 0, float(np.mean((5.0 / (5.0 + lengths)) ** 0.8)))


def test_bgnbd_latent_distributions():
    frame = simulate_bgnbd(N_BIG, **BGNBD, T=30.0, random_state=13, return_latent=True)
    r, alpha, a, b = BGNBD.values()
    assert_mean(frame["purchase_rate"], r / alpha, "E[λ]")
    assert_mean(frame["dropout_probability"], a / (a + b), "E[p]")
    # A customer with no repeat purchase cannot have dropped out yet.
    assert frame.loc[frame["frequency"] == 0, "alive"].all()


def test_bgnbd_recency_matches_event_by_event_story():
    params = dict(r=1.5, alpha=4.0, a=1.0, b=2.0)
    fast = simulate_bgnbd(20_000, **params, T=25.0, random_state=14)
    assert_same_law(fast, naive_bgnbd(20_000, **params, T=25.0, seed=15))


def test_mbgnbd_zero_share_and_mean_match_closed_forms():
    t = 30.0
    frame = simulate_mbgnbd(N_BIG, **BGNBD, T=t, random_state=21)
    x = frame["frequency"].to_numpy()
    p0 = mbgnbd_p0(t, **BGNBD)
    assert_share(x == 0, p0, "P(X(t)=0)")
    assert p0 > bgnbd_pmf(0, t, **BGNBD)
    bgnbd = simulate_bgnbd(N_BIG, **BGNBD, T=t, random_state=21)
    assert (x == 0).mean() > (bgnbd["frequency"] == 0).mean()
    assert_mean(x, mbgnbd_expected(t, **BGNBD), "E[X(t)]")


def test_mbgnbd_recency_matches_event_by_event_story():
    params = dict(r=1.5, alpha=4.0, a=1.0, b=2.0)
    fast = simulate_mbgnbd(20_000, **params, T=25.0, random_state=22)
    assert_same_law(fast, naive_bgnbd(20_000, **params, T=25.0, seed=23, dropout_at_zero=True))


def test_pnbd_mean_and_survival_match_closed_forms():
    t = 40.0
    frame = simulate_pnbd(N_BIG, **PARETO, T=t, random_state=31, return_latent=True)
    _, _, s, beta = PARETO.values()
    assert_mean(frame["frequency"], pareto_expected(t, **PARETO), "E[X(t)]")
    # P(τ > t) = (β / (β + t))^s, the Pareto (Lomax) survival of the lifetime.
    assert_share(frame["alive"], (beta / (beta + t)) ** s, "P(alive at T)")
    assert_mean(frame["dropout_rate"], s / beta, "E[μ]")


def test_pnbd_recency_matches_event_by_event_story():
    params = dict(r=1.5, alpha=4.0, s=1.0, beta=20.0)
    fast = simulate_pnbd(20_000, **params, T=25.0, random_state=32)
    assert_same_law(fast, naive_pareto(20_000, **params, T=25.0, seed=33))


def test_bgbb_mean_and_joint_pmf_match_fhs_2010():
    n = 6
    frame = simulate_bgbb(N_BIG, **BGBB, n_periods=n, random_state=41)
    assert_mean(frame["frequency"], bgbb_expected(n, **BGBB), "E[X(n)]")
    cells = [(0, 0)] + [(x, t) for t in range(1, n + 1) for x in range(1, t + 1)]
    expected = np.array([bgbb_pattern_probability(x, t, n, **BGBB) for x, t in cells])
    assert math.isclose(expected.sum(), 1.0, rel_tol=1e-12)
    observed = (
        frame.groupby(["frequency", "recency"]).size().reindex(cells, fill_value=0).to_numpy()
    )
    assert observed.sum() == N_BIG  # no pattern outside the 22 possible ones
    assert stats.chisquare(observed, expected * N_BIG).pvalue > P_MIN


def test_bgbb_with_many_periods_matches_mean():
    n = 250
    frame = simulate_bgbb(N_BIG, **BGBB, n_periods=n, random_state=42)
    assert_mean(frame["frequency"], bgbb_expected(n, **BGBB), "E[X(n)]")


def test_sbg_survival_and_churn_match_fh_2007():
    alpha, beta, n = 0.668, 3.806, 10
    frame = simulate_sbg(N_BIG, alpha=alpha, beta=beta, n_periods=n, random_state=51)
    table = sbg_lost_per_period(frame, n)
    assert table["period"].tolist() == list(range(1, n + 1))
    for row in table.itertuples():
        t = row.period
        survival = math.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))
        churn = math.exp(special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta))
        assert_share(np.arange(N_BIG) < row.active, survival, f"S({t})")
        assert_share(np.arange(N_BIG) < row.lost, churn, f"P(T={t})")


def test_sbg_lost_per_period_counts():
    cohort = pd.DataFrame({"lifetime": [1, 3, 3, 2, 4, 4], "censored": [0, 0, 0, 0, 0, 1]})
    table = sbg_lost_per_period(cohort.astype({"censored": bool}), 4)
    assert table["lost"].tolist() == [1, 1, 2, 1]
    assert table["active"].tolist() == [5, 4, 2, 1]
    # Fewer periods than simulated is fine.
    assert sbg_lost_per_period(cohort.astype({"censored": bool}), 2)["active"].tolist() == [5, 4]


def test_gamma_gamma_mean_and_distribution_match_fh_2013():
    x = np.full(N_BIG, 4)
    frame = simulate_gamma_gamma(x, **SPEND, random_state=61, return_latent=True)
    p, q, gamma = SPEND.values()
    assert_mean(frame["monetary_value"], p * gamma / (q - 1), "E[z]")
    assert_mean(frame["nu"], q / gamma, "E[ν]")
    # Mixing Gamma(px, rate xν) over ν ~ Gamma(q, rate γ) gives a beta-prime law of the
    # mean value: z̄ ~ (γ / x) BetaPrime(px, q) (Fader & Hardie 2013).
    law = stats.betaprime(p * 4, q, scale=gamma / 4)
    assert stats.kstest(frame["monetary_value"], law.cdf).pvalue > P_MIN


def test_gamma_gamma_mean_of_values_matches_value_by_value_draws():
    p, q, gamma = SPEND.values()
    rng = np.random.default_rng(62)
    nu = rng.gamma(q, 1 / gamma, size=50_000)
    naive = rng.gamma(p, 1 / nu[:, None], size=(50_000, 3)).mean(axis=1)
    fast = simulate_gamma_gamma(np.full(50_000, 3), **SPEND, random_state=63)
    assert stats.ks_2samp(fast["monetary_value"], naive).pvalue > P_MIN


def test_gamma_gamma_keeps_series_index_and_zero_frequency():
    frequency = pd.Series([0, 2, 0, 7], index=pd.Index(["a", "b", "c", "d"], name="customer"))
    frame = simulate_gamma_gamma(frequency, **SPEND, random_state=0)
    assert frame.index.equals(frequency.index)
    assert frame["frequency"].tolist() == [0, 2, 0, 7]
    assert (frame["monetary_value"] == 0).tolist() == [True, False, True, False]
    assert (frame.loc[["b", "d"], "monetary_value"] > 0).all()
    floats = simulate_gamma_gamma(np.array([1.0, 3.0]), **SPEND, random_state=0)
    assert floats["frequency"].dtype == np.int64


# ------------------------------------------------------------- transactions


def summarize_log(tx: pd.DataFrame, end: str, unit: pd.Timedelta) -> pd.DataFrame:
    grouped = tx.groupby("customer_id")["date"]
    first, last = grouped.min(), grouped.max()
    return pd.DataFrame(
        {
            "frequency": grouped.size() - 1,
            "recency": (last - first) / unit,
            "T": (pd.Timestamp(end) - first) / unit,
        }
    )


@pytest.fixture(scope="module")
def bgnbd_log() -> pd.DataFrame:
    return simulate_transactions(
        "bgnbd",
        N_BIG,
        params=BGNBD,
        start="2020-01-01",
        observation_end="2020-07-29",  # 30 weeks
        time_unit="W",
        spend=SPEND,
        random_state=71,
    )


def test_transactions_layout(bgnbd_log):
    tx = bgnbd_log
    assert list(tx.columns) == ["customer_id", "date", "amount"]
    assert [str(t) for t in tx.dtypes] == ["int64", "datetime64[ns]", "float64"]
    ids, dates = tx["customer_id"].to_numpy(), tx["date"].to_numpy()
    np.testing.assert_array_equal(np.unique(ids), np.arange(N_BIG))
    same = ids[1:] == ids[:-1]
    assert (np.diff(ids) >= 0).all()
    assert (dates[1:][same] >= dates[:-1][same]).all()
    assert tx["date"].min() == pd.Timestamp("2020-01-01")
    assert tx["date"].max() <= pd.Timestamp("2020-07-29")
    assert (tx["amount"] > 0).all()


def test_transactions_follow_the_model(bgnbd_log):
    week = pd.Timedelta(weeks=1)
    summary = summarize_log(bgnbd_log, "2020-07-29", week)
    assert np.allclose(summary["T"], 30.0)
    assert_mean(summary["frequency"], bgnbd_expected(30.0, **BGNBD), "E[X(T)]")
    assert_share(summary["frequency"] == 0, bgnbd_pmf(0, 30.0, **BGNBD), "P(X(T)=0)")
    reference = simulate_bgnbd(N_BIG, **BGNBD, T=30.0, random_state=72)
    buyers = summary["frequency"] > 0
    ks = stats.ks_2samp(
        summary.loc[buyers, "recency"],
        reference.loc[reference["frequency"] > 0, "recency"],
    )
    assert ks.pvalue > P_MIN


def test_transactions_earlier_repeats_are_uniform_before_the_last(bgnbd_log):
    # Given x repeat purchases with the last at t_x, the earlier ones are iid uniform
    # on [0, t_x] (order statistics of the Poisson process).
    tx = bgnbd_log
    t = (tx["date"] - tx.groupby("customer_id")["date"].transform("min")) / pd.Timedelta(weeks=1)
    last = t.groupby(tx["customer_id"]).transform("max")
    rank = tx.groupby("customer_id").cumcount()
    count = tx.groupby("customer_id")["date"].transform("size")
    middle = (rank > 0) & (rank < count - 1)
    ratios = (t[middle] / last[middle]).to_numpy()
    assert ratios.size > 10_000
    assert stats.kstest(ratios, "uniform").pvalue > P_MIN


def test_transaction_amounts_follow_gamma_gamma(bgnbd_log):
    p, q, gamma = SPEND.values()
    amount = bgnbd_log["amount"]
    # One ν per customer: values of one customer are correlated, so compare per-customer
    # means with the first purchase only, which is one Gamma(p, ν) draw per customer.
    first = amount.groupby(bgnbd_log["customer_id"]).first()
    assert_mean(first, p * gamma / (q - 1), "E[z]")
    law = stats.betaprime(p, q, scale=gamma)
    assert stats.kstest(first, law.cdf).pvalue > P_MIN


@pytest.mark.parametrize("model", ["pnbd", "mbgnbd"])
def test_transactions_of_other_models(model):
    params = PARETO if model == "pnbd" else BGNBD
    tx = simulate_transactions(
        model,
        N_BIG,
        params=params,
        start="2020-01-01",
        observation_end="2020-07-29",
        time_unit="W",
        random_state=73,
    )
    assert list(tx.columns) == ["customer_id", "date"]
    repeats = tx.groupby("customer_id").size() - 1
    assert repeats.size == N_BIG
    if model == "pnbd":
        assert_mean(repeats, pareto_expected(30.0, **PARETO), "E[X(T)]")
    else:
        assert_mean(repeats, mbgnbd_expected(30.0, **BGNBD), "E[X(T)]")
        assert_share(repeats == 0, mbgnbd_p0(30.0, **BGNBD), "P(X(T)=0)")


def test_transactions_with_staggered_acquisition():
    tx = simulate_transactions(
        "pnbd",
        5000,
        params=PARETO,
        start="2021-01-01",
        acquisition_end="2021-12-31",
        observation_end="2021-12-31",
        time_unit="D",
        random_state=74,
    )
    first = tx.groupby("customer_id")["date"].min()
    assert first.min() >= pd.Timestamp("2021-01-01")
    assert first.max() <= pd.Timestamp("2021-12-31")
    # Uniform acquisition over the year: about half of the customers in each half.
    assert_share(first < pd.Timestamp("2021-07-02"), 0.5)
    assert tx["date"].max() <= pd.Timestamp("2021-12-31")


def test_transaction_time_units():
    common = dict(params=BGNBD, acquisition_end="2020-03-01", random_state=75)
    weeks = simulate_transactions("bgnbd", 300, time_unit="W", **common)
    pd.testing.assert_frame_equal(
        weeks, simulate_transactions("bgnbd", 300, time_unit="7D", **common)
    )
    years = simulate_transactions("bgnbd", 300, time_unit="Y", **common)
    pd.testing.assert_frame_equal(
        years, simulate_transactions("bgnbd", 300, time_unit="12M", **common)
    )
    hours = simulate_transactions("bgnbd", 300, time_unit="h", **common)
    # Same rates per hour instead of per week: many more purchases.
    assert len(hours) > len(weeks)


# ------------------------------------------------------------------- errors

BAD_CALLS = {
    "n_customers zero": (lambda: simulate_bgnbd(0, **BGNBD, T=1.0), "n_customers"),
    "n_customers float": (lambda: simulate_bgnbd(2.5, **BGNBD, T=1.0), "n_customers"),
    "n_customers bool": (lambda: simulate_sbg(True, alpha=1, beta=1, n_periods=2), "n_customers"),
    "r zero": (lambda: simulate_bgnbd(5, r=0, alpha=1, a=1, b=1, T=1.0), "r must"),
    "alpha negative": (lambda: simulate_bgnbd(5, r=1, alpha=-1, a=1, b=1, T=1.0), "alpha"),
    "a nan": (lambda: simulate_mbgnbd(5, r=1, alpha=1, a=np.nan, b=1, T=1.0), "a must"),
    "b string": (lambda: simulate_mbgnbd(5, r=1, alpha=1, a=1, b="x", T=1.0), "b must"),
    "s inf": (lambda: simulate_pnbd(5, r=1, alpha=1, s=np.inf, beta=1, T=1.0), "s must"),
    "beta zero": (lambda: simulate_pnbd(5, r=1, alpha=1, s=1, beta=0, T=1.0), "beta"),
    "T zero": (lambda: simulate_bgnbd(5, **BGNBD, T=0.0), "T must"),
    "T negative entry": (lambda: simulate_bgnbd(3, **BGNBD, T=[1.0, -2.0, 3.0]), "T[1]"),
    "T wrong length": (lambda: simulate_pnbd(3, **PARETO, T=[1.0, 2.0]), "T must"),
    "T text": (lambda: simulate_pnbd(3, **PARETO, T="long"), "T must"),
    "gamma zero": (
        lambda: simulate_bgbb(5, alpha=1, beta=1, gamma=0, delta=1, n_periods=3),
        "gamma",
    ),
    "n_periods zero": (
        lambda: simulate_bgbb(5, alpha=1, beta=1, gamma=1, delta=1, n_periods=0),
        "n_periods",
    ),
    "sbg n_periods float": (
        lambda: simulate_sbg(5, alpha=1, beta=1, n_periods=2.0),
        "n_periods",
    ),
    "frequency negative": (lambda: simulate_gamma_gamma([1, -1], **SPEND), "frequency"),
    "frequency fraction": (lambda: simulate_gamma_gamma([1.5], **SPEND), "frequency"),
    "frequency nan": (lambda: simulate_gamma_gamma([np.nan], **SPEND), "frequency"),
    "frequency empty": (lambda: simulate_gamma_gamma([], **SPEND), "frequency"),
    "q zero": (lambda: simulate_gamma_gamma([1], p=1, q=0, gamma=1), "q must"),
    "random_state": (lambda: simulate_bgnbd(5, **BGNBD, T=1.0, random_state="x"), "random_state"),
    "huge rates": (
        lambda: simulate_bgnbd(5, r=1, alpha=1e-30, a=1, b=1, T=10.0, random_state=0),
        "alpha",
    ),
    "unknown model": (lambda: simulate_transactions("bgbb", 5, params={}), "model"),
    "missing param": (
        lambda: simulate_transactions("bgnbd", 5, params=dict(r=1, alpha=1, a=1)),
        "params",
    ),
    "extra param": (
        lambda: simulate_transactions("pnbd", 5, params={**PARETO, "a": 1}),
        "params",
    ),
    "negative param": (
        lambda: simulate_transactions("bgnbd", 5, params={**BGNBD, "b": -1}),
        "params['b']",
    ),
    "spend key": (
        lambda: simulate_transactions("bgnbd", 5, params=BGNBD, spend=dict(p=1, q=2)),
        "spend",
    ),
    "time_unit": (
        lambda: simulate_transactions("bgnbd", 5, params=BGNBD, time_unit="fortnight"),
        "time_unit",
    ),
    "start": (lambda: simulate_transactions("bgnbd", 5, params=BGNBD, start="soon"), "start"),
    "end before start": (
        lambda: simulate_transactions("bgnbd", 5, params=BGNBD, observation_end="2019-01-01"),
        "observation_end",
    ),
    "acquisition after end": (
        lambda: simulate_transactions("bgnbd", 5, params=BGNBD, acquisition_end="2030-01-01"),
        "acquisition_end",
    ),
    "lost beyond horizon": (
        lambda: sbg_lost_per_period(
            simulate_sbg(50, alpha=1, beta=5, n_periods=3, random_state=0), 4
        ),
        "n_periods",
    ),
    "lost missing column": (
        lambda: sbg_lost_per_period(pd.DataFrame({"lifetime": [1]}), 1),
        "censored",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_arguments_raise_invalid_data_error(case):
    call, fragment = BAD_CALLS[case]
    with pytest.raises(InvalidDataError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)


def test_the_old_pareto_nbd_name_warns_and_is_the_same_function():
    import clvmodels.simulate as simulate_module

    with pytest.warns(FutureWarning, match="now simulate_pnbd"):
        old = simulate_module.simulate_pareto_nbd
    assert old is simulate_pnbd
    with pytest.raises(AttributeError):
        _ = simulate_module.simulate_nothing


# ------------------------------------------------ covariates in transaction logs

_PNBD = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 8.0}


def _calendar(weeks: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"date": pd.date_range("2021-01-04", periods=weeks, freq="7D"),
                         "promo": (rng.uniform(size=weeks) < 0.4) * 1.0})  # fmt: skip


def test_time_varying_purchases_match_the_model_mean() -> None:
    # oracle: every customer starts at once, so E[repeat purchases by T] =
    # E[lambda] int_0^T a(u) P(alive at u) du = (r / alpha) int_0^T a(u)
    # (beta / (beta + B(u)))^s du (Bachmann, Meierer & Naf 2021), by quadrature
    calendar = _calendar()
    g_p, g_d, T = 0.7, 0.9, 50.0
    log = simulate_transactions(
        "pnbd", 60_000, params=_PNBD, start="2021-01-04", observation_end="2021-12-20",
        time_unit="W", covariates=calendar, purchase_coefficients={"promo": g_p},
        dropout_coefficients={"promo": g_d}, random_state=3,
    )  # fmt: skip
    repeats = log.groupby("customer_id").size().to_numpy() - 1
    promo = calendar["promo"].to_numpy()

    def B(u: float) -> float:
        whole = int(u)
        return float(np.exp(g_d * promo[:whole]).sum() + (u - whole) * np.exp(g_d * promo[whole]))

    parts = [integrate.quad(lambda u, k=k: np.exp(g_p * promo[k])
                            * (_PNBD["beta"] / (_PNBD["beta"] + B(u))) ** _PNBD["s"],
                            k, min(k + 1, T))[0] for k in range(int(T))]  # fmt: skip
    expected = _PNBD["r"] / _PNBD["alpha"] * sum(parts)
    error = repeats.std() / np.sqrt(repeats.size)
    assert abs(repeats.mean() - expected) < 4 * error
    # the check can fail: without the covariates the mean is many standard errors away
    plain = _PNBD["r"] / _PNBD["alpha"] * integrate.quad(
        lambda u: (_PNBD["beta"] / (_PNBD["beta"] + u)) ** _PNBD["s"], 0, T)[0]
    assert abs(expected - plain) > 10 * error


def test_time_varying_log_is_ordered_and_inside_the_window() -> None:
    calendar = _calendar()
    per_customer = pd.concat([calendar.assign(customer_id=i, promo=float(i % 2))
                              for i in range(50)])  # fmt: skip
    for table in (calendar, per_customer):
        log = simulate_transactions(
            "pnbd", 50, params=_PNBD, start="2021-01-04", acquisition_end="2021-03-01",
            observation_end="2021-12-20", time_unit="W", covariates=table,
            purchase_coefficients={"promo": 1.0}, random_state=1,
        )  # fmt: skip
        assert log["customer_id"].is_monotonic_increasing
        assert log.groupby("customer_id")["date"].apply(lambda d: d.is_monotonic_increasing).all()
        assert log["date"].min() >= pd.Timestamp("2021-01-04")
        assert log["date"].max() <= pd.Timestamp("2021-12-20")
        assert log["customer_id"].nunique() == 50


def test_time_varying_simulation_refusals() -> None:
    calendar = _calendar()
    common = dict(params=_PNBD, start="2021-01-04", time_unit="W", random_state=0)
    with pytest.raises(InvalidDataError, match=r"every customer .* observation_end"):
        simulate_transactions("pnbd", 10, observation_end="2022-06-01", covariates=calendar,
                              **common)  # fmt: skip
    with pytest.raises(InvalidDataError, match=r"customer 3 .* first purchase"):
        late = pd.concat([calendar.assign(customer_id=i) for i in range(10)])
        late = late[~((late["customer_id"] == 3) & (late["date"] == "2021-01-04"))]
        simulate_transactions("pnbd", 10, observation_end="2021-12-01", covariates=late,
                              **common)  # fmt: skip
    with pytest.raises(InvalidDataError, match="Pareto/NBD"):
        simulate_transactions("bgnbd", 10, params=dict(r=1, alpha=1, a=1, b=1),
                              start="2021-01-04", observation_end="2021-12-01",
                              covariates=calendar)  # fmt: skip
    with pytest.raises(InvalidDataError, match="'price', which is not a column"):
        simulate_transactions("pnbd", 10, observation_end="2021-12-01", covariates=calendar,
                              purchase_coefficients={"price": 1.0}, **common)  # fmt: skip


@pytest.mark.parametrize("model, params", [
    ("bgnbd", dict(r=0.24, alpha=4.41, a=0.79, b=2.43)), ("pnbd", _PNBD),
    ("mbgnbd", dict(r=0.24, alpha=4.41, a=0.79, b=2.43))])  # fmt: skip
def test_static_covariates_in_a_log(model, params) -> None:
    common = dict(params=params, start="2021-01-01", observation_end="2021-12-31",
                  time_unit="W")  # fmt: skip
    z = pd.DataFrame({"vip": np.r_[np.zeros(4000), np.ones(4000)]})
    plain = simulate_transactions(model, 8000, random_state=5, **common)
    zero = simulate_transactions(model, 8000, random_state=5, covariates=z,
                                 purchase_coefficients={"vip": 0.0}, **common)  # fmt: skip
    pd.testing.assert_frame_equal(plain, zero)  # zero coefficients: the plain model
    log = simulate_transactions(model, 8000, random_state=5, covariates=z,
                                purchase_coefficients={"vip": 1.0}, **common)  # fmt: skip
    counts = log.groupby("customer_id").size().to_numpy()
    assert counts[4000:].mean() > 1.3 * counts[:4000].mean()

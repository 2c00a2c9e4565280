"""Numerics shared by BG/NBD and MBG/NBD (plain arrays in and out, broadcasting).

Both models: while alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after
each repeat purchase they drop out with probability p ~ Beta(a, b). MBG/NBD (Batislam,
Denizel & Filiztekin 2007) also lets them drop out right after the first purchase, at
time 0. Written with ``shift`` = 0 (BG/NBD) or 1 (MBG/NBD), every expression is the same:

* given the history (x, t_x, T), a customer alive at T has posterior
  lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x + shift);
* the odds of being dead at T are a / (b + x + shift - 1) * ((alpha + T) /
  (alpha + t_x))^(r + x), for x > 0 (BG/NBD) or all x (MBG/NBD): Fader, Hardie & Lee
  (2008) "Computing P(alive) using the BG/NBD model" (note), eq. (2), whose reciprocal
  plus one is P(alive); for MBG/NBD the same follows from the likelihood of Batislam et
  al. (2007), eq. (4), with b + x + 1 in place of b + x.

Fader, Hardie & Lee (2005) "Counting your customers the easy way" (FHL 2005) gives the
BG/NBD likelihood, eq. (6), and the expectations, eqs. (7)-(10).

The log-likelihood is written in the log-sum-exp form of Hardie's note "Overcoming the
BG/NBD model's #NUM! error problem" (2005), so it is finite for any frequency.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1

from ..numerics.special import CHUNK, beta_expectation, digamma_difference, log_rising
from ._base import weighted_sum

__all__ = [
    "WeightedPatterns",
    "expected_purchases",
    "log_likelihood",
    "probability_alive",
    "probability_purchases",
    "probability_repurchase_new",
    "weighted_log_likelihood",
]

# Within this distance h of a = 1 the expected purchases are interpolated by the cubic
# through a = 1 - 2h, 1 - h, 1 + h, 1 + 2h (see expected_purchases).
_A_ONE = 1e-3
_A_NODES = (-2.0, -1.0, 1.0, 2.0)
# From this a + b' on (b' = b + x + shift, the posterior Beta of the dropout
# probability), the expectations over that probability are summed as the series of
# positive terms of _nb_series instead of through scipy's hyp2f1. The first parameter of
# the 2F1s below is about a, and their series needs about a w terms: at a = b = 1e12 (a
# fit that ran to the boundary) scipy fails, and the fallbacks took about 3 s per 1,000
# customers, already 0.1 s at a = b = 1,000. The cost of _nb_series does not depend on a
# or b'. Below the threshold scipy is exact and faster; across it the two agree to about
# 1e-14 (tests/models/test_bgnbd.py).
_LARGE = 500.0
# Most terms _nb_series sums for one row (about the negative binomial's mean
# R w / (1 - w) plus 40 / (1 - w)); a row that would need more (w near 1: a horizon
# long next to alpha + T, or thousands of purchases) is integrated instead, which costs
# about as much as 2,000 terms whatever the parameters.
_NB_TERMS = 2048
# Where the posterior Beta of the dropout probability is this concentrated, the
# expectations over it are the limit model's closed forms plus their first corrections
# (_moment_form): eps = (R + 3)^2 sigma^2 m2 <= 1e-8 bounds the first neglected term by
# about eps^2 / 6 < 2e-17 of the value. That covers fits at the boundary (a, b ~ 1e12)
# at the cost of a closed form; the series (_nb_series) does the rest.
_MOMENT_EPS = 1e-8
# Below this, 1 - tail in the closed form of the expected purchases has lost too many
# digits to cancellation (more than four) and the series is used instead.
_CANCELLED = 1e-4


def _logaddexp(a, b):
    """log(exp(a) + exp(b)) for finite a and b <= +inf or -inf; faster than np.logaddexp."""
    high = np.maximum(a, b)
    return high + np.log1p(np.exp(-np.abs(a - b)))


def _dead_log_odds(x, t_x, T, r, alpha, a, b, shift):
    """log of the odds that the customer dropped out before T; -inf where impossible."""
    possible = (x > 0) | (shift > 0)
    denominator = np.where(possible, b + x + shift - 1, 1.0)
    log_odds = np.log(a) - np.log(denominator) + (r + x) * np.log1p((T - t_x) / (alpha + t_x))
    return np.where(possible, log_odds, -np.inf)


def log_likelihood(
    x, t_x, T, r, alpha, a, b, *, shift: int, gradient: bool = False, x_groups=None
):
    """Per-customer log-likelihood and its gradient in (r, alpha, a, b).

    BG/NBD: FHL (2005) eq. (6); MBG/NBD: Batislam et al. (2007) eq. (4). With
    B = Beta function:  L = Gamma(r+x) alpha^r / Gamma(r) * [ B(a, b+x+shift) / B(a, b)
    (alpha+T)^-(r+x) + [x>0 or shift] B(a+1, b+x+shift-1) / B(a, b) (alpha+t_x)^-(r+x) ].

    ``x_groups = (distinct x, index of each row's x)`` lets the special functions of x
    be evaluated once per distinct frequency instead of once per row.
    """
    xu, row = (x, ...) if x_groups is None else x_groups
    possible = (xu > 0) | (shift > 0)
    b_post = b + xu + shift
    b_dead = np.where(possible, b_post - 1, 1.0)
    common = (gammaln(r + xu) - gammaln(r) + r * np.log(alpha) - betaln(a, b))[row]
    log_t = np.log(alpha + T)
    log_tx = np.log(alpha + t_x)
    alive = betaln(a, b_post)[row] - (r + x) * log_t
    dead = np.where(possible, betaln(a + 1, b_dead), -np.inf)[row] - (r + x) * log_tx
    total = _logaddexp(alive, dead)
    ll = common + total
    if not gradient:
        return ll, None
    w_dead = np.exp(dead - total)
    w_alive = 1.0 - w_dead
    psi_ab = digamma(a + b)
    d_r = (digamma(r + xu) - digamma(r))[row] + np.log(alpha)
    d_r = d_r - w_alive * log_t - w_dead * log_tx
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead / (alpha + t_x))
    # d/du log B(u, v) = psi(u) - psi(u + v)
    psi_alive = digamma(a + b_post)
    psi_dead = digamma(a + 1 + b_dead)
    alive_a = (digamma(a) - psi_alive)[row]
    dead_a = np.where(possible, digamma(a + 1) - psi_dead, 0.0)[row]
    d_a = -(digamma(a) - psi_ab) + w_alive * alive_a + w_dead * dead_a
    alive_b = (digamma(b_post) - psi_alive)[row]
    dead_b = np.where(possible, digamma(b_dead) - psi_dead, 0.0)[row]
    d_b = -(digamma(b) - psi_ab) + w_alive * alive_b + w_dead * dead_b
    return ll, [d_r, d_alpha, d_a, d_b]


class WeightedPatterns:
    """Data-only quantities of :func:`weighted_log_likelihood` for fixed patterns and
    weights: distinct frequencies, T and recency values with each row's index into them,
    per-frequency and per-T sums of the weights, and the rows where dropping out before T
    is possible (x > 0, or every row for MBG/NBD). Computed once per fit."""

    def __init__(self, x, t_x, T, weights, *, shift: int) -> None:
        x = np.asarray(x, dtype=np.float64)
        t_x = np.asarray(t_x, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        self.shift = shift
        self.total_weight = float(w.sum())
        self.x_values, x_row = np.unique(x, return_inverse=True)
        self.T_values, T_row = np.unique(T, return_inverse=True)
        self.weight_per_x = np.bincount(x_row, w, minlength=self.x_values.size)
        self.weight_per_T = np.bincount(T_row, w, minlength=self.T_values.size)
        self.weight_x_per_T = np.bincount(T_row, w * x, minlength=self.T_values.size)
        rows = np.flatnonzero((x > 0) | (shift > 0))
        self.t_x_values, t_row = np.unique(t_x[rows], return_inverse=True)
        self.possible = (self.x_values > 0) | (shift > 0)
        self.time_values = np.concatenate((self.T_values, self.t_x_values))
        self.weights_per_T = np.stack(
            (self.weight_per_T, self.weight_x_per_T, self.weight_per_T, self.weight_x_per_T)
        )
        self.x = x[rows]
        self.w = w[rows]
        self.x_row = x_row[rows].astype(np.intp)
        self.T_row = T_row[rows].astype(np.intp)
        self.t_row = t_row.astype(np.intp)
        # per row: T, t_x and T - t_x (for log(alpha+T) - log(alpha+t_x) as a log1p)
        self.T_rows = T[rows]
        self.t_x_rows = t_x[rows]
        self.T_minus_t = self.T_rows - self.t_x_rows


# Up to this many whole offsets the ratios below are prefix sums (a few microseconds);
# beyond it, where one customer's frequency would make the sums long, closed forms are
# evaluated at the distinct offsets only, so the cost does not grow with the frequency.
_PREFIX_LIMIT = 4096


def _ratio_sums(u, v, count: int) -> np.ndarray:
    """Prefix sums over j < k (k = 0 .. count) that give log-ratios of Gamma and Beta
    functions at whole offsets without cancellation:

        L[k] = sum log((v+j) / (u+v+j))     = log B(u, v+k) - log B(u, v)
        U[k] = sum 1 / (u+v+j)              = psi(u+v+k) - psi(u+v)
        V[k] = sum u / ((v+j) (u+v+j))      = d/dv (log B(u, v+k) - log B(u, v))

    With u = None the first two are instead log Gamma(v+k) - log Gamma(v) and
    psi(v+k) - psi(v) (and V = 0). (None, not 0: a = 0 after an underflow must still
    give the Beta ratios.)
    """
    j = np.arange(count, dtype=np.float64)
    vj = v + j
    out = np.zeros((3, count + 1))
    if u is None:
        np.cumsum(np.log(vj), out=out[0, 1:])
        np.cumsum(1.0 / vj, out=out[1, 1:])
        return out
    uvj = u + vj
    np.cumsum(-np.log1p(u / vj), out=out[0, 1:])
    np.cumsum(1.0 / uvj, out=out[1, 1:])
    np.cumsum(u / vj / uvj, out=out[2, 1:])  # divided in turn: no overflow at 1e160
    return out


def _offset_ratios(u, v, k: np.ndarray) -> np.ndarray:
    """L, U and V of :func:`_ratio_sums` at the whole offsets ``k`` (3 x len(k)).

    Long ranges use log (v)_k - log (u+v)_k and differences of digammas written without
    cancellation (:func:`~clvmodels.numerics.special.log_rising`,
    :func:`~clvmodels.numerics.special.digamma_difference`); their absolute error is
    about k log(v) machine epsilons, harmless in a log-likelihood.
    """
    top = int(k.max(initial=0))
    if top <= _PREFIX_LIMIT:
        return _ratio_sums(u, v, top)[:, k]
    k = k.astype(np.float64)
    if u is None:
        return np.stack((log_rising(v, k), digamma_difference(v, k), np.zeros_like(k)))
    harmonic = digamma_difference(u + v, k)
    return np.stack((log_rising(v, k) - log_rising(u + v, k), harmonic,
                     digamma_difference(v, k) - harmonic))  # fmt: skip


def weighted_log_likelihood(patterns: WeightedPatterns, r, alpha, a, b):
    """sum_k w_k log L_k and its gradient in (r, alpha, a, b), for many patterns.

    The same likelihood as :func:`log_likelihood` (FHL 2005 eq. (6); Batislam et al.
    2007 eq. (4)), arranged so that the work per pattern is small and so that no term
    is the difference of two large numbers. With y = x + shift, each row's
    log-likelihood is

        [log Gamma(r+x) - log Gamma(r)] + [log B(a, b+y) - log B(a, b)]
          - r log(1 + T/alpha) - x log(alpha+T) + softplus(d),
        d = c_y + (r+x) log(1 + (T - t_x) / (alpha + t_x)),
        c_y = log B(a+1, b+y-1) - log B(a, b+y) = log a - log(b+y-1)

    (softplus(d) = log(1 + e^d) is the log-sum-exp of Hardie's #NUM! note; d = -inf
    where dropping out is impossible; c_y follows from B(a+1, b+y-1) / B(a, b+y) =
    a / (b+y-1) by Gamma(z+1) = z Gamma(z)). The bracketed differences are products
    over j < x or j < y (:func:`_offset_ratios`): B(a, b+y) / B(a, b) = prod (b+j) /
    (a+b+j). Taken as differences of betaln / gammaln values they cancel
    catastrophically for huge parameters (a = 1e16, b = 1e24: errors of thousands of
    log-units, a spurious mode that a sampler finds). Every term but softplus(d)
    depends on x or on T alone, so it is summed over distinct values with the weights
    added up beforehand; only d and its sigmoid are computed per row.
    """
    p = patterns
    possible = p.possible
    y = (p.x_values + p.shift).astype(np.intp)
    x = p.x_values.astype(np.intp)
    alive, harmonic_ab, alive_b = _offset_ratios(a, b, y)
    gamma_log, harmonic_r, _ = _offset_ratios(None, r, x)
    alive_a = -harmonic_ab
    rest = np.where(possible, b + y - 1.0, 1.0)  # b + y - 1 > 0 where dropout is possible
    c_x = np.where(possible, np.log(a) - np.log(rest), 0.0)

    # per row: d, softplus(d) and sigmoid(d) = the posterior weight of "dead"
    gap = p.T_minus_t / (alpha + p.t_x_rows)
    np.log1p(gap, out=gap)
    rx = p.x + r
    d = rx * gap
    d += c_x.take(p.x_row)
    e = np.abs(d)
    np.negative(e, out=e)
    np.exp(e, out=e)
    softplus = np.log1p(e)
    softplus += np.maximum(d, 0.0)
    inv = e + 1.0
    np.reciprocal(inv, out=inv)
    ws = np.where(d >= 0, inv, e * inv)
    ws *= p.w
    # d/dalpha of log(alpha+T) - log(alpha+t_x)
    inv_gap = p.T_minus_t / (alpha + p.T_rows) / (alpha + p.t_x_rows)
    inv_gap *= -rx
    row_sums = (_sums(p.w, softplus), _sums(ws, gap), _sums(ws, inv_gap))
    dead_per_x = np.bincount(p.x_row, ws, minlength=p.x_values.size)

    # per distinct T: r log(1 + T/alpha) + x log(alpha + T) and their derivatives
    shifted = alpha + p.T_values
    per_T = np.stack((np.log1p(p.T_values / alpha), np.log(shifted),
                      p.T_values / alpha / shifted, 1.0 / shifted))  # fmt: skip
    T_sums = _sums(p.weights_per_T, per_T)
    x_sums = _sums(p.weight_per_x, np.stack((gamma_log + alive, harmonic_r, alive_a,
                                             alive_b)))  # fmt: skip
    # d c_y / da = 1 / a and d c_y / db = -1 / (b+y-1), weighted by P(dead | history)
    dead_sums = _sums(dead_per_x, np.stack((np.where(possible, 1.0 / a, 0.0),
                                            np.where(possible, -1.0 / rest, 0.0))))  # fmt: skip
    log_T_w, log_T_wx, inv_T_w, inv_T_wx = T_sums
    total = x_sums[0] - r * log_T_w - log_T_wx + row_sums[0]
    d_r = x_sums[1] - log_T_w + row_sums[1]
    d_alpha = r * inv_T_w - inv_T_wx + row_sums[2]
    d_a = x_sums[2] + dead_sums[0]
    d_b = x_sums[3] + dead_sums[1]
    return float(total), np.array([d_r, d_alpha, d_a, d_b], dtype=np.float64)


def _sums(weights, values) -> np.ndarray:
    """Row sums of ``weights * values`` (broadcasting), elementwise, not BLAS: its dot
    product competes for cores with the sampler's processes."""
    return np.multiply(weights, values).sum(axis=-1)


def probability_alive(x, t_x, T, r, alpha, a, b, *, shift: int, t=0.0):
    """P(alive at T + t | x, t_x, T).

    At T it is 1 / (1 + dead odds). Further ahead, an alive customer survives each
    purchase with probability 1 - p, so P(no dropout by T + t) = E[exp(-lambda p t)]
    under the alive posterior, which is E[(1 + p s)^-(r + x)], s = t / (alpha + T), over
    p ~ Beta(a, b + x + shift), i.e. 2F1(r + x, a; a + b + x + shift; -s) by Euler's
    integral for 2F1 (Abramowitz & Stegun 15.3.1). Pfaff's transformation (A&S 15.3.5)
    turns its large negative argument into w = t / (alpha + T + t) in [0, 1):
    ((alpha + T) / (alpha + T + t))^a 2F1(a, a + b + shift - r; a + b + x + shift; w).

    That 2F1 is scipy's ``hyp2f1`` while a + b + x + shift < ``_LARGE``. From there on
    the Beta is concentrated: where it is enough so (``_MOMENT_EPS``) the expectation is
    the limit model's closed form with its first corrections (:func:`_moment_form`),
    elsewhere, and where scipy fails (NaN in corners such as c - b tiny with w near 1)
    or its result lies outside the range the expectation must lie in,
    [(1 + s)^-(r + x), 1], the series of positive terms of :func:`_nb_series` (Pfaff's
    other transformation, DLMF 15.8.1), whose cost does not depend on a and b. Where
    that would need more than ``_NB_TERMS`` terms, the expectation is integrated
    numerically (:func:`~clvmodels.numerics.special.beta_expectation`).
    """
    alive_now = expit(-_dead_log_odds(x, t_x, T, r, alpha, a, b, shift))
    t = np.asarray(t, dtype=np.float64)
    if np.all(t == 0):
        return alive_now
    w = t / (alpha + T + t)
    s = t / (alpha + T)
    R = r + x
    b_post = b + x + shift
    log_power = a * np.log1p(-w)
    c = a + b_post
    args = np.broadcast_arrays(a, c - R, c, w, log_power, s, R, b_post)
    a_, b_, c_, w_, log_power_, s_, R_, b_post_ = args
    survive = np.full(a_.shape, np.nan)
    small = c_ < _LARGE
    if np.any(small):
        with np.errstate(invalid="ignore", over="ignore"):
            survive[small] = np.exp(log_power_[small]) * hyp2f1(
                a_[small], b_[small], c_[small], w_[small]
            )
    lowest = np.exp(-R_ * np.log1p(s_))  # all survive at p = 1
    large = ~small
    if np.any(large):
        survive[large] = _moment_form(s_[large], R_[large], a_[large], b_post_[large],
                                      expected=False)  # fmt: skip
    bad = ~_within(survive, lowest, 1.0)
    if np.any(bad):
        survive[bad] = _nb_series(w_[bad], R_[bad], a_[bad], b_post_[bad], expected=False)
        hard = ~_within(survive, lowest, 1.0)
        if np.any(hard):
            survive[hard] = beta_expectation(
                _log_survival, a_[hard], b_post_[hard], scale=R_[hard] * s_[hard],
                args=(R_[hard], s_[hard]),
            )  # fmt: skip
    return alive_now * np.clip(survive, lowest, 1.0)


def _nb_series(w, R, a, b_post, *, expected: bool, rtol: float = 1e-15,
               max_terms: int = _NB_TERMS, count_terms: bool = False):  # fmt: skip
    """E[(1 - p)^N] or, with ``expected``, E[min(N, K)], by series of positive terms.

    For a customer alive at T: N is the number of purchases in (T, T + t] if they never
    dropped out, negative binomial under the posterior lambda ~ Gamma(R, alpha + T)
    (R = r + x; the Poisson-gamma mixture of FHL 2005, sec. 3):
    P(N = n) = (R)_n / n! w^n (1 - w)^R, w = t / (alpha + T + t). After each purchase
    they drop out with probability p ~ Beta(a, b'), so they survive k purchases with
    probability v_k = E[(1 - p)^k] = (b')_k / (a + b')_k.

    * P(alive at T + t | alive at T) = E[(1 - p)^N] = sum_n P(N = n) v_n
      = (1 - w)^R 2F1(R, b'; a + b'; w): Pfaff's transformation (DLMF 15.8.1) of
      E[(1 + p s)^-R] = 2F1(R, a; a + b'; -s) (see :func:`probability_alive`) on its
      first parameter, where the one used there acts on the second.
    * E[X(T, T + t) | alive at T] = E[min(N, K)], K the purchase after which the
      customer drops out (P(K > k) = v_k), = sum_k P(N > k) v_k = sum_n P(N = n) V_n,
      V_n = sum_{k<n} v_k. For a > 1 this is c / (a - 1) (1 - tail) of
      :func:`_expected_if_alive` term by term (1 = (1 - w)^R sum_n (R)_n w^n / n!,
      DLMF 15.4.6), without its 1 - tail cancellation or its 0 / 0 at a = 1.

    Every term is positive and kept as a logarithm, v_k through
    log1p(-a / (a + b' + j)) (exact for any a, b'), so nothing cancels. The terms follow
    the negative binomial: about R w / (1 - w) + 40 / (1 - w) of them, whatever a and b'
    (as a, b' -> infinity with a / (a + b') -> mu it tends to the fixed-dropout limit
    model, (1 + mu s)^-R and (1 - (1 + mu s)^-R) / mu, at no extra cost).

    Tail bound: P(N = j + 1) / P(N = j) = w (R + j) / (j + 1); v_k decreases in k, so
    v_{j+1} <= v_j and V_{j+1} / V_j <= (j + 1) / j. After term m every later ratio of
    summands is at most rho = w max(1, (R + m) / (m + 1)) (first series) or
    w (R + m) / m (second), and the rest at most term_m rho / (1 - rho); summing stops
    once that is below ``rtol`` times the sum. NaN where ``max_terms`` terms would not
    suffice (judged beforehand from the negative binomial's mean and spread, and
    checked). With ``count_terms``, also the number of terms each element took.
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (w, R, a, b_post))
    )
    shape = arrays[0].shape
    w, R, a, b_post = (v.ravel() for v in arrays)
    result = np.full(w.size, np.nan)
    used = np.zeros(w.size, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_w = np.log(w)
        # the negative binomial's mean, plus 10 standard deviations, plus the geometric
        # tail at rate w: about the terms a row needs
        spread = R * w
        need = (spread + 10 * np.sqrt(spread) + 40) / (1 - w)
    rows = np.flatnonzero(need <= max_terms)
    log_pmf = R[rows] * np.log1p(-w[rows])  # log P(N = n), n = 0
    log_v = np.zeros(rows.size)  # log v_n
    big_v = np.zeros(rows.size)  # V_n
    ref = np.full(rows.size, -np.inf)  # the sum is kept divided by exp(ref)
    total = np.zeros(rows.size)
    n = 0
    block = 16
    while rows.size and n < max_terms:
        k = n + np.arange(block, dtype=np.float64)
        wr, Rr, ar, br = (v[rows, None] for v in (log_w, R, a, b_post))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step_pmf = np.log(Rr + k) - np.log1p(k) + wr  # log P(N=k+1) - log P(N=k)
            step_v = np.log1p(-ar / (ar + br + k))  # log v_(k+1) - log v_k
            logs_pmf = log_pmf[:, None] + _exclusive_cumsum(step_pmf)
            logs_v = log_v[:, None] + _exclusive_cumsum(step_v)
            if expected:
                # V_k = V_n + sum_(n <= j < k) v_j (0 < v_j <= 1, so V_k <= k: no
                # overflow, and a v_j that underflows is negligible next to V_k)
                v_k = np.exp(logs_v)
                big_v_k = big_v[:, None] + _exclusive_cumsum(v_k)
                logs = logs_pmf + np.log(big_v_k)
                big_v = big_v_k[:, -1] + v_k[:, -1]
            else:
                logs = logs_pmf + logs_v
            log_pmf = logs_pmf[:, -1] + step_pmf[:, -1]
            log_v = logs_v[:, -1] + step_v[:, -1]
            new_ref = np.fmax(ref, np.max(logs, axis=1))
            rescale = np.where(ref == new_ref, 1.0, np.exp(ref - new_ref))
            total = total * rescale + np.exp(logs - new_ref[:, None]).sum(axis=1)
            ref = new_ref
        n += block
        last = n - 1.0
        w_now, R_now = w[rows], R[rows]
        if expected:
            rho = w_now * (R_now + last) / last
        else:
            rho = w_now * np.maximum(1.0, (R_now + last) / (last + 1))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rest = np.exp(logs[:, -1] - ref) * rho / (1 - rho)
            done = (logs[:, -1] == -np.inf) | ((rho < 1) & (rest <= rtol * total))
        if done.any():
            finished = rows[done]
            with np.errstate(divide="ignore"):
                result[finished] = np.exp(np.log(total[done]) + ref[done])
            used[finished] = n
            keep = ~done
            rows, log_pmf, log_v, big_v, ref, total = (
                v[keep] for v in (rows, log_pmf, log_v, big_v, ref, total)
            )
        block = int(min(2 * block, 512, max(16, CHUNK // max(rows.size, 1))))
    if count_terms:
        return result.reshape(shape), used.reshape(shape)
    return result.reshape(shape)


def _moment_form(s, R, a, b_post, *, expected: bool, eps_max: float = _MOMENT_EPS):
    """E[(1 + p s)^-R] (or, with ``expected``, E[X(T, T + t) | alive at T]) over
    p ~ Beta(a, b') by Taylor's expansion about the mean to the third central moment;
    NaN where the Beta is not concentrated enough for it (``eps_max``).

    The limit of a, b' -> infinity with a / (a + b') -> mu is the model whose dropout
    probability is mu for everyone: E[g(p)] -> g(mu). With N = a + b', nu = 1 - mu =
    b' / N, m2 = mu nu / (N + 1) and m3 = 2 mu nu (nu - mu) / ((N + 1)(N + 2)) (the
    central moments of the Beta), and g(p) = (1 + p s)^-R, whose k-th derivative is
    g(mu) (-1)^k (R)_k sigma^k, sigma = s / (1 + mu s):

        E[g(p)] = g(mu) [1 + (R)_2 sigma^2 m2 / 2 - (R)_3 sigma^3 m3 / 6 + ...].

    The next term is (R)_4 sigma^4 m4 / 24 with m4 ~ 3 m2^2 (the Beta is nearly normal
    there), under eps^2 / 6 for eps = (R + 3)^2 sigma^2 m2, and each later one is
    smaller by about a factor eps; g is analytic within 1 / sigma of mu, which lies
    beyond 1 / sqrt(eps) >= 1e4 standard deviations of p, so the mass outside the
    expansion's reach is negligible. Used where eps <= ``eps_max`` (1e-8: the omitted
    terms below 2e-17 of the value).

    E[X | alive] = E[(1 - g(p)) / p] = c / (a - 1) E'[1 - g(p)], E' over
    Beta(a - 1, b') and c = a + b' - 1 (B(a - 1, b') / B(a, b') = c / (a - 1)), and
    E'[1 - g(p)] = (1 - g(mu')) - g(mu') [corrections]: the leading part by expm1, so
    nothing cancels however short the horizon (a >= 2 here).
    """
    if expected:
        a = a - 1.0
    n = a + b_post
    mu, nu = a / n, b_post / n
    sigma = s / (1 + mu * s)
    m2 = mu * nu / (n + 1)
    m3 = 2 * mu * nu * (nu - mu) / ((n + 1) * (n + 2))
    log_g = -R * np.log1p(mu * s)
    correction = R * (R + 1) * sigma**2 * (m2 / 2 - (R + 2) * sigma * m3 / 6)
    eps = (R + 3) ** 2 * sigma**2 * m2
    if expected:
        value = (n / a) * (-np.expm1(log_g) - np.exp(log_g) * correction)
    else:
        value = np.exp(log_g) * (1 + correction)
    return np.where(eps <= eps_max, value, np.nan)


def _exclusive_cumsum(steps: np.ndarray) -> np.ndarray:
    """Along the last axis: 0, s_0, s_0 + s_1, ... (one fewer step than entries)."""
    out = np.zeros_like(steps)
    np.cumsum(steps[:, :-1], axis=1, out=out[:, 1:])
    return out


def _within(value, low, high, slack=1e-12):
    """value is finite and within [low, high] up to a relative slack (rounding)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(value) & (value >= low * (1 - slack)) & (value <= high * (1 + slack))


def _log_survival(p, q, R, s):
    """log (1 + p s)^-R = log E[exp(-lambda p t)] for lambda ~ Gamma(R, rate t / s)."""
    return -R * np.log1p(p * s)


def _log_expected_given_p(p, q, R, s):
    """log E[min(N, purchases until dropout)] given p, N ~ NB of the Poisson-gamma:
    (1 - (1 + p s)^-R) / p."""
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(-R * np.log1p(p * s))) - np.log(p)


def _expected_if_alive(s, q, R, a, b_post):
    """E[X(T, T + t) | alive at T] for a != 1: (c / (a - 1)) (1 - tail), c = a + b' - 1,
    tail = (1 - q)^(a - 1) 2F1(c - R, a - 1; c; q) (see :func:`expected_purchases`).

    That 2F1 is scipy's ``hyp2f1`` while a + b' < ``_LARGE``. From there on it is the
    limit model's closed form with its first corrections where the Beta is concentrated
    enough (:func:`_moment_form`); elsewhere, and where scipy fails, where 1 - tail has
    cancelled to below ``_CANCELLED`` (short horizons: more than four digits of the 2F1
    lost), or where the result lies outside the range the expectation must lie in
    (below), the expectation is the series of positive terms of :func:`_nb_series`,
    whose cost does not depend on a and b'. Where that would need
    more than ``_NB_TERMS`` terms it is integrated numerically: an alive customer with
    dropout probability p, who would make N purchases ahead if they never dropped out,
    makes min(N, K) of them, K ~ Geometric(p), so
    E[X | alive] = E[(1 - (1 - p)^N) / p] = E[(1 - (1 + p s)^-R) / p] over
    p ~ Beta(a, b'), s = t / (alpha + T) (:func:`~clvmodels.numerics.special.beta_expectation`). The
    integrand decreases in p from R s to 1 - (1 + s)^-R, which bounds the result. The
    series and the integral also cover c <= 0 (a + b' <= 1), where the closed form is a
    removable 0 * inf or has no meaning.
    """
    c = a + b_post - 1
    log_power = (a - 1) * np.log1p(-q)
    args = np.broadcast_arrays(s, q, R, a, b_post, c, log_power)
    s, q, R, a, b_post, c, log_power = args
    expected = np.full(s.shape, np.nan)
    small = (c + 1 < _LARGE) & (c > 0)
    if np.any(small):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            tail = np.exp(log_power[small]) * hyp2f1(
                c[small] - R[small], a[small] - 1, c[small], q[small]
            )
            closed = c[small] / (a[small] - 1) * (1 - tail)
        expected[small] = np.where(np.abs(1 - tail) < _CANCELLED, np.nan, closed)
    # E[g(p)] for g decreasing from g(0) = R s to g(1) = 1 - (1 + s)^-R
    highest = R * s
    lowest = -np.expm1(-R * np.log1p(s))
    moving = s > 0  # nothing happens in no time
    large = (c + 1 >= _LARGE) & (a >= 2)
    if np.any(large):
        expected[large] = _moment_form(s[large], R[large], a[large], b_post[large],
                                       expected=True)  # fmt: skip
    retry = moving & ~_within(expected, lowest, highest)
    if np.any(retry):
        expected[retry] = _nb_series(q[retry], R[retry], a[retry], b_post[retry],
                                     expected=True)  # fmt: skip
        hard = moving & ~_within(expected, lowest, highest)
        if np.any(hard):
            s_, R_ = s[hard], R[hard]
            expected[hard] = beta_expectation(
                _log_expected_given_p, a[hard], b_post[hard], scale=(R_ + 1) * s_,
                args=(R_, s_),
            )  # fmt: skip
    return np.where(moving, np.clip(expected, lowest, highest), 0.0)


def expected_purchases(t, x, t_x, T, r, alpha, a, b, *, shift: int):
    """E[X(T, T + t) | x, t_x, T], the expected purchases in the next t time units.

    BG/NBD: FHL (2005) eq. (10); MBG/NBD: Batislam et al. (2007) eq. (8). The 2F1 is
    taken through Euler's transformation (A&S 15.3.3), under which its first parameter
    a + b + shift - 1 - r no longer grows with x and the power ((alpha + T) /
    (alpha + T + t))^(r + x) becomes (...)^(a - 1): finite for any frequency or horizon.
    For a new customer use x = t_x = T = 0 (FHL 2005 eq. 7).

    The closed form c / (a - 1) * (1 - tail) is 0 / 0 at a = 1 (tail -> 1), and loses
    digits as 1 / |a - 1| around it, while the expectation itself is smooth in a. For
    |a - 1| < h = 1e-3 it is therefore interpolated by the cubic through its values at
    a = 1 - 2h, 1 - h, 1 + h, 1 + 2h: an interpolation error of order h^4 (about 1e-10
    relative) instead of the 0 / 0.
    """
    t = np.asarray(t, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    R = r + x
    b_post = b + x + shift
    s = t / (alpha + T)
    q = t / (alpha + T + t)
    near = np.abs(a - 1) < _A_ONE
    # at a, or (where a is near 1) at the node a = 1 + h
    expected = _expected_if_alive(s, q, R, np.where(near, 1 + _A_ONE, a), b_post)
    if np.any(near):
        z = np.where(near, (a - 1) / _A_ONE, 0.0)
        cubic = 0.0
        for node in _A_NODES:  # Lagrange interpolation in z = (a - 1) / h
            if node == 1.0:
                value = expected
            else:
                nodes = np.where(near, 1 + node * _A_ONE, a)
                value = _expected_if_alive(s, q, R, nodes, b_post)
            weight = 1.0
            for other in _A_NODES:
                if other != node:
                    weight = weight * (z - other) / (node - other)
            cubic = cubic + weight * value
        expected = np.where(near, cubic, expected)
    return probability_alive(x, t_x, T, r, alpha, a, b, shift=shift) * expected


def probability_purchases(t, n, x, t_x, T, r, alpha, a, b, *, shift: int):
    """P(X(T, T + t) = n | x, t_x, T).

    Alive at T (posterior lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b')), with
    b' = b + x + shift: exactly n purchases either by buying n times and surviving them
    all, E[(1 - p)^n] NB(n), or by dropping out right after the n-th of at least n,
    E[p (1 - p)^(n - 1)] P(N >= n); a dead customer buys nothing. NB is the negative
    binomial of the Poisson-gamma mixture; P(N >= n) = I_q(n, r + x) with
    q = t / (alpha + T + t) (regularised incomplete beta). This is FHL (2005) eq. (8)
    conditioned on the history; for a new customer use x = t_x = T = 0.

    The ratios of Gamma and Beta functions are rising factorials, evaluated by
    :func:`~clvmodels.numerics.special.log_rising` (a difference of two log Gammas would lose
    about log10(r + x) digits for huge r), and the power by log1p.
    """
    t = np.asarray(t, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    R = r + x
    b_post = b + x + shift
    alive = probability_alive(x, t_x, T, r, alpha, a, b, shift=shift)
    if not np.all(t > 0):  # t = 0: nothing happens
        return np.where(n == 0, 1.0, 0.0) + 0 * alive
    s = t / (alpha + T)
    log_q = np.log(t) - np.log(alpha + T + t)
    log_nb = log_rising(R, n) - gammaln(n + 1) - R * np.log1p(s) + n * log_q
    # E[(1 - p)^n] = (b')_n / (a + b')_n
    survive_all = np.exp(log_rising(b_post, n) - log_rising(a + b_post, n) + log_nb)
    positive = n > 0
    n_safe = np.where(positive, n, 1.0)
    # E[p (1 - p)^(n - 1)] = a (b')_(n-1) / (a + b')_n
    log_drop = (
        np.log(a) - np.log(a + b_post)
        + log_rising(b_post, n_safe - 1) - log_rising(a + b_post + 1, n_safe - 1)
    )  # fmt: skip
    drop_after_nth = np.exp(log_drop) * betainc(n_safe, R, np.exp(log_q))
    alive_part = survive_all + np.where(positive, drop_after_nth, 0.0)
    return alive * alive_part + np.where(positive, 0.0, 1.0 - alive)


def probability_repurchase_new(t, x, t_x, T, r, alpha, a, b, length, *, shift: int):
    """P(X(t, t + length) > 0) for a newly acquired customer: the share of a cohort that
    purchases between ages t and t + length (``x``, ``t_x``, ``T`` are the new
    customer's zeros, in the signature of the other predictions).

    A customer drops out only right after a purchase (FHL 2005; MBG/NBD, Batislam et al.
    2007: also right after the first), so given lambda and p they are alive at t with
    probability (1 - p)^shift e^(-lambda p t) (the Poisson count of purchases by t, each
    survived with 1 - p), and then purchase in the window with 1 - e^(-lambda length).
    Over lambda ~ Gamma(r, alpha):

        P = E_p[(1 - p)^shift ((1 + p t/alpha)^-r - (1 + (p t + length)/alpha)^-r)],

    the difference taken as (1 + p t/alpha)^-r (1 - (1 + length/(alpha + p t))^-r) by
    expm1 (no cancellation), and the expectation over p ~ Beta(a, b) by
    :func:`~clvmodels.numerics.special.beta_expectation`; (1 - p) shifts b to b + 1
    with the factor b / (a + b).
    """
    t, length, r, alpha, a, b = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (t, length, r, alpha, a, b))
    )
    ahead = t / alpha
    window = length / alpha
    scale = (r + 1.0) * ahead
    b_shifted = b + shift
    value = beta_expectation(_log_repurchase_given_p, a, b_shifted, scale=scale,
                             args=(r, ahead, window))  # fmt: skip
    if shift:
        value = value * b / (a + b)
    return np.where(length > 0, np.clip(value, 0.0, 1.0), 0.0)


def _log_repurchase_given_p(p, q, r, ahead, window):
    """log of (1 + p ahead)^-r (1 - (1 + window / (1 + p ahead))^-r)."""
    with np.errstate(divide="ignore"):
        grown = np.log1p(p * ahead)
        return -r * grown + np.log(-np.expm1(-r * np.log1p(window / np.exp(grown))))


def start_values(data, weights) -> np.ndarray:
    """Where BG/NBD and MBG/NBD fits start: r = 1 and alpha matching the observed
    purchase rate; a = b = 1."""
    rate = weighted_sum(weights, data["frequency"]) / max(weighted_sum(weights, data["T"]), 1e-12)
    alpha = 1.0 / max(rate, 1e-6)
    return np.array([1.0, min(alpha, 1e6), 1.0, 1.0])

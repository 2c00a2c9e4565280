"""Numerics shared by BG/NBD and MBG/NBD (plain arrays in and out, broadcasting).

Both models: while alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after
each repeat purchase they drop out with probability p ~ Beta(a, b). MBG/NBD (Batislam,
Denizel & Filiztekin 2007) also lets them drop out right after the first purchase, at
time 0. Written with ``shift`` = 0 (BG/NBD) or 1 (MBG/NBD), every expression is the same:

* given the history (x, t_x, T), a customer alive at T has posterior
  lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x + shift);
* the odds of being dead at T are a / (b + x + shift - 1) * ((alpha + T) /
  (alpha + t_x))^(r + x), for x > 0 (BG/NBD) or all x (MBG/NBD): Fader, Hardie & Lee
  (2005) "Counting your customers the easy way", eq. (6) and Hardie's note "Computing
  P(alive) using the BG/NBD model"; Batislam et al. (2007) eqs. (4)-(6).

The log-likelihood is written in the log-sum-exp form of Hardie's note "Overcoming the
BG/NBD model's #NUM! error problem" (2005), so it is finite for any frequency.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1

from ._special import hyp2f1_series

__all__ = [
    "expected_purchases",
    "log_likelihood",
    "probability_alive",
    "probability_purchases",
]


def _logaddexp(a, b):
    """log(exp(a) + exp(b)) for finite a and b <= +inf or -inf; faster than np.logaddexp."""
    high = np.maximum(a, b)
    return high + np.log1p(np.exp(-np.abs(a - b)))


def _dead_log_odds(x, t_x, T, r, alpha, a, b, shift):
    """log of the odds that the customer dropped out before T; -inf where impossible."""
    possible = (x > 0) | (shift > 0)
    denominator = np.where(possible, b + x + shift - 1, 1.0)
    log_odds = (
        np.log(a) - np.log(denominator) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
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


def probability_alive(x, t_x, T, r, alpha, a, b, *, shift: int, t=0.0):
    """P(alive at T + t | x, t_x, T).

    At T it is 1 / (1 + dead odds). Further ahead, an alive customer survives each
    purchase with probability 1 - p, so P(no dropout by T + t) = E[exp(-lambda p t)]
    under the alive posterior, which is 2F1(r + x, a; a + b + x + shift; -t / (alpha + T))
    by Euler's integral for 2F1 (Abramowitz & Stegun 15.3.1). Pfaff's transformation
    (A&S 15.3.5) turns its large negative argument into w = t / (alpha + T + t) in [0, 1):
    ((alpha + T) / (alpha + T + t))^a 2F1(a, a + b + shift - r; a + b + x + shift; w).
    """
    alive_now = expit(-_dead_log_odds(x, t_x, T, r, alpha, a, b, shift))
    t = np.asarray(t, dtype=np.float64)
    if np.all(t == 0):
        return alive_now
    w = t / (alpha + T + t)
    survive = np.exp(a * np.log1p(-w)) * hyp2f1(a, a + b + shift - r, a + b + x + shift, w)
    bad = ~np.isfinite(survive)
    if np.any(bad):  # scipy gives NaN in corners (c - b tiny, w near 1): sum the series
        args = np.broadcast_arrays(a, a + b + shift - r, a + b + x + shift, w, survive)
        survive = args[-1].copy()
        series = hyp2f1_series(*(arg[bad] for arg in args[:4]))
        survive[bad] = np.broadcast_to(np.exp(a * np.log1p(-w)), survive.shape)[bad] * series
    return alive_now * survive


def expected_purchases(t, x, t_x, T, r, alpha, a, b, *, shift: int):
    """E[X(T, T + t) | x, t_x, T], the expected purchases in the next t time units.

    BG/NBD: FHL (2005) eq. (10); MBG/NBD: Batislam et al. (2007) eq. (8). The 2F1 is
    taken through Euler's transformation (A&S 15.3.3), under which its first parameter
    a + b + shift - 1 - r no longer grows with x and the power ((alpha + T) /
    (alpha + T + t))^(r + x) becomes (...)^(a - 1): finite for any frequency or horizon.
    For a new customer use x = t_x = T = 0 (FHL 2005 eq. 7).
    """
    t = np.asarray(t, dtype=np.float64)
    b_post = b + x + shift
    c = a + b_post - 1
    a_m1 = np.where(np.abs(a - 1) < 1e-10, 1e-10, a - 1)  # removable singularity at a = 1
    q = t / (alpha + T + t)
    tail = np.exp((a - 1) * np.log1p(-q)) * hyp2f1(a + b + shift - 1 - r, a - 1, c, q)
    expected = c / a_m1 * (1 - tail)
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
    """
    t = np.asarray(t, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    b_post = b + x + shift
    alive = probability_alive(x, t_x, T, r, alpha, a, b, shift=shift)
    log_q = np.log(t) - np.log(alpha + T + t) if np.all(t > 0) else None
    if log_q is None:  # t = 0: nothing happens
        return np.where(n == 0, 1.0, 0.0) + 0 * alive
    log_nb = (
        gammaln(r + x + n) - gammaln(r + x) - gammaln(n + 1)
        + (r + x) * (np.log(alpha + T) - np.log(alpha + T + t)) + n * log_q
    )  # fmt: skip
    survive_all = np.exp(betaln(a, b_post + n) - betaln(a, b_post) + log_nb)
    positive = n > 0
    n_safe = np.where(positive, n, 1.0)
    drop_after_nth = np.exp(betaln(a + 1, b_post + n_safe - 1) - betaln(a, b_post)) * betainc(
        n_safe, r + x, np.exp(log_q)
    )
    alive_part = survive_all + np.where(positive, drop_after_nth, 0.0)
    return alive * alive_part + np.where(positive, 0.0, 1.0 - alive)

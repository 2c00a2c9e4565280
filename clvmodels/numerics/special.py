"""Special functions the models share, on plain arrays (numpy and scipy only).

* :func:`log_rising` and :func:`digamma_difference`: log (a)_m and its derivative in a,
  accurate for tiny and huge arguments (every Beta and Gamma ratio of the models goes
  through them);
* :func:`log_beta`: log B(a, b) without the digits scipy's ``betaln`` loses when one
  argument is large and the other tiny;
* :func:`beta_expectation`: E[g(p)] over p ~ Beta(a, b) by numerical integration, for
  the corners where no series converges in reasonable time (e.g. 2F1 at arguments very
  near 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import digamma, expit, gammaln, log_expit

__all__ = ["CHUNK", "beta_expectation", "digamma_difference", "log_beta", "log_rising"]

# Above this the rising factorial uses Stirling's series (truncation error < 1e-17).
_ASYMPTOTIC = 100.0
CHUNK = 2**20  # array elements per step of the vectorised loops
_MAX_NODES = 2**17  # per row of beta_expectation; far above what its grids need


def log_rising(a: Any, m: Any) -> np.ndarray:
    """log (a)_m = log Gamma(a + m) - log Gamma(a), for a > 0, m >= 0 (broadcasting).

    For a >= 100 it uses the difference of Stirling's series for log Gamma (Abramowitz &
    Stegun 6.1.40) written without cancellation: (a - 1/2) log1p(m / a) + m log(a + m)
    - m + [1/(12 x) - 1/(360 x^3) + 1/(1260 x^5)] between x = a and x = a + m. The
    plain difference of two log Gammas would lose about log10(a) digits there.
    """
    a = np.asarray(a, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    small = a < _ASYMPTOTIC
    a_small = np.where(small, a, 1.0)
    direct = gammaln(a_small + m) - gammaln(a_small)
    x = np.where(small, _ASYMPTOTIC, a)
    y = x + m
    r = x / y  # y^-j - x^-j = x^-j (r^j - 1): exactly 0 when m = 0
    tail = -(m / x) / y / 12 - x**-3 * (r**3 - 1) / 360 + x**-5 * (r**5 - 1) / 1260
    stirling = (x - 0.5) * np.log1p(m / x) + m * np.log(y) - m + tail
    return np.where(small, direct, stirling)


def digamma_difference(a: Any, m: Any) -> np.ndarray:
    """psi(a + m) - psi(a) = d/da log (a)_m, for a > 0, m >= 0 (broadcasting).

    For a >= 100 it uses the asymptotic series psi(x) ~ log x - 1/(2x) - 1/(12x^2)
    + 1/(120x^4) - 1/(252x^6) (A&S 6.3.18), differenced without cancellation.
    """
    a = np.asarray(a, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    small = a < _ASYMPTOTIC
    a_small = np.where(small, a, 1.0)
    direct = digamma(a_small + m) - digamma(a_small)
    x = np.where(small, _ASYMPTOTIC, a)
    y = x + m
    r = x / y
    series = (
        np.log1p(m / x)
        + (m / x) / y / 2
        + (m / x) / y * ((2 * x + m) / y) / x / 12
        + x**-4 * (r**4 - 1) / 120
        - x**-6 * (r**6 - 1) / 252
    )
    return np.where(small, direct, series)


_MAX_NODES = 2**17  # per row of beta_expectation; far above what its grids need


def log_beta(a, b) -> np.ndarray:
    """log B(a, b) = log Gamma(s) - log (l)_s with s = min(a, b), l = max(a, b).

    Written through the rising factorial (:func:`log_rising`, exact
    to rounding for large l), which keeps the digits that scipy's ``betaln`` loses when
    one argument is large and the other tiny (e.g. a = 1e-8, b = 1e6).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    small, large = np.minimum(a, b), np.maximum(a, b)
    return gammaln(small) - log_rising(large, small)


def beta_expectation(log_g, a, b, *, scale, args=()) -> np.ndarray:
    """E[g(p)] for p ~ Beta(a, b), by the trapezoidal rule in u = log(p / (1 - p)).

    ``log_g(p, q, *args)`` returns log g at p (q = 1 - p, both given accurately), with
    arrays of shape (rows, nodes) and ``args`` of shape (rows, 1); ``a``, ``b``,
    ``scale`` and ``args`` broadcast together. The integrand in u,
    exp(a log p + b log q + log g) / B(a, b), is integrated on an evenly spaced grid,
    which converges geometrically in the number of nodes for an integrand analytic in a
    strip around the real axis (Trefethen & Weideman 2014, "The exponentially
    convergent trapezoidal rule", SIAM Review 56(3), 385-458, sec. 5). Requirements on g:
    positive on (0, 1), analytic for |Im u| < pi/2 and of about the same size there
    (as (1 + p s)^-k, 1 / (p + d) and their kin are, since Re p > 0 there), and
    |d log g / dp| <= ``scale`` on [0, 1].

    * The step is 1/7 of the half-width of the strip used: pi/2, or less where the
      Beta weight is concentrated ((a + b) p (1 - p) large, where the weight varies
      faster off the axis), which makes the discretisation error about e^-40.
    * For e^u < 1e-17 / (a + b + scale + 1) the integrand is exp(a u) times a constant
      to double precision, and symmetrically exp(-b u) on the right, so the grid stops
      there and the rest of the (infinite) trapezoidal sum is a geometric series. Only
      the stretch where the integrand is within e^-80 of its largest value (located on
      a coarse grid of step 1/2 plus points within 16 standard deviations of the mode of
      the weight) is covered by the fine grid.

    A weight narrower than doubles resolve in u (standard deviation of u below 1e-13
    max(1, |log(a / b)|), i.e. a, b beyond about 1e26) is taken as a point mass at its
    mode, g(a / (a + b)). The cost depends on the parameters only through log(scale)
    and the concentration of the weight, not on how slowly a series in p would converge.
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (a, b, scale, *args))
    )
    shape = arrays[0].shape
    result = np.full(arrays[0].size, np.nan)
    a, b, scale = (v.ravel() for v in arrays[:3])
    args = [v.ravel() for v in arrays[3:]]
    usable = (a > 0) & (b > 0) & (scale >= 0) & np.isfinite(a + b + scale)
    # a weight narrower than the resolution of doubles in u is a point mass at its mode
    with np.errstate(divide="ignore"):
        u_star = np.log(a) - np.log(b)
        point = usable & (np.sqrt(1 / a + 1 / b) < 1e-13 * np.maximum(1, np.abs(u_star)))
    if point.any():
        at = u_star[point, None]
        extra = [v[point, None] for v in args]
        result[point] = np.exp(log_g(expit(at), expit(-at), *extra))[:, 0]
    usable &= ~point
    if usable.any():
        result[usable] = _beta_expectation(
            log_g, a[usable], b[usable], scale[usable], [v[usable] for v in args]
        )
    return result.reshape(shape)


def _beta_expectation(log_g, a, b, scale, args):
    """:func:`beta_expectation` on 1-d arrays of valid parameters."""
    result = np.full(a.size, np.nan)

    # log of the Beta density of u at its mode u* = log(a / b), and its value elsewhere
    # relative to that (see _log_weight): no cancellation between a log p and b log q
    u_star = np.log(a) - np.log(b)
    log_mode = _log_beta_mode(a, b, u_star)

    # The grids are laid out in d = u - u*, so that they stay evenly spaced to the last
    # bit however narrow the weight.
    def log_f(d, rows):
        ar, br, ur = a[rows, None], b[rows, None], u_star[rows, None]
        extra = (v[rows, None] for v in args)
        weight = log_mode[rows, None] + _log_weight(d, ar, br, ur)
        return weight + log_g(expit(ur + d), expit(-ur - d), *extra)

    # where the tails are pure exponentials to double precision (relative to u*)
    cut = np.log(1e-17) - np.log(a + b + scale + 1)
    low, high = cut - u_star, -cut - u_star
    # coarse look at the integrand: step <= 1/2, plus points around the weight's mode
    n_coarse = int(np.ceil(np.max(high - low) / 0.5)) + 1
    mode = np.clip(0.0, low, high)
    spread = np.sqrt(1 / a + 1 / b)
    rows_all = np.arange(a.size)
    lo = np.empty(a.size)
    hi = np.empty(a.size)
    step_rows = max(1, CHUNK // (n_coarse + 33))
    for start in range(0, a.size, step_rows):
        rows = rows_all[start : start + step_rows]
        grid = low[rows, None] + (high - low)[rows, None] * np.linspace(0, 1, n_coarse)
        near = mode[rows, None] + spread[rows, None] * np.linspace(-16, 16, 33)
        near = np.clip(near, low[rows, None], high[rows, None])
        points = np.sort(np.concatenate([grid, near], axis=1), axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = log_f(points, rows)
        top = np.max(values, axis=1, keepdims=True)
        above = values >= top - 80
        first = np.argmax(above, axis=1)
        last = points.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
        index = np.arange(rows.size)
        lo[rows] = points[index, np.maximum(first - 1, 0)]
        hi[rows] = points[index, np.minimum(last + 1, points.shape[1] - 1)]
    # clipped points can coincide with the ends: never an empty stretch
    empty = hi <= lo
    hi = np.where(empty, np.minimum(lo + 0.5, high), hi)
    lo = np.where(empty, np.maximum(hi - 0.5, low), lo)
    # step from the strip half-width: the weight varies off the axis by about
    # exp((a + b) p (1 - p) y^2 / 2); keep that below e^5
    centre = np.clip(-u_star, lo, hi)  # u = 0, p = 1/2, where p (1 - p) peaks
    concentration = (a + b) * expit(u_star + centre) * expit(-u_star - centre)
    with np.errstate(divide="ignore"):
        half_width = np.minimum(np.pi / 2, np.sqrt(10 / concentration))
    finite = np.isfinite(hi - lo)
    nodes = np.ceil(np.where(finite, hi - lo, 0) / (half_width / 7))
    nodes = np.minimum(nodes, _MAX_NODES).astype(np.int64) + 1
    step = (hi - lo) / (nodes - 1)
    left_tail = lo <= low  # the grid ends where the tail is exponential: add the rest
    right_tail = hi >= high
    order = np.argsort(-nodes, kind="stable")  # rows with the most nodes first
    start = 0
    while start < order.size:
        width = int(nodes[order[start]])
        rows = order[start : start + max(1, CHUNK // width)]
        start += rows.size
        j = np.arange(width)
        valid = j < nodes[rows, None]
        d = lo[rows, None] + step[rows, None] * np.where(valid, j, 0)
        index = np.arange(rows.size)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = np.where(valid, log_f(d, rows), -np.inf)
            top = np.max(values, axis=1)
            weights = np.exp(values - top[:, None])
            total = weights.sum(axis=1)
            first, last = weights[:, 0], weights[index, nodes[rows] - 1]
            total += np.where(left_tail[rows], first / np.expm1(a[rows] * step[rows]), 0)
            total += np.where(right_tail[rows], last / np.expm1(b[rows] * step[rows]), 0)
            value = np.exp(top + np.log(total * step[rows]))
            result[rows] = np.where(finite[rows], value, np.nan)
    return result


def _log_weight(d, a, b, u_star):
    """phi(u* + d) - phi(u*) for phi(u) = a log p + b log q, p = 1 / (1 + e^-u), and
    u* = log(a / b), the mode.

    With p* = 1 / (1 + e^-u*) and q* = 1 - p*, phi(u* + d) - phi(u*) equals both
    a d - (a + b) log(1 + p* (e^d - 1)) and -b d - (a + b) log(1 + q* (e^-d - 1)). The
    first is used when a <= b (p* <= 1/2, so the argument of log1p stays above -1/2 and
    a d never cancels against a much larger (a + b) d), the second (its mirror image)
    when a > b. Rounding errors are then of the order of the result, not of
    a |log p| + b |log q|, which keeps concentrated weights (a, b ~ 1e8) accurate.
    Beyond |d| = 700 (e^|d| near overflow) the logarithm is |d| + log p* - log p (or
    its mirror image). For |d| <= 1/10 it is (a q* - b p*) d - (a + b) [p* (e^d - 1 - d)
    + (log(1 + y) - y)], y = p* (e^d - 1), with both brackets summed as power series:
    about p* q* d^2 / 2, to full relative precision however large a + b is.
    """
    mirror = a > b
    shift = np.where(mirror, -d, d)  # d, or -d for the mirror image
    first, second = np.where(mirror, b, a), np.where(mirror, a, b)
    centre = np.where(mirror, -u_star, u_star)  # p* = expit(centre) <= 1/2
    with np.errstate(over="ignore", invalid="ignore"):
        inner = np.log1p(expit(centre) * np.expm1(np.minimum(shift, 700.0)))
        far = shift + log_expit(centre) - log_expit(centre + shift)
        value = first * shift - (a + b) * np.where(shift <= 700, inner, far)
    small = np.abs(shift) <= 0.1
    if not np.any(small):
        return value
    x = np.where(small, shift, 0.0)
    p, q = expit(centre), expit(-centre)
    # e^x - 1 - x and log(1 + y) - y, y = p (e^x - 1), by Horner's rule
    beyond = np.zeros_like(x)
    for k in range(14, 1, -1):
        beyond = (beyond + 1.0 / math.factorial(k)) * x
    beyond = beyond * x
    y = p * (beyond + x)
    log_rest = np.zeros_like(y)
    for k in range(22, 1, -1):
        log_rest = (log_rest + (-1.0) ** (k + 1) / k) * y
    log_rest = log_rest * y
    series = (first * q - second * p) * x - (a + b) * (p * beyond + log_rest)
    return np.where(small, series, value)


def _log_beta_mode(a, b, u_star):
    """phi(u*) - log B(a, b), the log density of u = logit p at u* = log(a / b) (as
    rounded to a double), phi(u) = a log p + b log q.

    For a, b >= 100 by Stirling's series: at the exact mode it is 1/2 log(a b / (2 pi
    (a + b))) - [w(a) + w(b) - w(a + b)], w(x) = 1/(12x) - 1/(360x^3) + 1/(1260x^5)
    (A&S 6.1.40), free of the cancellation between terms of size a log a. The rounded u*
    lies off the exact mode by about c / k, c = a q* - b p* (the slope there) and
    k = (a + b) p* q*, which lowers the density by c^2 / (2 k): negligible unless a + b
    is beyond about 1e16, where it keeps the weight's total mass at 1.
    """
    big = np.minimum(a, b) >= 100
    x, y = np.where(big, a, 100.0), np.where(big, b, 100.0)

    def tail(z):
        inverse = 1 / z
        return inverse / 12 - inverse**3 / 360 + inverse**5 / 1260

    p, q = expit(u_star), expit(-u_star)
    slope = x * q - y * p
    offset = slope**2 / (2 * (x + y) * p * q)
    stirling = 0.5 * np.log(x * y / (2 * np.pi * (x + y))) - (tail(x) + tail(y) - tail(x + y))
    direct = a * log_expit(u_star) + b * log_expit(-u_star) - log_beta(a, b)
    return np.where(big, stirling - offset, direct)

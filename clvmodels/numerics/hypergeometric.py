"""The series of log 2F1(a, 1; m + 1; z) and its derivatives, compiled with numba.

Pareto/NBD's likelihood rests on this series (``models/pnbd.py``, module docstring): for
0 <= z <= 0.85 and a <= m + 1 its terms c_k z^k, c_k = (a)_k / (m + 1)_k, are positive
with ratio at most z. It is summed element by element in compiled code, a few
nanoseconds a term: written as a loop of numpy operations over all elements at once, a
few terms each, numpy's per-call overhead would dominate (BENCHMARKS.md, Pareto/NBD).
numba comes with PyTensor, which PyMC requires; it is imported, and the kernel compiled
(or read from numba's cache), on first use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["log_hyp2f1_series"]

_KERNEL: Any = None


def log_hyp2f1_series(a: np.ndarray, m: np.ndarray, z: np.ndarray,
                      gradient: bool) -> list[np.ndarray]:  # fmt: skip
    """log 2F1(a, 1; m+1; z) by its series, and with ``gradient`` d/da, d/dm, d/dz of it.

    Terms c_k z^k with c_k = (a)_k / (m+1)_k, c_{k+1}/c_k = (a+k)/(m+1+k) <= 1, so the
    tail after term k is at most term_k z / (1 - z). d c_k / da = c_k sum_{j<k} 1/(a+j),
    d c_k / dm = -c_k sum_{j<k} 1/(m+1+j) and d (c_k z^k) / dz = k c_k z^(k-1). An element
    stops once its remaining terms, weighted as in the derivatives, are below 1e-16 of
    its sum (checked every 4 terms); NaN input stops at once and gives NaN.

    Examples
    --------
    >>> from scipy.special import hyp2f1
    >>> a, m, z = np.array([2.5]), np.array([4.0]), np.array([0.6])
    >>> bool(np.isclose(np.exp(log_hyp2f1_series(a, m, z, False)[0]),
    ...                 hyp2f1(2.5, 1.0, 5.0, 0.6), rtol=1e-14))
    True
    """
    arrays = [np.ascontiguousarray(v, dtype=np.float64) for v in (a, m, z)]
    out = _kernel()(*arrays, bool(gradient))
    return [out[0], out[1], out[2], out[3]] if gradient else [out[0]]


def _kernel() -> Any:
    global _KERNEL
    if _KERNEL is None:
        import numba

        # numpy's error model: a division by zero gives inf or NaN, as the numpy code did
        _KERNEL = numba.njit(cache=True, error_model="numpy")(_series)
    return _KERNEL


def _series(a: np.ndarray, m: np.ndarray, z: np.ndarray, gradient: bool) -> np.ndarray:
    n = a.size
    out = np.empty((4, n))
    for i in range(n):
        a_k, m1_k, zi = a[i], m[i] + 1.0, z[i]  # a + k and m + 1 + k
        term, total = 1.0, 1.0
        s_a, s_m, s_z, h_a, h_m = 0.0, 0.0, 0.0, 0.0, 0.0
        bound = 1e-16 * (1.0 - zi) ** 2
        k = 0
        while True:
            inv = 1.0 / m1_k
            term *= a_k * inv  # c_{k+1} z^k
            if gradient:
                h_m += inv
                h_a += 1.0 / a_k
                s_z += term * (k + 1.0)
            term *= zi
            total += term
            if gradient:
                s_a += term * h_a
                s_m += term * h_m
            a_k += 1.0
            m1_k += 1.0
            k += 1
            # remaining terms: at most term (k + 1) / (1 - z)^2, with the weights k and h
            if k % 4 == 0 and not (term * (k + 2.0) > bound * total):
                break
        out[0, i] = math.log(total)
        out[1, i] = s_a / total
        out[2, i] = -s_m / total
        out[3, i] = s_z / total
    return out

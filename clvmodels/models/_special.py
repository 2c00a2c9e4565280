"""Special-function helpers shared by the models (numpy/scipy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["hyp2f1_series"]


def hyp2f1_series(a, b, c, w, rtol: float = 1e-15, max_terms: int = 2_000_000) -> np.ndarray:
    """Gauss's series for 2F1(a, b; c; w) with 0 <= w < 1, summed term by term.

    A slow but dependable fallback for the corners where scipy's ``hyp2f1`` returns NaN
    (e.g. c - b tiny with w near 1). Terms follow the ratio
    (a + n)(b + n) / ((c + n)(n + 1)) w (Abramowitz & Stegun 15.1.1); summation stops
    when a term is below ``rtol`` times the sum and the ratio is below 1.
    """
    a, b, c, w = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, w)))
    term = np.ones(a.shape)
    total = np.ones(a.shape)
    active = np.ones(a.shape, dtype=bool)
    n = 0
    while active.any() and n < max_terms:
        ratio = (a + n) * (b + n) / ((c + n) * (n + 1)) * w
        term = np.where(active, term * ratio, 0.0)
        total = total + term
        active = (np.abs(term) > rtol * np.abs(total)) | (np.abs(ratio) >= 1)
        active &= term != 0
        n += 1
    return total

"""One code base for ArviZ 0.x (``InferenceData``) and ArviZ 1.x (an xarray ``DataTree``),
and for PyMC 5 / PyTensor 2 and PyMC 6 / PyTensor 3.

Building the posterior object, PSIS log weights, R-hat and effective sample sizes
(adding groups is ``_base._add_group``). ArviZ is imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["arviz_major", "inference_data", "psis_log_weights", "rhat_ess"]


def arviz_major() -> int:
    import arviz as az

    return int(str(az.__version__).split(".")[0])


def inference_data(
    posterior: dict[str, np.ndarray], sample_stats: dict[str, np.ndarray] | None = None
) -> Any:
    """An ArviZ object with a ``posterior`` group of (chain, draw) arrays, and the
    sampler's ``sample_stats`` if given."""
    import arviz as az

    groups = {"posterior": posterior}
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    if arviz_major() >= 1:
        return az.from_dict(groups)
    return az.from_dict(**groups)


def psis_log_weights(log_likelihood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed importance-sampling leave-one-out log weights.

    ``log_likelihood`` is (items, samples); returns the normalised log weights (same
    shape) and the Pareto shape ``k`` of each item. ArviZ 0.x takes the log importance
    ratios (minus the log-likelihood), ArviZ 1.x the log-likelihood itself.
    """
    log_likelihood = np.asarray(log_likelihood, dtype=np.float64)
    if arviz_major() >= 1:
        from arviz_stats.base import array_stats

        log_weights, khat = array_stats.psislw(log_likelihood, r_eff=1, axis=-1)
    else:
        import arviz as az

        log_weights, khat = az.psislw(-log_likelihood)
    return np.asarray(log_weights, dtype=np.float64), np.asarray(khat, dtype=np.float64)


def rhat_ess(values: np.ndarray) -> tuple[float, float, float]:
    """Rank-normalised split R-hat, bulk and tail effective sample size of one scalar
    parameter's draws, shape (chain, draw)."""
    import arviz as az

    values = np.asarray(values, dtype=np.float64)
    # the tail ESS is the smaller of those of the 5 % and 95 % quantiles (Vehtari et al.
    # 2021); ArviZ 1.x needs the probabilities spelt out
    tail = {"prob": (0.05, 0.95)} if arviz_major() >= 1 else {}
    return (
        float(az.rhat(values)),
        float(az.ess(values, method="bulk")),
        float(az.ess(values, method="tail", **tail)),
    )

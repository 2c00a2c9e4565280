"""Population-level predictions over a grid of values, with intervals, and the checks
they share: BG/BB (opportunities) and the shifted-beta-geometric model (periods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_array, check_interval
from ..exceptions import InvalidDataError
from ._base import BaseModel, draw_blocks, quantiles

__all__ = ["predict_curve", "whole_numbers"]


def whole_numbers(value: Any, name: str, what: str) -> np.ndarray:
    """Whole numbers >= 0 as a float array, or InvalidDataError."""
    values = as_array(value, name)
    if np.any(values != np.floor(values)):
        raise InvalidDataError(f"{name}={value!r}: {what} are whole numbers >= 0.")
    return values


def predict_curve(
    model: BaseModel,
    func: Callable[..., np.ndarray],
    values: Any,
    axis_name: str,
    name: str,
    interval: float | None,
    n_draws: int,
    random_state: Any,
) -> float | pd.Series | pd.DataFrame:
    """A population-level prediction ``func(values, **params)``, vectorised over values.

    A scalar ``values`` gives a float (with ``interval``, a Series ``estimate, lower,
    upper``), as :meth:`BaseModel._predict_scalar`; a 1-d ``values`` gives a Series
    indexed by them (with ``interval``, a DataFrame). Interval: quantiles over draws of
    the parameters (:meth:`BaseModel.parameter_draws`), all values at once.
    """
    if model._evaluator is not None:  # a Bayesian model predicting through its twin
        return model._evaluator._curve(func, values, axis_name, name, interval, n_draws,
                                       random_state)  # fmt: skip
    model._check_fitted()
    if interval is not None:
        check_interval(interval)
    grid = np.asarray(values, dtype=np.float64)
    params = model.params_.to_numpy()
    estimate = np.asarray(func(grid, **model._param_dict(params)), dtype=np.float64)
    if interval is not None:
        draws = model.parameter_draws(n_draws, random_state)
        flat = grid.reshape(-1)
        lower, upper = np.empty(flat.size), np.empty(flat.size)

        def evaluate(rows: slice, chosen: slice) -> np.ndarray:
            return func(flat[rows], **model._param_dict(draws[chosen, None, :]))

        # values and draws in blocks of bounded memory, however long the grid
        for rows, samples in draw_blocks(evaluate, n_draws, flat.size):
            lower[rows], upper[rows] = quantiles(samples, interval)
        lower, upper = lower.reshape(grid.shape), upper.reshape(grid.shape)
    if grid.ndim == 0:
        if interval is None:
            return float(estimate)
        return pd.Series(
            {"estimate": float(estimate), "lower": float(lower), "upper": float(upper)},
            name=name,
        )
    index = pd.Index(_tidy(values, grid), name=axis_name)
    if interval is None:
        return pd.Series(estimate, index=index, name=name)
    return pd.DataFrame({"estimate": estimate, "lower": lower, "upper": upper}, index=index)


def _tidy(values: Any, grid: np.ndarray) -> np.ndarray:
    """Index labels: integers when the values given were whole numbers."""
    if np.all(grid == np.floor(grid)) and np.issubdtype(np.asarray(values).dtype, np.integer):
        return grid.astype(np.int64)
    return grid

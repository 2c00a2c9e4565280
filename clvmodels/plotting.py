"""Diagnostic plots of fitted models and of their holdout evaluation.

Every function draws on a matplotlib Axes (a new figure when ``ax`` is None) and returns
it, or an array of Axes for several panels; none calls ``plt.show()``. matplotlib is
imported inside the functions, so importing this module stays light.

The functions only draw: the tables they take (conditional expectations, tracking,
customers by CLV quadrant) are built elsewhere, and the model-based plots call the
models' public prediction methods (``expected_purchases``, ``probability_alive``) and
the fitted ``params_``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import InvalidDataError, NotFittedError
from .models._base import point_estimate

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes

__all__ = [
    "plot_clv_comparison",
    "plot_cohort_retention",
    "plot_conditional_expectations",
    "plot_frequency_recency_matrix",
    "plot_heterogeneity",
    "plot_payback_curves",
    "plot_predicted_vs_actual_by_decile",
    "plot_probability_alive_matrix",
    "plot_segment_value",
    "plot_subscription_retention",
    "plot_tracking",
]

_ACTUAL_STYLE: dict[str, Any] = {"color": "black", "linewidth": 2.2, "marker": "o"}
_MODEL_MARKERS = ("s", "^", "D", "v", "P", "X", "*")
_QUADRANT_COLOURS = {
    "high/high": "tab:green",
    "high/low": "tab:red",
    "low/high": "tab:blue",
    "low/low": "tab:gray",
}
_UNIT_NAMES = {
    "ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second",
    "min": "minute", "h": "hour", "D": "day", "W": "week", "M": "month",
    "Q": "quarter", "Y": "year",
}  # fmt: skip
_UNIT_ALIASES = {
    "d": "D", "day": "D", "days": "D", "w": "W", "week": "W", "weeks": "W",
    "month": "M", "months": "M", "q": "Q", "quarter": "Q", "quarters": "Q",
    "y": "Y", "year": "Y", "years": "Y", "H": "h", "hour": "h", "hours": "h",
    "T": "min", "minute": "min", "minutes": "min", "S": "s", "second": "s", "seconds": "s",
}  # fmt: skip
_DENSITY_EPS = 1e-6  # probability left out at each end of a density curve


# ---------------------------------------------------------------------------- helpers


def _for_people(value: float) -> str:
    """A duration as people write it: whole numbers bare, others to one decimal below
    100 (``38.857`` weeks reads ``38.9``), two significant digits below 1.

    Examples
    --------
    >>> [_for_people(v) for v in (39.0, 38.857142, 0.25, 1.0, 104.43, 2.96)]
    ['39', '38.9', '0.25', '1', '104', '3']
    """
    value = float(value)
    if abs(value) < 1:
        return f"{value:.2g}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _pyplot() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    _fig, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def _unit_name(time_unit: str | None, count: float = 2.0) -> str:
    """'weeks' for ``"W"``, 'week' when ``count == 1``, '2-week periods' for ``"2W"``."""
    if time_unit is None:
        return "time unit" if count == 1 else "time units"
    match = re.match(r"^\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*$", str(time_unit))
    base = match and _UNIT_ALIASES.get(match.group(2), match.group(2))
    if not match or base not in _UNIT_NAMES:
        return str(time_unit)
    name = _UNIT_NAMES[base]
    multiple = match.group(1)
    if multiple and float(multiple) != 1:
        name = f"{float(multiple):g}-{name} period"
    return name if count == 1 else f"{name}s"


def _model_unit(model: Any, count: float = 2.0) -> str:
    if getattr(type(model), "discrete_time", False):
        return "opportunity" if count == 1 else "opportunities"
    return _unit_name(getattr(model, "time_unit_", None), count)


def _params(model: Any) -> pd.Series:
    params = getattr(model, "params_", None)
    if params is None:
        raise NotFittedError(
            f"This {type(model).__name__} is not fitted yet. Call fit(data) first, or load "
            "a saved model with clvmodels.load(path)."
        )
    return params


def _model_columns(table: pd.DataFrame, reserved: Sequence[str]) -> list[str]:
    return [column for column in table.columns if column not in reserved]


def _require(table: Any, columns: Sequence[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InvalidDataError(f"{what} must be a pandas DataFrame, got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InvalidDataError(
            f"{what} lacks the column(s) {missing}; it has {list(table.columns)}."
        )


# ---------------------------------------------------------- holdout-evaluation plots


def plot_conditional_expectations(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Mean holdout purchases by number of calibration purchases, actual vs models.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by calibration-frequency bin labels (``"0"``, ``"1"``, ..., ``"7+"``),
        with columns ``actual`` (mean purchases in the holdout period), optionally
        ``customers`` (customers in the bin, shown under the bin labels) and one column
        per model (mean predicted holdout purchases).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Lines in the order actual, then the models in column order; x positions are
        0, 1, ... with the bin labels as tick labels.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_conditional_expectations
    >>> table = pd.DataFrame(
    ...     {"customers": [1411, 439, 214], "actual": [0.24, 0.70, 1.39],
    ...      "BG/NBD": [0.23, 0.85, 1.41]}, index=["0", "1", "2+"])
    >>> ax = plot_conditional_expectations(table)
    >>> ax.get_title(), len(ax.get_lines())
    ('Conditional expectations', 2)
    """
    _require(table, ["actual"], "table")
    models = _model_columns(table, ("customers", "actual"))
    ax = _new_axes(ax)
    x = np.arange(len(table))
    ax.plot(x, table["actual"].to_numpy(dtype=float), label="actual", **_ACTUAL_STYLE)
    for i, name in enumerate(models):
        ax.plot(
            x, table[name].to_numpy(dtype=float), linestyle="--", linewidth=1.6,
            marker=_MODEL_MARKERS[i % len(_MODEL_MARKERS)], label=str(name),
        )  # fmt: skip
    labels = [str(label) for label in table.index]
    if "customers" in table.columns:
        labels = [
            f"{label}\nn={int(n):,}" for label, n in zip(labels, table["customers"], strict=True)
        ]
    ax.set_xticks(x, labels=labels, fontsize="small")
    ax.set_xlim(-0.5, len(table) - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_title("Conditional expectations")
    ax.set_xlabel("purchases in calibration period")
    ax.set_ylabel("mean purchases in holdout period")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_tracking(table: pd.DataFrame, *, cumulative: bool = False, ax: Axes | None = None) -> Axes:
    """Repeat transactions per period (or cumulative), actual vs models, over the
    calibration and holdout periods.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by period number 1 .. K, with columns ``actual`` and one per model:
        repeat transactions in each period. ``table.attrs["calibration_periods"]`` is
        the number of calibration periods (the boundary, drawn as a dashed line at
        x = calibration_periods: period k spans (k - 1, k]) and
        ``table.attrs["time_unit"]`` (default ``"W"``) the length of a period.
    cumulative : bool, default False
        Plot the running totals instead of the per-period counts.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Lines in the order actual, the models in column order, then the boundary.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_tracking
    >>> table = pd.DataFrame(
    ...     {"actual": [10, 14, 12, 11], "BG/NBD": [11.0, 12.5, 12.0, 11.2]},
    ...     index=pd.RangeIndex(1, 5, name="period"))
    >>> table.attrs["calibration_periods"] = 2
    >>> ax = plot_tracking(table, cumulative=True)
    >>> ax.get_lines()[0].get_ydata().tolist()
    [10.0, 24.0, 36.0, 47.0]
    """
    _require(table, ["actual"], "table")
    models = _model_columns(table, ("actual",))
    boundary = table.attrs.get("calibration_periods")
    unit = table.attrs.get("time_unit", "W")
    values = table[["actual", *models]].astype(float)
    if cumulative:
        values = values.cumsum()
    ax = _new_axes(ax, figsize=(8.0, 4.5))
    periods = table.index.to_numpy()
    ax.plot(periods, values["actual"].to_numpy(), label="actual", color="black", linewidth=2)
    for name in models:
        ax.plot(periods, values[name].to_numpy(), linestyle="--", linewidth=1.6, label=str(name))
    if boundary is not None:
        ax.axvline(
            boundary, color="dimgray", linestyle="--", linewidth=1,
            label=f"end of calibration ({_for_people(boundary)} {_unit_name(unit, boundary)})",
        )  # fmt: skip
        transform = ax.get_xaxis_transform()
        style = {"transform": transform, "va": "top", "fontsize": "small", "color": "dimgray"}
        ax.text(boundary, 0.98, "calibration  ", ha="right", **style)
        ax.text(boundary, 0.98, "  holdout", ha="left", **style)
    per = _unit_name(unit, 1)
    if cumulative:
        ax.set_title("Cumulative repeat transactions")
        ax.set_ylabel("cumulative repeat transactions")
    else:
        ax.set_title(f"Repeat transactions per {per}")
        ax.set_ylabel(f"repeat transactions per {per}")
    ax.set_xlabel(f"time since start of calibration period ({_unit_name(unit)})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if cumulative else "best")
    return ax


def plot_predicted_vs_actual_by_decile(
    predicted: pd.Series, actual: pd.Series, ax: Axes | None = None, *,
    ylabel: str | None = None,
) -> Axes:  # fmt: skip
    """Mean predicted and mean actual value per decile of the prediction.

    Customers are ranked by ``predicted`` (ties broken by their order) and split into
    ten groups of (nearly) equal size, decile 1 holding the lowest predictions.

    Parameters
    ----------
    predicted, actual : pandas.Series
        Per-customer prediction and outcome (e.g. holdout purchases), aligned on the
        index (``actual`` is reindexed like ``predicted``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.
    ylabel : str, optional
        Label of the y axis (say what the values are), by default "mean per customer".

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.containers[0]`` holds the bars of mean predicted values, ``[1]`` those of
        mean actual values, deciles 1 .. 10 from left to right.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd
    >>> from clvmodels.plotting import plot_predicted_vs_actual_by_decile
    >>> predicted = pd.Series(np.arange(100) / 10)
    >>> ax = plot_predicted_vs_actual_by_decile(predicted, predicted + 1)
    >>> ax.containers[0].datavalues.round(2).tolist()[:3]
    [0.45, 1.45, 2.45]
    """
    if not isinstance(predicted, pd.Series) or not isinstance(actual, pd.Series):
        raise InvalidDataError("predicted and actual must be pandas Series indexed by customer.")
    actual = actual.reindex(predicted.index)
    if predicted.isna().any() or actual.isna().any():
        raise InvalidDataError(
            "predicted and actual must cover the same customers without missing values; "
            f"{int(predicted.isna().sum())} predictions and {int(actual.isna().sum())} "
            "outcomes are missing after aligning on the index."
        )
    if len(predicted) < 10:
        raise InvalidDataError(f"{len(predicted)} customers cannot be split into 10 deciles.")
    decile = pd.qcut(predicted.rank(method="first"), 10, labels=range(1, 11))
    means = (
        pd.DataFrame({"predicted": predicted.to_numpy(), "actual": actual.to_numpy()})
        .groupby(decile.to_numpy(), observed=False)
        .mean()
    )
    ax = _new_axes(ax)
    x = np.arange(1, 11)
    width = 0.4
    ax.bar(x - width / 2, means["predicted"].to_numpy(), width, label="predicted (mean)",
           color="tab:blue")  # fmt: skip
    ax.bar(x + width / 2, means["actual"].to_numpy(), width, label="actual (mean)",
           color="0.25")  # fmt: skip
    ax.set_xticks(x)
    ax.set_title("Predicted vs actual by decile of prediction")
    ax.set_xlabel("decile of predicted value (1 = lowest)")
    ax.set_ylabel(ylabel or "mean per customer")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return ax


def plot_clv_comparison(
    customers: pd.DataFrame, ax: Axes | None = None, *, scale: str = "symlog",
    unit: str | None = None,
) -> Axes:  # fmt: skip
    """Historical vs predicted CLV per customer, coloured by quadrant.

    Parameters
    ----------
    customers : pandas.DataFrame
        Columns ``historical``, ``predicted`` and ``quadrant`` (``"high/high"``,
        ``"high/low"``, ``"low/high"``, ``"low/low"``: historical/predicted). The
        thresholds drawn as dashed lines are ``customers.attrs["historical_threshold"]``
        and ``customers.attrs["predicted_threshold"]`` when set, else the medians.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.
    scale : {"symlog", "linear"}, default "symlog"
        Axis scale. ``"symlog"`` is logarithmic above a small threshold (the 5th
        percentile of the positive values, rounded down to a power of ten) and linear
        below it, so that skewed values and zeros are both visible.
    unit : str, optional
        Currency shown in the axis labels, e.g. ``"$"``.

    Returns
    -------
    matplotlib.axes.Axes
        One scatter collection per quadrant present, in the order high/high, high/low,
        low/high, low/low (other labels after them, sorted).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_clv_comparison
    >>> customers = pd.DataFrame({"historical": [10.0, 200.0, 35.0, 0.0],
    ...                           "predicted": [5.0, 150.0, 80.0, 1.0],
    ...                           "quadrant": ["low/low", "high/high", "high/high", "low/low"]})
    >>> ax = plot_clv_comparison(customers)
    >>> [c.get_label() for c in ax.collections]
    ['high/high (n=2)', 'low/low (n=2)']
    """
    _require(customers, ["historical", "predicted", "quadrant"], "customers")
    if scale not in ("symlog", "linear"):
        raise InvalidDataError(f"scale={scale!r}: use 'symlog' or 'linear'.")
    historical = customers["historical"].to_numpy(dtype=float)
    predicted = customers["predicted"].to_numpy(dtype=float)
    quadrant = customers["quadrant"].astype(str).to_numpy()
    x_threshold = customers.attrs.get("historical_threshold")
    y_threshold = customers.attrs.get("predicted_threshold")
    x_threshold = float(np.nanmedian(historical)) if x_threshold is None else x_threshold
    y_threshold = float(np.nanmedian(predicted)) if y_threshold is None else y_threshold

    ax = _new_axes(ax, figsize=(7.0, 6.0))
    known = [q for q in _QUADRANT_COLOURS if (quadrant == q).any()]
    other = sorted(set(quadrant) - set(_QUADRANT_COLOURS))
    for name in known + other:
        rows = quadrant == name
        ax.scatter(
            historical[rows], predicted[rows], s=14, alpha=0.6, linewidths=0,
            color=_QUADRANT_COLOURS.get(name), label=f"{name} (n={int(rows.sum()):,})",
        )  # fmt: skip
    ax.axvline(x_threshold, color="dimgray", linestyle="--", linewidth=1,
               label=f"historical threshold ({x_threshold:,.3g})")  # fmt: skip
    ax.axhline(y_threshold, color="dimgray", linestyle=":", linewidth=1.2,
               label=f"predicted threshold ({y_threshold:,.3g})")  # fmt: skip
    if scale == "symlog":
        values = np.concatenate([historical, predicted])
        positive = values[np.isfinite(values) & (values > 0)]
        # a power of ten near the 5th percentile, so that the decade ticks stay regular
        low = float(np.quantile(positive, 0.05)) if positive.size else 1.0
        linthresh = 10.0 ** np.floor(np.log10(low))
        for data, set_scale, set_lim in (
            (historical, ax.set_xscale, ax.set_xlim),
            (predicted, ax.set_yscale, ax.set_ylim),
        ):
            set_scale("symlog", linthresh=linthresh)
            finite = data[np.isfinite(data)]
            if finite.size and finite.min() >= 0:  # no room for negative values
                set_lim(-0.1 * linthresh, 2.0 * max(finite.max(), linthresh))
    suffix = f" ({unit})" if unit else ""
    note = ", symmetric log scale" if scale == "symlog" else ""
    ax.set_title("Historical vs predicted customer value")
    ax.set_xlabel(f"historical CLV{suffix}{note}")
    ax.set_ylabel(f"predicted CLV{suffix}{note}")
    ax.grid(alpha=0.3)
    ax.legend(title="quadrant (historical/predicted)", fontsize="small", markerscale=1.5)
    return ax


# ---------------------------------------------------------------- model-based plots


def _customer_grid(
    model: Any, T: float, max_frequency: int | None, max_recency: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Frequencies, recencies, the mask of valid cells and the valid cells as a frame."""
    columns = getattr(type(model), "data_columns", ())
    discrete = "n_periods" in columns
    if not discrete and "T" not in columns:
        raise InvalidDataError(
            f"{type(model).__name__} does not predict from (frequency, recency, T); the "
            "matrix plots need a purchase model such as BG/NBD, MBG/NBD, Pareto/NBD or BG/BB."
        )
    T = float(T)
    if not np.isfinite(T) or T <= 0 or (discrete and np.floor(T) != T):
        raise InvalidDataError(f"T={T!r}: use a positive (for BG/BB whole) number of periods.")
    if max_frequency is None:
        max_frequency = min(20, int(T)) if discrete else 20
    max_recency = T if max_recency is None else float(max_recency)
    if max_frequency < 0 or max_recency < 0:
        raise InvalidDataError("max_frequency and max_recency must be >= 0.")
    frequency = np.arange(int(max_frequency) + 1, dtype=float)
    recency = np.arange(int(np.floor(max_recency)) + 1, dtype=float)
    ff, rr = np.meshgrid(frequency, recency, indexing="ij")
    valid = (rr <= T) & ((ff == 0) == (rr == 0))
    if discrete:
        valid &= ff <= rr  # at most one transaction per opportunity
    grid = pd.DataFrame(
        {"frequency": ff[valid], "recency": rr[valid], "n_periods" if discrete else "T": T}
    )
    return frequency, recency, valid, grid


def _matrix_plot(
    model: Any, values: pd.Series, frequency: np.ndarray, recency: np.ndarray,
    valid: np.ndarray, ax: Axes | None, title: str, label: str, T: float,
    vmin: float | None = None, vmax: float | None = None,
) -> Axes:  # fmt: skip
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    matrix = np.full(valid.shape, np.nan)
    matrix[valid] = values.to_numpy(dtype=float)
    ax = _new_axes(ax, figsize=(8.0, 6.0))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.9")
    image = ax.imshow(
        matrix, origin="lower", aspect="auto", interpolation="nearest", cmap=cmap,
        vmin=vmin, vmax=vmax,
        extent=(recency[0] - 0.5, recency[-1] + 0.5, frequency[0] - 0.5, frequency[-1] + 0.5),
    )  # fmt: skip
    colorbar = ax.figure.colorbar(image, ax=ax)
    colorbar.set_label(label)
    unit = _model_unit(model)
    ax.set_title(
        f"{title}\ncustomers observed for {_for_people(T)} {_model_unit(model, T)} "
        "(grey: impossible)"
    )
    if getattr(type(model), "discrete_time", False):
        ax.set_xlabel("recency: opportunity of the last repeat transaction")
        ax.set_ylabel("frequency: repeat transactions")
    else:
        ax.set_xlabel(f"recency: time of last repeat purchase ({unit} since first purchase)")
        ax.set_ylabel("frequency: repeat purchases")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


def plot_frequency_recency_matrix(
    model: Any, *, T: float, t: float = 1.0, max_frequency: int | None = None,
    max_recency: float | None = None, ax: Axes | None = None,
) -> Axes:  # fmt: skip
    """Heatmap of expected purchases in the next ``t`` time units by frequency and
    recency, for customers observed for ``T`` time units.

    Parameters
    ----------
    model : BGNBD, MBGNBD, ParetoNBD or BGBB
        A fitted model; its ``expected_purchases(grid, t)`` is evaluated on the grid
        (for BG/BB, ``T`` is the number of opportunities ``n_periods``).
    T : float
        Time each customer has been observed since their first purchase, in the model's
        time unit.
    t : float, default 1
        Prediction horizon in the same unit.
    max_frequency : int, optional
        Largest frequency shown (rows 0 .. max_frequency); default 20 (at most ``T``
        for BG/BB).
    max_recency : float, optional
        Largest recency shown (columns 0, 1, ..., whole time units); default ``T``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.images[0].get_array()`` is the (frequency x recency) matrix, masked where
        the combination is impossible: frequency 0 with recency > 0, frequency > 0 with
        recency 0, recency > ``T`` (and for BG/BB frequency > recency).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import clvmodels
    >>> from clvmodels.plotting import plot_frequency_recency_matrix
    >>> model = clvmodels.BGBB().fit(clvmodels.datasets.load_donations())
    >>> ax = plot_frequency_recency_matrix(model, T=6, t=5)
    >>> ax.images[0].get_array().shape  # frequency 0..6 x recency 0..6
    (7, 7)
    """
    frequency, recency, valid, grid = _customer_grid(model, T, max_frequency, max_recency)
    values = point_estimate(model.expected_purchases(grid, t))
    unit = _model_unit(model, float(t))
    return _matrix_plot(
        model, values, frequency, recency, valid, ax,
        f"Expected purchases in the next {_for_people(t)} {unit}", "expected purchases",
        float(T),
        vmin=0.0,
    )  # fmt: skip


def plot_probability_alive_matrix(
    model: Any, *, T: float, max_frequency: int | None = None,
    max_recency: float | None = None, ax: Axes | None = None,
) -> Axes:  # fmt: skip
    """Heatmap of the probability that a customer is still alive, by frequency and
    recency, for customers observed for ``T`` time units.

    Parameters
    ----------
    model : BGNBD, MBGNBD, ParetoNBD or BGBB
        A fitted model; its ``probability_alive(grid)`` is evaluated on the grid.
    T, max_frequency, max_recency, ax
        As in :func:`plot_frequency_recency_matrix`.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.images[0].get_array()`` is the (frequency x recency) matrix of
        probabilities, masked where the combination is impossible.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import clvmodels
    >>> from clvmodels.plotting import plot_probability_alive_matrix
    >>> model = clvmodels.BGBB().fit(clvmodels.datasets.load_donations())
    >>> ax = plot_probability_alive_matrix(model, T=6)
    >>> float(ax.images[0].get_array().max()) <= 1
    True
    """
    frequency, recency, valid, grid = _customer_grid(model, T, max_frequency, max_recency)
    values = point_estimate(model.probability_alive(grid))
    return _matrix_plot(
        model, values, frequency, recency, valid, ax, "Probability that a customer is alive",
        "P(alive)", float(T), vmin=0.0, vmax=1.0,
    )  # fmt: skip


# ---------------------------------------------------------------------- heterogeneity


def _panels(model: Any) -> list[tuple[Any, str, str, str]]:
    """(scipy distribution, title, x label, support) of each mixing distribution."""
    from scipy import stats

    kind = getattr(type(model), "kind", "")
    from . import registry

    if kind not in registry.MODELS:
        raise InvalidDataError(
            f"plot_heterogeneity does not know models of kind {kind!r} "
            f"({type(model).__name__}); it draws BG/NBD, MBG/NBD, Pareto/NBD, BG/BB, "
            "Gamma-Gamma and sBG models."
        )
    p = _params(model)
    per = _model_unit(model, 1)
    if kind in ("bgnbd", "mbgnbd"):
        after = "each purchase" if kind == "bgnbd" else "each purchase, incl. the first"
        return [
            (stats.gamma(p["r"], scale=1 / p["alpha"]),
             f"Purchase rate λ ~ Gamma(r={p['r']:.3g}, α={p['alpha']:.3g})",
             f"λ: purchases per {per} while alive", "positive"),
            (stats.beta(p["a"], p["b"]),
             f"Dropout probability p ~ Beta(a={p['a']:.3g}, b={p['b']:.3g})",
             f"p: probability of becoming inactive after {after}", "unit"),
        ]  # fmt: skip
    if kind == "pnbd":
        return [
            (stats.gamma(p["r"], scale=1 / p["alpha"]),
             f"Purchase rate λ ~ Gamma(r={p['r']:.3g}, α={p['alpha']:.3g})",
             f"λ: purchases per {per} while alive", "positive"),
            (stats.gamma(p["s"], scale=1 / p["beta"]),
             f"Dropout rate μ ~ Gamma(s={p['s']:.3g}, β={p['beta']:.3g})",
             f"μ: dropout rate per {per} (mean lifetime 1/μ)", "positive"),
        ]  # fmt: skip
    if kind == "bgbb":
        return [
            (stats.beta(p["alpha"], p["beta"]),
             f"Transaction probability p ~ Beta(α={p['alpha']:.3g}, β={p['beta']:.3g})",
             "p: probability of a transaction per opportunity while alive", "unit"),
            (stats.beta(p["gamma"], p["delta"]),
             f"Dropout probability θ ~ Beta(γ={p['gamma']:.3g}, δ={p['delta']:.3g})",
             "θ: probability of dropping out per opportunity", "unit"),
        ]  # fmt: skip
    if kind == "gamma_gamma":
        # nu ~ Gamma(q, rate gamma)  =>  E[Z | nu] = p / nu ~ InvGamma(q, scale p * gamma)
        return [
            (stats.gamma(p["q"], scale=1 / p["gamma"]),
             f"Spend rate ν ~ Gamma(q={p['q']:.3g}, γ={p['gamma']:.3g})",
             "ν: rate of a customer's transaction values Z ~ Gamma(p, ν)", "positive"),
            (stats.invgamma(p["q"], scale=p["p"] * p["gamma"]),
             f"Mean transaction value p/ν ~ InvGamma(q={p['q']:.3g}, "
             f"scale={p['p'] * p['gamma']:.3g})",
             "E[Z | ν] = p/ν: a customer's mean transaction value", "positive"),
        ]  # fmt: skip
    if kind == "sbg":
        return [
            (stats.beta(p["alpha"], p["beta"]),
             f"Churn probability θ ~ Beta(α={p['alpha']:.3g}, β={p['beta']:.3g})",
             "θ: probability of churning at the end of each period", "unit"),
        ]  # fmt: skip
    raise AssertionError(kind)  # pragma: no cover - checked above


def _density_grid(dist: Any, support: str, n: int = 400) -> np.ndarray:
    """Points covering all but ``2 * _DENSITY_EPS`` of the probability, dense enough in
    x (geometric near the ends), in probability and on the visible range that the
    trapezoid rule integrates the density to about 1 even where it diverges."""
    lo, hi = (float(v) for v in dist.ppf([_DENSITY_EPS, 1 - _DENSITY_EPS]))
    tiny = np.finfo(float).tiny
    parts = [
        np.geomspace(max(lo, tiny), hi, n),
        dist.ppf(np.linspace(_DENSITY_EPS, 1 - _DENSITY_EPS, n)),
    ]
    if support == "unit":
        parts.append(1 - np.geomspace(max(1 - hi, tiny), max(1 - lo, tiny), n))
        parts.append(np.linspace(lo, hi, n))
    else:
        parts.append(np.linspace(lo, float(dist.ppf(0.99)), n))
    x = np.unique(np.concatenate(parts))
    upper = 1.0 if support == "unit" else np.inf
    return x[np.isfinite(x) & (x > 0) & (x < upper)]


def _draw_density(ax: Axes, dist: Any, title: str, xlabel: str, support: str) -> None:
    x = _density_grid(dist, support)
    y = dist.pdf(x)
    if support == "unit":
        view = (0.0, 1.0)
        shape_a, shape_b = dist.args
        unbounded = {"0": shape_a < 1, "1": shape_b < 1}
    else:
        view = (0.0, float(dist.ppf(0.99)))
        unbounded = {"0": dist.dist.name == "gamma" and dist.args[0] < 1, "1": False}
    ax.plot(x, y, color="tab:blue", linewidth=2, label="density")
    ax.fill_between(x, y, color="tab:blue", alpha=0.15, linewidth=0)
    mean = float(dist.mean())
    if np.isfinite(mean):
        ax.axvline(mean, color="black", linestyle=":", linewidth=1.2, label=f"mean = {mean:.3g}")
    # y limit from the visible part, leaving out the ends where the density diverges
    span = view[1] - view[0]
    keep = (x >= view[0]) & (x <= view[1])
    if unbounded["0"]:
        keep &= x >= view[0] + 0.03 * span
    if unbounded["1"]:
        keep &= x <= view[1] - 0.03 * span
    top = float(np.max(y[keep])) if keep.any() else float(np.max(y))
    ax.set_xlim(*view)
    ax.set_ylim(0, 1.15 * top)
    notes = [f"→ ∞ at {end}" for end, flag in unbounded.items() if flag]
    if notes:
        # away from the end where the curve leaves the top of the panel
        x_text, ha = (0.02, "left") if not unbounded["0"] else (0.98, "right")
        if unbounded["0"] and unbounded["1"]:
            x_text, ha = 0.5, "center"
        ax.text(
            x_text, 0.97, "density " + " and ".join(notes) + " (clipped)",
            transform=ax.transAxes, ha=ha, va="top", fontsize="small", color="dimgray",
        )  # fmt: skip
    ax.set_title(title, fontsize="medium")
    # a panel is about 60 characters wide: a longer label would run past the figure
    ax.set_xlabel(textwrap.fill(xlabel, 60))
    ax.set_ylabel("density across customers")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")


def plot_heterogeneity(model: Any, axes: Any = None) -> np.ndarray:
    """Densities of a fitted model's mixing distributions: how customers differ.

    ========================  ==================================================
    model (``kind``)          panels
    ========================  ==================================================
    BG/NBD, MBG/NBD           purchase rate λ ~ Gamma(r, rate α); dropout
                              probability p ~ Beta(a, b)
    Pareto/NBD (``pnbd``)     λ ~ Gamma(r, rate α); dropout rate μ ~ Gamma(s, rate β)
    BG/BB                     transaction probability p ~ Beta(α, β); dropout
                              probability θ ~ Beta(γ, δ)
    Gamma-Gamma               ν ~ Gamma(q, rate γ); the mean transaction value
                              E[Z | ν] = p/ν ~ InvGamma(q, scale p γ)
    sBG                       churn probability θ ~ Beta(α, β) (one panel)
    ========================  ==================================================

    Curves cover all but 1e-6 of the probability at each end, so they integrate to 1;
    where a density goes to infinity (Gamma shape < 1 at 0, Beta shape < 1 at 0 or 1)
    the y axis is clipped and the panel says so. A dotted line marks the mean.

    Parameters
    ----------
    model : fitted model
        Dispatched on ``type(model).kind`` and read through ``model.params_``.
    axes : Axes or sequence of Axes, optional
        One Axes per panel; a new figure (panels side by side) by default.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        One per panel; each panel's first line is the density curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from clvmodels import ShiftedBetaGeometric as SBG
    >>> from clvmodels.plotting import plot_heterogeneity
    >>> model = SBG().fit(SBG.data_from_counts([1000, 631, 468, 382, 326]))
    >>> axes = plot_heterogeneity(model)
    >>> len(axes), axes[0].get_xlabel()
    (1, 'θ: probability of churning at the end of each period')
    """
    panels = _panels(model)
    if axes is None:
        _fig, axes = _pyplot().subplots(
            1, len(panels), figsize=(5.5 * len(panels), 4.2), layout="constrained", squeeze=False
        )
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) != len(panels):
        raise InvalidDataError(
            f"{type(model).__name__} needs {len(panels)} axes for its mixing distributions; "
            f"got {len(axes)}."
        )
    for ax, (dist, title, xlabel, support) in zip(axes, panels, strict=True):
        _draw_density(ax, dist, title, xlabel, support)
    return axes


# ------------------------------------------------------------ acquisition economics


def plot_segment_value(table: pd.DataFrame, ax: Axes | None = None, *,
                       currency: str | None = None) -> Axes:  # fmt: skip
    """CLV / CAC per segment, with its interval where the table has one.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`clvmodels.segment_value`'s table: index the segments, column
        ``clv_to_cac`` and optionally ``clv_to_cac_lower`` / ``_upper``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.
    currency : str, optional
        Shown in the title (the ratio itself has no unit).

    Returns
    -------
    matplotlib.axes.Axes
        One horizontal bar per segment (top to bottom in the table's order) and the
        break-even line at 1; segments with an infinite ratio (free to acquire) are
        marked at the right edge.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_segment_value
    >>> table = pd.DataFrame({"clv_to_cac": [2.4, 0.8], "clv_to_cac_lower": [1.9, 0.6],
    ...                       "clv_to_cac_upper": [3.0, 1.1]}, index=["search", "social"])
    >>> ax = plot_segment_value(table)
    >>> len(ax.patches), ax.get_xlabel()
    (2, 'CLV / CAC')
    """
    _require(table, ["clv_to_cac"], "table")
    ratio = table["clv_to_cac"].to_numpy(dtype=float)
    finite = np.isfinite(ratio)
    ax = _new_axes(ax, figsize=(7.0, 0.5 * len(table) + 1.8))
    y = np.arange(len(table))[::-1]
    edge = max(float(np.nanmax(ratio[finite], initial=1.0)), 1.0) * 1.15
    if "clv_to_cac_upper" in table.columns:
        upper = table["clv_to_cac_upper"].to_numpy(dtype=float)
        edge = max(edge, float(np.nanmax(np.where(np.isfinite(upper), upper, 0.0))) * 1.1)
    shown = np.where(finite, ratio, edge)
    colours = np.where(shown >= 1.0, "tab:green", "tab:red")
    ax.barh(y, shown, color=colours, alpha=0.75, height=0.6)
    if {"clv_to_cac_lower", "clv_to_cac_upper"} <= set(table.columns):
        lower = table["clv_to_cac_lower"].to_numpy(dtype=float)
        upper = table["clv_to_cac_upper"].to_numpy(dtype=float)
        ok = finite & np.isfinite(lower) & np.isfinite(upper)
        ax.errorbar(shown[ok], y[ok], xerr=[shown[ok] - lower[ok], upper[ok] - shown[ok]],
                    fmt="none", ecolor="black", capsize=4, linewidth=1.2)  # fmt: skip
    for position in y[~finite]:
        ax.annotate("free to acquire (∞)", (edge, position), ha="right", va="center",
                    fontsize="small")  # fmt: skip
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="break-even (CLV = CAC)")
    ax.set_yticks(y, labels=[str(label) for label in table.index])
    ax.set_xlim(0, edge * 1.02)
    interval = table.attrs.get("interval")
    note = f", {interval:.0%} interval" if interval and "clv_to_cac_upper" in table else ""
    ax.set_title("CLV against acquisition cost" + (f" ({currency})" if currency else ""))
    ax.set_xlabel("CLV / CAC")
    ax.set_ylabel(f"segment{note}")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_payback_curves(curves: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Cumulative margin against acquisition cost by customer age, per segment.

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`clvmodels.payback_curves`' table: index (``segment``, ``age``), column
        ``covered`` (cumulative margin / CAC); ``attrs["time_unit"]`` names the ages.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        One line per segment (free segments, covered from the start, are left out),
        then the payback line at 1.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_payback_curves
    >>> index = pd.MultiIndex.from_product([["search", "social"], [0.0, 10.0, 20.0]],
    ...                                    names=["segment", "age"])
    >>> curves = pd.DataFrame({"covered": [0.2, 0.9, 1.3, 0.1, 0.5, 0.8]}, index=index)
    >>> ax = plot_payback_curves(curves)
    >>> len(ax.get_lines())
    3
    """
    _require(curves, ["covered"], "curves")
    if curves.index.nlevels != 2:
        raise InvalidDataError("curves must be indexed by (segment, age), as "
                               "clvmodels.payback_curves returns them.")  # fmt: skip
    ax = _new_axes(ax)
    for segment, part in curves["covered"].groupby(level=0, sort=False):
        values = part.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            continue
        ages = part.index.get_level_values(1).to_numpy(dtype=float)
        ax.plot(ages, values, linewidth=1.8, label=str(segment))
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="paid back")
    unit = _unit_name(curves.attrs.get("time_unit"))
    ax.set_title("Payback: cumulative margin / acquisition cost")
    ax.set_xlabel(f"customer age ({unit} since the first purchase)")
    ax.set_ylabel("cumulative margin / CAC")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_cohort_retention(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of each acquisition cohort purchasing in each later period, observed
    (solid, markers) beside the model's expected share (dashed, with its interval).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`clvmodels.cohort_retention`'s table: index (``cohort``, ``period``),
        columns ``observed_share``, ``expected_share`` and optionally its bounds.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Per cohort an observed line; the expected share once when it is the same for
        every cohort (a model without covariates), else one dashed line per cohort.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_cohort_retention
    >>> index = pd.MultiIndex.from_product([["2024-01", "2024-02"], [1, 2]],
    ...                                    names=["cohort", "period"])
    >>> table = pd.DataFrame({"observed_share": [0.30, 0.22, 0.28, 0.21],
    ...                       "expected_share": [0.29, 0.23, 0.29, 0.23]}, index=index)
    >>> ax = plot_cohort_retention(table)
    >>> len(ax.get_lines())
    3
    """
    _require(table, ["observed_share", "expected_share"], "table")
    ax = _new_axes(ax)
    # one model curve when every cohort has the same expected share in each period
    expected = table["expected_share"].unstack(0).to_numpy(dtype=float)
    common = bool(np.all(np.nanmax(expected, axis=1) - np.nanmin(expected, axis=1)
                         <= 1e-12 * np.nanmax(expected, axis=1)))  # fmt: skip
    colours = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    bounds = {"expected_share_lower", "expected_share_upper"} <= set(table.columns)
    for i, (cohort, part) in enumerate(table.groupby(level=0, sort=False)):
        colour = colours[i % len(colours)]
        period = part.index.get_level_values(1).to_numpy(dtype=float)
        ax.plot(period, part["observed_share"].to_numpy(dtype=float), marker="o",
                markersize=3.5, color=colour, linewidth=1.4, label=str(cohort))  # fmt: skip
        if not common:
            ax.plot(period, part["expected_share"].to_numpy(dtype=float), linestyle="--",
                    color=colour, linewidth=1.2)  # fmt: skip
            if bounds:
                ax.fill_between(period, part["expected_share_lower"].to_numpy(dtype=float),
                                part["expected_share_upper"].to_numpy(dtype=float),
                                color=colour, alpha=0.12, linewidth=0)  # fmt: skip
    if common:
        longest = table.groupby(level=0, sort=False).size().idxmax()
        part = table.loc[longest]
        period = part.index.to_numpy(dtype=float)
        ax.plot(period, part["expected_share"].to_numpy(dtype=float), linestyle="--",
                color="black", linewidth=2.0, label="model")  # fmt: skip
        if bounds:
            ax.fill_between(period, part["expected_share_lower"].to_numpy(dtype=float),
                            part["expected_share_upper"].to_numpy(dtype=float),
                            color="black", alpha=0.15, linewidth=0,
                            label="model interval")  # fmt: skip
    length = table.attrs.get("period_length")
    unit = _unit_name(table.attrs.get("time_unit"))
    span = f" of {_for_people(length)} {unit}" if length is not None else ""
    ax.set_title("Retention by acquisition cohort: share purchasing in each period")
    ax.set_xlabel(f"period since acquisition{span}")
    ax.set_ylabel("share of the cohort purchasing")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2 if table.index.get_level_values(0).nunique() > 6 else 1)
    return ax


def plot_subscription_retention(table: pd.DataFrame, axes: Any = None) -> np.ndarray:
    """Survival and retention-rate curves per cohort of subscribers: observed (markers)
    and the sBG model (lines, with their intervals).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`clvmodels.subscription_retention`'s table: index (``cohort``, ``t``),
        columns ``observed_survival``, ``survival``, ``observed_retention``,
        ``retention_rate`` and optionally their bounds.
    axes : sequence of two Axes, optional
        Survival, then retention rate; a new figure by default.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        The two panels.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from clvmodels.plotting import plot_subscription_retention
    >>> index = pd.MultiIndex.from_product([["2023"], [0, 1, 2]], names=["cohort", "t"])
    >>> table = pd.DataFrame({"observed_survival": [1.0, 0.63, 0.47],
    ...     "survival": [1.0, 0.627, 0.474], "observed_retention": [None, 0.63, 0.74],
    ...     "retention_rate": [None, 0.627, 0.756]}, index=index)
    >>> axes = plot_subscription_retention(table)
    >>> [ax.get_ylabel() for ax in axes]
    ['share still active', 'retention rate']
    """
    _require(table, ["observed_survival", "survival", "observed_retention",
                     "retention_rate"], "table")  # fmt: skip
    if axes is None:
        _fig, axes = _pyplot().subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) != 2:
        raise InvalidDataError(f"plot_subscription_retention needs 2 axes; got {len(axes)}.")
    colours = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, observed, model, label in (
        (axes[0], "observed_survival", "survival", "share still active"),
        (axes[1], "observed_retention", "retention_rate", "retention rate"),
    ):
        for i, (cohort, part) in enumerate(table.groupby(level=0, sort=False)):
            colour = colours[i % len(colours)]
            t = part.index.get_level_values(1).to_numpy(dtype=float)
            ax.plot(t, part[model].to_numpy(dtype=float), color=colour, linewidth=1.6,
                    label=f"{cohort} (sBG)")  # fmt: skip
            if {f"{model}_lower", f"{model}_upper"} <= set(part.columns):
                ax.fill_between(t, part[f"{model}_lower"].to_numpy(dtype=float),
                                part[f"{model}_upper"].to_numpy(dtype=float), color=colour,
                                alpha=0.15, linewidth=0)  # fmt: skip
            ax.plot(t, part[observed].to_numpy(dtype=float), linestyle="none", marker="o",
                    markersize=4, color=colour, label=f"{cohort} (observed)")  # fmt: skip
        ax.set_xlabel("period")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title("Survival by cohort")
    axes[0].set_ylim(0, 1.02)
    axes[1].set_title("Retention rate by cohort")
    axes[1].legend(fontsize="small")
    return axes

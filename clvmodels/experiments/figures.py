"""The plots of a run, drawn on stand-alone matplotlib Figures (no pyplot state, so a run
inside a notebook leaves the user's figures and backend alone) and saved as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .config import PURCHASE_KINDS, ExperimentConfig

__all__ = ["draw_plots"]

_DPI = 110


def _figure(width: float = 7.0, height: float = 4.5) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(figure: Any, out: Path, name: str) -> str:
    relative = f"plots/{name}.png"
    # no "Software" stamp: the same run gives the same bytes. The saved area grows to
    # hold every label: constrained layout cannot shrink a label wider than its panel,
    # and the report shows the image as it is, so nothing may fall off its edges.
    figure.savefig(
        out / relative, dpi=_DPI, metadata={"Software": None}, bbox_inches="tight",
        pad_inches=0.08,
    )  # fmt: skip
    return relative


def draw_plots(
    config: ExperimentConfig, models: dict[str, Any], frames: dict[str, pd.DataFrame],
    predictions: pd.DataFrame, tables: dict[str, pd.DataFrame], comparison: Any, out: Path,
) -> dict[str, str]:  # fmt: skip
    """Draw every plot that applies to the run; return ``{key: relative path}``."""
    from .. import plotting

    (out / "plots").mkdir(exist_ok=True)
    plots: dict[str, str] = {}
    for spec in config.models:
        model = models[spec.name]
        if getattr(model, "covariates_", None) is not None:
            continue  # its mixing distributions differ by customer: no one curve
        panels = len(plotting._panels(model))
        figure = _figure(5.0 * panels, 3.8)
        plotting.plot_heterogeneity(model, axes=figure.subplots(1, panels, squeeze=False))
        plots[f"heterogeneity_{spec.name}"] = _save(figure, out, f"heterogeneity_{spec.name}")
    if "conditional_expectations" in tables:
        figure = _figure()
        plotting.plot_conditional_expectations(
            tables["conditional_expectations"], ax=figure.add_subplot()
        )
        plots["conditional_expectations"] = _save(figure, out, "conditional_expectations")
    if "tracking" in tables:
        for cumulative in (False, True):
            key = "tracking_cumulative" if cumulative else "tracking"
            figure = _figure(8.0, 4.5)
            plotting.plot_tracking(
                tables["tracking"], cumulative=cumulative, ax=figure.add_subplot()
            )
            plots[key] = _save(figure, out, key)
    # continuous-time models first: BG/BB predicts a different outcome (periods with
    # a purchase), so it only leads when it is the only purchase model
    purchase = sorted(
        (spec.name for spec in config.models if spec.kind in PURCHASE_KINDS),
        key=lambda name: models[name].kind == "bgbb",
    )
    if purchase and tables.get("metrics") is not None:
        first = purchase[0]
        frame = frames[first]
        if "frequency_holdout" in frame.columns:
            from ..evaluation import predicted_purchases

            figure = _figure()
            plotting.plot_predicted_vs_actual_by_decile(
                predicted_purchases(models[first], frame), frame["frequency_holdout"],
                ax=figure.add_subplot(), ylabel="holdout repeat purchases per customer",
            )  # fmt: skip
            figure.axes[0].set_title(f"{first}: holdout purchases by predicted decile")
            plots["deciles"] = _save(figure, out, "deciles")
    # the P(alive) matrix is a grid of histories without covariates: the first model
    # without them draws it (none, when every purchase model has covariates)
    plain = [name for name in purchase if getattr(models[name], "covariates_", None) is None]
    if plain:
        first = plain[0]
        frame = frames[first]
        suffix = "_cal" if "T_cal" in frame.columns else ""
        length = "n_periods" if f"n_periods{suffix}" in frame.columns else "T"
        observed = float(frame[f"{length}{suffix}"].max())
        figure = _figure(6.5, 5.0)
        plotting.plot_probability_alive_matrix(
            models[first], T=observed, ax=figure.add_subplot()
        )
        plots["probability_alive"] = _save(figure, out, "probability_alive")
    if comparison is not None:
        figure = _figure(6.5, 5.5)
        plotting.plot_clv_comparison(comparison.customers, ax=figure.add_subplot())
        plots["clv_comparison"] = _save(figure, out, "clv_comparison")
    if "segments" in tables:
        plots.update(_economics_plots(config, tables, out))
    return plots


def _economics_plots(config: ExperimentConfig, tables: dict[str, pd.DataFrame],
                     out: Path) -> dict[str, str]:  # fmt: skip
    from .. import plotting

    segments = tables["segments"]
    figure = _figure(7.0, 0.45 * len(segments) + 2.0)
    currency = config.economics.currency if config.economics is not None else None
    plotting.plot_segment_value(segments, ax=figure.add_subplot(), currency=currency)
    plots = {"segment_value": _save(figure, out, "segment_value")}
    figure = _figure()
    plotting.plot_payback_curves(tables["payback_curves"], ax=figure.add_subplot())
    plots["payback_curves"] = _save(figure, out, "payback_curves")
    figure = _figure(8.0, 4.8)
    plotting.plot_cohort_retention(tables["retention"], ax=figure.add_subplot())
    plots["retention"] = _save(figure, out, "retention")
    return plots

"""clvmodels.plotting: every plot renders and draws the data it was given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvmodels
from clvmodels.exceptions import InvalidDataError, NotFittedError
from clvmodels.plotting import (
    plot_clv_comparison,
    plot_conditional_expectations,
    plot_frequency_recency_matrix,
    plot_heterogeneity,
    plot_predicted_vs_actual_by_decile,
    plot_probability_alive_matrix,
    plot_tracking,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return clvmodels.calibration_holdout(
        clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
        holdout_end="1998-06-30", time_unit="W", amount="amount",
    )  # fmt: skip


@pytest.fixture(scope="module")
def bgnbd(frame: pd.DataFrame):
    return clvmodels.BGNBD().fit(frame)


@pytest.fixture(scope="module")
def pnbd(frame: pd.DataFrame):
    return clvmodels.ParetoNBD().fit(frame)


@pytest.fixture(scope="module")
def gamma_gamma(frame: pd.DataFrame):
    return clvmodels.GammaGamma().fit(frame)


@pytest.fixture(scope="module")
def bgbb():
    return clvmodels.BGBB().fit(clvmodels.datasets.load_donations())


@pytest.fixture(scope="module")
def sbg():
    sbg_class = clvmodels.ShiftedBetaGeometric
    data = sbg_class.data_from_counts([1000, 631, 468, 382, 326, 289, 262, 241])
    return sbg_class().fit(data)


def _renders(ax, tmp_path: Path) -> None:
    fig = np.ravel(ax)[0].figure
    path = tmp_path / "x.png"
    fig.savefig(path)
    assert path.stat().st_size > 0


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def _grid(T: float, max_frequency: int, max_recency: int, t_column: str = "T"):
    """The valid cells of the frequency x recency matrix, built independently."""
    cells = [
        (f, r)
        for f in range(max_frequency + 1)
        for r in range(max_recency + 1)
        if r <= T and (f == 0) == (r == 0) and (t_column == "T" or f <= r)
    ]
    grid = pd.DataFrame(cells, columns=["frequency", "recency"], dtype=float)
    grid[t_column] = float(T)
    return grid


def _matrix(grid: pd.DataFrame, values: pd.Series, shape: tuple[int, int]) -> np.ndarray:
    expected = np.full(shape, np.nan)
    rows = grid["frequency"].astype(int).to_numpy()
    columns = grid["recency"].astype(int).to_numpy()
    expected[rows, columns] = values.to_numpy()
    return expected


# ----------------------------------------------------------------------- the module


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, clvmodels.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------ conditional expectations


def test_conditional_expectations(frame, bgnbd, pnbd, tmp_path) -> None:
    bins = frame["frequency_cal"].clip(upper=7).astype(int).astype(str).replace("7", "7+")
    horizon = float(frame["duration_holdout"].iloc[0])
    table = pd.DataFrame(
        {
            "customers": bins.value_counts(),
            "actual": frame.groupby(bins)["frequency_holdout"].mean(),
            "BG/NBD": bgnbd.expected_purchases(frame, horizon).groupby(bins).mean(),
            "Pareto/NBD": pnbd.expected_purchases(frame, horizon).groupby(bins).mean(),
        }
    ).sort_index()
    assert table.index.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    ax = plot_conditional_expectations(table)
    _renders(ax, tmp_path)
    lines = ax.get_lines()
    assert len(lines) == 3
    for line, column in zip(lines, ["actual", "BG/NBD", "Pareto/NBD"], strict=True):
        np.testing.assert_allclose(line.get_xdata(), np.arange(8))
        np.testing.assert_allclose(line.get_ydata(), table[column].to_numpy())
        assert line.get_marker() not in (None, "None", "")
    assert _legend_texts(ax) == ["actual", "BG/NBD", "Pareto/NBD"]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == f"0\nn={table.loc['0', 'customers']:,}" and ticks[-1].startswith("7+")
    assert ax.get_title() == "Conditional expectations"
    assert ax.get_xlabel() == "purchases in calibration period"
    assert ax.get_ylabel() == "mean purchases in holdout period"


def test_conditional_expectations_on_given_axes_without_customers() -> None:
    _fig, (left, right) = plt.subplots(1, 2)
    table = pd.DataFrame({"actual": [0.2, 0.7], "model": [0.25, 0.6]}, index=["0", "1+"])
    assert plot_conditional_expectations(table, ax=right) is right
    assert not left.get_lines()
    assert [t.get_text() for t in right.get_xticklabels()] == ["0", "1+"]
    with pytest.raises(InvalidDataError, match="actual"):
        plot_conditional_expectations(table.drop(columns="actual"))


# ---------------------------------------------------------------------------- tracking


@pytest.fixture
def tracking_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    actual = rng.poisson(np.r_[np.linspace(5, 80, 39), np.full(39, 45)])
    table = pd.DataFrame(
        {"actual": actual, "BG/NBD": actual * 1.05 + 2.0, "Pareto/NBD": actual * 0.9},
        index=pd.RangeIndex(1, 79, name="period"),
    )
    table.attrs["calibration_periods"] = 39
    table.attrs["time_unit"] = "W"
    return table


@pytest.mark.parametrize("cumulative", [False, True])
def test_tracking(tracking_table, cumulative, tmp_path) -> None:
    ax = plot_tracking(tracking_table, cumulative=cumulative)
    _renders(ax, tmp_path)
    lines = ax.get_lines()
    assert len(lines) == 4  # actual, two models, boundary
    expected = tracking_table.cumsum() if cumulative else tracking_table
    for line, column in zip(lines[:3], ["actual", "BG/NBD", "Pareto/NBD"], strict=True):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 79))
        np.testing.assert_allclose(line.get_ydata(), expected[column].to_numpy())
    boundary = lines[3]
    assert np.all(np.asarray(boundary.get_xdata(), dtype=float) == 39)
    assert boundary.get_linestyle() == "--"
    assert "end of calibration (39 weeks)" in _legend_texts(ax)
    assert {t.get_text().strip() for t in ax.texts} == {"calibration", "holdout"}
    assert "weeks" in ax.get_xlabel()
    if cumulative:
        assert ax.get_title() == "Cumulative repeat transactions"
    else:
        assert ax.get_ylabel() == "repeat transactions per week"


def test_tracking_default_unit_and_other_units(tracking_table) -> None:
    del tracking_table.attrs["time_unit"]
    assert "weeks" in plot_tracking(tracking_table).get_xlabel()
    tracking_table.attrs["time_unit"] = "D"
    ax = plot_tracking(tracking_table)
    assert ax.get_ylabel() == "repeat transactions per day"
    assert "days" in ax.get_xlabel()
    tracking_table.attrs["time_unit"] = "2W"
    assert "2-week periods" in plot_tracking(tracking_table).get_xlabel()


# ---------------------------------------------------------------- the matrix heatmaps


def test_frequency_recency_matrix(bgnbd, tmp_path) -> None:
    ax = plot_frequency_recency_matrix(bgnbd, T=39, t=4, max_frequency=12)
    _renders(ax, tmp_path)
    image = ax.images[0].get_array()
    assert image.shape == (13, 40)
    grid = _grid(39, 12, 39)
    expected = _matrix(grid, bgnbd.expected_purchases(grid, 4), (13, 40))
    np.testing.assert_allclose(np.ma.filled(image.astype(float), np.nan), expected)
    assert np.ma.is_masked(image[0, 1]) and np.ma.is_masked(image[5, 0])
    assert not np.ma.is_masked(image[0, 0]) and not np.ma.is_masked(image[5, 20])
    assert ax.get_title().startswith("Expected purchases in the next 4 weeks")
    assert "weeks" in ax.get_xlabel() and "frequency" in ax.get_ylabel()
    assert len(ax.figure.axes) == 2  # the colorbar


def test_frequency_recency_matrix_defaults_and_recency_beyond_T(pnbd) -> None:
    ax = plot_frequency_recency_matrix(pnbd, T=20.5)
    image = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    assert image.shape == (21, 21)  # frequency 0..20, recency 0..20 (whole weeks <= T)
    assert ax.get_title().startswith("Expected purchases in the next 1 week\n")
    ax = plot_frequency_recency_matrix(pnbd, T=10, max_frequency=3, max_recency=15)
    image = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    assert image.shape == (4, 16)
    assert np.isnan(image[:, 11:]).all() and np.isfinite(image[1:, 1:11]).all()


def test_probability_alive_matrix(pnbd, tmp_path) -> None:
    ax = plot_probability_alive_matrix(pnbd, T=39, max_frequency=10, max_recency=30)
    _renders(ax, tmp_path)
    image = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    grid = _grid(39, 10, 30)
    expected = _matrix(grid, pnbd.probability_alive(grid), (11, 31))
    np.testing.assert_allclose(image, expected)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert ax.get_title().startswith("Probability that a customer is alive")


def test_matrix_titles_round_durations_for_people(pnbd) -> None:
    ax = plot_probability_alive_matrix(pnbd, T=272 / 7, max_frequency=3)
    assert "customers observed for 38.9 weeks" in ax.get_title()
    ax = plot_frequency_recency_matrix(pnbd, T=39, t=365.25 / 7, max_frequency=3)
    assert ax.get_title().startswith("Expected purchases in the next 52.2 weeks\n")


def test_matrices_of_bgbb(bgbb) -> None:
    ax = plot_frequency_recency_matrix(bgbb, T=6, t=5)
    image = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    grid = _grid(6, 6, 6, t_column="n_periods")
    np.testing.assert_allclose(image, _matrix(grid, bgbb.expected_purchases(grid, 5), (7, 7)))
    assert np.isnan(image[3, 2])  # 3 transactions cannot happen in 2 opportunities
    assert "5 opportunities" in ax.get_title()
    ax = plot_probability_alive_matrix(bgbb, T=6)
    image = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    np.testing.assert_allclose(image, _matrix(grid, bgbb.probability_alive(grid), (7, 7)))


def test_matrix_rejects_models_without_recency(gamma_gamma) -> None:
    with pytest.raises(InvalidDataError, match="purchase model"):
        plot_frequency_recency_matrix(gamma_gamma, T=39)
    with pytest.raises(NotFittedError):
        plot_probability_alive_matrix(clvmodels.BGNBD(), T=39)


# ---------------------------------------------------------------------------- deciles


def test_predicted_vs_actual_by_decile(frame, bgnbd, tmp_path) -> None:
    horizon = float(frame["duration_holdout"].iloc[0])
    predicted = bgnbd.expected_purchases(frame, horizon)
    actual = frame["frequency_holdout"].sample(frac=1.0, random_state=0)  # shuffled order
    ax = plot_predicted_vs_actual_by_decile(predicted, actual)
    _renders(ax, tmp_path)
    decile = pd.qcut(predicted.rank(method="first"), 10, labels=range(1, 11))
    table = pd.DataFrame({"predicted": predicted, "actual": frame["frequency_holdout"]})
    means = table.groupby(decile, observed=False).mean()
    bars_predicted, bars_actual = ax.containers
    np.testing.assert_allclose(bars_predicted.datavalues, means["predicted"].to_numpy())
    np.testing.assert_allclose(bars_actual.datavalues, means["actual"].to_numpy())
    centres = [p.get_x() + p.get_width() / 2 for p in bars_predicted.patches]
    assert np.all(np.diff(centres) > 0) and len(centres) == 10
    assert _legend_texts(ax) == ["predicted (mean)", "actual (mean)"]
    assert "decile" in ax.get_xlabel()


def test_deciles_break_ties_by_order_and_check_input() -> None:
    predicted = pd.Series(np.r_[np.zeros(50), np.ones(50)])
    actual = pd.Series(np.arange(100.0))
    ax = plot_predicted_vs_actual_by_decile(predicted, actual, ylabel="purchases")
    np.testing.assert_allclose(ax.containers[1].datavalues, np.arange(10) * 10 + 4.5)
    np.testing.assert_allclose(ax.containers[0].datavalues, [0] * 5 + [1] * 5)
    assert ax.get_ylabel() == "purchases"
    with pytest.raises(InvalidDataError, match="10 deciles"):
        plot_predicted_vs_actual_by_decile(predicted[:5], actual[:5])
    with pytest.raises(InvalidDataError, match="missing"):
        plot_predicted_vs_actual_by_decile(predicted, actual[:90])


# ------------------------------------------------------------------------ CLV scatter


@pytest.fixture
def clv_customers() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    historical = np.r_[0.0, rng.lognormal(3.5, 1.2, 299)]
    predicted = historical * rng.lognormal(0, 0.8, 300)
    h_cut, p_cut = 40.0, 30.0
    quadrant = [
        f"{'high' if h > h_cut else 'low'}/{'high' if p > p_cut else 'low'}"
        for h, p in zip(historical, predicted, strict=True)
    ]
    customers = pd.DataFrame(
        {"historical": historical, "predicted": predicted, "quadrant": quadrant},
        index=pd.RangeIndex(300, name="customer_id"),
    )
    customers.attrs.update(historical_threshold=h_cut, predicted_threshold=p_cut)
    return customers


def test_clv_comparison(clv_customers, tmp_path) -> None:
    ax = plot_clv_comparison(clv_customers, unit="$")
    _renders(ax, tmp_path)
    order = ["high/high", "high/low", "low/high", "low/low"]
    assert len(ax.collections) == 4
    for collection, name in zip(ax.collections, order, strict=True):
        rows = clv_customers[clv_customers["quadrant"] == name]
        np.testing.assert_allclose(
            collection.get_offsets(), rows[["historical", "predicted"]].to_numpy()
        )
        assert collection.get_label() == f"{name} (n={len(rows)})"
    colours = {tuple(c.get_facecolor()[0][:3]) for c in ax.collections}
    assert len(colours) == 4
    vertical, horizontal = ax.get_lines()
    assert np.all(np.asarray(vertical.get_xdata(), dtype=float) == 40.0)
    assert np.all(np.asarray(horizontal.get_ydata(), dtype=float) == 30.0)
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "symlog"
    assert ax.get_xlim()[0] < 0 < ax.get_xlim()[1]  # the zero customer is visible
    assert ax.get_xlabel().startswith("historical CLV ($)")
    assert len(_legend_texts(ax)) == 6


def test_clv_comparison_medians_and_linear(clv_customers) -> None:
    clv_customers.attrs.clear()
    customers = clv_customers[clv_customers["quadrant"] != "high/low"]
    ax = plot_clv_comparison(customers, scale="linear")
    assert ax.get_xscale() == "linear"
    assert len(ax.collections) == 3
    vertical, horizontal = ax.get_lines()
    assert vertical.get_xdata()[0] == pytest.approx(customers["historical"].median())
    assert horizontal.get_ydata()[0] == pytest.approx(customers["predicted"].median())
    with pytest.raises(InvalidDataError, match="quadrant"):
        plot_clv_comparison(customers.drop(columns="quadrant"))


# ----------------------------------------------------------------------- heterogeneity


def _check_density(ax, dist, mode: float | None = None) -> None:
    line = ax.get_lines()[0]
    x = np.asarray(line.get_xdata(), dtype=float)
    y = np.asarray(line.get_ydata(), dtype=float)
    assert np.all(np.isfinite(y)) and np.all(np.diff(x) > 0)
    np.testing.assert_allclose(y, dist.pdf(x))
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=5e-3)
    assert np.trapezoid(x * y, x) == pytest.approx(dist.mean(), rel=1e-2)
    if mode is not None:
        assert x[np.argmax(y)] == pytest.approx(mode, rel=2e-2)
    mean_line = ax.get_lines()[1]
    assert mean_line.get_xdata()[0] == pytest.approx(dist.mean())
    low, high = ax.get_ylim()
    assert low == 0 and np.isfinite(high) and high > 0
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_heterogeneity_bgnbd(bgnbd, tmp_path) -> None:
    axes = plot_heterogeneity(bgnbd)
    _renders(axes, tmp_path)
    assert isinstance(axes, np.ndarray) and len(axes) == 2
    r, alpha, a, b = bgnbd.params_
    _check_density(axes[0], stats.gamma(r, scale=1 / alpha))
    _check_density(axes[1], stats.beta(a, b))
    assert "per week" in axes[0].get_xlabel()
    # r < 1 and a < 1: the densities diverge at 0 and the axis is clipped, with a note
    assert axes[0].get_ylim()[1] < 100 and axes[1].get_ylim()[1] < 100
    assert all("∞ at 0" in ax.texts[0].get_text() for ax in axes)
    assert axes[1].get_xlim() == (0.0, 1.0)


def test_heterogeneity_pnbd_on_given_axes(pnbd) -> None:
    _fig, given = plt.subplots(2, 1)
    axes = plot_heterogeneity(pnbd, axes=given)
    assert list(axes) == list(given)
    r, alpha, s, beta = pnbd.params_
    _check_density(axes[0], stats.gamma(r, scale=1 / alpha))
    _check_density(axes[1], stats.gamma(s, scale=1 / beta))
    assert "Dropout rate μ" in axes[1].get_title()
    with pytest.raises(InvalidDataError, match="needs 2 axes"):
        plot_heterogeneity(pnbd, axes=given[0])


def test_heterogeneity_gamma_gamma(gamma_gamma) -> None:
    p, q, gamma = gamma_gamma.params_
    axes = plot_heterogeneity(gamma_gamma)
    nu = stats.gamma(q, scale=1 / gamma)
    _check_density(axes[0], nu, mode=(q - 1) / gamma)
    mean_value = stats.invgamma(q, scale=p * gamma)
    _check_density(axes[1], mean_value, mode=p * gamma / (q + 1))
    # the mean of p / nu is the model's population mean transaction value
    assert axes[1].get_lines()[1].get_xdata()[0] == pytest.approx(gamma_gamma.mean_spend())
    assert not axes[0].texts and not axes[1].texts  # bounded densities: no note


def test_heterogeneity_bgbb_and_sbg(bgbb, sbg, tmp_path) -> None:
    alpha, beta, gamma, delta = bgbb.params_
    axes = plot_heterogeneity(bgbb)
    _check_density(axes[0], stats.beta(alpha, beta))
    _check_density(axes[1], stats.beta(gamma, delta))
    assert "∞ at 1" in axes[0].texts[0].get_text()  # beta < 1
    axes = plot_heterogeneity(sbg)
    _renders(axes, tmp_path)
    assert len(axes) == 1
    _check_density(axes[0], stats.beta(*sbg.params_))
    assert "churn" in axes[0].get_xlabel()


def test_heterogeneity_mode_of_a_bell_shaped_beta(bgbb) -> None:
    model = clvmodels.BGBB()
    model.params_ = pd.Series([3.0, 5.0, 2.0, 8.0], index=bgbb.params_.index)
    axes = plot_heterogeneity(model)
    _check_density(axes[0], stats.beta(3, 5), mode=2 / 6)
    _check_density(axes[1], stats.beta(2, 8), mode=1 / 8)
    assert not axes[0].texts


def test_heterogeneity_errors() -> None:
    with pytest.raises(NotFittedError):
        plot_heterogeneity(clvmodels.ParetoNBD())
    with pytest.raises(InvalidDataError, match="kind"):
        plot_heterogeneity(object())


def test_heterogeneity_mbgnbd_dispatch(bgnbd) -> None:
    model = clvmodels.MBGNBD()
    model.params_ = bgnbd.params_.copy()
    axes = plot_heterogeneity(model)
    _check_density(axes[1], stats.beta(bgnbd.params_["a"], bgnbd.params_["b"]))
    assert "incl. the first" in axes[1].get_xlabel()


def test_tables_of_the_evaluation_modules_plot(frame, bgnbd, pnbd) -> None:
    """The tables built by clvmodels.evaluation / clvmodels.historical fit the plots."""
    from clvmodels.evaluation import conditional_expectations, tracking
    from clvmodels.historical import compare_clv

    models = {"BG/NBD": bgnbd, "Pareto/NBD": pnbd}
    table = conditional_expectations(models, frame)
    ax = plot_conditional_expectations(table)
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), table["Pareto/NBD"])
    table = tracking(
        models, clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
        holdout_end="1998-06-30",
    )  # fmt: skip
    ax = plot_tracking(table, cumulative=True)
    assert ax.get_lines()[3].get_xdata()[0] == table.attrs["calibration_periods"] == 39
    comparison = compare_clv(frame["total_amount_cal"], bgnbd.expected_purchases(frame, 52))
    ax = plot_clv_comparison(comparison.customers)
    assert ax.get_lines()[0].get_xdata()[0] == comparison.customers.attrs["historical_threshold"]

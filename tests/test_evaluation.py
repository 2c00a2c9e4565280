"""Holdout evaluation on CDNOW: the published actuals, models against lifetimes as an
oracle, baselines evaluated like models, and a machine-learning baseline that never sees
the holdout."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import evaluation
from clvmodels.exceptions import DuplicateRowsWarning, InvalidDataError, NotFittedError

CAL, HOLD = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def models(cdnow_calibration):
    return {
        "bgnbd": clvmodels.BGNBD().fit(cdnow_calibration),
        "pnbd": clvmodels.ParetoNBD().fit(cdnow_calibration),
        "mbgnbd": clvmodels.MBGNBD().fit(cdnow_calibration),
    }


def test_conditional_expectations_match_fader_hardie_lee(models, cdnow_calibration) -> None:
    table = clvmodels.conditional_expectations(models, cdnow_calibration)
    assert table.index.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]
    published = [0.237, 0.697, 1.393, 1.560, 2.532, 2.947, 3.862, 6.359]
    np.testing.assert_allclose(table["actual"].round(3), published)
    # predictions: the per-customer values (checked against lifetimes elsewhere) averaged
    bins = cdnow_calibration["frequency_cal"].clip(upper=7).to_numpy()
    for name, model in models.items():
        per_customer = model.expected_purchases(cdnow_calibration, 39.0).to_numpy()
        means = [per_customer[bins == k].mean() for k in range(8)]
        np.testing.assert_allclose(table[name], means, rtol=1e-12)
    # the BG/NBD curve of FHL (2005, figure 5) tracks the actual means within 0.4
    assert np.all(np.abs(table["bgnbd"] - table["actual"]) < 0.4)


def test_conditional_expectations_equal_lifetimes(models, cdnow_calibration) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    oracle = lifetimes.BetaGeoFitter()
    oracle.params_ = pd.Series(models["bgnbd"].params_.to_numpy(), index=["r", "alpha", "a", "b"])
    theirs = oracle.conditional_expected_number_of_purchases_up_to_time(
        39.0, cdnow_calibration["frequency_cal"], cdnow_calibration["recency_cal"],
        cdnow_calibration["T_cal"],
    )  # fmt: skip
    bins = cdnow_calibration["frequency_cal"].clip(upper=7)
    expected = theirs.groupby(bins.to_numpy()).mean().to_numpy()
    table = clvmodels.conditional_expectations({"bgnbd": models["bgnbd"]}, cdnow_calibration)
    np.testing.assert_allclose(table["bgnbd"], expected, rtol=1e-9)


def test_tracking_cumulative_actuals_and_expectations(models, cdnow_sample) -> None:
    table = clvmodels.tracking(models, cdnow_sample, calibration_end=CAL, holdout_end=HOLD)
    assert len(table) == 78 and table.index.name == "period"
    assert table.attrs["calibration_periods"] == 39
    cumulative = table.cumsum()
    assert cumulative["actual"].iloc[-1] == 4339
    assert cumulative["actual"].iloc[38] == 2457  # end of calibration
    # expected: each customer enters at their first purchase (weeks since 1997-01-01)
    lifetimes = pytest.importorskip("lifetimes")
    oracle = lifetimes.BetaGeoFitter()
    oracle.params_ = pd.Series(models["bgnbd"].params_.to_numpy(), index=["r", "alpha", "a", "b"])
    first = cdnow_sample.groupby("customer_id")["date"].min()
    entry = ((first - pd.Timestamp("1997-01-01")).dt.days / 7).to_numpy()
    for week in (10, 39, 78):
        age = np.clip(week - entry, 0, None)
        expected = oracle.expected_number_of_purchases_up_to_time(age)
        assert cumulative["bgnbd"].iloc[week - 1] == pytest.approx(expected.sum(), rel=1e-9)
    # the models track the actual curve (FHL 2005, figure 2): within 10 % at week 78
    for name in models:
        assert cumulative[name].iloc[-1] == pytest.approx(4339, rel=0.1)


def test_evaluate_rows_and_metrics(models, cdnow_calibration, cdnow_sample) -> None:
    spend = clvmodels.GammaGamma().fit(cdnow_calibration)
    result = clvmodels.evaluate(
        models, cdnow_calibration, spend_model=spend,
        baselines=("naive", "gradient_boosting"), transactions=cdnow_sample, amount="amount",
    )  # fmt: skip
    assert result.index.tolist() == ["bgnbd", "pnbd", "mbgnbd", "naive", "gradient_boosting"]
    actual = cdnow_calibration["frequency_holdout"]
    predicted = models["bgnbd"].expected_purchases(cdnow_calibration, 39.0)
    row = result.loc["bgnbd"]
    assert row["mae"] == pytest.approx(np.abs(predicted - actual).mean())
    assert row["rmse"] == pytest.approx(np.sqrt(((predicted - actual) ** 2).mean()))
    assert row["total_error_pct"] == pytest.approx(100 * (predicted.sum() - 1882) / 1882)
    order = predicted.sort_values(ascending=False, kind="stable")
    top = order.index[: round(0.1 * len(order))]
    assert row["top10_share"] == pytest.approx(actual.loc[top].sum() / 1882)
    for column in ("value_mae", "value_rmse", "value_spearman", "value_gini", "brier",
                   "calibration_error"):  # fmt: skip
        assert np.isfinite(result[column]).all()
    # the probability models beat the naive rate on the holdout, as in the literature
    assert (result.loc[["bgnbd", "pnbd", "mbgnbd"], "mae"] < result.loc["naive", "mae"]).all()


def test_probability_calibration_uses_any_purchase_not_alive(models, cdnow_calibration) -> None:
    model = models["bgnbd"]
    table = evaluation.calibration_table(model, cdnow_calibration)
    assert table["customers"].sum() == len(cdnow_calibration)
    any_purchase = 1 - model.probability_purchases(cdnow_calibration, 39.0, 0)
    np.testing.assert_allclose(
        (table["predicted"] * table["customers"]).sum(), any_purchase.sum(), rtol=1e-12
    )
    alive = model.probability_alive(cdnow_calibration)
    assert not np.isclose((table["predicted"] * table["customers"]).sum(), alive.sum())


def test_ml_baseline_never_sees_the_holdout(cdnow_sample, cdnow_calibration) -> None:
    baseline = evaluation.GradientBoostingBaseline(random_state=3).fit(
        cdnow_sample, calibration_end=CAL, window=39.0, time_unit="W"
    )
    before = baseline.expected_purchases(cdnow_calibration, 39.0)
    # scramble everything after the calibration end: predictions must not move
    holdout = cdnow_sample["date"] > CAL
    scrambled = cdnow_sample.copy()
    scrambled.loc[holdout, "date"] = pd.Timestamp("1998-06-30")
    scrambled = pd.concat([scrambled, scrambled[holdout]])
    again = evaluation.GradientBoostingBaseline(random_state=3).fit(
        scrambled, calibration_end=CAL, window=39.0, time_unit="W"
    )
    pd.testing.assert_series_equal(again.expected_purchases(cdnow_calibration, 39.0), before)
    # trained on an earlier split: the window is at most half the calibration period
    assert baseline.window_ <= 39 / 2
    assert baseline.split_ <= pd.Timestamp(CAL) - pd.Timedelta(weeks=19)
    with pytest.raises(NotFittedError, match="fit"):
        evaluation.GradientBoostingBaseline().expected_purchases(cdnow_calibration, 39.0)


def test_ml_baseline_follows_the_duplicates_setting(cdnow_sample, cdnow_calibration) -> None:
    # CDNOW holds 21 exact duplicate rows; the training split reads the log again, with
    # the caller's rule: "keep" is silent, "warn" warns once, "drop" trains without them
    # (rows are duplicates only with their amounts)
    settings = {"calibration_end": CAL, "window": 39.0, "time_unit": "W", "amount": "amount"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateRowsWarning)
        evaluation.GradientBoostingBaseline().fit(cdnow_sample, duplicates="keep", **settings)
    with pytest.warns(DuplicateRowsWarning) as record:
        evaluation.GradientBoostingBaseline().fit(cdnow_sample, **settings)
    assert sum(issubclass(w.category, DuplicateRowsWarning) for w in record) == 1
    dropped = evaluation.GradientBoostingBaseline().fit(cdnow_sample, duplicates="drop", **settings)
    unique = cdnow_sample.drop_duplicates(["customer_id", "date", "amount"])
    clean = evaluation.GradientBoostingBaseline().fit(unique, duplicates="error", **settings)
    pd.testing.assert_series_equal(
        dropped.expected_purchases(cdnow_calibration, 39.0),
        clean.expected_purchases(cdnow_calibration, 39.0),
    )


def test_evaluate_needs_transactions_for_the_ml_baseline(models, cdnow_calibration) -> None:
    with pytest.raises(InvalidDataError, match="transactions="):
        clvmodels.evaluate(models, cdnow_calibration, baselines=("gradient_boosting",))
    with pytest.raises(InvalidDataError, match="unknown baseline"):
        clvmodels.evaluate(models, cdnow_calibration, baselines=("oracle",))
    with pytest.raises(InvalidDataError, match="calibration_holdout"):
        clvmodels.evaluate(models, cdnow_calibration.drop(columns="frequency_holdout"))


def test_evaluate_on_cdnow_master(cdnow_master) -> None:
    frame = clvmodels.calibration_holdout(cdnow_master, calibration_end=CAL, holdout_end=HOLD,
                                          time_unit="W", amount="amount")  # fmt: skip
    assert len(frame) == 23570
    models = {"bgnbd": clvmodels.BGNBD().fit(frame), "pnbd": clvmodels.ParetoNBD().fit(frame),
              "mbgnbd": clvmodels.MBGNBD().fit(frame)}  # fmt: skip
    result = clvmodels.evaluate(
        models, frame, baselines=("naive", "gradient_boosting"), transactions=cdnow_master,
        amount="amount",
    )  # fmt: skip
    assert result.shape[0] == 5
    assert np.isfinite(result.to_numpy()).all()
    assert (result.loc[["bgnbd", "pnbd", "mbgnbd"], "mae"] < result.loc["naive", "mae"]).all()


def test_normalized_gini() -> None:
    actual = np.array([0.0, 1.0, 2.0, 10.0])
    assert evaluation.normalized_gini(actual, actual) == pytest.approx(1.0)
    assert evaluation.normalized_gini(actual, -actual) < 0
    assert evaluation.normalized_gini(actual, [1.0, 1.0, 1.0, 1.0]) < 1


def test_tracking_and_the_ml_baseline_read_files_as_frames(tmp_path) -> None:
    tx = clvmodels.datasets.load_cdnow()[["customer_id", "date", "amount"]]
    path = tmp_path / "log.parquet"
    tx.to_parquet(path)
    frame = clvmodels.calibration_holdout(tx, calibration_end="1997-09-30",
                                          holdout_end="1998-06-30", time_unit="W",
                                          amount="amount", duplicates="keep")  # fmt: skip
    model = clvmodels.BGNBD().fit(frame)
    ends = {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30", "time_unit": "W"}
    pd.testing.assert_frame_equal(
        clvmodels.tracking({"bgnbd": model}, str(path), duplicates="keep", **ends),
        clvmodels.tracking({"bgnbd": model}, tx, duplicates="keep", **ends),
    )
    settings = {"baselines": ["gradient_boosting"], "amount": "amount", "duplicates": "keep"}
    pd.testing.assert_frame_equal(
        clvmodels.evaluate({"bgnbd": model}, frame, transactions=path, **settings),
        clvmodels.evaluate({"bgnbd": model}, frame, transactions=tx, **settings),
    )

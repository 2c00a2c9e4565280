"""Covariates in experiments, the command line and tracking: YAML keys, per-customer
files, covariates in the transaction file, the report's section, clvmodels predict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvmodels
from clvmodels.data.customers import attach_attributes, read_attributes
from clvmodels.exceptions import ConfigError, InvalidDataError
from clvmodels.experiments.config import load_config, parse_config
from clvmodels.experiments.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "cdnow_covariates.yaml"
CUSTOMERS = REPO / "configs" / "cdnow_customers.csv"
CALENDAR = REPO / "configs" / "cdnow_calendar.csv"
PERIODS = {"time_unit": "W", "calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}


@pytest.fixture(scope="module")
def covariate_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("covariates") / "run"
    config, _ = load_config(CONFIG, ["clv.n_draws=50", "output.plots=false"])
    result = run_experiment(config, output_dir=out)
    return result, out


def _calibration() -> pd.DataFrame:
    frame = clvmodels.calibration_holdout(clvmodels.datasets.load_cdnow(), duplicates="keep",
                                          **PERIODS)  # fmt: skip
    customers = pd.read_csv(CUSTOMERS).set_index("customer_id")
    return frame.join(customers)


def test_run_fits_the_python_models(covariate_run) -> None:
    result, out = covariate_run
    frame = _calibration()
    expected = clvmodels.ParetoNBD(purchase_covariates=["first_basket"],
                                   dropout_covariates=["first_basket"]).fit(frame)  # fmt: skip
    pd.testing.assert_series_equal(result.models["pnbd_cov"].params_, expected.params_,
                                   rtol=1e-10)  # fmt: skip
    table = pd.read_csv(out / "tables" / "parameters_pnbd_cov.csv", index_col=0)
    assert "purchase.first_basket[single]" in table.index
    assert {"lower", "upper"} <= set(table.columns)
    shared = result.models["bgnbd_cov"]
    assert list(shared.params_.index[4:]) == ["shared.first_basket[single]"]


def test_run_writes_predictions_by_covariate_and_a_report_section(covariate_run) -> None:
    result, out = covariate_run
    table = pd.read_csv(out / "tables" / "covariates_pnbd_cov.csv")
    assert table["value"].tolist() == ["several", "single"]
    assert table["customers"].sum() == 2357
    predictions = result.predictions.join(_calibration()["first_basket"])
    by_group = predictions.groupby("first_basket")["pnbd_cov_clv"].mean()
    np.testing.assert_allclose(table.set_index("value")["mean_clv"], by_group, rtol=1e-9)
    html = (out / "report.html").read_text()
    assert "Covariates" in html and "predictions by covariate" in html
    # tracking expects each customer at their own covariates
    tracking = pd.read_csv(out / "tables" / "tracking.csv")
    assert {"pnbd_cov", "bgnbd_cov"} <= set(tracking.columns)


def test_tracking_with_covariates_sums_each_customers_curve() -> None:
    log = clvmodels.datasets.load_cdnow()
    frame = _calibration()
    model = clvmodels.BGNBD(purchase_covariates=["first_cds"]).fit(frame)
    table = clvmodels.tracking({"m": model}, log, calibration_end="1997-09-30",
                               holdout_end="1998-06-30", duplicates="keep",
                               covariates=frame)  # fmt: skip
    # by hand: each customer's own new-customer curve at the end of the last period
    first = pd.to_datetime(log.groupby("customer_id")["date"].min())
    start = first.min()
    end = (pd.Timestamp("1998-07-01") - start).days / 7.0
    ages = end - (first - start).dt.days / 7.0
    profiles = frame[["first_cds"]].assign(frequency=0.0, recency=0.0, T=0.0)
    total = sum(model.expected_purchases(profiles.loc[[i]], float(ages[i])).iloc[0]
                for i in frame.index[:40])  # fmt: skip
    part = clvmodels.tracking({"m": model}, log[log["customer_id"].isin(frame.index[:40])],
                              calibration_end="1997-09-30", holdout_end="1998-06-30",
                              duplicates="keep", covariates=frame)  # fmt: skip
    assert part["m"].sum() == pytest.approx(total, rel=1e-9)
    assert table["m"].sum() > part["m"].sum()
    with pytest.raises(InvalidDataError, match="pass covariates="):
        clvmodels.tracking({"m": model}, log, calibration_end="1997-09-30",
                           holdout_end="1998-06-30", duplicates="keep")  # fmt: skip


def _config(tmp_path: Path, **data) -> dict:
    return {
        "name": "cov", "periods": {"time_unit": "W", "calibration_end": "1997-09-30"},
        "data": {"columns": {"customer_id": "id", "date": "date"}, "duplicates": "keep",
                 **data},
        "models": [{"name": "m", "kind": "bgnbd", "covariates": {"purchase": ["vip"]}}],
        "clv": {"n_draws": 20}, "output": {"dir": str(tmp_path / "run"), "plots": False},
    }


def _log_file(tmp_path: Path, vip_changes: bool = False) -> Path:
    from clvmodels.simulate import simulate_transactions

    log = simulate_transactions(
        "bgnbd", 300, params={"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}, start="1997-01-01",
        acquisition_end="1997-03-31", observation_end="1997-09-30", time_unit="W",
        random_state=3,
    )  # fmt: skip
    number = log["customer_id"].astype(int)
    log["id"] = number.map(lambda i: f"{i:05d}")  # leading zeros: text ids
    log["date"] = log["date"].dt.date
    log["vip"] = (number % 3 == 0).astype(int)
    if vip_changes:  # the first customer with two purchases changes at the second
        counts = log["id"].value_counts()
        rows = log.index[log["id"] == min(counts.index[counts > 1])]
        log.loc[rows[-1:], "vip"] = 1 - log.loc[rows[-1], "vip"]
    path = tmp_path / ("changing.csv" if vip_changes else "log.csv")
    log[["id", "date", "vip"]].to_csv(path, index=False)
    return path


def test_covariates_from_the_transaction_file(tmp_path) -> None:
    path = _log_file(tmp_path)
    result = run_experiment(parse_config(_config(tmp_path, path=str(path))))
    model = result.models["m"]
    assert "purchase.vip" in model.params_.index
    assert result.predictions.index[0].startswith("0")  # ids keep their zeros
    changing = _log_file(tmp_path, vip_changes=True)
    with pytest.raises(InvalidDataError, match=r"'vip' changes within 1 customer .*'0000\d'"):
        run_experiment(parse_config(_config(tmp_path, path=str(changing))),
                       output_dir=tmp_path / "changing")


def test_covariates_from_a_customers_file(tmp_path) -> None:
    path = _log_file(tmp_path)
    ids = sorted(pd.read_csv(path, dtype={"id": str})["id"].unique())
    customers = pd.DataFrame({"id": ids, "vip": [int(int(i) % 3 == 0) for i in ids]})
    file = tmp_path / "customers.csv"
    customers.to_csv(file, index=False)
    config = _config(tmp_path, path=str(path), customers={"path": str(file)})
    result = run_experiment(parse_config(config))
    reference = run_experiment(parse_config(_config(tmp_path, path=str(path))),
                               output_dir=tmp_path / "other")  # fmt: skip
    pd.testing.assert_series_equal(result.models["m"].params_, reference.models["m"].params_)
    customers.iloc[5:].to_csv(file, index=False)
    with pytest.raises(InvalidDataError, match=rf"5 of 300 customers have no row.*'{ids[0]}'"):
        run_experiment(parse_config(config), output_dir=tmp_path / "third")
    customers.to_csv(file, index=False)
    pd.concat([customers, customers.iloc[:2]]).to_csv(file, index=False)
    with pytest.raises(InvalidDataError, match="repeat a customer id"):
        run_experiment(parse_config(config), output_dir=tmp_path / "fourth")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"models": [{"name": "g", "kind": "gamma_gamma", "covariates": {"purchase": ["x"]}}]},
         "covariates", "apply to bgnbd, mbgnbd and pnbd"),
        ({"models": [{"name": "m", "kind": "pnbd", "method": "map",
                      "covariates": {"purchase": ["x"], "penalizer": 0.1}}]},
         "covariates.penalizer", "penalty belongs to method mle"),
        ({"models": [{"name": "m", "kind": "pnbd", "covariates": {}}]}, "purchase",
         "at least one"),
        ({"models": [{"name": "m", "kind": "pnbd",
                      "covariates": {"purchase": ["x"], "shared": ["x"]}}]}, "shared",
         "both shared and purchase"),
        ({"models": [{"name": "m", "kind": "pnbd", "covariates": {"purchase": ["x"]}}]},
         "data.customers", "has none"),
        ({"data": {"dataset": "cdnow_sample", "customers": {"path": str(CUSTOMERS)}}},
         "data.customers", "no model names covariates"),
        ({"models": [{"name": "m", "kind": "bgnbd",
                      "covariates": {"purchase": ["x"], "time_varying": True}}]},
         "covariates.time_varying", "kind pnbd with method mle"),
        ({"models": [{"name": "m", "kind": "pnbd",
                      "covariates": {"purchase": ["x"], "time_varying": True}}]},
         "data.covariate_history", "give their table"),
        ({"data": {"dataset": "cdnow_sample", "covariate_history": {"path": str(CALENDAR)}}},
         "data.covariate_history", "no model has covariates.time_varying"),
    ],
)  # fmt: skip
def test_config_refuses_covariates_it_cannot_use(change, field, message) -> None:
    raw = {"name": "x", "data": {"dataset": "cdnow_sample"},
           "models": [{"name": "m", "kind": "pnbd"}], **change}  # fmt: skip
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(raw)
    assert field in (info.value.field or "") or field in str(info.value)


def test_predict_command_takes_covariates(covariate_run, tmp_path) -> None:
    result, out = covariate_run
    summary = result.predictions[["frequency", "recency", "T"]].reset_index()
    data = tmp_path / "summary.csv"
    summary.to_csv(data, index=False)
    model = out / "models" / "pnbd_cov" / "model.json"
    command = [sys.executable, "-m", "clvmodels", "predict", "--model", str(model),
               "--data", str(data), "--horizon", "39W"]  # fmt: skip
    missing = subprocess.run([*command, "--out", str(tmp_path / "a.csv")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and "first_basket" in missing.stderr
    done = subprocess.run([*command, "--out", str(tmp_path / "b.csv"), "--covariates",
                           str(CUSTOMERS)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores = pd.read_csv(tmp_path / "b.csv", index_col="customer_id")
    frame = _calibration()
    expected = result.models["pnbd_cov"].expected_purchases(frame, 39.0)
    np.testing.assert_allclose(scores["expected_purchases"], expected.reindex(scores.index),
                               rtol=1e-9)  # fmt: skip
    plain = out / "models" / "pnbd" / "model.json"
    refused = subprocess.run(
        [sys.executable, "-m", "clvmodels", "predict", "--model", str(plain), "--data",
         str(data), "--out", str(tmp_path / "c.csv"), "--covariates", str(CUSTOMERS)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "has no covariates" in refused.stderr


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(8))), st.lists(st.integers(0, 3), min_size=8, max_size=8))
def test_attach_attributes_matches_by_id_whatever_the_order(order, values) -> None:
    summary = pd.DataFrame({"frequency": range(8)}, index=pd.Index([f"0{i}" for i in range(8)]))
    table = pd.DataFrame({"x": values}, index=[f"0{i}" for i in range(8)]).iloc[list(order)]
    before = summary.copy()
    joined = attach_attributes(summary, table, ["x"], "t.csv")
    assert joined["x"].tolist() == values
    pd.testing.assert_frame_equal(summary, before)  # the caller's frame is not changed


def test_read_attributes_keeps_text_ids_and_reads_parquet(tmp_path) -> None:
    frame = pd.DataFrame({"id": ["007", "08"], "channel": ["search", "social"]})
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_parquet(tmp_path / "c.parquet")
    for name in ("c.csv", "c.parquet"):
        table = read_attributes(tmp_path / name, "id", ["channel"])
        assert table.index.tolist() == ["007", "08"]
    with pytest.raises(InvalidDataError, match="region"):
        read_attributes(tmp_path / "c.csv", "id", ["region"])


def test_run_with_plots_and_a_bayesian_covariate_model(tmp_path) -> None:
    config, _ = load_config(CONFIG, [
        "clv.n_draws=30", "evaluation.baselines=[naive]", "data.covariate_history=null",
        'models=[{name: bg, kind: bgnbd, covariates: {purchase: [first_cds]}}, '
        '{name: pn, kind: pnbd, method: map, sampler: {draws: 100}, '
        'covariates: {shared: [first_basket]}, '
        'priors: {"shared.first_basket[single]": {distribution: Normal, '
        'params: {mu: 0.0, sigma: 1.0}}}}, {name: gg, kind: gamma_gamma}]',
    ])  # fmt: skip
    result = run_experiment(config, output_dir=tmp_path / "run")
    plots = sorted(p.name for p in (tmp_path / "run" / "plots").iterdir())
    # every purchase model has covariates: no heterogeneity curves, no P(alive) grid
    assert not [p for p in plots if p.startswith(("heterogeneity_bg", "heterogeneity_pn",
                                                  "probability_alive"))]  # fmt: skip
    assert "tracking.png" in plots
    posterior = result.models["pn"]
    assert "shared.first_basket[single]" in posterior.params_.index
    assert posterior.prior_specs()["shared.first_basket[single]"] == (
        "Normal", {"mu": 0.0, "sigma": 1.0})
    table = pd.read_csv(tmp_path / "run" / "tables" / "covariates_pn.csv")
    assert table["covariate"].tolist() == ["first_basket", "first_basket"]
    with pytest.raises(ConfigError, match="penalty belongs to method mle"):
        load_config(CONFIG, ["models.pnbd_cov.method=map",
                             "models.pnbd_cov.covariates.penalizer=0.1"])  # fmt: skip


# ---------------------------------------------------------- time-varying covariates


def _history():
    calendar = pd.read_csv(CALENDAR)
    return clvmodels.covariate_history(clvmodels.datasets.load_cdnow(), calendar,
                                       covariate_date="week", duplicates="keep",
                                       amount="amount", **PERIODS)  # fmt: skip


def test_run_fits_and_evaluates_a_time_varying_model(covariate_run) -> None:
    # oracle: the Python API on the same log and calendar
    result, out = covariate_run
    history = _history()
    expected = clvmodels.ParetoNBD(purchase_covariates=["summer"],
                                   dropout_covariates=["summer"]).fit(history)  # fmt: skip
    pd.testing.assert_series_equal(result.models["pnbd_summer"].params_, expected.params_,
                                   rtol=1e-10)  # fmt: skip
    holdout = expected.expected_purchases(history, 39.0)
    actual = history.frame["frequency_holdout"]
    metrics = pd.read_csv(out / "tables" / "metrics.csv", index_col="model")
    assert metrics.loc["pnbd_summer", "mae"] == pytest.approx(
        float(np.abs(holdout - actual).mean()), rel=1e-9)
    predictions = result.predictions
    spend = result.models["gamma_gamma"]
    clv = clvmodels.predictive_clv(expected, spend, history, horizon="12M", discount_rate=0.1,
                                   margin=1.0)  # fmt: skip
    np.testing.assert_allclose(predictions["pnbd_summer_clv"], clv.reindex(predictions.index),
                               rtol=1e-9)  # fmt: skip
    table = pd.read_csv(out / "tables" / "covariates_pnbd_summer.csv")
    assert table["value"].tolist() == ["as in the table", "0 after observation"]
    assert table.loc[0, "mean_clv"] == pytest.approx(predictions["pnbd_summer_clv"].mean())
    assert table.loc[1, "mean_clv"] != pytest.approx(table.loc[0, "mean_clv"], rel=1e-3)
    tracking = pd.read_csv(out / "tables" / "tracking.csv")
    assert "pnbd_summer" not in tracking.columns  # no cohort curve for future customers


def _weekly_table(log_path: Path, key: str = "key") -> pd.DataFrame:
    ids = sorted(pd.read_csv(log_path, dtype={"id": str})["id"].unique())
    weeks = pd.date_range("1996-12-30", "1998-10-05", freq="7D")  # to the 12M horizon
    rows = [(i, w.strftime("%Y-%m-%d"), float((int(i) + j) % 4 == 0))
            for i in ids for j, w in enumerate(weeks)]  # fmt: skip
    return pd.DataFrame(rows, columns=[key, "week", "promo"])


def test_run_reads_a_per_customer_covariate_history(tmp_path) -> None:
    path = _log_file(tmp_path)
    table = _weekly_table(path)
    file = tmp_path / "promo.csv"
    table.to_csv(file, index=False)
    config = _config(tmp_path, path=str(path),
                     covariate_history={"path": str(file), "date": "week", "customer_id": "key"})
    config["models"] = [{"name": "m", "kind": "pnbd",
                         "covariates": {"purchase": ["promo"], "time_varying": True}}]
    result = run_experiment(parse_config(config))
    assert "purchase.promo" in result.models["m"].params_.index
    assert result.predictions.index[0].startswith("0")  # ids keep their zeros
    first = table["key"].iloc[0]
    table[table["key"] != first].to_csv(file, index=False)
    with pytest.raises(InvalidDataError, match=rf"data.covariate_history: .*customer '{first}'"):
        run_experiment(parse_config(config), output_dir=tmp_path / "missing")
    # a table that stops before the end of the CLV horizon: said before any fit
    table[table["week"] < "1998-06-01"].to_csv(file, index=False)
    with pytest.raises(InvalidDataError, match=r"which clv\.horizon = 12M needs"):
        run_experiment(parse_config(config), output_dir=tmp_path / "short")


def test_predict_command_with_a_covariate_history(covariate_run, tmp_path) -> None:
    result, out = covariate_run
    log = tmp_path / "log.csv"
    clvmodels.datasets.load_cdnow().to_csv(log, index=False)
    model = out / "models" / "pnbd_summer" / "model.json"
    command = [sys.executable, "-m", "clvmodels", "predict", "--model", str(model),
               "--horizon", "39W"]  # fmt: skip
    done = subprocess.run(
        [*command, "--transactions", str(log), "--covariate-history", str(CALENDAR),
         "--covariate-date", "week", "--observation-end", "1997-09-30",
         "--out", str(tmp_path / "a.csv")], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores = pd.read_csv(tmp_path / "a.csv", index_col="customer_id")
    history = clvmodels.covariate_history(clvmodels.datasets.load_cdnow(),
                                          pd.read_csv(CALENDAR), covariate_date="week",
                                          calibration_end="1997-09-30", time_unit="W",
                                          duplicates="keep", after_end="drop")  # fmt: skip
    expected = result.models["pnbd_summer"].expected_purchases(history, 39.0)
    np.testing.assert_allclose(scores["expected_purchases"], expected.reindex(scores.index),
                               rtol=1e-9)  # fmt: skip
    refused = subprocess.run([*command, "--data", str(log), "--out", str(tmp_path / "b.csv")],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "time-varying covariates" in refused.stderr

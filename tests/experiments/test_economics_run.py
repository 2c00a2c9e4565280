"""Acquisition economics in experiments: the economics block of the YAML file, checked
like every other key (before any fit), segments.csv and the report section of a run, and
the same numbers as clvmodels.segment_value called directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import ConfigError, InvalidDataError
from clvmodels.experiments.config import load_config, parse_config
from clvmodels.experiments.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "cdnow_economics.yaml"
CHANNELS = REPO / "configs" / "cdnow_channels.csv"
COSTS = REPO / "configs" / "cdnow_acquisition_costs.csv"
PERIODS = {"time_unit": "W", "calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}


@pytest.fixture(scope="module")
def economics_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("economics") / "run"
    config, _ = load_config(CONFIG, ["clv.n_draws=100"])
    return run_experiment(config, output_dir=out), out


def test_run_writes_the_segment_table_of_the_python_api(economics_run) -> None:
    result, out = economics_run
    table = pd.read_csv(out / "segments.csv", index_col="segment")
    log = clvmodels.datasets.load_cdnow()
    frame = clvmodels.calibration_holdout(log, duplicates="keep", amount="amount", **PERIODS)
    channels = pd.read_csv(CHANNELS).set_index("customer_id")["channel"]
    costs = pd.read_csv(COSTS).set_index("segment")["cost"].to_dict()
    expected = clvmodels.segment_value(
        result.models["bgnbd"], result.models["gamma_gamma"], frame, transactions=log,
        segments=channels, acquisition_costs=costs, horizon="12M", discount_rate=0.1,
        margin=0.3, interval=0.9, n_draws=100, random_state=42,
    )  # fmt: skip
    assert table.index.tolist() == ["referral", "search", "social"]
    numeric = expected.drop(columns="payback_from")
    np.testing.assert_allclose(table[numeric.columns], numeric, rtol=1e-8)
    assert table["payback_from"].tolist() == expected["payback_from"].tolist()
    retention = pd.read_csv(out / "tables" / "retention.csv")
    assert {"cohort", "period", "observed_share", "expected_share",
            "expected_share_lower"} <= set(retention.columns)  # fmt: skip
    curves = pd.read_csv(out / "tables" / "payback_curves.csv")
    assert set(curves["segment"]) == {"referral", "search", "social"}


def test_run_report_has_the_economics_section(economics_run) -> None:
    _, out = economics_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="economics">' in html
    assert "in USD at a margin of 30%" in html
    assert "payback period in weeks" in html
    for plot in ("segment_value", "payback_curves", "retention"):
        assert (out / "plots" / f"{plot}.png").is_file()


# ------------------------------------------------------------------ the YAML keys


def _raw(**economics: Any) -> dict[str, Any]:
    block = {"segments": "channel", "acquisition_costs": {"search": 1.0}, "currency": "USD"}
    block.update(economics)
    return {
        "name": "demo",
        "data": {"dataset": "cdnow_sample", "columns": {"amount": "amount"},
                 "customers": {"path": str(CHANNELS)}},
        "periods": PERIODS,
        "models": [{"name": "bg", "kind": "bgnbd"}, {"name": "gg", "kind": "gamma_gamma"}],
        "economics": {k: v for k, v in block.items() if v is not None},
    }  # fmt: skip


@pytest.mark.parametrize(("change", "field", "fragment"), [
    ({"cohort": "M"}, "economics.segments", "one of them"),
    ({"segments": None}, "economics.segments", "one of them"),
    ({"currency": None}, "economics.currency", "missing (required)"),
    ({"acquisition_costs": {"search": -5.0}}, "economics.acquisition_costs",
     "the cost of segment 'search' is -5.0: give a number >= 0"),
    ({"acquisition_costs": {"search": "cheap"}}, "economics.acquisition_costs",
     "'cheap': give a number"),
    ({"acquisition_costs": {"path": "nope.csv"}}, "economics.acquisition_costs.path",
     "file not found"),
    ({"acquisition_costs": {"path": str(COSTS), "by": "month"}},
     "economics.acquisition_costs.by", "'segment' or 'customer'"),
    ({"acquisition_costs": {}}, "economics.acquisition_costs", "every segment"),
    ({"margin": 1.5}, "economics.margin", "less than or equal to 1"),
    ({"cohort": "fortnight", "segments": None}, "economics.cohort", "'D', 'W', 'M'"),
    ({"retention_period": "3 weeks"}, "economics.retention_period", "3 weeks"),
    ({"purchase_model": "gg"}, "economics.purchase_model", "not a bgnbd, mbgnbd or pnbd"),
    ({"segments": "amount"}, "economics.segments", "transaction column"),
])  # fmt: skip
def test_economics_keys_are_validated(change, field, fragment) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_raw(**change))
    assert caught.value.field == field, str(caught.value)
    assert fragment in str(caught.value)


def test_economics_needs_a_spend_model_and_a_segment_source() -> None:
    raw = _raw()
    raw["models"] = raw["models"][:1]
    with pytest.raises(ConfigError, match="gamma_gamma"):
        parse_config(raw)
    raw = _raw()
    del raw["data"]["customers"]
    with pytest.raises(ConfigError, match="has no column 'channel'"):
        parse_config(raw)


def test_unquoted_dates_name_daily_cohorts() -> None:
    import datetime as dt

    raw = _raw(segments=None, cohort="D", acquisition_costs={dt.date(1997, 1, 1): 100.0})
    del raw["data"]["customers"]
    config = parse_config(raw)
    assert config.economics.acquisition_costs == {"1997-01-01": 100.0}


def _run_fails_in_the_data_step(tmp_path: Path, monkeypatch, costs: Any, match: str) -> None:
    from clvmodels.experiments import runner

    fitted = []
    monkeypatch.setattr(runner, "_fit_models", lambda *a, **k: fitted.append(1) or {})
    config = parse_config(_raw(acquisition_costs=costs), base_dir=tmp_path)
    with pytest.raises(InvalidDataError, match=match):
        run_experiment(config, output_dir=tmp_path / "run")
    assert not fitted  # found before any model was fitted
    assert not (tmp_path / "run").exists()


def test_costs_are_checked_before_any_fit(tmp_path: Path, monkeypatch) -> None:
    complete = {"search": 1.0, "social": 2.0, "referral": 3.0}
    _run_fails_in_the_data_step(tmp_path, monkeypatch, {"search": 1.0},
                                "economics.acquisition_costs: .*no cost for 2 segment")
    _run_fails_in_the_data_step(tmp_path, monkeypatch, {**complete, "tv": 4.0},
                                "segment 'tv' has no customers")
    write = tmp_path / "costs.csv"
    write.write_text("segment,cost\nsearch,1\nsearch,2\nsocial,1\nreferral,1\n")
    _run_fails_in_the_data_step(tmp_path, monkeypatch, {"path": str(write)},
                                "'search' has more than one row")
    write.write_text("segment,cost\nsearch,1\nsocial,a lot\nreferral,1\n")
    _run_fails_in_the_data_step(tmp_path, monkeypatch, {"path": str(write)},
                                "not numbers .*'a lot' for segment 'social'")


def test_costs_per_customer_from_a_file(tmp_path: Path) -> None:
    channels = pd.read_csv(CHANNELS)
    per_customer = channels.assign(cost=np.where(channels["channel"] == "search", 30.0, 10.0))
    path = tmp_path / "customer_costs.csv"
    per_customer[["customer_id", "cost"]].to_csv(path, index=False)
    raw = _raw(acquisition_costs={"path": str(path), "by": "customer"})
    raw["clv"] = {"interval": None}
    raw["output"] = {"plots": False}
    result = run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    table = pd.read_csv(tmp_path / "run" / "segments.csv", index_col="segment")
    totals = per_customer.groupby("channel")["cost"].sum()
    np.testing.assert_allclose(table["cac"], totals.reindex(table.index))
    assert "clv_lower" not in table.columns
    assert result.models["bg"] is not None


def test_the_synthetic_channels_follow_their_documented_rule() -> None:
    # configs/cdnow_economics.yaml states the rule; the file must be what it says
    customers = pd.read_csv(REPO / "configs" / "cdnow_customers.csv")
    several = customers["first_basket"].eq("several").to_numpy()
    u = np.random.default_rng(2026).random(len(customers))
    cut_search, cut_social = np.where(several, 0.5, 0.3), np.where(several, 0.7, 0.8)
    rule = np.where(u < cut_search, "search", np.where(u < cut_social, "social", "referral"))
    shipped = pd.read_csv(CHANNELS)
    assert shipped["customer_id"].tolist() == customers["customer_id"].tolist()
    assert shipped["channel"].tolist() == rule.tolist()


def test_numeric_segments_and_retention_checked_before_any_fit(tmp_path: Path,
                                                              monkeypatch) -> None:
    # a channel column of numbers is costed by its values' text (YAML keys are text)
    channels = pd.read_csv(CHANNELS)
    channels["channel"] = channels["channel"].map({"search": 1, "social": 2, "referral": 3})
    path = tmp_path / "channels.csv"
    channels.to_csv(path, index=False)
    raw = _raw(acquisition_costs={1: 26_000.0, 2: 15_000.0, 3: 4_800.0})
    raw["data"]["customers"]["path"] = str(path)
    raw["clv"] = {"interval": None}
    raw["output"] = {"plots": False}
    run_experiment(parse_config(raw), output_dir=tmp_path / "run")
    table = pd.read_csv(tmp_path / "run" / "segments.csv", index_col="segment")
    assert table["cac"].to_dict() == {1: 26_000.0, 2: 15_000.0, 3: 4_800.0}
    # a retention period no customer has been observed for stops the data step
    from clvmodels.experiments import runner

    fitted = []
    monkeypatch.setattr(runner, "_fit_models", lambda *a, **k: fitted.append(1) or {})
    raw["economics"]["retention_cohort"] = "Y"
    with pytest.raises(InvalidDataError, match=r"economics\.retention_period: no customer"):
        run_experiment(parse_config(raw), output_dir=tmp_path / "run2")
    assert not fitted

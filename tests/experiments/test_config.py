"""The experiment-file schema: every wrong setting is refused with one line naming its field,
calendar arithmetic of holdout lengths, ``--set`` overrides, YAML reading, the JSON Schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from clvmodels.exceptions import ConfigError
from clvmodels.experiments.config import (
    ExperimentConfig,
    add_duration,
    apply_overrides,
    config_json_schema,
    load_config,
    parse_config,
    parse_duration,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
HOLDOUT = {"time_unit": "W", "calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}


def minimal(**changes: Any) -> dict[str, Any]:
    """A valid raw configuration, with top-level keys replaced by ``changes``."""
    raw: dict[str, Any] = {
        "name": "demo",
        "data": {"dataset": "cdnow_sample", "columns": {"amount": "amount"}},
        "models": [{"name": "bg", "kind": "bgnbd"}],
    }
    raw.update(changes)
    return raw


def refused(raw: Any, field: str, *fragments: str, **kwargs: Any) -> ConfigError:
    """Assert ``parse_config(raw)`` fails on ``field``, in one line holding ``fragments``."""
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, **kwargs)
    error = caught.value
    message = str(error)
    assert error.field == field, message
    assert "\n" not in message
    assert f"{field}: " in message or field in message
    for fragment in fragments:
        assert fragment in message, message
    return error


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- valid files


def test_minimal_config_and_defaults() -> None:
    config = parse_config(minimal())
    assert isinstance(config, ExperimentConfig)
    assert config.seed == 0
    assert config.periods.time_unit == "D"
    assert not config.periods.has_holdout
    assert config.models[0].method == "mle"
    assert config.clv.horizon == "12M"
    assert config.output_dir() == Path("runs/demo")
    assert config.purchase_model_names == ["bg"]
    assert config.spend_model_name is None


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_every_shipped_config_validates(path: Path) -> None:
    config, raw = load_config(path)
    assert config.name == raw["name"]
    assert config.models


def test_shipped_configs_exist() -> None:
    assert CONFIGS, "no configs/*.yaml found"
    assert REPO / "configs" / "cdnow.yaml" in CONFIGS


def test_cdnow_config_is_the_published_setup() -> None:
    config, _ = load_config(REPO / "configs" / "cdnow.yaml")
    assert config.data.dataset == "cdnow_sample"
    assert config.periods.time_unit == "W"
    assert config.periods.calibration_end == dt.date(1997, 9, 30)
    assert config.periods.holdout_end_date == dt.date(1998, 6, 30)
    assert {model.method for model in config.models} == {"mle"}
    assert {model.kind for model in config.models} >= {"bgnbd", "gamma_gamma"}


def test_resolved_settings_validate_again() -> None:
    for raw in (minimal(), minimal(periods=HOLDOUT, evaluation={"baselines": ["naive"]})):
        config = parse_config(raw)
        resolved = config.resolved()
        json.dumps(resolved)  # plain data
        assert parse_config(resolved).resolved() == resolved


def test_config_is_frozen() -> None:
    config = parse_config(minimal())
    with pytest.raises(ValueError, match="frozen"):
        config.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------- the "must show" list


def test_unknown_key_at_top_level() -> None:
    refused(minimal(colour="blue"), "colour", "unknown key")


def test_unknown_key_in_a_section() -> None:
    refused(minimal(periods={"time_units": "W"}), "periods.time_units", "unknown key")


def test_unknown_key_in_a_model() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd", "penaliser": 0.1}])
    refused(raw, "models[0].penaliser", "unknown key")


@pytest.mark.parametrize("holdout_end", ["1997-09-01", "1997-09-30"])
def test_end_dates_in_the_wrong_order(holdout_end: str) -> None:
    periods = {"calibration_end": "1997-09-30", "holdout_end": holdout_end}
    refused(
        minimal(periods=periods), "periods.holdout_end",
        f"holdout_end {holdout_end} must be after calibration_end 1997-09-30",
    )  # fmt: skip


def test_unknown_model_kind() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd"}, {"name": "x", "kind": "bg_nbd"}])
    refused(raw, "models[1].kind", "'bg_nbd'", "'bgnbd'", "'gamma_gamma'")


def test_duplicate_model_names() -> None:
    raw = minimal(models=[
        {"name": "bg", "kind": "bgnbd"}, {"name": "p", "kind": "pnbd"},
        {"name": "p", "kind": "mbgnbd"},
    ])  # fmt: skip
    refused(raw, "models[2].name", "duplicate model name 'p'", "models[1]")


def test_gamma_gamma_needs_an_amount_column() -> None:
    raw = minimal(
        data={"dataset": "cdnow_sample"},
        models=[{"name": "bg", "kind": "bgnbd"}, {"name": "spend", "kind": "gamma_gamma"}],
    )
    refused(raw, "data.columns.amount", "'spend'", "gamma_gamma")


def test_missing_data_file(tmp_path: Path) -> None:
    raw = minimal(data={"path": "transactions.csv"})
    refused(
        raw, "data.path", "file not found", str(tmp_path / "transactions.csv"), base_dir=tmp_path
    )


def test_missing_spill_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for value in ("scratch", "file"):
        raw = minimal(data={"dataset": "cdnow_sample", "temp_directory": value})
        refused(raw, "data.temp_directory", "not an existing folder", str(tmp_path / value),
                base_dir=tmp_path)  # fmt: skip


@pytest.mark.parametrize(
    "value", ["1997-13-01", "1997-02-30", "30/09/1997", "yesterday", "1997-9-30"]
)
def test_malformed_date(value: str) -> None:
    refused(minimal(periods={"calibration_end": value}), "periods.calibration_end", repr(value))


def test_malformed_holdout_date() -> None:
    periods = {"calibration_end": "1997-09-30", "holdout_end": "1998-06-31"}
    refused(minimal(periods=periods), "periods.holdout_end", "'1998-06-31'")


# ---------------------------------------------------------------- periods


def test_holdout_end_and_holdout_length_together() -> None:
    periods = {**HOLDOUT, "holdout_length": "39W"}
    refused(minimal(periods=periods), "periods.holdout_length", "not both")


def test_holdout_needs_calibration_end() -> None:
    refused(minimal(periods={"holdout_length": "39W"}), "periods.calibration_end", "holdout")


@pytest.mark.parametrize("length", ["39X", "-3M", "0W", "W", "1.5M", "0.5W"])
def test_malformed_holdout_length(length: str) -> None:
    periods = {"calibration_end": "1997-09-30", "holdout_length": length}
    refused(minimal(periods=periods), "periods.holdout_length", repr(length))


@pytest.mark.parametrize("length", ["39W", "9M", "3Q", "273D"])
def test_holdout_length_gives_the_holdout_end(length: str) -> None:
    config = parse_config(minimal(periods={"calibration_end": "1997-09-30",
                                           "holdout_length": length}))  # fmt: skip
    assert config.periods.has_holdout
    assert config.periods.holdout_end is None
    assert config.periods.holdout_end_date == dt.date(1998, 6, 30)


@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        ("1997-09-30", "9M", "1998-06-30"),
        ("1997-09-30", "39W", "1998-06-30"),
        ("1997-01-15", "1M", "1997-02-15"),
        ("1997-01-15", "90D", "1997-04-15"),
        ("1997-12-31", "1D", "1998-01-01"),
        ("1997-12-15", "1M", "1998-01-15"),  # across the year
        ("1997-11-15", "14M", "1999-01-15"),
        # month ends stay month ends
        ("2023-01-31", "1M", "2023-02-28"),
        ("2024-01-31", "1M", "2024-02-29"),  # leap year
        ("2023-04-30", "1M", "2023-05-31"),
        ("2023-11-30", "3M", "2024-02-29"),
        ("2024-03-31", "1Q", "2024-06-30"),
        ("2023-12-31", "2M", "2024-02-29"),
        # a day that the target month lacks is clipped to its last day
        ("2024-01-30", "1M", "2024-02-29"),
        ("2023-01-29", "1M", "2023-02-28"),
        ("2024-03-30", "1M", "2024-04-30"),
        # years
        ("2024-02-29", "1Y", "2025-02-28"),
        ("2020-02-29", "4Y", "2024-02-29"),
        ("2024-02-28", "1Y", "2025-02-28"),  # 28 Feb 2024 is not a month end
        ("2023-02-28", "1Y", "2024-02-29"),  # 28 Feb 2023 is
        ("2023-02-28", "12M", "2024-02-29"),
        ("2024-02-28", "1D", "2024-02-29"),
        ("2024-02-29", "1W", "2024-03-07"),
    ],
)
def test_add_duration(start: str, duration: str, end: str) -> None:
    result = add_duration(dt.date.fromisoformat(start), duration)
    assert result == dt.date.fromisoformat(end)


def test_add_duration_agrees_with_days_and_weeks() -> None:
    start = dt.date(1996, 2, 27)
    for days in range(0, 800, 37):
        if days:
            assert add_duration(start, f"{days}D") == start + dt.timedelta(days=days)
            assert add_duration(start, f"{days}W") == start + dt.timedelta(weeks=days)


@pytest.mark.parametrize("duration", ["1.5M", "0.5D", "1.5W", "0M", "12", "M12", "12 months"])
def test_add_duration_refuses(duration: str) -> None:
    with pytest.raises(ValueError, match=repr(duration).replace("(", r"\(").replace(".", r"\.")):
        add_duration(dt.date(2000, 1, 1), duration)


def test_parse_duration() -> None:
    assert parse_duration(" 9M ") == (9.0, "M")
    assert parse_duration("1.5W") == (1.5, "W")


def test_time_unit_and_granularity_are_checked() -> None:
    refused(minimal(periods={"time_unit": "fortnight"}), "periods.time_unit", "'fortnight'")
    refused(minimal(periods={"granularity": "X"}), "periods.granularity", "'X'")


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("method", ["mcmc", "map"])
def test_bayesian_methods_take_priors_and_sampler_settings(method: str) -> None:
    raw = minimal(models=[{
        "name": "bg", "kind": "bgnbd", "method": method,
        "priors": {"r": {"distribution": "Gamma", "params": {"alpha": 2, "beta": 4}}},
        "sampler": {"chains": 2, "draws": 300, "tune": 300, "hdi_prob": 0.9},
    }])  # fmt: skip
    model = parse_config(raw).models[0]
    assert model.bayes_settings() == {"hdi_prob": 0.9, "priors": {"r": ("Gamma", {
        "alpha": 2.0, "beta": 4.0})}}  # fmt: skip
    options = model.fit_options(seed=7)
    assert options["method"] == method and options["random_seed"] == 7
    assert (options["chains"], options["draws"], options["tune"]) == (2, 300, 300)


def test_priors_must_name_parameters_of_the_kind() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd", "method": "mcmc",
                           "priors": {"s": {"distribution": "Gamma"}}}])  # fmt: skip
    refused(raw, "models[0].priors.s", "no parameter 's'", "r, alpha, a, b")


def test_penalizer_belongs_to_mle() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd", "method": "map", "penalizer": 0.1}])
    refused(raw, "models[0].penalizer", "priors")


def test_unknown_method() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd", "method": "nuts"}])
    refused(raw, "models[0].method", "'nuts'")


def test_sbg_kind_is_refused() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd"}, {"name": "churn", "kind": "sbg"}])
    refused(raw, "models[1].kind", "sbg", "ShiftedBetaGeometric")


def test_bgbb_period() -> None:
    config = parse_config(minimal(models=[{"name": "bb", "kind": "bgbb", "period": "M"}]))
    assert config.models[0].period == "M"
    assert config.purchase_model_names == ["bb"]


@pytest.mark.parametrize("kind", ["bgnbd", "pnbd", "mbgnbd", "gamma_gamma"])
def test_period_only_for_bgbb(kind: str) -> None:
    raw = minimal(models=[{"name": "m", "kind": kind, "period": "M"}])
    refused(raw, "models[0].period", "bgbb models only")


def test_bgbb_period_must_be_a_window() -> None:
    raw = minimal(models=[{"name": "bb", "kind": "bgbb", "period": "fortnight"}])
    refused(raw, "models[0].period", "'fortnight'")


def test_drop_zero_values_only_for_gamma_gamma() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd", "drop_zero_values": True}])
    refused(raw, "models[0].drop_zero_values", "gamma_gamma models only")


def test_priors_and_sampler_only_for_bayesian_methods() -> None:
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd",
                           "priors": {"r": {"distribution": "HalfNormal"}}}])  # fmt: skip
    refused(raw, "models[0].priors", "map or mcmc")
    raw = minimal(models=[{"name": "bg", "kind": "bgnbd", "sampler": {"chains": 2}}])
    refused(raw, "models[0].sampler", "map or mcmc")


@pytest.mark.parametrize("name", ["", "a b", "-x", "x/y", "../up"])
def test_model_and_experiment_names_are_file_names(name: str) -> None:
    refused(minimal(models=[{"name": name, "kind": "bgnbd"}]), "models[0].name")
    refused(minimal(name=name), "name")


def test_at_least_one_model() -> None:
    refused(minimal(models=[]), "models", "at least 1")


def test_model_must_be_a_mapping() -> None:
    refused(minimal(models=["bgnbd"]), "models[0]", "'bgnbd'")


@pytest.mark.parametrize(
    ("setting", "value"),
    [("penalizer", -1), ("tol", 0), ("max_iter", 0), ("penalizer", "lots")],
)
def test_numeric_model_settings(setting: str, value: Any) -> None:
    refused(minimal(models=[{"name": "bg", "kind": "bgnbd", setting: value}]),
            f"models[0].{setting}", repr(value))  # fmt: skip


# ---------------------------------------------------------------- clv and evaluation


def test_spend_model_must_name_a_gamma_gamma_model() -> None:
    models = [{"name": "bg", "kind": "bgnbd"}, {"name": "gg", "kind": "gamma_gamma"}]
    assert parse_config(minimal(models=models, clv={"spend_model": "gg"})).spend_model_name == "gg"
    refused(minimal(models=models, clv={"spend_model": "nope"}), "clv.spend_model", "'nope'")
    refused(minimal(models=models, clv={"spend_model": "bg"}), "clv.spend_model", "'bg'")


def test_several_gamma_gamma_models_need_a_spend_model() -> None:
    models = [{"name": "bg", "kind": "bgnbd"}, {"name": "g1", "kind": "gamma_gamma"},
              {"name": "g2", "kind": "gamma_gamma"}]  # fmt: skip
    refused(minimal(models=models), "clv.spend_model", "g1, g2")
    config = parse_config(minimal(models=models, clv={"spend_model": "g2"}))
    assert config.spend_model_name == "g2"


def test_purchase_models_must_name_purchase_models() -> None:
    models = [{"name": "bg", "kind": "bgnbd"}, {"name": "p", "kind": "pnbd"},
              {"name": "gg", "kind": "gamma_gamma"}]  # fmt: skip
    config = parse_config(minimal(models=models, clv={"purchase_models": ["p"]}))
    assert config.clv_purchase_models == ["p"]
    assert parse_config(minimal(models=models)).clv_purchase_models == ["bg", "p"]
    refused(minimal(models=models, clv={"purchase_models": ["bg", "nope"]}),
            "clv.purchase_models", "'nope'", "bg, p")  # fmt: skip
    refused(minimal(models=models, clv={"purchase_models": ["gg"]}),
            "clv.purchase_models", "'gg'")  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "value"),
    [("horizon", "soon"), ("discount_rate", 1.5), ("discount_rate", -0.1), ("margin", 0),
     ("interval", 1.0), ("n_draws", 5)],
)  # fmt: skip
def test_clv_settings(setting: str, value: Any) -> None:
    refused(minimal(clv={setting: value}), f"clv.{setting}", repr(value))


def test_interval_may_be_null() -> None:
    assert parse_config(minimal(clv={"interval": None})).clv.interval is None


def test_evaluation_without_holdout() -> None:
    refused(minimal(evaluation={"baselines": ["naive"]}), "evaluation", "holdout")
    config = parse_config(minimal(periods=HOLDOUT, evaluation={"baselines": ["naive"]}))
    assert config.evaluation.baselines == ["naive"]


def test_evaluation_settings() -> None:
    refused(minimal(periods=HOLDOUT, evaluation={"metrics": ["mae", "accuracy"]}),
            "evaluation.metrics[1]", "'accuracy'")  # fmt: skip
    refused(minimal(periods=HOLDOUT, evaluation={"baselines": ["oracle"]}),
            "evaluation.baselines[0]", "'oracle'")  # fmt: skip
    refused(minimal(periods=HOLDOUT, evaluation={"bins": 1}), "evaluation.bins")


# ---------------------------------------------------------------- data


def test_data_needs_exactly_one_source(tmp_path: Path) -> None:
    refused(minimal(data={}), "data.dataset", "exactly one")
    write(tmp_path / "t.csv", "customer_id,date\n1,1997-01-01\n")
    refused(minimal(data={"dataset": "cdnow_sample", "path": "t.csv"}), "data.path",
            "exactly one", base_dir=tmp_path)  # fmt: skip
    refused({"name": "x", "models": [{"name": "bg", "kind": "bgnbd"}]}, "data", "missing")


def test_unknown_dataset() -> None:
    refused(minimal(data={"dataset": "cdnow"}), "data.dataset", "'cdnow'", "cdnow_sample")


def test_data_file_of_unknown_format(tmp_path: Path) -> None:
    write(tmp_path / "t.xlsx", "not really")
    refused(minimal(data={"path": "t.xlsx"}), "data.path", "t.xlsx", ".parquet",
            base_dir=tmp_path)  # fmt: skip


def test_data_path_is_relative_to_the_yaml_file(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "experiments"
    data = write(folder / "data" / "log.csv", "customer_id,date\n1,1997-01-01\n")
    path = write(folder / "exp.yaml", "name: e\ndata: {path: data/log.csv}\n"
                 "models: [{name: bg, kind: bgnbd}]\n")  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config, raw = load_config(path)
    assert Path(config.data.path) == data.resolve()
    assert raw["data"]["path"] == "data/log.csv"
    # the same relative path from the working directory is not looked at
    write(elsewhere / "exp2" / "exp.yaml", path.read_text())
    with pytest.raises(ConfigError) as caught:
        load_config(Path("exp2/exp.yaml"))
    assert caught.value.field == "data.path"
    assert str((elsewhere / "exp2" / "data" / "log.csv").resolve()) in str(caught.value)


def test_columns_section() -> None:
    raw = minimal(data={"dataset": "cdnow_sample", "columns": {"customer": "id"}})
    refused(raw, "data.columns.customer", "unknown key")


# ---------------------------------------------------------------- files


def test_load_config_reports_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", "name: e\ndata: {dataset: cdnow_sample}\n"
                 "models: [{name: bg, kind: bgnbd}]\ncolour: blue\n")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == "colour"
    assert str(caught.value).startswith(f"{path}: colour: unknown key")


def test_yaml_syntax_error_has_a_line_number(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "name: e\ndata:\n  dataset: cdnow_sample\n"
                 "models: [\n  {name: bg, kind: bgnbd}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML") as caught:
        load_config(path)
    assert "\n" not in str(caught.value)
    path = write(tmp_path / "indent.yaml", "name: e\n  data: x\n")
    with pytest.raises(ConfigError, match=r"indent\.yaml: line 2, column \d+: not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "empty.yaml", text)
    with pytest.raises(ConfigError, match="empty"):
        load_config(path)


@pytest.mark.parametrize("text", ["- name: e\n- data: x\n", "just words\n", "42\n"])
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "list.yaml", text)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)


def test_parse_config_refuses_a_non_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(["name", "data"])  # type: ignore[arg-type]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder; give the experiment's YAML file"):
        load_config(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_yaml_dates_and_strings_both_work(tmp_path: Path) -> None:
    text = ("name: e\ndata: {dataset: cdnow_sample}\nmodels: [{name: bg, kind: bgnbd}]\n"
            "periods: {calibration_end: 1997-09-30, holdout_end: '1998-06-30'}\n")  # fmt: skip
    config, _ = load_config(write(tmp_path / "e.yaml", text))
    assert config.periods.calibration_end == dt.date(1997, 9, 30)
    assert config.periods.holdout_end == dt.date(1998, 6, 30)


@pytest.mark.parametrize("date", ["1997-09-31", "1997-02-29", "1997-13-01"])
def test_impossible_yaml_date_names_its_field(tmp_path: Path, date: str) -> None:
    # PyYAML reads 1997-09-31 as a timestamp and fails on it; the schema must say where
    text = ("name: e\ndata: {dataset: cdnow_sample}\nmodels: [{name: bg, kind: bgnbd}]\n"
            f"periods:\n  calibration_end: {date}\n")  # fmt: skip
    path = write(tmp_path / "e.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == "periods.calibration_end"
    assert repr(date) in str(caught.value)
    good = write(tmp_path / "good.yaml", text.replace(date, "1997-09-30"))
    with pytest.raises(ConfigError) as caught:
        load_config(good, [f"periods.holdout_end={date.replace('1997', '1998')}"])
    assert caught.value.field == "periods.holdout_end"


def test_several_errors_are_listed_in_one_line() -> None:
    error = refused(minimal(colour="blue", seed=-1), "seed")
    assert "(and 1 more: colour: unknown key" in str(error)


# ---------------------------------------------------------------- overrides


RAW = {
    "name": "demo",
    "clv": {"horizon": "12M"},
    "models": [{"name": "bg", "kind": "bgnbd"}, {"name": "p", "kind": "pnbd"}],
    "tracking": {"mlflow": None},
}


def test_overrides_dotted_paths_and_new_sections() -> None:
    result = apply_overrides(RAW, ["clv.horizon=6M", "output.overwrite=true", "seed=7"])
    assert result["clv"] == {"horizon": "6M"}
    assert result["output"] == {"overwrite": True}
    assert result["seed"] == 7


def test_overrides_address_list_items_by_index_or_name() -> None:
    result = apply_overrides(RAW, ["models.1.penalizer=0.01", "models.bg.max_iter=50"])
    assert result["models"] == [
        {"name": "bg", "kind": "bgnbd", "max_iter": 50},
        {"name": "p", "kind": "pnbd", "penalizer": 0.01},
    ]
    renamed = apply_overrides(RAW, ["models.bg.name=first", "models.first.kind=mbgnbd"])
    assert renamed["models"][0] == {"name": "first", "kind": "mbgnbd"}


def test_override_values_are_yaml() -> None:
    result = apply_overrides(RAW, [
        "evaluation.baselines=[naive]", "clv.interval=null", "clv.margin=", "clv.n_draws=20",
        "clv.discount_rate=0.05", "output.plots=false", "periods.calibration_end=1997-09-30",
        "name=a=b", "clv.horizon= 6M ",
    ])  # fmt: skip
    assert result["evaluation"] == {"baselines": ["naive"]}
    assert result["clv"] == {"horizon": "6M", "interval": None, "margin": None, "n_draws": 20,
                             "discount_rate": 0.05}  # fmt: skip
    assert result["output"] == {"plots": False}
    assert result["periods"]["calibration_end"] == dt.date(1997, 9, 30)
    assert result["name"] == "a=b"


def test_override_into_an_empty_yaml_section() -> None:
    result = apply_overrides(RAW, ["tracking.mlflow.enabled=false"])
    assert result["tracking"] == {"mlflow": {"enabled": False}}


def test_overrides_do_not_modify_the_input() -> None:
    before = copy.deepcopy(RAW)
    result = apply_overrides(RAW, ["clv.horizon=6M", "models.bg.penalizer=1", "models.1=x"])
    assert before == RAW
    assert result is not RAW
    assert result["models"][1] == "x"


def test_no_overrides_copy() -> None:
    result = apply_overrides(RAW, [])
    assert result == RAW
    result["clv"]["horizon"] = "1M"
    assert RAW["clv"]["horizon"] == "12M"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("clv.horizon", "use key=value"),
        ("=6M", "use key=value"),
        (" =6M", "use key=value"),
        ("clv.horizon=[6M", "not valid YAML"),
        ("models.5.kind=pnbd", "no list item '5'"),
        ("models.nope.kind=pnbd", "no list item 'nope'"),
        ("models.-1.kind=pnbd", "no list item '-1'"),
        ("clv.horizon.unit=M", "clv.horizon is a value, not a section"),
        ("name.first=x", "name is a value"),
    ],
)
def test_bad_overrides(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(RAW, [override])
    assert message in str(caught.value)
    assert repr(override) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_overrides_are_validated_by_load_config(tmp_path: Path) -> None:
    path = write(tmp_path / "e.yaml", "name: e\ndata: {dataset: cdnow_sample}\n"
                 "models: [{name: bg, kind: bgnbd}]\n")  # fmt: skip
    config, raw = load_config(path, ["models.bg.penalizer=0.001", "clv.n_draws=20"])
    assert config.models[0].penalizer == 0.001
    assert config.clv.n_draws == 20
    assert raw["clv"] == {"n_draws": 20}
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["models.bg.kind=bgnbd2"])
    assert caught.value.field == "models[0].kind"
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["clv.n_draws=many"])
    assert caught.value.field == "clv.n_draws"


# ---------------------------------------------------------------- JSON Schema


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_json_schema() -> None:
    schema = config_json_schema()
    text = json.dumps(schema)  # JSON-ready
    assert json.loads(text) == schema
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(ExperimentConfig.model_fields)
    assert set(schema["properties"]) >= {
        "name", "seed", "data", "periods", "models", "clv", "evaluation", "output", "tracking",
    }  # fmt: skip
    assert sorted(schema["required"]) == ["data", "models", "name"]
    assert schema["additionalProperties"] is False
    definitions = schema["$defs"]
    for name in ("DataConfig", "ColumnsConfig", "PeriodsConfig", "ModelConfig", "ClvConfig",
                 "EvaluationConfig", "OutputConfig", "TrackingConfig", "MlflowConfig"):
        assert definitions[name]["type"] == "object", name
        assert definitions[name]["additionalProperties"] is False, name
    # every reference resolves
    for node in _walk(schema):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/$defs/")
            assert ref.removeprefix("#/$defs/") in definitions
    kinds = definitions["ModelConfig"]["properties"]["kind"]["enum"]
    assert "bgnbd" in kinds and "gamma_gamma" in kinds
    # descriptions for the user
    assert definitions["PeriodsConfig"]["properties"]["holdout_length"]["description"]


# ------------------------------------------------------------------ bounded work


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"clv": {"n_draws": 10_000_000}}, "clv.n_draws", "76 MiB per customer"),
        ({"models": [{"name": "b", "kind": "bgnbd", "method": "mcmc",
                      "sampler": {"chains": 100_000}}]}, "models[0].sampler.chains", "64"),
        ({"models": [{"name": "b", "kind": "bgnbd", "method": "mcmc",
                      "sampler": {"draws": 2_000_000}}]}, "models[0].sampler.draws", "1000000"),
        ({"models": [{"name": "b", "kind": "bgnbd", "method": "mcmc",
                      "sampler": {"chains": 64, "draws": 500_000}}]},
         "models[0].sampler.draws", "10,000,000"),
    ],
)  # fmt: skip
def test_absurd_amounts_of_work_are_refused_naming_the_setting(changes, field, words) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(minimal(**changes))
    assert str(error.value).startswith(f"config: {field}: ")
    assert words in str(error.value)


def test_limits_match_the_api() -> None:
    from clvmodels._validation import MAX_DRAWS
    from clvmodels.bayes import _base as bayes_base
    from clvmodels.experiments.config import SamplerConfig

    def upper(name: str) -> int:
        return next(m.le for m in SamplerConfig.model_fields[name].metadata if hasattr(m, "le"))

    assert upper("chains") == bayes_base.MAX_CHAINS
    assert upper("draws") == upper("tune") == bayes_base.MAX_SAMPLER_DRAWS
    SamplerConfig(chains=20, draws=bayes_base.MAX_POSTERIOR_DRAWS // 20)
    with pytest.raises(ValueError, match="10,000,000"):
        SamplerConfig(chains=20, draws=bayes_base.MAX_POSTERIOR_DRAWS // 20 + 1)
    parse_config(minimal(clv={"n_draws": MAX_DRAWS}))
    with pytest.raises(ConfigError, match=r"clv\.n_draws"):
        parse_config(minimal(clv={"n_draws": MAX_DRAWS + 1}))


def test_cli_refuses_absurd_settings_in_one_line(tmp_path, capsys) -> None:
    from clvmodels.cli import main

    path = tmp_path / "big.yaml"
    path.write_text(
        "name: big\ndata: {dataset: cdnow_sample}\nmodels:\n"
        "  - {name: b, kind: bgnbd, method: mcmc, sampler: {chains: 100000}}\n"
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models[0].sampler.chains" in err

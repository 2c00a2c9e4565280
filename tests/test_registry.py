"""The registry declares each model once; every reader agrees with it."""

from __future__ import annotations

import inspect

import pytest

import clvmodels
from clvmodels import registry
from clvmodels.experiments import config

SPECS = list(registry.MODELS.values())


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.kind)
def test_the_maximum_likelihood_class_matches_its_declaration(spec) -> None:
    cls = registry.model_class(spec.kind)
    assert cls.__name__ == spec.class_name
    assert cls.kind == spec.kind
    assert tuple(cls.param_names) == spec.parameters
    assert getattr(clvmodels, spec.class_name) is cls


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.kind)
def test_the_bayesian_twin_matches_its_declaration(spec) -> None:
    pytest.importorskip("pymc")
    from clvmodels import bayes

    cls = registry.model_class(spec.kind, bayesian=True)
    assert cls.__name__ == spec.class_name and cls.kind == spec.kind
    assert tuple(cls.param_names) == spec.parameters
    assert cls.default_priors == spec.priors
    assert set(cls.default_priors) == set(spec.parameters)
    assert getattr(bayes, spec.class_name) is cls


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.kind)
def test_the_simulator_takes_the_declared_parameters(spec) -> None:
    simulate = registry.simulator(spec.kind)
    accepted = set(inspect.signature(simulate).parameters)
    assert set(spec.parameters) <= accepted


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.kind)
def test_one_spelling_per_model(spec) -> None:
    # the kind names the module, the simulator, its test module and the bundled
    # experiment files' models
    from pathlib import Path

    assert spec.module == f"clvmodels.models.{spec.kind}"
    assert spec.simulator == f"simulate_{spec.kind}"
    assert (Path(__file__).parent / "models" / f"test_{spec.kind}.py").is_file()


def test_bundled_experiment_files_name_models_by_kind() -> None:
    from pathlib import Path

    import yaml

    for path in sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()).get("models", []):
            if "kind" in entry:
                assert entry["name"] == entry["kind"] or entry["name"].startswith(
                    f"{entry['kind']}_"
                ), (path.name, entry)


def test_experiment_files_read_the_registry() -> None:
    schema = config.config_json_schema()
    text = str(schema)
    for spec in SPECS:
        assert repr(spec.kind) in text
    assert registry.kinds() == config.MODEL_KINDS
    assert tuple(s.kind for s in SPECS if s.role == "purchase") == config.PURCHASE_KINDS


def test_simulated_transaction_logs_use_the_kinds() -> None:
    from clvmodels.simulate import simulate_transactions

    continuous = [spec for spec in SPECS if spec.continuous_purchase]
    assert [spec.kind for spec in continuous] == ["bgnbd", "pnbd", "mbgnbd"]
    for spec in continuous:
        params = dict.fromkeys(spec.parameters, 1.0)
        log = simulate_transactions(spec.kind, 5, params=params, random_state=1)
        assert log["customer_id"].nunique() == 5


def test_unknown_kind_names_the_kinds() -> None:
    with pytest.raises(KeyError, match="'pareto' is not a model kind; the kinds are bgnbd"):
        registry.get("pareto")


def test_load_knows_every_kind_without_importing_them_first(tmp_path) -> None:
    # load resolves the class through the registry (no import side effects needed)
    import json
    import subprocess
    import sys

    frame = clvmodels.summarize(clvmodels.datasets.load_cdnow(), time_unit="W",
                                duplicates="keep")  # fmt: skip
    clvmodels.BGNBD().fit(frame).save(tmp_path / "m.json")
    code = (
        "import clvmodels.models._base as base; "
        f"m = base.load({str(tmp_path / 'm.json')!r}); print(type(m).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.strip() == "BGNBD"
    assert json.loads((tmp_path / "m.json").read_text())["kind"] == "bgnbd"

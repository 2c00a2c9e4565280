"""Hostile and damaged Bayesian model files: ``bayes.load`` refuses each with one
``InvalidDataError`` (never another exception, never a model built from it) whose
one-line message names the file and the key, group or variable at fault. Each case
edits the netCDF file of a real saved BG/NBD model (at its posterior mode: fast)."""

from __future__ import annotations

import json

import h5netcdf
import numpy as np
import pytest
import xarray as xr

from clvmodels import bayes
from clvmodels.bayes import _base
from clvmodels.exceptions import InvalidDataError


@pytest.fixture(scope="module")
def fitted(cdnow_calibration):
    return bayes.BGNBD().fit(cdnow_calibration, method="map", draws=100)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """The groups and root attributes of the file ``save`` writes, in memory."""
    path = fitted.save(tmp_path_factory.mktemp("saved") / "model.nc")
    with h5netcdf.File(path, "r") as file:
        names = list(file.groups)
    with xr.open_dataset(path, engine="h5netcdf") as root:
        attrs = dict(root.attrs)
    groups = {}
    for name in names:
        with xr.open_dataset(path, group=name, engine="h5netcdf") as group:
            groups[name] = group.load()
    return attrs, groups


def _write(saved, edit, path):
    """The saved file with ``edit(attrs, groups)`` applied, written as ArviZ does: the
    attributes at the root, one netCDF group per ArviZ group."""
    attrs, groups = dict(saved[0]), {name: group.copy() for name, group in saved[1].items()}
    edit(attrs, groups)
    xr.Dataset(attrs=attrs).to_netcdf(path, mode="w", engine="h5netcdf")
    for name, group in groups.items():
        group.to_netcdf(path, mode="a", group=name, engine="h5netcdf")
    return path


def _state(change):
    """An edit of the settings JSON in the attribute 'clvmodels'."""

    def edit(attrs, groups):
        state = json.loads(attrs["clvmodels"])
        change(state)
        attrs["clvmodels"] = json.dumps(state)

    return edit


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(state):
        for key in keys[:-1]:
            state = state[key]
        state[keys[-1]] = value

    return _state(change)


def _drop(*keys):
    def change(state):
        for key in keys[:-1]:
            state = state[key]
        del state[keys[-1]]

    return _state(change)


def _attribute(value):
    def edit(attrs, groups):
        if value is None:
            del attrs["clvmodels"]
        else:
            attrs["clvmodels"] = value

    return edit


def _group(name, change):
    """An edit replacing group ``name`` by ``change(group)`` (None: no group)."""

    def edit(attrs, groups):
        groups[name] = change(groups[name])
        if groups[name] is None:
            del groups[name]

    return edit


def _draws(change):
    """An edit of the posterior draws of ``r``: ``change(values)``."""
    return _group("posterior", lambda p: p.assign(r=(p.r.dims, change(p.r.values.copy()))))


def _with_nan(values):
    values[0, 3] = np.nan
    return values


def _fewer_draws(group):
    return group.isel(draw=slice(0, 50))


def _negative_weights(group):
    weights = group.pattern_weight
    return group.assign(pattern_weight=(weights.dims, -weights.values))


def _pattern_table_with_other_dimensions(group):
    return group.assign(patterns=(("chain", "draw", "x"), group.patterns.values))


# (id, edit, a word the message must contain)
CASES = [
    # the attribute holding the settings
    ("attribute-missing", _attribute(None), "attribute 'clvmodels'"),
    ("attribute-number", _attribute(5), "attribute 'clvmodels'"),
    ("attribute-not-json", _attribute("{nope"), "not valid JSON"),
    ("attribute-deep-nesting", _attribute("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    ("attribute-nan", _attribute('{"format": NaN}'), "NaN"),
    ("attribute-array", _attribute("[1, 2]"), "format"),
    ("format-other", _set("format", "clvmodels-model"), "format"),
    ("version-newer", _set("format_version", 2), "upgrade"),
    ("version-text", _set("format_version", "1"), "whole number"),
    ("key-unknown", _set("params_", {"r": 1.0}), "unknown keys 'params_'"),
    ("key-missing", _drop("method"), "lacks the keys 'method'"),
    ("class-internal", _set("class", "BayesianModel"), "class"),
    ("class-module", _set("class", "simulate"), "class"),
    ("class-unhashable", _set("class", ["BGNBD"]), "class"),
    ("kind-other", _set("kind", "pnbd"), "kind"),
    # settings and priors, checked as fit checks them
    ("setting-unknown", _set("settings", "penalizer", 0.1), "unknown keys 'penalizer'"),
    ("setting-missing", _drop("settings", "priors"), "lacks the keys 'priors'"),
    ("hdi-prob-percent", _set("settings", "hdi_prob", 94), "hdi_prob"),
    ("prediction-draws-zero", _set("settings", "prediction_draws", 0), "prediction_draws"),
    ("prior-unknown-parameter", _set("settings", "priors", "s", ["Gamma", {"alpha": 1.0}]),
     "unknown keys 's'"),
    ("prior-malformed", _set("settings", "priors", "r", ["Gamma"]), "priors"),
    ("prior-text-parameter", _set("settings", "priors", "r", ["Gamma", {"alpha": "x"}]),
     "priors"),
    ("priors-not-object", _set("settings", "priors", "Gamma"), "not a JSON object"),
    ("extra-overwrites-params", _set("extra", "params_", {"r": 1.0}), "unknown keys 'params_'"),
    ("extra-of-another-model", _set("extra", "drop_zero_values", True),
     "unknown keys 'drop_zero_values'"),
    # estimates and what the fit recorded
    ("mle-negative", _set("mle_params", "r", -1.0), "positive"),
    ("mle-missing-parameter", _drop("mle_params", "b"), "lacks the keys 'b'"),
    ("map-text", _set("map_params", "a", "0.8"), "positive"),
    ("method-unknown", _set("method", "magic"), "method"),
    ("fit-settings-nested", _set("fit_settings", "draws", {"n": 1}), "not a number or text"),
    ("fit-settings-list", _set("fit_settings", [1, 2]), "not a JSON object"),
    ("patterns-negative", _set("n_patterns", -1), "whole number"),
    ("customers-text", _set("n_customers", "many"), "positive number"),
    ("time-unit-number", _set("time_unit", 7), "time unit"),
    ("package-version-list", _set("package_version", [0, 1]), "version string"),
    # the groups and variables load reads
    ("posterior-missing", _group("posterior", lambda p: None), "'posterior' is missing"),
    ("parameter-missing", _group("posterior", lambda p: p.drop_vars("r")),
     "variable 'r' is missing"),
    ("parameter-extra-dimension",
     _group("posterior", lambda p: p.assign(r=(("chain", "draw", "x"), p.r.values[..., None]))),
     "dimensions"),
    ("parameter-flat", _group("posterior", lambda p: p.assign(r=(("sample",), p.r.values[0]))),
     "dimensions"),
    ("parameter-no-draws", _group("posterior", lambda p: p.isel(draw=slice(0, 0))), "no draws"),
    ("draws-negative", _draws(lambda v: -v), "positive"),
    ("draws-nan", _draws(_with_nan), "positive"),
    ("draws-text", _draws(lambda v: v.astype(str)), "not numbers"),
    ("loglik-other-draws", _group("log_likelihood", _fewer_draws), "draws"),
    ("loglik-dimensions", _group("log_likelihood", _pattern_table_with_other_dimensions),
     "dimensions"),
    ("weights-missing", _group("constant_data", lambda c: None), "pattern_weight"),
    ("weights-short", _group("constant_data", lambda c: c.isel(pattern=slice(0, 3))),
     "weights for"),
    ("weights-negative", _group("constant_data", _negative_weights), "weights"),
]  # fmt: skip


def _refused(path) -> str:
    """The message of the InvalidDataError load raises (any other exception fails)."""
    with pytest.raises(InvalidDataError) as info:
        bayes.load(path)
    assert type(info.value) is InvalidDataError
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message
    return message


@pytest.mark.parametrize(("edit", "word"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_hostile_file_is_refused(saved, tmp_path, edit, word) -> None:
    message = _refused(_write(saved, edit, tmp_path / "model.nc"))
    assert word in message, message


def test_the_catalogue_edits_a_file_that_loads(saved, fitted, tmp_path) -> None:
    loaded = bayes.load(_write(saved, lambda attrs, groups: None, tmp_path / "model.nc"))
    np.testing.assert_array_equal(loaded.posterior_samples(), fitted.posterior_samples())
    assert loaded.loo().equals(fitted.loo())


@pytest.mark.parametrize("make", [
    lambda data: b"not a model",
    lambda data: data[: len(data) // 2],
    lambda data: json.dumps({"format": "clvmodels-bayes"}).encode(),
], ids=["text", "truncated", "json"])  # fmt: skip
def test_a_file_that_is_not_netcdf_is_refused(saved, tmp_path, make) -> None:
    path = _write(saved, lambda attrs, groups: None, tmp_path / "model.nc")
    path.write_bytes(make(path.read_bytes()))
    assert "cannot read it as netCDF" in _refused(path)


def test_a_newer_format_says_to_upgrade(saved, tmp_path) -> None:
    message = _refused(_write(saved, _set("format_version", 2), tmp_path / "model.nc"))
    assert "written by a newer clvmodels" in message and "upgrade" in message


def test_early_version_1_files_still_load(saved, fitted, tmp_path) -> None:
    # format_version 1 is the only one there has been (see _FORMAT_VERSION); its first
    # files had no map_params and no settings.prediction_draws
    assert _base._FORMAT_VERSION == 1 == json.loads(saved[0]["clvmodels"])["format_version"]

    def early(state):
        del state["map_params"], state["settings"]["prediction_draws"]

    loaded = bayes.load(_write(saved, _state(early), tmp_path / "model.nc"))
    assert loaded.prediction_draws == bayes.BGNBD().prediction_draws
    assert not hasattr(loaded, "map_params_")
    np.testing.assert_array_equal(loaded.posterior_samples(), fitted.posterior_samples())


def test_a_file_without_the_pointwise_log_likelihood_loads(saved, tmp_path) -> None:
    # save leaves it out when patterns x draws is too large; loo then says so
    def without(attrs, groups):
        del groups["log_likelihood"], groups["constant_data"]

    loaded = bayes.load(_write(saved, without, tmp_path / "model.nc"))
    with pytest.raises(Exception, match="log-likelihood was not kept"):
        loaded.loo()

"""Hostile and damaged model files: ``clvmodels.load`` refuses each with one
``InvalidDataError`` (never another exception, never a model built from it) whose
one-line message names the file and what is wrong. Each case edits the file of a real
saved BG/NBD model; files that fit and save write keep loading."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

import clvmodels
from clvmodels.exceptions import ConvergenceError, IdentificationWarning, InvalidDataError
from clvmodels.models import _base, _saved
from clvmodels.simulate import simulate_bgnbd


@pytest.fixture(scope="module")
def fitted(cdnow_calibration):
    return clvmodels.BGNBD().fit(cdnow_calibration)


@pytest.fixture(scope="module")
def state(fitted, tmp_path_factory) -> dict:
    """The state of a real fit, as ``save`` writes it."""
    path = fitted.save(tmp_path_factory.mktemp("saved") / "model.json")
    return json.loads(path.read_text())


class _Text:
    """A case that writes the file itself: ``make(text of the real file)``."""

    def __init__(self, make):
        self.make = make


class _Raw:
    """A case that writes ``raw`` verbatim as the value at ``keys`` (JSON that
    ``json.dumps`` would not write)."""

    def __init__(self, *keys, raw):
        self.keys, self.raw = keys, raw


def _set(*keys_and_value):
    """An edit setting ``state[k1][k2]... = value``."""
    *keys, value = keys_and_value

    def edit(state):
        _parent(state, keys)[keys[-1]] = value

    return edit


def _drop(*keys):
    def edit(state):
        del _parent(state, keys)[keys[-1]]

    return edit


def _parent(state, keys):
    for key in keys[:-1]:
        state = state[key]
    return state


def _covariance_entry(i, j, value, symmetric=True):
    def edit(state):
        state["covariance"][i][j] = value
        if symmetric:
            state["covariance"][j][i] = value

    return edit


def _scale_covariance(state):
    state["covariance"] = [[v * 1e30 for v in row] for row in state["covariance"]]


def _shrink_covariance(state):
    state["covariance"] = [row[:3] for row in state["covariance"][:3]]


# (id, edit, a word the message must contain)
CASES = [
    # the file as a whole
    ("truncated", _Text(lambda text: text[: len(text) // 2]), "not valid JSON"),
    ("not-utf8", _Text(lambda text: b"\xff\xfe\x00garbage"), "UTF-8"),
    ("empty", _Text(lambda text: ""), "not valid JSON"),
    ("json-array", _Text(lambda text: "[1, 2]"), "not a JSON object"),
    ("json-null", _Text(lambda text: "null"), "not a JSON object"),
    ("deep-nesting", _Text(lambda text: "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    ("deep-nesting-in-settings", _Raw("settings", "columns", raw="[" * 50_000 + "]" * 50_000),
     "nested too deeply"),
    # within json's own limit, but deeper than any saved state
    ("nesting-below-parser-limit", _Raw("params", raw="[" * 900 + "]" * 900),
     "nested too deeply"),
    ("nesting-in-initial-params", _Raw("settings", "initial_params", raw="[" * 900 + "]" * 900),
     "nested too deeply"),
    ("repeated-key", _Text(lambda text: text.replace('"kind":', '"kind": "bgnbd", "kind":')),
     "twice"),
    ("nan-literal", _Raw("log_likelihood", raw="NaN"), "NaN"),
    ("infinity-literal", _Raw("params", "r", raw="Infinity"), "Infinity"),
    ("huge-integer", _Raw("n_patterns", raw="9" * 400), "digits"),
    # format, version, kind, keys
    ("format-missing", _drop("format"), "format"),
    ("format-other", _set("format", "clvmodels-bayes"), "format"),
    ("version-newer", _set("format_version", 99), "upgrade"),
    ("version-text", _set("format_version", "1"), "whole number"),
    ("version-bool", _set("format_version", True), "whole number"),
    ("version-fraction", _set("format_version", 1.5), "whole number"),
    ("version-zero", _set("format_version", 0), "start at 1"),
    ("version-missing", _drop("format_version"), "format_version"),
    ("kind-unknown", _set("kind", "pickle"), "kind"),
    ("kind-unhashable", _set("kind", ["bgnbd"]), "kind"),
    ("key-unknown", _set("__class__", "os.system"), "unknown keys '__class__'"),
    ("key-missing", _drop("n_patterns"), "lacks the keys 'n_patterns'"),
    ("package-version-number", _set("package_version", 1), "version string"),
    # parameters
    ("param-missing", _drop("params", "r"), "lacks the keys 'r'"),
    ("param-unknown", _set("params", "s", 1.0), "unknown keys 's'"),
    ("param-negative", _set("params", "r", -0.24), "positive"),
    ("param-zero", _set("params", "alpha", 0), "positive"),
    ("param-text", _set("params", "a", "0.79"), "positive"),
    ("param-bool", _set("params", "a", True), "positive"),
    ("param-null", _set("params", "b", None), "positive"),
    ("param-overflows-to-inf", _Raw("params", "b", raw="1e400"), "positive"),
    ("params-list", _set("params", [0.24, 4.4, 0.8, 2.4]), "not a JSON object"),
    # covariance
    ("cov-negative-variance", _covariance_entry(0, 0, -1.0), "negative variance"),
    ("cov-huge", _scale_covariance, "overflow"),
    ("cov-shape", _shrink_covariance, "shape"),
    ("cov-ragged", lambda state: state["covariance"][1].pop(), "shape"),
    ("cov-not-a-list", _set("covariance", {"r": 1.0}), "list of rows"),
    ("cov-asymmetric", _covariance_entry(0, 1, 1.0, symmetric=False), "symmetric"),
    ("cov-indefinite", _covariance_entry(0, 1, 1.0), "semi-definite"),
    ("cov-text-entry", _covariance_entry(1, 1, "0.1"), "entry"),
    ("cov-partly-null", _covariance_entry(2, 3, None), "entry"),
    ("cov-overflows-to-inf", _Raw("covariance", 0, 0, raw="1e400"), "entry"),
    # the other fitted values
    ("loglik-text", _set("log_likelihood", "-9582"), "finite number"),
    ("customers-zero", _set("n_customers", 0), "positive number"),
    ("patterns-fraction", _set("n_patterns", 1.5), "whole number"),
    ("converged-text", _set("converged", "yes"), "true or false"),
    # extra reaches no fitted attribute but its own
    ("extra-overwrites-params", _set("extra", "params", {"r": 1.0}), "unknown keys 'params'"),
    ("extra-covariance", _set("extra", "covariance", None), "unknown keys 'covariance'"),
    ("extra-not-object", _set("extra", ["time_unit"]), "not a JSON object"),
    ("time-unit-number", _set("extra", "time_unit", 7), "time unit"),
    # settings, checked as fit checks them
    ("setting-unknown", _set("settings", "learning_rate", 1), "unknown keys 'learning_rate'"),
    ("setting-dunder", _set("settings", "__dict__", {}), "unknown keys '__dict__'"),
    ("settings-not-object", _set("settings", "penalizer=0"), "not a JSON object"),
    ("penalizer-negative", _set("settings", "penalizer", -1), "penalizer"),
    ("penalizer-huge-integer", _set("settings", "penalizer", -(10**300)), "penalizer"),
    ("tol-text", _set("settings", "tol", "1e-9"), "tol"),
    ("max-iter-fraction", _set("settings", "max_iter", 2.5), "max_iter"),
    ("initial-params-unknown", _set("settings", "initial_params", {"zeta": 1.0}),
     "initial_params"),
    ("initial-params-negative",
     _set("settings", "initial_params", {"r": -1.0, "alpha": 1.0, "a": 1.0, "b": 1.0}),
     "initial_params"),
    ("columns-unknown-role", _set("settings", "columns", {"monetary_value": "spend"}), "columns"),
    ("columns-not-text", _set("settings", "columns", {"T": 39}), "columns"),
]  # fmt: skip

_PLACEHOLDER = "__raw_value__"


def _write(state: dict, edit, path):
    if isinstance(edit, _Text):
        content = edit.make(json.dumps(state, indent=2))
    else:
        edited = copy.deepcopy(state)
        if isinstance(edit, _Raw):
            _set(*edit.keys, _PLACEHOLDER)(edited)
        else:
            edit(edited)
        content = json.dumps(edited, indent=2)
        if isinstance(edit, _Raw):
            content = content.replace(json.dumps(_PLACEHOLDER), edit.raw)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _refused(path) -> str:
    """The message of the InvalidDataError load raises (any other exception fails)."""
    with pytest.raises(InvalidDataError) as info:
        clvmodels.load(path)
    assert type(info.value) is InvalidDataError
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message
    return message


@pytest.mark.parametrize(("edit", "word"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_hostile_file_is_refused(state, tmp_path, edit, word) -> None:
    message = _refused(_write(state, edit, tmp_path / "model.json"))
    assert word in message, message


def test_the_catalogue_edits_a_file_that_loads(state, fitted, tmp_path) -> None:
    loaded = clvmodels.load(_write(state, lambda s: None, tmp_path / "model.json"))
    assert loaded.params_.equals(fitted.params_)
    assert loaded.covariance_.equals(fitted.covariance_)


def test_a_newer_format_says_to_upgrade(state, tmp_path) -> None:
    message = _refused(_write(state, _set("format_version", 2), tmp_path / "model.json"))
    assert "written by a newer clvmodels" in message and "upgrade" in message


def test_the_only_format_version_loads(state, fitted, tmp_path) -> None:
    # 1 is the only format_version there has been (see _FORMAT_VERSION), so there is no
    # older format to read; the current one loads and writes what it read.
    assert _base._FORMAT_VERSION == 1 == state["format_version"]
    loaded = clvmodels.load(_write(state, lambda s: None, tmp_path / "model.json"))
    resaved = json.loads(loaded.save(tmp_path / "again.json").read_text())
    assert resaved == state


def test_settings_left_out_take_their_defaults(state, tmp_path) -> None:
    # cls(**settings) has always filled settings a file does not name
    loaded = clvmodels.load(_write(state, _drop("settings", "columns"), tmp_path / "m.json"))
    assert loaded.columns is None


def test_extra_sets_only_its_own_attributes(state, fitted, tmp_path) -> None:
    loaded = clvmodels.load(_write(state, _set("extra", "time_unit", "7D"), tmp_path / "m.json"))
    assert loaded.time_unit_ == "7D"
    assert loaded.params_.equals(fitted.params_)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as file:  # sparse: no disk space used
        file.truncate(_saved.MAX_FILE_BYTES + 1)
    monkeypatch.setattr(_base, "open", _no_open, raising=False)
    assert "larger than 50 MiB" in _refused(path)


def _no_open(*args, **kwargs):
    raise AssertionError("load opened a file over the size limit")


def test_a_device_larger_than_it_says_is_refused(monkeypatch) -> None:
    # /dev/zero: size 0, endless content; read up to the limit, then refused
    monkeypatch.setattr(_saved, "MAX_FILE_BYTES", 1000)
    assert "larger than" in _refused("/dev/zero")


def test_an_unestimated_covariance_still_loads(state, tmp_path) -> None:
    # save writes null where the fit could not estimate the covariance
    k = len(state["params"])
    path = _write(state, _set("covariance", [[None] * k] * k), tmp_path / "model.json")
    loaded = clvmodels.load(path)
    assert np.isnan(loaded.covariance_.to_numpy()).all()
    with pytest.raises(InvalidDataError, match="not finite"):
        loaded.parameter_draws()


@pytest.mark.parametrize("n_customers", [5, 10, 20])
def test_every_fit_saves_a_file_that_loads(n_customers, tmp_path) -> None:
    """Small samples leave parameters unidentified: fit gives no covariance where it
    would be indefinite or overflow intervals, rather than a file load refuses."""
    for seed in range(8):
        data = simulate_bgnbd(n_customers, r=0.24, alpha=4.41, a=0.79, b=2.43, T=39.0,
                              random_state=seed)  # fmt: skip
        for cls in (clvmodels.BGNBD, clvmodels.ParetoNBD, clvmodels.MBGNBD):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", IdentificationWarning)
                    model = cls().fit(data)
            except (ConvergenceError, InvalidDataError):
                continue
            cov = model.covariance_.to_numpy()
            if not np.isnan(cov).all():
                assert _base._covariance_problem(cls.param_names, model.params_.to_numpy(),
                                                 cov) is None  # fmt: skip
            loaded = clvmodels.load(model.save(tmp_path / "model.json", overwrite=True))
            assert loaded.params_.equals(model.params_)

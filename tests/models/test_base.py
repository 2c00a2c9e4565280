"""The shared fitting machinery: convergence failures, identification warnings, column
names, the covariance and the parameter draws."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvmodels
from clvmodels.exceptions import ConvergenceError, InvalidDataError
from clvmodels.models import IdentificationWarning


def test_convergence_failure_has_a_checklist(cdnow_calibration) -> None:
    with pytest.raises(ConvergenceError) as info:
        clvmodels.BGNBD(max_iter=1).fit(cdnow_calibration)
    message = str(info.value)
    assert "did not converge" in message
    for hint in ("Time unit", "penalizer", "Outliers", "initial_params"):
        assert hint in message


def test_unidentified_parameter_warns() -> None:
    # Nobody ever returns: the purchase rate has nothing to learn from.
    frame = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": [10.0] * 50})
    with pytest.warns(IdentificationWarning, match="parameter"):
        try:
            clvmodels.BGNBD().fit(frame)
        except ConvergenceError:
            pytest.skip("diverged instead of stopping at the boundary")


def test_penalizer_shrinks_parameters(cdnow_calibration) -> None:
    free = clvmodels.BGNBD().fit(cdnow_calibration)
    penalized = clvmodels.BGNBD(penalizer=0.1).fit(cdnow_calibration)
    assert np.sum(penalized.params_**2) < np.sum(free.params_**2)


def test_initial_params(cdnow_calibration) -> None:
    start = {"r": 0.3, "alpha": 5.0, "a": 1.0, "b": 2.0}
    model = clvmodels.BGNBD(initial_params=start).fit(cdnow_calibration)
    assert model.params_["r"] == pytest.approx(0.2426, rel=1e-3)
    with pytest.raises(InvalidDataError, match="initial_params lacks"):
        clvmodels.BGNBD(initial_params={"r": 1.0}).fit(cdnow_calibration)


def test_explicit_column_names(cdnow_calibration) -> None:
    renamed = cdnow_calibration.rename(columns={"frequency_cal": "x", "recency_cal": "tx",
                                                "T_cal": "age"})  # fmt: skip
    model = clvmodels.BGNBD(columns={"frequency": "x", "recency": "tx", "T": "age"})
    assert model.fit(renamed).params_["r"] == pytest.approx(0.2426, rel=1e-3)
    with pytest.raises(InvalidDataError, match="column 'x', 'tx', 'age' not found"):
        model.expected_purchases(cdnow_calibration, 10)
    with pytest.raises(InvalidDataError, match="unknown roles"):
        clvmodels.BGNBD(columns={"freq": "x"}).fit(renamed)


def test_bad_summary_for_a_model() -> None:
    frame = pd.DataFrame({"frequency": [1, 2], "recency": [5.0, 1.0], "T": [3.0, 4.0]},
                         index=pd.Index(["u1", "u2"], name="customer_id"))  # fmt: skip
    with pytest.raises(InvalidDataError, match=r"column 'recency': 1 of 2 rows exceed.*'u1'"):
        clvmodels.BGNBD().fit(frame)
    with pytest.raises(InvalidDataError, match="NaN or infinite"):
        clvmodels.BGNBD().fit(frame.assign(T=[np.nan, 4.0]))


def test_covariance_matches_the_observed_information(cdnow_calibration) -> None:
    # Independent check: a central-difference Hessian of the log-likelihood itself.
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    arrays = model._prepare(model._read(cdnow_calibration)[0])
    theta = model.params_.to_numpy()

    def total_ll(values: np.ndarray) -> float:
        return float(model._loglik(values, arrays, False)[0].sum())

    k = len(theta)
    hessian = np.empty((k, k))
    steps = 1e-4 * theta
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * steps[i], np.eye(k)[j] * steps[j]
            hessian[i, j] = (total_ll(theta + ei + ej) - total_ll(theta + ei - ej)
                             - total_ll(theta - ei + ej) + total_ll(theta - ei - ej)) / (
                4 * steps[i] * steps[j])  # fmt: skip
    expected = np.linalg.inv(-hessian)
    np.testing.assert_allclose(model.covariance_.to_numpy(), expected, rtol=1e-3)


def test_parameter_draws_follow_the_covariance(cdnow_calibration) -> None:
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    draws = model.parameter_draws(20_000, random_state=1)
    assert draws.shape == (20_000, 4) and np.all(draws > 0)
    np.testing.assert_array_equal(draws, model.parameter_draws(20_000, random_state=1))
    theta = model.params_.to_numpy()
    cov = np.cov(np.log(draws), rowvar=False) * np.outer(theta, theta)
    expected = model.covariance_.to_numpy()
    np.testing.assert_allclose(np.diag(cov), np.diag(expected), rtol=0.05)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(cov / scale, expected / scale, atol=0.03)


# --------------------------------------------------------------- review fixes


def _with_unit(frame: pd.DataFrame, unit: str) -> pd.DataFrame:
    """The frame, claiming (in its attrs) to be measured in ``unit``."""
    relabelled = frame.copy()
    relabelled.attrs = {"clvmodels": {**frame.attrs["clvmodels"], "time_unit": unit}}
    return relabelled


def test_predictions_refuse_data_in_another_time_unit(cdnow_calibration) -> None:
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    assert model.time_unit_ == "W"
    daily = _with_unit(cdnow_calibration, "D")
    calls = [
        lambda data: model.expected_purchases(data, 52),
        lambda data: model.probability_alive(data),
        lambda data: model.probability_purchases(data, 10, [0, 1]),
        lambda data: model.expected_purchases(data, 52, interval=0.9, n_draws=20),
    ]
    for call in calls:
        with pytest.raises(InvalidDataError, match=r"time units differ.*'W'.*'D'"):
            call(daily)
        call(cdnow_calibration)  # the unit of the fit
        call(_with_unit(cdnow_calibration, "7D"))  # the same length
        call(pd.DataFrame(cdnow_calibration))  # no attrs: nothing to compare
    # a refit on the daily frame adopts its unit
    assert model.fit(daily).time_unit_ == "D"
    model.expected_purchases(daily, 10)
    # the filtered frame keeps its attrs, and its unit
    filtered = daily[daily["frequency_cal"] > 0]
    with pytest.raises(InvalidDataError, match="time units differ"):
        clvmodels.BGNBD().fit(cdnow_calibration).probability_alive(filtered)


def test_polars_predictions(cdnow_calibration) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(cdnow_calibration.reset_index())
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    np.testing.assert_allclose(
        model.expected_purchases(frame, 10), model.expected_purchases(cdnow_calibration, 10)
    )
    spend = clvmodels.GammaGamma().fit(frame)
    np.testing.assert_allclose(
        spend.expected_spend(frame, interval=0.9, n_draws=20)["estimate"],
        spend.expected_spend(cdnow_calibration),
    )
    clv = clvmodels.predictive_clv(model, spend, frame, horizon="12M", discount_rate=0.1)
    expected = clvmodels.predictive_clv(model, spend, cdnow_calibration, horizon="12M",
                                        discount_rate=0.1)  # fmt: skip
    np.testing.assert_allclose(clv, expected)
    with pytest.raises(InvalidDataError, match=re.escape("columns={'frequency': ...")):
        model.expected_purchases(frame.drop("T_cal"), 10)


def test_intervals_keep_a_multiindex(cdnow_calibration) -> None:
    frame = cdnow_calibration.iloc[:20].copy()
    frame.index = pd.MultiIndex.from_arrays(
        [frame.index, np.arange(20) % 2], names=["customer_id", "segment"]
    )
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    result = model.expected_purchases(frame, 10, interval=0.9, n_draws=50)
    assert result.index.equals(frame.index)
    assert list(result.index.names) == ["customer_id", "segment"]
    alive = model.probability_alive(frame, interval=0.9, n_draws=50)
    assert list(alive.index.names) == ["customer_id", "segment"]
    clv = clvmodels.predictive_clv(model, None, frame, horizon="1Y", discount_rate=0.1,
                                   interval=0.9, n_draws=50)  # fmt: skip
    assert clv.index.equals(frame.index)


def test_prediction_arguments_are_checked(cdnow_calibration) -> None:
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    frame = cdnow_calibration.iloc[:5]
    with pytest.raises(InvalidDataError, match=r"level=95.*between 0 and 1"):
        model.summary(level=95)
    assert np.all(np.isfinite(model.summary(level=np.float32(0.9)).to_numpy()))
    single = model.expected_purchases(frame, 10, interval=np.float32(0.9), n_draws=50)
    assert list(single.columns) == ["estimate", "lower", "upper"]
    model.expected_purchases_new_customer(10, interval=np.float64(0.8), n_draws=50)
    with pytest.raises(InvalidDataError, match="interval=90"):
        model.expected_purchases(frame, 10, interval=90)
    with pytest.raises(InvalidDataError, match="single horizon; call once per horizon"):
        model.expected_purchases(frame, [1, 2])
    with pytest.raises(InvalidDataError, match="single horizon"):
        model.probability_alive(frame, np.array([1.0, 2.0]))
    with pytest.raises(InvalidDataError, match="t='soon'"):
        model.expected_purchases(frame, "soon")
    for n_draws in (0, -5, 2.5):
        with pytest.raises(InvalidDataError, match=f"n_draws={n_draws}"):
            model.expected_purchases(frame, 10, interval=0.9, n_draws=n_draws)
    with pytest.raises(InvalidDataError, match="n_draws=0"):
        model.expected_purchases_new_customer(10, interval=0.9, n_draws=0)


def test_failed_refit_forgets_the_previous_fit(cdnow_calibration) -> None:
    model = clvmodels.BGNBD().fit(cdnow_calibration)
    bad = cdnow_calibration.assign(frequency_cal=-1)
    with pytest.raises(InvalidDataError, match="negative"):
        model.fit(bad)
    assert not hasattr(model, "params_") and not hasattr(model, "time_unit_")
    model.fit(cdnow_calibration)
    with pytest.raises(ConvergenceError):
        model.set_params(max_iter=1).fit(cdnow_calibration)
    assert not hasattr(model, "params_") and not hasattr(model, "covariance_")
    spend = clvmodels.GammaGamma().fit(cdnow_calibration)
    with pytest.raises(InvalidDataError, match="no customer has frequency > 0"):
        spend.fit(cdnow_calibration.assign(frequency_cal=0))
    assert not hasattr(spend, "params_")


def test_columns_come_from_one_period(cdnow_calibration) -> None:
    reference = clvmodels.BGNBD().fit(cdnow_calibration).params_
    # a stray plain column does not pull one role out of the calibration columns
    stray = cdnow_calibration.assign(frequency=0)
    np.testing.assert_allclose(clvmodels.BGNBD().fit(stray).params_, reference, rtol=1e-10)
    # T of another period next to calibration frequency and recency: refuse
    mixed = cdnow_calibration.drop(columns="T_cal").assign(T=100.0)
    with pytest.raises(InvalidDataError, match=r"mixing them would combine two periods"):
        clvmodels.BGNBD().fit(mixed)
    explicit = clvmodels.BGNBD(columns={"T": "T_cal"})
    np.testing.assert_allclose(explicit.fit(stray).params_, reference, rtol=1e-10)


def test_missing_columns_say_how_to_name_them(cdnow_calibration) -> None:
    with pytest.raises(InvalidDataError) as info:
        clvmodels.BGNBD().fit(cdnow_calibration[["frequency_cal", "recency_cal"]])
    message = str(info.value)
    assert "column 'T_cal' not found" in message
    assert "columns={'frequency': ..., 'recency': ..., 'T': ...}" in message
    hint = re.escape("columns={'frequency': ..., 'monetary_value': ...}")
    with pytest.raises(InvalidDataError, match=hint):
        clvmodels.GammaGamma().fit(cdnow_calibration[["frequency_cal"]])


def test_identification_warning_points_at_the_caller() -> None:
    from clvmodels import exceptions
    from clvmodels.models import _base

    assert IdentificationWarning is exceptions.IdentificationWarning
    assert _base.IdentificationWarning is exceptions.IdentificationWarning
    frame = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": [10.0] * 50})
    with pytest.warns(IdentificationWarning) as record:
        clvmodels.BGNBD().fit(frame)
    assert record[0].filename == __file__
    assert all(r.filename == __file__ for r in record)


def _save(model, path, edit):
    path = model.save(path, overwrite=True)
    text = path.read_text()
    path.write_text(edit(text))
    return path


def test_load_refuses_damaged_files(cdnow_calibration, tmp_path) -> None:
    import json

    model = clvmodels.BGNBD().fit(cdnow_calibration)
    path = tmp_path / "model.json"

    def drop(key):
        def edit(text):
            state = json.loads(text)
            del state[key]
            return json.dumps(state)

        return edit

    def setting(text):
        state = json.loads(text)
        state["settings"]["learning_rate"] = 1
        return json.dumps(state)

    def params(text):
        state = json.loads(text)
        state["params"] = {"r": 1.0}
        return json.dumps(state)

    edits = [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "[1, 2]",
        drop("params"),
        drop("covariance"),
        drop("settings"),
        setting,
        params,
    ]
    for edit in edits:
        with pytest.raises(InvalidDataError, match="not a clvmodels model file, or damaged"):
            clvmodels.load(_save(model, path, edit))
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidDataError, match="not a clvmodels model file, or damaged"):
        clvmodels.load(path)
    clvmodels.load(model.save(path, overwrite=True))  # intact


# ------------------------------------------------------------------ bounded work


def test_too_many_draws_are_refused_before_any_work(cdnow_calibration) -> None:
    from clvmodels._validation import MAX_DRAWS

    model = clvmodels.BGNBD().fit(cdnow_calibration)
    with pytest.raises(InvalidDataError, match=r"n_draws=10,000,000: at most 1,000,000.*MiB"):
        model.expected_purchases(cdnow_calibration, 39, interval=0.9, n_draws=10_000_000)
    with pytest.raises(InvalidDataError, match="n_draws"):
        model.parameter_draws(MAX_DRAWS + 1)
    assert model.parameter_draws(5).shape == (5, 4)


def test_intervals_in_small_blocks_equal_those_in_one(cdnow_calibration, monkeypatch) -> None:
    """Blocks of customers and of draws (draw_blocks) change the memory, not the result."""
    from clvmodels.models import _base

    model = clvmodels.BGNBD().fit(cdnow_calibration)
    rows = cdnow_calibration.iloc[:50]
    whole = model.expected_purchases(rows, 39, interval=0.9, n_draws=300)
    calls = []
    original = _base.draw_blocks

    def counting(evaluate, *args, **kwargs):
        def each(rows, chosen):
            calls.append((rows, chosen))
            return evaluate(rows, chosen)

        return original(each, *args, **kwargs)

    monkeypatch.setattr(_base, "draw_blocks", counting)
    monkeypatch.setattr(_base, "_HELD_ELEMENTS", 700)  # 2 customers of 300 draws at a time
    monkeypatch.setattr(_base, "_STEP_ELEMENTS", 128)  # 64 draws of 2 customers per call
    blocked = model.expected_purchases(rows, 39, interval=0.9, n_draws=300)
    pd.testing.assert_frame_equal(blocked, whole, rtol=1e-12)
    assert len(calls) == 25 * 5
    assert all(c[0].stop - c[0].start <= 2 and c[1].stop - c[1].start <= 64 for c in calls)


def test_format_bytes() -> None:
    from clvmodels._validation import format_bytes

    assert format_bytes(8 * 10_000_000 * 2357) == "176 GiB"
    assert format_bytes(1000) == "1000 bytes"
    assert format_bytes(2**20) == "1 MiB"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 1.0, 2.5, np.nan]), st.integers(0, 3),
                  st.sampled_from([-1.0, 7.0])),
        min_size=0, max_size=40,
    )
)
def test_distinct_patterns_rebuild_every_row(rows) -> None:
    # the one way identical rows are found (fits, predictions, CLV): every row is its
    # pattern, patterns are distinct, and a missing value is a value of its own
    from clvmodels.models._base import _patterns, distinct_patterns

    columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    arrays = {name: np.asarray(col, dtype=np.float64)
              for name, col in zip(("a", "b", "c"), columns, strict=True)}  # fmt: skip
    distinct, inverse = distinct_patterns(arrays)
    for name, values in arrays.items():
        np.testing.assert_array_equal(distinct[name][inverse], values)
    keys = {tuple(str(distinct[n][i]) for n in arrays) for i in range(len(distinct["a"]))}
    assert len(keys) == len(distinct["a"])
    weights = np.arange(1.0, len(rows) + 1)
    collapsed, summed = _patterns(arrays, weights)
    assert summed.sum() == pytest.approx(weights.sum())
    assert set(collapsed) == set(arrays)
    assert len(summed) == (len(keys) if len(rows) >= 2 else len(rows))

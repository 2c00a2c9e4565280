"""MBG/NBD (Batislam, Denizel & Filiztekin 2007): its published CDNOW fit, and what
sets it apart from BG/NBD. The numerics it shares with BG/NBD (``models/_betageo.py``)
are tested for both models in test_bgnbd.py."""

from __future__ import annotations

import pandas as pd
import pytest

import clvmodels


@pytest.fixture(scope="module")
def fitted(cdnow_calibration: pd.DataFrame) -> clvmodels.MBGNBD:
    return clvmodels.MBGNBD().fit(cdnow_calibration)


def test_matches_batislam_et_al_2007(fitted) -> None:
    published = {"r": 0.5248, "alpha": 6.183, "a": 0.8914, "b": 1.614}
    for name, value in published.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3)


def test_a_customer_without_repeat_purchases_can_be_inactive(fitted, cdnow_calibration) -> None:
    # unlike BG/NBD (where P(alive) = 1 at frequency 0), MBG/NBD lets a customer drop
    # out at the first purchase: P(alive | x = 0) = b / (a + b) when observed for no time
    # (BDF 2007, the P(alive) expression with x = 0, t_x = T)
    row = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    a, b = fitted.params_["a"], fitted.params_["b"]
    assert fitted.probability_alive(row).iloc[0] == pytest.approx(b / (a + b), rel=1e-12)
    bgnbd = clvmodels.BGNBD().fit(cdnow_calibration)
    assert bgnbd.probability_alive(row).iloc[0] == 1.0

"""The bundled data sets load offline with the documented columns and sizes."""

from __future__ import annotations

import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError


def test_cdnow_sample(cdnow_sample: pd.DataFrame) -> None:
    assert list(cdnow_sample.columns) == ["customer_id", "date", "quantity", "amount"]
    assert str(cdnow_sample["date"].dtype) == "datetime64[ns]"
    assert len(cdnow_sample) == 6919
    assert cdnow_sample["customer_id"].nunique() == 2357
    assert cdnow_sample["date"].min() == pd.Timestamp("1997-01-01")
    assert cdnow_sample["date"].max() == pd.Timestamp("1998-06-30")
    first = cdnow_sample.iloc[0]
    assert (first["customer_id"], first["quantity"], first["amount"]) == (4, 2, 29.33)


def test_cdnow_master(cdnow_master: pd.DataFrame, cdnow_sample: pd.DataFrame) -> None:
    assert len(cdnow_master) == 69659
    assert cdnow_master["customer_id"].nunique() == 23570
    # The sample is a subset of the master, customer for customer.
    sample_ids = set(cdnow_sample["customer_id"])
    assert sample_ids <= set(cdnow_master["customer_id"])
    in_master = cdnow_master[cdnow_master["customer_id"].isin(sample_ids)]
    assert round(in_master["amount"].sum(), 2) == round(cdnow_sample["amount"].sum(), 2)


def test_unknown_cdnow_kind() -> None:
    with pytest.raises(InvalidDataError, match="'sample' or 'master'"):
        clvmodels.datasets.load_cdnow("full")


def test_donations() -> None:
    donations = clvmodels.datasets.load_donations()
    assert list(donations.columns) == ["frequency", "recency", "n_periods", "weight"]
    assert len(donations) == 22
    assert donations["weight"].sum() == 11104
    assert (donations["n_periods"] == 6).all()
    assert (donations["recency"] >= donations["frequency"]).all()


def test_sbg_retention() -> None:
    retention = clvmodels.datasets.load_sbg_retention()
    assert list(retention.columns) == ["year", "regular_pct_alive", "highend_pct_alive"]
    assert retention["year"].tolist() == list(range(13))
    assert retention.loc[7, "regular_pct_alive"] == 24.1
    assert retention["highend_pct_alive"].is_monotonic_decreasing

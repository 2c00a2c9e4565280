"""Reference data sets of the CLV literature, bundled with the package.

Provenance of every file is in ``README.md`` beside this module.
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

import pandas as pd

from ..exceptions import InvalidDataError

__all__ = ["DATASETS", "load_cdnow", "load_donations", "load_sbg_retention"]

DATASETS: dict[str, str] = {
    "cdnow_sample": "CDNOW 1/10th sample: 2,357 customers, 6,919 purchases, 1997-01 .. 1998-06",
    "cdnow_master": "CDNOW full cohort: 23,570 customers, 69,659 purchases, 1997-01 .. 1998-06",
    "donations": "BG/BB donations: 11,104 donors, 6 yearly opportunities, 22 patterns",
    "sbg_retention": "Share of a cohort retained per year, regular and high-end segments",
}


def _open(name: str):
    return resources.files(__package__).joinpath("files", name).open("rb")


def load_cdnow(kind: Literal["sample", "master"] = "sample") -> pd.DataFrame:
    """Load the CDNOW transaction log.

    Parameters
    ----------
    kind : {"sample", "master"}, default "sample"
        The 1/10th sample of Fader, Hardie & Lee (2005) (2,357 customers) or the full
        cohort (23,570 customers).

    Returns
    -------
    pandas.DataFrame
        One row per record with ``customer_id`` (int64, the master id, so sample and
        master can be joined), ``date`` (datetime64[ns]), ``quantity`` (number of CDs,
        int64) and ``amount`` (dollar value, float64).

    Examples
    --------
    >>> from clvmodels.datasets import load_cdnow
    >>> tx = load_cdnow()
    >>> len(tx), tx["customer_id"].nunique()
    (6919, 2357)
    """
    if kind == "sample":
        file, header = "CDNOW_sample.txt.gz", None
        names = ["customer_id", "sample_id", "date", "quantity", "amount"]
    elif kind == "master":
        file, names = "CDNOW_master.txt.gz", ["customer_id", "date", "quantity", "amount"]
        header = 0
    else:
        raise InvalidDataError(f"load_cdnow(kind={kind!r}): use 'sample' or 'master'.")
    with _open(file) as handle:
        frame = pd.read_csv(
            handle, compression="gzip", sep=r"\s+", header=header, names=names,
            dtype={"customer_id": "int64", "date": "str", "quantity": "int64",
                   "amount": "float64", "sample_id": "int64"},
        )  # fmt: skip
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d").astype("datetime64[ns]")
    return frame[["customer_id", "date", "quantity", "amount"]]


def load_donations() -> pd.DataFrame:
    """Load the BG/BB donations data of Fader, Hardie & Shang (2010).

    Returns
    -------
    pandas.DataFrame
        22 patterns with ``frequency`` (repeat donations in 1996-2001), ``recency``
        (year index 1..6 of the last one, 0 if none), ``n_periods`` (6) and ``weight``
        (number of donors with that pattern, 11,104 in all): already in the compressed
        form that the models accept.

    Examples
    --------
    >>> from clvmodels.datasets import load_donations
    >>> int(load_donations()["weight"].sum())
    11104
    """
    with _open("donations.csv") as handle:
        frame = pd.read_csv(handle)
    frame = frame.rename(columns={"periods": "n_periods", "weights": "weight"})
    frame.index.name = "pattern"
    return frame.astype("int64")


def load_sbg_retention() -> pd.DataFrame:
    """Load the retention curves of Fader & Hardie (2007).

    Returns
    -------
    pandas.DataFrame
        ``year`` 0..12 and the percent of the initial cohort still active,
        ``regular_pct_alive`` and ``highend_pct_alive``. The paper fits years 1..7.

    Examples
    --------
    >>> from clvmodels.datasets import load_sbg_retention
    >>> load_sbg_retention().loc[1, "regular_pct_alive"]
    np.float64(63.1)
    """
    with _open("sbg_retention.csv") as handle:
        return pd.read_csv(handle)

"""Package-level contract: light import, lazy public API, version."""

from __future__ import annotations

import subprocess
import sys

import pytest

import clvmodels

HEAVY = ["pymc", "pytensor", "arviz", "matplotlib", "duckdb", "sklearn", "pyspark"]


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, clvmodels\n"
        "clvmodels.summarize, clvmodels.compress, clvmodels.datasets, clvmodels.simulate\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bare_import_loads_no_pandas() -> None:
    code = "import sys, clvmodels; print('pandas' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_public_names_resolve() -> None:
    for name in clvmodels.__all__:
        assert getattr(clvmodels, name) is not None
    assert set(clvmodels.__all__) <= set(dir(clvmodels))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        clvmodels.nope


def test_version() -> None:
    assert clvmodels.__version__.count(".") >= 2

"""Package-level contract: light import, lazy public API, layering, version."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# the layers above clvmodels.data (docs/architecture.md): the data layer imports none
ABOVE_DATA = ("models", "bayes", "clv", "scoring", "historical", "evaluation", "plotting",
              "experiments", "cli")  # fmt: skip


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of the modules a file imports (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_data_layer_imports_no_layer_above_it() -> None:
    data = Path(clvmodels.__file__).parent / "data"
    above = tuple(f"clvmodels.{name}" for name in ABOVE_DATA)
    offending = {
        path.name: sorted(n for n in _imported_modules(path, "clvmodels.data")
                          if n in above or n.startswith(tuple(f"{a}." for a in above)))
        for path in sorted(data.glob("*.py"))
    }  # fmt: skip
    assert {name: found for name, found in offending.items() if found} == {}


def test_version() -> None:
    assert clvmodels.__version__.count(".") >= 2

"""The data layer's import graph: modules only import those below them, so no cycles.

Imports inside functions count too (a lazy import is still a dependency). The order is
the one docs/architecture.md describes: time units and date rules, then the summary
semantics, the SQL engines' shared part, the engines, the reader, and the public API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import clvmodels

DATA = Path(clvmodels.__file__).parent / "data"

# module -> its layer; a module may import only modules of a lower layer
LAYERS = {
    "timeunits": 0, "dates": 0,
    "semantics": 1,
    "_sql": 2,
    "duckdb_engine": 3, "spark_engine": 3,
    "engines": 4,
    "reader": 5,
    "summary": 6, "opportunities": 6,
    "__init__": 7,
}  # fmt: skip
# what the data layer may use from the rest of clvmodels: the base modules only
BASE = {"clvmodels.exceptions", "clvmodels._validation"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by a file of clvmodels.data (also in functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
                continue
            base = "clvmodels.data".rsplit(".", node.level - 1)[0]
            module = ".".join(part for part in (base, node.module) if part)
            # `from . import x` imports the submodule x
            if node.module is None:
                names.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                names.add(module)
    return names


def _graph() -> dict[str, set[str]]:
    return {path.stem: _imports(path) for path in sorted(DATA.glob("*.py"))}


def test_every_data_module_has_a_layer() -> None:
    assert set(_graph()) == set(LAYERS)


def test_data_modules_import_only_lower_layers() -> None:
    upward = {}
    for module, imported in _graph().items():
        bad = sorted(
            name for name in imported
            if name.startswith("clvmodels.data.")
            and LAYERS[name.removeprefix("clvmodels.data.").split(".")[0]] >= LAYERS[module]
            and module != "__init__"
        )  # fmt: skip
        if bad:
            upward[module] = bad
    assert upward == {}


def test_the_data_layer_uses_only_the_base_of_the_package() -> None:
    outside = {
        module: sorted(
            name for name in imported
            if name.startswith("clvmodels") and not name.startswith("clvmodels.data")
            and name not in BASE
        )
        for module, imported in _graph().items()
    }  # fmt: skip
    assert {m: names for m, names in outside.items() if names} == {}


def test_the_data_graph_has_no_cycle() -> None:
    graph = {
        module: {n.removeprefix("clvmodels.data.").split(".")[0] for n in imported
                 if n.startswith("clvmodels.data.")} - {module}
        for module, imported in _graph().items()
    }  # fmt: skip
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return [*path, node, child]
            if child not in state and (cycle := visit(child, [*path, node])):
                return cycle
        state[node] = 2
        return None

    cycles = [cycle for node in sorted(graph) if node not in state
              if (cycle := visit(node, []))]  # fmt: skip
    assert cycles == []


def test_the_checks_catch_an_upward_import(tmp_path: Path) -> None:
    # the checker itself: a lazy import inside a function is seen
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from .summary import summarize\n    from . import _sql\n")
    assert _imports(sample) == {"clvmodels.data.summary", "clvmodels.data._sql"}

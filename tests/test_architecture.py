"""The package's import graph: layers that only point down, and no cycles.

Imports inside functions count (a lazy import is still a dependency). The layers are
the ones docs/architecture.md draws, for the package and inside ``data``, ``models``
and ``bayes``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import clvmodels

PACKAGE = Path(clvmodels.__file__).parent

# top-level part of clvmodels -> its layer; a part may import only lower layers
LAYERS = {
    "_version": 0, "exceptions": 0, "registry": 0,
    "_validation": 1,
    "numerics": 2,
    "data": 3,
    "datasets": 4, "simulate": 4,
    "models": 5,
    "bayes": 6,
    "clv": 7, "historical": 7,
    "evaluation": 8, "scoring": 8, "economics": 8,
    "plotting": 9,
    "experiments": 10,
    "cli": 11,
    "__main__": 12,
    "__init__": 13,
}  # fmt: skip
# inside clvmodels.data: time units and date rules, the summary semantics, the SQL
# engines' shared part, the engines, the reader, the public API
DATA_LAYERS = {
    "timeunits": 0, "dates": 0,
    "semantics": 1,
    "_sql": 2,
    "duckdb_engine": 3, "spark_engine": 3,
    "engines": 4,
    "reader": 5,
    "summary": 6, "opportunities": 6, "customers": 6,
    "dynamic": 7,
    "__init__": 8,
}  # fmt: skip
# inside clvmodels.models: the shared base, then the model families; a model module
# never imports another model module (what two share lives in a module below them)
MODEL_LAYERS = {
    "_saved": 0, "_covariates": 0, "_base": 1, "_purchase": 2, "_curves": 2, "_betageo": 3,
    "bgnbd": 4, "mbgnbd": 4, "pnbd": 4, "bgbb": 4, "gamma_gamma": 4, "sbg": 4,
    "__init__": 5,
}  # fmt: skip
# inside clvmodels.bayes: samplers and PyMC glue, the shared model, the models
BAYES_LAYERS = {
    "_compat": 0, "_nuts": 0, "_density": 0,
    "_op": 1,
    "_samplers": 2,
    "_base": 3,
    "models": 4,
    "__init__": 5,
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """clvmodels module -> the clvmodels modules it imports (also inside functions)."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    base = node.module or ""
                else:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = ".".join(part for part in (base, node.module) if part)
                for alias in node.names:  # `from . import x` imports the module x
                    candidate = f"{base}.{alias.name}"
                    imported.add(candidate if candidate in paths else base)
        graph[module] = {name for name in imported if name in paths and name != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _part(module: str, depth: int) -> str:
    parts = module.split(".")
    return parts[depth] if len(parts) > depth else "__init__"


def _upward(graph: dict[str, set[str]], prefix: str, layers: dict[str, int]) -> list[str]:
    depth = prefix.count(".") + 1
    inside = {m: d for m, d in graph.items() if m == prefix or m.startswith(prefix + ".")}
    bad = []
    for module, imported in sorted(inside.items()):
        own = _part(module, depth)
        for name in sorted(imported):
            if not name.startswith(prefix + ".") and name != prefix:
                continue
            other = _part(name, depth)
            if other != own and layers[other] >= layers[own]:
                bad.append(f"{module} -> {name}")
    return bad


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(module, 1) for module in _graph()}
    assert parts <= set(LAYERS), parts - set(LAYERS)
    models = {_part(m, 2) for m in _graph() if m.startswith("clvmodels.models")}
    assert models == set(MODEL_LAYERS)
    bayes = {_part(m, 2) for m in _graph() if m.startswith("clvmodels.bayes")}
    assert bayes == set(BAYES_LAYERS)
    data = {_part(m, 2) for m in _graph() if m.startswith("clvmodels.data")}
    assert data == set(DATA_LAYERS)


def test_parts_of_the_package_import_only_lower_layers() -> None:
    assert _upward(_graph(), "clvmodels", LAYERS) == []


def test_data_modules_import_only_lower_layers() -> None:
    assert _upward(_graph(), "clvmodels.data", DATA_LAYERS) == []


def test_model_modules_import_only_the_shared_base() -> None:
    assert _upward(_graph(), "clvmodels.models", MODEL_LAYERS) == []


def test_bayesian_modules_import_only_lower_layers() -> None:
    assert _upward(_graph(), "clvmodels.bayes", BAYES_LAYERS) == []


def test_a_lazy_import_inside_a_function_counts(tmp_path, monkeypatch) -> None:
    package = tmp_path / "clvmodels"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "summary.py").write_text("")
    (package / "data" / "dates.py").write_text(
        "def f():\n    from .summary import summarize\n    from . import summary\n"
    )
    monkeypatch.setitem(globals(), "PACKAGE", package)
    assert _graph()["clvmodels.data.dates"] == {"clvmodels.data.summary"}
    assert _upward(_graph(), "clvmodels.data", DATA_LAYERS) == [
        "clvmodels.data.dates -> clvmodels.data.summary"
    ]


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    graph = {"clvmodels.a": {"clvmodels.b"}, "clvmodels.b": {"clvmodels.a"}}
    assert _cycles(graph) == [["clvmodels.a", "clvmodels.b"]]
    upward = {"clvmodels.data.x": {"clvmodels.models.y"}, "clvmodels.models.y": set()}
    assert _upward(upward, "clvmodels", LAYERS) == ["clvmodels.data.x -> clvmodels.models.y"]

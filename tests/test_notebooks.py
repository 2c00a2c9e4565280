"""The notebooks in ``notebooks/``: committed clean, and every one of them runs.

Each ``*.ipynb`` found there is checked as nbformat-4 JSON without outputs, then its code
cells are executed in order in one fresh namespace, in a temporary working directory,
with matplotlib's non-interactive Agg backend. There is no Jupyter dependency: the cells
are plain Python (no IPython magics or shell escapes) and carry their own ``assert``s on
key numbers, so running them checks the results and not only that nothing raises.
"""

from __future__ import annotations

import json
import re
import traceback
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

_CELL_KEYS = {
    "code": {"cell_type", "id", "metadata", "source", "outputs", "execution_count"},
    "markdown": {"cell_type", "id", "metadata", "source", "attachments"},
    "raw": {"cell_type", "id", "metadata", "source", "attachments"},
}
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _code_cells(notebook: dict[str, Any]) -> list[tuple[int, str]]:
    """(1-based position among all cells, source) of every code cell, in order."""
    return [
        (number, _source(cell))
        for number, cell in enumerate(notebook["cells"], start=1)
        if cell["cell_type"] == "code"
    ]


def test_notebooks_are_found() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert len(NOTEBOOKS) >= 2, f"expected at least 2 notebooks in {NOTEBOOK_DIR}, found {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_is_clean_nbformat4(path: Path) -> None:
    notebook = _load(path)
    assert isinstance(notebook, dict), f"{path.name}: top level is not a JSON object"
    assert set(notebook) == {"cells", "metadata", "nbformat", "nbformat_minor"}, path.name
    assert notebook["nbformat"] == 4, f"{path.name}: nbformat {notebook['nbformat']!r}"
    minor = notebook["nbformat_minor"]
    assert isinstance(minor, int) and minor >= 0, f"{path.name}: nbformat_minor {minor!r}"
    kernelspec = notebook["metadata"].get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec {kernelspec!r}"
    assert kernelspec.get("language") == "python", f"{path.name}: kernelspec {kernelspec!r}"

    cells = notebook["cells"]
    assert isinstance(cells, list) and cells, f"{path.name}: no cells"
    ids = []
    for number, cell in enumerate(cells, start=1):
        where = f"{path.name} cell {number}"
        kind = cell.get("cell_type")
        assert kind in _CELL_KEYS, f"{where}: cell_type {kind!r}"
        assert set(cell) <= _CELL_KEYS[kind], (
            f"{where}: unexpected keys {set(cell) - _CELL_KEYS[kind]}"
        )
        assert isinstance(cell.get("metadata"), dict), f"{where}: metadata must be an object"
        source = cell.get("source")
        assert isinstance(source, str) or (
            isinstance(source, list) and all(isinstance(line, str) for line in source)
        ), f"{where}: source must be a string or a list of strings"
        assert _source(cell).strip(), f"{where}: empty cell"
        if minor >= 5:
            assert _CELL_ID.match(str(cell.get("id", ""))), f"{where}: bad id {cell.get('id')!r}"
            ids.append(cell["id"])
        if kind == "code":
            assert cell.get("outputs") == [], f"{where}: outputs committed; clear them"
            assert cell.get("execution_count") is None, (
                f"{where}: execution_count {cell.get('execution_count')!r} committed; clear it"
            )
            magic = _MAGIC.search(_source(cell))
            assert magic is None, (
                f"{where}: IPython magic or shell escape {magic.group(0).strip()!r}; the "
                "notebook test runs cells as plain Python"
            )
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate cell ids"
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), (
        f"{path.name}: start with a markdown cell holding the title ('# ...')"
    )
    assert any("assert " in source for _, source in _code_cells(notebook)), (
        f"{path.name}: no code cell asserts anything, so running it checks little"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # anything a notebook writes lands here
    namespace: dict[str, Any] = {"__name__": "__main__"}
    plt.close("all")
    try:
        for number, source in _code_cells(_load(path)):
            failure = None
            try:
                exec(compile(source, f"{path.name}[cell {number}]", "exec"), namespace)
            except Exception as error:
                # Keep only the frames from the cell down, not this test's exec call.
                trace = "".join(
                    traceback.format_exception(type(error), error, error.__traceback__.tb_next)
                )
                failure = (
                    f"{path.name}, cell {number} failed with {type(error).__name__}: {error}\n"
                    f"{trace}"
                )
            if failure is not None:  # outside the except block: no chained traceback
                pytest.fail(failure, pytrace=False)
    finally:
        plt.close("all")

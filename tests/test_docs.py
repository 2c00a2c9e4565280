"""The documentation runs: every Python and shell block of README.md and docs/*.md.

Each document's code blocks are run as written, in the order they appear, twice in the
same working folder: a user who runs an example again must not meet an error the first
run did not give (an output that already exists, a folder that is in the way).

- One run of a document is one fresh Python process (this file run as a script): its
  Python blocks share one namespace, as a reader pasting them into one interpreter does,
  and its shell blocks run in between with ``bash -e -o pipefail`` (every line must
  succeed, not only the last one) with this interpreter's ``bin`` folder first on
  ``PATH``, so ``python`` and ``clvmodels`` are the ones under test.
- The working folder is a temporary copy of the repository's ``configs/`` (so
  ``clvmodels run configs/cdnow.yaml`` works); nothing else is prepared, so a block
  finds only the files the documentation itself writes.
- Blocks are not run when the markdown says so: inside ``<!-- main-command -->`` /
  ``<!-- test-command -->`` regions (they install the package and run the test suite,
  which ``.ci/run`` does itself), or after a ``<!-- not-run: reason -->`` comment (only
  blank lines between it and the block). Blocks using PySpark are not run when pyspark
  or Java is missing. Every block not run is reported as a skipped test with its reason.
- Fenced blocks in other languages (diagrams, YAML) are not code; a block in a language
  this test does not know is an error, so that no example escapes it by its fence.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUNNABLE = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
NOT_CODE = {"", "text", "yaml", "yml", "json", "toml", "csv", "html"}
REGIONS = {
    "main-command": "the main command: installs the package with pip, then runs the job "
    "(.ci/run runs it in a fresh virtual environment)",
    "test-command": "the test command: installs the package with pip, then runs the whole "
    "test suite, this test included (.ci/run runs it)",
}
TIMEOUT_SECONDS = 900  # per run of a document

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_REGION = re.compile(r"^<!--\s*(?P<close>/?)(?P<name>[\w-]+)\s*-->\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not-run:(?P<reason>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    document: str  # path relative to the repository
    line: int  # 1-based line of the first line of code (after the opening fence)
    language: str  # "python" or "bash"
    source: str
    skip: str | None = None  # why the block is not run

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line - 1}"


def parse(path: Path) -> list[Block]:
    """The Python and shell blocks of a markdown file, with the reason to skip any."""
    document = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    regions: list[str] = []
    pending: tuple[int, str] | None = None  # (line, reason) of a not-run comment
    number = 0
    while number < len(lines):
        text = lines[number]
        number += 1
        where = f"{document} line {number}"
        if (match := _NOT_RUN.match(text)) is not None:
            reason = match["reason"].strip()
            if len(reason.split()) < 3:
                raise ValueError(f"{where}: say why the block is not run (a few words)")
            pending = (number, reason)
            continue
        if (match := _REGION.match(text)) is not None and match["name"] in REGIONS:
            if match["close"]:
                if not regions or regions[-1] != match["name"]:
                    raise ValueError(f"{where}: <!-- /{match['name']} --> without its opening")
                regions.pop()
            else:
                regions.append(match["name"])
            continue
        fence = _FENCE.match(text)
        if fence is None:
            if text.strip() and pending is not None:
                raise ValueError(
                    f"{document} line {pending[0]}: a not-run comment must come right before "
                    "the block it is about (blank lines only in between)"
                )
            continue
        start = number
        closing = re.compile(rf"^ {{0,3}}{fence['fence'][0]}{{{len(fence['fence'])},}}\s*$")
        body = []
        while number < len(lines) and not closing.match(lines[number]):
            body.append(lines[number])
            number += 1
        if number == len(lines):
            raise ValueError(f"{document} line {start}: the code block is never closed")
        number += 1  # the closing fence
        info = fence["info"].lower()
        if info not in RUNNABLE:
            if info not in NOT_CODE:
                raise ValueError(
                    f"{document} line {start}: a ```{info} block; write Python as ```python "
                    f"and shell as ```bash so that tests/test_docs.py runs it, or add "
                    f"{info!r} to NOT_CODE there if it is not code"
                )
            pending = None
            continue
        skip = None
        if regions:
            skip = REGIONS[regions[-1]]
        elif pending is not None:
            skip = pending[1]
        pending = None
        blocks.append(Block(document, start + 1, RUNNABLE[info], "\n".join(body) + "\n", skip))
    if regions:
        raise ValueError(f"{document}: <!-- {regions[-1]} --> is never closed")
    if pending is not None:
        raise ValueError(f"{document} line {pending[0]}: a not-run comment before no block")
    return blocks


def _missing_spark() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return 'needs pyspark (pip install "clvmodels[spark]")'
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "needs Java 17 or newer for Spark (java not on PATH, JAVA_HOME not set)"
    return None


def collect() -> dict[str, list[Block]]:
    """Every document's blocks, those that need Spark marked when it is missing."""
    spark = _missing_spark()
    found = {}
    for path in DOCUMENTS:
        blocks = parse(path)
        if spark is not None:
            blocks = [
                Block(b.document, b.line, b.language, b.source, b.skip or spark)
                if "pyspark" in b.source
                else b
                for b in blocks
            ]
        found[path.relative_to(ROOT).as_posix()] = blocks
    return found


BLOCKS = collect()
SKIPPED = [block for blocks in BLOCKS.values() for block in blocks if block.skip]
RUN = {doc: blocks for doc, blocks in BLOCKS.items() if any(not b.skip for b in blocks)}


def test_documents_have_code() -> None:
    assert "README.md" in RUN, sorted(BLOCKS)
    counts = {doc: sum(not b.skip for b in blocks) for doc, blocks in BLOCKS.items()}
    assert counts["README.md"] >= 5, counts


def test_readme_lists_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    notebooks = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    missing = [name for name in notebooks if f"`{name}`" not in readme]
    assert not missing, f"README.md does not list the notebooks {missing}"


def test_markers_decide_what_runs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- main-command -->\n```bash\npip install .\n```\n<!-- /main-command -->\n\n"
        "<!-- not-run: needs a warehouse of our own -->\n\n```python\nconnect()\n```\n"
        "```\na diagram\n```\n````python\nx = 1\n```\ny = x\n````\n~~~sh\nls\n~~~\n",
        encoding="utf-8",
    )
    blocks = parse(page)
    assert [(b.line, b.language, b.source, b.skip) for b in blocks] == [
        (3, "bash", "pip install .\n", REGIONS["main-command"]),
        (10, "python", "connect()\n", "needs a warehouse of our own"),
        (16, "python", "x = 1\n```\ny = x\n", None),
        (21, "bash", "ls\n", None),
    ]
    for text, message in [
        ("<!-- not-run: no -->\n```python\n```\n", "say why"),
        ("<!-- not-run: a good reason -->\ntext\n```python\n```\n", "right before"),
        ("```pycon\n>>> 1\n```\n", "pycon"),
        ("```python\nx = 1\n", "never closed"),
        ("<!-- test-command -->\n```bash\n```\n", "never closed"),
    ]:
        page.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            parse(page)


@pytest.mark.parametrize("block", SKIPPED, ids=[block.name for block in SKIPPED])
def test_block_not_run(block: Block) -> None:
    """Lists what the documentation test leaves out, with the reason (pytest -ra)."""
    pytest.skip(f"{block.name} ({block.language}) not run: {block.skip}")


@pytest.mark.slow
@pytest.mark.parametrize("document", sorted(RUN))
def test_document_runs_twice(document: str, tmp_path: Path) -> None:
    blocks = [block for block in BLOCKS[document] if not block.skip]
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps([asdict(block) for block in blocks]), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "configs", work / "configs")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"  # a headless machine's backend; no window opens
    for attempt in ("first", "second"):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, __file__, str(script)],
            cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        print(f"{document}, {attempt} run: {elapsed:.1f} s\n{result.stdout}")
        if result.returncode != 0:
            pytest.fail(
                f"{document}: the {attempt} run in {work} failed (exit {result.returncode})"
                f"\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-12000:]}",
                pytrace=False,
            )


# ------------------------------------------------------------------ one run of a document


def run_blocks(blocks: list[dict[str, object]]) -> int:
    """Run the blocks in order in the current folder; 0, or 1 at the first failure."""
    import traceback
    import warnings

    # as the test suite's configuration: RuntimeWarnings of clvmodels are errors
    warnings.filterwarnings("error", category=RuntimeWarning, module="clvmodels")
    namespace: dict[str, object] = {"__name__": "__main__"}
    for data in blocks:
        block = Block(**data)  # type: ignore[arg-type]
        started = time.perf_counter()
        print(f"--- {block.name} ({block.language})", flush=True)
        if block.language == "python":
            # Padded to the block's line so that tracebacks point into the markdown file.
            code = "\n" * (block.line - 1) + block.source
            try:
                exec(compile(code, str(ROOT / block.document), "exec"), namespace)
            except BaseException as error:  # the traceback from the block down
                traceback.print_exception(error.with_traceback(error.__traceback__.tb_next))
                print(f"{block.name}: the Python block raised", file=sys.stderr)
                return 1
        else:
            status = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.source])
            if status.returncode != 0:
                print(f"{block.name}: the shell block exited {status.returncode}",
                      file=sys.stderr)  # fmt: skip
                return 1
        print(f"    {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # imports as for a script in the working folder, not tests/
    sys.exit(run_blocks(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))

"""Fixtures for the experiment tests: a headless-Chromium check of an HTML report.

``chromium`` is the path of a Chromium/Chrome binary (``$CLVMODELS_CHROMIUM``, else
``chromium``, ``chromium-browser`` or ``google-chrome`` on the PATH); tests using it are
skipped when there is none. ``browser_counts`` is a function ``browser_counts(html_path)``
that opens a copy of the page in headless Chromium and returns what the browser rendered::

    def test_report_renders(browser_counts, tmp_path):
        counts = browser_counts(tmp_path / "report.html")
        assert counts["tables_with_rows"] == 3
        assert counts["images_decoded"] == 2
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

CHROMIUM_ENV = "CLVMODELS_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_SECONDS = 60

_MARKER_ID = "clvmodels-browser-counts"
_PROBE = f"""
<script>
window.addEventListener("load", function () {{
  var tables = document.querySelectorAll("table");
  var withRows = Array.prototype.filter.call(tables, function (t) {{
    return t.querySelectorAll("tbody tr").length > 0;
  }});
  var decoded = Array.prototype.filter.call(document.images, function (img) {{
    return img.complete && img.naturalWidth > 0;
  }});
  var out = document.createElement("pre");
  out.id = "{_MARKER_ID}";
  out.textContent = JSON.stringify({{
    tables: tables.length, tables_with_rows: withRows.length,
    images: document.images.length, images_decoded: decoded.length
  }});
  document.body.appendChild(out);
}});
</script>
"""
_MARKER = re.compile(rf'<pre id="{_MARKER_ID}">(.*?)</pre>', re.DOTALL)


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None: ``$CLVMODELS_CHROMIUM`` first, then the PATH."""
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured:
        return shutil.which(configured)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def run_browser_counts(chromium: str, html_path: str | os.PathLike[str]) -> dict[str, int]:
    """Open a copy of ``html_path`` in headless Chromium and count what it rendered.

    A small script is injected into the copy (the original is not modified); after the
    load event it writes into the DOM the number of ``<table>`` elements, of those with
    at least one body row, of ``<img>`` elements and of those that decoded
    (``complete && naturalWidth > 0``). Chromium prints the DOM (``--dump-dom``) and the
    counts are read back from it.

    Returns
    -------
    dict
        ``{"tables": ..., "tables_with_rows": ..., "images": ..., "images_decoded": ...}``
    """
    page = Path(html_path).read_text(encoding="utf-8")
    if "</body>" in page:
        head, _, tail = page.rpartition("</body>")
        probed = f"{head}{_PROBE}</body>{tail}"
    else:
        probed = page + _PROBE
    with tempfile.TemporaryDirectory(prefix="clvmodels-browser-") as tmp:
        copy = Path(tmp) / "page.html"
        copy.write_text(probed, encoding="utf-8")
        profile = Path(tmp) / "profile"
        profile.mkdir()
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            "--virtual-time-budget=5000",
            copy.as_uri(),
        ]
        posix = os.name == "posix"
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=posix,  # its own process group, so helpers can be ended too
        )
        try:
            stdout, stderr = proc.communicate(timeout=BROWSER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            _end(proc, posix)
            proc.communicate()
            pytest.fail(f"headless Chromium did not finish in {BROWSER_TIMEOUT_SECONDS} s")
        except BaseException:
            _end(proc, posix)
            proc.wait()
            raise
    dom = stdout.decode("utf-8", errors="replace")
    found = _MARKER.search(dom)
    if found is None:
        error_tail = stderr.decode("utf-8", errors="replace")[-2000:]
        raise AssertionError(
            f"headless Chromium (exit code {proc.returncode}) printed no counts; "
            f"stderr ends with:\n{error_tail}"
        )
    return json.loads(html.unescape(found.group(1)))


def _end(proc: subprocess.Popen[bytes], posix: bool) -> None:
    """Kill the browser started here (its own process group on POSIX) if still running.

    Only while the browser process is not yet reaped, so its group id is still ours.
    """
    if proc.poll() is not None:
        return
    if posix:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary; skips the test when none is installed."""
    found = find_chromium()
    if found is None:
        configured = os.environ.get(CHROMIUM_ENV, "").strip()
        where = (
            f"${CHROMIUM_ENV}={configured!r} is not an executable"
            if configured
            else f"none of {', '.join(CHROMIUM_NAMES)} is on the PATH and ${CHROMIUM_ENV} "
            "is not set"
        )
        pytest.skip(f"no Chromium browser for the rendering check: {where}")
    return found


@pytest.fixture
def browser_counts(chromium: str) -> Callable[[str | os.PathLike[str]], dict[str, int]]:
    """``browser_counts(html_path)``: counts of tables and decoded images in Chromium."""

    def counts(html_path: str | os.PathLike[str]) -> dict[str, int]:
        return run_browser_counts(chromium, html_path)

    return counts

"""Fixtures for the experiment tests: a headless-Chromium check of an HTML report.

``chromium`` is the path of a Chromium/Chrome binary (``$CLVMODELS_CHROMIUM``, else
``chromium``, ``chromium-browser`` or ``google-chrome`` on the PATH); tests using it are
skipped when there is none. ``browser_counts`` is a function ``browser_counts(html_path)``
that opens a copy of the page in headless Chromium and returns what the browser rendered::

    def test_report_renders(browser_counts, tmp_path):
        counts = browser_counts(tmp_path / "report.html")
        assert counts["tables_with_rows"] == 3
        assert counts["images_decoded"] == 2

``browser_probe(html_path, screenshot="name.png")`` opens the page the same way in a
1280 x 900 window and returns the counts, how the page is laid out (``"layout"``, see
:func:`run_browser_probe`) and the path of a screenshot of the window. Screenshots are
saved in ``$CLVMODELS_SCREENSHOTS`` when it is set (e.g. to keep them as CI artifacts),
else in the test's ``tmp_path``; the end of the test log lists them.
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
from typing import Any

import pytest

CHROMIUM_ENV = "CLVMODELS_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_SECONDS = 60
SCREENSHOTS_ENV = "CLVMODELS_SCREENSHOTS"
#: the window the layout is checked in: a common laptop width
WINDOW_SIZE = (1280, 900)
COUNT_KEYS = ("tables", "tables_with_rows", "images", "images_decoded")

_MARKER_ID = "clvmodels-browser-counts"
_SCROLL_BOX = ".table-scroll"
# The layout is measured after the load event, before the marker is added (hidden, so
# that the screenshot shows the page alone). An element inside a scroll box may be as
# wide as it likes: the box clips it and scrolls; everything else must fit the window.
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
  var root = document.documentElement;
  var limit = root.clientWidth;
  function describe(el) {{
    var name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    if (typeof el.className === "string" && el.className) {{
      name += "." + el.className.trim().split(/\\s+/).join(".");
    }}
    var text = (el.textContent || el.getAttribute("alt") || "").trim().slice(0, 40);
    return name + (text ? " (" + text + ")" : "");
  }}
  var tooWide = [];
  Array.prototype.forEach.call(document.body.querySelectorAll("*"), function (el) {{
    if (el.parentElement && el.parentElement.closest("{_SCROLL_BOX}")) return;
    var box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) return;
    if (box.right > limit + 0.5 || box.left < -0.5) {{
      tooWide.push({{element: describe(el), left: Math.round(box.left),
                     right: Math.round(box.right), width: Math.round(box.width)}});
    }}
  }});
  var boxes = Array.prototype.map.call(
    document.querySelectorAll("{_SCROLL_BOX}"), function (el) {{
      return {{label: el.getAttribute("aria-label") || "", client_width: el.clientWidth,
               scroll_width: el.scrollWidth}};
    }});
  var out = document.createElement("pre");
  out.id = "{_MARKER_ID}";
  out.hidden = true;
  out.textContent = JSON.stringify({{
    tables: tables.length, tables_with_rows: withRows.length,
    images: document.images.length, images_decoded: decoded.length,
    layout: {{inner_width: window.innerWidth, client_width: limit,
              scroll_width: root.scrollWidth, too_wide: tooWide, scroll_boxes: boxes}}
  }});
  document.body.appendChild(out);
}});
</script>
"""
_MARKER = re.compile(rf'<pre id="{_MARKER_ID}"[^>]*>(.*?)</pre>', re.DOTALL)


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

    The number of ``<table>`` elements, of those with at least one body row, of
    ``<img>`` elements and of those that decoded (``complete && naturalWidth > 0``);
    see :func:`run_browser_probe`.

    Returns
    -------
    dict
        ``{"tables": ..., "tables_with_rows": ..., "images": ..., "images_decoded": ...}``
    """
    probe = run_browser_probe(chromium, html_path)
    return {key: probe[key] for key in COUNT_KEYS}


def run_browser_probe(
    chromium: str,
    html_path: str | os.PathLike[str],
    *,
    window_size: tuple[int, int] = WINDOW_SIZE,
    screenshot: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Open a copy of ``html_path`` in headless Chromium; report what it rendered.

    A small script is injected into the copy (the original is not modified); after the
    load event it measures the page and writes the result into the DOM, which Chromium
    prints (``--dump-dom``) and which is read back from it.

    Parameters
    ----------
    chromium : str
        Path of the browser.
    html_path : str or path-like
        The page.
    window_size : (int, int), default (1280, 900)
        Width and height of the browser window in CSS pixels.
    screenshot : str or path-like, optional
        Where to save a PNG of the window (the top of the page) as the browser drew it.

    Returns
    -------
    dict
        The counts of :func:`run_browser_counts` and ``"layout"``: ``inner_width`` and
        ``client_width`` of the window (the latter without a vertical scroll bar),
        ``scroll_width`` of the document, ``too_wide`` (the elements outside a
        ``.table-scroll`` box that reach past the window's edges: ``element``, ``left``,
        ``right``, ``width``) and ``scroll_boxes`` (each box's ``label``,
        ``client_width`` and ``scroll_width``).
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
            f"--window-size={window_size[0]},{window_size[1]}",
            "--dump-dom",
            "--virtual-time-budget=5000",
        ]
        if screenshot is not None:
            command.append(f"--screenshot={Path(screenshot).resolve()}")
        command.append(copy.as_uri())
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
    result = json.loads(html.unescape(found.group(1)))
    if screenshot is not None:
        shot = Path(screenshot)
        if not shot.is_file() or not shot.read_bytes().startswith(b"\x89PNG"):
            raise AssertionError(f"headless Chromium saved no screenshot at {shot}")
        result["screenshot"] = str(shot.resolve())
    return result


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


#: screenshots taken in this session, listed at the end of the test log
_SCREENSHOTS: list[str] = []


@pytest.fixture
def browser_probe(chromium: str, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``browser_probe(html_path, screenshot=None)``: counts, layout and a screenshot.

    The page is opened in a 1280 x 900 window (see :func:`run_browser_probe`);
    ``screenshot`` is a file name, saved in ``$CLVMODELS_SCREENSHOTS`` or ``tmp_path``.
    """
    configured = os.environ.get(SCREENSHOTS_ENV, "").strip()
    folder = Path(configured) if configured else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def probe(html_path: str | os.PathLike[str], screenshot: str | None = None) -> dict[str, Any]:
        target = folder / screenshot if screenshot else None
        result = run_browser_probe(chromium, html_path, screenshot=target)
        if target is not None:
            _SCREENSHOTS.append(result["screenshot"])
            print(f"screenshot at {WINDOW_SIZE[0]} x {WINDOW_SIZE[1]}: {result['screenshot']}")
        return result

    return probe


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the screenshots the browser tests took, so they can be looked at."""
    if _SCREENSHOTS:
        terminalreporter.section("report screenshots")
        for path in _SCREENSHOTS:
            terminalreporter.write_line(path)

"""Self-contained HTML report of an experiment run, rebuilt from the run directory alone.

A run writes ``RUN_DIR/manifest.json`` with a title, when it ran, the package versions,
scalar metadata, the time each step took and a list of sections; each section has an
``id``, a ``title``, plain ``text`` and the CSV tables (written by ``DataFrame.to_csv``)
and PNG plots it shows, as paths relative to ``RUN_DIR``::

    {
      "title": "cdnow: CLV experiment",
      "run_date": "2024-05-01T09:30:00+00:00",
      "versions": [["clvmodels", "0.1.0"], ["Python", "3.11.7"]],
      "metadata": {"seed": 42, "data_fingerprint": "sha256:..."},
      "timings": [{"step": "data", "seconds": 0.41}, {"step": "fit bgnbd", "seconds": 0.02}],
      "sections": [
        {"id": "data", "title": "Data", "text": "Paragraph one.\\n\\nParagraph two.",
         "tables": [{"file": "tables/data_summary.csv", "caption": "...", "max_rows": 20},
                    {"file": "tables/top.csv", "caption": "...", "sorted_by": "clv"}],
         "plots": [{"file": "plots/tracking.png", "caption": "..."}]}
      ]
    }

``run_date``, ``versions`` and ``timings`` are optional. ``versions`` and ``timings`` are
lists, not objects, because their order is what the reader sees: versions as listed,
steps in the order they ran. A table's optional ``sorted_by`` names the column its rows
are ordered by (``"descending": false`` for lowest first): the page shows that column
right after the first (id) column and marks it as the sort key.

:func:`render_report` turns it into one HTML page: inline CSS, images embedded as
``data:`` URIs, no external URL and no JavaScript, every text escaped. The page is laid
out for screens from phones to wide monitors: a table wider than the page scrolls
sideways in its own box and images shrink to the page width, so the page itself never
scrolls sideways. The output depends only on the run directory, so rebuilding it gives
the same bytes. :func:`build_report` writes the page to ``RUN_DIR/report.html``
atomically.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import json
import math
import numbers
import os
import re
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InvalidDataError

__all__ = ["DEFAULT_MAX_ROWS", "MANIFEST_NAME", "REPORT_NAME", "build_report", "render_report"]

MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.html"
DEFAULT_MAX_ROWS = 50

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONTENTS_ID = "report-contents"
_METADATA_ID = "report-metadata"
_UNNAMED_COLUMN = re.compile(r"^Unnamed: \d+(_level_\d+)?$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")

_CSS = """\
:root { --fg: #1d2329; --muted: #56616b; --line: #d5dbe1; --head: #eef2f6;
        --stripe: #f8fafb; --accent: #1f5f99; --bg: #fff; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 78rem; padding: 1.5rem 1.25rem 3rem; color: var(--fg);
       background: var(--bg); overflow-wrap: break-word;
       font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.8rem; line-height: 1.25; margin: 0 0 .6rem; }
h2 { font-size: 1.35rem; line-height: 1.3; margin: 2.2rem 0 .8rem; padding-bottom: .25rem;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
a { color: var(--accent); }
p { margin: .6rem 0; max-width: 48rem; }
nav ol { margin: .3rem 0; padding-left: 1.6rem; }
nav li { margin: .15rem 0; }
dl.run-info { display: grid; grid-template-columns: max-content minmax(0, 1fr);
              gap: .1rem 1rem; margin: 0 0 1.2rem; color: var(--muted); font-size: .95rem; }
dl.run-info dt { font-weight: 600; }
dl.run-info dd { margin: 0; }
dl.run-info .version { white-space: nowrap; }
dl.metadata { display: grid; grid-template-columns: max-content minmax(0, 1fr);
              gap: .25rem 1.2rem; margin: .5rem 0; }
dl.metadata dt { font-weight: 600; color: var(--muted); }
dl.metadata dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
dl.metadata dl { display: grid; grid-template-columns: max-content minmax(0, 1fr);
                 gap: 0 1rem; margin: 0; }
dl.metadata dl dt { font-weight: 400; }
.table-scroll { overflow-x: auto; max-width: 100%; margin: 1.2rem 0 .3rem; }
.table-scroll:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
table { border-collapse: separate; border-spacing: 0; font-size: .9rem;
        font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 .4rem;
          max-width: 48rem; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; white-space: nowrap; background: var(--bg); }
thead th { background: var(--head); border-bottom: 2px solid #a9b4bf; vertical-align: bottom;
           white-space: normal; }
tbody th { font-weight: 600; }
tbody tr:nth-child(even) > * { background: var(--stripe); }
tr > :first-child { position: sticky; left: 0; z-index: 1;
                    box-shadow: inset -1px 0 var(--line); }
th[aria-sort] { color: var(--accent); }
th[aria-sort="descending"]::after { content: " \\2193"; }
th[aria-sort="ascending"]::after { content: " \\2191"; }
.num { text-align: right; }
.note { color: var(--muted); font-size: .85rem; margin: .2rem 0 1rem; }
table.timings td:first-child { white-space: normal; }
figure { margin: 1.5rem 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .4rem; max-width: 48rem; }
@media (max-width: 40rem) {
  body { padding: 1rem .75rem 2rem; }
  dl.metadata, dl.run-info { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dl.metadata dd, dl.run-info dd { margin-bottom: .5rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  .table-scroll { overflow: visible; }
  th, td { white-space: normal; }
  tr > :first-child { position: static; box-shadow: none; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  tbody tr:nth-child(even) > *, thead th { -webkit-print-color-adjust: exact;
                                           print-color-adjust: exact; }
}
"""


# ---------------------------------------------------------------------------- public API


def render_report(run_dir: str | os.PathLike[str]) -> str:
    """Return the HTML report of a run directory as text.

    The page is self-contained: inline CSS, plots embedded as ``data:image/png`` URIs,
    no external URL and no JavaScript. It has a table of contents linking to the
    sections, the run metadata, and each section's text, tables and plots. Only the run
    directory is read and the output depends only on its contents.

    Parameters
    ----------
    run_dir : str or path-like
        Directory written by an experiment run; it holds ``manifest.json`` and the table
        (CSV) and plot (PNG) files the manifest lists, by paths relative to it.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    InvalidDataError
        If the run directory or its ``manifest.json`` is missing, the manifest is not
        valid JSON or does not follow the format, a listed file is missing, lies outside
        the run directory, or is not a readable CSV or a PNG.

    See Also
    --------
    build_report : Write the report to ``RUN_DIR/report.html``.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> import pandas as pd
    >>> from clvmodels.experiments.report import render_report
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     run = pathlib.Path(tmp)
    ...     (run / "tables").mkdir()
    ...     summary = pd.DataFrame({"customers": [2357], "repeat_rate": [0.4592]})
    ...     summary.to_csv(run / "tables" / "summary.csv", index=False)
    ...     manifest = {
    ...         "title": "Demo <run>",
    ...         "metadata": {"seed": 42},
    ...         "sections": [{"id": "data", "title": "Data", "text": "Two columns.",
    ...                       "tables": [{"file": "tables/summary.csv", "caption": "Summary"}]}],
    ...     }
    ...     _ = (run / "manifest.json").write_text(json.dumps(manifest))
    ...     page = render_report(run)
    >>> page.startswith("<!DOCTYPE html>")
    True
    >>> "<title>Demo &lt;run&gt;</title>" in page
    True
    >>> page.count("<table>"), "<td class=\\"num\\">0.4592</td>" in page
    (1, True)
    """
    run_dir = _check_run_dir(run_dir)
    manifest_path = run_dir / MANIFEST_NAME
    manifest = _load_manifest(manifest_path)
    return _render(run_dir, manifest_path, manifest)


def build_report(run_dir: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write the HTML report of a run directory to ``RUN_DIR/report.html``.

    The page (see :func:`render_report`) is built in memory first, then written to a
    temporary file in the run directory and moved over ``report.html`` with
    :func:`os.replace`, so a reader never sees a partial report and a failed build
    leaves an existing report untouched.

    Parameters
    ----------
    run_dir : str or path-like
        Directory written by an experiment run (it holds ``manifest.json``).
    overwrite : bool, default True
        Replace an existing ``report.html``; if False an existing report is an error.

    Returns
    -------
    pathlib.Path
        Path of the written ``report.html``.

    Raises
    ------
    InvalidDataError
        As :func:`render_report`.
    FileExistsError
        If ``overwrite`` is False and ``report.html`` exists.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from clvmodels.experiments.report import build_report
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     manifest = {"title": "Empty run", "metadata": {}, "sections": []}
    ...     _ = (pathlib.Path(tmp) / "manifest.json").write_text(json.dumps(manifest))
    ...     path = build_report(tmp)
    ...     print(path.name, sorted(p.name for p in pathlib.Path(tmp).iterdir()))
    ...     print("<h1>Empty run</h1>" in path.read_text(encoding="utf-8"))
    report.html ['manifest.json', 'report.html']
    True
    """
    page = render_report(run_dir)
    run_dir = Path(run_dir)
    target = run_dir / REPORT_NAME
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it.")
    _atomic_write(target, page.encode("utf-8"))
    return target


# ---------------------------------------------------------------------------- manifest


def _check_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    path = Path(run_dir)
    if not path.exists():
        raise InvalidDataError(
            f"Run directory {path} does not exist; pass the directory an experiment run "
            f"wrote (the one holding {MANIFEST_NAME})."
        )
    if not path.is_dir():
        raise InvalidDataError(
            f"Run directory {path} is not a directory; pass the directory an experiment "
            f"run wrote (the one holding {MANIFEST_NAME})."
        )
    return path


def _load_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidDataError(
            f"{path} does not exist; pass a run directory written by an experiment run, "
            "or re-run the experiment to write it."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InvalidDataError(
            f"{path} is not UTF-8 text; re-run the experiment to rewrite it."
        ) from None
    except json.JSONDecodeError as err:
        raise InvalidDataError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column "
            f"{err.colno}); fix it or re-run the experiment to rewrite it."
        ) from None
    _validate_manifest(path, manifest)
    return manifest


def _invalid(path: Path, problem: str) -> InvalidDataError:
    return InvalidDataError(
        f"{path} is not a valid run manifest: {problem}; fix it or re-run the experiment "
        "to rewrite it."
    )


def _validate_manifest(path: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict):
        raise _invalid(path, f"the top level is a JSON {_json_kind(manifest)}, not an object")
    if not isinstance(manifest.get("title"), str):
        raise _invalid(path, "'title' must be a string")
    if not isinstance(manifest.get("metadata", {}), dict):
        raise _invalid(path, "'metadata' must be an object of key/value pairs")
    if not isinstance(manifest.get("run_date", ""), str):
        raise _invalid(path, "'run_date' must be a string (ISO 8601 date and time)")
    versions = manifest.get("versions", [])
    if not isinstance(versions, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        for pair in versions
    ):
        raise _invalid(path, "'versions' must be a list of [name, version] string pairs")
    timings = manifest.get("timings", [])
    if not isinstance(timings, list) or not all(
        isinstance(t, dict) and isinstance(t.get("step"), str) and _is_number(t.get("seconds"))
        for t in timings
    ):
        raise _invalid(path, "'timings' must be a list of objects with 'step' and 'seconds'")
    sections = manifest.get("sections")
    if not isinstance(sections, list):
        raise _invalid(path, "'sections' must be a list")
    seen = {_CONTENTS_ID, _METADATA_ID}
    for i, section in enumerate(sections):
        where = f"sections[{i}]"
        if not isinstance(section, dict):
            raise _invalid(path, f"{where} must be an object")
        sid = section.get("id")
        if not isinstance(sid, str) or not sid or re.search(r"\s", sid):
            raise _invalid(path, f"{where} needs an 'id' string without spaces")
        if sid in seen:
            raise _invalid(path, f"{where} has the id {sid!r}, which is already used")
        seen.add(sid)
        where = f"section {sid!r}"
        for key in ("title", "text"):
            if not isinstance(section.get(key, ""), str):
                raise _invalid(path, f"{where} field {key!r} must be a string")
        for kind in ("tables", "plots"):
            entries = section.get(kind, [])
            if not isinstance(entries, list):
                raise _invalid(path, f"{where} field {kind!r} must be a list")
            for j, entry in enumerate(entries):
                label = f"{where} {kind}[{j}]"
                if not isinstance(entry, dict):
                    raise _invalid(path, f"{label} must be an object")
                if not isinstance(entry.get("file"), str) or not entry["file"].strip():
                    raise _invalid(path, f"{label} needs a 'file' path string")
                if not isinstance(entry.get("caption", ""), str):
                    raise _invalid(path, f"{label} field 'caption' must be a string")
                max_rows = entry.get("max_rows", DEFAULT_MAX_ROWS)
                if kind == "tables" and (
                    isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
                ):
                    raise _invalid(path, f"{label} field 'max_rows' must be a positive integer")
                if kind == "tables" and not isinstance(entry.get("sorted_by", ""), str):
                    raise _invalid(path, f"{label} field 'sorted_by' must be a column name")
                if kind == "tables" and not isinstance(entry.get("descending", True), bool):
                    raise _invalid(path, f"{label} field 'descending' must be true or false")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number" if isinstance(value, int | float) else type(value).__name__


def _listed_file(run_dir: Path, manifest_path: Path, section_id: str, kind: str, rel: str) -> Path:
    """The file a manifest entry names, checked to exist inside the run directory."""
    described = f"{kind} file {rel!r} listed in {manifest_path} (section {section_id!r})"
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(rel).drive or ".." in pure.parts:
        raise InvalidDataError(
            f"{described} is not inside the run directory; list it by a path relative to "
            f"{run_dir} without '..'."
        )
    path = run_dir.joinpath(*pure.parts)
    if not path.resolve().is_relative_to(run_dir.resolve()):
        raise InvalidDataError(
            f"{described} resolves outside the run directory (through a link); copy the "
            f"file into {run_dir} and list it there."
        )
    if not path.is_file():
        raise InvalidDataError(
            f"{described} does not exist; re-run the experiment to write it or remove the "
            "entry from the manifest."
        )
    return path


# ---------------------------------------------------------------------------- rendering


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _render(run_dir: Path, manifest_path: Path, manifest: dict[str, Any]) -> str:
    title = manifest["title"]
    sections = manifest["sections"]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="clvmodels">',
        f"<title>{_esc(title)}</title>",
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_esc(title)}</h1>",
        _render_run_info(manifest.get("run_date"), manifest.get("versions", [])),
        "</header>",
        f'<nav id="{_CONTENTS_ID}" aria-label="Contents">',
        "<h2>Contents</h2>",
        "<ol>",
        f'<li><a href="#{_METADATA_ID}">Run metadata</a></li>',
    ]
    for section in sections:
        out.append(f'<li><a href="#{_esc(section["id"])}">{_esc(_section_title(section))}</a></li>')
    out += ["</ol>", "</nav>", "<main>"]
    out.append(f'<section id="{_METADATA_ID}">')
    out.append("<h2>Run metadata</h2>")
    out.append(_render_mapping(manifest.get("metadata", {}), css_class="metadata"))
    if manifest.get("timings"):
        out.append(_render_timings(manifest["timings"]))
    out.append("</section>")
    for section in sections:
        out.append(_render_section(run_dir, manifest_path, section))
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


def _render_run_info(run_date: str | None, versions: list[list[str]]) -> str:
    """When the run was made and with which packages, right under the title."""
    if not run_date and not versions:
        return ""
    parts = ['<dl class="run-info">']
    if run_date:
        parts.append("<dt>Run date</dt>")
        parts.append(f'<dd><time datetime="{_esc(run_date)}">{_esc(_format_date(run_date))}'
                     "</time></dd>")  # fmt: skip
    if versions:
        # each "name version" stays on one line; the list wraps between packages
        shown = ", ".join(
            f'<span class="version">{_esc(name)} {_esc(version)}</span>'
            for name, version in versions
        )
        parts.append(f"<dt>Versions</dt><dd>{shown}</dd>")
    parts.append("</dl>")
    return "".join(parts)


def _format_date(text: str) -> str:
    """An ISO 8601 time as ``2024-05-01 09:30 UTC``; other text as written.

    Seconds are left out: a reader wants the day and roughly the hour. A time with an
    offset is shown in UTC, so that two runs compare at a glance.
    """
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    if len(text.strip()) == len("2024-05-01"):  # a day without a time
        return when.strftime("%Y-%m-%d")
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _format_duration(seconds: float) -> str:
    """A duration rounded for people: ``< 0.1 s``, ``2.3 s``, ``42 s``, ``3 min 5 s``."""
    if not math.isfinite(seconds):
        return ""
    if seconds < 0.05:
        return "< 0.1 s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _render_timings(timings: list[dict[str, Any]]) -> str:
    """The steps' durations in the order the steps ran (the manifest's order)."""
    parts = ['<div class="table-scroll" tabindex="0" role="region" aria-label="Timings">',
             '<table class="timings">', "<caption>Time per step, in the order the steps ran"
             "</caption>",
             '<thead><tr><th scope="col">step</th><th scope="col" class="num">time</th>'
             "</tr></thead>", "<tbody>"]  # fmt: skip
    for timing in timings:
        parts.append(
            f"<tr><td>{_esc(timing['step'])}</td>"
            f'<td class="num">{_esc(_format_duration(float(timing["seconds"])))}</td></tr>'
        )
    parts += ["</tbody>", "</table>", "</div>"]
    return "\n".join(parts)


def _section_title(section: dict[str, Any]) -> str:
    return section.get("title") or section["id"]


def _render_mapping(mapping: dict[str, Any], css_class: str | None = None) -> str:
    if not mapping:
        return '<p class="note">No metadata recorded.</p>'
    attr = f' class="{css_class}"' if css_class else ""
    parts = [f"<dl{attr}>"]
    for key, value in mapping.items():
        parts.append(f"<dt>{_esc(key)}</dt>")
        if isinstance(value, dict) and value:
            parts.append(f"<dd>{_render_mapping(value)}</dd>")
        else:
            parts.append(f"<dd>{_esc(_format_metadata(value))}</dd>")
    parts.append("</dl>")
    return "".join(parts)


def _format_metadata(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_format_metadata(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else ""
    if value is None:
        return "none"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return _format_cell(value)


def _render_section(run_dir: Path, manifest_path: Path, section: dict[str, Any]) -> str:
    sid = section["id"]
    parts = [f'<section id="{_esc(sid)}">', f"<h2>{_esc(_section_title(section))}</h2>"]
    for paragraph in _PARAGRAPH_BREAK.split(section.get("text", "").strip()):
        if paragraph.strip():
            parts.append(f"<p>{_esc(paragraph.strip())}</p>")
    for entry in section.get("tables", []):
        path = _listed_file(run_dir, manifest_path, sid, "Table", entry["file"])
        caption = entry.get("caption") or entry["file"]
        parts.append(_render_table(
            path, caption, entry.get("max_rows", DEFAULT_MAX_ROWS),
            sorted_by=entry.get("sorted_by"), descending=entry.get("descending", True),
        ))  # fmt: skip
    for entry in section.get("plots", []):
        path = _listed_file(run_dir, manifest_path, sid, "Plot", entry["file"])
        caption = entry.get("caption") or ""
        alt = caption or PurePosixPath(entry["file"]).stem.replace("_", " ")
        parts.append(_render_plot(path, caption, alt))
    parts.append("</section>")
    return "\n".join(parts)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        # Only empty cells are missing: text such as "NA" or "None" stays as written.
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidDataError(
            f"Table file {path} cannot be read as CSV ({problem}); rewrite it with "
            "DataFrame.to_csv or remove it from the manifest."
        ) from None


def _render_table(
    path: Path, caption: str, max_rows: int, sorted_by: str | None = None,
    descending: bool = True,
) -> str:  # fmt: skip
    frame = _read_table(path)
    sort_at = None
    if sorted_by:
        frame = _sorted_after_id(path, frame, sorted_by, descending)
        sort_at = 1
    n_rows = len(frame)
    shown = frame.head(max_rows)
    headers = ["" if _UNNAMED_COLUMN.match(str(c)) else str(c) for c in frame.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in frame.columns
    ]
    # A first column without a name is the index written by to_csv: label rows with it.
    row_labels = len(headers) > 1 and headers[0] == ""
    # The box, not the page, scrolls sideways when the table is wide; as a focusable
    # region it can be scrolled with the keyboard too.
    parts = [
        f'<div class="table-scroll" tabindex="0" role="region" aria-label="{_esc(caption)}">',
        "<table>", f"<caption>{_esc(caption)}</caption>",
    ]  # fmt: skip
    parts.append("<thead><tr>")
    for k, (header, is_num) in enumerate(zip(headers, numeric, strict=True)):
        cls = ' class="num"' if is_num else ""
        sort = ""
        if k == sort_at:
            sort = f' aria-sort="{"descending" if descending else "ascending"}"'
        parts.append(f'<th scope="col"{cls}{sort}>{_breakable(header)}</th>')
    parts.append("</tr></thead>")
    parts.append("<tbody>")
    for row in shown.itertuples(index=False, name=None):
        cells = []
        for k, (value, is_num) in enumerate(zip(row, numeric, strict=True)):
            cls = ' class="num"' if is_num else ""
            tag, scope = ("th", ' scope="row"') if (k == 0 and row_labels) else ("td", "")
            cells.append(f"<{tag}{scope}{cls}>{_esc(_format_cell(value))}</{tag}>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody>")
    parts.append("</table>")
    parts.append("</div>")
    if n_rows > len(shown):
        parts.append(f'<p class="note">showing {len(shown)} of {n_rows} rows</p>')
    elif n_rows == 0:
        parts.append('<p class="note">no rows</p>')
    return "\n".join(parts)


def _sorted_after_id(
    path: Path, frame: pd.DataFrame, column: str, descending: bool
) -> pd.DataFrame:
    """Rows ordered by ``column`` (missing values last), shown right after the id column.

    The first column identifies the rows (a customer id, or the index ``to_csv`` wrote),
    so the value the rows are ranked by comes next, where a reader looks first, even
    when the table is too wide for the page.
    """
    names = [str(c) for c in frame.columns]
    if column not in names or names.index(column) == 0:
        listed = ", ".join(names[1:13]) + (", ..." if len(names) > 13 else "")
        raise InvalidDataError(
            f"Table file {path} has no column {column!r} after its id column to sort by "
            f"(the columns after it: {listed}); fix 'sorted_by' in the manifest or remove it."
        )
    key = frame.columns[names.index(column)]
    ordered = frame.sort_values(key, ascending=not descending, kind="stable", na_position="last")
    rest = [c for c in frame.columns[1:] if c != key]
    return ordered[[frame.columns[0], key, *rest]]


def _breakable(header: str) -> str:
    """Escaped header text that may wrap after an underscore (``value_<wbr>mae``), so a
    table of long snake_case names narrows its header row instead of the page."""
    return "_<wbr>".join(_esc(part) for part in header.split("_"))


def _format_cell(value: Any) -> str:
    """Text of one value: integers as integers, other numbers to 4 significant digits."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return ""
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        text = f"{x:.4g}"
        if "e+" in text and abs(x) < 1e15:
            text = f"{x:.0f}"  # 123456.7 reads better as 123457 than as 1.235e+05
        return text
    return str(value)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def _render_plot(path: Path, caption: str, alt: str) -> str:
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise InvalidDataError(
            f"Plot file {path} is not a PNG image; save plots as PNG "
            "(savefig(..., format='png')) or remove it from the manifest."
        )
    size = _png_size(data)
    dims = f' width="{size[0]}" height="{size[1]}"' if size and all(size) else ""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    parts = ["<figure>", f'<img src="{src}" alt="{_esc(alt)}"{dims}>']
    if caption:
        parts.append(f"<figcaption>{_esc(caption)}</figcaption>")
    parts.append("</figure>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------- writing


def _atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to a new file next to ``target``, then move it over ``target``."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise

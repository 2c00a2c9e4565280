"""Self-contained HTML report of an experiment run, rebuilt from the run directory alone.

A run writes ``RUN_DIR/manifest.json`` with a title, scalar metadata and a list of
sections; each section has an ``id``, a ``title``, plain ``text`` and the CSV tables
(written by ``DataFrame.to_csv``) and PNG plots it shows, as paths relative to
``RUN_DIR``::

    {
      "title": "cdnow: CLV experiment",
      "metadata": {"seed": 42, "timings_seconds": {"data": 0.41, "fit bgnbd": 0.02}},
      "sections": [
        {"id": "data", "title": "Data", "text": "Paragraph one.\\n\\nParagraph two.",
         "tables": [{"file": "tables/data_summary.csv", "caption": "...", "max_rows": 20}],
         "plots": [{"file": "plots/tracking.png", "caption": "..."}]}
      ]
    }

:func:`render_report` turns it into one HTML page: inline CSS, images embedded as
``data:`` URIs, no external URL and no JavaScript, every text escaped. The output depends
only on the run directory, so rebuilding it gives the same bytes. :func:`build_report`
writes the page to ``RUN_DIR/report.html`` atomically.
"""

from __future__ import annotations

import base64
import contextlib
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
        --stripe: #f8fafb; --accent: #1f5f99; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem 1rem 3rem; color: var(--fg);
       background: #fff; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.8rem; line-height: 1.25; margin: 0 0 1.2rem; }
h2 { font-size: 1.35rem; line-height: 1.3; margin: 2.2rem 0 .8rem; padding-bottom: .25rem;
     border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
p { margin: .6rem 0; max-width: 48rem; }
nav ol { margin: .3rem 0; padding-left: 1.6rem; }
nav li { margin: .15rem 0; }
dl.metadata { display: grid; grid-template-columns: max-content minmax(0, 1fr);
              gap: .25rem 1.2rem; margin: .5rem 0; }
dl.metadata dt { font-weight: 600; color: var(--muted); }
dl.metadata dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
dl.metadata dl { display: grid; grid-template-columns: max-content minmax(0, 1fr);
                 gap: 0 1rem; margin: 0; }
dl.metadata dl dt { font-weight: 400; }
.table-scroll { overflow-x: auto; max-width: 100%; margin: 1.2rem 0 .3rem; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 .4rem; }
th, td { padding: .3rem .65rem; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; white-space: nowrap; }
thead th { background: var(--head); border-bottom: 2px solid #a9b4bf; }
tbody th { font-weight: 600; }
tbody tr:nth-child(even) { background: var(--stripe); }
.num { text-align: right; }
.note { color: var(--muted); font-size: .85rem; margin: .2rem 0 1rem; }
figure { margin: 1.5rem 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .4rem; max-width: 48rem; }
@media (max-width: 40rem) {
  body { padding: 1rem .75rem 2rem; }
  dl.metadata { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dl.metadata dd { margin-bottom: .5rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  .table-scroll { overflow: visible; }
  th, td { white-space: normal; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  tbody tr:nth-child(even), thead th { -webkit-print-color-adjust: exact;
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
    out.append("</section>")
    for section in sections:
        out.append(_render_section(run_dir, manifest_path, section))
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


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
        parts.append(_render_table(path, caption, entry.get("max_rows", DEFAULT_MAX_ROWS)))
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


def _render_table(path: Path, caption: str, max_rows: int) -> str:
    frame = _read_table(path)
    n_rows = len(frame)
    shown = frame.head(max_rows)
    headers = ["" if _UNNAMED_COLUMN.match(str(c)) else str(c) for c in frame.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in frame.columns
    ]
    # A first column without a name is the index written by to_csv: label rows with it.
    row_labels = len(headers) > 1 and headers[0] == ""
    parts = ['<div class="table-scroll">', "<table>", f"<caption>{_esc(caption)}</caption>"]
    parts.append("<thead><tr>")
    for header, is_num in zip(headers, numeric, strict=True):
        cls = ' class="num"' if is_num else ""
        parts.append(f'<th scope="col"{cls}>{_esc(header)}</th>')
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

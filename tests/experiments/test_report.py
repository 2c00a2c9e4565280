"""The HTML report of a run directory: content, escaping, self-containment, errors, writing."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clvmodels.exceptions import InvalidDataError
from clvmodels.experiments import report
from clvmodels.experiments.report import build_report, render_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL_TITLE = 'cdnow <script>alert("x")</script> & co'
VOID_TAGS = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "col", "area"}


class _Collector(HTMLParser):
    """Tags, attributes and text of a page, and whether its elements nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.nesting_errors: list[str] = []
        self.text: list[str] = []
        self.body_rows: list[int] = []  # body rows per table, in order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag == "table":
            self.body_rows.append(0)
        if tag == "tr" and "tbody" in self.stack:
            self.body_rows[-1] += 1
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.nesting_errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.starts if tag == name]


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


def _png(path: Path, width: float = 4.0) -> None:
    fig = Figure(figsize=(width, 3), dpi=50)  # Agg canvas, no pyplot state
    ax = fig.subplots()
    ax.plot([0, 1, 2, 3], [1, 3, 2, 4], marker="o")
    ax.set_title("tracking")
    fig.savefig(path, format="png")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory with three tables (one truncated) and two plots in two sections."""
    run = tmp_path / "run"
    (run / "tables").mkdir(parents=True)
    (run / "plots").mkdir()
    summary = pd.DataFrame(
        {
            "customers": [2357, 1200],
            "mean_frequency": [0.123456, 3.0],
            "total_value": [1234567.891, 1.5e-7],
            "share": [np.nan, 0.5],
            "label": ["a <b>bold</b> & co", "NA"],
        },
        index=pd.Index(["calibration", "holdout"], name=None),
    )
    summary.to_csv(run / "tables" / "data_summary.csv")  # index written as first column
    params = pd.DataFrame({"param": ["r", "alpha"], "estimate": [0.2426, 4.4136]})
    params.to_csv(run / "tables" / "params.csv", index=False)
    big = pd.DataFrame({"customer": np.arange(120), "clv": np.linspace(0.0, 99.5, 120)})
    big.to_csv(run / "tables" / "clv.csv", index=False)
    _png(run / "plots" / "tracking.png")
    _png(run / "plots" / "calibration.png", width=5.0)
    manifest = {
        "title": EVIL_TITLE,
        "metadata": {
            "clvmodels_version": "0.1.0",
            "python": "3.11.7",
            "seed": 42,
            "data_fingerprint": "sha256:abc123",
            "config_file": "config.yaml",
            "timings_seconds": {"data": 0.41, "fit bgnbd": 0.02},
            "note": "<i>not markup</i>",
        },
        "sections": [
            {
                "id": "data",
                "title": "Data & <setup>",
                "text": "First paragraph with <tags>.\n\nSecond paragraph.",
                "tables": [
                    {"file": "tables/data_summary.csv", "caption": "Summary <of> data"},
                    {"file": "tables/params.csv", "caption": "Parameters"},
                ],
                "plots": [{"file": "plots/tracking.png", "caption": "Weekly <tracking>"}],
            },
            {
                "id": "clv",
                "title": "Customer lifetime value",
                "text": "Top customers.",
                "tables": [{"file": "tables/clv.csv", "caption": "CLV", "max_rows": 20}],
                "plots": [{"file": "plots/calibration.png", "caption": "Calibration"}],
            },
        ],
    }
    write_manifest(run, manifest)
    return run


def write_manifest(run: Path, manifest: object) -> None:
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def read_manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- content


def test_tables_and_images_are_embedded(run_dir: Path) -> None:
    page = render_report(run_dir)
    doc = parse(page)
    assert doc.nesting_errors == []
    assert len(doc.tags("table")) == 3
    assert len(doc.tags("caption")) == 3
    assert doc.body_rows == [2, 2, 20]
    images = doc.tags("img")
    assert len(images) == 2
    assert len(doc.tags("figure")) == len(doc.tags("figcaption")) == 2
    for attrs, name in zip(images, ["tracking.png", "calibration.png"], strict=True):
        src = attrs["src"]
        assert src is not None and src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        assert data == (run_dir / "plots" / name).read_bytes()
        assert attrs["alt"]
    assert images[0]["alt"] == "Weekly <tracking>"  # unescaped by the parser
    assert (images[0]["width"], images[0]["height"]) == ("200", "150")


def test_contents_link_to_sections_and_metadata(run_dir: Path) -> None:
    doc = parse(render_report(run_dir))
    ids = {attrs["id"] for _, attrs in doc.starts if attrs.get("id")}
    hrefs = [attrs["href"] for attrs in doc.tags("a")]
    assert {"#data", "#clv"} <= set(hrefs)
    assert all(h is not None and h.startswith("#") and h[1:] in ids for h in hrefs)
    assert {"data", "clv"} <= ids
    text = "".join(doc.text)
    for key in ("clvmodels_version", "data_fingerprint", "sha256:abc123", "fit bgnbd", "0.41"):
        assert key in text
    assert "<i>not markup</i>" in text  # shown as text, not as an element
    assert doc.tags("i") == []


def test_sections_keep_paragraphs_and_order(run_dir: Path) -> None:
    doc = parse(render_report(run_dir))
    text = "".join(doc.text)
    assert text.index("Data & <setup>") < text.index("Customer lifetime value")
    assert "First paragraph with <tags>." in text and "Second paragraph." in text
    assert len(doc.tags("p")) >= 3
    assert doc.tags("tags") == [] and doc.tags("setup") == []


def test_cells_are_formatted_compactly(run_dir: Path) -> None:
    page = render_report(run_dir)
    doc = parse(page)
    text = "".join(doc.text)
    for shown in ("2357", "0.1235", "1234568", "1.5e-07", "0.5", "0.2426", "4.414"):
        assert shown in text
    assert "3.0" not in text and "2357.0" not in text and "nan" not in text.lower()
    assert "a <b>bold</b> & co" in text and doc.tags("b") == []
    assert "NA" in text  # only empty cells are missing values
    # The unnamed index column: an empty header, row labels as <th scope="row">.
    assert '<th scope="col"></th>' in page
    assert '<th scope="row">calibration</th>' in page


def test_truncated_table_says_how_many_rows(run_dir: Path) -> None:
    page = render_report(run_dir)
    assert "showing 20 of 120 rows" in page
    assert page.count("showing ") == 1


def test_default_row_limit_is_50(run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    del manifest["sections"][1]["tables"][0]["max_rows"]
    write_manifest(run_dir, manifest)
    page = render_report(run_dir)
    assert "showing 50 of 120 rows" in page
    assert parse(page).body_rows == [2, 2, 50]


def test_title_and_texts_are_escaped(run_dir: Path) -> None:
    page = render_report(run_dir)
    doc = parse(page)
    assert "<script" not in page.lower()
    assert doc.tags("script") == []
    escaped = "cdnow &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"
    assert f"<title>{escaped}</title>" in page
    assert f"<h1>{escaped}</h1>" in page
    assert "Summary &lt;of&gt; data" in page


def test_no_external_urls(run_dir: Path) -> None:
    page = render_report(run_dir)
    doc = parse(page)
    urls = [
        value
        for _, attrs in doc.starts
        for name, value in attrs.items()
        if name in {"src", "href", "srcset", "action", "poster"}
    ]
    assert urls
    assert all(not u.lower().startswith(("http://", "https://", "//")) for u in urls if u)
    assert "http://" not in page and "https://" not in page
    assert doc.tags("link") == [] and doc.tags("script") == []
    assert len(doc.tags("style")) == 1


def test_output_depends_only_on_the_run_directory(run_dir: Path, tmp_path: Path) -> None:
    first = render_report(run_dir)
    assert render_report(str(run_dir)) == first
    moved = shutil.copytree(run_dir, tmp_path / "elsewhere" / "copy")
    assert render_report(moved) == first


def test_empty_sections_and_metadata(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"title": "Nothing yet", "sections": []})
    doc = parse(render_report(tmp_path))
    assert doc.nesting_errors == []
    assert doc.tags("table") == [] and doc.tags("img") == []
    assert "Nothing yet" in "".join(doc.text)


# ---------------------------------------------------------------------------- run info


def test_run_date_and_versions_head_the_page(run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    manifest["run_date"] = "2024-05-01T11:30:05+02:00"
    manifest["versions"] = [["clvmodels", "0.1.0"], ["Python", "3.11.7"], ["numpy", "2.0.1"]]
    write_manifest(run_dir, manifest)
    page = render_report(run_dir)
    doc = parse(page)
    assert doc.nesting_errors == []
    header = page[page.index("<header>") : page.index("</header>")]
    # shown in UTC, without seconds; the exact time stays in the datetime attribute
    assert '<time datetime="2024-05-01T11:30:05+02:00">2024-05-01 09:30 UTC</time>' in header
    text = re.sub(r"<[^>]+>", "", header)
    assert "clvmodels 0.1.0, Python 3.11.7, numpy 2.0.1" in text
    assert page.index("</header>") < page.index('<nav id="report-contents"')


def test_without_run_date_or_versions_the_header_is_the_title(run_dir: Path) -> None:
    page = render_report(run_dir)
    assert 'class="run-info"' not in page
    assert "<time" not in page


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("2024-05-01T09:30:59+00:00", "2024-05-01 09:30 UTC"),
        ("2024-12-31T23:30:00-02:00", "2025-01-01 01:30 UTC"),
        ("2024-05-01T09:30:00", "2024-05-01 09:30"),  # no offset: as written
        ("2024-05-01", "2024-05-01"),
        ("last Tuesday", "last Tuesday"),
    ],
)
def test_run_date_is_shown_for_people(written: str, shown: str) -> None:
    assert report._format_date(written) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "< 0.1 s"),
        (0.049, "< 0.1 s"),
        (0.072, "0.1 s"),
        (2.193, "2.2 s"),
        (9.96, "10 s"),
        (38.857, "39 s"),
        (59.6, "1 min"),
        (125.2, "2 min 5 s"),
        (3600.0, "1 h"),
        (5000.0, "1 h 23 min"),
    ],
)
def test_durations_are_rounded_for_people(seconds: float, shown: str) -> None:
    assert report._format_duration(seconds) == shown


def test_timings_are_shown_in_the_order_the_steps_ran(run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    # not alphabetical: the page must keep this order
    steps = [("data", 0.41), ("fit bgnbd", 0.004), ("CLV bgnbd x gg", 12.6), ("plots", 125.2)]
    manifest["timings"] = [{"step": step, "seconds": seconds} for step, seconds in steps]
    write_manifest(run_dir, manifest)
    page = render_report(run_dir)
    timings = _table_html(page, "Time per step, in the order the steps ran")
    rows = re.findall(r'<tr><td>([^<]*)</td><td class="num">([^<]*)</td></tr>', timings)
    assert rows == [
        ("data", "0.4 s"), ("fit bgnbd", "&lt; 0.1 s"), ("CLV bgnbd x gg", "13 s"),
        ("plots", "2 min 5 s"),
    ]  # fmt: skip
    metadata = page[page.index('id="report-metadata"') : page.index('id="data"')]
    assert timings in metadata  # with the run metadata


# ---------------------------------------------------------------------------- wide tables


def _headers(table_html: str) -> list[str]:
    cells = re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", table_html)
    return [html_text(cell) for cell in cells]


def html_text(fragment: str) -> str:
    return re.sub(r"<[^>]+>", "", fragment)


def _table_html(page: str, caption: str) -> str:
    at = page.index(f"<caption>{caption}</caption>")
    return page[page.rindex("<table", 0, at) : page.index("</table>", at)]


def test_sorted_column_comes_right_after_the_id_column(tmp_path: Path) -> None:
    top = pd.DataFrame({
        "customer_id": [11, 12, 13, 14, 15],
        "bgnbd_expected_purchases": [1.0, 2.0, 3.0, 4.0, 5.0],
        "bgnbd_probability_alive": [0.5, 0.6, 0.7, 0.8, 0.9],
        "bgnbd_clv": [20.0, np.nan, 50.0, 10.0, 40.0],
        "frequency": [1, 2, 3, 4, 5],
    })  # fmt: skip
    top.to_csv(tmp_path / "top.csv", index=False)
    table = {"file": "top.csv", "caption": "Top", "max_rows": 3, "sorted_by": "bgnbd_clv"}
    write_manifest(tmp_path, {"title": "t", "sections": [{"id": "p", "tables": [table]}]})
    page = render_report(tmp_path)
    html_table = _table_html(page, "Top")
    assert _headers(html_table) == [
        "customer_id", "bgnbd_clv", "bgnbd_expected_purchases", "bgnbd_probability_alive",
        "frequency",
    ]  # fmt: skip
    assert '<th scope="col" class="num" aria-sort="descending">bgnbd_<wbr>clv</th>' in html_table
    assert html_table.count("aria-sort") == 1
    # highest first, a missing value last; the row limit keeps the top rows
    ids = re.findall(r"<tr><td class=\"num\">(\d+)</td>", html_table)
    assert ids == ["13", "15", "11"]
    assert "showing 3 of 5 rows" in page

    table["descending"] = False
    table["max_rows"] = 5
    write_manifest(tmp_path, {"title": "t", "sections": [{"id": "p", "tables": [table]}]})
    html_table = _table_html(render_report(tmp_path), "Top")
    assert 'aria-sort="ascending"' in html_table
    assert re.findall(r"<tr><td class=\"num\">(\d+)</td>", html_table) == [
        "14", "11", "15", "13", "12"
    ]  # fmt: skip


def test_sorted_by_a_missing_column_is_an_error(run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    manifest["sections"][1]["tables"][0]["sorted_by"] = "value"
    write_manifest(run_dir, manifest)
    with pytest.raises(InvalidDataError, match=r"clv\.csv has no column 'value'") as info:
        render_report(run_dir)
    assert "the columns after it: clv)" in str(info.value)
    manifest["sections"][1]["tables"][0]["sorted_by"] = "customer"  # the id column itself
    write_manifest(run_dir, manifest)
    with pytest.raises(InvalidDataError, match="after its id column"):
        render_report(run_dir)


def test_every_table_scrolls_in_its_own_box(run_dir: Path) -> None:
    page = render_report(run_dir)
    n_tables = page.count("<table")
    boxes = re.findall(r'<div class="table-scroll" tabindex="0" role="region" '
                       r'aria-label="[^"]*">\n<table', page)  # fmt: skip
    assert n_tables == 3 and len(boxes) == n_tables
    css = page[page.index("<style>") : page.index("</style>")]
    assert re.search(r"\.table-scroll \{[^}]*overflow-x: auto", css)
    assert re.search(r"figure img \{[^}]*max-width: 100%", css)


def test_long_headers_may_wrap_after_underscores(run_dir: Path) -> None:
    page = render_report(run_dir)
    # the header row of a wide table can narrow; cells of numbers never wrap
    assert '<th scope="col" class="num">mean_<wbr>frequency</th>' in page
    assert "total_<wbr>value" in page
    assert "mean_frequency" in "".join(parse(page).text)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "file",
    ["../outside.csv", "tables/../../outside.csv", "/etc/passwd", "..\\outside.csv", "C:/x.csv"],
)
def test_paths_outside_the_run_directory_are_rejected(run_dir: Path, file: str) -> None:
    (run_dir.parent / "outside.csv").write_text("a\n1\n")
    manifest = read_manifest(run_dir)
    manifest["sections"][0]["tables"][0]["file"] = file
    write_manifest(run_dir, manifest)
    with pytest.raises(InvalidDataError, match="not inside the run directory") as info:
        build_report(run_dir)
    assert repr(file) in str(info.value)
    assert not (run_dir / "report.html").exists()


def test_absolute_plot_path_is_rejected(run_dir: Path) -> None:
    manifest = read_manifest(run_dir)
    manifest["sections"][1]["plots"][0]["file"] = str(run_dir / "plots" / "calibration.png")
    write_manifest(run_dir, manifest)
    with pytest.raises(InvalidDataError, match=r"Plot file .* not inside the run directory"):
        render_report(run_dir)


def test_symlink_out_of_the_run_directory_is_rejected(run_dir: Path) -> None:
    outside = run_dir.parent / "secret.csv"
    outside.write_text("a\n1\n")
    try:
        (run_dir / "tables" / "link.csv").symlink_to(outside)
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available here")
    manifest = read_manifest(run_dir)
    manifest["sections"][0]["tables"][0]["file"] = "tables/link.csv"
    write_manifest(run_dir, manifest)
    with pytest.raises(InvalidDataError, match="outside the run directory"):
        render_report(run_dir)


def test_missing_run_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"
    with pytest.raises(InvalidDataError, match="does not exist") as info:
        render_report(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(InvalidDataError, match="does not exist"):
        build_report(missing)
    assert not missing.exists()


def test_run_directory_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(InvalidDataError, match="not a directory"):
        render_report(path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match=r"manifest\.json does not exist"):
        render_report(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"title": "x", "sections": [', "not valid JSON"),
        ("[1, 2]", "top level is a JSON list"),
        ('{"sections": []}', "'title' must be a string"),
        ('{"title": "x"}', "'sections' must be a list"),
        ('{"title": "x", "metadata": [1], "sections": []}', "'metadata' must be an object"),
        ('{"title": "x", "sections": [{"title": "no id"}]}', "needs an 'id'"),
        ('{"title": "x", "sections": [{"id": "a b"}]}', "needs an 'id'"),
        ('{"title": "x", "sections": [{"id": "a"}, {"id": "a"}]}', "already used"),
        ('{"title": "x", "sections": [{"id": "a", "tables": [{}]}]}', "needs a 'file'"),
        (
            '{"title": "x", "sections": [{"id": "a", "tables": [{"file": "t.csv", '
            '"max_rows": 0}]}]}',
            "'max_rows' must be a positive integer",
        ),
        ('{"title": "x", "run_date": 20240501, "sections": []}', "'run_date' must be a string"),
        ('{"title": "x", "versions": {"numpy": "2.0"}, "sections": []}', "'versions' must be"),
        ('{"title": "x", "versions": [["numpy"]], "sections": []}', "'versions' must be"),
        ('{"title": "x", "timings": {"data": 0.4}, "sections": []}', "'timings' must be"),
        ('{"title": "x", "timings": [{"step": "data"}], "sections": []}', "'timings' must be"),
        (
            '{"title": "x", "sections": [{"id": "a", "tables": [{"file": "t.csv", '
            '"sorted_by": 3}]}]}',
            "'sorted_by' must be a column name",
        ),
        (
            '{"title": "x", "sections": [{"id": "a", "tables": [{"file": "t.csv", '
            '"sorted_by": "clv", "descending": "yes"}]}]}',
            "'descending' must be true or false",
        ),
    ],
)
def test_invalid_manifest(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "manifest.json").write_text(content, encoding="utf-8")
    with pytest.raises(InvalidDataError, match=message) as info:
        render_report(tmp_path)
    assert "manifest.json" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "file"), [("Table", "tables/params.csv"), ("Plot", "plots/calibration.png")]
)
def test_listed_file_missing(run_dir: Path, kind: str, file: str) -> None:
    (run_dir / file).unlink()
    with pytest.raises(InvalidDataError, match=f"^{kind} file .* does not exist") as info:
        build_report(run_dir)
    message = str(info.value)
    assert repr(file) in message and "manifest" in message
    assert not (run_dir / "report.html").exists()


def test_plot_that_is_not_a_png(run_dir: Path) -> None:
    (run_dir / "plots" / "tracking.png").write_bytes(b"GIF89a not a png")
    with pytest.raises(InvalidDataError, match=r"tracking\.png is not a PNG image"):
        render_report(run_dir)


def test_table_that_is_not_a_csv(run_dir: Path) -> None:
    (run_dir / "tables" / "params.csv").write_text("")
    with pytest.raises(InvalidDataError, match=r"params\.csv cannot be read as CSV"):
        render_report(run_dir)


# ---------------------------------------------------------------------------- writing


def test_build_writes_report_atomically(run_dir: Path) -> None:
    before = set(os.listdir(run_dir))
    path = build_report(run_dir)
    assert path == run_dir / "report.html"
    assert set(os.listdir(run_dir)) == before | {"report.html"}  # no temp file left
    assert path.read_text(encoding="utf-8") == render_report(run_dir)
    first = path.read_bytes()
    assert build_report(run_dir) == path
    assert path.read_bytes() == first
    assert set(os.listdir(run_dir)) == before | {"report.html"}


def test_build_without_overwrite(run_dir: Path) -> None:
    build_report(run_dir, overwrite=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_report(run_dir, overwrite=False)


def test_failed_build_keeps_the_old_report(run_dir: Path) -> None:
    path = build_report(run_dir)
    old = path.read_bytes()
    (run_dir / "plots" / "tracking.png").unlink()
    with pytest.raises(InvalidDataError):
        build_report(run_dir)
    assert path.read_bytes() == old
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]


def test_failed_replace_removes_the_temp_file(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = build_report(run_dir)
    old = path.read_bytes()
    manifest = read_manifest(run_dir)
    manifest["title"] = "changed"
    write_manifest(run_dir, manifest)
    seen: list[str] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append(os.fspath(src))
        assert Path(src).parent == run_dir  # the temp file is next to the report
        assert Path(src).read_bytes().startswith(b"<!DOCTYPE html>")
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        build_report(run_dir)
    monkeypatch.undo()
    assert len(seen) == 1 and not Path(seen[0]).exists()
    assert path.read_bytes() == old
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]


# ---------------------------------------------------------------------------- browser


def test_report_renders_in_a_browser(run_dir: Path, browser_counts) -> None:
    path = build_report(run_dir)
    original = path.read_bytes()
    counts = browser_counts(path)
    assert counts == {"tables": 3, "tables_with_rows": 3, "images": 2, "images_decoded": 2}
    assert path.read_bytes() == original  # the probe ran on a copy


def test_browser_check_sees_a_broken_image(run_dir: Path, browser_counts, tmp_path: Path) -> None:
    page = render_report(run_dir)
    start = page.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = page[:start] + "AAAA" + page[start + 400 :]  # first image no longer decodes
    path = tmp_path / "broken.html"
    path.write_text(broken, encoding="utf-8")
    counts = browser_counts(path)
    assert counts["images"] == 2 and counts["images_decoded"] == 1


# ---------------------------------------------------------------------------- 1280 px


def _png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    return struct.unpack(">I", data[16:20])[0]


@pytest.fixture
def wide_run(tmp_path: Path) -> Path:
    """A run directory shaped like a Bayesian cdnow run, with everything that once made
    the page wider than a laptop screen: a 15-column table of long snake_case names, a
    13-column metrics table, a plot wider than the window, long unbroken strings."""
    run = tmp_path / "wide"
    (run / "tables").mkdir(parents=True)
    (run / "plots").mkdir()
    rng = np.random.default_rng(7)
    n = 40
    top = pd.DataFrame({"customer_id": np.arange(1000, 1000 + n)})
    for part in ("expected_purchases", "clv"):
        for suffix in ("", "_sd", "_lower", "_upper"):
            top[f"bgnbd_{part}{suffix}"] = rng.gamma(2.0, 300.0, n).round(4)
        if part == "expected_purchases":
            top["bgnbd_probability_alive"] = rng.uniform(0, 1, n)
    for column in ("frequency", "recency", "T", "monetary_value", "historical_clv"):
        top[column] = rng.gamma(2.0, 20.0, n)
    top.to_csv(run / "tables" / "top_customers.csv", index=False)
    metrics = pd.DataFrame(
        rng.uniform(-20, 200, (5, 12)),
        index=pd.Index(["bgnbd", "pnbd", "mbgnbd", "naive", "gradient_boosting"],
                       name="model"),
        columns=["mae", "rmse", "total_error_pct", "spearman", "top10_share", "top20_share",
                 "brier", "calibration_error", "value_mae", "value_rmse", "value_spearman",
                 "value_gini"],
    )  # fmt: skip
    metrics.to_csv(run / "tables" / "metrics.csv")
    _png(run / "plots" / "wide.png", width=36.0)  # 1800 px: wider than the window
    _png(run / "plots" / "small.png")
    manifest = {
        "title": "cdnow_bayes_with_a_rather_long_experiment_name_" + "that_does_not_break" * 4,
        "run_date": "2024-05-01T09:30:00+00:00",
        "versions": [["clvmodels", "0.1.0"], ["Python", "3.11.7"], ["numpy", "2.0.1"],
                     ["scipy", "1.14.0"], ["pandas", "2.2.2"], ["duckdb", "1.1.0"],
                     ["matplotlib", "3.9.1"], ["pymc", "5.16.2"], ["arviz", "0.19.0"]],
        "metadata": {
            "experiment": "cdnow_bayes",
            "seed": 42,
            "data_fingerprint": "sha256:" + "1f7172591bc5bab29e4fb4abcaeb6569" * 2,
            "config_file": "x" * 400,  # no place to break at all
        },
        "timings": [{"step": f"step {i} " + "y" * (60 * (i == 2)), "seconds": 1.5 * i}
                    for i in range(6)],
        "sections": [
            {"id": "holdout", "title": "Holdout evaluation", "text": "z" * 300,
             "tables": [{"file": "tables/metrics.csv", "caption": "Holdout metrics"}],
             "plots": [{"file": "plots/wide.png", "caption": "A wide plot"},
                       {"file": "plots/small.png", "caption": "A small plot"}]},
            {"id": "predictions", "title": "Predictions",
             "tables": [{"file": "tables/top_customers.csv", "max_rows": 20,
                         "caption": "Top customers by bgnbd CLV", "sorted_by": "bgnbd_clv"}]},
        ],
    }  # fmt: skip
    write_manifest(run, manifest)
    return run


def assert_fits_the_window(probe: dict) -> None:
    """No sideways scrolling of the page: only the tables' own boxes may scroll."""
    layout = probe["layout"]
    where = f"(screenshot: {probe.get('screenshot')})"
    assert layout["inner_width"] == 1280, where
    assert layout["scroll_width"] <= layout["inner_width"], where
    assert layout["scroll_width"] <= layout["client_width"], where  # not even under the bar
    assert layout["too_wide"] == [], where


def test_report_fits_a_1280px_window(wide_run: Path, browser_probe) -> None:
    path = build_report(wide_run)
    probe = browser_probe(path, screenshot="report-1280x900.png")
    assert_fits_the_window(probe)
    assert probe["images_decoded"] == probe["images"] == 2
    boxes = {box["label"]: box for box in probe["layout"]["scroll_boxes"]}
    # the widest table scrolls inside its box, which stays within the page
    top = boxes["Top customers by bgnbd CLV"]
    assert top["scroll_width"] > top["client_width"]
    assert all(box["client_width"] < 1280 for box in boxes.values())
    # the metrics table fits without scrolling once its headers wrap at underscores
    assert boxes["Holdout metrics"]["scroll_width"] <= boxes["Holdout metrics"]["client_width"]
    shot = Path(probe["screenshot"])
    assert shot.is_file() and _png_width(shot) == 1280


def test_layout_check_sees_a_page_wider_than_the_window(
    wide_run: Path, browser_probe, tmp_path: Path
) -> None:
    page = render_report(wide_run)
    # without the scroll boxes and the image limit the page would overflow
    page = page.replace('class="table-scroll"', 'class="plain"')
    page = page.replace("figure img { display: block; max-width: 100%;", "figure img {")
    path = tmp_path / "overflowing.html"
    path.write_text(page, encoding="utf-8")
    layout = browser_probe(path)["layout"]
    assert layout["scroll_width"] > layout["inner_width"]
    wide = " ".join(item["element"] for item in layout["too_wide"])
    assert "img" in wide and "table" in wide

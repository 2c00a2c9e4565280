"""The HTML report of a run directory: content, escaping, self-containment, errors, writing."""

from __future__ import annotations

import base64
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clvmodels.exceptions import InvalidDataError
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

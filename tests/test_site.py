"""The book's site: it builds without a warning, every page of _toc.yml is there, no link is broken.

The build (fixture ``built_site`` in conftest.py) uses the flags of `python3 tasks.py book`, into a
temporary directory, so these tests never touch the _build/ that a developer is looking at.
"""

import functools
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

# links that leave the site: not checked (the machine that runs the tests may be offline)
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # http:, https:, mailto:, data:, //host
# attributes that point at another file, by tag
LINK_ATTRS = {
    "a": "href",
    "link": "href",
    "area": "href",
    "img": "src",
    "script": "src",
    "source": "src",
    "iframe": "src",
    "video": "src",
    "audio": "src",
    "embed": "src",
    "track": "src",
}


class PageParser(HTMLParser):
    """Collects the link targets of a page and the anchors (id / a[name]) it defines."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []  # (tag, attribute, value)
        self.anchors = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.anchors.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.anchors.add(attrs["name"])
        attr = LINK_ATTRS.get(tag)
        if attr and attrs.get(attr) is not None:
            self.links.append((tag, attr, attrs[attr].strip()))

    handle_startendtag = handle_starttag


@functools.cache
def parse(path):
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def broken_links(html_dir):
    """Every internal href/src of every built page that points at a missing file or anchor."""
    html_dir = Path(html_dir)
    problems = []
    pages = [
        p
        for p in sorted(html_dir.rglob("*.html"))
        if p.relative_to(html_dir).parts[0] not in ("_static", "_sources")
    ]
    for page in pages:
        for tag, attr, value in parse(page).links:
            if not value or value.startswith("#") or EXTERNAL.match(value):
                continue  # same-page anchors, external URLs
            parts = urlsplit(value)
            path = unquote(parts.path)
            if path.startswith("/"):
                # an absolute path breaks as soon as the site is served from a sub-path
                # (https://OWNER.github.io/REPO/)
                problems.append(
                    f"{page.relative_to(html_dir)}: <{tag} {attr}={value!r}> is absolute"
                )
                continue
            target = (page.parent / path).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(html_dir)}: <{tag} {attr}={value!r}>"
            if not target.exists():
                problems.append(f"{where} -> missing file")
            elif parts.fragment and target.suffix == ".html":
                anchor = unquote(parts.fragment)
                if anchor not in parse(target).anchors:
                    problems.append(f"{where} -> no id {anchor!r} in {target.name}")
    return pages, problems


def test_build_succeeds(built_site):
    tail = "\n".join(built_site.log.splitlines()[-60:])
    assert built_site.returncode == 0, f"jupyter-book build -W -n failed:\n{tail}"
    assert (built_site.html / "index.html").exists()


def test_every_toc_page_is_built(built_site):
    assert built_site.returncode == 0, "the build failed: see test_build_succeeds"
    assert built_site.pages[0] == "book/intro"
    missing = [name for name in built_site.pages if not (built_site.html / f"{name}.html").exists()]
    assert not missing, f"pages listed in _toc.yml but not built: {missing}"


def test_no_broken_internal_links(built_site):
    assert built_site.returncode == 0, "the build failed: see test_build_succeeds"
    pages, problems = broken_links(built_site.html)
    assert len(pages) >= len(built_site.pages)
    assert not problems, "broken links:\n" + "\n".join(problems)


# ------------------------------------------------------------------ the checker itself


def test_checker_reports_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "index.html").write_text(
        '<a href="#top">top</a> <a href="https://example.org/x">ext</a>'
        '<a href="sub/page.html#here">ok</a> <img src="img.png">'
        '<a href="sub/">dir</a> <link href="_static/x.css?v=1">'
        '<a href="sub/page.html#nowhere">bad anchor</a> <img src="missing.png">'
        '<script src="/abs.js"></script>'
    )
    (tmp_path / "sub" / "page.html").write_text(
        '<h1 id="here">x</h1><a href="../index.html">up</a>'
    )
    (tmp_path / "sub" / "index.html").write_text("<p>dir index</p>")
    _, problems = broken_links(tmp_path)
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert "_static/x.css" in text and "missing.png" in text
    assert "'nowhere'" in text and "/abs.js" in text


@pytest.mark.parametrize(
    "value",
    ["#", "#x", "mailto:a@b.c", "https://x.org", "//cdn.x/y.js", "data:image/png;base64,AA=="],
)
def test_checker_ignores_anchors_only_and_external(tmp_path, value):
    (tmp_path / "index.html").write_text(f'<a href="{value}">x</a>')
    assert broken_links(tmp_path)[1] == []


# ------------------------------------------------------------------ citations and their entries


class CitationParser(HTMLParser):
    """Citation links (``<a href="...bibliography.html#id">text</a>``) and, on the bibliography
    page, each entry's label (``<div class="citation" id=...><span class="label">[label]``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.citations = []  # (entry id, link text)
        self.labels = {}  # entry id -> label
        self._link = self._entry = None
        self._in_label = 0
        self._text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        href = attrs.get("href") or ""
        if tag == "a" and "bibliography.html#" in href and "reference" in attrs.get("class", ""):
            self._link, self._text = href.split("#", 1)[1], []
        if tag == "div" and "citation" in (attrs.get("class") or "").split():
            self._entry = attrs.get("id")
        if tag == "span" and attrs.get("class") == "label" and self._entry:
            self._in_label, self._text = 1, []
        elif tag == "span" and self._in_label:
            self._in_label += 1

    def handle_endtag(self, tag):
        if tag == "a" and self._link:
            self.citations.append((self._link, "".join(self._text).strip()))
            self._link = None
        if tag == "span" and self._in_label:
            self._in_label -= 1
            if not self._in_label:
                self.labels[self._entry] = "".join(self._text).strip().strip("[]")
                self._entry = None

    def handle_data(self, data):
        if self._link or self._in_label:
            self._text.append(data)


def _citations(html):
    parser = CitationParser()
    parser.feed(html)
    return parser


def citation_problems(bibliography_html, pages):
    """Citations whose text is neither their entry's label nor (textual cite) its year."""
    labels = _citations(bibliography_html).labels
    problems = []
    for name, html in pages.items():
        for target, text in _citations(html).citations:
            label = labels.get(target)
            if label is None:
                problems.append(f"{name}: citation {text!r} points at no entry ({target})")
            elif text != label and not label.endswith(", " + text):
                problems.append(f"{name}: citation {text!r}, but its entry is labelled {label!r}")
    return problems


def test_citations_read_as_their_bibliography_labels(built_site):
    """Issue 14: the bibliography's labels agree with the author-year citations in the text."""
    html = built_site.html
    bibliography = (html / "book" / "bibliography.html").read_text(encoding="utf-8")
    labels = _citations(bibliography).labels
    assert len(labels) >= 25 and len(set(labels.values())) == len(labels)
    for label in labels.values():  # "Author, 2016", "Author et al., n.d.", "Short title, 2018"
        assert re.fullmatch(r".+, (\d{4}|n\.d\.)", label), label
    pages = {
        name: (html / f"{name}.html").read_text(encoding="utf-8")
        for name in built_site.pages
        if name != "book/bibliography"
    }
    assert sum(len(_citations(p).citations) for p in pages.values()) >= 40
    assert citation_problems(bibliography, pages) == []


def test_citation_checker_reports_a_mismatch():
    bibliography = (
        '<div class="citation" id="id1"><span class="label"><span>[</span>He et al., 2016'
        "<span>]</span></span></div>"
    )
    good = '<a class="reference internal" href="bibliography.html#id1">He <em>et al.</em>, 2016</a>'
    textual = '<a class="reference internal" href="bibliography.html#id1">2016</a>'
    bad = '<a class="reference internal" href="bibliography.html#id1">HZRS16</a>'
    missing = '<a class="reference internal" href="bibliography.html#id9">He, 2016</a>'
    assert citation_problems(bibliography, {"a": good + textual}) == []
    problems = citation_problems(bibliography, {"b": bad, "c": missing})
    assert len(problems) == 2 and "HZRS16" in problems[0] and "no entry" in problems[1]


def test_displayed_markdown_tables_render_as_tables(built_site):
    """Chapter 7 displays the benchmark table as Markdown (viz.benchmark_table); it must become
    an HTML table, not a paragraph of pipes (MyST-NB parsed displayed Markdown as CommonMark,
    which has no tables, until _config.yml set nb_render_markdown_format: myst)."""
    html = (built_site.html / "book" / "07_performance.html").read_text(encoding="utf-8")
    tables = re.findall(r"<table.*?</table>", html, flags=re.S)
    assert any("resnet_64x56" in t and "fastest" in t for t in tables)
    assert "| layer |" not in html

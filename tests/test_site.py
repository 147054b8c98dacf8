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

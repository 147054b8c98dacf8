"""Every page of the book opens in headless Chromium without a JavaScript error and is not blank.

The built site (fixture ``built_site``) is served over HTTP on 127.0.0.1, as a reader would get it,
and each page is loaded by Debian's Chromium with ``--dump-dom``. Two things are read:

* the DOM after the page's scripts ran (``--virtual-time-budget`` lets timers fire first): the
  page's main content must have text;
* Chromium's log on stderr (``--enable-logging=stderr``), where every uncaught exception and
  unhandled promise rejection appears as a console line starting with "Uncaught". Failed network
  requests (the fonts, MathJax and widget bundles come from CDNs the test machine may not reach)
  are not exceptions and do not count; a script that throws because of one does.

test_checker_* prove on small pages that the checker reports an injected error and a blank page.
"""

import functools
import http.server
import os
import re
import signal
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from html.parser import HTMLParser

import pytest

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",  # run the page's timers for 5 s of virtual time before the dump
    "--dump-dom",
]
PAGE_TIMEOUT = 120  # seconds of real time per page
# [pid:tid:date:INFO:CONSOLE:line] "message", source: url (line)   (also CONSOLE(line) in older builds)
CONSOLE_LINE = re.compile(r':CONSOLE[^\]]*\]\s*"(?P<message>.*)", source: (?P<source>.*)$')
MIN_TEXT = 20  # characters of visible text a page's main content must have


@pytest.fixture(scope="module")
def chromium():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip("chromium not installed: apt-get install chromium")
    return CHROMIUM


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(directory):
    """Serve `directory` on 127.0.0.1 (a free port) in a background thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _TextParser(HTMLParser):
    """Visible text of <body> and of <main> (the book theme puts a page's content in <main>)."""

    SKIP = {"script", "style", "noscript", "template", "svg"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.body, self.main = [], []
        self.has_main = False

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "meta", "link", "input", "hr", "wbr", "source"):
            return  # void elements: no end tag
        self.stack.append(tag)
        if tag == "main":
            self.has_main = True

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if "body" in self.stack and not self.SKIP.intersection(self.stack):
            self.body.append(data)
            if "main" in self.stack:
                self.main.append(data)


def visible_text(dom):
    """(text of <main> if the page has one, else of <body>), whitespace collapsed."""
    parser = _TextParser()
    parser.feed(dom)
    chunks = parser.main if parser.has_main else parser.body
    return " ".join(" ".join(chunks).split())


def load(chromium, url):
    """Load `url`; return (dom, [uncaught JavaScript errors], stderr)."""
    with tempfile.TemporaryDirectory(prefix="convlab-chromium-") as profile:
        # its own process group, so that a hung browser is killed with all its helper processes
        proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            dom, log = proc.communicate(timeout=PAGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish loading {url} within {PAGE_TIMEOUT} s")
    errors = []
    for line in log.splitlines():
        match = CONSOLE_LINE.search(line)
        if match and match["message"].startswith("Uncaught"):
            error = f"{match['message']} ({match['source']})"
            if error not in errors:  # Chromium logs each console message twice
                errors.append(error)
    return dom, errors, log


def check_page(chromium, url):
    """Problems with the page at `url`: JavaScript errors, or no text in its content."""
    dom, errors, log = load(chromium, url)
    problems = [f"{url}: JavaScript error: {e}" for e in errors]
    if "<body" not in dom:
        tail = "\n".join(log.splitlines()[-15:])
        problems.append(f"{url}: chromium returned no DOM; its log ends with:\n{tail}")
    elif len(visible_text(dom)) < MIN_TEXT:
        problems.append(f"{url}: blank page (less than {MIN_TEXT} characters of text)")
    return problems


def test_every_page_loads_without_javascript_errors(built_site, chromium):
    assert built_site.returncode == 0, "the book did not build: see tests/test_site.py"
    problems = []
    with serve(built_site.html) as base:
        pages = ["index.html"] + [f"{name}.html" for name in built_site.pages]
        for page in pages:
            problems += check_page(chromium, base + page)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the checker itself

PAGES = {
    "ok.html": "<html><body><main><p>Some text that is long enough to count.</p></main>"
    '<script src="https://cdn.invalid/unreachable.js"></script>'
    "<script>console.error('a console error is not an exception');</script></body></html>",
    "throws.html": "<html><body><main><p>Text that is long enough, then a throw.</p></main>"
    "<script>throw new Error('injected failure');</script></body></html>",
    "late.html": "<html><body><main><p>Text that is long enough, then a late rejection.</p></main>"
    "<script>addEventListener('load', () => setTimeout("
    "() => Promise.reject(new TypeError('late rejection')), 1000));</script></body></html>",
    "blank.html": "<html><body><main>   </main><script>var x = 1;</script></body></html>",
    "emptied.html": "<html><body><main><p>Text that a script removes again.</p></main><script>"
    "document.querySelector('main').textContent = '';</script></body></html>",
}


@pytest.fixture(scope="module")
def checker_pages(chromium, tmp_path_factory):
    directory = tmp_path_factory.mktemp("pages")
    for name, html in PAGES.items():
        (directory / name).write_text(html)
    with serve(directory) as base:
        yield base


def test_checker_passes_a_good_page_with_network_errors(chromium, checker_pages):
    assert check_page(chromium, checker_pages + "ok.html") == []


@pytest.mark.parametrize(
    "page, expected",
    [
        ("throws.html", "Uncaught Error: injected failure"),
        ("late.html", "Uncaught (in promise) TypeError: late rejection"),
        ("blank.html", "blank page"),
        ("emptied.html", "blank page"),
    ],
)
def test_checker_reports_errors_and_blank_pages(chromium, checker_pages, page, expected):
    problems = check_page(chromium, checker_pages + page)
    assert len(problems) == 1 and expected in problems[0], problems

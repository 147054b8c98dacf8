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


# ------------------------------------------------------------------ rendered pages, in a browser
#
# The checks above read a DOM dump. The ones below drive Chromium through chromedriver (selenium)
# at the width of a laptop screen, wait for MathJax, and ask the rendered page:
#
# * every maths element Sphinx wrote (``span.math``, ``div.math``) has been typeset by MathJax (an
#   ``mjx-container`` inside it), and no raw TeX delimiter (``\(``, ``\[``, ``$$``) is left in the
#   visible text;
# * no code cell, output or table is wider than its box (its content would need a scrollbar; the
#   theme wraps tables in a scrollable container, which is checked too);
# * every resource the page loaded came from the site itself: MathJax, fonts and scripts are
#   served from ``_static``, so the pages work offline.

CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
WIDTH, HEIGHT = 1400, 1000

PAGE_REPORT_JS = r"""
const done = arguments[arguments.length - 1];
const ready = (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise : Promise.resolve();
ready.then(() => {
  const maths = Array.from(document.querySelectorAll("main span.math, main div.math"));
  const untypeset = maths.filter(m => !m.querySelector("mjx-container"))
      .map(m => m.textContent.slice(0, 60));
  const text = document.querySelector("main") ? document.querySelector("main").innerText : "";
  const raw = ["\\(", "\\[", "$$"].filter(d => text.includes(d));
  // TeX that MathJax never saw: a "$...$" that markdown broke up (a line starting with "+"
  // became a list item), so a dollar sign or a \command is left in the prose
  const walker = document.createTreeWalker(document.querySelector("main") || document.body,
                                           NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, mjx-container, .math, .MathJax"))
      continue;
    const found = node.textContent.match(/\\[a-zA-Z]{2,}|\$/);
    if (found) rawTex.push(node.textContent.trim().slice(0, 80));
  }
  const boxes = Array.from(document.querySelectorAll(
      "main div.highlight pre, main div.output pre, main .cell_output pre, main table, " +
      "main .pst-scrollable-table-container"));
  const overflow = boxes.filter(b => b.scrollWidth > b.clientWidth + 1 && b.clientWidth > 0)
      .map(b => b.tagName + " " + b.scrollWidth + ">" + b.clientWidth + ": "
                + b.innerText.split("\n").reduce((a, l) => l.length > a.length ? l : a, "")
                  .slice(0, 100));
  const resources = performance.getEntriesByType("resource").map(r => r.name);
  done({maths: maths.length, untypeset, raw, rawTex, overflow, resources});
}).catch(e => done({error: String(e)}));
"""


@pytest.fixture(scope="module")
def driver(chromium):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (os.path.isfile(CHROMEDRIVER) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("chromedriver not installed: apt-get install chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_script_timeout(60)
    browser.set_page_load_timeout(PAGE_TIMEOUT)
    yield browser
    browser.quit()


def page_problems(driver, base, page):
    """What is wrong with one rendered page: untypeset maths, overflow, requests off the site."""
    driver.get(base + page)
    report = driver.execute_async_script(PAGE_REPORT_JS)
    if "error" in report:
        return [f"{page}: the page check threw {report['error']}"]
    problems = [f"{page}: maths not typeset: {m!r}" for m in report["untypeset"][:5]]
    problems += [f"{page}: raw TeX delimiter {d!r} in the visible text" for d in report["raw"]]
    problems += [f"{page}: TeX left in the prose: {t!r}" for t in report["rawTex"][:5]]
    problems += [f"{page}: wider than its box: {o}" for o in report["overflow"]]
    outside = [
        r for r in report["resources"] if not r.startswith(base) and not r.startswith("data:")
    ]
    problems += [f"{page}: loaded from outside the site: {r}" for r in outside]
    return problems


def test_every_page_typesets_its_maths_fits_its_boxes_and_stays_offline(built_site, driver):
    assert built_site.returncode == 0, "the book did not build: see tests/test_site.py"
    problems = []
    typeset = 0
    with serve(built_site.html) as base:
        for name in built_site.pages:
            problems += page_problems(driver, base, f"{name}.html")
        # the chapters use maths: the check must have seen some typeset
        driver.get(base + "book/01_sliding_window.html")
        typeset = driver.execute_async_script(PAGE_REPORT_JS)["maths"]
    assert typeset > 0, "no maths found on chapter 1: the check looks in the wrong place"
    assert not problems, "\n".join(problems)


RENDER_PAGES = {
    "maths.html": "<html><head><script>window.MathJax = {tex: {inlineMath: [['\\\\(', '\\\\)']]}};"
    "</script></head><body><main><p><span class='math notranslate nohighlight'>\\(x^2\\)</span>"
    "</p></main></body></html>",
    "wide.html": "<html><body><main><div class='highlight' style='width:300px'>"
    "<pre style='overflow:auto'>" + "x" * 400 + "</pre></div></main></body></html>",
    "cdn.html": "<html><body><main><p>text</p><img src='https://cdn.invalid/x.png'></main>"
    "</body></html>",
    "brokentex.html": "<html><body><main><p>so $L = \\lfloor 91 / 3 \\rfloor</p><ul><li>1 = 31$."
    "</li></ul></main></body></html>",
    "fine.html": "<html><body><main><div class='highlight'><pre>short line $x$ \\lfloor</pre></div>"
    "<p>prose <code>$HOME</code></p></main></body></html>",
}


@pytest.fixture(scope="module")
def render_pages(tmp_path_factory):
    directory = tmp_path_factory.mktemp("render")
    for name, html in RENDER_PAGES.items():
        (directory / name).write_text(html)
    with serve(directory) as base:
        yield base


@pytest.mark.parametrize(
    "page, expected",
    [
        ("maths.html", "maths not typeset"),  # no MathJax on that page: the maths stays raw
        ("wide.html", "wider than its box"),
        ("cdn.html", "loaded from outside the site"),
        ("brokentex.html", "TeX left in the prose"),
    ],
)
def test_render_checker_reports_problems(driver, render_pages, page, expected):
    problems = page_problems(driver, render_pages, page)
    assert any(expected in p for p in problems), problems


def test_render_checker_passes_a_fine_page(driver, render_pages):
    assert page_problems(driver, render_pages, "fine.html") == []


ICONS_JS = r"""
const done = arguments[arguments.length - 1];
// the theme's fontawesome.js turns <i class="fa fa-play"> into inline SVG icons after load
setTimeout(() => {
  const buttons = Array.from(document.querySelectorAll("main .anim-buttons button"));
  done(buttons.map(b => {
    const svg = b.querySelector("svg");
    return [b.getAttribute("title"), svg ? Math.round(svg.getBoundingClientRect().width) : 0];
  }));
}, 1000);
"""


def test_animation_buttons_show_their_icons_offline(built_site, driver):
    """matplotlib's animations draw their buttons with Font Awesome icons, which they link from a
    CDN; book/_ext/offline_assets.py drops that link and the theme's own Font Awesome (served
    from _static) draws them. Every button of every animation must show an icon."""
    assert built_site.returncode == 0, "the book did not build: see tests/test_site.py"
    with serve(built_site.html) as base:
        for page in ("book/01_sliding_window.html", "book/04_transposed.html"):
            driver.get(base + page)
            buttons = driver.execute_async_script(ICONS_JS)
            assert len(buttons) >= 9, f"{page}: no animation buttons found"
            blank = [title for title, width in buttons if width < 4]
            assert blank == [], f"{page}: buttons without an icon: {blank}"

"""The explorers embedded in the chapters work on the built pages, opened from disk offline.

Chapter 1 embeds the in-browser explorer (book/_static/explorer, tested in depth on its own page
by tests/test_explorer.py) in one dimension, chapter 4 in transposed mode; both set their first
state with data-* attributes. Each page is loaded in headless Chromium with the network off: the
explorer must have drawn itself, show the output size convlab computes for the state its data-*
attributes ask for (and the matching convlab call), answer a hover as on its own page, and the
page must log no error and ask for nothing outside the site.
"""

import cdp_browser
import pytest

from convlab.shapes import conv_output_size, conv_transpose_output_size

EMBEDDED = {
    # page: (data-* attributes the chapter sets, expected output size, call, call arguments)
    "book/01_sliding_window.html": (
        {"dims": "1", "size": "7", "kernel": "3"},
        f"{conv_output_size(7, 3)}",
        "conv1d(",
        [],
    ),
    "book/04_transposed.html": (
        {
            "mode": "transposed",
            "size": "3",
            "kernel": "3",
            "stride": "2",
            "padding": "1",
            "outputPadding": "1",
        },
        ",".join(
            [str(conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1))] * 2
        ),
        "conv_transpose2d(",
        ["stride=2", "padding=1", "output_padding=1"],
    ),
}

STATE_JS = """
(() => {
  const roots = document.querySelectorAll('main .convlab-explorer');
  const root = roots[0];
  const q = (s) => root.querySelector(s);
  return {
    count: roots.length,
    drawn: !!q('.cx-svg'),
    data: Object.assign({}, root.dataset),
    outSize: q('[data-role="out-size"]') && q('[data-role="out-size"]').getAttribute('data-value'),
    code: q('[data-role="code"]') ? q('[data-role="code"]').textContent : '',
    error: q('[data-role="error"]') ? !q('[data-role="error"]').hidden : null,
  };
})()
"""

HOVER_JS = """
(() => {
  const root = document.querySelector('main .convlab-explorer');
  const cell = root.querySelector('[data-o]');
  cell.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
  return root.querySelectorAll('[data-i].cx-lit').length;
})()
"""


@pytest.fixture(scope="module")
def browser():
    if not cdp_browser.available():
        pytest.skip(f"chromium not installed at {cdp_browser.CHROMIUM}: apt-get install chromium")
    with cdp_browser.Browser() as b:
        yield b


@pytest.mark.parametrize("page_name", sorted(EMBEDDED))
def test_embedded_explorer_starts_in_the_chapter_state(built_site, browser, page_name):
    assert built_site.returncode == 0, "the book did not build: see tests/test_site.py"
    attrs, out_size, call, arguments = EMBEDDED[page_name]
    page = browser.new_page(offline=True)
    page.goto((built_site.html / page_name).as_uri())
    state = page.evaluate(STATE_JS)
    assert state["count"] == 1, f"{page_name}: expected one embedded explorer"
    assert state["drawn"], f"{page_name}: the explorer did not draw itself"
    assert attrs.items() <= state["data"].items()
    assert state["error"] is False
    assert state["outSize"] == out_size
    assert call in state["code"] and all(a in state["code"] for a in arguments), state["code"]
    assert page.evaluate(HOVER_JS) > 0, "hovering an output lit no input"
    remote = [u for u in page.requests if not u.startswith(("file:", "data:"))]
    assert remote == []
    assert any(u.endswith("explorer.js") for u in page.requests)
    assert page.errors == []

"""Sphinx extension: write each <script> of a page once.

Sphinx 7 records an inline script added with ``app.add_js_file(None, body=...)`` after the HTML
builder started twice, once with filename ``None`` and once with ``''``, and its de-duplication
tells the two apart. sphinx-thebe (loaded by every Jupyter Book 1.x) adds
``const THEBE_JS_URL = ...`` that way, so every page declared the constant twice and the browser
threw "SyntaxError: Identifier 'THEBE_JS_URL' has already been declared" (found by
tests/test_browser.py). This handler drops the second copy of any script before the page is
written.
"""


def _key(script):
    filename = getattr(script, "filename", script)
    attributes = getattr(script, "attributes", {})
    return (filename or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    # late (priority 900 > default 500): after every extension has added its scripts to the page
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

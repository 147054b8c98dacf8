"""Sphinx extension: pages load nothing from a CDN.

matplotlib's ``Animation.to_jshtml()`` (the chapters' animations) writes
``<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/...">`` into
its HTML for the icons of its buttons. Offline that request fails and the buttons are blank. The
book theme already ships Font Awesome (``_static/scripts/fontawesome.js``, which turns
``<i class="fa fa-play">`` into icons), so this handler drops the CDN link from every page body
before it is written. tests/test_browser.py fails on any request that leaves the site.
"""

import re

CDN_STYLESHEET = re.compile(
    r"<link\s+rel=\"stylesheet\"\s+href=\"https://maxcdn\.bootstrapcdn\.com/font-awesome/[^\"]*\"\s*/?>",
    re.IGNORECASE,
)


def drop_cdn_links(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if isinstance(body, str) and "maxcdn.bootstrapcdn.com" in body:
        context["body"] = CDN_STYLESHEET.sub("", body)


def setup(app):
    app.connect("html-page-context", drop_cdn_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The API reference page lists every public name of convlab, convlab.grad, convlab.nn,
convlab.optim and convlab.viz.

book/api.md documents each name with an ``autofunction``/``autoclass`` directive (the build, with
-W, fails on a name that does not import or a docstring that does not parse: tests/test_site.py).
This test fails when a module exports a name the page forgets, or the page names one that is no
longer exported.
"""

import inspect
import re
from pathlib import Path

import convlab
import convlab.grad
import convlab.nn
import convlab.optim
import convlab.viz

PAGE = Path(__file__).resolve().parents[1] / "book" / "api.md"
MODULES = {
    "convlab": convlab,
    "convlab.grad": convlab.grad,
    "convlab.nn": convlab.nn,
    "convlab.optim": convlab.optim,
    "convlab.viz": convlab.viz,
}


def documented():
    """{module name: [names]} from the page's currentmodule / auto* directives."""
    names, module = {}, None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\.\. currentmodule:: (\S+)", line)
        if match:
            module = match[1]
        match = re.match(r"\.\. (?:auto(?:function|class)|py:data):: (\S+)", line)
        if match:
            names.setdefault(module, []).append(match[1])
    return names


def test_api_page_lists_every_public_name():
    page = documented()
    for name, module in MODULES.items():
        public = [n for n in module.__all__ if not inspect.ismodule(getattr(module, n))]
        assert sorted(page.get(name, [])) == sorted(public), name

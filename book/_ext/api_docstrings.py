"""Sphinx extension: numpydoc parameter types such as ``shape (N, C_out, *out)`` render as text.

In reStructuredText a ``*`` that starts a word opens emphasis, so napoleon's rendering of
``grad_output : array_like, shape (N, C_out, *out)`` warns "Inline emphasis start-string without
end-string", which the -W build turns into an error. The docstrings read naturally in a terminal
as they are; this handler escapes such stars in parameter-type lines for the API page only.
"""

import re

PARAM_LINE = re.compile(r"^\s*[\w, *]+ : .*$")
STAR = re.compile(r"(?<=[\s(,])\*(?=\w)")


def escape_stars(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if PARAM_LINE.match(line):
            lines[i] = STAR.sub(r"\\*", line)


def setup(app):
    # before napoleon (priority 500) turns the numpydoc sections into field lists
    app.connect("autodoc-process-docstring", escape_stars, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Numbers in the book's prose come from cells: a scan of every markdown cell and page.

The brief's rule: a number in the prose that a cell computes or measures is inserted with MyST-NB's
``glue`` (``{glue:text}`name:.2f` ms`` in the text, ``glue("name", value, display=False)`` in the
cell), never typed, so that the page cannot drift from the outputs when a kernel changes. This test
reads every markdown cell of every chapter notebook (and every Markdown page of the book) and fails
on a *number followed by a measured unit*: a time (ns, µs, us, ms), a rate (GFLOP/s, GB/s), a size
(KiB, MiB, GiB, KB, MB, GB), a ratio (``4x``, ``4×``, ``4.0 times``) or a percentage, unless

* the number is glued (the ``{glue:...}`` role is removed before the scan, so what remains of a
  glued sentence is only its unit), or
* the exact phrase is in ``QUOTED`` below: a figure quoted from a paper or from one of the source
  articles, with its source. The list is meant to stay short.

Inline code (```...```) is not prose and is skipped; maths is scanned (``10.5\\%`` counts).
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# a number (digits, optional thousands commas and decimals), optional space, then a unit
UNIT = re.compile(
    r"(?<![\w.])(?P<number>\d[\d,]*(?:\.\d+)?)\s?"
    r"(?P<unit>[nµμu]s\b|ms\b|GFLOP/s|GB/s|[KMG]i?B\b|×(?!\s?\d)|x(?![\w\d])|\\?%|times\b)"
)
GLUE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")
CODE = re.compile(r"``.*?``|`[^`]*`")
# "k = 9, 3x3" style dimensions are not ratios: a digit right after the x is excluded above;
# "5 times 3" (a product in words) is not a measured ratio either
PRODUCT_WORDS = re.compile(r"\btimes\s+(?:\$|\d|the\b|a\b|an\b|its\b)")

#: (file name, exact phrase that contains the number) -> where the figure is quoted from
QUOTED = {
    (
        "05_separable.ipynb",
        "94.86%",
    ): "MobileNet v1, Table 2 (Howard et al. 2017), quoted by the survey",
    ("05_separable.ipynb", "1.19%"): "MobileNet v1, Table 2: the paper's misprint, discussed",
    ("05_separable.ipynb", "99.29%"): "the sum of MobileNet's own printed column",
    ("03_groups.ipynb", "3 GB"): "AlexNet's GPUs (Krizhevsky et al. 2012), as the survey says",
}


def prose_sources():
    """(file name, cell index or None, markdown text) of every prose block of the book."""
    for path in sorted(BOOK.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                yield path.name, index, "".join(cell["source"])
    for path in sorted(BOOK.glob("*.md")):
        yield path.name, None, path.read_text(encoding="utf-8")


def typed_numbers(text):
    """The unit-bearing numbers of `text` that are neither glued nor inside inline code."""
    text = GLUE.sub("GLUED", text)
    text = CODE.sub("CODE", text)
    found = []
    for match in UNIT.finditer(text):
        if match["unit"] == "times" and (
            "." not in match["number"] or PRODUCT_WORDS.match(text, match.start("unit"))
        ):
            continue  # "3 times" is a count in words; only "1.4 times" is a measured ratio
        start = max(0, match.start() - 40)
        found.append((match.group(0), text[start : match.end() + 20].replace("\n", " ")))
    return found


def allowed(name, phrase):
    return any(f == name and quote in phrase for (f, quote) in QUOTED)


def test_every_prose_number_with_a_unit_is_glued_or_quoted():
    problems = []
    for name, index, text in prose_sources():
        for phrase, context in typed_numbers(text):
            if not allowed(name, phrase):
                where = f"{name} cell {index}" if index is not None else name
                problems.append(f"{where}: {phrase!r} in ...{context}...")
    assert not problems, (
        "numbers typed into the prose (glue them from the cell that computes them, or add the "
        "quote to QUOTED with its source):\n" + "\n".join(problems)
    )


def test_every_quoted_phrase_still_occurs():
    """An allow-list entry whose phrase is gone must be removed, so the list stays short."""
    texts = {}
    for name, _, text in prose_sources():
        texts[name] = texts.get(name, "") + "\n" + CODE.sub("", GLUE.sub("", text))
    stale = [key for key in QUOTED if key[1] not in texts.get(key[0], "")]
    assert not stale, f"QUOTED entries that no longer occur: {stale}"


# ------------------------------------------------------------------ the scanner itself


@pytest.mark.parametrize(
    "text",
    [
        "took 15 ms",
        "about 4x faster",
        "12.5 MiB of columns",
        "at 260.7 GFLOP/s",
        "3.7× slower",
        "47% of peak",
        "approximately $10.5\\%$",
        "1.4 times as long",
        "0.77 MiB copy",
        "22.3 GB/s",
    ],
)
def test_scanner_flags_typed_measurements(text):
    assert typed_numbers(text), text


@pytest.mark.parametrize(
    "text",
    [
        "a 3x3 kernel and 7x7 input",
        "{glue:text}`t_ms:.1f` ms",
        "ratio {glue:text}`speedup:.1f`x",
        "run `python -m convlab.bench --repeats 5` (`5x` is in code)",
        "a 224 × 224 image",
        "every weight is used 9 times",
        "the layer `dw_64x56_x2`",
        "2 times 3 is 6",
        "nearest x2 upsampling",
    ],
)
def test_scanner_passes_glued_code_and_dimensions(text):
    assert typed_numbers(text) == [], typed_numbers(text)

"""Bibliography entries labelled exactly as the chapters cite them, and unsigned sources cited by title.

The chapters cite author-year: ``{cite:p}`he2016deep``` reads "(He et al., 2016)". pybtex's
default "alpha" labels gave the bibliography page "[HZRS16]" for that entry, and for the five
source articles, four of which name no author, "[Anonymousd.a]", "[Anonymousd.b]" and
"[HeytextasciitildeYaHeid.]": a reader could not find a citation's entry, nor tell two anonymous,
undated sources apart. This extension registers

* a referencing style, ``convlab_author_year``: sphinxcontrib-bibtex's author-year citations,
  except that an entry without an author is cited by its ``shorttitle`` (else its title), as
  author-date styles cite unsigned works: "(Notes on nn.Conv2d, 2018)";
* a label style and a formatting style, ``convlab``: each entry's label is the text its
  parenthetical citation shows ("He et al., 2016"), entries are sorted by that label, and an entry
  of type ``misc`` (the source articles) reads "Author or Anonymous. *Title*. How published.
  Note." with its title as written (pybtex lowercases titles).

_config.yml selects them (``bibtex_reference_style``, ``bibtex_default_style``);
tests/test_site.py checks that every citation's text is its entry's label (or, for
``{cite:t}``, the year that ends it).
"""

import dataclasses

import pybtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting import toplevel
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import field, first_of, optional, sentence, tag
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import PersonStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.template import names

NAME = "convlab_author_year"


def _title_for_citation():
    return tag("em")[first_of[optional[field("shorttitle")], field("title")]]


@dataclasses.dataclass
class _PersonStyle(PersonStyle):
    def author_or_editor_or_title(self, full):
        return first_of[
            optional[
                names(
                    role="author",
                    sep=self.sep,
                    sep2=self.sep2,
                    last_sep=self.last_sep,
                    other=None if full else self.other,
                )
            ],
            _title_for_citation(),
        ]


@dataclasses.dataclass
class ConvlabReferenceStyle(AuthorYearReferenceStyle):
    person: PersonStyle = dataclasses.field(default_factory=_PersonStyle)


def citation_label(entry):
    """The text of ``entry``'s parenthetical citation, as plain text: "He et al., 2016"."""
    year = entry.fields.get("year", "n.d.")
    persons = entry.persons.get("author", [])
    if not persons:
        return f"{entry.fields.get('shorttitle') or entry.fields['title']}, {year}"
    last = [Text.from_latex(" ".join(p.last_names)).render_as("text") for p in persons]
    if len(last) == 1:
        who = last[0]
    elif len(last) == 2:
        who = f"{last[0]} and {last[1]}"
    else:
        who = f"{last[0]} et al."
    return f"{who}, {year}"


class ConvlabLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield citation_label(entry)


class ConvlabStyle(UnsrtStyle):
    default_label_style = NAME

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # BaseStyle binds its sorting plugin's method here: alphabetical by label instead
        self.sort = lambda entries: sorted(
            entries, key=lambda e: citation_label(e).casefold()
        )

    def get_misc_template(self, e):
        return toplevel[
            first_of[
                optional[sentence[self.format_names("author")]], Text("Anonymous.")
            ],
            sentence[tag("em")[field("title")]],
            optional[sentence[field("howpublished")]],
            optional[sentence[field("note")]],
        ]


def setup(app):
    register_plugin(
        "sphinxcontrib.bibtex.style.referencing", NAME, ConvlabReferenceStyle
    )
    pybtex.plugin.register_plugin("pybtex.style.labels", NAME, ConvlabLabelStyle)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "convlab", ConvlabStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

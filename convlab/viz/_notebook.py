"""What a chapter needs from its notebook environment, without the book's build tools.

The chapters run where the book is built (with MyST-NB) and on their own, e.g. opened on Google
Colab with only convlab installed. Two things they use come from this module, so that they do
not depend on the build's packages or on files next to the notebook:

* :func:`glue` stores a value in the cell's output for the book's ``{glue}`` roles, with the very
  output ``myst_nb.glue`` writes (MyST-NB reads that output; it is not needed to write it).
* :func:`recorded_benchmark` and :func:`recorded_breadth` return the benchmark runs the book
  reports, which are installed with convlab (``convlab/data/bench.json`` and ``breadth.json``)
  instead of lying next to the chapters.
"""

import json
from importlib.resources import files
from typing import Any

__all__ = ["glue", "recorded_benchmark", "recorded_breadth"]

# MyST-NB's (and papermill/scrapbook's) prefix of a value glued without being shown
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, variable: object, display: bool = True) -> None:
    """Store ``variable`` under ``name`` in the cell's outputs, as ``myst_nb.glue`` does.

    The book's ``{glue}`` roles and directives paste it into the text. With ``display=False``
    the value is stored under MyST-NB's ``application/papermill.record/`` MIME types, which
    Jupyter does not show; with ``display=True`` it is also shown in the notebook. Needs IPython
    (any Jupyter kernel), not MyST-NB.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    mimebundle, metadata = format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)


def recorded_benchmark() -> dict[str, Any]:
    """The benchmark run the book reports: the dict ``python -m convlab.bench`` wrote to
    ``bench.json``, as installed with convlab (``convlab/data/bench.json``).

    To record a new one, run ``python -m convlab.bench --out-dir convlab/data --no-plot`` in a
    checkout and re-execute chapters 3 and 7.
    """
    text = (files("convlab") / "data" / "bench.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def recorded_breadth() -> dict[str, Any]:
    """The breadth benchmark run the book reports: the dict ``python -m convlab.bench --layers
    breadth`` wrote to ``breadth.json``, as installed with convlab (``convlab/data/breadth.json``).

    To record a new one, run ``python -m convlab.bench --layers breadth --threads 2 --out-dir
    convlab/data --no-plot`` in a checkout and re-execute chapters 4 and 7.
    """
    text = (files("convlab") / "data" / "breadth.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data

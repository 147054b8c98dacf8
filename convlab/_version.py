"""The version of convlab, defined here and nowhere else.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``), ``convlab.__version__`` re-exports it,
and tests/test_packaging.py checks that CHANGELOG.md and CITATION.cff name the same release.
"""

__version__ = "0.1.0"

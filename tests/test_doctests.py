"""Every docstring example in the package runs and prints what it says (numpydoc Examples)."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import convlab

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(convlab.__path__, prefix="convlab.")
    if not m.name.split(".")[-1].startswith("_kernels") and m.name != "convlab.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with np.printoptions(legacy=False):
        result = doctest.testmod(
            module,
            optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
            extraglobs={"np": np},
        )
    assert result.failed == 0


def test_core_modules_have_examples():
    for name in ("convlab.conv", "convlab.shapes", "convlab.algorithms"):
        finder = doctest.DocTestFinder()
        tests = finder.find(importlib.import_module(name))
        assert sum(len(t.examples) for t in tests) >= 3, name

"""Public namespaces export their API and nothing else: ``dir(module)`` lists ``__all__`` (plus
dunders and the submodules a package must expose), not the helpers it imported (``np``,
``float_array``...).
"""

import importlib

import pytest

PUBLIC = ["convlab", "convlab.grad", "convlab.nn", "convlab.optim", "convlab.viz", "convlab.shapes"]
# submodules Python binds as attributes of their package when imported; they are real API
SUBMODULES = {"convlab": {"nn", "grad", "optim", "viz"}}


@pytest.mark.parametrize("name", PUBLIC)
def test_dir_is_the_api(name):
    module = importlib.import_module(name)
    listed = {n for n in dir(module) if not n.startswith("_")}
    extra = listed - set(module.__all__) - SUBMODULES.get(name, set())
    assert not extra, f"dir({name}) shows names outside __all__: {sorted(extra)}"


@pytest.mark.parametrize("name", PUBLIC)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing

"""Older stacks convlab supports: ipywidgets 7 (Google Colab) and the fallback without a BLAS
thread setter (SciPy wheels before OpenBLAS 0.3.27, other BLAS libraries).

``python3 tasks.py colab`` and ``python3 tasks.py minimums`` run the chapters and the suite on
those real versions; these tests pin the two behaviours down on the development stack.
"""

import types
import warnings

import pytest

from convlab import viz


@pytest.fixture
def widgets7():
    """The ipywidgets module with a VBox that behaves as ipywidgets 7's: no _repr_mimebundle_,
    only _ipython_display_ (which records that it was called)."""
    ipywidgets = pytest.importorskip("ipywidgets")

    class VBox7:
        def __init__(self, children):
            self.children = children
            self.displayed = 0

        def _ipython_display_(self, **kwargs):
            self.displayed += 1

    return types.SimpleNamespace(
        IntSlider=ipywidgets.IntSlider,
        Checkbox=ipywidgets.Checkbox,
        Output=ipywidgets.Output,
        HBox=ipywidgets.HBox,
        VBox=VBox7,
    )


def _explorer(widgets):
    return viz._sliding.ConvExplorer(widgets, 6, 3, 1, 0, 1, 12)


def test_explorer_displays_with_ipywidgets7(widgets7):
    """IPython's display machinery shows the explorer through the widget's _ipython_display_
    (before the fix: AttributeError 'VBox' object has no attribute '_repr_mimebundle_')."""
    formatters = pytest.importorskip("IPython.core.formatters")
    ex = _explorer(widgets7)
    data, _ = formatters.DisplayFormatter().format(ex)
    assert ex.widget.displayed == 1
    assert data == {}  # displayed by the widget itself, nothing formatted twice
    assert ex.result.tolist() == [12, 18, 24, 30]


def test_explorer_with_ipywidgets8_uses_the_mimebundle():
    ipywidgets = pytest.importorskip("ipywidgets")
    formatters = pytest.importorskip("IPython.core.formatters")
    if not hasattr(ipywidgets.VBox, "_repr_mimebundle_"):
        pytest.skip("ipywidgets 7 installed")
    ex = viz.conv_explorer()
    assert "_ipython_display_" not in vars(ex)
    data, _ = formatters.DisplayFormatter().format(ex)
    assert "application/vnd.jupyter.widget-view+json" in data


def test_missing_blas_setter_warns_once(monkeypatch):
    """Without a thread setter convlab keeps working but says once that it may be slower."""
    from convlab import _blas

    monkeypatch.setattr(_blas, "_CACHE", {})
    monkeypatch.setattr(_blas, "_find_setter", lambda: (_blas._no_setter, None))
    monkeypatch.setattr(_blas, "_WARNED", [False])
    with pytest.warns(RuntimeWarning, match="no thread-count setter"):
        setter = _blas.blas_threads_setter()
    assert setter(1) == 0
    monkeypatch.setattr(_blas, "_CACHE", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _blas.blas_threads_setter()  # a second lookup in the same process: no second warning
    assert _blas.blas_library() is None

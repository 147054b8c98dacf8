"""Tests of convlab.viz._sliding: what each figure draws, checked on the returned artists.

The expected windows come from the definition written out here (output ``i`` reads
``i*s - p + t*d``), the expected output lengths from the floor formula written out here, the
expected padded values from ``np.pad`` and the expected outputs from the seed document
(/work/shared/seeds/000_*.txt, ``nn.Conv1d`` on ``[1..6]`` with all weights 2).
"""

import math
import re
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb

import convlab
from convlab import viz
from convlab.viz import _sliding

SEED_X = np.arange(1, 7, dtype=np.float64)

# (L, k, s, padding, d): the seed's cases first, then strides/dilations/'same' mixed
CASES = [
    # seed 000: kernel size 1, 2, 3; padding; stride 3; dilation 2
    (6, 1, 1, 0, 1),
    (6, 2, 1, 0, 1),
    (6, 3, 1, 0, 1),
    (6, 3, 1, 1, 1),
    (6, 5, 1, 2, 1),
    (6, 3, 3, 0, 1),
    (6, 3, 1, 0, 2),
    # mixed
    (7, 3, 2, 1, 2),
    (9, 2, 3, 2, 1),
    (5, 4, 1, 3, 1),
    (6, 4, 1, "same", 1),  # odd total padding: the extra cell goes at the end (PyTorch)
    (5, 3, 1, "same", 2),
    (6, 3, 1, "valid", 1),
]

# outputs printed by the seed for [1..6] with all weights 2
SEED_OUTPUTS = [
    ((1, 1, 0, 1), [2, 4, 6, 8, 10, 12]),
    ((2, 1, 0, 1), [6, 10, 14, 18, 22]),
    ((3, 1, 0, 1), [12, 18, 24, 30]),
    ((3, 1, 1, 1), [6, 12, 18, 24, 30, 22]),
    ((5, 1, 2, 1), [12, 20, 30, 40, 36, 30]),
    ((3, 3, 0, 1), [12, 30]),
    ((3, 1, 0, 2), [18, 24]),
]

NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def naive_pads(L, k, s, padding, d):
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = d * (k - 1)
        return total // 2, total - total // 2
    return padding, padding


def naive_windows(L, k, s, padding, d):
    before, after = naive_pads(L, k, s, padding, d)
    n_out = math.floor((L + before + after - d * (k - 1) - 1) / s) + 1
    return [[i * s - before + t * d for t in range(k)] for i in range(n_out)]


def gid_kind(artist):
    gid = artist.get_gid() or ""
    return gid.split(":")[0]


def cells(ax, kinds):
    """Rectangles whose gid kind is in ``kinds``, keyed by the index in their gid."""
    return {int(p.get_gid().split(":")[1]): p for p in ax.patches if gid_kind(p) in kinds}


def centre_x(rect):
    return rect.get_x() + rect.get_width() / 2


def texts_at(ax, y_low, y_high):
    """Texts inside a horizontal band, keyed by x position."""
    out = {}
    for t in ax.texts:
        x, y = t.get_position()
        if y_low < y < y_high:
            out[round(x, 6)] = t.get_text()
    return out


class TestSlidingWindows:
    @pytest.mark.parametrize("case", CASES)
    def test_matches_definition(self, case):
        assert viz.sliding_windows(*case) == naive_windows(*case)

    @pytest.mark.parametrize("case", CASES)
    def test_length_is_conv1d_output_length(self, case):
        L, k, s, p, d = case
        y = convlab.conv1d(np.ones((1, 1, L)), np.ones((1, 1, k)), stride=s, padding=p, dilation=d)
        assert len(viz.sliding_windows(*case)) == y.shape[-1]


class TestSlidingWindowDiagram:
    @pytest.mark.parametrize("case", CASES)
    def test_output_cells(self, case):
        ax = viz.sliding_window_diagram(*case)
        outputs = cells(ax, {"output"})
        assert sorted(outputs) == list(range(len(naive_windows(*case))))

    @pytest.mark.parametrize("case", CASES)
    def test_lines_join_each_output_to_its_window(self, case):
        """Read the geometry: each line starts on an input cell and ends on an output cell."""
        ax = viz.sliding_window_diagram(*case)
        inputs = cells(ax, {"input", "pad"})
        outputs = cells(ax, {"output"})
        input_at = {round(centre_x(r), 6): j for j, r in inputs.items()}
        output_at = {round(centre_x(r), 6): i for i, r in outputs.items()}
        drawn = {i: [] for i in outputs}
        for line in ax.lines:
            (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
            assert y0 > y1  # from the input row down to the output row
            drawn[output_at[round(x1, 6)]].append(input_at[round(x0, 6)])
        expected = naive_windows(*case)
        assert {i: sorted(v) for i, v in drawn.items()} == {
            i: sorted(w) for i, w in enumerate(expected)
        }

    @pytest.mark.parametrize("case", CASES)
    def test_padded_cells_are_flagged(self, case):
        L, k, s, p, d = case
        before, after = naive_pads(*case)
        ax = viz.sliding_window_diagram(*case)
        pads = cells(ax, {"pad"})
        real = cells(ax, {"input"})
        assert sorted(pads) == list(range(-before, 0)) + list(range(L, L + after))
        assert sorted(real) == list(range(L))
        for rect in pads.values():
            assert rect.get_hatch() and np.allclose(
                rect.get_facecolor()[:3], to_rgb(_sliding.PAD_FACE)
            )
        for rect in real.values():
            assert not rect.get_hatch()

    @pytest.mark.parametrize("args, expected", SEED_OUTPUTS)
    def test_values_are_the_seed_outputs(self, args, expected):
        k, s, p, d = args
        ax = viz.sliding_window_diagram(6, k, s, p, d, x=SEED_X, weight=np.full(k, 2.0))
        values = {
            int(t.get_gid().split(":")[1]): t.get_text()
            for t in ax.texts
            if gid_kind(t) == "output-value"
        }
        assert [float(values[i]) for i in range(len(values))] == expected
        inputs = {
            int(t.get_gid().split(":")[1]): float(t.get_text())
            for t in ax.texts
            if gid_kind(t) == "input-value"
        }
        assert [inputs[j] for j in range(-p, 6 + p)] == [0] * p + list(range(1, 7)) + [0] * p

    @pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
    def test_padding_mode_values(self, mode):
        x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
        ax = viz.sliding_window_diagram(5, 3, padding=2, x=x, weight=[1, 0, -1], padding_mode=mode)
        inputs = {
            int(t.get_gid().split(":")[1]): float(t.get_text())
            for t in ax.texts
            if gid_kind(t) == "input-value"
        }
        assert [inputs[j] for j in range(-2, 7)] == np.pad(x, 2, mode=NP_MODE[mode]).tolist()
        outputs = [
            float(t.get_text())
            for t in sorted(
                (t for t in ax.texts if gid_kind(t) == "output-value"),
                key=lambda t: t.get_position()[0],
            )
        ]
        padded = np.pad(x, 2, mode=NP_MODE[mode])
        assert outputs == [padded[i] - padded[i + 2] for i in range(7)]

    def test_labels_without_values_name_the_source_cell(self):
        ax = viz.sliding_window_diagram(4, 3, padding=1, padding_mode="circular")
        labels = {
            int(t.get_gid().split(":")[1]): t.get_text()
            for t in ax.texts
            if gid_kind(t) == "input-value"
        }
        assert labels[-1] == "$x_{3}$" and labels[4] == "$x_{0}$" and labels[2] == "$x_{2}$"
        ax = viz.sliding_window_diagram(4, 3, padding=1)
        labels = {
            int(t.get_gid().split(":")[1]): t.get_text()
            for t in ax.texts
            if gid_kind(t) == "input-value"
        }
        assert labels[-1] == "0" and labels[4] == "0"

    def test_highlight_fills_exactly_the_window(self):
        ax = viz.sliding_window_diagram(7, 3, stride=2, padding=1, dilation=2, highlight=1)
        colour = to_rgb(_sliding._CYCLE[1])
        filled = sorted(
            j
            for j, r in cells(ax, {"input", "pad"}).items()
            if np.allclose(r.get_facecolor()[:3], colour)
        )
        assert filled == [1, 3, 5]
        thick = {line.get_gid() for line in ax.lines if line.get_linewidth() > 1}
        assert thick == {"link:1:1", "link:1:3", "link:1:5"}

    def test_links_can_be_left_out(self):
        ax = viz.sliding_window_diagram(6, 3, links=False)
        assert ax.lines == [] or len(ax.lines) == 0

    def test_draws_into_a_given_axes(self):
        fig, axes = plt.subplots(2, 1)
        out = viz.sliding_window_diagram(6, 3, ax=axes[1])
        assert out is axes[1] and len(axes[0].patches) == 0

    def test_title_states_output_length(self):
        ax = viz.sliding_window_diagram(6, 4, padding="same")
        assert "L_out=6" in ax.get_title() and "(1, 2)" in ax.get_title()


class TestSlidingWindowAnimation:
    @pytest.mark.parametrize("case", CASES)
    def test_one_frame_per_output(self, case):
        L, k, s, p, d = case
        anim = viz.sliding_window_animation(np.arange(1, L + 1), np.full(k, 2.0), s, p, d)
        n_out = len(naive_windows(*case))
        assert anim.n_frames == n_out
        assert len(list(anim.new_frame_seq())) == n_out
        anim._draw_was_started = True  # not rendered on purpose

    @pytest.mark.parametrize("case", CASES)
    def test_each_frame_shows_its_window(self, case):
        L, k, s, p, d = case
        anim = viz.sliding_window_animation(np.arange(1, L + 1), np.full(k, 2.0), s, p, d)
        windows = naive_windows(*case)
        taps = sorted(
            (p for p in anim.ax.patches if gid_kind(p) == "weight"), key=lambda r: r.get_gid()
        )
        for i, window in enumerate(windows):
            anim.draw_frame(i)
            assert anim.highlighted() == sorted(set(window))
            assert [
                int(r.get_x()) for r in sorted(taps, key=lambda r: int(r.get_gid()[7:]))
            ] == window
        anim._draw_was_started = True

    @pytest.mark.parametrize("args, expected", SEED_OUTPUTS)
    def test_running_output_is_the_seed_output(self, args, expected):
        k, s, p, d = args
        anim = viz.sliding_window_animation(SEED_X, np.full(k, 2.0), s, p, d)
        outs = sorted(
            (
                t
                for t in anim.ax.texts
                if t.get_position()[1] < _sliding._WEIGHT_Y
                and t.get_position()[0] > -p - 0.1
                and t.get_text() not in ("output",)
                and not t.get_text().startswith("y[")
            ),
            key=lambda t: t.get_position()[0],
        )
        for i in range(len(expected)):
            anim.draw_frame(i)
            shown = [t.get_text() for t in outs]
            assert [float(v) for v in shown[: i + 1]] == expected[: i + 1]
            assert shown[i + 1 :] == [""] * (len(expected) - i - 1)
        anim._draw_was_started = True

    def test_products_text(self):
        anim = viz.sliding_window_animation(np.arange(16), [0.1, 0.2, 0.3])
        assert (
            anim.draw_frame(0)[-1].get_text() == "y[0] = 0\u00d70.1 + 1\u00d70.2 + 2\u00d70.3 = 0.8"
        )
        assert anim.draw_frame(13)[-1].get_text().endswith("= 8.6")
        anim._draw_was_started = True

    def test_bias_in_products_text(self):
        anim = viz.sliding_window_animation([1, 2, 3], [1, 1], bias=0.5)
        assert anim.draw_frame(1)[-1].get_text() == "y[1] = 2\u00d71 + 3\u00d71 + 0.5 = 5.5"
        anim._draw_was_started = True

    def test_jshtml_is_small(self):
        anim = viz.sliding_window_animation(SEED_X, [2, 2, 2], padding=1)
        html = anim.to_jshtml()
        assert "<script" in html and len(html) < 2 * 2**20
        # one embedded PNG per output, nothing else
        assert set(re.findall(r"frames\[(\d+)\]", html)) == {str(i) for i in range(6)}
        assert html.count("data:image/png;base64") == 6


class TestPaddingModesFigure:
    @pytest.mark.parametrize(
        "x, pad",
        [
            (np.arange(1, 5), 2),
            (np.array([2.5, -1.0, 0.0]), 1),
            (np.arange(1, 10).reshape(3, 3), 2),
            (np.arange(12).reshape(3, 4), (1, 2)),
        ],
    )
    def test_numbers_equal_np_pad(self, x, pad):
        fig = viz.padding_modes_figure(x, pad)
        assert [ax.get_title() for ax in fig.axes] == list(NP_MODE)
        width = pad if np.ndim(x) == 1 else tuple((p, p) for p in np.broadcast_to(pad, 2))
        for ax, mode in zip(fig.axes, NP_MODE, strict=True):
            expected = np.atleast_2d(np.pad(x.astype(float), width, mode=NP_MODE[mode]))
            shown = np.full(expected.shape, np.nan)
            for t in ax.texts:
                if gid_kind(t) == "value":
                    _, r, c = t.get_gid().split(":")
                    x_pos, y_pos = t.get_position()
                    assert (x_pos, y_pos) == (int(c) + 0.5, int(r) + 0.5)
                    shown[int(r), int(c)] = float(t.get_text())
            np.testing.assert_array_equal(shown, expected)

    def test_padded_cells_flagged(self):
        fig = viz.padding_modes_figure(np.arange(1, 7).reshape(2, 3), 1)
        for ax in fig.axes:
            pads = [p for p in ax.patches if gid_kind(p) == "pad"]
            inside = [p for p in ax.patches if gid_kind(p) == "input"]
            assert len(inside) == 6 and len(pads) == 4 * 5 - 6
            assert all(p.get_hatch() for p in pads) and not any(p.get_hatch() for p in inside)
            for p in inside:
                _, r, c = p.get_gid().split(":")
                assert 1 <= int(r) <= 2 and 1 <= int(c) <= 3

    def test_subset_of_modes(self):
        fig = viz.padding_modes_figure([1, 2, 3], 1, modes=["reflect"])
        assert [ax.get_title() for ax in fig.axes] == ["reflect"]

    def test_circular_pad_equal_to_size(self):
        fig = viz.padding_modes_figure([1, 2], 2, modes="circular")
        values = [
            float(t.get_text())
            for t in sorted(
                (t for t in fig.axes[0].texts if gid_kind(t) == "value"),
                key=lambda t: t.get_position()[0],
            )
        ]
        assert values == [1, 2, 1, 2, 1, 2]


@pytest.fixture
def ipywidgets():
    return pytest.importorskip("ipywidgets")


class TestConvExplorer:
    def test_builds_with_seed_output(self, ipywidgets):
        ex = viz.conv_explorer()
        assert isinstance(ex.widget, ipywidgets.VBox)
        assert ex.result.tolist() == [12, 18, 24, 30]
        assert "[12., 18., 24., 30.]" in ex.message
        assert len([p for p in ex.figure.axes[0].patches if gid_kind(p) == "output"]) == 4

    def test_update_follows_sliders(self, ipywidgets):
        ex = viz.conv_explorer()
        ex.sliders["padding"].value = 1
        assert ex.result.tolist() == [6, 12, 18, 24, 30, 22]
        ex.sliders["padding"].value = 0
        ex.sliders["stride"].value = 3
        assert ex.result.tolist() == [12, 30]
        ex.sliders["stride"].value = 1
        ex.sliders["dilation"].value = 2
        assert ex.result.tolist() == [18, 24]
        assert len([p for p in ex.figure.axes[0].patches if gid_kind(p) == "output"]) == 2

    def test_same_checkbox(self, ipywidgets):
        ex = viz.conv_explorer(kernel_size=5)
        ex.same.value = True
        assert ex.params()["padding"] == "same"
        assert ex.result.tolist() == [12, 20, 30, 40, 36, 30]

    def test_invalid_combination_explained(self, ipywidgets):
        ex = viz.conv_explorer()
        ex.sliders["kernel_size"].value = 7
        assert ex.result is None
        assert "larger than the padded input" in ex.message

    def test_repr_is_the_widget(self, ipywidgets):
        ex = viz.conv_explorer()
        bundle = ex._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle

    def test_render_path_prints_message(self, ipywidgets, monkeypatch, capsys):
        """Inside IPython the update renders a PNG and prints the output (outside, nothing)."""
        import IPython.core.getipython

        # where convlab.viz imports it from (IPython 8 does not re-export it for type checkers)
        monkeypatch.setattr(IPython.core.getipython, "get_ipython", lambda: object())
        ex = viz.conv_explorer()
        ex.sliders["stride"].value = 3
        out = capsys.readouterr().out
        assert "Image" in out and "= [12., 30.]" in out

    def test_missing_ipywidgets(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "ipywidgets", None)
        with pytest.raises(ImportError, match="pip install ipywidgets"):
            viz.conv_explorer()


class TestInvalidParams:
    # sliding_window_diagram / sliding_windows
    def test_kernel_larger_than_padded_input(self):
        with pytest.raises(ValueError, match=r"kernel extent .* larger than the padded input"):
            viz.sliding_window_diagram(4, 3, dilation=2)

    def test_zero_stride(self):
        with pytest.raises(ValueError, match="stride must be positive"):
            viz.sliding_window_diagram(6, 3, stride=0)

    def test_zero_length(self):
        with pytest.raises(ValueError, match="length must be a positive int"):
            viz.sliding_windows(0, 3)

    def test_float_kernel_size(self):
        with pytest.raises(TypeError, match="kernel_size must"):
            viz.sliding_windows(6, 2.5)

    def test_negative_padding(self):
        with pytest.raises(ValueError, match="padding must be non-negative"):
            viz.sliding_windows(6, 3, padding=-1)

    def test_same_with_stride(self):
        with pytest.raises(ValueError, match="padding='same' is only supported with stride 1"):
            viz.sliding_window_diagram(6, 3, stride=2, padding="same")

    def test_unknown_padding_string(self):
        with pytest.raises(
            ValueError, match="padding must be an int, a tuple of ints, 'same' or 'valid'"
        ):
            viz.sliding_window_diagram(6, 3, padding="full")

    def test_x_wrong_length(self):
        with pytest.raises(ValueError, match="x has 5 values but length is 6"):
            viz.sliding_window_diagram(6, 3, x=[1, 2, 3, 4, 5])

    def test_x_wrong_rank(self):
        with pytest.raises(ValueError, match=r"x must be 1-D \(L,\)"):
            viz.sliding_window_diagram(6, 3, x=np.ones((1, 6)))

    def test_weight_wrong_length(self):
        with pytest.raises(ValueError, match="weight has 2 taps but kernel_size is 3"):
            viz.sliding_window_diagram(6, 3, x=SEED_X, weight=[1, 2])

    def test_unknown_padding_mode(self):
        with pytest.raises(ValueError, match="padding_mode must be one of"):
            viz.sliding_window_diagram(6, 3, padding=1, padding_mode="mirror")

    def test_reflect_pad_too_large(self):
        with pytest.raises(
            ValueError,
            match=r"reflect padding \(3\) must be smaller than the input size \(3\) along L",
        ):
            viz.sliding_window_diagram(3, 3, padding=3, padding_mode="reflect")

    def test_highlight_out_of_range(self):
        with pytest.raises(
            ValueError, match=r"highlight must be an output index in \[0, 4\), got 4"
        ):
            viz.sliding_window_diagram(6, 3, highlight=4)

    def test_highlight_not_int(self):
        with pytest.raises(TypeError, match="highlight must be an output index"):
            viz.sliding_window_diagram(6, 3, highlight=1.0)

    # sliding_window_animation
    def test_animation_empty_x(self):
        with pytest.raises(ValueError, match="x must have at least one value"):
            viz.sliding_window_animation([], [1])

    def test_animation_empty_weight(self):
        with pytest.raises(ValueError, match="weight must have at least one tap"):
            viz.sliding_window_animation([1, 2], [])

    def test_animation_weight_rank(self):
        with pytest.raises(ValueError, match=r"weight must be 1-D \(kernel_size,\)"):
            viz.sliding_window_animation([1, 2, 3], [[1, 2]])

    def test_animation_string_input(self):
        with pytest.raises(TypeError, match="x must be a real numeric array"):
            viz.sliding_window_animation(["a", "b"], [1])

    def test_animation_interval(self):
        with pytest.raises(ValueError, match="interval must be a positive int"):
            viz.sliding_window_animation([1, 2, 3], [1], interval=0)

    # padding_modes_figure
    def test_padding_figure_rank(self):
        with pytest.raises(ValueError, match=r"x must be 1-D or 2-D \(L,\) or \(H, W\)"):
            viz.padding_modes_figure(np.ones((2, 2, 2)), 1)

    def test_padding_figure_empty(self):
        with pytest.raises(ValueError, match="x must not be empty"):
            viz.padding_modes_figure(np.ones((0, 3)), 1)

    def test_padding_figure_negative_pad(self):
        with pytest.raises(ValueError, match="pad must be non-negative"):
            viz.padding_modes_figure([1, 2, 3], -1)

    def test_padding_figure_pad_tuple_length(self):
        with pytest.raises(ValueError, match="pad must be an int or a tuple of 2 ints"):
            viz.padding_modes_figure(np.ones((3, 3)), (1, 1, 1))

    def test_padding_figure_reflect_too_large(self):
        with pytest.raises(ValueError, match=r"reflect padding \(3\) must be smaller"):
            viz.padding_modes_figure([1, 2, 3], 3)

    def test_padding_figure_circular_too_large(self):
        with pytest.raises(ValueError, match=r"circular padding \(3\) must not be larger"):
            viz.padding_modes_figure([1, 2], 3, modes=["zeros", "circular"])

    def test_padding_figure_unknown_mode(self):
        with pytest.raises(ValueError, match="padding_mode must be one of"):
            viz.padding_modes_figure([1, 2, 3], 1, modes=["edge"])

    def test_padding_figure_no_modes(self):
        with pytest.raises(ValueError, match="modes must name at least one padding mode"):
            viz.padding_modes_figure([1, 2, 3], 1, modes=[])

    # conv_explorer
    def test_explorer_length_above_max(self, ipywidgets):
        with pytest.raises(ValueError, match=r"length \(13\) must not exceed max_length \(12\)"):
            viz.conv_explorer(length=13)

    def test_explorer_slider_range(self, ipywidgets):
        with pytest.raises(ValueError, match=r"stride must be in \[1, 4\]"):
            viz.conv_explorer(stride=5)

    def test_explorer_non_int(self, ipywidgets):
        with pytest.raises(TypeError, match="padding must be an int"):
            viz.conv_explorer(padding="same")


def test_exported_from_package():
    for name in (
        "sliding_window_diagram",
        "sliding_window_animation",
        "padding_modes_figure",
        "conv_explorer",
        "sliding_windows",
    ):
        assert getattr(viz, name) is getattr(_sliding, name)


def test_no_pyplot_figure_left_by_animation():
    before = plt.get_fignums()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anim = viz.sliding_window_animation([1, 2, 3], [1, 1])
        anim._draw_was_started = True
    assert plt.get_fignums() == before

"""What the performance figures draw: the addresses each output reads, the im2col matrix's entries,
the benchmark's bars and the roofline's points, checked on the returned artists."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba

import convlab
from convlab import _engine, _tile, viz
from convlab.bench import LAYERS


def _gids(fig, prefix):
    found = {}
    for ax in fig.axes:
        for artist in list(ax.patches) + list(ax.lines):
            gid = artist.get_gid()
            if gid and gid.startswith(prefix):
                found[gid] = artist
    return found


# --- direct convolution's memory accesses (seed 003: 3x3 map, 2x2 kernel) -----------------------------
def test_access_pattern_is_the_seed_example():
    # y11 = w11 x11 + w12 x12 + w21 x21 + w22 x22, ... with x_rc at address 3 (r-1) + (c-1)
    expected = [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    np.testing.assert_array_equal(viz.direct_access_pattern(3, 3, 2), expected)


def test_access_pattern_matches_im2col_of_addresses():
    addresses = np.arange(5 * 6, dtype=np.float64).reshape(1, 1, 5, 6)
    cols = convlab.im2col(addresses, 3)[0]  # rows: taps, columns: outputs
    np.testing.assert_array_equal(viz.direct_access_pattern(5, 6, 3), cols.T.astype(int))


def test_access_pattern_rejects_bad_sizes():
    with pytest.raises(ValueError, match="kernel extent"):
        viz.direct_access_pattern(2, 2, 3)
    with pytest.raises(ValueError, match="height must be a positive int, got 0"):
        viz.direct_access_pattern(0, 3, 2)


def test_memory_access_figure_marks_exactly_the_reads():
    fig = viz.memory_access_figure(3, 3, 2)
    reads = _gids(fig, "read:")
    pattern = viz.direct_access_pattern(3, 3, 2)
    expected = {f"read:{o}:{i}" for o in range(4) for i in pattern[o]}
    assert set(reads) == expected
    assert len(_gids(fig, "mem:")) == 9 and len(_gids(fig, "cell:")) == 9
    # y11 reads addresses 0, 1, 3, 4: it skips address 2 between its two kernel rows
    assert "read:0:2" not in reads
    # each output has its own colour
    colours = {tuple(reads[f"read:{o}:{pattern[o][0]}"].get_facecolor()) for o in range(4)}
    assert len(colours) == 4


def test_memory_access_figure_other_sizes():
    fig = viz.memory_access_figure(4, 5, 3)
    assert len(_gids(fig, "read:")) == 2 * 3 * 9
    assert len(_gids(fig, "mem:")) == 20


# --- im2col matrix -----------------------------------------------------------------------------------
def _texts(fig):
    ax = fig.axes[0]
    return {
        (round(t.get_position()[0] - 0.5), round(t.get_position()[1] - 0.5)): t.get_text()
        for t in ax.texts
    }


def test_im2col_figure_single_channel_labels():
    fig = viz.im2col_figure(np.arange(9.0).reshape(1, 3, 3), 2)
    cells = _gids(fig, "col:")
    assert len(cells) == 4 * 4  # (K*K*C) x (H_o*W_o) = 4 x 4
    texts = _texts(fig)
    n_rows = 4
    # column 0 is output y11: x11, x12, x21, x22 from top to bottom
    assert [texts[(0, n_rows - 1 - r)] for r in range(4)] == [
        "$x_{11}$",
        "$x_{12}$",
        "$x_{21}$",
        "$x_{22}$",
    ]
    # row 1 (tap w12) across outputs: x12, x13, x22, x23
    assert [texts[(c, n_rows - 2)] for c in range(4)] == [
        "$x_{12}$",
        "$x_{13}$",
        "$x_{22}$",
        "$x_{23}$",
    ]


def test_im2col_figure_padding_cells_are_zero_and_grey():
    fig = viz.im2col_figure(np.ones((1, 2, 2)), 3, padding=1)
    cells = _gids(fig, "col:")
    assert len(cells) == 9 * 4
    texts = _texts(fig)
    assert texts[(0, 8)] == "0"  # output (0, 0), tap (0, 0) reads the padded corner
    grey = to_rgba("#d9d9d9", 0.35)
    assert np.allclose(cells["col:0:0"].get_facecolor(), grey)
    assert sum(t == "0" for t in texts.values()) == 36 - 4 * 4  # every output sees 4 real pixels


def test_im2col_figure_multichannel_rows_and_labels():
    fig = viz.im2col_figure(np.zeros((2, 3, 3)), 2)
    assert len(_gids(fig, "col:")) == (2 * 4) * 4
    assert _texts(fig)[(0, 3)] == "1:11"  # row 4 = channel 1, tap (0, 0)


def test_im2col_figure_rejects_bad_input():
    with pytest.raises(ValueError, match=r"x must be 3-D \(C, H, W\)"):
        viz.im2col_figure(np.zeros((3, 3)), 2)
    with pytest.raises(ValueError, match="labels must have the shape of x"):
        viz.im2col_figure(np.zeros((1, 3, 3)), 2, labels=[["a"]])


# --- benchmark results ---------------------------------------------------------------------------------
def _bench_data():
    layers = ["resnet_64x56", "stem_7x7_s2"]
    runs = []
    for threads, scale in ((2, 1.0), (1, 1.9)):
        results = []
        for layer in layers:
            for k, algorithm in enumerate(("auto", "im2col", "torch")):
                best = scale * (1 + k) * 1e-3
                gflops = LAYERS[layer].flops / best / 1e9
                results.append(
                    dict(
                        layer=layer,
                        algorithm=algorithm,
                        threads=threads,
                        best_s=best,
                        gflops=gflops,
                        pct_peak=100 * gflops / 200.0,
                    )
                )
        runs.append(dict(threads=threads, peak_gflops=200.0, bandwidth_gbs=20.0, results=results))
    return dict(
        machine=dict(cpu="Test CPU 9000"),
        runs=runs,
        layers={name: LAYERS[name].as_dict() for name in layers},
    )


def test_benchmark_figure_bars_are_the_times():
    data = _bench_data()
    fig = viz.benchmark_figure(data)
    bars = _gids(fig, "bar:")
    assert len(bars) == 6
    assert bars["bar:stem_7x7_s2:im2col"].get_height() == pytest.approx(2.0)  # ms, 2-thread run
    assert len(fig.axes) == 3
    assert fig.axes[0].get_yscale() == "log"
    assert fig._suptitle.get_text() == "Test CPU 9000"
    assert fig.axes[0].get_title().startswith("2 thread(s): peak 200 GFLOP/s")
    heights = [p.get_height() for p in fig.axes[2].patches]
    fastest = max(LAYERS[name].flops for name in ("resnet_64x56", "stem_7x7_s2")) / 1e-3 / 1e9
    assert max(heights) == pytest.approx(100 * fastest / 200.0)  # % of the 200 GFLOP/s peak


def test_benchmark_figure_other_run_and_errors():
    data = _bench_data()
    fig = viz.benchmark_figure(data, threads=1, layers=["stem_7x7_s2"])
    bars = _gids(fig, "bar:")
    assert set(bars) == {f"bar:stem_7x7_s2:{a}" for a in ("auto", "im2col", "torch")}
    assert bars["bar:stem_7x7_s2:auto"].get_height() == pytest.approx(1.9)
    with pytest.raises(ValueError, match=r"no run with threads=4; the data has \[2, 1\]"):
        viz.benchmark_figure(data, threads=4)


def test_benchmark_figure_draws_every_thread_count_with_the_legend_clear_of_the_bars():
    import matplotlib.pyplot as plt

    data = _bench_data()
    fig = viz.benchmark_figure(data, threads="all")
    try:
        bars = _gids(fig, "bar:")
        assert set(bars) == {
            f"bar:{layer}:{a}:{t}"
            for layer in ("resnet_64x56", "stem_7x7_s2")
            for a in ("auto", "im2col", "torch")
            for t in (2, 1)
        }
        # the 1-thread run's times, in its own column
        assert bars["bar:stem_7x7_s2:auto:1"].get_height() == pytest.approx(1.9)
        assert bars["bar:stem_7x7_s2:auto:2"].get_height() == pytest.approx(1.0)
        assert len(fig.axes) == 6
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert [t.split(":")[0] for t in titles] == ["2 thread(s)", "1 thread(s)"]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        assert [t.get_text() for t in legend.get_texts()] == ["auto", "im2col", "torch"]
        for ax in fig.axes:  # no axes (and so no bar) under the legend
            assert not box.overlaps(ax.get_window_extent(renderer))
    finally:
        plt.close(fig)


def test_roofline_points_and_roof():
    data = _bench_data()
    fig = viz.roofline_figure(data)
    points = _gids(fig, "point:")
    assert len(points) == 6
    x, y = points["point:resnet_64x56:auto"].get_data()
    assert x[0] == pytest.approx(LAYERS["resnet_64x56"].intensity)
    assert y[0] == pytest.approx(LAYERS["resnet_64x56"].flops / 1e-3 / 1e9)
    (roof,) = [line for line in fig.axes[0].lines if line.get_gid() == "roof"]
    xs, ys = roof.get_data()
    np.testing.assert_allclose(ys, np.minimum(200.0, 20.0 * xs))
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"


def test_roofline_algorithm_filter():
    fig = viz.roofline_figure(_bench_data(), algorithms=["torch"])
    assert set(_gids(fig, "point:")) == {"point:resnet_64x56:torch", "point:stem_7x7_s2:torch"}


def _breadth_data():
    rows = [
        dict(
            op="a1",
            family="conv1d",
            description="x[1, 8, 64] w[8, 8, 3] padding=1",
            convlab_s=2e-3,
            torch_s=1e-3,
            ratio_torch=0.5,
            gflops=30.0,
            torch_gflops=60.0,
            ceiling=0.75,
        ),
        dict(
            op="a2",
            family="conv1d",
            description="x[2, 8, 64] w[16, 8, 5]",
            convlab_s=1e-3,
            torch_s=3e-3,
            ratio_torch=3.0,
            gflops=60.0,
            torch_gflops=20.0,
        ),
        dict(
            op="b1",
            family="float64",
            description="x[1, 4, 9, 9] w[4, 4, 3, 3] float64",
            convlab_s=4e-3,
            torch_s=None,
            ratio_torch=None,
            gflops=6.0,
        ),
    ]
    return {"runs": [{"threads": 2, "peak_gflops": 120.0, "results": rows}]}


def test_breadth_table_has_one_row_per_operation_with_its_numbers():
    data = _breadth_data()
    lines = viz.breadth_table(data).splitlines()
    assert len(lines) == 2 + 3
    # the family (named once), the operation, its shapes, then paired cells (convlab / PyTorch),
    # so that the table fits a book page
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [c[0] for c in rows] == ["conv1d", "", "float64"]
    cells = [c[1:] for c in rows]
    assert all(len(c) == 6 for c in cells)
    assert [c[0] for c in cells] == ["`a1`", "`a2`", "`b1`"]
    assert cells[0][1] == "[1,8,64] [8,8,3] padding=1"
    for c, r in zip(cells, data["runs"][0]["results"], strict=True):
        ours_ms, torch_ms = c[2].split(" / ")
        assert float(ours_ms) == pytest.approx(1e3 * r["convlab_s"], abs=0.005)
        ours_pct, torch_pct = c[4].split(" / ")
        assert float(ours_pct) == pytest.approx(100 * r["gflops"] / 120.0, abs=0.5)
        if r["torch_s"] is None:  # no PyTorch time: nothing invented
            assert torch_ms == torch_pct == c[3] == "n/a"
        else:
            assert float(torch_ms) == pytest.approx(1e3 * r["torch_s"], abs=0.005)
            assert float(torch_pct) == pytest.approx(100 * r["torch_gflops"] / 120.0, abs=0.5)
            assert float(c[3]) == pytest.approx(r["ratio_torch"])
    # the ceiling where it was measured; n/a where a row (or an older run) has none
    assert [c[5] for c in cells] == ["0.75", "n/a", "n/a"]
    with pytest.raises(ValueError, match="threads=3"):
        viz.breadth_table(data, threads=3)


@pytest.mark.parametrize(
    "layer", [(48, 80, 3, 40, 4), (3, 64, 7, 112, 1), (256, 256, 3, 14, 2), (64, 64, (1, 5), 20, 1)]
)
def test_engine_figure_draws_consistent_products_to_scale(layer):
    import matplotlib.pyplot as plt

    from convlab.algorithms import _im2col_plan

    c_in, c_out, k, size, batch = layer
    fig = viz.engine_figure(c_in, c_out, k, size, batch=batch)
    try:
        kernel = (k, k) if isinstance(k, int) else k
        taps = kernel[0] * kernel[1]
        plan = fig.plan
        sizes = {}
        for ax in fig.axes:
            for patch in ax.patches:
                sizes[patch.get_gid()] = (round(patch.get_height()), round(patch.get_width()))
        for p in range(3):
            (m, k1), (k2, n), (m2, n2) = (sizes[f"matrix:{p}:{i}"] for i in range(3))
            assert k1 == k2 and m == m2 and n == n2  # a product of these shapes
        assert sizes["matrix:0:0"] == (c_out, plan["rows"])
        # the input channels in chunks of rows / taps: they cover them, none to spare
        assert plan["rows"] % taps == 0
        assert plan["rows"] * plan["parts"] >= c_in * taps > plan["rows"] * (plan["parts"] - 1)
        assert sizes["matrix:0:2"] == (c_out, plan["block"])
        assert sizes["matrix:2:2"] == (c_in, plan["back_block"])
        assert sizes["matrix:2:0"] == (c_in, plan["back_rows"])
        assert (
            plan["back_rows"] * plan["back_parts"]
            >= c_out * taps
            > plan["back_rows"] * (plan["back_parts"] - 1)
        )
        assert plan["grad_rows"] * plan["grad_parts"] >= c_in * taps
        # the weight gradient as convlab computes it: by the tile, one product per kernel row
        # (the stem's 3 channels by BLAS over columns; with AVX2, 128 channels or more too)
        narrow = _tile.VECTOR_BYTES < 64 and c_in >= _engine.TILE_MAX_CHANNELS_AVX2
        assert plan["grad_tile"] == (c_in > 3 and not narrow)
        if plan["grad_tile"]:
            assert plan["grad_rows"] * plan["grad_parts"] == c_in * taps
            assert sizes["matrix:1:0"] == (c_out, plan["grad_block"])
            assert sizes["matrix:1:2"] == (c_out, kernel[1] * c_in)
        else:
            assert sizes["matrix:1:0"] == (plan["grad_rows"], plan["grad_block"])
        _, block, _, _, pieces, segments = _im2col_plan(
            batch, c_in, c_out, kernel, (size, size), 4, 1, threads=1
        )
        assert plan["block"] == block and plan["blocks"] == pieces * segments
        assert plan["blocks"] * plan["block"] >= size * size
        assert (
            plan["back_block"]
            == _im2col_plan(batch, c_out, c_in, kernel, (size, size), 4, 1, threads=1)[1]
        )
    finally:
        plt.close(fig)


def test_engine_figure_rejects_bad_sizes():
    with pytest.raises(ValueError, match="kernel_size"):
        viz.engine_figure(8, 8, 0, 10)
    with pytest.raises(TypeError, match="c_in"):
        viz.engine_figure(8.0, 8, 3, 10)


@pytest.mark.parametrize(
    "kernel, size, padding, dilation", [(3, (5, 7), 1, 1), ((2, 4), (6, 9), (0, 2), (2, 1))]
)
def test_implicit_figure_draws_the_kernels_own_runs(kernel, size, padding, dilation):
    """Each tap's run starts at the offset the kernel uses, is n long, and uses W_out of every
    wq values; the buffer shown is what _fill writes (an input value where the padded window
    lies on the input, 0 in the padding)."""
    import matplotlib.pyplot as plt

    from convlab import _implicit

    fig = viz.implicit_figure(kernel, size, padding, dilation)
    plan = fig.plan
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    p = (padding, padding) if isinstance(padding, int) else padding
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    out = [s + 2 * q - e * (c - 1) for s, q, e, c in zip(size, p, d, k, strict=True)]
    assert plan["wq"] == out[1] + (k[1] - 1) * d[1] and plan["rq"] == out[0] + (k[0] - 1) * d[0]
    assert plan["n"] == (out[0] - 1) * plan["wq"] + out[1]
    offsets = np.empty(k[0] * k[1], np.int64)
    _implicit.tap_offsets(1, (1, *k), (1, 1, 1), (1, *d), plan["rq"], plan["wq"], offsets)
    assert plan["offsets"] == offsets.tolist()
    patches = [a for ax in fig.axes for a in ax.patches if (a.get_gid() or "").startswith("run:")]
    used = sum(a.get_gid().endswith("used") for a in patches)
    panels = len(fig.axes)
    assert used == panels * out[0] * out[1]
    assert len(patches) == panels * plan["n"]
    assert plan["wasted"] == pytest.approx((len(patches) - used) / len(patches))
    # the cells hold the input's indices where the buffer holds input (0 first), none in padding
    texts = [int(t.get_text()) for t in fig.axes[0].texts]
    assert texts == sorted(texts) and texts[0] == 0 and len(texts) <= size[0] * size[1]
    plt.close(fig)


def test_implicit_figure_rejects_bad_sizes():
    with pytest.raises(ValueError, match="kernel_size"):
        viz.implicit_figure(0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        viz.implicit_figure(7, (3, 3), 0)

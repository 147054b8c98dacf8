"""The breadth benchmark (python -m convlab.bench --layers breadth): it covers every public
operation with at least two shapes, each convlab call computes what the matching PyTorch call
would (checked against tests/naive.py on the small shapes), the CLI writes its table and JSON, and
its summary and figure are computed from the rows."""

import inspect
import itertools
import json
import math

import numpy as np
import pytest
from naive_separable import filter_channels

import convlab
import convlab.grad
from convlab import _breadth, bench, viz
from convlab._args import ntuple

KINDS_BY_FUNCTION = {
    "conv1d": ("conv", 1),
    "conv2d": ("conv", 2),
    "conv3d": ("conv", 3),
    "conv_transpose1d": ("transpose", 1),
    "conv_transpose2d": ("transpose", 2),
    "conv_transpose3d": ("transpose", 3),
    "grad.conv1d_input": ("grad_input", 1),
    "grad.conv2d_input": ("grad_input", 2),
    "grad.conv3d_input": ("grad_input", 3),
    "grad.conv1d_weight": ("grad_weight", 1),
    "grad.conv2d_weight": ("grad_weight", 2),
    "grad.conv3d_weight": ("grad_weight", 3),
    "depthwise_separable_conv2d": ("separable", 2),
    "spatially_separable_conv2d": ("spatial", 2),
    "deform_conv2d": ("deform", 2),
    "grad.deform_conv2d": ("deform_backward", 2),
    "nn.MaxPool2d": ("pool", 2),
    "nn.ReLU": ("relu", 2),
}


def test_every_public_operation_has_at_least_two_shapes():
    public = {f"grad.{n}" for n in convlab.grad.__all__} | {
        n for n in KINDS_BY_FUNCTION if not n.startswith("grad.")
    }
    assert public <= set(KINDS_BY_FUNCTION)  # a new grad function needs a row here
    for function, (kind, nd) in KINDS_BY_FUNCTION.items():
        ops = [op for op in _breadth.OPS if op.kind == kind and op.nd == nd]
        if function == "conv2d":  # conv2d's rows are spread over the families
            assert len(ops) >= 10
        else:
            assert len(ops) >= 2, function
    families = {}
    for op in _breadth.OPS:
        families.setdefault(op.family, []).append(op.name)
    assert list(families) == list(_breadth.FAMILIES)
    assert all(len(names) >= 2 for names in families.values()), families
    assert any(op.dtype == "float64" for op in _breadth.OPS)
    assert len(_breadth.BY_NAME) == len(_breadth.OPS)


@pytest.mark.parametrize(
    "name", [op.name for op in _breadth.OPS if op.kind in ("conv", "transpose")]
)
def test_forward_rows_have_the_shapes_and_work_they_describe(name):
    """The row's call gives the output shape PyTorch's formula gives, and the row's MAC count
    is convlab.count_macs of that layer (transposed: every input pixel scatters its products)."""
    op = _breadth.BY_NAME[name]
    x_shape, w_shape = op.shapes(small=True)
    cl, _ = op.build(np.random.default_rng(0), small=True)
    out = cl()
    kw = op.kwargs
    if op.kind == "conv":
        spatial = convlab.conv_output_size(
            x_shape[2:],
            w_shape[2:],
            kw.get("stride", 1),
            kw.get("padding", 0),
            kw.get("dilation", 1),
        )
        assert out.shape == (x_shape[0], w_shape[0], *spatial)
        macs = convlab.count_macs(
            x_shape[1],
            w_shape[0],
            w_shape[2:],
            x_shape[2:],
            kw.get("stride", 1),
            kw.get("padding", 0),
            kw.get("dilation", 1),
            groups=kw.get("groups", 1),
            batch=x_shape[0],
        )
        assert op.macs(small=True) == macs
    else:
        spatial = convlab.conv_transpose_output_size(
            x_shape[2:],
            w_shape[2:],
            kw.get("stride", 1),
            kw.get("padding", 0),
            kw.get("output_padding", 0),
            kw.get("dilation", 1),
        )
        assert out.shape == (x_shape[0], w_shape[1], *spatial)
        pixels = x_shape[0] * x_shape[1] * math.prod(x_shape[2:])
        assert op.macs(small=True) == pixels * w_shape[1] * math.prod(w_shape[2:])
    assert out.dtype == np.dtype(op.dtype)


@pytest.mark.parametrize("name", [op.name for op in _breadth.OPS if op.kind in ("pool", "relu")])
def test_layer_rows_give_the_input_gradient_of_their_layer(name):
    """A pooling or ReLU row runs the layer forward and backward: its result is the input
    gradient the loops of tests/naive.py give for the row's window."""
    import naive

    op = _breadth.BY_NAME[name]
    rng = np.random.default_rng(0)
    cl, _ = op.build(rng, small=True)
    got = cl()
    rng = np.random.default_rng(0)  # the same draws as build: x, the weight, the gradient
    x_shape, w_shape = op.shapes(small=True)
    x = rng.standard_normal(x_shape).astype(np.float32)
    rng.standard_normal(w_shape)
    if op.kind == "pool":
        out, winners = naive.max_pool2d(x, w_shape[2:], **op.kwargs)
        go = rng.standard_normal(out.shape).astype(np.float32)
        want = naive.max_pool2d_backward(go, winners, x.shape)
    else:
        go = rng.standard_normal(x.shape).astype(np.float32)
        want = np.where(x > 0, go, 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert op.macs(small=True) > 0 and op.padded_share() is None


@pytest.mark.parametrize(
    "name", [op.name for op in _breadth.OPS if op.kind in ("grad_input", "grad_weight")]
)
def test_gradient_rows_are_the_adjoint_of_their_forward(name):
    """<conv(x, w), g> = <x, grad_input(g)> = <w, grad_weight(x, g)>: a gradient row computes the
    gradient of the convolution it describes (its arguments reach convlab.grad)."""
    op = _breadth.BY_NAME[name]
    grad = op.build(np.random.default_rng(1), small=True)[0]()
    x_shape, w_shape = op.shapes(small=True)
    rng = np.random.default_rng(1)  # Op.build's draws, in its order: x, w, grad_output
    x = rng.standard_normal(x_shape).astype(op.dtype)
    w = (rng.standard_normal(w_shape) / math.sqrt(math.prod(w_shape[1:]))).astype(op.dtype)
    y = getattr(convlab, f"conv{op.nd}d")(x.astype(np.float64), w.astype(np.float64), **op.kwargs)
    g = rng.standard_normal(y.shape).astype(op.dtype)
    lhs = float(np.vdot(y, g))
    rhs = float(np.vdot(x if op.kind == "grad_input" else w, grad))
    assert rhs == pytest.approx(lhs, rel=1e-4, abs=1e-3)


def test_every_row_runs_through_the_cli(tmp_path, capsys):
    """Every operation, small, one thread, no torch: the table lists each, the JSON holds them."""
    code = bench.main(
        [
            "--layers",
            "breadth",
            "--small",
            "--threads",
            "1",
            "--repeats",
            "1",
            "--block",
            "1",
            "--settle",
            "0",
            "--passes",
            "2",
            "--no-torch",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "breadth.json").read_text())
    (run,) = data["runs"]
    assert [r["op"] for r in run["results"]] == [op.name for op in _breadth.OPS]
    for r in run["results"]:
        assert r["op"] in printed
        assert r["convlab_s"] > 0 and r["torch_s"] is None and r["ratio_torch"] is None
        # the products-alone time is measured without torch; the ceiling needs torch's time
        op = _breadth.BY_NAME[r["op"]]
        assert (r["gemm_bound_s"] is None) == (not _breadth.gemm_products(op))
        assert r["ceiling"] is None
        if r["gemm_bound_s"] is not None:
            rate = 1e9 * r["gemm_rate_gflops"]
            assert r["gemm_bound_s"] == pytest.approx(2 * op.macs(small=True) / rate)
            # the lowering, marked /tile where convlab's own tiles ran it faster than BLAS
            assert r["gemm_lowering"].removesuffix("/tile") in _breadth.gemm_products(
                op, small=True
            )
    assert run["small"] is True and data["config"]["settle"] == 0
    assert run["passes"] == data["config"]["passes"] == 2
    assert not list(tmp_path.glob("*.png"))  # no ratios to draw without torch


def test_breadth_cannot_be_mixed_with_conv2d_layers(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--layers", "breadth,tiny_3x3", "--no-torch"])
    assert "cannot be combined" in capsys.readouterr().err


def test_breadth_pauses_by_default():
    parser = bench.build_parser()
    assert parser.parse_args(["--layers", "breadth"]).settle is None  # resolved in main
    assert bench.BREADTH_SETTLE_SECONDS > 0
    assert "settle" in inspect.signature(_breadth.run_breadth).parameters


def _fake(ratios_by_op, threads=2):
    rows = []
    for name, ratio in ratios_by_op.items():
        op = _breadth.BY_NAME[name]
        rows.append(
            dict(
                op=name,
                family=op.family,
                threads=threads,
                convlab_s=1e-3,
                torch_s=None if ratio is None else ratio * 1e-3,
                gflops=1.0,
                ratio_torch=ratio,
            )
        )
    return dict(threads=threads, peak_gflops=100.0, results=rows, load_average=[None, None])


def test_summary_is_the_geometric_mean_per_family_and_lists_slow_rows():
    ratios = {"conv1d_64_L1024_k5": 0.5, "conv1d_128to256_L512": 2.0, "stem7x7": 0.79}
    ratios["stem3x3"] = None  # no torch time: not counted
    run = _fake(ratios)
    (s,) = _breadth.summarize_breadth([run]).values()
    assert s["families"]["conv1d"] == pytest.approx(1.0)
    assert s["families"]["stem"] == pytest.approx(0.79)
    assert s["geomean"] == pytest.approx((0.5 * 2.0 * 0.79) ** (1 / 3))
    assert s["below"] == [["conv1d_64_L1024_k5", 0.5], ["stem7x7", 0.79]]
    assert s["bounded"] == []  # no ceilings in these rows
    text = _breadth.format_breadth(dict(runs=[run], summary={"2": s}))
    assert "rows below 0.8: conv1d_64_L1024_k5 0.50, stem7x7 0.79" in text


def test_figure_has_one_bar_per_timed_row():
    import matplotlib.pyplot as plt

    ratios = {op.name: 0.5 + i / 10 for i, op in enumerate(_breadth.OPS[:6])}
    ratios[_breadth.OPS[6].name] = None
    run = _fake(ratios)
    data = dict(runs=[run], summary=_breadth.summarize_breadth([run]), machine={"cpu": "test"})
    fig = viz.breadth_figure(data)
    try:
        gids = {p.get_gid() for p in fig.axes[0].patches}
        assert gids == {f"ratio:{name}" for name, r in ratios.items() if r is not None}
        widths = {p.get_gid(): p.get_width() for p in fig.axes[0].patches}
        assert all(widths[f"ratio:{n}"] == pytest.approx(r) for n, r in ratios.items() if r)
    finally:
        plt.close(fig)


def _unstrided_lowerings(op):
    products = _breadth.gemm_products(op)
    stride = op.kwargs.get("stride", 1)
    if stride != 1 and op.kind in ("transpose", "grad_input"):
        products.pop("gather")  # by phases, about taps / stride**d taps each: not exact
    return products


@pytest.mark.parametrize("name", [op.name for op in _breadth.OPS if _breadth.gemm_products(op)])
def test_every_lowering_does_the_rows_multiply_adds(name):
    """A lowering's product, over all the row's positions (not one block) and groups, is the
    row's multiply-add count: the ceiling divides the right work by the measured rate."""
    op = _breadth.BY_NAME[name]
    x, w = op.shapes()
    groups = op.kwargs.get("groups", 1)
    out_positions = x[0] * math.prod(op._out_spatial(x))
    in_positions = x[0] * math.prod(x[2:])
    for lowering, (m, k, n) in _unstrided_lowerings(op).items():
        if lowering == "weight":  # (C_out/g x positions) @ (positions x C_in/g * taps)
            total = m * out_positions * n
        elif lowering == "scatter":
            total = m * k * (in_positions if op.kind == "transpose" else out_positions)
        else:
            total = m * k * (out_positions if op.kind != "grad_input" else in_positions)
        assert total * groups == op.macs(), lowering
        assert min(m, k, n) >= 1 and n <= _breadth.CEILING_BLOCK or lowering == "weight"


def test_ceiling_is_the_products_time_at_the_best_rate():
    """gemm_ceiling times the lowerings' products on one thread, by BLAS and by convlab's tiles,
    and keeps the fastest: its time is the row's multiply-adds at that rate on every thread, and
    it is None without products."""
    op = _breadth.BY_NAME["convT2d_96to48_s2"]
    seconds, lowering, shape, rate = _breadth.gemm_ceiling(op, threads=2, repeats=2, small=True)
    assert (
        lowering.removesuffix("/tile") in ("gather", "scatter")
        and tuple(shape) in _breadth.gemm_products(op, small=True).values()
    )
    assert seconds == pytest.approx(2 * op.macs(small=True) / (2 * rate))
    assert 1e8 < rate < 1e13  # a measured rate in flop/s, not a time
    assert _breadth.gemm_ceiling(_breadth.BY_NAME["deform_64x56"], threads=2) is None


def test_summary_lists_rows_whose_ceiling_is_below_the_floor():
    run = _fake({"k7_64x28": 0.6, "k5_48x40": 0.7, "g8_128x28": 1.2})
    for r, ceiling in zip(run["results"], (0.75, 1.3, 2.0), strict=True):
        r["ceiling"] = ceiling
    (s,) = _breadth.summarize_breadth([run]).values()
    assert s["below"] == [["k7_64x28", 0.6], ["k5_48x40", 0.7]]
    assert s["bounded"] == [["k7_64x28", 0.75]]
    text = _breadth.format_breadth(dict(runs=[run], summary={"2": s}))
    assert "rate): k7_64x28 0.750" in text  # three decimals: 0.797 is not "0.80"


def test_passes_keep_each_librarys_best_call_of_the_whole_run(monkeypatch):
    """With passes, every row is timed once per pass; its best call is the best of all passes,
    its first call comes from the first pass and its ceiling is measured once."""
    names = ["conv1d_64_L1024_k5", "stem3x3"]
    blocks = iter([[3.0], [5.0], [2.0], [7.0]])  # pass 0: row 0, row 1; pass 1: row 0, row 1
    monkeypatch.setattr(bench, "_time_block", lambda fn, calls: next(blocks))
    ceilings = []
    monkeypatch.setattr(
        _breadth, "gemm_ceiling", lambda op, threads, small: ceilings.append(op.name) or None
    )
    run = _breadth.run_breadth(
        1, repeats=1, block=1, settle=0, use_torch=False, small=True, names=names, passes=2
    )
    assert [r["op"] for r in run["results"]] == names
    assert [r["convlab_s"] for r in run["results"]] == [2.0, 5.0]
    assert [r["convlab_median_s"] for r in run["results"]] == [2.5, 6.0]
    assert ceilings == names  # once per row, in the first pass
    assert run["passes"] == 2 and all(r["pass_ratios"] is None for r in run["results"])


def test_provenance_names_the_passes_and_the_pinned_threads():
    data = dict(
        machine=dict(cpu="AMD EPYC", cores=2, pin_threads=True),
        config=dict(layers=["breadth"], threads=[2], repeats=3, passes=3),
        runs=[],
        created="2026-12-07T12:00:00",
    )
    command = "`CONVLAB_PIN_THREADS=1 python -m convlab.bench --layers breadth --threads 2 "
    assert command + "--repeats 3 --passes 3`" in viz.benchmark_provenance(data)
    data["machine"]["pin_threads"], data["config"]["passes"] = False, 1
    command = "`python -m convlab.bench --layers breadth --threads 2 --repeats 3`"
    assert command in viz.benchmark_provenance(data)


CONV_ROWS = [op.name for op in _breadth.OPS if op.kind == "conv"]


def _padded_share_by_counting(op, small):
    """Every (output position, tap) pair of the layer, counted: the share reading padding."""
    x, w = op.shapes(small)
    nd = op.nd
    kw = op.kwargs
    stride, padding, dilation = (
        ntuple(kw.get(key, default), nd, key, allow_zero=True)
        for key, default in (("stride", 1), ("padding", 0), ("dilation", 1))
    )
    total = outside = 0
    for o in itertools.product(*map(range, op._out_spatial(x))):
        for t in itertools.product(*map(range, w[2:])):
            total += 1
            pos = [o[i] * stride[i] - padding[i] + t[i] * dilation[i] for i in range(nd)]
            outside += any(not 0 <= pos[i] < x[2 + i] for i in range(nd))
    return outside / total


@pytest.mark.parametrize("name", CONV_ROWS)
def test_padded_share_is_the_share_of_pairs_reading_padding(name):
    op = _breadth.BY_NAME[name]
    assert op.padded_share(small=True) == pytest.approx(_padded_share_by_counting(op, True))


@pytest.mark.parametrize("name", ["s2_b128_128to256x8", "k7_64x28", "d6_128x32"])
def test_padded_share_of_full_size_rows(name):
    op = _breadth.BY_NAME[name]
    assert op.padded_share() == pytest.approx(_padded_share_by_counting(op, False))


def test_padded_share_is_only_for_forward_rows():
    assert _breadth.BY_NAME["conv1d_64_L1024_k5"].padded_share() > 0
    kinds = {op.kind for op in _breadth.OPS if op.padded_share() is None}
    assert "conv" not in kinds and "grad_input" in kinds


class _NumpyTorch:
    """A stand-in for torch whose conv functions are convlab's (tensors are NumPy arrays)."""

    __version__ = "stand-in"

    def __init__(self):
        import types

        self.nn = types.SimpleNamespace(
            functional=types.SimpleNamespace(
                **{f"conv{d}d": getattr(convlab, f"conv{d}d") for d in (1, 2, 3)}
            )
        )

    @staticmethod
    def from_numpy(a):
        return a

    def set_num_threads(self, n):
        pass


@pytest.mark.parametrize("name", CONV_ROWS)
def test_zero_padded_call_computes_the_same_layer(name):
    """A padded row's "torch_zeros" call runs the layer on the input with its padding written
    in as zeros and no padding: the same output as the row's own call."""
    op = _breadth.BY_NAME[name]
    _, th = op.build(np.random.default_rng(0), small=True)
    calls = th(_NumpyTorch(), None)
    assert set(calls) == ({"torch", "torch_zeros"} if op.padded_share(True) else {"torch"})
    if "torch_zeros" in calls:
        np.testing.assert_allclose(calls["torch_zeros"](), calls["torch"](), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [op.name for op in _breadth.OPS if op.kind == "spatial"])
def test_spatial_rows_time_the_same_filter_in_both_libraries(name):
    """A spatially separable row: convlab's passes and the "torch" call (a column then a row
    depthwise convolution per term, here run by convlab's conv2d) filter every channel with
    the kernel ``col @ row``, as the naive filter does; the row counts the passes' work."""
    op = _breadth.BY_NAME[name]
    cl, th = op.build(np.random.default_rng(0), small=True)
    out = cl()
    np.testing.assert_allclose(th(_NumpyTorch(), None)(), out, rtol=1e-4, atol=1e-5)
    x_shape, w_shape = op.shapes(small=True)
    rng = np.random.default_rng(0)  # Op.build's draws, in its order: x, w, col, row
    x = rng.standard_normal(x_shape).astype(op.dtype)
    rng.standard_normal(w_shape)
    col = rng.standard_normal((w_shape[2], op.w2)) / math.sqrt(w_shape[2])
    row = rng.standard_normal((op.w2, w_shape[3])) / math.sqrt(w_shape[3])
    kernel = col.astype(op.dtype).astype(np.float64) @ row.astype(op.dtype)
    expected = filter_channels(x, kernel, op.kwargs.get("stride", 1), op.kwargs["padding"])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert op.macs(small=True) == convlab.count_macs_spatially_separable(
        x_shape[1],
        w_shape[2:],
        x_shape[2:],
        op.w2,
        op.kwargs.get("stride", 1),
        op.kwargs["padding"],
        batch=x_shape[0],
    )


def test_rows_keep_the_zero_padded_time_and_its_ratio(monkeypatch):
    """Each library, and PyTorch on the zero-padded input, in its own block: the row keeps the
    best of each and the ratio on the same multiply-adds."""
    names = ["k7_64x28", "conv3d_24x12x32"]
    blocks = iter([[4.0], [3.0], [6.0], [2.0], [1.0], [5.0]])  # convlab, torch, torch_zeros
    monkeypatch.setattr(bench, "_time_block", lambda fn, calls: next(blocks))
    monkeypatch.setattr(bench, "_torch_module", _NumpyTorch)
    monkeypatch.setattr(_breadth, "gemm_ceiling", lambda op, threads, small: None)
    run = _breadth.run_breadth(1, repeats=1, block=1, settle=0, small=True, names=names)
    first, second = run["results"]
    assert (first["torch_zeros_s"], first["ratio_zeros"]) == (6.0, 1.5)
    assert (second["torch_zeros_s"], second["ratio_zeros"]) == (5.0, 2.5)
    assert first["ratio_torch"] == 0.75
    assert first["padded_share"] == _breadth.BY_NAME["k7_64x28"].padded_share(small=True)


def test_summary_gives_the_slow_rows_on_the_same_work():
    run = _fake({"k7_64x28": 0.6, "k5_48x40": 0.9, "stem3x3": 0.7})
    for r, zeros in zip(run["results"], (0.75, 1.0, None), strict=True):
        r["ratio_zeros"], r["padded_share"] = zeros, 0.12
    (s,) = _breadth.summarize_breadth([run]).values()
    assert s["same_work"] == [["k7_64x28", 0.75, 0.12]]  # stem3x3: below, no zero-padded time
    text = _breadth.format_breadth(dict(runs=[run], summary={"2": s}))
    assert "(zeros/x): k7_64x28 0.75 (12% padded)" in text

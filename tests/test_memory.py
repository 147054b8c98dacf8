"""What the gradients, the 3-D convolution and the stride-1 transposed convolution allocate: their
output plus the per-thread column blocks of the engine (convlab/_engine.py), whose size
``weight_grad_workspace_nbytes`` and ``conv_workspace_nbytes`` report; never a buffer that grows
with the batch or with the whole im2col matrix. Traced warm, in a fresh thread whose reused
buffers start empty (tests/traced.py)."""

import math

import numba
import numpy as np
import pytest
from traced import traced_peak

import convlab
import convlab.grad
from convlab import _engine, _implicit

#: array headers, views and argument tuples of one call: a few KiB, far below any buffer the
#: tests are about (the smallest, a 3-D layer's weight gradient, is 55 KiB)
SLACK = 2**15

# (input shape, weight shape, padding, dilation): 1-, 2- and 3-D
LAYERS = {
    "1d": ((4, 64, 1024), (64, 64, 5), 2, 1),
    "2d": ((4, 48, 40, 40), (80, 48, 3, 3), 1, 1),
    "2d_dilated": ((2, 32, 30, 30), (32, 32, 3, 3), 2, 2),
    "3d": ((2, 16, 8, 28, 28), (32, 16, 3, 3, 3), 1, 1),
}


def _data(x_shape, w_shape, padding, dilation, seed):
    rng = np.random.default_rng(seed)
    nd = len(x_shape) - 2
    out = convlab.conv_output_size(x_shape[2:], w_shape[2:], 1, padding, dilation)
    out = (out,) if isinstance(out, int) else tuple(out)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    g = rng.standard_normal((x_shape[0], w_shape[0], *out)).astype(np.float32)
    return nd, x, w, g, out


def _small(x_shape, w_shape, padding, dilation):
    """A tiny input and output gradient of the same layer (the fresh thread's warm-up call)."""
    nd = len(x_shape) - 2
    x = np.zeros((1, x_shape[1]) + (dilation * 2 + 3,) * nd, dtype=np.float32)
    out = convlab.conv_output_size(x.shape[2:], w_shape[2:], 1, padding, dilation)
    out = (out,) if isinstance(out, int) else tuple(out)
    return x, np.zeros((1, w_shape[0], *out), dtype=np.float32)


def _triple(values, fill):
    return (fill,) * (3 - len(values)) + tuple(values)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_weight_gradient_allocates_the_gradient_and_its_blocks(layer, threads):
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    x_shape, w_shape, padding, dilation = LAYERS[layer]
    nd, x, w, g, out = _data(x_shape, w_shape, padding, dilation, 1)
    fn = getattr(convlab.grad, f"conv{nd}d_weight")
    kw = dict(padding=padding, dilation=dilation)
    x_small, g_small = _small(x_shape, w_shape, padding, dilation)
    peak, grad = traced_peak(
        lambda: fn(x, w.shape, g, **kw),
        thread_warmup=lambda: fn(x_small, w.shape, g_small, **kw),
        threads=threads,
    )
    workspace = _engine.weight_grad_workspace_nbytes(
        x_shape[0],
        x_shape[1],
        w_shape[0],
        _triple(w_shape[2:], 1),
        _triple(out, 1),
        4,
        1,
        threads,
        dilation=_triple((dilation,) * nd, 1),
    )
    assert workspace + grad.nbytes <= peak <= workspace + grad.nbytes + SLACK
    # bounded: far below the whole im2col matrix of the batch
    matrix = x_shape[0] * x_shape[1] * math.prod(w_shape[2:]) * math.prod(out) * 4
    assert workspace < matrix / 2
    assert grad.shape == w.shape


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_stride_one_input_gradient_allocates_what_the_convolution_it_equals_allocates(
    layer, threads
):
    """At stride 1 the input gradient is the convolution of the output gradient with the weight
    flipped and its channel axes swapped (no scatter): it allocates the gradient, one flipped copy
    of the weight, and the buffers of that convolution: in 1-D and 2-D what conv1d/conv2d
    allocate for it (Winograd's or im2col's, by conv2d's own choice), in 3-D the implicit
    product's buffers (implicit_workspace_nbytes)."""
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    x_shape, w_shape, padding, dilation = LAYERS[layer]
    nd, x, w, g, out = _data(x_shape, w_shape, padding, dilation, 2)
    fn = getattr(convlab.grad, f"conv{nd}d_input")
    kw = dict(padding=padding, dilation=dilation)
    x_small, g_small = _small(x_shape, w_shape, padding, dilation)
    peak, dx = traced_peak(
        lambda: fn(x.shape, w, g, **kw),
        thread_warmup=lambda: fn(x_small.shape, w, g_small, **kw),
        threads=threads,
    )
    assert dx.shape == x.shape
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * nd
    w_conv = np.ascontiguousarray(w.swapaxes(0, 1)[flip])
    if nd == 3:
        one = (1, 1, 1)
        workspace = _implicit.implicit_workspace_nbytes(
            x_shape[0],
            w_shape[0],
            w_shape[1],
            w_shape[2:],
            one,
            (dilation,) * 3,
            x_shape[2:],
            4,
            1,
            threads,
        )
        expected = dx.nbytes + w.nbytes + workspace
        assert expected <= peak <= expected + SLACK
        return
    conv = getattr(convlab, f"conv{nd}d")
    same = dict(padding=dilation * (w_shape[2] - 1) - padding, dilation=dilation)
    conv_peak, y = traced_peak(
        lambda: conv(g, w_conv, **same),
        thread_warmup=lambda: conv(g_small, w_conv, **same),
        threads=threads,
    )
    np.testing.assert_allclose(dx, y, rtol=1e-4, atol=1e-3)
    assert peak <= conv_peak + w.nbytes + SLACK


@pytest.mark.parametrize("threads", [1, 2])
def test_conv3d_allocates_its_output_and_blocks(threads):
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 24, 12, 32, 32)).astype(np.float32)
    w = rng.standard_normal((24, 24, 3, 3, 3)).astype(np.float32)
    peak, y = traced_peak(
        lambda: convlab.conv3d(x, w, padding=1),
        thread_warmup=lambda: convlab.conv3d(x[:1, :, :3, :3, :3], w, padding=1),
        threads=threads,
    )
    one = (1, 1, 1)
    workspace = _implicit.implicit_workspace_nbytes(
        2, 24, 24, (3, 3, 3), one, one, y.shape[2:], 4, 1, threads
    )
    assert workspace + y.nbytes <= peak <= workspace + y.nbytes + SLACK


# (input, weight (C_in, C_out/groups, *k), stride, padding, groups): strided, so the GEMM form
TRANSPOSED = {
    "1d": ((2, 96, 1024), (96, 48, 4), 2, 1, 1),
    "2d": ((4, 64, 32, 32), (64, 32, 4, 4), 2, 1, 1),
    "2d_grouped": ((2, 32, 20, 20), (32, 8, 3, 3), 2, 1, 2),
    "3d": ((1, 32, 8, 16, 16), (32, 16, 4, 4, 4), 2, 1, 1),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layer", list(TRANSPOSED))
def test_transposed_by_phases_allocates_its_output_and_one_block_per_thread(layer, threads):
    """``"auto"`` runs these layers by output phases (convlab._phases): the output, the packed
    weights and each thread's buffer of input rows and block of products (workspace_nbytes),
    nothing that grows with the batch."""
    from convlab import _phases, transposed

    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    x_shape, w_shape, stride, padding, groups = TRANSPOSED[layer]
    nd = len(x_shape) - 2
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    fn = getattr(convlab, f"conv_transpose{nd}d")
    kw = dict(stride=stride, padding=padding, groups=groups)
    tiny = x[(slice(0, 1), slice(None)) + (slice(0, 3),) * nd]
    peak, y = traced_peak(
        lambda: fn(x, w, **kw), thread_warmup=lambda: fn(tiny, w, **kw), threads=threads
    )
    assert transposed.phases_apply(y.shape, (stride,) * nd)
    t = lambda v: (1,) * (3 - nd) + tuple(v)  # noqa: E731
    args = (t(w_shape[2:]), t((stride,) * nd), (0,) * (3 - nd) + (padding,) * nd, (1, 1, 1))
    args += (groups, t(y.shape[2:]), 4, threads)
    space = _phases.workspace_nbytes(x_shape[:2] + t(x_shape[2:]), w_shape[:2] + args[0], *args[1:])
    bias = w_shape[1] * groups * 4  # the zero bias filled when none is given
    assert space + y.nbytes <= peak <= space + y.nbytes + bias + SLACK
    # bounded: larger batches take larger blocks only up to the implicit product's targets
    sizes = [
        _phases.workspace_nbytes(
            (n,) + x_shape[1:2] + t(x_shape[2:]), w_shape[:2] + args[0], *args[1:]
        )
        for n in (64, 4096)
    ]
    assert sizes[0] == sizes[1]
    reference = fn(x, w, **kw, algorithm="direct")
    np.testing.assert_allclose(y, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layer", list(TRANSPOSED))
def test_strided_transposed_convolution_allocates_its_output_and_one_block_per_thread(
    layer, threads
):
    """The GEMM form multiplies and folds one block of output channels of one image at a time:
    its columns take gemm_buffer_nbytes (one block per thread), not N * C_out * k * H * W."""
    from convlab import transposed

    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    x_shape, w_shape, stride, padding, groups = TRANSPOSED[layer]
    nd = len(x_shape) - 2
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    fn = getattr(convlab, f"conv_transpose{nd}d")
    kw = dict(stride=stride, padding=padding, groups=groups, algorithm="gemm")
    tiny = x[(slice(0, 1), slice(None)) + (slice(0, 3),) * nd]
    peak, y = traced_peak(
        lambda: fn(x, w, **kw), thread_warmup=lambda: fn(tiny, w, **kw), threads=threads
    )
    blocks = transposed.gemm_buffer_nbytes(
        x_shape,
        w_shape,
        groups,
        4,
        threads=threads,
        out_spatial=y.shape[2:],
        stride=(stride,) * nd,
        padding=(padding,) * nd,
    )
    # the bias: conv_transpose fills a zero one when none is given (C_out values)
    bias = w_shape[1] * groups * 4
    assert blocks + y.nbytes <= peak <= blocks + y.nbytes + bias + SLACK
    # bounded by the threads, not by the batch or the channels: one block of at most
    # GEMM_BLOCK_BYTES (or one output channel's columns, if those alone take more) per thread
    # (and the stride phases of one output channel, about its output plane)
    one_channel = math.prod(w_shape[2:]) * math.prod(x_shape[2:]) * 4
    phases = math.prod(o + padding + stride for o in y.shape[2:]) * 4
    assert blocks <= threads * (max(transposed.GEMM_BLOCK_BYTES, one_channel) + phases)
    reference = fn(x, w, stride=stride, padding=padding, groups=groups, algorithm="direct")
    np.testing.assert_allclose(y, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding",
    [
        ((2, 48, 40, 40), (64, 48, 5, 5), 1, 2),  # a 5x5 layer
        ((1, 3, 224, 224), (64, 3, 7, 7), 2, 3),  # the stem, by phases
        ((2, 64, 1, 1024), (64, 64, 1, 5), 1, (0, 2)),  # 1-D: straight into the output
    ],
    ids=["k5", "stem", "1d"],
)
def test_implicit_conv2d_allocates_its_output_and_buffers(
    threads, x_shape, w_shape, stride, padding
):
    """conv2d(algorithm="implicit") allocates the output and what implicit_workspace_nbytes says:
    each thread's buffer of input rows and block of products, the packed weight and the offsets."""
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    kw = dict(stride=stride, padding=padding, algorithm="implicit")
    peak, y = traced_peak(
        lambda: convlab.conv2d(x, w, **kw),
        thread_warmup=lambda: convlab.conv2d(x[:1, :, :9, :9], w, **kw),
        threads=threads,
    )
    s = (stride, stride) if isinstance(stride, int) else stride
    workspace = _implicit.implicit_workspace_nbytes(
        x_shape[0],
        x_shape[1],
        w_shape[0],
        (1, *w_shape[2:]),
        (1, *s),
        (1, 1, 1),
        (1, *y.shape[2:]),
        4,
        1,
        threads,
    )
    assert workspace + y.nbytes <= peak <= workspace + y.nbytes + SLACK


@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_weight_gradient_allocates_the_gradient_and_its_buffers(threads):
    """A depthwise layer's weight gradient: the gradient and each thread's buffers of input
    phases and output gradient (weight_grad_workspace_nbytes), nothing that grows with the
    batch."""
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 128, 40, 40)).astype(np.float32)
    g = rng.standard_normal((2, 128, 20, 20)).astype(np.float32)
    w_shape = (128, 1, 3, 3)
    kw = dict(stride=2, padding=1, groups=128)
    x_small = np.zeros((1, 128, 5, 5), dtype=np.float32)
    g_small = np.zeros((1, 128, 3, 3), dtype=np.float32)
    peak, grad = traced_peak(
        lambda: convlab.grad.conv2d_weight(x, w_shape, g, **kw),
        thread_warmup=lambda: convlab.grad.conv2d_weight(x_small, w_shape, g_small, **kw),
        threads=threads,
    )
    assert _engine.weight_grad_uses_dots(128, 128, 128, 9)
    args = (128, 128, (1, 3, 3), (1, 20, 20), 4, 128, threads, (1, 2, 2), (1, 1, 1), (0, 1, 1))
    workspace = _engine.weight_grad_workspace_nbytes(2, *args)
    assert workspace + grad.nbytes <= peak <= workspace + grad.nbytes + SLACK
    # bounded: the stacks of images stop growing at DOTS_STACK_BYTES of gradient
    larger = _engine.weight_grad_workspace_nbytes(64, *args)
    assert larger == _engine.weight_grad_workspace_nbytes(4096, *args)
    assert larger <= threads * 6 * _engine.DOTS_STACK_BYTES

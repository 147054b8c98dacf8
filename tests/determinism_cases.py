"""Every public operation on inputs that exercise its parallel splits: the cases of
tests/test_determinism.py.

Run as a script (``python determinism_cases.py OUT.npz THREADS...``) it computes every case once
per thread count, in this order, with ``numba.set_num_threads``, and saves the results as
``OUT.npz`` (keys ``"<case>|<threads>|<output index>"``). The test runs it in subprocesses so that
the process-wide thread settings (``NUMBA_NUM_THREADS``, the number of threads Numba starts) are
those of a fresh process, as on a machine with that many cores.

Shapes are chosen so that the work really is split: layers with more rows, tiles, channels or
columns than a thread count of 1, 2 or 3 divides evenly, odd sizes (tails), both Winograd splits
(by tiles, more than 128 tiles; by output channels, fewer), im2col's split of the input channels
(few output positions per thread) and its blocks of positions, float32 and float64.
"""

import sys

import numpy as np

#: case id -> (owner, the call); the owner names the family of kernels the case exercises
#: ("engine": im2col and what runs through it, dense conv1d/conv3d, the gradients and the
#: transposed convolutions; "deformable"; "runtime": the rest), for a reader of a failure
CASES = {}


def case(name, owner="runtime"):
    def register(fn):
        CASES[name] = (owner, fn)
        return fn

    return register


def _rng(seed):
    return np.random.default_rng(seed)


def _data(seed, *shapes, dtype=np.float32):
    rng = _rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# --------------------------------------------------------------------------- conv2d: Winograd


@case("conv2d-winograd-by-tiles-f32")
def _(cl):
    # 2 x 15 x 16 = 480 tiles (> 128): split by tile rows; odd H, 40 rows of blocks
    x, w, b = _data(1, (2, 24, 29, 31), (20, 24, 3, 3), (20,))
    return cl.conv2d(x, w, b, padding=1, algorithm="winograd")


@case("conv2d-winograd-by-tiles-large-f32")
def _(cl):
    # the shape of the benchmark's resnet_64x56: 784 tiles, several blocks per thread
    x, w, b = _data(2, (1, 64, 56, 56), (64, 64, 3, 3), (64,))
    return cl.conv2d(x, w, b, padding=1, algorithm="winograd")


@case("conv2d-winograd-by-tiles-groups-f64")
def _(cl):
    x, w, b = _data(3, (1, 12, 33, 30), (18, 4, 3, 3), (18,), dtype=np.float64)
    return cl.conv2d(x, w, b, padding=(1, 0), groups=3, algorithm="winograd")


@case("conv2d-winograd-dilated-f32")
def _(cl):
    # dilation 2 on odd sizes: four sub-images of unequal size in one batch, split by tiles
    x, w, b = _data(14, (1, 24, 37, 35), (20, 24, 3, 3), (20,))
    return cl.conv2d(x, w, b, padding=2, dilation=2, algorithm="winograd")


@case("conv2d-winograd-by-channels-f32")
def _(cl):
    # 7 x 7 = 49 tiles (<= 128): split by output channels; 77 of them (no even split)
    x, w, b = _data(4, (1, 96, 14, 14), (77, 96, 3, 3), (77,))
    return cl.conv2d(x, w, b, padding=1, algorithm="winograd")


@case("conv2d-winograd-by-channels-wide-f32")
def _(cl):
    # the shape of resnet_256x14: several channel blocks per thread
    x, w, b = _data(5, (1, 256, 14, 14), (256, 256, 3, 3), (256,))
    return cl.conv2d(x, w, b, padding=1, algorithm="winograd")


@case("conv2d-winograd-by-channels-groups-f64")
def _(cl):
    x, w, b = _data(6, (2, 10, 9, 11), (15, 2, 3, 3), (15,), dtype=np.float64)
    return cl.conv2d(x, w, b, padding=1, groups=5, algorithm="winograd")


# --------------------------------------------------------------------------- conv2d: others


@case("conv2d-auto-winograd-f32")
def _(cl):
    x, w, b = _data(7, (1, 64, 30, 30), (64, 64, 3, 3), (64,))
    return cl.conv2d(x, w, b, padding=1)


@case("conv2d-auto-f64")
def _(cl):
    x, w, b = _data(8, (2, 16, 21, 23), (24, 16, 3, 3), (24,), dtype=np.float64)
    return cl.conv2d(x, w, b, stride=2, padding=1)


@case("conv2d-direct-f32")
def _(cl):
    x, w, b = _data(9, (2, 7, 23, 29), (11, 7, 3, 5), (11,))
    return cl.conv2d(x, w, b, padding=(1, 2), algorithm="direct")


@case("conv2d-direct-grouped-strided-f64")
def _(cl):
    x, w, b = _data(10, (3, 8, 19, 17), (12, 4, 3, 3), (12,), dtype=np.float64)
    return cl.conv2d(x, w, b, stride=(2, 1), padding=2, dilation=2, groups=2, algorithm="direct")


@case("conv2d-fft-f32")
def _(cl):
    x, w, b = _data(11, (2, 6, 33, 27), (5, 6, 9, 7), (5,))
    return cl.conv2d(x, w, b, padding=3, algorithm="fft")


@case("conv2d-fft-grouped-f64")
def _(cl):
    x, w, b = _data(12, (1, 8, 25, 30), (6, 4, 5, 5), (6,), dtype=np.float64)
    return cl.conv2d(x, w, b, stride=2, dilation=(1, 2), groups=2, algorithm="fft")


@case("conv2d-depthwise-f32")
def _(cl):
    x, w, b = _data(13, (2, 19, 31, 29), (19, 1, 3, 3), (19,))
    return cl.conv2d(x, w, b, padding=1, groups=19)


@case("conv2d-depthwise-multiplier-strided-f64")
def _(cl):
    x, w, b = _data(14, (1, 7, 41, 37), (21, 1, 5, 3), (21,), dtype=np.float64)
    return cl.conv2d(x, w, b, stride=2, padding=(2, 1), dilation=(1, 2), groups=7)


@case("conv2d-im2col-f32", owner="engine")
def _(cl):
    x, w, b = _data(15, (2, 16, 37, 35), (24, 16, 3, 3), (24,))
    return cl.conv2d(x, w, b, padding=1, algorithm="im2col")


@case("conv2d-im2col-images-f32", owner="engine")
def _(cl):
    # small maps with a batch: blocks of whole images per product, 4 blocks (9, 9, 9, 6 images)
    x, w, b = _data(12, (33, 12, 6, 6), (10, 12, 3, 3), (10,))
    return cl.conv2d(x, w, b, stride=2, padding=1, algorithm="im2col")


@case("conv2d-im2col-split-channels-f32", owner="engine")
def _(cl):
    # few output positions per thread: im2col splits the input channels (split-K)
    x, w, b = _data(16, (1, 256, 7, 7), (128, 256, 3, 3), (128,))
    return cl.conv2d(x, w, b, padding=1, algorithm="im2col")


@case("conv2d-im2col-pointwise-f32", owner="engine")
def _(cl):
    x, w, b = _data(17, (1, 64, 28, 28), (96, 64, 1, 1), (96,))
    return cl.conv2d(x, w, b, algorithm="im2col")


@case("conv2d-im2col-grouped-strided-f64", owner="engine")
def _(cl):
    x, w, b = _data(18, (2, 12, 31, 33), (18, 6, 5, 3), (18,), dtype=np.float64)
    return cl.conv2d(x, w, b, stride=2, padding=1, groups=2, algorithm="im2col")


@case("conv2d-auto-stem-f32", owner="engine")
def _(cl):
    x, w, b = _data(19, (1, 3, 96, 96), (32, 3, 7, 7), (32,))
    return cl.conv2d(x, w, b, stride=2, padding=3)


# --------------------------------------------------------------------------- conv1d, conv3d


@case("conv1d-auto-f32", owner="engine")
def _(cl):
    x, w, b = _data(20, (3, 16, 301), (24, 16, 5), (24,))
    return cl.conv1d(x, w, b, padding=2)


@case("conv1d-depthwise-f64")
def _(cl):
    x, w, b = _data(21, (2, 9, 257), (18, 1, 7), (18,), dtype=np.float64)
    return cl.conv1d(x, w, b, stride=3, padding=3, groups=9)


@case("conv3d-f32", owner="engine")
def _(cl):
    x, w, b = _data(22, (2, 5, 9, 11, 10), (7, 5, 3, 3, 3), (7,))
    return cl.conv3d(x, w, b, padding=1)


@case("conv3d-depthwise-f64")
def _(cl):
    x, w, b = _data(23, (1, 6, 10, 13, 9), (6, 1, 3, 3, 3), (6,), dtype=np.float64)
    return cl.conv3d(x, w, b, stride=(1, 2, 1), padding=1, groups=6)


# --------------------------------------------------------------------------- transposed


@case("conv_transpose1d-f32", owner="engine")
def _(cl):
    x, w, b = _data(24, (2, 12, 61), (12, 8, 5), (8,))
    return cl.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1)


@case("conv_transpose2d-direct-f32", owner="engine")
def _(cl):
    x, w, b = _data(25, (2, 8, 17, 15), (8, 6, 4, 4), (6,))
    return cl.conv_transpose2d(x, w, b, stride=2, padding=1, algorithm="direct")


@case("conv_transpose2d-gemm-f32", owner="engine")
def _(cl):
    x, w, b = _data(26, (1, 64, 16, 16), (64, 32, 4, 4), (32,))
    return cl.conv_transpose2d(x, w, b, stride=2, padding=1, algorithm="gemm")


@case("conv_transpose2d-auto-grouped-f64", owner="engine")
def _(cl):
    x, w, b = _data(27, (2, 6, 13, 11), (6, 4, 3, 3), (8,), dtype=np.float64)
    return cl.conv_transpose2d(x, w, b, stride=(2, 3), padding=1, groups=2, dilation=2)


@case("conv_transpose3d-f32", owner="engine")
def _(cl):
    x, w, b = _data(28, (1, 4, 6, 7, 5), (4, 3, 3, 3, 3), (3,))
    return cl.conv_transpose3d(x, w, b, stride=2, padding=1)


# --------------------------------------------------------------------------- gradients


@case("grad.conv1d_input-f32", owner="engine")
def _(cl):
    w, g = _data(29, (10, 6, 5), (2, 10, 42))
    return cl.grad.conv1d_input((2, 6, 83), w, g, stride=2, padding=2)


@case("grad.conv2d_input-f32", owner="engine")
def _(cl):
    w, g = _data(30, (16, 8, 3, 3), (2, 16, 14, 13))
    return cl.grad.conv2d_input((2, 8, 28, 26), w, g, stride=2, padding=1)


@case("grad.conv3d_input-f64", owner="engine")
def _(cl):
    w, g = _data(31, (6, 4, 3, 3, 3), (1, 6, 5, 6, 4), dtype=np.float64)
    return cl.grad.conv3d_input((1, 4, 7, 8, 6), w, g)


@case("grad.conv1d_weight-f32", owner="engine")
def _(cl):
    x, g = _data(32, (3, 6, 90), (3, 10, 86))
    return cl.grad.conv1d_weight(x, (10, 6, 5), g)


@case("grad.conv2d_weight-f32", owner="engine")
def _(cl):
    x, g = _data(33, (4, 8, 30, 28), (4, 16, 15, 14))
    return cl.grad.conv2d_weight(x, (16, 8, 3, 3), g, stride=2, padding=1)


@case("grad.conv2d_weight-grouped-f64", owner="engine")
def _(cl):
    x, g = _data(34, (2, 6, 17, 19), (2, 9, 15, 17), dtype=np.float64)
    return cl.grad.conv2d_weight(x, (9, 2, 3, 3), g, groups=3)


@case("grad.conv3d_weight-f32", owner="engine")
def _(cl):
    x, g = _data(35, (2, 4, 8, 9, 7), (2, 5, 6, 7, 5))
    return cl.grad.conv3d_weight(x, (5, 4, 3, 3, 3), g)


@case("grad.conv2d_weight-tile-f32", owner="engine")
def _(cl):
    # by convlab's tile: 16 channels x 3 taps per row; 2 blocks of rows per image, 6 ranges
    x, g = _data(36, (3, 16, 37, 33), (3, 24, 37, 33))
    return cl.grad.conv2d_weight(x, (24, 16, 3, 3), g, padding=1)


@case("grad.conv1d_weight-tile-dilated-f64", owner="engine")
def _(cl):
    # by the tile, one tap per product (dilated); rows cut into segments
    x, g = _data(37, (2, 32, 1500), (2, 20, 1500), dtype=np.float64)
    return cl.grad.conv1d_weight(x, (20, 32, 3), g, padding=3, dilation=3)


@case("grad.conv3d_weight-tile-grouped-f32", owner="engine")
def _(cl):
    x, g = _data(38, (2, 32, 5, 12, 13), (2, 16, 3, 6, 7))
    return cl.grad.conv3d_weight(
        x, (16, 16, 3, 3, 3), g, stride=(1, 2, 2), padding=(0, 1, 1), groups=2
    )


@case("grad.conv2d_weight-depthwise-f32", owner="engine")
def _(cl):
    # one input channel per group: four stride phases, each output channel summed by one thread
    x, g = _data(39, (2, 128, 30, 29), (2, 128, 15, 15))
    return cl.grad.conv2d_weight(x, (128, 1, 3, 3), g, stride=2, padding=1, groups=128)


# --------------------------------------------------------------------------- separable


@case("depthwise_separable_conv2d-fused-f32")
def _(cl):
    x, dw, pw, db, pb = _data(36, (2, 8, 29, 31), (16, 1, 3, 3), (12, 16), (16,), (12,))
    return cl.depthwise_separable_conv2d(x, dw, pw, db, pb, padding=1, algorithm="fused")


@case("depthwise_separable_conv2d-two-pass-f64")
def _(cl):
    x, dw, pw = _data(37, (1, 24, 27, 25), (24, 1, 3, 3), (40, 24, 1, 1), dtype=np.float64)
    return cl.depthwise_separable_conv2d(x, dw, pw, stride=2, padding=1, algorithm="two_pass")


@case("depthwise_separable_conv2d-auto-f32")
def _(cl):
    x, dw, pw = _data(38, (1, 32, 40, 40), (32, 1, 3, 3), (64, 32))
    return cl.depthwise_separable_conv2d(x, dw, pw, padding="same")


@case("spatially_separable_conv2d-f32")
def _(cl):
    x, col, row = _data(39, (2, 5, 47, 43), (7, 2), (2, 5))
    return cl.spatially_separable_conv2d(x, col, row, padding=(3, 2))


@case("spatially_separable_conv2d-strided-f64")
def _(cl):
    x, col, row = _data(40, (1, 3, 38, 41), (5,), (9,), dtype=np.float64)
    return cl.spatially_separable_conv2d(x, col, row, stride=2, padding=1)


@case("spatially_separable_conv2d-narrow-f32")
def _(cl):
    # rows narrower than one vector run, a plane cut into blocks of two rows
    x, col, row = _data(41, (1, 1, 40, 5), (3,), (3,))
    return cl.spatially_separable_conv2d(x, col, row, padding=1)


@case("separate_kernel-f64")
def _(cl):
    (k,) = _data(41, (7, 7), dtype=np.float64)
    sep = cl.separate_kernel(k, rank=3)
    return sep.col, sep.row


# --------------------------------------------------------------------------- matrix views


@case("im2col-col2im-f32")
def _(cl):
    (x,) = _data(42, (2, 5, 23, 21))
    cols = cl.im2col(x, (3, 4), dilation=(1, 2), padding=1, stride=2)
    back = cl.col2im(cols, (23, 21), (3, 4), dilation=(1, 2), padding=1, stride=2)
    return cols, back


@case("conv_matrix-f64")
def _(cl):
    (w,) = _data(43, (3, 2, 3, 3), dtype=np.float64)
    m = cl.conv_matrix(w, (2, 9, 8), stride=2, padding=1)
    return m.toarray()


# --------------------------------------------------------------------------- deformable


def _deform_data(seed, dtype):
    rng = _rng(seed)
    n, c_in, c_out, h, w, k = 2, 8, 12, 15, 13, 3
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // 2, k, k)).astype(dtype)
    offset = (2 * rng.standard_normal((n, 2 * 2 * k * k, h, w))).astype(dtype)
    mask = rng.uniform(size=(n, 2 * k * k, h, w)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    grad = rng.standard_normal((n, c_out, h, w)).astype(dtype)
    return x, offset, weight, bias, mask, grad


@case("deform_conv2d-f32", owner="deformable")
def _(cl):
    x, offset, weight, bias, mask, _grad = _deform_data(44, np.float32)
    return cl.deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)


@case("grad.deform_conv2d-f32", owner="deformable")
def _(cl):
    x, offset, weight, bias, mask, grad = _deform_data(45, np.float32)
    grads = cl.grad.deform_conv2d(grad, x, offset, weight, bias, padding=1, mask=mask)
    return tuple(g for g in grads if g is not None)


@case("grad.deform_conv2d-f64", owner="deformable")
def _(cl):
    x, offset, weight, bias, mask, grad = _deform_data(46, np.float64)
    grads = cl.grad.deform_conv2d(grad, x, offset, weight, bias, padding=1, mask=mask)
    return tuple(g for g in grads if g is not None)


def compute(names, thread_counts):
    """{"<case>|<threads>|<index>": array} for every case and thread count."""
    import numba

    import convlab

    results = {}
    for threads in thread_counts:
        numba.set_num_threads(threads)
        for name in names:
            out = CASES[name][1](convlab)
            outs = out if isinstance(out, tuple) else (out,)
            for i, arr in enumerate(outs):
                results[f"{name}|{threads}|{i}"] = np.asarray(arr)
    return results


if __name__ == "__main__":
    out_path, *counts = sys.argv[1:]
    np.savez(out_path, **compute(list(CASES), [int(c) for c in counts]))

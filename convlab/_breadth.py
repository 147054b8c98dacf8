"""The breadth benchmark: every public operation of convlab against PyTorch, two or more shapes each.

``python -m convlab.bench --layers breadth`` runs it (see :mod:`convlab.bench`). The tuned suite
(``--layers all``) times ``conv2d`` on ResNet and MobileNet layers; this set samples the rest of
the API: 1-D and 3-D convolution, groups, dilation, strides, 5x5 and 7x7 kernels, the stems, the
transposed convolutions, every function of :mod:`convlab.grad`, the separable and deformable
layers and float64. Each operation is timed in blocks of back-to-back calls, one library at a
time, after a pause (never call by call in turn: one library's spinning threads must not be
billed to the other); the best block call is kept.
"""

import math
import statistics
import time

import numpy as np
from numba import njit

from ._args import ntuple
from ._blas import matmul_into
from ._tile import TILES_ROWS, tile_matmul
from .algorithms import pad_input
from .bench import _timed_passes
from .config import NJIT_OPTIONS
from .shapes import (
    conv_output_size,
    conv_transpose_output_size,
    count_macs_spatially_separable,
    padding_pairs,
)

#: families of operations, in the order the table and the figure show them
FAMILIES = (
    "conv1d",
    "grouped",
    "dilated",
    "strided",
    "large kernel",
    "stem",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "grad input",
    "grad weight",
    "separable",
    "spatially separable",
    "deformable",
    "nn layers",
    "float64",
)


class Op:
    """One operation to time: a convlab call and the PyTorch (or torchvision) call it matches.

    ``kind``: ``conv`` (``conv{1,2,3}d`` by the weight's rank), ``transpose``
    (``conv_transpose{1,2,3}d``), ``grad_input``/``grad_weight`` (:mod:`convlab.grad`, the
    gradients of a convolution with these shapes), ``separable``
    (:func:`convlab.depthwise_separable_conv2d`; ``w`` is the depthwise weight, ``w2`` the
    pointwise one), ``spatial`` (:func:`convlab.spatially_separable_conv2d`; ``w`` is the
    depthwise weight ``(C, 1, kH, kW)`` it equals, ``w2`` the number of terms, against two
    depthwise ``conv2d`` passes per term), ``deform`` and ``deform_backward``
    (:func:`convlab.deform_conv2d`, then also :func:`convlab.grad.deform_conv2d`, against
    torchvision's forward and autograd backward), ``pool`` and ``relu``
    (:class:`convlab.nn.MaxPool2d` and :class:`convlab.nn.ReLU`, forward then backward, against
    PyTorch's functions and autograd; ``w[2:]`` is the pooling window, unused by ``relu``).
    ``x``/``w`` are the shapes of the convolution's input and weight (for ``transpose``, the
    transposed convolution's: weight ``(C_in, C_out / groups, *k)``).
    """

    __slots__ = ("name", "family", "kind", "x", "w", "w2", "kwargs", "dtype")

    def __init__(self, name, family, kind, x, w, w2=None, dtype="float32", **kwargs):
        self.name, self.family, self.kind = name, family, kind
        self.x, self.w, self.w2, self.kwargs, self.dtype = tuple(x), tuple(w), w2, kwargs, dtype

    @property
    def nd(self):
        return len(self.x) - 2

    def _out_spatial(self, x):
        kw = self.kwargs
        stride, padding, dilation = kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1)
        if self.kind == "transpose":
            output_padding = kw.get("output_padding", 0)
            k = self.w[2:]
            return conv_transpose_output_size(x[2:], k, stride, padding, output_padding, dilation)
        return conv_output_size(x[2:], self.w[2:], stride, padding, dilation)

    def shapes(self, small=False):
        """(input shape, weight shape): ``small`` shrinks every spatial size to at most 9."""
        x = self.x
        if small:
            x = x[:2] + tuple(min(s, 9) for s in x[2:])
        return x, self.w

    def macs(self, small=False):
        """Multiply-accumulates of the convolution (of the forward pass for the gradients)."""
        x, w = self.shapes(small)
        groups = self.kwargs.get("groups", 1)
        taps = math.prod(w[2:])
        if self.kind == "transpose":  # every input pixel scatters C_out/groups x taps products
            return x[0] * x[1] * math.prod(x[2:]) * w[1] * taps
        out = math.prod(self._out_spatial(x))
        macs = x[0] * w[0] * out * (x[1] // groups) * taps
        if self.kind == "separable":
            macs = x[0] * x[1] * out * taps + x[0] * self.w2[0] * out * x[1]
        if self.kind == "spatial":
            kw = self.kwargs
            macs = count_macs_spatially_separable(
                x[1],
                w[2:],
                x[2:],
                self.w2,
                kw.get("stride", 1),
                kw.get("padding", 0),
                batch=x[0],
            )
        if self.kind == "deform_backward":
            macs *= 3  # forward, and the input (samples) and weight gradients
        if self.kind == "pool":  # a comparison per tap of every output
            macs = x[0] * x[1] * out * taps
        if self.kind == "relu":  # an element
            macs = math.prod(x)
        return macs

    def _geometry(self, small=False):
        """``(stride, dilation, pairs)`` of a forward row, per spatial dimension: the keyword
        arguments as ``conv{n}d`` reads them (``pairs``: the padding before and after)."""
        x, w = self.shapes(small)
        kw = self.kwargs
        stride = ntuple(kw.get("stride", 1), self.nd, "stride")
        dilation = ntuple(kw.get("dilation", 1), self.nd, "dilation")
        pairs = padding_pairs(kw.get("padding", 0), w[2:], stride, dilation)
        return stride, dilation, pairs

    def padded_share(self, small=False):
        """The share of a forward row's multiply-adds whose input value is padding, from the
        shapes (``None`` for the other kinds). PyTorch's CPU kernels (oneDNN) leave those
        products out; convlab's matrix products compute them, with zeros."""
        if self.kind != "conv":
            return None
        x, w = self.shapes(small)
        stride, dilation, pairs = self._geometry(small)
        inside = 1.0
        for size, k, s, (p, _), d, o in zip(
            x[2:], w[2:], stride, pairs, dilation, self._out_spatial(x), strict=True
        ):
            # along this dimension: (output, tap) pairs that land inside the input
            hits = 0
            for i in range(o):
                first = max(0, -(-(p - i * s) // d))  # the first tap at or after input 0
                last = min(k - 1, (size - 1 - i * s + p) // d)  # the last before the end
                hits += max(0, last - first + 1)
            inside *= hits / (o * k)
        return 1.0 - inside

    def describe(self):
        x, w = self.x, self.w
        extra = " ".join(f"{k}={v}" for k, v in self.kwargs.items())
        text = f"x{list(x)} w{list(w)}" + (f" {extra}" if extra else "")
        if self.kind == "spatial":
            text += f" rank={self.w2}"
        return text + (" float64" if self.dtype == "float64" else "")

    def build(self, rng, small=False):
        """``(convlab_call, torch_call)``: ``torch_call(torch, torchvision)`` makes the PyTorch
        call from the same data (``None`` when it needs torchvision and that is missing)."""
        import convlab
        import convlab.grad

        dtype = np.dtype(self.dtype)
        x_shape, w_shape = self.shapes(small)
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype) / math.sqrt(math.prod(w_shape[1:]))
        kw = dict(self.kwargs)
        nd = self.nd
        if self.kind in ("conv", "transpose"):
            name = f"conv{nd}d" if self.kind == "conv" else f"conv_transpose{nd}d"
            b = rng.standard_normal(w_shape[0] if self.kind == "conv" else w_shape[1])
            b = b.astype(dtype)

            def cl():
                return getattr(convlab, name)(x, w, b, **kw)

            def th(torch, tv):
                f = getattr(torch.nn.functional, name)
                xt, wt, bt = map(torch.from_numpy, (x, w, b))
                calls = {"torch": lambda: f(xt, wt, bt, **kw)}
                if self.kind == "conv" and self.padded_share(small):
                    # the same layer on the input with its padding written in as zeros: every
                    # multiply-add of the definition done, as convlab's products do them
                    pairs = self._geometry(small)[2]
                    xz = torch.from_numpy(pad_input(x, pairs, "zeros"))
                    kz = dict(kw, padding=0)
                    calls["torch_zeros"] = lambda: f(xz, wt, bt, **kz)
                return calls

            return cl, th
        if self.kind in ("grad_input", "grad_weight"):
            out = (x_shape[0], w_shape[0], *self._out_spatial(x_shape))
            go = rng.standard_normal(out).astype(dtype)
            if self.kind == "grad_input":
                fn = getattr(convlab.grad, f"conv{nd}d_input")

                def cl():
                    return fn(x_shape, w, go, **kw)

                def th(torch, tv):
                    f = getattr(torch.nn.grad, f"conv{nd}d_input")
                    wt, got = torch.from_numpy(w), torch.from_numpy(go)
                    return lambda: f(x_shape, wt, got, **kw)

                return cl, th
            fn = getattr(convlab.grad, f"conv{nd}d_weight")

            def cl():
                return fn(x, w_shape, go, **kw)

            def th(torch, tv):
                f = getattr(torch.nn.grad, f"conv{nd}d_weight")
                xt, got = torch.from_numpy(x), torch.from_numpy(go)
                return lambda: f(xt, w_shape, got, **kw)

            return cl, th
        if self.kind == "separable":
            pw = rng.standard_normal(self.w2).astype(dtype) / math.sqrt(self.w2[1])

            def cl():
                return convlab.depthwise_separable_conv2d(x, w, pw, **kw)

            def th(torch, tv):
                f = torch.nn.functional.conv2d
                xt, wt, pt = map(torch.from_numpy, (x, w, pw))
                return lambda: f(f(xt, wt, groups=x_shape[1], **kw), pt)

            return cl, th
        if self.kind == "spatial":
            k_h, k_w = w_shape[2:]
            col = (rng.standard_normal((k_h, self.w2)) / math.sqrt(k_h)).astype(dtype)
            row = (rng.standard_normal((self.w2, k_w)) / math.sqrt(k_w)).astype(dtype)
            stride, _, pairs = self._geometry(small)

            def cl():
                return convlab.spatially_separable_conv2d(x, col, row, **kw)

            def th(torch, tv):
                # the same passes: per term, a (kH, 1) then a (1, kW) depthwise convolution
                f = torch.nn.functional.conv2d
                channels = x_shape[1]
                xt = torch.from_numpy(x)
                cols = [
                    torch.from_numpy(_plane_weight(col[:, t, None], channels))
                    for t in range(self.w2)
                ]
                rows = [
                    torch.from_numpy(_plane_weight(row[t, None, :], channels))
                    for t in range(self.w2)
                ]
                by_col = dict(stride=(stride[0], 1), padding=(pairs[0][0], 0), groups=channels)
                by_row = dict(stride=(1, stride[1]), padding=(0, pairs[1][0]), groups=channels)

                def call():
                    out = None
                    for c, r in zip(cols, rows, strict=True):
                        term = f(f(xt, c, **by_col), r, **by_row)
                        out = term if out is None else out + term
                    return out

                return call

            return cl, th
        if self.kind in ("pool", "relu"):
            return self._build_layer(x, kw, rng)
        # deformable: offsets of a few pixels, as a trained offset branch gives
        k = w_shape[2:]
        out = self._out_spatial(x_shape)
        offset = (2 * rng.standard_normal((x_shape[0], 2 * math.prod(k), *out))).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        go = rng.standard_normal((x_shape[0], w_shape[0], *out)).astype(dtype)
        backward = self.kind == "deform_backward"

        def cl():
            y = convlab.deform_conv2d(x, offset, w, b, **kw)
            if backward:
                return convlab.grad.deform_conv2d(go, x, offset, w, b, **kw)
            return y

        def th(torch, tv):
            if tv is None:
                return None
            xt, ot, wt, bt = (
                torch.from_numpy(a).requires_grad_(backward) for a in (x, offset, w, b)
            )
            got = torch.from_numpy(go)

            def call():
                y = tv.ops.deform_conv2d(xt, ot, wt, bt, **kw)
                if backward:
                    y.backward(got)
                return y

            return call

        return cl, th

    def _build_layer(self, x, kw, rng):
        """``build`` of the ``pool`` and ``relu`` rows: the convlab.nn layer's forward and backward
        against PyTorch's function and its autograd backward (a fresh gradient each call)."""
        import convlab.nn

        pool = self.kind == "pool"
        window = tuple(self.w[2:])
        out = (*x.shape[:2], *self._out_spatial(x.shape)) if pool else x.shape
        go = rng.standard_normal(out).astype(x.dtype)
        layer = convlab.nn.MaxPool2d(window, **kw) if pool else convlab.nn.ReLU()

        def cl():
            layer(x)
            return layer.backward(go)

        def th(torch, tv):
            xt = torch.from_numpy(x).requires_grad_(True)
            got = torch.from_numpy(go)
            f = torch.nn.functional

            def call():
                xt.grad = None
                y = f.max_pool2d(xt, window, **kw) if pool else f.relu(xt)
                y.backward(got)
                return xt.grad

            return call

        return cl, th


def _plane_weight(kernel, channels):
    """A depthwise weight ``(channels, 1, kH, kW)`` holding ``kernel`` for every channel."""
    return np.ascontiguousarray(np.broadcast_to(kernel, (channels, 1, *kernel.shape)))


def _op(name, family, kind, x, w, **kwargs):
    return Op(name, family, kind, x, w, **kwargs)


#: the operations, two or more realistic shapes per family
OPS = [
    # 1-D: a speech/audio-style layer and a temporal convolutional network's dilated layer
    _op("conv1d_64_L1024_k5", "conv1d", "conv", (1, 64, 1024), (64, 64, 5), padding=2),
    _op("conv1d_128to256_L512", "conv1d", "conv", (4, 128, 512), (256, 128, 3), padding=1),
    # Mamba's causal depthwise convolution (k = 4 over 1536 channels)
    _op(
        "conv1d_dw_1536_L1024_k4",
        "conv1d",
        "conv",
        (1, 1536, 1024),
        (1536, 1, 4),
        padding=3,
        groups=1536,
    ),
    # groups: ResNeXt-50 32x4d's first stage, and groups of 16 channels
    _op("g32_128x56", "grouped", "conv", (1, 128, 56, 56), (128, 4, 3, 3), padding=1, groups=32),
    _op("g8_128x28", "grouped", "conv", (1, 128, 28, 28), (128, 16, 3, 3), padding=1, groups=8),
    # dilation: DeepLab's atrous layers and a TCN layer (dilation 8)
    _op("d2_64x56", "dilated", "conv", (1, 64, 56, 56), (64, 64, 3, 3), padding=2, dilation=2),
    _op("d6_128x32", "dilated", "conv", (1, 128, 32, 32), (128, 128, 3, 3), padding=6, dilation=6),
    _op(
        "tcn_d8_128_L2048", "dilated", "conv", (1, 128, 2048), (128, 128, 3), padding=8, dilation=8
    ),
    # stride 2 (the downsampling 3x3 of a ResNet stage)
    _op("s2_96to160x40", "strided", "conv", (1, 96, 40, 40), (160, 96, 3, 3), stride=2, padding=1),
    _op(
        "s2_128to256x28", "strided", "conv", (1, 128, 28, 28), (256, 128, 3, 3), stride=2, padding=1
    ),
    # training batches of small maps: chapter 8's strided layer, and the last downsampling of a
    # ResNet for 32x32 images (CIFAR), batch 128
    _op("s2_b32_32x4", "strided", "conv", (32, 32, 4, 4), (32, 32, 3, 3), stride=2, padding=1),
    _op(
        "s2_b128_128to256x8",
        "strided",
        "conv",
        (128, 128, 8, 8),
        (256, 128, 3, 3),
        stride=2,
        padding=1,
    ),
    # 5x5 and 7x7 kernels (Inception, ConvNeXt-style large kernels)
    _op("k5_48x40", "large kernel", "conv", (1, 48, 40, 40), (48, 48, 5, 5), padding=2),
    _op("k5_48to64x35", "large kernel", "conv", (1, 48, 35, 35), (64, 48, 5, 5), padding=2),
    _op("k7_64x28", "large kernel", "conv", (1, 64, 28, 28), (64, 64, 7, 7), padding=3),
    # stems on a 224x224 RGB image: ResNet's 7x7 stride 2, MobileNet's 3x3 stride 2
    _op("stem7x7", "stem", "conv", (1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    _op("stem3x3", "stem", "conv", (1, 3, 224, 224), (32, 3, 3, 3), stride=2, padding=1),
    # 3-D: video/volumetric layers
    _op("conv3d_24x12x32", "conv3d", "conv", (1, 24, 12, 32, 32), (24, 24, 3, 3, 3), padding=1),
    _op("conv3d_32x16x28", "conv3d", "conv", (1, 32, 16, 28, 28), (32, 32, 3, 3, 3), padding=1),
    # a depthwise 3x3x3 layer (X3D, 3-D MobileNets)
    _op(
        "conv3d_dw_64x16x28",
        "conv3d",
        "conv",
        (1, 64, 16, 28, 28),
        (64, 1, 3, 3, 3),
        padding=1,
        groups=64,
    ),
    # transposed: decoders' upsampling layers
    _op(
        "convT1d_96to48_s2",
        "conv_transpose1d",
        "transpose",
        (1, 96, 1024),
        (96, 48, 4),
        stride=2,
        padding=1,
    ),
    _op(
        "convT1d_64to64_L2048",
        "conv_transpose1d",
        "transpose",
        (1, 64, 2048),
        (64, 64, 3),
        padding=1,
    ),
    _op(
        "convT2d_96to48_s2",
        "conv_transpose2d",
        "transpose",
        (1, 96, 24, 24),
        (96, 48, 4, 4),
        stride=2,
        padding=1,
    ),
    _op(
        "convT2d_b4_64to32_s2",
        "conv_transpose2d",
        "transpose",
        (4, 64, 32, 32),
        (64, 32, 4, 4),
        stride=2,
        padding=1,
    ),
    _op(
        "convT2d_128to64_s2",
        "conv_transpose2d",
        "transpose",
        (1, 128, 28, 28),
        (128, 64, 3, 3),
        stride=2,
        padding=1,
        output_padding=1,
    ),
    _op(
        "convT3d_32to16_s2",
        "conv_transpose3d",
        "transpose",
        (1, 32, 8, 16, 16),
        (32, 16, 4, 4, 4),
        stride=2,
        padding=1,
    ),
    _op(
        "convT3d_16to8",
        "conv_transpose3d",
        "transpose",
        (1, 16, 8, 32, 32),
        (16, 8, 3, 3, 3),
        padding=1,
    ),
    # gradients (convlab.grad against torch.nn.grad) of training-sized layers
    _op("grad1d_input_64_L1024", "grad input", "grad_input", (4, 64, 1024), (64, 64, 5), padding=2),
    _op(
        "grad1d_input_tcn_d8",
        "grad input",
        "grad_input",
        (1, 128, 2048),
        (128, 128, 3),
        padding=8,
        dilation=8,
    ),
    _op(
        "grad2d_input_48to80x40",
        "grad input",
        "grad_input",
        (8, 48, 40, 40),
        (80, 48, 3, 3),
        padding=1,
    ),
    _op(
        "grad2d_input_s2",
        "grad input",
        "grad_input",
        (2, 64, 56, 56),
        (128, 64, 3, 3),
        stride=2,
        padding=1,
    ),
    _op(
        "grad3d_input_24x12x32",
        "grad input",
        "grad_input",
        (1, 24, 12, 32, 32),
        (24, 24, 3, 3, 3),
        padding=1,
    ),
    _op(
        "grad3d_input_16to32x8x28",
        "grad input",
        "grad_input",
        (2, 16, 8, 28, 28),
        (32, 16, 3, 3, 3),
        padding=1,
    ),
    _op(
        "grad3d_input_dw_64x16x28",
        "grad input",
        "grad_input",
        (1, 64, 16, 28, 28),
        (64, 1, 3, 3, 3),
        padding=1,
        groups=64,
    ),
    _op(
        "grad2d_input_dw_144x56",
        "grad input",
        "grad_input",
        (1, 144, 56, 56),
        (144, 1, 3, 3),
        padding=1,
        groups=144,
    ),
    _op(
        "grad2d_input_dw_s2_144x56",
        "grad input",
        "grad_input",
        (1, 144, 56, 56),
        (144, 1, 3, 3),
        stride=2,
        padding=1,
        groups=144,
    ),
    _op(
        "grad1d_weight_64_L1024",
        "grad weight",
        "grad_weight",
        (4, 64, 1024),
        (64, 64, 5),
        padding=2,
    ),
    _op(
        "grad1d_weight_tcn_d8",
        "grad weight",
        "grad_weight",
        (1, 128, 2048),
        (128, 128, 3),
        padding=8,
        dilation=8,
    ),
    _op(
        "grad2d_weight_48to80x40",
        "grad weight",
        "grad_weight",
        (8, 48, 40, 40),
        (80, 48, 3, 3),
        padding=1,
    ),
    _op(
        "grad2d_weight_s2",
        "grad weight",
        "grad_weight",
        (2, 64, 56, 56),
        (128, 64, 3, 3),
        stride=2,
        padding=1,
    ),
    _op(
        "grad3d_weight_24x12x32",
        "grad weight",
        "grad_weight",
        (1, 24, 12, 32, 32),
        (24, 24, 3, 3, 3),
        padding=1,
    ),
    _op(
        "grad3d_weight_16to32x8x28",
        "grad weight",
        "grad_weight",
        (2, 16, 8, 28, 28),
        (32, 16, 3, 3, 3),
        padding=1,
    ),
    _op(
        "grad2d_weight_dw_144x56",
        "grad weight",
        "grad_weight",
        (1, 144, 56, 56),
        (144, 1, 3, 3),
        padding=1,
        groups=144,
    ),
    _op(
        "grad2d_weight_d2_64x56",
        "grad weight",
        "grad_weight",
        (1, 64, 56, 56),
        (64, 64, 3, 3),
        padding=2,
        dilation=2,
    ),
    # depthwise separable blocks (MobileNet)
    Op(
        "separable_32to64x112",
        "separable",
        "separable",
        (1, 32, 112, 112),
        (32, 1, 3, 3),
        w2=(64, 32, 1, 1),
        padding=1,
    ),
    Op(
        "separable_128to256x28",
        "separable",
        "separable",
        (1, 128, 28, 28),
        (128, 1, 3, 3),
        w2=(256, 128, 1, 1),
        padding=1,
    ),
    # image filters by a column and a row pass: a 7x7 Gaussian on an RGB image, a 5x5 one on a
    # batch of them (augmentation), and BlurPool's [1 2 1] x [1 2 1] blur before a stride of 2
    # on a feature map (Zhang, "Making convolutional networks shift-invariant again", 2019)
    Op(
        "blur7_rgb_512",
        "spatially separable",
        "spatial",
        (1, 3, 512, 512),
        (3, 1, 7, 7),
        w2=1,
        padding=3,
    ),
    Op(
        "blur5_rgb_b8_224",
        "spatially separable",
        "spatial",
        (8, 3, 224, 224),
        (3, 1, 5, 5),
        w2=1,
        padding=2,
    ),
    Op(
        "blurpool_128x56",
        "spatially separable",
        "spatial",
        (1, 128, 56, 56),
        (128, 1, 3, 3),
        w2=1,
        stride=2,
        padding=1,
    ),
    # deformable (torchvision.ops.deform_conv2d), forward and forward + backward
    _op("deform_64x56", "deformable", "deform", (1, 64, 56, 56), (64, 64, 3, 3), padding=1),
    _op("deform_256x14", "deformable", "deform", (1, 256, 14, 14), (256, 256, 3, 3), padding=1),
    _op(
        "deform_fb_64x28",
        "deformable",
        "deform_backward",
        (1, 64, 28, 28),
        (64, 64, 3, 3),
        padding=1,
    ),
    _op(
        "deform_fb_128x14",
        "deformable",
        "deform_backward",
        (1, 128, 14, 14),
        (128, 128, 3, 3),
        padding=1,
    ),
    # convlab.nn's other layers, forward and backward: ResNet's stem pooling, a 2x2 pooling
    # and chapter 8's (batch 32 of 8x8 maps), ReLUs
    _op(
        "maxpool3s2_b8_64x112",
        "nn layers",
        "pool",
        (8, 64, 112, 112),
        (64, 1, 3, 3),
        stride=2,
        padding=1,
    ),
    _op("maxpool2_b8_64x56", "nn layers", "pool", (8, 64, 56, 56), (64, 1, 2, 2), stride=2),
    _op("maxpool2_b32_32x8", "nn layers", "pool", (32, 32, 8, 8), (32, 1, 2, 2), stride=2),
    _op("relu_b8_64x56", "nn layers", "relu", (8, 64, 56, 56), (64, 1, 1, 1)),
    _op("relu_b32_32x8", "nn layers", "relu", (32, 32, 8, 8), (32, 1, 1, 1)),
    # float64
    Op(
        "f64_conv2d_64x56",
        "float64",
        "conv",
        (1, 64, 56, 56),
        (64, 64, 3, 3),
        dtype="float64",
        padding=1,
    ),
    Op(
        "f64_convT2d_96to48_s2",
        "float64",
        "transpose",
        (1, 96, 24, 24),
        (96, 48, 4, 4),
        dtype="float64",
        stride=2,
        padding=1,
    ),
    Op(
        "f64_grad2d_weight",
        "float64",
        "grad_weight",
        (4, 48, 40, 40),
        (80, 48, 3, 3),
        dtype="float64",
        padding=1,
    ),
]
#: the operations by name
BY_NAME = {op.name: op for op in OPS}

#: positions (or, for a weight gradient, summed positions) in the block of each product the
#: ceiling is measured on: the engine's blocks of columns hold a few hundred to a few thousand
CEILING_BLOCK = 1024


def gemm_products(op, small=False):
    """``{lowering: (m, k, n)}``: one block of each matrix product ``op`` can be lowered to.

    ``"gather"``: ``C_out/g`` output channels by ``C_in/g * taps`` rows of columns times a block
    of output positions (the forward convolution; a transposed convolution, or an input gradient,
    as the convolution it equals, a strided one by its ``stride**d`` phases, each with about
    ``taps / stride**d`` taps); ``"scatter"``: ``C_out/g * taps`` rows by ``C_in/g`` times a
    block of input positions (a transposed convolution multiplied then folded); ``"weight"``:
    ``C_out/g`` by ``C_in/g * taps``, summed over a block of positions (the weight gradient).
    Empty for the separable and deformable rows, which are not dense products alone.
    """
    x, w = op.shapes(small)
    g = op.kwargs.get("groups", 1)
    stride = op.kwargs.get("stride", 1)
    stride = math.prod((stride,) * op.nd if isinstance(stride, int) else stride)
    taps = math.prod(w[2:])
    out = min(x[0] * math.prod(op._out_spatial(x)), CEILING_BLOCK)
    inp = min(x[0] * math.prod(x[2:]), CEILING_BLOCK)
    if op.kind == "conv":
        return {"gather": (w[0] // g, x[1] // g * taps, out)}
    if op.kind == "transpose":  # weight (C_in, C_out/g, *k); x is the transposed conv's input
        return {
            "gather": (w[1], x[1] // g * max(1, taps // stride), out),
            "scatter": (w[1] * taps, x[1] // g, inp),
        }
    if op.kind == "grad_input":  # the transposed convolution of the output gradient
        return {
            "gather": (x[1] // g, w[0] // g * max(1, taps // stride), inp),
            "scatter": (x[1] // g * taps, w[0] // g, out),
        }
    if op.kind == "grad_weight":
        return {"weight": (w[0] // g, out, w[1] * taps)}
    return {}


def gemm_ceiling(op, threads, repeats=5, small=False):
    """``(seconds, lowering, (m, k, n), flop/s)``: the time of ``op``'s multiply-adds if they all
    ran at the best rate convlab reaches, on one thread, on a block of one of the products of
    :func:`gemm_products` (either orientation, output channels as M or N), with its BLAS or with
    its own tiles (:func:`convlab._tile.tile_matmul`; the lowering is then marked ``/tile``), on
    each of ``threads`` threads: perfect scaling and columns for free. ``None`` for rows that are
    not products alone. No convlab operation made of those products can take less time: the ratio
    PyTorch time / this time is the highest ratio the row can reach with them.
    """
    from ._blas import blas_gemm, one_blas_thread
    from ._implicit import pass_rows
    from ._tile import pack_panels, panel_rows, tile_shape

    dtype = np.dtype(op.dtype)
    gemm = blas_gemm(dtype)
    rng = np.random.default_rng(0)
    best = None
    with one_blas_thread():
        for lowering, (m, k, n) in gemm_products(op, small).items():
            for rows, cols in ((m, n), (n, m)):
                a = rng.standard_normal((rows, k)).astype(dtype)
                b = rng.standard_normal((k, cols)).astype(dtype)
                c = np.empty((rows, cols), dtype)
                calls = max(1, min(200, int(2e6 // (m * k * n))))
                shape = tile_shape(rows)
                tile_args = (
                    shape,
                    rows,
                    cols,
                    k,
                    # in passes over the sum, as the implicit product makes them
                    pass_rows(k, -(-rows // panel_rows(shape)) * panel_rows(shape), a.itemsize),
                    pack_panels(a, 1, shape).reshape(-1),
                    b.reshape(-1),
                    np.arange(k, dtype=np.int64) * cols,
                    c.reshape(-1),
                    calls,
                )
                for name, fn, args in (
                    (lowering, _repeat_matmul, (gemm, a, b, c, calls)),
                    (lowering + "/tile", _repeat_tile, tile_args),
                ):
                    fn(*args)
                    seconds = min(_timed(fn, *args) for _ in range(repeats))
                    rate = 2 * m * k * n * calls / seconds
                    if best is None or rate > best[2]:
                        best = (name, (m, k, n), rate)
    if best is None:
        return None
    lowering, shape, rate = best
    return 2 * op.macs(small) / (threads * rate), lowering, shape, rate


@njit(**NJIT_OPTIONS)
def _repeat_tile(shape, m, n, k, kc, ap, b, boff, c, calls):
    for _ in range(calls):
        tile_matmul(shape, m, n, k, kc, ap, 0, k * TILES_ROWS[shape], b, 0, boff, c, 0, n, 0)


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


@njit(**NJIT_OPTIONS)
def _repeat_matmul(gemm, a, b, c, calls):
    for _ in range(calls):
        matmul_into(gemm, a, b, c)


def run_breadth(
    threads, repeats=5, block=10, settle=0.05, use_torch=True, small=False, names=None, passes=1
):
    """Time every operation (or ``names``) on ``threads`` threads; the run's dict for bench.json.

    For each operation: one call of each library (compiling, warming caches), then ``repeats``
    rounds of a block of ``block`` convlab calls and a block of ``block`` PyTorch calls, each
    block after a pause of ``settle`` seconds; the best call of each library is kept. With
    ``passes`` above 1 the whole list is timed that many times over, one operation after the
    other, and each library's best call over all passes is kept: a row's blocks are then spread
    over the run instead of lying within a second of each other, so a spell of slow machine (a
    virtual machine's cores are shared: the same row measured seconds apart moved by 30-50%)
    does not decide the row. Each pass's own ratio is kept too (``pass_ratios``). A forward row
    with padding is timed a third time, PyTorch on the input with the padding written in as
    zeros (``torch_zeros_s``, ``ratio_zeros``): oneDNN leaves out the products that read
    padding (``padded_share`` of them), convlab computes them, and this compares the two on the
    same multiply-adds. ``small``
    shrinks every spatial size to at most 9 (a smoke test of every call, not a measurement).
    """
    import numba

    from .bench import _load_average, _torch_module, measure_peak

    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    torch = _torch_module() if use_torch else None
    tv = None
    if torch is not None:
        torch.set_num_threads(threads)
        try:
            import torchvision as tv
        except ImportError:
            tv = None
    try:
        load_before = _load_average()
        peak = measure_peak(512 if small else 2048)
        ops = [BY_NAME[n] for n in (names or list(BY_NAME))]

        def build(index):
            cl, th = ops[index].build(np.random.default_rng(index), small)
            calls = {"convlab": cl}
            if torch is not None:
                call = th(torch, tv)
                if isinstance(call, dict):
                    calls.update(call)
                elif call is not None:
                    calls["torch"] = call
            return calls

        times, per_pass, first = _timed_passes(len(ops), build, passes, repeats, block, settle)
        # each row's products alone (the ceiling), measured once, after the timed passes
        ceilings = [gemm_ceiling(op, threads, small=small) for op in ops]
        rows = []
        for index, op in enumerate(ops):
            best = {name: min(t) for name, t in times[index].items()}
            flops = 2 * op.macs(small)
            ceiling = ceilings[index]
            bound_s = None if ceiling is None else ceiling[0]
            rows.append(
                dict(
                    op=op.name,
                    family=op.family,
                    description=op.describe(),
                    threads=threads,
                    convlab_s=best["convlab"],
                    convlab_median_s=statistics.median(times[index]["convlab"]),
                    convlab_first_s=first[index]["convlab"],
                    torch_s=best.get("torch"),
                    torch_median_s=(
                        statistics.median(times[index]["torch"]) if "torch" in best else None
                    ),
                    gflops=flops / best["convlab"] / 1e9,
                    torch_gflops=flops / best["torch"] / 1e9 if "torch" in best else None,
                    ratio_torch=best["torch"] / best["convlab"] if "torch" in best else None,
                    pass_ratios=(
                        [p["torch"] / p["convlab"] for p in per_pass[index]]
                        if "torch" in best
                        else None
                    ),
                    gemm_bound_s=bound_s,
                    gemm_lowering=None if ceiling is None else ceiling[1],
                    gemm_shape=None if ceiling is None else list(ceiling[2]),
                    gemm_rate_gflops=None if ceiling is None else ceiling[3] / 1e9,
                    ceiling=best["torch"] / bound_s if bound_s and "torch" in best else None,
                    padded_share=op.padded_share(small),
                    torch_zeros_s=best.get("torch_zeros"),
                    ratio_zeros=(
                        best["torch_zeros"] / best["convlab"] if "torch_zeros" in best else None
                    ),
                )
            )
        return dict(
            threads=threads,
            peak_gflops=peak,
            results=rows,
            torch=None if torch is None else torch.__version__,
            torchvision=None if tv is None else tv.__version__,
            small=small,
            passes=passes,
            load_average=[load_before, _load_average()],
        )
    finally:
        numba.set_num_threads(previous)


def _geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summarize_breadth(runs, floor=0.8):
    """Per thread count: the geometric mean of torch/convlab over all rows and per family, the
    rows below ``floor``, the rows whose ceiling (:func:`gemm_ceiling`) is below it, and the rows
    below ``floor`` against PyTorch on their zero-padded input (``same_work``)."""
    summary = {}
    for run in runs:
        rows = run["results"]
        families = {}
        for r in rows:
            families.setdefault(r["family"], []).append(r["ratio_torch"])
        summary[str(run["threads"])] = dict(
            geomean=_geomean(r["ratio_torch"] for r in rows),
            families={f: _geomean(v) for f, v in families.items()},
            below=[
                [r["op"], r["ratio_torch"]]
                for r in rows
                if r["ratio_torch"] is not None and r["ratio_torch"] < floor
            ],
            # rows that cannot reach the floor with convlab's BLAS: even their products alone,
            # at the best single-thread rate on every thread, take longer than floor allows
            bounded=[
                [r["op"], r["ceiling"]]
                for r in rows
                if r.get("ceiling") is not None and r["ceiling"] < floor
            ],
            # the rows below the floor again, against PyTorch on the input with its padding
            # written in (every multiply-add done, as convlab does): [op, ratio, padded share]
            same_work=[
                [r["op"], r["ratio_zeros"], r["padded_share"]]
                for r in rows
                if r["ratio_torch"] is not None
                and r["ratio_torch"] < floor
                and r.get("ratio_zeros") is not None
            ],
        )
    return summary


def format_breadth(data):
    """The breadth results as a text table per thread count, with the family means."""
    lines = []
    for run in data["runs"]:
        load = run.get("load_average") or [None, None]
        lines.append(
            f"threads={run['threads']}  peak (sgemm probe) {run['peak_gflops']:.1f} GFLOP/s"
            + ("" if load[0] is None else f"  load average {load[0]:.1f} -> {load[1]:.1f}")
        )
        header = (
            f"{'operation':<26} {'family':<19} {'convlab ms':>10} {'torch ms':>9} "
            f"{'GFLOP/s':>8} {'torch/x':>8} {'ceiling':>8} {'padded':>7} {'zeros/x':>8}"
        )
        lines += [header, "-" * len(header)]
        for r in run["results"]:
            torch_ms = "" if r["torch_s"] is None else f"{1e3 * r['torch_s']:.3f}"
            ratio = "" if r["ratio_torch"] is None else f"{r['ratio_torch']:.2f}"
            ceiling = "" if r.get("ceiling") is None else f"{r['ceiling']:.2f}"
            padded = "" if r.get("padded_share") is None else f"{100 * r['padded_share']:.1f}%"
            zeros = "" if r.get("ratio_zeros") is None else f"{r['ratio_zeros']:.2f}"
            lines.append(
                f"{r['op']:<26} {r['family']:<19} {1e3 * r['convlab_s']:>10.3f} "
                f"{torch_ms:>9} {r['gflops']:>8.1f} {ratio:>8} {ceiling:>8} {padded:>7} "
                f"{zeros:>8}"
            )
        s = data["summary"][str(run["threads"])]
        if s["geomean"] is not None:
            lines.append(f"geomean torch/convlab, threads={run['threads']}: {s['geomean']:.2f}")
            lines.append(
                "  by family: "
                + ", ".join(f"{f} {v:.2f}" for f, v in s["families"].items() if v is not None)
            )
            below = ", ".join(f"{n} {v:.2f}" for n, v in s["below"]) or "none"
            lines.append(f"  rows below 0.8: {below}")
            bounded = ", ".join(f"{n} {v:.3f}" for n, v in s.get("bounded", [])) or "none"
            lines.append(f"  ceiling below 0.8 (its products alone at the best rate): {bounded}")
            same = ", ".join(
                f"{n} {v:.2f} ({100 * share:.0f}% padded)" for n, v, share in s.get("same_work", [])
            )
            lines.append(
                "  those rows against PyTorch on the input padded with zeros beforehand "
                f"(zeros/x): {same or 'none'}"
            )
        lines.append("")
    return "\n".join(lines)

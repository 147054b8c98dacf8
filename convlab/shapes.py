"""Shape arithmetic for convolution layers: the one place where output sizes are computed.

The kernels, the error messages and the book all call these functions, so the formula printed in
a chapter is the formula the code runs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ._args import INDEX_LIMIT, check_extent, ntuple, positive_int

if TYPE_CHECKING:
    from typing_extensions import TypeIs

#: an int, or one int per spatial dimension (PyTorch's int-or-tuple arguments)
IntOrTuple = int | Sequence[int]
#: what the size functions return: an int for int arguments, else a tuple
Size = Any  # int | tuple[int, ...], by the argument's form (an overload per function is noise)

__all__ = [
    "conv_output_size",
    "effective_kernel_size",
    "receptive_field",
    "count_params",
    "count_macs",
]


def _is_int(value: object) -> TypeIs[int | np.integer[Any]]:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def effective_kernel_size(kernel_size: IntOrTuple, dilation: IntOrTuple = 1) -> Size:
    """Extent of a dilated kernel: ``d * (k - 1) + 1``.

    A 3-tap kernel at dilation 2 spans 5 input elements; at dilation 3 it spans 7.

    Examples
    --------
    >>> effective_kernel_size(3, 2)
    5
    >>> effective_kernel_size((3, 3), (1, 3))
    (3, 7)
    """
    if _is_int(kernel_size) and _is_int(dilation):
        (k,) = ntuple(kernel_size, 1, "kernel_size")
        (d,) = ntuple(dilation, 1, "dilation")
        return d * (k - 1) + 1
    # one of the two is a sequence (both ints returned above)
    n = len(kernel_size) if not _is_int(kernel_size) else len(cast(Sequence[int], dilation))
    ks = ntuple(kernel_size, n, "kernel_size")
    ds = ntuple(dilation, n, "dilation")
    return tuple(d * (k - 1) + 1 for k, d in zip(ks, ds, strict=True))


def padding_pairs(
    padding: IntOrTuple | str,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> tuple[tuple[int, int], ...]:
    """Resolve ``padding`` to one ``(before, after)`` pair per spatial dimension.

    ``padding`` is an int, a tuple of ints, ``"valid"`` (no padding) or ``"same"`` (output size
    equal to input size; stride 1 only). For ``"same"`` the total padding per dimension is
    ``d * (k - 1)``; when it is odd, the extra element goes after (on the right), as PyTorch does.
    ``kernel_size``, ``stride`` and ``dilation`` must already be tuples of the same length.
    """
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in range(n))
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' is only supported with stride 1 (as in PyTorch), got stride={stride}"
                )
            pairs = []
            for k, d in zip(kernel_size, dilation, strict=True):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(
            f"padding must be an int, a tuple of ints, 'same' or 'valid', got {padding!r}"
        )
    pads = ntuple(padding, n, "padding", allow_zero=True)
    return tuple((p, p) for p in pads)


def conv_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
) -> Size:
    """Output length of a convolution, per spatial dimension.

    ``floor((L + 2p - d(k - 1) - 1) / s) + 1``, the formula of ``torch.nn.Conv1d/2d/3d``
    (Dumoulin & Visin 2016, relationship 15).

    Parameters
    ----------
    input_size : int or tuple of int
        ``L`` (or ``(H, W)``, ``(D, H, W)``).
    kernel_size, stride, dilation : int or tuple of int
    padding : int, tuple of int, ``"same"`` or ``"valid"``
        Per-side zero padding ``p``. With ``"same"`` the output equals the input (stride 1).

    Returns
    -------
    int or tuple of int
        An int when ``input_size`` is an int, else a tuple.

    Raises
    ------
    ValueError
        If the dilated kernel ``d(k - 1) + 1`` is larger than the padded input ``L + 2p``, or an
        argument is not positive (padding: non-negative).

    Examples
    --------
    >>> conv_output_size(6, 3)
    4
    >>> conv_output_size(6, 3, stride=3)
    2
    >>> conv_output_size((224, 224), 7, stride=2, padding=3)
    (112, 112)
    """
    scalar = _is_int(input_size)
    n = 1 if _is_int(input_size) else len(input_size)
    sizes = ntuple(input_size, n, "input_size", allow_zero=True)
    ks = ntuple(kernel_size, n, "kernel_size")
    ss = ntuple(stride, n, "stride")
    ds = ntuple(dilation, n, "dilation")
    pairs = padding_pairs(padding, ks, ss, ds)
    out = [
        _output_length(size, k, s, d, before, after)
        for size, k, s, d, (before, after) in zip(sizes, ks, ss, ds, pairs, strict=True)
    ]
    return out[0] if scalar else tuple(out)


def _output_length(
    size: int, kernel: int, stride: int, dilation: int, before: int, after: int
) -> int:
    """:func:`conv_output_size` of one dimension whose arguments are already validated ints.

    ``before`` and ``after`` are the padding on each side. The public function checks its
    arguments first (a few microseconds); :func:`convlab.conv2d`, which has validated them
    itself, calls this directly, so that both use one formula and one message.
    """
    padded = size + before + after
    extent = dilation * (kernel - 1) + 1
    if padded > INDEX_LIMIT or extent > INDEX_LIMIT:
        # Python ints: no overflow here; the kernels' int64 arithmetic needs these bounded
        check_extent(padded, f"the padded input size {size} + {before} + {after}")
        check_extent(extent, f"the kernel extent d*(k-1)+1 = {dilation}*({kernel}-1)+1")
    if extent > padded:
        raise ValueError(
            f"kernel extent d*(k-1)+1 = {dilation}*({kernel}-1)+1 = {extent} is larger than the "
            f"padded input size {size} + {before} + {after} = {padded}"
        )
    return (padded - extent) // stride + 1


def receptive_field(layers: Iterable[Any]) -> int:
    """Receptive field of a stack of convolution layers (in input elements, one dimension).

    Each layer adds ``d * (k - 1) * j`` to the field, where ``j`` is the product of the strides of
    the layers before it (the "jump" between neighbouring outputs in input coordinates):
    ``r_0 = 1``, ``r_l = r_{l-1} + d_l (k_l - 1) j_{l-1}``, ``j_l = j_{l-1} s_l``.

    Parameters
    ----------
    layers : iterable
        One entry per layer, first layer first: an int ``k``, a tuple ``(k,)``, ``(k, s)`` or
        ``(k, s, d)``, or a dict with keys ``kernel_size`` and optional ``stride``, ``dilation``.

    Returns
    -------
    int

    Examples
    --------
    >>> receptive_field([3, 3])          # two stacked 3x3 convs see 5x5
    5
    >>> receptive_field([(3, 1, 2)])     # one 3x3 at dilation 2 sees 5x5
    5
    >>> receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])   # Yu & Koltun's context module
    15
    """
    field, jump = 1, 1
    for i, layer in enumerate(layers):
        if isinstance(layer, dict):
            unknown = set(layer) - {"kernel_size", "stride", "dilation"}
            if unknown or "kernel_size" not in layer:
                raise ValueError(
                    f"layer {i}: a dict needs 'kernel_size' and may have 'stride', 'dilation', got {layer!r}"
                )
            k, s, d = layer["kernel_size"], layer.get("stride", 1), layer.get("dilation", 1)
        elif _is_int(layer):
            k, s, d = layer, 1, 1
        else:
            items = tuple(layer)
            if not 1 <= len(items) <= 3:
                raise ValueError(
                    f"layer {i}: expected (kernel_size, stride, dilation), got {layer!r}"
                )
            k, s, d = (items + (1, 1))[:3]
        k = positive_int(k, f"layer {i} kernel_size")
        s = positive_int(s, f"layer {i} stride")
        d = positive_int(d, f"layer {i} dilation")
        field += d * (k - 1) * jump
        jump *= s
    return field


def _channels_and_groups(in_channels: int, out_channels: int, groups: int) -> tuple[int, int, int]:
    c_in = positive_int(in_channels, "in_channels")
    c_out = positive_int(out_channels, "out_channels")
    g = positive_int(groups, "groups")
    if c_in % g:
        raise ValueError(f"in_channels ({c_in}) must be divisible by groups ({g})")
    if c_out % g:
        raise ValueError(f"out_channels ({c_out}) must be divisible by groups ({g})")
    return c_in, c_out, g


def count_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    groups: int = 1,
    bias: bool = True,
    ndim: int = 2,
) -> int:
    """Number of learnable parameters of a convolution layer.

    ``C_out * (C_in / groups) * prod(k)`` weights plus ``C_out`` biases; for ``groups=1`` and a
    2-D kernel this is the seed's ``(k_m k_n c_i + 1) c_o``.

    An int ``kernel_size`` means a square ``ndim``-D kernel (default 2-D, as ``nn.Conv2d(3, 4, 3)``
    means 3x3); a tuple gives the kernel's shape and its length overrides ``ndim``.

    Examples
    --------
    >>> count_params(3, 4, 3, bias=False)            # standard 3x3 conv, 3 -> 4 channels
    108
    >>> count_params(3, 3, 3, groups=3, bias=False)  # its depthwise part
    27
    """
    c_in, c_out, g = _channels_and_groups(in_channels, out_channels, groups)
    if _is_int(kernel_size):
        ks = ntuple(kernel_size, positive_int(ndim, "ndim"), "kernel_size")
    else:
        ks = ntuple(kernel_size, len(kernel_size), "kernel_size")
    weights = c_out * (c_in // g) * math.prod(ks)
    return int(weights + (c_out if bias else 0))


def count_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    input_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """Multiply-accumulate operations of one forward pass of a convolution layer.

    Every output element costs ``(C_in / groups) * prod(k)`` MACs, so the layer costs
    ``batch * C_out * prod(output_size) * (C_in / groups) * prod(k)``; the output size comes from
    :func:`conv_output_size`. Bias additions are not counted. FLOPs are usually quoted as 2 x MACs.

    Examples
    --------
    >>> count_macs(64, 64, 3, (56, 56), padding=1)
    115605504
    """
    c_in, c_out, g = _channels_and_groups(in_channels, out_channels, groups)
    out = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    out = (out,) if _is_int(out) else out
    n = len(out)
    ks = ntuple(kernel_size, n, "kernel_size")
    b = positive_int(batch, "batch") if batch != 0 else 0
    return int(b * c_out * math.prod(out) * (c_in // g) * math.prod(ks))


# --- transposed convolution ----------------------------------------------------------------------


def _transpose_geometry(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple,
    padding: IntOrTuple,
    dilation: IntOrTuple,
) -> Any:
    """Normalise the arguments shared by the transposed-convolution size functions."""
    scalar = _is_int(input_size)
    n = 1 if _is_int(input_size) else len(input_size)
    sizes = ntuple(input_size, n, "input_size", allow_zero=True)
    ks = ntuple(kernel_size, n, "kernel_size")
    ss = ntuple(stride, n, "stride")
    ps = ntuple(padding, n, "padding", allow_zero=True)
    ds = ntuple(dilation, n, "dilation")
    return scalar, n, sizes, ks, ss, ps, ds


def _check_output_padding(
    output_padding: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> None:
    """PyTorch's rule: each output padding must be smaller than its stride or its dilation."""
    for a, s, d in zip(output_padding, stride, dilation, strict=True):
        if not (a < s or a < d):
            raise ValueError(
                f"output_padding ({a}) must be smaller than either stride ({s}) or dilation ({d}), "
                f"as in PyTorch: it only adds the rows a strided convolution may have dropped"
            )


def conv_transpose_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
) -> Size:
    """Output length of a transposed convolution, per spatial dimension.

    ``(i - 1) s - 2p + d (k - 1) + a + 1``, the formula of ``torch.nn.ConvTranspose1d/2d/3d``
    (Dumoulin & Visin 2016, relationship 14); for ``d = 1`` it is the seed's
    ``o = (i - 1) s + k - 2p + a``. The transposed convolution maps a size ``i`` back to the sizes
    a convolution with the same ``k, s, p, d`` maps *to* ``i``; because that convolution floors,
    several sizes qualify and ``a`` (``output_padding``) picks one of them.

    Parameters
    ----------
    input_size : int or tuple of int
    kernel_size, stride, dilation : int or tuple of int, positive
    padding : int or tuple of int, non-negative
        The padding of the convolution this one transposes: it *removes* ``p`` elements at each end.
    output_padding : int or tuple of int, non-negative
        Extra elements at the end; each must be smaller than its stride or its dilation.

    Returns
    -------
    int or tuple of int
        An int when ``input_size`` is an int, else a tuple.

    Raises
    ------
    ValueError
        If ``output_padding`` breaks the rule above, or the size is not positive.

    Examples
    --------
    >>> conv_transpose_output_size(2, 3, stride=2)                   # the seed's 2x2 -> 5x5
    5
    >>> conv_transpose_output_size(2, 3, stride=2, output_padding=1)  # ... or 6x6
    6
    >>> conv_transpose_output_size((28, 28), 4, stride=2, padding=1)  # a DCGAN upsampling layer
    (56, 56)
    """
    scalar, n, sizes, ks, ss, ps, ds = _transpose_geometry(
        input_size, kernel_size, stride, padding, dilation
    )
    ops = ntuple(output_padding, n, "output_padding", allow_zero=True)
    _check_output_padding(ops, ss, ds)
    out = []
    for i, k, s, p, a, d in zip(sizes, ks, ss, ps, ops, ds, strict=True):
        full = (i - 1) * s + d * (k - 1) + a + 1  # the uncropped result the kernels index into
        if full > INDEX_LIMIT:
            check_extent(
                full,
                f"the uncropped size (i-1)*s + d*(k-1) + a + 1 = ({i}-1)*{s} + {d}*({k}-1) + {a} + 1",
            )
        o = full - 2 * p
        if o <= 0:
            raise ValueError(
                f"transposed convolution output size (i-1)*s - 2p + d*(k-1) + a + 1 = "
                f"({i}-1)*{s} - 2*{p} + {d}*({k}-1) + {a} + 1 = {o} is not positive"
            )
        out.append(o)
    return out[0] if scalar else tuple(out)


def conv_transpose_output_padding(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
) -> Size:
    """The ``output_padding`` that makes a transposed convolution produce ``output_size``.

    ``a = o - ((i - 1) s - 2p + d (k - 1) + 1)``; for ``d = 1`` and a reachable ``o`` this is the
    seed's ``a = (o + 2p - k) % s``. This is how ``output_size=`` (PyTorch's
    ``ConvTranspose2d.forward(x, output_size)``, TensorFlow's ``output_shape``) is turned into an
    ``output_padding``.

    Parameters
    ----------
    input_size, output_size : int or tuple of int
    kernel_size, stride, padding, dilation
        As in :func:`conv_transpose_output_size`.

    Returns
    -------
    int or tuple of int

    Raises
    ------
    ValueError
        If ``output_size`` is unreachable: ``a`` would be negative, or not smaller than the stride
        or the dilation (PyTorch's rule for ``output_padding``). The message gives the valid range.

    Notes
    -----
    ``torch.nn.ConvTranspose2d`` accepts ``output_size`` only up to ``min + s - 1``; convlab allows
    every size whose ``output_padding`` the functional form accepts (``a < max(s, d)``), so it
    agrees with PyTorch wherever PyTorch accepts the size.

    Examples
    --------
    >>> conv_transpose_output_padding(2, 5, 3, stride=2)
    0
    >>> conv_transpose_output_padding(2, 6, 3, stride=2)
    1
    >>> conv_transpose_output_padding((7, 7), (14, 13), 3, stride=2, padding=1)
    (1, 0)
    """
    scalar, n, sizes, ks, ss, ps, ds = _transpose_geometry(
        input_size, kernel_size, stride, padding, dilation
    )
    if scalar != _is_int(output_size):
        raise ValueError(
            f"output_size ({output_size!r}) must be an int when input_size is an int and a tuple "
            f"otherwise (input_size={input_size!r})"
        )
    targets = ntuple(output_size, n, "output_size", allow_negative=True)
    out = []
    for i, o, k, s, p, d in zip(sizes, targets, ks, ss, ps, ds, strict=True):
        smallest = (i - 1) * s - 2 * p + d * (k - 1) + 1
        largest = smallest + max(s, d) - 1
        if not max(smallest, 1) <= o <= largest:
            raise ValueError(
                f"output_size {output_size!r} is unreachable: for input size {i}, kernel {k}, "
                f"stride {s}, padding {p}, dilation {d} a transposed convolution gives "
                f"(i-1)*s - 2p + d*(k-1) + 1 + a with 0 <= a < max(stride, dilation), i.e. sizes "
                f"{max(smallest, 1)} to {largest}, got {o}"
            )
        out.append(o - smallest)
    return out[0] if scalar else tuple(out)


def tf_conv_transpose_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: str = "VALID",
    dilation: IntOrTuple = 1,
) -> Size:
    """Output size TensorFlow/Keras gives a transposed convolution with ``padding="SAME"|"VALID"``.

    ``"SAME"``: ``o = i s``. ``"VALID"``: ``o = (i - 1) s + k`` when the (dilated) kernel is at
    least as large as the stride, the seed's formula; Keras's ``Conv2DTranspose`` writes it as
    ``i s + max(k - s, 0)``, which also covers ``k < s`` (then ``o = i s``). Both are sizes a
    ``padding="SAME"|"VALID"`` convolution with the same stride maps back to ``i``.

    Examples
    --------
    >>> tf_conv_transpose_output_size(2, 3, 1, "VALID")    # the seed's 2x2 -> 4x4
    4
    >>> tf_conv_transpose_output_size(2, 3, 3, "SAME")     # the seed's 2x2 -> 6x6
    6
    >>> tf_conv_transpose_output_size((2, 2), 3, 2, "VALID")
    (5, 5)
    """
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(
            f"padding must be 'SAME' or 'VALID' (TensorFlow's conventions), got {padding!r}"
        )
    same = padding.upper() == "SAME"
    scalar, n, sizes, ks, ss, _, ds = _transpose_geometry(
        input_size, kernel_size, stride, 0, dilation
    )
    out = []
    for i, k, s, d in zip(sizes, ks, ss, ds, strict=True):
        extent = d * (k - 1) + 1
        out.append(i * s if same else i * s + max(extent - s, 0))
    return out[0] if scalar else tuple(out)


__all__ += [
    "conv_transpose_output_size",
    "conv_transpose_output_padding",
    "tf_conv_transpose_output_size",
]


# --- separable convolutions (convlab.separable) ------------------------------------------------
# Built on count_params / count_macs / conv_output_size above, so every count the separable
# chapter prints goes through the same formulas as the plain layers.


def count_params_depthwise_separable(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    depth_multiplier: int = 1,
    bias: bool = True,
) -> Any:
    """Parameters of a depthwise-separable layer: a depthwise conv then a 1x1 conv.

    The depthwise conv (``groups = C_in``, ``K`` filters per channel) has ``C_in K prod(k)``
    weights, the 1x1 conv ``C_out C_in K``; with ``bias`` each adds its output channels
    (``C_in K`` and ``C_out``). Against a standard conv's ``C_out C_in prod(k)`` weights the ratio
    is ``1 / C_out + 1 / prod(k)`` for ``K = 1`` (Howard et al. 2017, eq. 5).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of int
        Of the depthwise conv; an int means a square 2-D kernel.
    depth_multiplier : int
        ``K``, depthwise filters per input channel.
    bias : bool
        Whether both convolutions have a bias.

    Examples
    --------
    >>> count_params_depthwise_separable(3, 4, 3, bias=False)   # the seed's 27 + 12
    39
    >>> count_params_depthwise_separable(3, 4, 3, depth_multiplier=2, bias=False)   # 54 + 24
    78
    """
    c_in = positive_int(in_channels, "in_channels")
    c_out = positive_int(out_channels, "out_channels")
    k_mult = positive_int(depth_multiplier, "depth_multiplier")
    ks = (
        ntuple(kernel_size, 2, "kernel_size")
        if _is_int(kernel_size)
        else ntuple(kernel_size, len(kernel_size), "kernel_size")
    )
    depthwise = count_params(c_in, c_in * k_mult, ks, groups=c_in, bias=bias)
    pointwise = count_params(c_in * k_mult, c_out, (1,) * len(ks), bias=bias)
    return depthwise + pointwise


def count_macs_depthwise_separable(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    input_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    depth_multiplier: int = 1,
    batch: int = 1,
) -> Any:
    """Multiply-accumulates of a depthwise-separable layer (depthwise conv, then 1x1 conv).

    ``count_macs`` of the depthwise conv (``groups = C_in``, output ``C_in K`` channels, with the
    given stride, padding and dilation) plus ``count_macs`` of the 1x1 conv on its output:
    ``D_O^2 (C_in K D_K^2 + C_in K C_out)`` for square sizes, against ``D_O^2 C_in C_out D_K^2``
    for the standard conv. Bias additions are not counted.

    Examples
    --------
    >>> count_macs_depthwise_separable(64, 128, 3, (56, 56), padding=1)   # 1806336 + 25690112
    27496448
    >>> count_macs(64, 128, 3, (56, 56), padding=1)                        # standard conv
    231211008
    """
    c_in = positive_int(in_channels, "in_channels")
    c_out = positive_int(out_channels, "out_channels")
    k_mult = positive_int(depth_multiplier, "depth_multiplier")
    depthwise = count_macs(
        c_in,
        c_in * k_mult,
        kernel_size,
        input_size,
        stride,
        padding,
        dilation,
        groups=c_in,
        batch=batch,
    )
    out = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    pointwise = count_macs(c_in * k_mult, c_out, 1, out, batch=batch)
    return depthwise + pointwise


def count_params_spatially_separable(kernel_size: IntOrTuple, rank: int = 1) -> Any:
    """Numbers stored for a 2-D kernel kept as ``rank`` column/row factor pairs: ``r (kH + kW)``.

    Against ``kH kW`` for the full kernel (:func:`count_params` with one channel, no bias): 6
    instead of 9 for a rank-1 3x3 kernel.

    Examples
    --------
    >>> count_params_spatially_separable(3)
    6
    >>> count_params_spatially_separable((5, 7), rank=2)
    24
    """
    kh, kw = ntuple(kernel_size, 2, "kernel_size")
    return positive_int(rank, "rank") * (kh + kw)


def count_macs_spatially_separable(
    channels: int,
    kernel_size: IntOrTuple,
    input_size: IntOrTuple,
    rank: int = 1,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    batch: int = 1,
) -> Any:
    """Multiply-accumulates of :func:`convlab.spatially_separable_conv2d`, counted exactly.

    Per channel and rank term, the column pass computes ``H_out x W_c`` values with ``kH`` taps,
    where ``W_c = (W_out - 1) s_w + kW`` are the columns the row pass reads, and the row pass
    ``H_out x W_out`` values with ``kW`` taps:
    ``batch * C * r * H_out * (W_c kH + W_out kW)``, about ``r (kH + kW)`` per output pixel for
    large images, against ``kH kW`` for the full kernel (:func:`count_macs` with
    ``groups = C``).

    Examples
    --------
    >>> count_macs_spatially_separable(1, 3, (10, 10))    # 8 * (10*3 + 8*3)
    432
    >>> count_macs(1, 1, 3, (10, 10))                      # 8 * 8 * 9
    576
    """
    c = positive_int(channels, "channels")
    r = positive_int(rank, "rank")
    b = positive_int(batch, "batch") if batch != 0 else 0
    kh, kw = ntuple(kernel_size, 2, "kernel_size")
    size = ntuple(input_size, 2, "input_size", allow_zero=True)  # an int means a square image
    oh, ow = conv_output_size(size, (kh, kw), stride, padding)
    sw = ntuple(stride, 2, "stride")[1]
    wc = (ow - 1) * sw + kw
    return b * c * r * oh * (wc * kh + ow * kw)


__all__ += [
    "count_params_depthwise_separable",
    "count_macs_depthwise_separable",
    "count_params_spatially_separable",
    "count_macs_spatially_separable",
]


def __dir__() -> list[str]:
    # dir() lists the API (__all__), not the helpers this module imports (PEP 562)
    return sorted(__all__)

"""Layer objects in PyTorch's style: ``convlab.nn.Conv2d(3, 8, 3, padding=1)`` and friends.

A layer holds its parameters as NumPy arrays (``layer.weight``, ``layer.bias``), initialised
exactly as PyTorch initialises them (same distribution, same bounds) but drawn from a NumPy
``Generator``. Calling it runs the forward pass with convlab's functions and remembers the input;
``layer.backward(grad_output)`` returns the gradient with respect to that input and adds the
parameter gradients to ``layer.grads`` (PyTorch's ``.grad``: they accumulate until
:meth:`Module.zero_grad`). There is no autograd, no train/eval mode and no device: a network is
a :class:`Sequential` (or any :class:`Module` whose ``forward`` and ``backward`` call its
children in opposite orders), and an optimiser step is plain NumPy::

    net = nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    out = net(x)                                   # x: (N, 1, 8, 8)
    net.zero_grad()
    net.backward(dloss_dout)
    for p, g in zip(net.parameters(), net.gradients()):
        p -= 0.1 * g                               # in place: the layer sees the new values

Weights trained in PyTorch load with ``layer.load_state_dict({k: v.numpy() for k, v in
torch_layer.state_dict().items()})`` and give the same outputs to float rounding (tested against
recorded references, tests/test_nn.py). Parameter names, shapes and the printed form follow
``torch.nn`` (``torchvision.ops.DeformConv2d`` for :class:`DeformConv2d`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from . import _nn_kernels
from . import grad as _grad
from ._args import float_array as _float_array
from ._args import ntuple as _ntuple
from ._args import positive_int as _positive_int
from .conv import conv1d as _conv1d
from .conv import conv2d as _conv2d
from .conv import conv3d as _conv3d
from .deformable import deform_conv2d as _deform_conv2d
from .deformable import deform_conv2d_grad as _deform_conv2d_grad
from .separable import depthwise_separable_conv2d as _depthwise_separable_conv2d
from .shapes import conv_output_size as _conv_output_size
from .shapes import padding_pairs as _padding_pairs
from .transposed import conv_transpose1d as _conv_transpose1d
from .transposed import conv_transpose2d as _conv_transpose2d
from .transposed import conv_transpose3d as _conv_transpose3d

__all__ = [
    "Module",
    "Sequential",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "DeformConv2d",
    "DepthwiseSeparableConv2d",
    "SpatiallySeparableConv2d",
    "Linear",
    "ReLU",
    "Flatten",
    "MaxPool2d",
    "CrossEntropyLoss",
    "kaiming_uniform_bound",
]

#: a float32 or float64 array
Array = NDArray[np.floating[Any]]
#: what ``rng`` accepts: a Generator, or a seed for ``np.random.default_rng``
RngLike = np.random.Generator | int | np.random.SeedSequence | None
IntOrTuple = int | Sequence[int]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# np.pad's names for torch's padding modes (F.pad): the same index maps
_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _generator(rng: Any) -> Any:
    """A NumPy Generator from a seed, or the given Generator (anything with ``.uniform``)."""
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    return rng


def kaiming_uniform_bound(fan_in: int, a: float = math.sqrt(5)) -> float:
    """The bound of ``torch.nn.init.kaiming_uniform_(w, a)`` for a weight with this fan-in.

    ``gain = sqrt(2 / (1 + a**2))``, ``std = gain / sqrt(fan_in)``, ``bound = sqrt(3) * std``,
    computed in that order, as PyTorch does; with PyTorch's default ``a = sqrt(5)`` for
    convolution and linear layers it is ``1 / sqrt(fan_in)`` (to rounding).

    Examples
    --------
    >>> round(kaiming_uniform_bound(27), 6)  # Conv2d(3, 8, 3): fan_in = 3 * 3 * 3
    0.19245
    """
    gain = math.sqrt(2.0 / (1 + a**2))
    std = gain / math.sqrt(fan_in)
    return math.sqrt(3.0) * std


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + " " * spaces + line for line in lines[1:])


class Module:
    """Base class of the layers: parameters, gradients, state dicts, printing.

    A subclass lists its own parameter attributes in ``param_names`` (an attribute set to None,
    such as a missing bias, is skipped), implements ``forward`` and ``backward``, and may hold
    other modules as attributes (its children, found in the order they were assigned, as in
    PyTorch).
    """

    #: names of the attributes holding this module's own parameters
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        #: parameter gradients from ``backward()``, by parameter name (accumulated)
        self.grads: dict[str, Array] = {}

    # -- the computation
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, grad_output: npt.ArrayLike) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _saved(self, name: str) -> Any:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward pass first: call the layer on "
                f"an input, then backward() with the gradient of its output"
            )
        return value

    def _accumulate(self, name: str, value: Array) -> None:
        if name in self.grads:
            self.grads[name] = self.grads[name] + value
        else:
            self.grads[name] = value

    # -- the tree of modules and their parameters
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Array]]:
        """``(name, array)`` pairs, this module's first, then each child's (``child.weight``)."""
        for name in self.param_names:
            value = getattr(self, name)
            if value is not None:
                yield prefix + name, value
        for child_name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{child_name}.")

    def parameters(self) -> list[Array]:
        """The parameter arrays themselves, in :meth:`named_parameters` order: update in place."""
        return [p for _, p in self.named_parameters()]

    def named_gradients(self, prefix: str = "") -> Iterator[tuple[str, Array | None]]:
        """``(name, gradient or None)`` in :meth:`named_parameters` order."""
        for name in self.param_names:
            if getattr(self, name) is not None:
                yield prefix + name, self.grads.get(name)
        for child_name, child in self.named_children():
            yield from child.named_gradients(f"{prefix}{child_name}.")

    def gradients(self) -> list[Array | None]:
        """The gradients aligned with :meth:`parameters` (None where no backward ran yet)."""
        return [g for _, g in self.named_gradients()]

    def zero_grad(self) -> None:
        """Forget every stored gradient (``torch``'s ``zero_grad(set_to_none=True)``)."""
        self.grads = {}
        for _, child in self.named_children():
            child.zero_grad()

    def state_dict(self) -> dict[str, Array]:
        """Copies of the parameters by name, as ``torch.nn.Module.state_dict()`` names them."""
        return {name: p.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict: Mapping[str, npt.ArrayLike], strict: bool = True) -> None:
        """Copy arrays into the parameters (in place, cast to the parameters' dtype).

        ``state_dict`` maps names to arrays, e.g. a PyTorch state dict as NumPy arrays:
        ``{k: v.detach().numpy() for k, v in torch_module.state_dict().items()}``. With
        ``strict`` every parameter must be given and no other key; shapes must always match.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, unexpected "
                f"keys {unexpected} (the parameters are {list(own)})"
            )
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if value.shape != target.shape:
                raise ValueError(
                    f"load_state_dict: {name} has shape {target.shape} in "
                    f"{type(self).__name__}, got {value.shape}"
                )
            target[...] = value

    # -- printing, as torch.nn.Module prints
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): {_addindent(repr(child), 2)}" for name, child in self.named_children()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


class Sequential(Module):
    """Modules applied in order; ``backward()`` runs their ``backward`` in reverse order.

    Parameter names are ``"0.weight"``, ``"1.bias"``... as in ``torch.nn.Sequential``.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes convlab.nn modules, got {layer!r} at {i}")
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, input: npt.ArrayLike) -> Any:
        out: Any = input
        for layer in self.layers:
            out = layer(out)
        return out

    def backward(self, grad_output: npt.ArrayLike) -> Any:
        grad: Any = grad_output
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad


# --------------------------------------------------------------------------- convolutions


def _pad(x: Array, pairs: Sequence[tuple[int, int]], mode: str) -> Array:
    """Pad the trailing ``len(pairs)`` axes as ``torch.nn.functional.pad`` does."""
    width = [(0, 0)] * (x.ndim - len(pairs)) + list(pairs)
    np_mode: Any = "constant" if mode == "zeros" else _NP_PAD_MODE[mode]
    out: Array = np.pad(x, width, mode=np_mode)
    return out


def _unpad(
    grad: Array, pairs: Sequence[tuple[int, int]], mode: str, shape: tuple[int, ...]
) -> Array:
    """The adjoint of :func:`_pad`: each padded element's gradient goes back to its source."""
    lead = grad.ndim - len(pairs)
    for i, (before, after) in enumerate(pairs):
        axis, size = lead + i, shape[lead + i]
        if before == 0 and after == 0:
            continue
        if mode == "zeros":
            grad = np.take(grad, np.arange(before, before + size), axis=axis)
            continue
        # the source index of every padded position, by padding the indices themselves
        np_mode: Any = _NP_PAD_MODE[mode]
        source = np.pad(np.arange(size), (before, after), mode=np_mode)
        folded = np.zeros(grad.shape[:axis] + (size,) + grad.shape[axis + 1 :], grad.dtype)
        np.add.at(np.moveaxis(folded, axis, 0), source, np.moveaxis(grad, axis, 0))
        grad = folded
    return grad


def _sum_bias(grad_output: Array, nd: int) -> Array:
    axes = tuple(i for i in range(grad_output.ndim) if i != grad_output.ndim - nd - 1)
    total: Array = grad_output.sum(axis=axes)
    return total


class _ConvNd(Module):
    param_names = ("weight", "bias")
    _nd: ClassVar[int] = 2
    _transposed: ClassVar[bool] = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        output_padding: IntOrTuple = 0,
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        nd = self._nd
        name = type(self).__name__
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        for label, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % self.groups:
                raise ValueError(f"{label} ({value}) must be divisible by groups ({groups})")
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size")
        self.stride = _ntuple(stride, nd, "stride")
        self.dilation = _ntuple(dilation, nd, "dilation")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {', '.join(map(repr, _PADDING_MODES))}, "
                f"got {padding_mode!r}"
            )
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {name}')
        self.padding_mode = padding_mode
        self.padding: tuple[int, ...] | str
        if isinstance(padding, str):
            if self._transposed:
                raise ValueError(f"{name} takes int or tuple padding, got {padding!r}")
            # checks the string and the stride rule of "same"
            _padding_pairs(padding, self.kernel_size, self.stride, self.dilation)
            self.padding = padding
        else:
            self.padding = _ntuple(padding, nd, "padding", allow_zero=True)
        self.output_padding = _ntuple(output_padding, nd, "output_padding", allow_zero=True)
        if self._transposed:
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
                if op >= s and op >= d:
                    raise ValueError(
                        f"output_padding {self.output_padding} must be smaller than either "
                        f"stride {self.stride} or dilation {self.dilation} (PyTorch's rule)"
                    )
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.weight: Array = np.empty(shape, dtype=self.dtype)
        self.bias: Array | None = np.empty(out_channels, dtype=self.dtype) if bias else None
        self._input: Array | None = None
        self._out_shape: tuple[int, ...] | None = None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: RngLike = None) -> None:
        """PyTorch's initialisation: ``kaiming_uniform_(weight, a=sqrt(5))``, bias ``U(-b, b)``.

        Both use the fan-in ``weight.shape[1] * prod(kernel_size)`` of the weight *as stored*:
        ``in_channels / groups`` inputs per output for a convolution, ``out_channels / groups``
        for a transposed one (whose weight is ``(C_in, C_out / groups, *k)``), exactly as
        ``torch.nn.init._calculate_fan_in_and_fan_out`` computes it. The bias bound is
        ``1 / sqrt(fan_in)``. The weight is drawn first, then the bias, from ``rng``.
        """
        gen = _generator(rng)
        fan_in = self.weight.shape[1] * math.prod(self.weight.shape[2:])
        bound = kaiming_uniform_bound(fan_in)
        self.weight[...] = gen.uniform(-bound, bound, size=self.weight.shape)
        if self.bias is not None:
            bias_bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            self.bias[...] = gen.uniform(-bias_bound, bias_bound, size=self.bias.shape)

    def _input_array(self, input: npt.ArrayLike) -> Array:
        x: Array = _float_array(input, "input", dtype=self.dtype)
        return x

    def _remember(self, x: Array, out: Array) -> Array:
        self._input, self._out_shape = x, out.shape
        return out

    def _grad_output(self, grad_output: npt.ArrayLike) -> Array:
        go: Array = _float_array(grad_output, "grad_output", dtype=self.dtype)
        if go.shape != self._out_shape:
            raise ValueError(
                f"grad_output must have the shape of the last output, {self._out_shape}, "
                f"got {go.shape}"
            )
        return go

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if isinstance(self.padding, str) or self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


# convlab's functions by number of spatial dimensions (not annotated yet: Callable[..., Any])
_Fn = Callable[..., Any]
_CONV: dict[int, _Fn] = {1: _conv1d, 2: _conv2d, 3: _conv3d}
_CONV_INPUT: dict[int, _Fn] = {1: _grad.conv1d_input, 2: _grad.conv2d_input, 3: _grad.conv3d_input}
_CONV_WEIGHT: dict[int, _Fn] = {
    1: _grad.conv1d_weight,
    2: _grad.conv2d_weight,
    3: _grad.conv3d_weight,
}
_CONV_TRANSPOSE: dict[int, _Fn] = {1: _conv_transpose1d, 2: _conv_transpose2d, 3: _conv_transpose3d}


def _grad_input(nd: int, size: Any, w: Array, go: Array, pad: Any, s: Any, d: Any, g: int) -> Array:
    out: Array = _CONV_INPUT[nd](size, w, go, stride=s, padding=pad, dilation=d, groups=g)
    return out


def _grad_weight(
    nd: int, x: Array, size: Any, go: Array, pad: Any, s: Any, d: Any, g: int
) -> Array:
    out: Array = _CONV_WEIGHT[nd](x, size, go, stride=s, padding=pad, dilation=d, groups=g)
    return out


class _Conv(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            rng=rng,
            dtype=dtype,
        )

    def forward(self, input: npt.ArrayLike) -> Array:
        """The convolution of ``input`` ((N, C_in, *spatial) or (C_in, *spatial))."""
        x = self._input_array(input)
        conv = _CONV[self._nd]
        out: Array = conv(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.padding_mode,
        )
        return self._remember(x, out)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        """Gradient with respect to the last input; adds ``grads["weight"]``, ``grads["bias"]``.

        Zero padding that is the same on both sides goes to :mod:`convlab.grad` as it is;
        other padding (an even kernel's ``"same"``, reflect, replicate, circular) is applied
        explicitly and its adjoint sends each padded element's gradient back to its source.
        """
        x: Array = self._saved("_input")
        go = self._grad_output(grad_output)
        nd = self._nd
        pairs = _padding_pairs(self.padding, self.kernel_size, self.stride, self.dilation)
        geometry = (self.stride, self.dilation, self.groups)
        if self.padding_mode == "zeros" and all(b == a for b, a in pairs):
            pad = tuple(b for b, _ in pairs)
            gx = _grad_input(nd, x.shape, self.weight, go, pad, *geometry)
            gw = _grad_weight(nd, x, self.weight.shape, go, pad, *geometry)
        else:
            xp = _pad(x, pairs, self.padding_mode)
            gxp = _grad_input(nd, xp.shape, self.weight, go, 0, *geometry)
            gw = _grad_weight(nd, xp, self.weight.shape, go, 0, *geometry)
            gx = _unpad(gxp, pairs, self.padding_mode, x.shape)
        self._accumulate("weight", gw)
        if self.bias is not None:
            self._accumulate("bias", _sum_bias(go, nd))
        return gx


class Conv1d(_Conv):
    """``torch.nn.Conv1d``: weight ``(C_out, C_in / groups, k)``, forward :func:`convlab.conv1d`.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or tuple of 1 int
    padding : int, tuple, ``"same"`` or ``"valid"``
    groups : int
    bias : bool
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
    rng : numpy.random.Generator or int, optional
        Where the initial weights come from (a seed for ``np.random.default_rng``).
    dtype : float32 (default, as PyTorch) or float64
        Of the parameters; inputs are cast to it.

    Examples
    --------
    >>> Conv1d(2, 4, 3, padding=1, rng=0)
    Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=(1,))
    >>> Conv1d(2, 4, 3, rng=0)(np.ones((1, 2, 5))).shape
    (1, 4, 3)
    """

    _nd = 1


class Conv2d(_Conv):
    """``torch.nn.Conv2d``: weight ``(C_out, C_in / groups, kH, kW)``, forward :func:`convlab.conv2d`.

    Parameters as in :class:`Conv1d`, with 2-tuples.

    Examples
    --------
    >>> layer = Conv2d(3, 8, 3, padding=1, rng=0)
    >>> layer
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> y = layer(np.ones((2, 3, 5, 5), np.float32))
    >>> gx = layer.backward(np.ones_like(y))
    >>> gx.shape, layer.grads["weight"].shape, layer.grads["bias"].tolist() == [50.0] * 8
    ((2, 3, 5, 5), (8, 3, 3, 3), True)
    """

    _nd = 2


class Conv3d(_Conv):
    """``torch.nn.Conv3d``: weight ``(C_out, C_in / groups, kD, kH, kW)``, forward
    :func:`convlab.conv3d`. Parameters as in :class:`Conv1d`, with 3-tuples.

    Examples
    --------
    >>> Conv3d(1, 2, (1, 3, 3), stride=(1, 2, 2), bias=False, rng=0)
    Conv3d(1, 2, kernel_size=(1, 3, 3), stride=(1, 2, 2), bias=False)
    """

    _nd = 3


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntOrTuple = 1,
        padding_mode: str = "zeros",
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            output_padding,
            rng=rng,
            dtype=dtype,
        )

    def forward(self, input: npt.ArrayLike, output_size: Sequence[int] | None = None) -> Array:
        """The transposed convolution; ``output_size`` picks the output padding, as in torch."""
        x = self._input_array(input)
        out: Array = _CONV_TRANSPOSE[self._nd](
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            0 if output_size is not None else self.output_padding,
            self.groups,
            self.dilation,
            output_size,
        )
        return self._remember(x, out)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        """Gradient with respect to the last input; adds ``grads["weight"]``, ``grads["bias"]``.

        The transposed convolution is the adjoint of the convolution with the same weight, so its
        input gradient is that convolution of ``grad_output``, and its weight gradient is the
        convolution's weight gradient with the roles of input and output swapped.
        """
        x: Array = self._saved("_input")
        go = self._grad_output(grad_output)
        nd = self._nd
        spatial = x.shape[-nd:]
        stride, padding, dilation = self.stride, self.padding, self.dilation
        assert not isinstance(padding, str)  # __init__ rejects strings for transposed layers
        # positions past (n - 1) * s + d * (k - 1) of the padded grad_output exist only when the
        # output padding reached the stride (allowed below the dilation); no input reads them
        lengths = [
            (n - 1) * s + d * (k - 1) + 1
            for n, s, d, k in zip(spatial, stride, dilation, self.kernel_size, strict=True)
        ]
        if all(o < s for o, s in zip(self._effective_output_padding(go), stride, strict=True)):
            gx = _CONV[nd](go, self.weight, None, stride, padding, dilation, self.groups)
            gw = _grad_weight(nd, go, self.weight.shape, x, padding, stride, dilation, self.groups)
        else:
            gp = _pad(go, [(p, p) for p in padding], "zeros")
            index: tuple[Any, ...] = (Ellipsis, *(slice(0, length) for length in lengths))
            gp = np.ascontiguousarray(gp[index])
            gx = _CONV[nd](gp, self.weight, None, stride, 0, dilation, self.groups)
            gw = _grad_weight(nd, gp, self.weight.shape, x, 0, stride, dilation, self.groups)
        self._accumulate("weight", gw)
        if self.bias is not None:
            self._accumulate("bias", _sum_bias(go, nd))
        result: Array = gx
        return result

    def _effective_output_padding(self, go: Array) -> list[int]:
        """The output padding of the last forward pass (from its output size)."""
        x: Array = self._saved("_input")
        nd = self._nd
        assert not isinstance(self.padding, str)
        return [
            out - ((n - 1) * s - 2 * p + d * (k - 1) + 1)
            for out, n, s, p, d, k in zip(
                go.shape[-nd:],
                x.shape[-nd:],
                self.stride,
                self.padding,
                self.dilation,
                self.kernel_size,
                strict=True,
            )
        ]


class ConvTranspose1d(_ConvTranspose):
    """``torch.nn.ConvTranspose1d``: weight ``(C_in, C_out / groups, k)``, forward
    :func:`convlab.conv_transpose1d`.

    Parameters (in torch's order: ``in_channels, out_channels, kernel_size, stride, padding,
    output_padding, groups, bias, dilation, padding_mode``) as in
    :func:`convlab.conv_transpose1d`; ``padding_mode`` must be ``"zeros"``. ``forward(input,
    output_size=None)`` as in torch.

    Examples
    --------
    >>> ConvTranspose1d(4, 2, 3, stride=2, output_padding=1, rng=0)
    ConvTranspose1d(4, 2, kernel_size=(3,), stride=(2,), output_padding=(1,))
    """

    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    """``torch.nn.ConvTranspose2d``: weight ``(C_in, C_out / groups, kH, kW)``, forward
    :func:`convlab.conv_transpose2d`. Parameters as in :class:`ConvTranspose1d`, with 2-tuples.

    Examples
    --------
    >>> up = ConvTranspose2d(8, 4, 4, stride=2, padding=1, rng=0)  # DCGAN's upsampling layer
    >>> up(np.ones((1, 8, 5, 5))).shape
    (1, 4, 10, 10)
    >>> up(np.ones((1, 8, 5, 5)), output_size=(11, 11)).shape
    (1, 4, 11, 11)
    """

    _nd = 2


class ConvTranspose3d(_ConvTranspose):
    """``torch.nn.ConvTranspose3d``: weight ``(C_in, C_out / groups, kD, kH, kW)``, forward
    :func:`convlab.conv_transpose3d`. Parameters as in :class:`ConvTranspose1d`, with 3-tuples.
    """

    _nd = 3


class DeformConv2d(_ConvNd):
    """``torchvision.ops.DeformConv2d``: a :class:`Conv2d` whose taps move by given offsets.

    ``forward(input, offset, mask=None)`` is :func:`convlab.deform_conv2d` with this layer's
    weight and bias (offsets and masks are inputs, usually predicted by another convolution);
    ``backward(grad_output)`` returns the gradients ``(input, offset, mask)`` (``mask``'s is None
    when the forward pass had none) and adds the weight and bias gradients to ``grads``.
    Initialised as torchvision does (as :class:`Conv2d`).

    Examples
    --------
    >>> import convlab
    >>> layer = DeformConv2d(2, 4, 3, padding=1, rng=0)
    >>> layer
    DeformConv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> x = np.ones((1, 2, 5, 5), np.float32)
    >>> offset = np.zeros((1, 2 * 3 * 3, 5, 5), np.float32)  # zero offsets: a plain Conv2d
    >>> y = convlab.conv2d(x, layer.weight, layer.bias, padding=1)
    >>> bool(np.allclose(layer(x, offset), y, atol=1e-6))  # float32 rounding
    True
    """

    _nd = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        if isinstance(padding, str):
            raise ValueError(f"DeformConv2d takes int or tuple padding, got {padding!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            rng=rng,
            dtype=dtype,
        )
        self._offset: Array | None = None
        self._mask: Array | None = None

    def forward(
        self, input: npt.ArrayLike, offset: npt.ArrayLike, mask: npt.ArrayLike | None = None
    ) -> Array:
        x = self._input_array(input)
        off: Array = _float_array(offset, "offset", dtype=self.dtype)
        m: Array | None = None if mask is None else _float_array(mask, "mask", dtype=self.dtype)
        # padding: never a string here (__init__ rejects one)
        padding = cast(tuple[int, ...], self.padding)
        out: Array = _deform_conv2d(
            x, off, self.weight, self.bias, self.stride, padding, self.dilation, m
        )
        self._offset, self._mask = off, m
        return self._remember(x, out)

    def backward(self, grad_output: npt.ArrayLike) -> tuple[Array, Array, Array | None]:
        x: Array = self._saved("_input")
        go = self._grad_output(grad_output)
        g = _deform_conv2d_grad(
            go,
            x,
            cast(Array, self._offset),  # set by the forward pass that saved _input
            self.weight,
            self.bias,
            self.stride,
            cast(tuple[int, ...], self.padding),  # never a string (__init__)
            self.dilation,
            self._mask,
        )
        self._accumulate("weight", g.weight)
        if self.bias is not None:
            self._accumulate("bias", g.bias)
        return g.input, g.offset, g.mask

    def extra_repr(self) -> str:
        # torchvision's DeformConv2d.__repr__: no output padding, no padding mode
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        s += ", bias=False" if self.bias is None else ""
        return s


# --------------------------------------------------------------------------- separable blocks


class DepthwiseSeparableConv2d(Module):
    """A depthwise :class:`Conv2d` (``groups = in_channels``) followed by a 1x1 :class:`Conv2d`.

    The block of MobileNet and Xception (without the normalisation and non-linearity between the
    two), as two children named ``depthwise`` and ``pointwise``, so a PyTorch module with two
    such attributes loads directly. The forward pass runs the fused
    :func:`convlab.depthwise_separable_conv2d`; the backward pass recomputes the intermediate
    with the depthwise layer and runs both layers' ``backward``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or tuple of 2 ints
        Of the depthwise convolution.
    padding : int, tuple of 2 ints, ``"same"`` or ``"valid"``
        Zero padding of the depthwise convolution.
    depth_multiplier : int
        Depthwise filters per input channel (``K``): ``in_channels * K`` intermediate channels.
    bias : bool
        Both convolutions have a bias (PyTorch's default for each), or neither.
    rng, dtype
        As in :class:`Conv2d`; the depthwise layer is initialised first.

    Examples
    --------
    >>> DepthwiseSeparableConv2d(3, 8, 3, padding=1, rng=0)
    DepthwiseSeparableConv2d(
      (depthwise): Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=3)
      (pointwise): Conv2d(3, 8, kernel_size=(1, 1), stride=(1, 1))
    )
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        gen = _generator(rng)
        mid = _positive_int(in_channels, "in_channels") * _positive_int(
            depth_multiplier, "depth_multiplier"
        )
        self.depthwise = Conv2d(
            in_channels,
            mid,
            kernel_size,
            stride,
            padding,
            dilation,
            groups=in_channels,
            bias=bias,
            rng=gen,
            dtype=dtype,
        )
        self.pointwise = Conv2d(mid, out_channels, 1, bias=bias, rng=gen, dtype=dtype)

    def forward(self, input: npt.ArrayLike) -> Array:
        dw, pw = self.depthwise, self.pointwise
        x = dw._input_array(input)
        out: Array = _depthwise_separable_conv2d(
            x, dw.weight, pw.weight, dw.bias, pw.bias, dw.stride, dw.padding, dw.dilation
        )
        self._input: Array | None = x
        self._out_shape = out.shape
        return out

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        x: Array = self._saved("_input")
        mid = self.depthwise(x)  # recomputed: the fused forward pass never stored it
        self.pointwise._input, self.pointwise._out_shape = mid, self._out_shape
        gx: Array = self.depthwise.backward(self.pointwise.backward(grad_output))
        return gx


class SpatiallySeparableConv2d(Module):
    """A per-channel ``kH x 1`` convolution followed by a per-channel ``1 x kW`` one.

    Each channel is filtered with its own rank-1 kernel ``vertical.weight[c] @
    horizontal.weight[c]`` (:meth:`kernel`), at ``kH + kW`` multiply-adds per pixel instead of
    ``kH * kW``: the learnable form of :func:`convlab.spatially_separable_conv2d`. In PyTorch:
    ``Conv2d(C, C, (kH, 1), groups=C, bias=False)`` named ``vertical``, then ``Conv2d(C, C, (1,
    kW), groups=C)`` named ``horizontal`` (which carries the bias), with the stride, padding and
    dilation of each axis given to the layer that runs along it.

    Examples
    --------
    >>> import convlab
    >>> layer = SpatiallySeparableConv2d(2, 3, padding=1, rng=0)
    >>> layer
    SpatiallySeparableConv2d(
      (vertical): Conv2d(2, 2, kernel_size=(3, 1), stride=(1, 1), padding=(1, 0), groups=2, bias=False)
      (horizontal): Conv2d(2, 2, kernel_size=(1, 3), stride=(1, 1), padding=(0, 1), groups=2)
    )
    >>> x = np.ones((1, 2, 4, 4), np.float32)
    >>> same = convlab.conv2d(x, layer.kernel(), layer.horizontal.bias, padding=1, groups=2)
    >>> bool(np.allclose(layer(x), same, atol=1e-6))
    True
    """

    def __init__(
        self,
        channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        bias: bool = True,
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        gen = _generator(rng)
        kh, kw = _ntuple(kernel_size, 2, "kernel_size")
        sh, sw = _ntuple(stride, 2, "stride")
        dh, dw = _ntuple(dilation, 2, "dilation")
        pv: IntOrTuple | str
        ph: IntOrTuple | str
        if isinstance(padding, str):
            pv = ph = padding
        else:
            p0, p1 = _ntuple(padding, 2, "padding", allow_zero=True)
            pv, ph = (p0, 0), (0, p1)
        c = channels
        self.vertical = Conv2d(
            c, c, (kh, 1), (sh, 1), pv, (dh, 1), groups=c, bias=False, rng=gen, dtype=dtype
        )
        self.horizontal = Conv2d(
            c, c, (1, kw), (1, sw), ph, (1, dw), groups=c, bias=bias, rng=gen, dtype=dtype
        )

    def kernel(self) -> Array:
        """The equivalent depthwise weight ``(C, 1, kH, kW)``: each channel's ``col @ row``."""
        k: Array = self.vertical.weight * self.horizontal.weight
        return k

    def forward(self, input: npt.ArrayLike) -> Array:
        out: Array = self.horizontal(self.vertical(input))
        return out

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        gx: Array = self.vertical.backward(self.horizontal.backward(grad_output))
        return gx


# --------------------------------------------------------------------------- around the convolutions


class Linear(Module):
    """``torch.nn.Linear``: ``y = x @ weight.T + bias``, weight ``(out_features, in_features)``,
    initialised as PyTorch does (``kaiming_uniform_(a=sqrt(5))``, bias ``U(+-1/sqrt(in))``).

    Examples
    --------
    >>> Linear(16, 10, rng=0)
    Linear(in_features=16, out_features=10, bias=True)
    """

    param_names = ("weight", "bias")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: RngLike = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.weight: Array = np.empty((out_features, in_features), dtype=self.dtype)
        self.bias: Array | None = np.empty(out_features, dtype=self.dtype) if bias else None
        self._input: Array | None = None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: RngLike = None) -> None:
        gen = _generator(rng)
        bound = kaiming_uniform_bound(self.in_features)
        self.weight[...] = gen.uniform(-bound, bound, size=self.weight.shape)
        if self.bias is not None:
            b = 1 / math.sqrt(self.in_features)
            self.bias[...] = gen.uniform(-b, b, size=self.bias.shape)

    def forward(self, input: npt.ArrayLike) -> Array:
        x: Array = _float_array(input, "input", dtype=self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"input must end in in_features = {self.in_features}, got shape {x.shape}"
            )
        self._input = x
        out: Array = x @ self.weight.T
        if self.bias is not None:
            out += self.bias
        return out

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        x: Array = self._saved("_input")
        go: Array = _float_array(grad_output, "grad_output", dtype=self.dtype)
        if go.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(
                f"grad_output must have shape {x.shape[:-1] + (self.out_features,)}, got {go.shape}"
            )
        go2, x2 = go.reshape(-1, self.out_features), x.reshape(-1, self.in_features)
        self._accumulate("weight", go2.T @ x2)
        if self.bias is not None:
            self._accumulate("bias", go2.sum(axis=0))
        gx: Array = go @ self.weight
        return gx

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class ReLU(Module):
    """``max(x, 0)``; the gradient passes where the output is positive (0 at 0), as in PyTorch,
    whose rule this follows for NaN too (it passes through, value and gradient). Float32 and
    float64 arrays go through a parallel Numba kernel (:mod:`convlab._nn_kernels`).

    Examples
    --------
    >>> relu = ReLU()
    >>> relu(np.array([-1.0, 0.0, 2.0])), relu.backward(np.ones(3))
    (array([0., 0., 2.]), array([0., 0., 1.]))
    """

    def __init__(self) -> None:
        super().__init__()
        self._positive: NDArray[np.bool_] | None = None

    def forward(self, input: npt.ArrayLike) -> Array:
        x: Array = np.asarray(input)
        out: Array
        if x.dtype in (np.float32, np.float64):
            out, self._positive = _nn_kernels.relu(x)
            return out
        # other dtypes (integers): the same rule in NumPy
        out = np.where(x < 0, np.zeros((), x.dtype), x)
        self._positive = ~(out <= 0)
        return out

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        positive: NDArray[np.bool_] = self._saved("_positive")
        go = np.asarray(grad_output)
        if go.shape != positive.shape:
            raise ValueError(f"grad_output must have shape {positive.shape}, got {go.shape}")
        if go.dtype in (np.float32, np.float64):
            gx: Array = _nn_kernels.relu_backward(go, positive)
            return gx
        gx = np.where(positive, go, np.zeros((), go.dtype))
        return gx


class Flatten(Module):
    """``torch.nn.Flatten()``: ``(N, *rest) -> (N, prod(rest))``; backward reshapes back.

    Examples
    --------
    >>> Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] | None = None

    def forward(self, input: npt.ArrayLike) -> Array:
        x: Array = np.asarray(input)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def extra_repr(self) -> str:
        return "start_dim=1, end_dim=-1"  # torch's defaults, the only flattening offered here

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        shape: tuple[int, ...] = self._saved("_shape")
        gx: Array = np.asarray(grad_output).reshape(shape)
        return gx


class MaxPool2d(Module):
    """``torch.nn.MaxPool2d``: the largest value of each window, ``(N, C, H, W)`` in and out.

    Windows are ``kernel_size`` taps, ``dilation`` apart, every ``stride`` positions (``stride``
    defaults to ``kernel_size``); ``padding`` widens the input by borders that are left out of
    every window (at most half the kernel, as PyTorch requires), so a padded tap never wins,
    not even over ``-inf``. The output size is the convolution's, ``floor((H + 2 p - d (k - 1) -
    1) / s) + 1``. ``backward`` sends each output's gradient to the input that won its window:
    the first largest value in row-major window order, as PyTorch's CPU kernel picks, and a NaN
    wins over numbers (of several NaNs the last, as in PyTorch). Overlapping windows that share
    a winner add up, in the output's order. The loops are Numba kernels
    (:mod:`convlab._nn_kernels`), parallel over the planes.

    Examples
    --------
    >>> pool = MaxPool2d(2)
    >>> x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 1.0]]]])
    >>> pool(x)
    array([[[[5., 8.]]]])
    >>> pool.backward(np.array([[[[10.0, 20.0]]]]))
    array([[[[ 0., 10.,  0.,  0.],
             [ 0.,  0., 20.,  0.]]]])
    """

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
    ) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 2, "kernel_size")
        self.stride = self.kernel_size if stride is None else _ntuple(stride, 2, "stride")
        self.padding = _ntuple(padding, 2, "padding", allow_zero=True)
        self.dilation = _ntuple(dilation, 2, "dilation")
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if 2 * p > k:
                raise ValueError(
                    f"padding must be at most half the kernel size (pad <= k / 2), got padding "
                    f"{self.padding} for kernel_size {self.kernel_size}"
                )
        self._winners: NDArray[np.int64] | None = None
        self._input_shape: tuple[int, ...] | None = None

    def _out_size(self, size: tuple[int, ...]) -> tuple[int, int]:
        """The output size: the convolution's formula (:func:`convlab.conv_output_size`)."""
        try:
            oh, ow = _conv_output_size(
                tuple(size), self.kernel_size, self.stride, self.padding, self.dilation
            )
        except ValueError as exc:
            raise ValueError(
                f"input of size {tuple(size)} is smaller than the pooling window: {exc}"
            ) from None
        return oh, ow

    def forward(self, input: npt.ArrayLike) -> Array:
        x: Array = _float_array(input, "input")
        if x.ndim != 4:
            raise ValueError(f"input must be (N, C, H, W), got shape {x.shape}")
        (ph, pw), (sh, sw), (dh, dw) = self.padding, self.stride, self.dilation
        oh, ow = self._out_size(x.shape[2:])
        out: Array
        out, self._winners = _nn_kernels.max_pool2d(
            np.ascontiguousarray(x), self.kernel_size, (sh, sw), (ph, pw), (dh, dw), (oh, ow)
        )
        self._input_shape = x.shape
        return out

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        winners: NDArray[np.int64] = self._saved("_winners")
        shape: tuple[int, ...] = self._saved("_input_shape")
        go: Array = _float_array(grad_output, "grad_output")
        if go.shape != winners.shape:
            raise ValueError(f"grad_output must have shape {winners.shape}, got {go.shape}")
        # overlapping windows may share a winner: their gradients add up, in output order
        gx: Array = _nn_kernels.max_pool2d_backward(go, winners, shape)
        return gx

    def extra_repr(self) -> str:
        def one(t: tuple[int, ...]) -> str:
            return str(t[0]) if t[0] == t[1] else str(t)

        return (
            f"kernel_size={one(self.kernel_size)}, stride={one(self.stride)}, "
            f"padding={one(self.padding)}, dilation={one(self.dilation)}, ceil_mode=False"
        )


class CrossEntropyLoss(Module):
    """``torch.nn.CrossEntropyLoss``: softmax and negative log-likelihood of class indices.

    ``loss(logits, target)`` takes logits ``(N, C)`` and integer classes ``(N,)`` in ``[0, C)``
    and returns ``-log softmax(logits)[n, target[n]]`` averaged over the batch (``reduction=
    "mean"``, PyTorch's default) or summed (``"sum"``), as a 0-d array of the logits' dtype. The
    softmax subtracts each row's maximum first, so large logits do not overflow. ``backward()``
    returns the gradient with respect to the logits, ``(softmax - onehot(target)) / N`` (without
    the ``/ N`` for ``"sum"``), times ``grad_output`` (1 by default).

    Examples
    --------
    >>> loss = CrossEntropyLoss()
    >>> float(loss(np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([0, 1])))  # log 2
    0.6931471805599453
    >>> loss.backward()
    array([[-0.25,  0.25],
           [ 0.25, -0.25]])
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._softmax: Array | None = None
        self._target: NDArray[np.intp] | None = None

    def forward(self, input: npt.ArrayLike, target: npt.ArrayLike) -> Array:
        logits: Array = _float_array(input, "input")
        if logits.ndim != 2:
            raise ValueError(f"input must be logits of shape (N, C), got shape {logits.shape}")
        labels = np.asarray(target)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"target must hold integer class indices, got dtype {labels.dtype}")
        n, c = logits.shape
        if labels.shape != (n,):
            raise ValueError(
                f"target must have shape ({n},), one class per row, got {labels.shape}"
            )
        if n and (labels.min() < 0 or labels.max() >= c):
            bad = labels[(labels < 0) | (labels >= c)][0]
            raise ValueError(f"target holds class {bad}, outside [0, C) = [0, {c})")
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        picked = np.log(total[:, 0]) - shifted[rows, labels]
        self._softmax = exp / total
        self._target = labels.astype(np.intp)
        loss = picked.sum(dtype=logits.dtype)
        if self.reduction == "mean":
            loss = loss / logits.dtype.type(n)
        out: Array = np.asarray(loss, dtype=logits.dtype)
        return out

    def backward(self, grad_output: npt.ArrayLike = 1.0) -> Array:
        softmax: Array = self._saved("_softmax")
        labels: NDArray[np.intp] = self._saved("_target")
        go = np.asarray(grad_output, dtype=softmax.dtype)
        if go.ndim != 0:
            raise ValueError(
                f"grad_output of a reduced loss must be a scalar, got shape {go.shape}"
            )
        gx: Array = softmax.copy()
        gx[np.arange(len(labels)), labels] -= 1
        scale = go / softmax.dtype.type(len(labels)) if self.reduction == "mean" else go
        gx *= scale
        return gx

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


def __dir__() -> list[str]:
    # dir() lists the API (__all__), not the helpers this module imports (PEP 562)
    return sorted(__all__)

"""Record torch.nn / torchvision layers for convlab.nn: outputs, gradients, initialisation bounds.

Writes ``nn.npz`` (run ``tests/record_references.py nn`` in a venv with torch and torchvision,
e.g. torch 2.14.1 + torchvision 0.29.1). For each case of ``CASES``:

``<name>/spec``
    JSON: the convlab.nn class, its constructor arguments (the same as torch's), the dtype, the
    forward keyword arguments (``output_size``) and whether the forward takes an offset / mask.
``<name>/state/<key>``
    the torch module's ``state_dict()`` (the weights the test loads into convlab's layer).
``<name>/x``, ``/offset``, ``/mask``, ``/out``, ``/grad_out``
    the inputs, torch's output and a seeded upstream gradient.
``<name>/grad/x``, ``/grad/offset``, ``/grad/mask``, ``<name>/grad/state/<key>``
    what ``torch.autograd`` gives for ``(out * grad_out).sum()``.
``<name>/repr``
    ``repr(module)`` (the torch classes written here carry convlab's class names).
``<name>/init_bounds``, ``<name>/init_sizes``
    the ``(low, high)`` of every ``Tensor.uniform_`` call torch makes while constructing the
    module (``kaiming_uniform_`` and the bias's ``uniform_``), in order, and the sizes drawn:
    captured by wrapping ``Tensor.uniform_`` while the module is built, so the test compares
    convlab with the bounds torch really uses rather than with a formula copied from its source.
"""

import json
import pathlib

import numpy as np
import torch
from torch import nn
from torchvision.ops import DeformConv2d


class DepthwiseSeparableConv2d(nn.Module):
    """What convlab.nn.DepthwiseSeparableConv2d is, written in PyTorch."""

    def __init__(self, c_in, c_out, k, stride=1, padding=0, dilation=1, depth_multiplier=1):
        super().__init__()
        mid = c_in * depth_multiplier
        self.depthwise = nn.Conv2d(c_in, mid, k, stride, padding, dilation, groups=c_in)
        self.pointwise = nn.Conv2d(mid, c_out, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class SpatiallySeparableConv2d(nn.Module):
    """What convlab.nn.SpatiallySeparableConv2d is, written in PyTorch."""

    def __init__(self, c, k, padding=0):
        super().__init__()
        pv, ph = (padding, padding) if isinstance(padding, str) else ((padding, 0), (0, padding))
        self.vertical = nn.Conv2d(c, c, (k[0], 1), padding=pv, groups=c, bias=False)
        self.horizontal = nn.Conv2d(c, c, (1, k[1]), padding=ph, groups=c)

    def forward(self, x):
        return self.horizontal(self.vertical(x))


def _lenet():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 10),
    )


def _case(name, cls, args, x, kwargs=None, dtype="float32", forward=None, build=None, deform=None):
    return dict(
        name=name,
        cls=cls,
        args=args,
        kwargs=kwargs or {},
        x=x,
        dtype=dtype,
        forward=forward or {},
        build=build,
        deform=deform,
    )


CASES = [
    _case("conv1d_s2_p1", "Conv1d", [3, 4, 3], (2, 3, 9), dict(stride=2, padding=1)),
    _case(
        "conv1d_circular_groups",
        "Conv1d",
        [4, 6, 3],
        (2, 4, 7),
        dict(padding=2, dilation=2, groups=2, padding_mode="circular"),
    ),
    _case("conv2d_basic", "Conv2d", [3, 8, 3], (2, 3, 6, 6), dict(padding=1)),
    _case(
        "conv2d_same_even_groups_nobias",
        "Conv2d",
        [4, 6, 4],
        (2, 4, 5, 6),
        dict(padding="same", groups=2, bias=False),
    ),
    _case(
        "conv2d_reflect_s2",
        "Conv2d",
        [3, 4, 3],
        (2, 3, 7, 6),
        dict(padding=2, stride=2, padding_mode="reflect"),
    ),
    _case(
        "conv2d_replicate_float64",
        "Conv2d",
        [2, 4, (3, 2)],
        (2, 2, 5, 5),
        dict(padding=(1, 2), padding_mode="replicate"),
        dtype="float64",
    ),
    _case("conv2d_unbatched_dil", "Conv2d", [2, 3, 3], (2, 7, 7), dict(dilation=2)),
    _case("conv3d", "Conv3d", [2, 4, 3], (1, 2, 4, 6, 6), dict(padding=1, stride=(1, 2, 2))),
    _case(
        "convT1d",
        "ConvTranspose1d",
        [4, 2, 3],
        (2, 4, 5),
        dict(stride=2, padding=1, output_padding=1),
    ),
    _case("convT2d_dcgan", "ConvTranspose2d", [8, 4, 4], (2, 8, 4, 4), dict(stride=2, padding=1)),
    _case(
        "convT2d_output_size",
        "ConvTranspose2d",
        [3, 2, 3],
        (1, 3, 4, 4),
        dict(stride=2, padding=1),
        forward=dict(output_size=[8, 8]),
    ),
    _case(
        "convT2d_groups_op_below_dilation",
        "ConvTranspose2d",
        [4, 6, 3],
        (2, 4, 4, 3),
        dict(stride=2, groups=2, dilation=3, output_padding=2, bias=False),
    ),
    _case(
        "convT3d_float64",
        "ConvTranspose3d",
        [2, 3, 3],
        (1, 2, 2, 3, 3),
        dict(stride=2, padding=1),
        dtype="float64",
    ),
    _case("deform_mask", "DeformConv2d", [4, 6, 3], (2, 4, 5, 5), dict(padding=1), deform="mask"),
    _case(
        "deform_s2_groups_nobias",
        "DeformConv2d",
        [4, 6, 3],
        (1, 4, 7, 6),
        dict(stride=2, groups=2, bias=False),
        deform="offset",
    ),
    _case(
        "depthwise_separable",
        "DepthwiseSeparableConv2d",
        [3, 8, 3],
        (2, 3, 6, 6),
        dict(padding=1, depth_multiplier=2),
        build=lambda: DepthwiseSeparableConv2d(3, 8, 3, padding=1, depth_multiplier=2),
    ),
    _case(
        "spatially_separable",
        "SpatiallySeparableConv2d",
        [3, (3, 5)],
        (2, 3, 7, 7),
        dict(padding="same"),
        build=lambda: SpatiallySeparableConv2d(3, (3, 5), padding="same"),
    ),
    _case("lenet", "Sequential", [], (4, 1, 8, 8), build=_lenet),
]


class _Uniforms:
    """Records the bounds and sizes of every Tensor.uniform_ call made inside the with block
    (torch.nn.init's kaiming_uniform_ and uniform_ both end in it)."""

    def __enter__(self):
        self.calls = []
        self._original = original = torch.Tensor.uniform_

        def uniform_(tensor, low=0.0, high=1.0, *, generator=None):
            self.calls.append((float(low), float(high), tensor.numel()))
            return original(tensor, low, high, generator=generator)

        torch.Tensor.uniform_ = uniform_
        return self

    def __exit__(self, *exc):
        torch.Tensor.uniform_ = self._original
        return False


def _build(case):
    if case["build"] is not None:
        return case["build"]()
    if case["cls"] == "DeformConv2d":
        return DeformConv2d(*case["args"], **case["kwargs"])
    return getattr(nn, case["cls"])(*case["args"], **case["kwargs"])


def record(out_dir):
    out_dir = pathlib.Path(out_dir)
    torch.manual_seed(20261205)
    rng = np.random.default_rng(20261205)
    arrays = {}
    for case in CASES:
        name, dtype = case["name"], np.dtype(case["dtype"])
        with _Uniforms() as uniforms:
            module = _build(case)
        module = module.to(torch.float64 if dtype == np.float64 else torch.float32)
        arrays[f"{name}/init_bounds"] = np.array([c[:2] for c in uniforms.calls], dtype=np.float64)
        arrays[f"{name}/init_sizes"] = np.array([c[2] for c in uniforms.calls], dtype=np.int64)
        for key, value in module.state_dict().items():
            arrays[f"{name}/state/{key}"] = value.detach().numpy().copy()

        x = rng.standard_normal(case["x"]).astype(dtype)
        xt = torch.from_numpy(x).requires_grad_(True)
        extra = []
        if case["deform"]:
            k = module.kernel_size
            oh, ow = (
                (s + 2 * p - d * (kk - 1) - 1) // st + 1
                for s, p, d, kk, st in zip(
                    x.shape[2:], module.padding, module.dilation, k, module.stride, strict=True
                )
            )
            offset = (1.5 * rng.standard_normal((x.shape[0], 2 * k[0] * k[1], oh, ow))).astype(
                dtype
            )
            arrays[f"{name}/offset"] = offset
            extra.append(torch.from_numpy(offset).requires_grad_(True))
            if case["deform"] == "mask":
                mask = rng.uniform(0, 1, (x.shape[0], k[0] * k[1], oh, ow)).astype(dtype)
                arrays[f"{name}/mask"] = mask
                extra.append(torch.from_numpy(mask).requires_grad_(True))
        out = module(xt, *extra, **case["forward"])
        grad_out = rng.standard_normal(tuple(out.shape)).astype(dtype)
        (out * torch.from_numpy(grad_out)).sum().backward()

        arrays[f"{name}/x"] = x
        arrays[f"{name}/out"] = out.detach().numpy()
        arrays[f"{name}/grad_out"] = grad_out
        arrays[f"{name}/grad/x"] = xt.grad.numpy()
        for label, t in zip(("offset", "mask"), extra, strict=False):
            arrays[f"{name}/grad/{label}"] = t.grad.numpy()
        for key, p in module.named_parameters():
            arrays[f"{name}/grad/state/{key}"] = p.grad.numpy()
        spec = dict(
            cls=case["cls"],
            args=case["args"],
            kwargs=case["kwargs"],
            dtype=case["dtype"],
            forward=case["forward"],
            deform=case["deform"],
        )
        arrays[f"{name}/spec"] = np.array(json.dumps(spec))
        arrays[f"{name}/repr"] = np.array(repr(module))
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(out_dir / "nn.npz", **arrays)

"""Compile convlab's Numba kernels ahead of time: ``python -m convlab.warmup``.

The first call of each kernel in a fresh environment compiles it (LLVM, several seconds per
kernel and dtype; about 2 minutes across the book's chapters). Numba then stores the machine code
in its cache (``cache=True``, :mod:`convlab.config`), and later processes load it in
milliseconds, as long as they run on a CPU of the same kind as the one that compiled it (the
cache is keyed by the CPU's name and features) and convlab's sources have not changed.

Binder's ``postBuild`` runs this module while it builds the image, so a launched chapter's first
``conv2d`` does not wait for the compiler. Each step calls one family of functions on tiny arrays
for float32 and float64, through every algorithm, so that every kernel the chapters reach is
compiled once.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["STEPS", "warm_up", "main"]


# (channels, size) of the 2-D inputs: convlab picks kernels by layer size (Winograd split by
# channels from 64 channels, im2col's split-K for small maps, one fused kernel for tiny ones...),
# so a tiny input alone leaves the kernels of the chapters' larger layers uncompiled
_GEOMETRIES = ((4, 6), (16, 28), (64, 14))


def _conv(dtype: Any) -> None:
    from . import conv1d, conv2d, conv3d

    for c, n in _GEOMETRIES:
        x = np.ones((1, c, n, n), dtype)
        w = np.ones((c, c, 3, 3), dtype)
        for algorithm in ("auto", "direct", "im2col", "winograd", "fft"):
            conv2d(x, w, np.ones(c, dtype), padding=1, algorithm=algorithm)
            conv2d(x, w[:, : c // 2], padding=1, groups=2, algorithm=algorithm)
        conv2d(x, np.ones((2 * c, c, 1, 1), dtype), algorithm="im2col")  # 1x1: no columns
        conv2d(x, np.ones((2 * c, c, 3, 3), dtype), stride=2)
        conv2d(x, np.ones((c, 1, 3, 3), dtype), groups=c)  # depthwise
        conv2d(x, np.ones((c, 1, 3, 3), dtype), groups=c, stride=2, dilation=2)
    # a training batch of small maps: im2col's blocks of whole images (chapter 8)
    conv2d(np.ones((16, 4, 4, 4), dtype), np.ones((4, 4, 3, 3), dtype), stride=2, padding=1)
    x = np.ones((1, 4, 6, 6), dtype)
    for mode in ("reflect", "replicate", "circular"):
        conv2d(x, np.ones((4, 4, 3, 3), dtype), padding=1, padding_mode=mode)
    conv1d(np.ones((1, 2, 8), dtype), np.ones((3, 2, 3), dtype), padding="same")
    conv3d(np.ones((1, 2, 4, 4, 4), dtype), np.ones((2, 2, 3, 3, 3), dtype), padding=1)
    conv3d(np.ones((1, 2, 4, 4, 4), dtype), np.ones((2, 1, 3, 3, 3), dtype), groups=2)


def _transposed(dtype: Any) -> None:
    from . import conv_transpose1d, conv_transpose2d, conv_transpose3d

    for algorithm in ("direct", "gemm"):
        conv_transpose2d(
            np.ones((1, 4, 4, 4), dtype),
            np.ones((4, 2, 3, 3), dtype),
            stride=2,
            algorithm=algorithm,
        )
        conv_transpose1d(np.ones((1, 2, 5), dtype), np.ones((2, 2, 3), dtype), algorithm=algorithm)
        conv_transpose3d(
            np.ones((1, 2, 3, 3, 3), dtype), np.ones((2, 2, 2, 2, 2), dtype), algorithm=algorithm
        )


def _gradients(dtype: Any) -> None:
    from . import grad

    x = np.ones((1, 2, 6, 6), dtype)
    go = np.ones((1, 3, 4, 4), dtype)
    grad.conv2d_weight(x, (3, 2, 3, 3), go)
    grad.conv2d_input(x.shape, np.ones((3, 2, 3, 3), dtype), go)
    grad.conv1d_weight(np.ones((1, 2, 6), dtype), (3, 2, 3), np.ones((1, 3, 4), dtype))
    grad.conv3d_weight(
        np.ones((1, 1, 4, 4, 4), dtype), (1, 1, 3, 3, 3), np.ones((1, 1, 2, 2, 2), dtype)
    )


def _deformable(dtype: Any) -> None:
    from .deformable import deform_conv2d, deform_conv2d_grad

    for c, n in _GEOMETRIES[:2]:
        x = np.ones((1, c, n, n), dtype)
        w = np.ones((c, c, 3, 3), dtype)
        offset = np.full((1, 18, n, n), 0.25, dtype)
        mask = np.full((1, 9, n, n), 0.5, dtype)
        for m in (None, mask):
            deform_conv2d(x, offset, w, np.ones(c, dtype), padding=1, mask=m)
            deform_conv2d_grad(np.ones((1, c, n, n), dtype), x, offset, w, padding=1, mask=m)


def _separable(dtype: Any) -> None:
    from . import depthwise_separable_conv2d, spatially_separable_conv2d

    x = np.ones((1, 3, 6, 6), dtype)
    for algorithm in ("fused", "two_pass"):
        depthwise_separable_conv2d(
            x, np.ones((3, 1, 3, 3), dtype), np.ones((4, 3), dtype), padding=1, algorithm=algorithm
        )
    spatially_separable_conv2d(x, np.ones(3, dtype), np.ones(3, dtype), padding=1)


def _matrices(dtype: Any) -> None:
    from . import col2im, im2col

    cols = im2col(np.ones((1, 2, 5, 5), dtype), 3, padding=1)
    col2im(cols, (5, 5), 3, padding=1)


#: ``(name, function(dtype))`` in the order :func:`warm_up` runs them
STEPS: list[tuple[str, Callable[[Any], None]]] = [
    ("conv1d/conv2d/conv3d (every algorithm, groups, padding modes)", _conv),
    ("conv_transpose1d/2d/3d (direct, gemm)", _transposed),
    ("convlab.grad", _gradients),
    ("deform_conv2d and its gradient", _deformable),
    ("separable convolutions", _separable),
    ("im2col / col2im", _matrices),
]


def warm_up(
    dtypes: Sequence[Any] = (np.float32, np.float64), verbose: bool = True
) -> dict[str, float]:
    """Run every step of :data:`STEPS` for each dtype; return the seconds each step took."""
    import warnings

    from numba.core.errors import NumbaPerformanceWarning

    seconds: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        for name, step in STEPS:
            start = time.perf_counter()
            for dtype in dtypes:
                step(np.dtype(dtype))
            seconds[name] = time.perf_counter() - start
            if verbose:
                print(f"  {seconds[name]:6.1f} s  {name}", flush=True)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convlab.warmup",
        description="Compile convlab's Numba kernels into Numba's cache (Binder's postBuild).",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the total")
    args = parser.parse_args(argv)
    from . import config

    start = time.perf_counter()
    warm_up(verbose=not args.quiet)
    total = time.perf_counter() - start
    where = config.CACHE_DIR or "none (caching is off: CONVLAB_CACHE=0 or no writable directory)"
    print(f"convlab.warmup: kernels compiled or loaded in {total:.1f} s; Numba cache: {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

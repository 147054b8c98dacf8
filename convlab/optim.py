"""Optimisers for :mod:`convlab.nn` networks, with PyTorch's update rules, in plain NumPy.

A layer of :mod:`convlab.nn` keeps its gradients in ``layer.grads`` rather than on the arrays
(NumPy arrays have no ``.grad``), so an optimiser here takes the network itself and reads
``module.parameters()`` and ``module.gradients()``, aligned. It updates the parameter arrays in
place, so the layers see the new values::

    opt = SGD(net, lr=0.05, momentum=0.9)
    opt.zero_grad()
    loss_fn(net(x), y)
    net.backward(loss_fn.backward())
    opt.step()
"""

from __future__ import annotations

import numpy as np

from .nn import Array, Module

__all__ = ["SGD"]


class SGD:
    """``torch.optim.SGD``: stochastic gradient descent with momentum and weight decay.

    For each parameter ``p`` with gradient ``g``, one :meth:`step` computes, as PyTorch does::

        g = g + weight_decay * p                            # if weight_decay
        b = g (first step), b = momentum * b + (1 - dampening) * g   # if momentum
        g = g + momentum * b if nesterov else b                    # if momentum
        p = p - lr * g

    Parameters whose gradient is None (no backward reached them) are left alone, as in PyTorch.

    Examples
    --------
    >>> from convlab import nn
    >>> layer = nn.Linear(2, 1, rng=0)
    >>> layer.weight[...] = [[1.0, 2.0]]
    >>> opt = SGD(layer, lr=0.5, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     _ = layer(np.array([[1.0, 1.0]], np.float32))
    ...     _ = layer.backward(np.array([[1.0]], np.float32))  # dL/dw = x = (1, 1)
    ...     opt.step()
    >>> layer.weight  # 1 - 0.5 * 1, then - 0.5 * (0.9 * 1 + 1)
    array([[-0.45,  0.55]], dtype=float32)
    """

    def __init__(
        self,
        module: Module,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"SGD takes a convlab.nn module, got {type(module).__name__}")
        for name, value in (
            ("lr", lr),
            ("momentum", momentum),
            ("dampening", dampening),
            ("weight_decay", weight_decay),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov momentum needs momentum > 0 and dampening = 0, got momentum "
                f"{momentum}, dampening {dampening}"
            )
        self.module = module
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        #: the momentum buffer of each parameter, by position in ``module.parameters()``
        self.buffers: dict[int, Array] = {}

    def zero_grad(self) -> None:
        """Forget the module's gradients (:meth:`convlab.nn.Module.zero_grad`)."""
        self.module.zero_grad()

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        params = self.module.parameters()
        grads = self.module.gradients()
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if g is None:
                continue
            d = p.dtype.type
            if self.weight_decay:
                g = g + d(self.weight_decay) * p
            if self.momentum:
                buf = self.buffers.get(i)
                if buf is None:
                    buf = self.buffers[i] = np.array(g, dtype=p.dtype)
                else:
                    buf *= d(self.momentum)
                    buf += d(1 - self.dampening) * g
                g = g + d(self.momentum) * buf if self.nesterov else buf
            p -= d(self.lr) * g

    def __repr__(self) -> str:
        return (
            f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
            f"weight_decay={self.weight_decay}, nesterov={self.nesterov})"
        )


def __dir__() -> list[str]:
    # dir() lists the API (__all__), not the helpers this module imports (PEP 562)
    return sorted(__all__)

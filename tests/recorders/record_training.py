"""Record chapter 8's network training in PyTorch, and the pooling and loss layers it adds.

Writes ``training.npz`` (run ``tests/record_references.py training`` in a venv with torch and
scikit-learn). The data are scikit-learn's 8x8 digits, scaled to [0, 1] as the chapter scales
them; the batches are stored, so the test needs neither torch nor scikit-learn.

``net/repr``
    ``repr()`` of the PyTorch network (its classes carry convlab.nn's names).
``net/init/<key>``
    its initial ``state_dict()`` (torch's own initialisation, seed 8).
``net/x``, ``net/y``
    ``STEPS`` batches of ``BATCH`` images ``(STEPS, BATCH, 1, 8, 8)`` and their labels.
``net/sgd``
    JSON: the ``torch.optim.SGD`` arguments.
``net/loss``
    the mean cross-entropy of each batch, before its step.
``net/logits0``, ``net/grad0/<key>``
    the first batch's logits and the parameter gradients of its loss.
``net/step<i>/<key>``
    the parameters after step ``i`` (1-based).
``relu/...``
    ``torch.relu`` on values with NaN, +-0 and +-inf: ``x``, ``out``, ``grad_out``, ``grad_x``.
``pool/<name>/...``, ``loss/<name>/...``
    ``torch.nn.MaxPool2d`` and ``torch.nn.CrossEntropyLoss`` cases: ``spec`` (JSON), the
    input ``x`` (and ``target``), torch's ``out``, a seeded upstream gradient ``grad_out`` (the
    pooling's) and ``grad_x`` from ``torch.autograd``.
"""

import json

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

STEPS = 6
BATCH = 32
SGD_ARGS = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)


class DepthwiseSeparableConv2d(nn.Module):
    """What convlab.nn.DepthwiseSeparableConv2d is, written in PyTorch."""

    def __init__(self, c_in, c_out, k, stride=1, padding=0):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, k, stride, padding, groups=c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def network():
    """Chapter 8's network (tests/test_training.py builds the same one in convlab.nn)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        DepthwiseSeparableConv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
    )


POOLS = {
    "k2": dict(kernel_size=2),
    "k3_s2_p1": dict(kernel_size=3, stride=2, padding=1),
    "k3_s1_d2_overlap": dict(kernel_size=3, stride=1, padding=1, dilation=2),
    "k2x3_s1x2": dict(kernel_size=(2, 3), stride=(1, 2)),
    # NaNs (two in one window: PyTorch keeps the last) and windows of -inf beside the padding
    "k3_s2_p1_nonfinite": dict(kernel_size=3, stride=2, padding=1),
}


def _record_net(out):
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(8).permutation(len(images))[: STEPS * BATCH]
    x = images[order].reshape(STEPS, BATCH, 1, 8, 8)
    y = digits.target[order].reshape(STEPS, BATCH).astype(np.int64)
    torch.manual_seed(8)
    net = network()
    out["net/repr"] = np.array(repr(net))
    for k, v in net.state_dict().items():
        out[f"net/init/{k}"] = v.numpy().copy()
    out["net/x"], out["net/y"] = x, y
    out["net/sgd"] = np.array(json.dumps(SGD_ARGS))
    opt = torch.optim.SGD(net.parameters(), **SGD_ARGS)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        logits = net(torch.from_numpy(x[step]))
        loss = loss_fn(logits, torch.from_numpy(y[step]))
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            out["net/logits0"] = logits.detach().numpy().copy()
            for k, p in net.named_parameters():
                out[f"net/grad0/{k}"] = p.grad.numpy().copy()
        opt.step()
        for k, v in net.state_dict().items():
            out[f"net/step{step + 1}/{k}"] = v.numpy().copy()
    out["net/loss"] = np.array(losses, dtype=np.float32)


def _record_pools(out):
    rng = np.random.default_rng(80)
    for i, (name, spec) in enumerate(POOLS.items()):
        # small integers: windows with tied maxima, where the winner's choice shows
        x = rng.integers(-3, 4, size=(2, 3, 9, 10)).astype(np.float32)
        if i == 0:
            x = x + rng.standard_normal(x.shape).astype(np.float32)
        if name.endswith("nonfinite"):
            x[0, 0, :3, :3] = -np.inf
            x[0, 1, 2, 2] = x[0, 1, 2, 3] = np.nan
            x[1, 2, 5, 5] = np.nan
        xt = torch.from_numpy(x).requires_grad_(True)
        y = nn.MaxPool2d(**spec)(xt)
        go = rng.standard_normal(tuple(y.shape)).astype(np.float32)
        (y * torch.from_numpy(go)).sum().backward()
        out[f"pool/{name}/spec"] = np.array(json.dumps(spec))
        out[f"pool/{name}/x"] = x
        out[f"pool/{name}/out"] = y.detach().numpy()
        out[f"pool/{name}/grad_out"] = go
        out[f"pool/{name}/grad_x"] = xt.grad.numpy()


def _record_relu(out):
    """``torch.relu`` forward and backward on values around its edge: NaN, +-0, +-inf."""
    rng = np.random.default_rng(82)
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    x.flat[:7] = [np.nan, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf]
    xt = torch.from_numpy(x).requires_grad_(True)
    y = torch.relu(xt)
    go = rng.standard_normal(x.shape).astype(np.float32)
    y.backward(torch.from_numpy(go))
    out["relu/x"] = x
    out["relu/out"] = y.detach().numpy()
    out["relu/grad_out"] = go
    out["relu/grad_x"] = xt.grad.numpy()


def _record_losses(out):
    rng = np.random.default_rng(81)
    cases = {
        "mean": (dict(), rng.standard_normal((16, 10)), "float32"),
        "sum": (dict(reduction="sum"), rng.standard_normal((5, 3)), "float32"),
        "large_logits": (dict(), 100.0 * rng.standard_normal((8, 10)) + 1e3, "float32"),
        "float64": (dict(), rng.standard_normal((7, 4)), "float64"),
    }
    for name, (spec, logits, dtype) in cases.items():
        x = logits.astype(dtype)
        target = rng.integers(0, x.shape[1], size=x.shape[0])
        xt = torch.from_numpy(x).requires_grad_(True)
        loss = nn.CrossEntropyLoss(**spec)(xt, torch.from_numpy(target))
        loss.backward()
        out[f"loss/{name}/spec"] = np.array(json.dumps(spec))
        out[f"loss/{name}/x"] = x
        out[f"loss/{name}/target"] = target
        out[f"loss/{name}/out"] = loss.detach().numpy()
        out[f"loss/{name}/grad_x"] = xt.grad.numpy()


def record(out_dir):
    torch.set_num_threads(1)
    out = {}
    _record_net(out)
    _record_pools(out)
    _record_relu(out)
    _record_losses(out)
    out["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(out_dir / "training.npz", **out)

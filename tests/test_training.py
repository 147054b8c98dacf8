"""Training with convlab.nn: the pooling, loss and optimiser it needs, and chapter 8's network
taking the same steps as in PyTorch.

References: tests/data/training.npz, recorded by tests/recorders/record_training.py (torch 2.14.1,
scikit-learn's digits), and the loops of tests/naive.py; no test imports torch.
"""

import json
import pathlib

import naive
import numpy as np
import pytest
from tolerances import load_npz, tol

from convlab import nn, optim

HERE = pathlib.Path(__file__).resolve().parent
DATA = load_npz(HERE / "data" / "training.npz")
CHAPTER = HERE.parent / "book" / "08_training.ipynb"
POOLS = sorted({k.split("/")[1] for k in DATA if k.startswith("pool/")})
LOSSES = sorted({k.split("/")[1] for k in DATA if k.startswith("loss/")})


def network():
    """Chapter 8's network, as tests/recorders/record_training.py builds it in PyTorch."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=0),
        nn.ReLU(),
        nn.DepthwiseSeparableConv2d(16, 32, 3, padding=1, rng=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, rng=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10, rng=3),
    )


def _state(prefix):
    return {k[len(prefix) :]: v for k, v in DATA.items() if k.startswith(prefix)}


# ------------------------------------------------------------------ chapter 8's network


def test_network_is_the_recorded_one_and_the_chapters():
    net = network()
    assert repr(net) == str(DATA["net/repr"])
    assert list(dict(net.named_parameters())) == list(_state("net/init/"))
    # the chapter prints its network; the references are only worth something if it is this one
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    printed = [
        "".join(out.get("text", ""))
        for cell in cells
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
    ]
    assert any(str(DATA["net/repr"]) in text for text in printed)


def test_training_steps_give_the_same_bits_on_any_thread_count():
    """Chapter 8 prints its training's losses and accuracies; they must not depend on the
    machine's cores (convlab's kernels give the same bits on any thread count, tests/
    test_determinism.py; the NumPy layers and the optimiser are sequential)."""
    import numba

    results = []
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            net = network()
            opt = optim.SGD(net, lr=0.05, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()
            for x, y in zip(DATA["net/x"], DATA["net/y"], strict=True):
                opt.zero_grad()
                loss_fn(net(x), y)
                net.backward(loss_fn.backward())
                opt.step()
            results.append([p.copy() for p in net.parameters()] + [net(DATA["net/x"][0])])
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(results[0], results[-1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_first_step_gradients_match_torch():
    net = network()
    net.load_state_dict(_state("net/init/"))
    loss_fn = nn.CrossEntropyLoss()
    logits = net(DATA["net/x"][0])
    np.testing.assert_allclose(logits, DATA["net/logits0"], rtol=1e-5, atol=1e-6)
    loss = loss_fn(logits, DATA["net/y"][0])
    np.testing.assert_allclose(loss, DATA["net/loss"][0], rtol=1e-6)
    net.backward(loss_fn.backward())
    grads = dict(net.named_gradients())
    for name, want in _state("net/grad0/").items():
        np.testing.assert_allclose(grads[name], want, rtol=1e-4, atol=1e-6, err_msg=name)


def test_sgd_steps_match_torch():
    """Every step of SGD with momentum and weight decay: losses and weights as in PyTorch."""
    net = network()
    net.load_state_dict(_state("net/init/"))
    opt = optim.SGD(net, **json.loads(str(DATA["net/sgd"])))
    loss_fn = nn.CrossEntropyLoss()
    x, y = DATA["net/x"], DATA["net/y"]
    for step in range(len(x)):
        opt.zero_grad()
        loss = loss_fn(net(x[step]), y[step])
        np.testing.assert_allclose(loss, DATA["net/loss"][step], rtol=1e-5, err_msg=f"{step}")
        net.backward(loss_fn.backward())
        opt.step()
        want = _state(f"net/step{step + 1}/")
        for name, p in net.named_parameters():
            np.testing.assert_allclose(
                p, want[name], rtol=1e-4, atol=1e-5, err_msg=f"step {step + 1} {name}"
            )


# ------------------------------------------------------------------ max pooling


@pytest.mark.kernels
@pytest.mark.parametrize("name", POOLS)
def test_max_pool_matches_torch(name):
    spec = json.loads(str(DATA[f"pool/{name}/spec"]))
    pool = nn.MaxPool2d(**spec)
    out = pool(DATA[f"pool/{name}/x"])
    np.testing.assert_array_equal(out, DATA[f"pool/{name}/out"])
    grad = pool.backward(DATA[f"pool/{name}/grad_out"])
    assert grad.dtype == np.float32
    # tied maxima are in these inputs: the same winners as torch's, or the sums move
    np.testing.assert_allclose(grad, DATA[f"pool/{name}/grad_x"], **tol(np.float32))


POOL_PARAMS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(kernel_size=2, stride=1, dilation=3),
    dict(kernel_size=4, stride=3, padding=2),
]


@pytest.mark.kernels
@pytest.mark.parametrize("params", POOL_PARAMS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_naive_loops(params, dtype):
    rng = np.random.default_rng(len(str(params)))
    x = rng.integers(-2, 3, size=(2, 3, 9, 8)).astype(dtype)  # ties everywhere
    pool = nn.MaxPool2d(**params)
    out = pool(x)
    want, winners = naive.max_pool2d(x, **params)
    np.testing.assert_array_equal(out, want)
    assert out.dtype == dtype
    go = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(
        pool.backward(go), naive.max_pool2d_backward(go, winners, x.shape), **tol(dtype)
    )


@pytest.mark.kernels
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_max_pool_nonfinite_and_threads(n_threads):
    """NaNs (several in a window), windows of -inf beside the padding and ties, on 1, 2 and 3
    threads: the same outputs and winners as the loops, the gradient summed in output order."""
    import numba

    rng = np.random.default_rng(n_threads)
    x = rng.integers(-2, 3, size=(3, 5, 11, 10)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[0, 0, :4, :4] = -np.inf
    x[1, 1] = -np.inf
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for params in POOL_PARAMS:
            pool = nn.MaxPool2d(**params)
            out = pool(x)
            want, winners = naive.max_pool2d(x, **params)
            np.testing.assert_array_equal(out, want)
            go = rng.standard_normal(out.shape).astype(np.float32)
            np.testing.assert_allclose(
                pool.backward(go),
                naive.max_pool2d_backward(go, winners, x.shape),
                **tol(np.float32),
            )
    finally:
        numba.set_num_threads(previous)


def test_max_pool_gradient_by_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 7, 7))  # distinct values: the winners do not move
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    go = rng.standard_normal(pool(x).shape)
    grad = pool.backward(go)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (0, 1, 3, 4), (0, 0, 6, 6), (0, 1, 2, 2)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = ((pool(xp) - pool(xm)) * go).sum() / (2 * eps)
        assert fd == pytest.approx(grad[idx], abs=1e-6)


def test_max_pool_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at most half"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.MaxPool2d(0)
    with pytest.raises(TypeError, match="stride"):
        nn.MaxPool2d(2, stride=1.5)
    with pytest.raises(ValueError, match="smaller than the pooling window"):
        nn.MaxPool2d(3)(np.zeros((1, 1, 2, 5)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nn.MaxPool2d(2)(np.zeros((4, 4)))
    pool = nn.MaxPool2d(2)
    with pytest.raises(RuntimeError, match="forward pass first"):
        pool.backward(np.zeros((1, 1, 1, 1)))
    pool(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="grad_output must have shape"):
        pool.backward(np.zeros((1, 1, 3, 3)))


# ------------------------------------------------------------------ ReLU


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_matches_torch_at_nan_zero_and_inf(dtype):
    """NaN passes through with its gradient, -0.0 stays -0.0, the gradient is 0 at 0."""
    relu = nn.ReLU()
    x = DATA["relu/x"].astype(dtype)
    out = relu(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, DATA["relu/out"])
    np.testing.assert_array_equal(np.signbit(out), np.signbit(DATA["relu/out"]))
    gx = relu.backward(DATA["relu/grad_out"].astype(dtype))
    np.testing.assert_array_equal(gx, DATA["relu/grad_x"].astype(dtype))


@pytest.mark.kernels
def test_relu_non_contiguous_integers_and_empty():
    relu = nn.ReLU()
    x = np.arange(-12.0, 12.0).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(relu.backward(np.ones((4, 3))), x > 0)
    np.testing.assert_array_equal(relu(np.array([-2, 0, 3])), [0, 0, 3])
    np.testing.assert_array_equal(relu.backward(np.array([5, 6, 7])), [0, 0, 7])
    assert relu(np.zeros((0, 3), np.float32)).shape == (0, 3)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        relu.backward(np.ones(4, np.float32))


# ------------------------------------------------------------------ cross-entropy


@pytest.mark.parametrize("name", LOSSES)
def test_cross_entropy_matches_torch(name):
    spec = json.loads(str(DATA[f"loss/{name}/spec"]))
    x, target = DATA[f"loss/{name}/x"], DATA[f"loss/{name}/target"]
    loss_fn = nn.CrossEntropyLoss(**spec)
    loss = loss_fn(x, target)
    assert loss.dtype == x.dtype and loss.shape == ()
    np.testing.assert_allclose(loss, DATA[f"loss/{name}/out"], **tol(x.dtype))
    np.testing.assert_allclose(loss_fn.backward(), DATA[f"loss/{name}/grad_x"], **tol(x.dtype))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_naive_and_finite_differences(reduction):
    rng = np.random.default_rng(5)
    x = 3 * rng.standard_normal((6, 5))
    target = rng.integers(0, 5, size=6)
    loss_fn = nn.CrossEntropyLoss(reduction=reduction)
    want, want_grad = naive.cross_entropy(x, target, reduction)
    assert float(loss_fn(x, target)) == pytest.approx(want, rel=1e-12)
    grad = loss_fn.backward(2.0)  # the chain rule's upstream factor multiplies
    np.testing.assert_allclose(grad, 2.0 * want_grad, rtol=1e-12, atol=1e-14)
    eps = 1e-6
    for idx in [(0, 0), (2, 3), (5, 4)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (float(loss_fn(xp, target)) - float(loss_fn(xm, target))) / (2 * eps)
        assert 2.0 * fd == pytest.approx(grad[idx], abs=1e-7)


def test_cross_entropy_rejects_bad_targets():
    loss_fn = nn.CrossEntropyLoss()
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"class 4, outside \[0, C\)"):
        loss_fn(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="class -1"):
        loss_fn(x, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        loss_fn(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        loss_fn(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        loss_fn(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="none")
    loss_fn(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="scalar"):
        loss_fn.backward(np.ones(3))


# ------------------------------------------------------------------ SGD


def _sgd_by_hand(params, grads_per_step, lr, momentum, dampening, weight_decay, nesterov):
    """PyTorch's documented SGD update, in float64, one parameter at a time."""
    params = [p.astype(np.float64) for p in params]
    bufs = [None] * len(params)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = g + weight_decay * params[i]
            if momentum:
                bufs[i] = g if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = params[i] - lr * g
    return params


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.1),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01),
        dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=1e-3),
    ],
    ids=str,
)
def test_sgd_follows_the_update_rule(kwargs):
    rng = np.random.default_rng(9)
    layer = nn.Linear(4, 3, rng=1, dtype=np.float64)
    start = [p.copy() for p in layer.parameters()]
    opt = optim.SGD(layer, **kwargs)
    grads_per_step = []
    for _ in range(3):
        opt.zero_grad()
        out = layer(rng.standard_normal((5, 4)))
        layer.backward(rng.standard_normal(out.shape))
        grads_per_step.append([g.copy() for g in layer.gradients()])
        opt.step()
    full = dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False) | kwargs
    want = _sgd_by_hand(start, grads_per_step, **full)
    for p, w in zip(layer.parameters(), want, strict=True):
        np.testing.assert_allclose(p, w, rtol=1e-12, atol=1e-14)


def test_sgd_skips_parameters_without_gradients_and_keeps_dtype():
    layer = nn.Linear(2, 2, rng=0)
    before = layer.weight.copy()
    opt = optim.SGD(layer, lr=0.1, momentum=0.9)
    opt.step()  # no backward yet: nothing moves
    np.testing.assert_array_equal(layer.weight, before)
    layer(np.ones((1, 2), np.float32))
    layer.backward(np.ones((1, 2), np.float32))
    opt.step()
    assert layer.weight.dtype == np.float32 and opt.buffers[0].dtype == np.float32
    assert not np.array_equal(layer.weight, before)


def test_sgd_rejects_bad_arguments():
    layer = nn.Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="convlab.nn module"):
        optim.SGD(layer.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got -0.1"):
        optim.SGD(layer, lr=-0.1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(layer, lr=0.1, momentum=float("nan"))
    with pytest.raises(TypeError, match="lr must be a number"):
        optim.SGD(layer, lr="0.1")
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(layer, lr=0.1, nesterov=True)

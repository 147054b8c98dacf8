"""convlab.nn against torch.nn / torchvision: loaded state dicts give torch's outputs and gradients,
initialisation draws from torch's bounds, printing matches torch's, and the module plumbing
(parameters, gradients, zero_grad, state dicts) behaves as an optimiser needs.

References: tests/data/nn.npz, recorded by tests/recorders/record_nn.py (torch 2.14.1 and
torchvision 0.29.1); no test imports torch.
"""

import json
import pathlib

import numpy as np
import pytest
from tolerances import load_npz, tol

import convlab
from convlab import nn

DATA = load_npz(pathlib.Path(__file__).parent / "data" / "nn.npz")
CASES = sorted(k[: -len("/spec")] for k in DATA if k.endswith("/spec"))


def _lenet(**kw):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, **kw),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, **kw),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 10, **kw),
    )


# what the recorder built by hand (torch modules without a one-call constructor)
BUILDERS = {"lenet": _lenet}


def _spec(name):
    return json.loads(str(DATA[f"{name}/spec"]))


def _layer(name, **kw):
    spec = _spec(name)
    kw.setdefault("dtype", np.dtype(spec["dtype"]))
    if name in BUILDERS:
        return BUILDERS[name](**kw)
    return getattr(nn, spec["cls"])(*spec["args"], **spec["kwargs"], **kw)


def _state(name, prefix):
    return {k[len(prefix) :]: v for k, v in DATA.items() if k.startswith(prefix)}


def _loaded(name):
    layer = _layer(name, rng=0)
    layer.load_state_dict(_state(name, f"{name}/state/"))
    return layer


def _forward(layer, name):
    spec = _spec(name)
    extra = [DATA[f"{name}/{k}"] for k in ("offset", "mask") if f"{name}/{k}" in DATA]
    return layer(DATA[f"{name}/x"], *extra, **spec["forward"])


@pytest.mark.parametrize("name", CASES)
def test_forward_matches_torch(name):
    layer = _loaded(name)
    out = _forward(layer, name)
    assert out.dtype == DATA[f"{name}/out"].dtype
    np.testing.assert_allclose(out, DATA[f"{name}/out"], **tol(out.dtype))


@pytest.mark.parametrize("name", CASES)
def test_backward_matches_torch_autograd(name):
    layer = _loaded(name)
    _forward(layer, name)
    grads = layer.backward(DATA[f"{name}/grad_out"])
    if not isinstance(grads, tuple):
        grads = (grads,)
    dtype = DATA[f"{name}/x"].dtype
    # weight gradients sum over the batch and every output position: the looser float32 bound
    # of tests/tolerances.py's weight-gradient families
    t = tol(dtype, float32=1e-4)
    np.testing.assert_allclose(grads[0], DATA[f"{name}/grad/x"], **t)
    for label, g in zip(("offset", "mask"), grads[1:], strict=False):
        if f"{name}/grad/{label}" in DATA:
            np.testing.assert_allclose(g, DATA[f"{name}/grad/{label}"], **t)
        else:
            assert g is None
    expected = _state(name, f"{name}/grad/state/")
    got = dict(layer.named_gradients())
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, err_msg=key, **t)


class _RecordingRng:
    """Stands in for a numpy Generator: records the bounds and sizes of uniform() calls."""

    def __init__(self):
        self.calls = []

    def uniform(self, low, high, size):
        self.calls.append((low, high, int(np.prod(size))))
        return np.zeros(size)


@pytest.mark.parametrize("name", CASES)
def test_initialisation_uses_torchs_bounds(name):
    """Every parameter is drawn from U(low, high) with the (low, high) torch used, in torch's
    order (weight, then bias, layer by layer)."""
    rng = _RecordingRng()
    _layer(name, rng=rng)
    bounds = DATA[f"{name}/init_bounds"]
    assert [c[2] for c in rng.calls] == DATA[f"{name}/init_sizes"].tolist()
    np.testing.assert_allclose([c[:2] for c in rng.calls], bounds, rtol=1e-15, atol=0)


def test_initialisation_is_uniform_within_the_bound():
    layer = nn.Conv2d(64, 64, 3, rng=np.random.default_rng(1))
    bound = DATA["conv2d_basic/init_bounds"][0, 1] * np.sqrt(27 / (64 * 9))  # 1/sqrt(fan_in)
    w = layer.weight.astype(np.float64)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound
    # U(-b, b): mean 0, standard deviation b / sqrt(3); 36864 draws
    assert abs(w.mean()) < 0.02 * bound
    assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.02
    assert layer.weight.dtype == np.float32


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (nn.Conv2d(3, 4, 3, rng=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)


# --------------------------------------------------------------------------- printing


@pytest.mark.parametrize("name", CASES)
def test_repr_like_torch(name):
    assert repr(_layer(name, rng=0)) == str(DATA[f"{name}/repr"])


# --------------------------------------------------------------------------- the plumbing


def test_parameters_and_state_dict_names_follow_torch():
    for name in CASES:
        layer = _layer(name, rng=0)
        assert list(layer.state_dict()) == list(_state(name, f"{name}/state/")), name


def test_gradients_accumulate_until_zero_grad_and_sgd_updates_in_place():
    net = _loaded("lenet")
    x, g = DATA["lenet/x"], DATA["lenet/grad_out"]
    net(x)
    net.backward(g)
    first = [v.copy() for v in net.gradients()]
    net(x)
    net.backward(g)
    for one, two in zip(first, net.gradients(), strict=True):
        np.testing.assert_allclose(two, 2 * one, rtol=1e-6)
    net.zero_grad()
    assert all(v is None for v in net.gradients())
    net(x)
    net.backward(g)
    before = net[0].weight.copy()
    for p, grad in zip(net.parameters(), net.gradients(), strict=True):
        p -= 0.1 * grad
    np.testing.assert_allclose(net[0].weight, before - 0.1 * first[0], rtol=1e-6)
    assert net.state_dict()["0.weight"] is not net[0].weight  # a copy, as a checkpoint needs


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    layer = nn.Conv2d(3, 4, 3, rng=0)
    with pytest.raises(KeyError, match="missing keys \\['bias'\\]"):
        layer.load_state_dict({"weight": np.zeros((4, 3, 3, 3))})
    with pytest.raises(KeyError, match="unexpected keys \\['running_mean'\\]"):
        layer.load_state_dict(
            {"weight": np.zeros((4, 3, 3, 3)), "bias": np.zeros(4), "running_mean": np.zeros(4)}
        )
    with pytest.raises(ValueError, match=r"weight has shape \(4, 3, 3, 3\).*got \(4, 3, 3\)"):
        layer.load_state_dict({"weight": np.zeros((4, 3, 3)), "bias": np.zeros(4)})
    layer.load_state_dict({"bias": np.ones(4)}, strict=False)
    assert layer.bias.tolist() == [1, 1, 1, 1]


def test_backward_before_forward_and_wrong_grad_shape():
    layer = nn.Conv1d(1, 1, 3, rng=0)
    with pytest.raises(RuntimeError, match="needs a forward pass first"):
        layer.backward(np.ones((1, 1, 3)))
    layer(np.ones((1, 1, 5)))
    with pytest.raises(ValueError, match=r"shape of the last output, \(1, 1, 3\)"):
        layer.backward(np.ones((1, 1, 4)))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.Conv2d(3, 4, 3, groups=2), r"in_channels \(3\) must be divisible by groups"),
        (lambda: nn.Conv2d(4, 3, 3, groups=2), r"out_channels \(3\) must be divisible by groups"),
        (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), "only supported with stride 1"),
        (lambda: nn.Conv2d(3, 4, 3, padding="full"), "'same' or 'valid'"),
        (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
        (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), 'Only "zeros"'),
        (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2), "output_padding"),
        (lambda: nn.Conv2d(0, 4, 3), "in_channels must be a positive int"),
        (lambda: nn.Linear(4, 2, dtype=np.int32), "dtype must be float32 or float64"),
    ],
)
def test_invalid_params(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_dtype_float64_layers_compute_in_float64():
    layer = nn.Conv2d(2, 3, 3, rng=0, dtype=np.float64)
    out = layer(np.ones((1, 2, 4, 4), np.float32))
    assert out.dtype == np.float64 and layer.weight.dtype == np.float64
    assert layer.backward(np.ones_like(out)).dtype == np.float64


def test_spatially_separable_kernel_is_the_rank1_depthwise_weight():
    layer = _loaded("spatially_separable")
    x = DATA["spatially_separable/x"]
    same = convlab.conv2d(x, layer.kernel(), layer.horizontal.bias, padding="same", groups=3)
    np.testing.assert_allclose(layer(x), same, **tol(np.float32))

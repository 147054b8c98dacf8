"""Huge, boundary and absurd integer arguments at every public function, run in subprocesses.

Numba does not bounds-check: an integer argument that overflows an index or sizes a buffer from
the stride can corrupt memory or kill the interpreter (issue 13 found segfaults, "malloc():
invalid size", uninitialised memory returned as results, ``SystemError`` and ``OverflowError``).
A crash must fail a test, not end the test run, so every call here runs in a child interpreter
(many calls per child, for speed); the child names each call on stderr before making it, so a
crash points at its call. The contract checked:

* PyTorch's result where PyTorch gives one (a stride larger than the input is a valid layer with
  one output; a huge padding with a huge stride or dilation is a valid layer whose outputs mostly
  see zeros): references recorded from torch by ``tests/recorders/record_robustness.py``, or
  computed by ``tests/naive*.py`` where torch 2.13 itself fails;
* otherwise a ``ValueError`` or ``TypeError`` that names the value and the rule, before any
  kernel runs (or NumPy's ``MemoryError`` for an output that cannot be allocated at all).
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from naive import convnd
from naive_transposed import conv_transpose_scatter
from tolerances import load_npz

DATA = pathlib.Path(__file__).parent / "data" / "robustness.npz"

# The child: reads a JSON list of calls on stdin, makes them, writes one JSON outcome per call to
# stdout and the results to an .npz. Arrays are {"npz": key} (from robustness.npz) or {"shape":
# [...], "dtype": ..., "seed": n}; {"np": "int64", "value": v} is a NumPy integer; lists become
# tuples.
CHILD = r"""
import json, resource, sys
import numpy as np

# at most 16 GiB of address space (the interpreter, Numba and its threads need a few): an output
# too large for the machine must fail to allocate, not grow until the machine swaps
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (16 * 2**30, hard))

import convlab, convlab.grad

calls = json.load(sys.stdin)
data = np.load(sys.argv[2]) if sys.argv[2] != "-" else None

def build(v):
    if isinstance(v, dict):
        if "npz" in v:
            return data[v["npz"]]
        if "np" in v:
            return getattr(np, v["np"])(v["value"])
        if "shape" in v:
            rng = np.random.default_rng(v["seed"])
            return rng.standard_normal(v["shape"]).astype(v["dtype"])
        return {k: build(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(build(x) for x in v)
    return v

outcomes, results = [], {}
for i, call in enumerate(calls):
    print(f"call {i}: {call['func']} {call.get('label', '')}", file=sys.stderr, flush=True)
    func = convlab
    for part in call["func"].split("."):
        func = getattr(func, part)
    try:
        res = func(*build(call["args"]), **build(call["kwargs"]))
    except (ValueError, TypeError, MemoryError) as exc:
        outcomes.append({"kind": type(exc).__name__, "msg": str(exc)[:400]})
        continue
    except Exception as exc:  # anything else is a bug the parent reports
        outcomes.append({"kind": type(exc).__name__, "msg": str(exc)[:400]})
        continue
    if isinstance(res, np.ndarray):
        results[str(i)] = res
        outcomes.append({"kind": "ok", "finite": bool(np.isfinite(res).all())})
    else:
        outcomes.append({"kind": "ok", "finite": True})
np.savez(sys.argv[1], **results)
print(json.dumps(outcomes))
"""


def run_calls(calls, tmp_path, data=True):
    """Outcomes (dicts) and results (arrays by index) of ``calls``, made in one child process."""
    out = tmp_path / "results.npz"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(DATA) if data else "-"],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    last = [line for line in proc.stderr.splitlines() if line.startswith("call ")][-1:]
    assert proc.returncode == 0, (
        f"the child died (exit code {proc.returncode}) at {last}:\n{proc.stderr[-3000:]}"
    )
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(out) as f:
        results = {int(k): f[k] for k in f.files}
    return outcomes, results


def arr(shape, seed=0, dtype="float64"):
    return {"shape": list(shape), "dtype": dtype, "seed": seed}


# --- PyTorch's results for the issue's cases ---------------------------------------------------

_FUNCS = {
    "conv1d": "conv1d",
    "conv2d": "conv2d",
    "conv3d": "conv3d",
    "conv_transpose2d": "conv_transpose2d",
    "conv_transpose3d": "conv_transpose3d",
    "conv2d_input": "grad.conv2d_input",
    "conv2d_weight": "grad.conv2d_weight",
    "unfold": "im2col",
    "fold": "col2im",
}


def _recorded_calls():
    data = load_npz(DATA)
    names = sorted({k.split("/")[0] for k in data})
    calls, expected = [], []
    for name in names:
        args = json.loads(str(data[f"{name}/args"]))
        func, kw = args["func"], dict(args["kwargs"])
        x, w = {"npz": f"{name}/x"}, {"npz": f"{name}/w"}
        if func == "conv2d_input":
            positional = [list(data[f"{name}/x"].shape), w, {"npz": f"{name}/go"}]
        elif func == "conv2d_weight":
            positional = [x, list(data[f"{name}/w"].shape), {"npz": f"{name}/go"}]
        elif func in ("unfold", "fold"):
            positional = [x]
        else:
            positional = [x, w]
        calls.append(dict(func=_FUNCS[func], args=positional, kwargs=kw, label=name))
        expected.append((name, data[f"{name}/out"]))
    return calls, expected


def test_huge_valid_arguments_give_pytorchs_result(tmp_path):
    calls, expected = _recorded_calls()
    assert len(calls) >= 15
    outcomes, results = run_calls(calls, tmp_path)
    for i, ((name, ref), outcome) in enumerate(zip(expected, outcomes, strict=True)):
        assert outcome["kind"] == "ok", f"{name}: {outcome}"
        got = results[i]
        assert got.shape == ref.shape, name
        bound = 2e-5 if ref.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, ref, rtol=bound, atol=bound, err_msg=name)


def test_huge_valid_arguments_that_torch_fails_match_the_naive_loops(tmp_path):
    """torch 2.13 fails these itself (see the recorder); the naive loops are cheap here."""
    x3, w3 = arr((1, 2, 4, 4, 4), 1), arr((2, 1, 3, 3, 3), 2)
    xt, wt = arr((1, 2, 1, 3), 3), arr((2, 2, 3, 3), 4)
    xt3, wt3 = arr((1, 2, 3, 2, 2), 5), arr((2, 2, 2, 2, 2), 6)
    calls = [
        dict(func="conv3d", args=[x3, w3], kwargs=dict(stride=2**62, groups=2)),
        dict(func="conv_transpose2d", args=[xt, wt], kwargs=dict(stride=[2**62, 1])),
        dict(
            func="conv_transpose3d",
            args=[xt3, wt3],
            kwargs=dict(stride=[2**31, 1, 1], padding=[2**31 - 1, 0, 0]),
        ),
    ]
    outcomes, results = run_calls(calls, tmp_path, data=False)
    assert [o["kind"] for o in outcomes] == ["ok"] * 3, outcomes

    def load(spec):
        return np.random.default_rng(spec["seed"]).standard_normal(spec["shape"])

    np.testing.assert_allclose(
        results[0], convnd(load(x3), load(w3), groups=2, stride=2**62), rtol=1e-12, atol=1e-12
    )
    # one input row: the stride multiplies nothing
    np.testing.assert_allclose(
        results[1], conv_transpose_scatter(load(xt), load(wt), stride=(2**62, 1)), atol=1e-12
    )
    # rows 0 and 2 land 2**31 away from row 1, outside the cropped output: stride 3 crops them
    # just the same in the naive loop (the kept rows are row 1's taps, shifted by the padding)
    ref = conv_transpose_scatter(load(xt3), load(wt3), stride=(3, 1, 1), padding=(2, 0, 0))
    np.testing.assert_allclose(results[2], ref, rtol=1e-12, atol=1e-12)


# --- the issue's cases that have no result: a clear error ---------------------------------------

x8, w_dw = arr((1, 4, 8, 8)), arr((4, 1, 3, 3), 1)
ERRORS = [
    # (call, exception, words the message must contain)
    (
        dict(func="conv2d", args=[x8, w_dw], kwargs=dict(stride=2**63, groups=4)),
        "ValueError",
        "stride",
    ),
    (
        dict(func="conv2d", args=[x8, w_dw], kwargs=dict(stride=10**30, groups=4)),
        "ValueError",
        "2**63 - 1",
    ),
    (
        dict(
            func="conv2d",
            args=[x8, arr((4, 2, 3, 3))],
            kwargs=dict(dilation=[2**61 + 1, 1], padding=[2**61, 1], groups=2),
        ),
        "ValueError",
        "2**62",
    ),
    (
        dict(
            func="conv_transpose2d",
            args=[arr((1, 4, 3, 3)), arr((4, 3, 3, 3))],
            kwargs=dict(stride=[3 * 2**61, 1], padding=[3 * 2**61 - 1, 0], groups=2),
        ),
        "ValueError",
        "2**62",
    ),
    (
        dict(
            func="grad.conv2d_input",
            args=[[1, 4, 8, 8], w_dw, arr((1, 4, 1, 1))],
            kwargs=dict(stride=2**63, groups=4),
        ),
        "ValueError",
        "stride",
    ),
    (
        dict(func="conv2d", args=[x8, w_dw], kwargs=dict(stride=-1, groups=4)),
        "ValueError",
        "positive",
    ),
    (
        dict(func="conv2d", args=[x8, w_dw], kwargs=dict(padding=-1, groups=4)),
        "ValueError",
        "non-negative",
    ),
    (dict(func="conv2d", args=[x8, w_dw], kwargs=dict(groups=2**64)), "ValueError", "groups"),
    (
        dict(
            func="conv2d",
            args=[x8, w_dw],
            kwargs=dict(stride={"np": "uint64", "value": 2**63}, groups=4),
        ),
        "ValueError",
        "stride",
    ),
    (dict(func="conv_output_size", args=[8, 3], kwargs=dict(stride=2**63)), "ValueError", "stride"),
    (dict(func="conv_output_size", args=[2**62, 3], kwargs=dict(padding=1)), "ValueError", "2**62"),
]


def test_the_issues_invalid_cases_raise_before_any_kernel(tmp_path):
    outcomes, _ = run_calls([c for c, _, _ in ERRORS], tmp_path, data=False)
    for (call, kind, words), outcome in zip(ERRORS, outcomes, strict=True):
        assert outcome["kind"] == kind, (call, outcome)
        assert words in outcome["msg"], (call, outcome)


# --- every public function against boundary integers ------------------------------------------

BOUNDARY = [0, 1, 2, 3, -1, 2**31 - 1, 2**31, 2**31 + 1, 2**53, 2**62, 2**63 - 1, 2**63, 10**30]


def _ints():
    plain = st.sampled_from(BOUNDARY)
    numpy_int = st.sampled_from(
        [{"np": "int32", "value": v} for v in (-1, 1, 2, 2**31 - 1)]
        + [{"np": "int64", "value": v} for v in (0, 1, 2**31, 2**53, 2**62, 2**63 - 1)]
        + [{"np": "uint64", "value": v} for v in (1, 2**62, 2**63, 2**64 - 1)]
    )
    # small valid values too, so that some calls get through to the kernels with the huge ones
    return st.one_of(st.sampled_from([1, 2]), plain, plain, numpy_int)


def _pair(ints):
    return st.one_of(ints, st.lists(ints, min_size=2, max_size=2))


x4, x1d, x3d = arr((1, 2, 6, 5)), arr((1, 2, 7)), arr((1, 2, 3, 4, 4))
w2, w1d, w3d = arr((2, 1, 3, 2), 1), arr((2, 1, 3), 1), arr((2, 1, 2, 2, 2), 1)
wt2 = arr((2, 1, 3, 2), 2)
offset = arr((1, 12, 4, 4), 3)

# public function -> (positional arguments, {integer keyword: strategy})
TARGETS = {
    "conv1d": ([x1d, w1d], ["stride", "padding", "dilation", "groups"]),
    "conv2d": ([x4, w2], ["stride", "padding", "dilation", "groups"]),
    "conv3d": ([x3d, w3d], ["stride", "padding", "dilation", "groups"]),
    "conv_transpose1d": ([x1d, w1d], ["stride", "padding", "output_padding", "dilation", "groups"]),
    "conv_transpose2d": ([x4, wt2], ["stride", "padding", "output_padding", "dilation", "groups"]),
    "conv_transpose3d": ([x3d, w3d], ["stride", "padding", "output_padding", "dilation", "groups"]),
    "grad.conv2d_input": (
        [[1, 2, 6, 5], w2, arr((1, 2, 4, 4))],
        ["stride", "padding", "dilation", "groups"],
    ),
    "grad.conv1d_weight": (
        [x1d, [2, 1, 3], arr((1, 2, 5))],
        ["stride", "padding", "dilation", "groups"],
    ),
    "grad.conv3d_input": (
        [[1, 2, 3, 4, 4], w3d, arr((1, 2, 2, 3, 3))],
        ["stride", "padding", "dilation", "groups"],
    ),
    "deform_conv2d": (
        [arr((1, 2, 6, 6)), offset, arr((2, 2, 3, 2))],
        ["stride", "padding", "dilation"],
    ),
    "grad.deform_conv2d": (
        [arr((1, 2, 6, 6)), offset, arr((2, 2, 3, 2)), arr((1, 2, 4, 4))],
        ["stride", "padding", "dilation"],
    ),
    "depthwise_separable_conv2d": (
        [x4, arr((2, 1, 3, 3)), arr((3, 2))],
        ["stride", "padding", "dilation"],
    ),
    "spatially_separable_conv2d": ([x4, arr((3,)), arr((2,))], ["stride", "padding"]),
    "im2col": ([x4, 3], ["stride", "padding", "dilation"]),
    "col2im": ([arr((1, 18, 12)), [6, 5], 3], ["stride", "padding", "dilation"]),
    "conv_matrix": ([w2, [2, 6, 5]], ["stride", "padding", "dilation", "groups"]),
    "conv_output_size": ([[6, 5], 3], ["stride", "padding", "dilation"]),
    "conv_transpose_output_size": (
        [[6, 5], 3],
        ["stride", "padding", "output_padding", "dilation"],
    ),
    "conv_transpose_output_padding": ([[6, 5], [13, 11], 3], ["stride", "padding", "dilation"]),
    "tf_conv_transpose_output_size": ([[6, 5], 3], ["stride", "dilation"]),
    "effective_kernel_size": ([3], ["dilation"]),
    "count_params": ([2, 4, 3], ["groups"]),
    "count_macs": ([2, 4, 3, [6, 5]], ["stride", "padding", "dilation", "groups", "batch"]),
    "count_macs_depthwise_separable": (
        [2, 4, 3, [6, 5]],
        ["stride", "padding", "dilation", "depth_multiplier"],
    ),
    "count_macs_spatially_separable": ([2, 3, [6, 5]], ["rank", "stride", "padding", "batch"]),
}


@st.composite
def _call(draw):
    func = draw(st.sampled_from(sorted(TARGETS)))
    positional, names = TARGETS[func]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    ints = _ints()
    kwargs = {
        name: draw(
            _pair(ints) if name not in ("groups", "batch", "rank", "depth_multiplier") else ints
        )
        for name in chosen
    }
    return dict(func=func, args=positional, kwargs=kwargs, label=json.dumps(kwargs))


# derandomize: the same draws on every machine and run (a failure is a bug, never a chance)
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # no shrinking: each example is a child process, and the message lists every wrong call
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(st.lists(_call(), min_size=60, max_size=60))
def test_boundary_integers_never_crash_and_get_a_result_or_a_clear_error(tmp_path_factory, calls):
    # each function at least once per batch, whatever was drawn
    calls = calls + [dict(func=f, args=TARGETS[f][0], kwargs={}) for f in sorted(TARGETS)]
    outcomes, _ = run_calls(calls, tmp_path_factory.mktemp("batch"), data=False)
    wrong = []
    for call, outcome in zip(calls, outcomes, strict=True):
        kind = outcome["kind"]
        if kind == "ok":
            ok = outcome["finite"]  # finite inputs must give a finite result
        elif kind == "MemoryError":
            # NumPy's own: an output too large for the machine, refused before any kernel
            ok = "Unable to allocate" in outcome["msg"]
        else:
            ok = kind in ("ValueError", "TypeError") and bool(outcome["msg"])
        if not ok:
            wrong.append((call["func"], call["kwargs"], outcome))
    assert not wrong, "\n".join(map(repr, wrong))


@pytest.mark.parametrize("value", [2**31 - 1, 2**31, 2**31 + 1, 2**53, 2**62, 2**63 - 1])
def test_a_stride_beyond_the_input_is_a_one_output_layer(value):
    """In process (no kernel sees the stride): PyTorch's 1-output result, by the naive loop."""
    import convlab

    rng = np.random.default_rng(value % 1000)
    x, w = rng.standard_normal((1, 4, 8, 8)), rng.standard_normal((4, 1, 3, 3))
    expected = convnd(x, w, stride=(value, value), groups=4)
    for groups, weight in ((4, w), (1, rng.standard_normal((4, 4, 3, 3)))):
        ref = convnd(x, weight, stride=(value, value), groups=groups)
        for algorithm in ("auto", "direct", "im2col", "fft"):
            got = convlab.conv2d(x, weight, stride=value, groups=groups, algorithm=algorithm)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert expected.shape == (1, 4, 1, 1)

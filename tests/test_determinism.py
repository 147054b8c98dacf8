"""Every public operation gives the same bits on 1, 2 and 3 threads.

convlab's kernels cut their work into blocks whose size depends on the layer only and reduce
partial sums in a fixed order, so a result does not depend on how many threads computed it: a
book whose outputs are compared on machines with different core counts needs that, and PyTorch
does not promise it.

The cases (tests/determinism_cases.py) run in two fresh subprocesses, each computing every case
once per thread count: one started with ``NUMBA_NUM_THREADS=3`` that calls
``numba.set_num_threads(1)``, ``(2)`` and ``(3)`` in turn (as a user would), one started with
``NUMBA_NUM_THREADS=1`` (as on a one-core machine). Each thread count is compared with the first
bit for bit. Subprocesses because the number of threads Numba starts is fixed per process, and so
that a crash fails these tests instead of the test run.
"""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from determinism_cases import CASES

import convlab
import convlab.grad

HERE = Path(__file__).resolve().parent


def _params():
    return [pytest.param(name, id=name) for name in CASES]


def _run_cases(tmp_path, max_threads, thread_counts):
    out = tmp_path / f"cases_{max_threads}.npz"
    env = dict(os.environ, NUMBA_NUM_THREADS=str(max_threads))
    env.pop("NUMBA_THREADING_LAYER", None)  # convlab's default layer
    proc = subprocess.run(
        [sys.executable, str(HERE / "determinism_cases.py"), str(out), *map(str, thread_counts)],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, (
        f"NUMBA_NUM_THREADS={max_threads}: exit {proc.returncode}\n{proc.stderr[-4000:]}"
    )
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("determinism")
    # the one-thread process second: it loads the kernels the first one compiled
    found = _run_cases(tmp, 3, [1, 2, 3])
    for key, value in _run_cases(tmp, 1, [1]).items():
        name, threads, index = key.split("|")
        found[f"{name}|{threads} (NUMBA_NUM_THREADS=1)|{index}"] = value
    return found


@pytest.mark.parametrize("name", _params())
def test_same_bits_on_any_thread_count(results, name):
    by_run = {}
    for key, value in results.items():
        case, threads, index = key.split("|")
        if case == name:
            by_run.setdefault(threads, {})[int(index)] = value
    assert list(by_run)[0] == "1" and len(by_run) == 4, sorted(by_run)
    reference = by_run.pop("1")
    differ = []
    for threads, outputs in by_run.items():
        for index, got in outputs.items():
            want = reference[index]
            assert got.shape == want.shape and got.dtype == want.dtype
            # bit for bit: NaNs and signed zeros included
            if not np.array_equal(got.view(np.uint8), want.view(np.uint8)):
                worst = np.max(np.abs(got.astype(np.float64) - want))
                differ.append(f"threads={threads} output {index}: largest difference {worst:.3g}")
    assert not differ, f"{name}: results differ from one thread's: " + "; ".join(differ)


def test_every_public_operation_has_a_case():
    """A new public array operation must be added to determinism_cases.py."""
    shape_functions = {
        name for name, _ in inspect.getmembers(convlab.shapes, inspect.isfunction)
    } | {"SeparatedKernel", "grad", "winograd_matrices", "nn", "optim"}
    # winograd_matrices returns constant matrices; nn's layers call the functions covered here;
    # optim's updates are NumPy without threads (tests/test_training.py checks a training run)
    public = [f"{name}" for name in convlab.__all__ if name not in shape_functions]
    public += [f"grad.{name}" for name in convlab.grad.__all__]
    covered = {name.split("-")[0] for name in CASES}
    covered |= {"im2col", "col2im"}  # one case runs both
    missing = sorted(set(public) - covered)
    assert not missing, f"no determinism case for {missing}: add one to determinism_cases.py"
    assert len(public) >= 20

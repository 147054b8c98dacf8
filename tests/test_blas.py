"""convlab's BLAS: which library it multiplies with, and that every library it may pick multiplies
correctly through ``gemm_call`` (LP64 SciPy, ILP64 NumPy) with leading dimensions and transposes.
"""

import ctypes
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from tolerances import tol

from convlab import _blas

pytestmark = pytest.mark.kernels


def _libraries(dtype):
    """Every gemm convlab could choose here: SciPy's, and NumPy's own OpenBLAS when it ships one."""
    found = {"scipy": _blas._scipy_gemm(np.dtype(dtype))}
    numpy_lib = _blas._numpy_openblas()
    if numpy_lib is not None:
        found["numpy"] = _blas._numpy_gemm(numpy_lib, np.dtype(dtype))
    return found


@numba.njit
def _strided_product(gemm, trans_a, trans_b, a, b, c, alpha, beta):
    """``c[1:-1, 2:-1] = alpha op(a[1:, 1:]) op(b[1:, 1:]) + beta c[1:-1, 2:-1]`` in row-major
    terms, through slices of the flattened arrays (leading dimensions = the full row lengths)."""
    m = c.shape[0] - 2
    n = c.shape[1] - 3
    k = a.shape[0] - 1 if trans_a == "T" else a.shape[1] - 1
    # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
    _blas.gemm_call(
        gemm,
        trans_b,
        trans_a,
        n,
        m,
        k,
        alpha,
        b.reshape(-1)[b.shape[1] + 1 :],
        b.shape[1],
        a.reshape(-1)[a.shape[1] + 1 :],
        a.shape[1],
        beta,
        c.reshape(-1)[c.shape[1] + 2 :],
        c.shape[1],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["NN", "TN", "NT", "TT"])
def test_every_library_multiplies_strided_blocks(dtype, trans):
    rng = np.random.default_rng(1)
    m, n, k = 37, 29, 45
    a_shape = (k + 1, m + 1) if trans[0] == "T" else (m + 1, k + 1)
    b_shape = (n + 1, k + 1) if trans[1] == "T" else (k + 1, n + 1)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    c0 = rng.standard_normal((m + 2, n + 3)).astype(dtype)
    op_a = a[1:, 1:].T if trans[0] == "T" else a[1:, 1:]
    op_b = b[1:, 1:].T if trans[1] == "T" else b[1:, 1:]
    expected = c0.astype(np.float64).copy()
    expected[1:-1, 2:-1] = 1.5 * op_a.astype(np.float64) @ op_b + 0.5 * expected[1:-1, 2:-1]
    for name, gemm in _libraries(dtype).items():
        c = c0.copy()
        with _blas.one_blas_thread():
            _strided_product(gemm, trans[0], trans[1], a, b, c, 1.5, 0.5)
        # outside the block nothing is written
        mask = np.ones(c.shape, bool)
        mask[1:-1, 2:-1] = False
        assert np.array_equal(c[mask], c0[mask]), name
        np.testing.assert_allclose(c, expected, **tol(dtype), err_msg=name)


@numba.njit
def _matmul(gemm, a, b, c):
    _blas.matmul_into(gemm, a[1:, 2:], b[:, 1:-1], c[1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_into_is_a_matrix_product_of_row_slices(dtype):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20, 33)).astype(dtype)
    b = rng.standard_normal((31, 18)).astype(dtype)
    c = np.full((20, 16), np.nan, dtype=dtype)
    with _blas.one_blas_thread():
        _matmul(_blas.blas_gemm(dtype), a, b, c)
    assert np.isnan(c[0]).all()
    expected = a[1:, 2:].astype(np.float64) @ b[:, 1:-1]
    np.testing.assert_allclose(c[1:], expected, **tol(dtype))


def _library_in_child(value):
    env = {k: v for k, v in os.environ.items() if k != "CONVLAB_BLAS"}
    if value is not None:
        env["CONVLAB_BLAS"] = value
    code = "from convlab import _blas; print(_blas.blas_library())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_choice_follows_the_rule_and_the_environment():
    """By default the newer OpenBLAS of NumPy's and SciPy's; CONVLAB_BLAS forces one."""
    numpy_lib = _blas._numpy_openblas()
    scipy_paths = [p for p in _blas._candidate_libraries() if _blas._open_loaded(p)]
    forced = _library_in_child("scipy")
    assert forced.returncode == 0, forced.stderr
    if scipy_paths:
        assert os.path.basename(scipy_paths[0]) in forced.stdout
    default = _library_in_child(None)
    assert default.returncode == 0, default.stderr
    if numpy_lib is not None and scipy_paths:
        newer = _blas._openblas_version(numpy_lib[0]) > _blas._openblas_version(
            _blas._open_loaded(scipy_paths[0])
        )
        expected = numpy_lib[1] if newer else scipy_paths[0]
        assert os.path.basename(expected) in default.stdout
        chosen = _library_in_child("numpy")
        assert os.path.basename(numpy_lib[1]) in chosen.stdout
    wrong = _library_in_child("mkl")
    assert wrong.returncode != 0
    assert "CONVLAB_BLAS='mkl'" in wrong.stderr and "'numpy', 'scipy'" in wrong.stderr


def test_one_blas_thread_holds_every_library_it_may_use():
    """Inside the hold, the chosen library and SciPy's (Numba's np.dot) run on one thread; after
    it, each is back at its own count."""
    counters = []
    numpy_lib = _blas._numpy_openblas()
    libs = [_blas._open_loaded(p) for p in _blas._candidate_libraries()[:1]]
    if numpy_lib is not None and _blas.blas_library().startswith(os.path.basename(numpy_lib[1])):
        libs.append(numpy_lib[0])
    for lib in libs:
        for name in (
            "openblas_get_num_threads",
            "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads",
        ):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                counters.append(fn)
                break
    if not counters:
        pytest.skip("no OpenBLAS thread counter to read")
    before = [f() for f in counters]
    with _blas.one_blas_thread():
        assert [f() for f in counters] == [1] * len(counters)
    assert [f() for f in counters] == before

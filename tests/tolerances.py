"""Per-dtype tolerances for comparing convlab with recorded or naive references, in one place.

Reference sums run in another order (PyTorch, torchvision) or in float64 (tests/naive*.py), so
float32 results agree to a few units in the last place of the largest partial sums; float64 ones
to about 1e-12. Families that sum more terms per output (weight gradients) or in two passes
(separable filters) pass a looser float32 bound, and say why where they do.
"""

import numpy as np

FLOAT32 = 2e-5
FLOAT64 = 1e-12


def tol(dtype, float32=FLOAT32):
    """``assert_allclose`` keyword arguments (rtol and atol) for results of ``dtype``."""
    bound = float32 if np.dtype(dtype) == np.float32 else FLOAT64
    return dict(rtol=bound, atol=bound)


def load_npz(path):
    """All arrays of a recorded ``.npz`` file, as a dict (the file is closed again)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}

"""convlab: convolution layers computed, drawn and timed.

PyTorch-exact convolutions on NumPy arrays, with Numba kernels. The public API is re-exported here;
the implementation lives in private-by-convention modules (``conv``, ``algorithms``, ``shapes``).

dtype rules
-----------
Every function computes in float32 or float64 and returns the dtype it computed in, decided by
the input (``convlab._args`` has the details):

* float32 and float64 are kept, in either byte order (``>f8`` data is computed in float64);
* float16 is computed and returned in float32 (PyTorch keeps float16);
* integers and bool are computed in float64 (PyTorch computes integers in integers and rejects
  bool); wider floats (``np.longdouble`` on x86) are a ``TypeError``: convert them explicitly;
* weights, biases, offsets and masks are converted to the input's dtype (PyTorch rejects mixed
  dtypes);
* CPU ``torch.Tensor`` objects are accepted as arrays; one that requires grad is a ``TypeError``
  asking for ``.detach()`` (gradients are explicit functions: ``convlab.grad``).

Integer arguments (stride, padding, dilation, groups, sizes) must fit in int64, as in PyTorch, and
every size a kernel indexes must stay below ``2**62``; anything else is a ``ValueError`` before any
kernel runs.
"""

from . import grad, nn, optim
from ._version import __version__ as __version__
from ._winograd import winograd_matrices
from .algorithms import col2im, im2col
from .conv import conv1d, conv2d, conv3d
from .deformable import deform_conv2d
from .matrix import conv_matrix
from .separable import (
    SeparatedKernel,
    depthwise_separable_conv2d,
    separate_kernel,
    spatially_separable_conv2d,
)
from .shapes import (
    conv_output_size,
    conv_transpose_output_padding,
    conv_transpose_output_size,
    count_macs,
    count_macs_depthwise_separable,
    count_macs_spatially_separable,
    count_params,
    count_params_depthwise_separable,
    count_params_spatially_separable,
    effective_kernel_size,
    receptive_field,
    tf_conv_transpose_output_size,
)
from .transposed import conv_transpose1d, conv_transpose2d, conv_transpose3d

__all__ = [
    # convolutions
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "depthwise_separable_conv2d",
    "spatially_separable_conv2d",
    "deform_conv2d",
    "grad",
    "nn",
    "optim",
    # the matrix views
    "im2col",
    "col2im",
    "conv_matrix",
    "separate_kernel",
    "SeparatedKernel",
    # shape arithmetic and costs
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_transpose_output_padding",
    "tf_conv_transpose_output_size",
    "effective_kernel_size",
    "receptive_field",
    "count_params",
    "count_macs",
    "count_params_depthwise_separable",
    "count_macs_depthwise_separable",
    "count_params_spatially_separable",
    "count_macs_spatially_separable",
    "winograd_matrices",
]


def __dir__() -> list[str]:
    # dir(convlab) lists the API and the subpackages users import (nn, grad, optim, viz), not the
    # implementation modules (conv, algorithms, ...) that importing the API binds here (PEP 562)
    return sorted({*__all__, "__version__", "nn", "grad", "optim", "viz"})

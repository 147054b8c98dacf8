"""convlab: convolution layers computed, drawn and timed.

PyTorch-exact convolutions on NumPy arrays, with Numba kernels. The public API is re-exported here;
the implementation lives in private-by-convention modules (``conv``, ``algorithms``, ``shapes``).
"""

from . import grad
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

__version__ = "0.1.0"

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

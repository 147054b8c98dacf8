"""Figures, animations and widgets for the book, drawn from convlab's own numbers.

Each submodule draws one family of figures; this package re-exports their public functions, so
that a chapter writes ``from convlab import viz`` and calls ``viz.<name>``. Every function returns
the matplotlib object it drew (``Figure``, ``Axes`` or ``FuncAnimation``) so that tests can check
what is on it. matplotlib is a dependency of convlab; ipywidgets (for the interactive explorers)
is optional and imported only inside the functions that need it.
"""

from ._deformable import (
    bilinear_figure,
    bilinear_neighbours,
    loss_curve_figure,
    offset_fields_figure,
    sampling_grid_figure,
    sampling_points,
    timing_figure,
)
from ._dilation import (
    dilated_taps,
    dilation_grid_figure,
    gridding_counts,
    gridding_figure,
    receptive_field_growth,
    receptive_field_growth_figure,
)
from ._exercises import check_answer
from ._gallery import (
    GALLERY_CASES,
    GalleryAnimation,
    gallery_animation,
    gallery_frames,
    write_gallery,
)
from ._groups import channel_connections, channel_connections_figure, feature_maps_figure
from ._notebook import glue, recorded_benchmark, recorded_breadth
from ._performance import (
    benchmark_figure,
    benchmark_provenance,
    benchmark_rows,
    benchmark_table,
    breadth_figure,
    breadth_table,
    direct_access_pattern,
    engine_figure,
    im2col_figure,
    implicit_figure,
    memory_access_figure,
    roofline_figure,
)
from ._separable import (
    blur_timing_figure,
    blur_two_ways,
    filtered_images_figure,
    low_rank_figure,
    mobilenet_macs_figure,
    separable_cost_figure,
    separable_cost_ratios,
)
from ._sliding import (
    conv_explorer,
    padding_modes_figure,
    sliding_window_animation,
    sliding_window_diagram,
    sliding_windows,
)
from ._training import confusion_matrix, confusion_matrix_figure, training_figure
from ._transposed import (
    ZeroInsertion,
    ZeroInsertionAnimation,
    conv_matrix_figure,
    coverage_figure,
    insert_zeros,
    overlap_figure,
    resize_conv_coverage,
    scatter_figure,
    scatter_stamps,
    transposed_coverage,
    zero_insertion_animation,
    zero_insertion_figure,
    zero_insertion_steps,
)
from ._volume import VOLUME_CASES, VolumeAnimation, volume_animation, volume_frames

__all__ = [
    "confusion_matrix",
    "confusion_matrix_figure",
    "training_figure",
    "bilinear_figure",
    "bilinear_neighbours",
    "loss_curve_figure",
    "offset_fields_figure",
    "sampling_grid_figure",
    "sampling_points",
    "timing_figure",
    "dilated_taps",
    "dilation_grid_figure",
    "gridding_counts",
    "gridding_figure",
    "receptive_field_growth",
    "receptive_field_growth_figure",
    "benchmark_figure",
    "benchmark_rows",
    "benchmark_table",
    "benchmark_provenance",
    "breadth_figure",
    "breadth_table",
    "engine_figure",
    "implicit_figure",
    "direct_access_pattern",
    "im2col_figure",
    "memory_access_figure",
    "roofline_figure",
    "blur_timing_figure",
    "blur_two_ways",
    "filtered_images_figure",
    "low_rank_figure",
    "mobilenet_macs_figure",
    "separable_cost_figure",
    "separable_cost_ratios",
    "conv_explorer",
    "padding_modes_figure",
    "sliding_window_animation",
    "sliding_window_diagram",
    "sliding_windows",
    "ZeroInsertion",
    "ZeroInsertionAnimation",
    "conv_matrix_figure",
    "coverage_figure",
    "insert_zeros",
    "overlap_figure",
    "resize_conv_coverage",
    "scatter_figure",
    "scatter_stamps",
    "transposed_coverage",
    "zero_insertion_animation",
    "zero_insertion_figure",
    "zero_insertion_steps",
    "channel_connections",
    "channel_connections_figure",
    "feature_maps_figure",
    "GALLERY_CASES",
    "GalleryAnimation",
    "gallery_animation",
    "gallery_frames",
    "write_gallery",
    "VOLUME_CASES",
    "VolumeAnimation",
    "volume_animation",
    "volume_frames",
    "check_answer",
    "glue",
    "recorded_benchmark",
    "recorded_breadth",
]

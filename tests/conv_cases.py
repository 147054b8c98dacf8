"""The case table for the plain convolutions: shared by the torch recorder and the tests.

Each case is a dict: ``nd`` (1, 2, 3), ``x`` input shape (batched or unbatched), ``w`` weight shape,
``bias``, ``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``, ``dtype``. The recorder
draws the input/weight/bias from a seeded generator, runs torch and stores everything; the tests
run convlab on the stored input and compare.
"""


def _case(
    name,
    nd,
    x,
    w,
    bias=True,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    dtype="float32",
):
    return dict(
        name=name,
        nd=nd,
        x=x,
        w=w,
        bias=bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        dtype=dtype,
    )


CASES = [
    # --- 1-D: the parameters of seed 000, on random data
    _case("1d_basic", 1, (2, 3, 11), (4, 3, 3)),
    _case("1d_k1", 1, (2, 3, 7), (5, 3, 1)),
    _case("1d_even_kernel", 1, (1, 2, 9), (3, 2, 2), bias=False),
    _case("1d_stride3", 1, (2, 2, 12), (2, 2, 3), stride=3),
    _case("1d_pad2_dil2", 1, (2, 2, 10), (3, 2, 3), padding=2, dilation=2),
    _case("1d_groups2", 1, (2, 4, 8), (6, 2, 3), groups=2, padding=1),
    _case("1d_depthwise_x2", 1, (1, 3, 9), (6, 1, 3), groups=3),
    _case("1d_same_even", 1, (2, 2, 9), (2, 2, 4), padding="same"),
    _case("1d_same_dil", 1, (1, 2, 9), (2, 2, 3), padding="same", dilation=3),
    _case("1d_valid", 1, (1, 2, 9), (2, 2, 3), padding="valid"),
    _case("1d_unbatched", 1, (3, 10), (2, 3, 3), padding=1),
    _case("1d_kernel_eq_input", 1, (2, 3, 5), (2, 3, 5)),
    _case("1d_reflect", 1, (2, 2, 8), (2, 2, 3), padding=2, padding_mode="reflect"),
    _case("1d_replicate", 1, (2, 2, 8), (2, 2, 3), padding=3, padding_mode="replicate"),
    _case("1d_circular", 1, (2, 2, 8), (2, 2, 5), padding=4, padding_mode="circular"),
    _case("1d_float64", 1, (2, 3, 11), (4, 3, 3), padding=1, dtype="float64"),
    # --- 2-D
    _case("2d_basic", 2, (2, 3, 8, 9), (4, 3, 3, 3)),
    _case("2d_pad1", 2, (2, 3, 8, 8), (4, 3, 3, 3), padding=1),
    _case("2d_stride2_pad1", 2, (2, 3, 9, 8), (5, 3, 3, 3), stride=2, padding=1),
    _case(
        "2d_rect_args",
        2,
        (1, 2, 10, 12),
        (3, 2, 3, 5),
        stride=(2, 1),
        padding=(4, 2),
        dilation=(3, 1),
    ),
    _case("2d_dilation2", 2, (2, 2, 11, 11), (2, 2, 3, 3), dilation=2, padding=2),
    _case("2d_1x1", 2, (2, 6, 5, 5), (4, 6, 1, 1)),
    _case("2d_1x1_stride2", 2, (2, 6, 6, 7), (4, 6, 1, 1), stride=2),
    _case("2d_groups2", 2, (2, 4, 7, 7), (6, 2, 3, 3), groups=2, padding=1),
    _case("2d_groups3_nobias", 2, (1, 6, 6, 6), (3, 2, 3, 3), groups=3, bias=False),
    _case("2d_depthwise", 2, (2, 4, 8, 8), (4, 1, 3, 3), groups=4, padding=1),
    _case("2d_depthwise_x2_s2", 2, (1, 3, 9, 9), (6, 1, 3, 3), groups=3, stride=2, padding=1),
    _case("2d_same_even", 2, (1, 2, 7, 8), (3, 2, 4, 2), padding="same"),
    _case("2d_same_dil2", 2, (1, 2, 9, 9), (2, 2, 3, 3), padding="same", dilation=2),
    _case("2d_valid", 2, (1, 2, 6, 6), (2, 2, 3, 3), padding="valid"),
    _case("2d_kernel_eq_input", 2, (2, 3, 4, 5), (2, 3, 4, 5)),
    _case("2d_unbatched", 2, (3, 6, 6), (2, 3, 3, 3), padding=1),
    _case("2d_stem_7x7_s2", 2, (1, 3, 20, 20), (4, 3, 7, 7), stride=2, padding=3),
    _case("2d_reflect", 2, (2, 2, 6, 7), (3, 2, 3, 3), padding=2, padding_mode="reflect"),
    _case("2d_replicate", 2, (2, 2, 5, 6), (3, 2, 3, 3), padding=(3, 1), padding_mode="replicate"),
    _case("2d_circular", 2, (2, 2, 5, 6), (3, 2, 3, 3), padding=(5, 2), padding_mode="circular"),
    _case("2d_reflect_same", 2, (1, 2, 6, 6), (2, 2, 4, 4), padding="same", padding_mode="reflect"),
    _case(
        "2d_circular_groups",
        2,
        (1, 4, 6, 6),
        (4, 2, 3, 3),
        padding=1,
        groups=2,
        padding_mode="circular",
    ),
    _case("2d_float64", 2, (2, 3, 8, 8), (4, 3, 3, 3), padding=1, stride=2, dtype="float64"),
    _case("2d_float64_groups", 2, (1, 4, 7, 7), (4, 2, 3, 3), padding=1, groups=2, dtype="float64"),
    # --- 3-D
    _case("3d_basic", 3, (2, 2, 5, 6, 6), (3, 2, 3, 3, 3)),
    _case("3d_pad_stride", 3, (1, 2, 6, 7, 5), (3, 2, 3, 3, 3), stride=(1, 2, 2), padding=1),
    _case(
        "3d_dilation", 3, (1, 2, 7, 7, 7), (2, 2, 3, 3, 3), dilation=(2, 1, 2), padding=(2, 1, 0)
    ),
    _case("3d_groups", 3, (1, 4, 5, 5, 5), (4, 2, 3, 3, 3), groups=2, padding=1),
    _case("3d_same", 3, (1, 2, 5, 5, 6), (2, 2, 2, 3, 4), padding="same"),
    _case("3d_replicate", 3, (1, 2, 4, 4, 4), (2, 2, 3, 3, 3), padding=2, padding_mode="replicate"),
    _case("3d_unbatched", 3, (2, 4, 5, 5), (3, 2, 3, 3, 3), padding=1),
    _case("3d_float64", 3, (1, 2, 5, 5, 5), (2, 2, 3, 3, 3), padding=1, dtype="float64"),
]

# Cases for torch.nn.functional.unfold / fold.
UNFOLD_CASES = [
    dict(name="unfold_basic", x=(2, 3, 6, 7), kernel_size=(2, 3), dilation=1, padding=0, stride=1),
    dict(name="unfold_pad_stride", x=(1, 2, 7, 7), kernel_size=3, dilation=1, padding=1, stride=2),
    dict(
        name="unfold_dilation",
        x=(1, 2, 9, 8),
        kernel_size=(3, 2),
        dilation=(2, 3),
        padding=(1, 2),
        stride=(1, 2),
    ),
    dict(name="unfold_unbatched", x=(3, 5, 5), kernel_size=2, dilation=1, padding=1, stride=1),
]

"""Every bad argument is rejected with a clear message before any kernel runs.

One row per rule: (function, args, kwargs, exception, regex the message must match). The regexes
check that the message names the offending value and the rule, not only the exception type.
"""

import numpy as np
import pytest

import convlab

X1 = np.ones((1, 4, 8))
W1 = np.ones((2, 4, 3))
X2 = np.ones((1, 4, 8, 8))
W2 = np.ones((2, 4, 3, 3))
X3 = np.ones((1, 4, 5, 5, 5))
W3 = np.ones((2, 4, 3, 3, 3))

c1, c2, c3 = convlab.conv1d, convlab.conv2d, convlab.conv3d

BAD = [
    # groups must divide the channels, and the weight must match them
    (
        "groups_in",
        c2,
        (np.ones((1, 4, 8, 8)), np.ones((3, 2, 3, 3))),
        dict(groups=3),
        ValueError,
        r"out_channels \(3.*\) must be divisible by groups \(3\)"
        r"|in_channels \(4\) must be divisible by groups \(3\)",
    ),
    (
        "groups_in_only",
        c2,
        (np.ones((1, 4, 8, 8)), np.ones((6, 2, 3, 3))),
        dict(groups=3),
        ValueError,
        r"in_channels \(4\) must be divisible by groups \(3\)",
    ),
    (
        "groups_out",
        c2,
        (np.ones((1, 4, 8, 8)), np.ones((3, 2, 3, 3))),
        dict(groups=2),
        ValueError,
        r"out_channels \(3, weight.shape\[0\]\) must be divisible by groups \(2\)",
    ),
    (
        "weight_channels",
        c2,
        (X2, np.ones((2, 3, 3, 3))),
        {},
        ValueError,
        r"input has 4 channels but weight.shape\[1\] \* groups = 3 \* 1 = 3",
    ),
    (
        "weight_channels_grouped",
        c1,
        (X1, np.ones((2, 4, 3))),
        dict(groups=2),
        ValueError,
        r"input has 4 channels but weight.shape\[1\] \* groups = 4 \* 2 = 8",
    ),
    # non-positive stride, dilation, groups; negative padding
    ("stride_zero", c2, (X2, W2), dict(stride=0), ValueError, r"stride must be positive, got 0"),
    (
        "stride_negative_tuple",
        c2,
        (X2, W2),
        dict(stride=(1, -2)),
        ValueError,
        r"stride must be positive, got \(1, -2\)",
    ),
    (
        "dilation_zero",
        c1,
        (X1, W1),
        dict(dilation=0),
        ValueError,
        r"dilation must be positive, got 0",
    ),
    (
        "groups_zero",
        c2,
        (X2, W2),
        dict(groups=0),
        ValueError,
        r"groups must be a positive int, got 0",
    ),
    (
        "groups_negative",
        c3,
        (X3, W3),
        dict(groups=-1),
        ValueError,
        r"groups must be a positive int, got -1",
    ),
    ("groups_float", c2, (X2, W2), dict(groups=1.0), TypeError, r"groups must be an int, got 1.0"),
    (
        "padding_negative",
        c2,
        (X2, W2),
        dict(padding=-1),
        ValueError,
        r"padding must be non-negative, got -1",
    ),
    (
        "padding_negative_3d",
        c3,
        (X3, W3),
        dict(padding=(0, 1, -1)),
        ValueError,
        r"padding must be non-negative",
    ),
    # kernel larger than the padded input
    (
        "kernel_too_large",
        c2,
        (np.ones((1, 4, 2, 8)), W2),
        {},
        ValueError,
        r"kernel extent d\*\(k-1\)\+1 = 1\*\(3-1\)\+1 = 3 is larger than the padded input size "
        r"2 \+ 0 \+ 0 = 2",
    ),
    (
        "dilated_kernel_too_large",
        c1,
        (X1, W1),
        dict(dilation=4),
        ValueError,
        r"kernel extent d\*\(k-1\)\+1 = 4\*\(3-1\)\+1 = 9 is larger than the padded input size 8",
    ),
    # 'same' with stride > 1; unknown strings
    (
        "same_stride",
        c2,
        (X2, W2),
        dict(padding="same", stride=2),
        ValueError,
        r"padding='same' is only supported with stride 1.*stride=\(2, 2\)",
    ),
    (
        "same_stride_1d",
        c1,
        (X1, W1),
        dict(padding="same", stride=(2,)),
        ValueError,
        r"padding='same' is only supported with stride 1",
    ),
    (
        "padding_string",
        c2,
        (X2, W2),
        dict(padding="full"),
        ValueError,
        r"padding must be an int, a tuple of ints, 'same' or 'valid', got 'full'",
    ),
    (
        "padding_mode",
        c2,
        (X2, W2),
        dict(padding_mode="mirror"),
        ValueError,
        r"padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got 'mirror'",
    ),
    (
        "algorithm",
        c2,
        (X2, W2),
        dict(algorithm="magic"),
        ValueError,
        r"algorithm must be one of .*got 'magic'",
    ),
    # padding modes that need the input to be large enough
    (
        "reflect_too_wide",
        c2,
        (np.ones((1, 4, 3, 8)), W2),
        dict(padding=3, padding_mode="reflect"),
        ValueError,
        r"reflect padding \(3\) must be smaller than the input size \(3\) along H",
    ),
    (
        "reflect_too_wide_1d",
        c1,
        (np.ones((1, 4, 2)), W1),
        dict(padding=2, padding_mode="reflect"),
        ValueError,
        r"reflect padding \(2\) must be smaller than the input size \(2\) along L",
    ),
    (
        "circular_too_wide",
        c2,
        (np.ones((1, 4, 8, 2)), W2),
        dict(padding=3, padding_mode="circular"),
        ValueError,
        r"circular padding \(3\) must not be larger than the input size \(2\) along W",
    ),
    # ranks
    (
        "input_rank_2d",
        c2,
        (np.ones((4, 8)), W2),
        {},
        ValueError,
        r"input must be 3-D or 4-D \(N, C, H, W\) or \(C, H, W\), got shape \(4, 8\)",
    ),
    (
        "input_rank_1d",
        c1,
        (np.ones((1, 1, 4, 8)), W1),
        {},
        ValueError,
        r"input must be 2-D or 3-D \(N, C, L\) or \(C, L\), got shape",
    ),
    ("input_rank_3d", c3, (np.ones((4, 8, 8)), W3), {}, ValueError, r"input must be 4-D or 5-D"),
    (
        "weight_rank",
        c2,
        (X2, np.ones((2, 4, 3))),
        {},
        ValueError,
        r"weight must be 4-D \(C_out, C_in/groups, kH, kW\), got shape \(2, 4, 3\)",
    ),
    (
        "weight_rank_1d",
        c1,
        (X1, np.ones((2, 4))),
        {},
        ValueError,
        r"weight must be 3-D \(C_out, C_in/groups, k\), got shape \(2, 4\)",
    ),
    (
        "weight_empty",
        c2,
        (X2, np.ones((0, 4, 3, 3))),
        {},
        ValueError,
        r"weight must not have a zero-size dimension, got shape \(0, 4, 3, 3\)",
    ),
    # bias
    (
        "bias_length",
        c2,
        (X2, W2, np.ones(3)),
        {},
        ValueError,
        r"bias must have shape \(C_out,\) = \(2,\), got \(3,\)",
    ),
    (
        "bias_rank",
        c1,
        (X1, W1, np.ones((2, 1))),
        {},
        ValueError,
        r"bias must have shape \(C_out,\) = \(2,\), got \(2, 1\)",
    ),
    # int-or-tuple arguments of the wrong length or type
    (
        "stride_length",
        c2,
        (X2, W2),
        dict(stride=(1, 1, 1)),
        ValueError,
        r"stride must be an int or a tuple of 2 ints \(one per spatial dimension\), "
        r"got \(1, 1, 1\) with 3 entries",
    ),
    (
        "dilation_length_3d",
        c3,
        (X3, W3),
        dict(dilation=(1, 2)),
        ValueError,
        r"dilation must be an int or a tuple of 3 ints",
    ),
    (
        "padding_length_1d",
        c1,
        (X1, W1),
        dict(padding=(1, 1)),
        ValueError,
        r"padding must be an int or a tuple of 1 ints",
    ),
    (
        "stride_float",
        c2,
        (X2, W2),
        dict(stride=1.5),
        TypeError,
        r"stride must be an int or a tuple of 2 ints, got 1.5",
    ),
    (
        "padding_float_in_tuple",
        c2,
        (X2, W2),
        dict(padding=(1, 0.5)),
        TypeError,
        r"padding must contain ints, got \(1, 0.5\)",
    ),
    (
        "stride_bool",
        c2,
        (X2, W2),
        dict(stride=True),
        TypeError,
        r"stride must be an int or a tuple of 2 ints, got True",
    ),
    # non-numeric input
    (
        "input_strings",
        c1,
        ([[["a", "b", "c"]]], W1),
        {},
        TypeError,
        r"input must be a real numeric array.*got dtype <U1",
    ),
    (
        "input_complex",
        c2,
        (X2 + 1j, W2),
        {},
        TypeError,
        r"input must be a real numeric array.*complex128",
    ),
    (
        "input_ragged",
        c1,
        ([[[1, 2], [3]]], W1),
        {},
        TypeError,
        r"input must be a numeric array-like",
    ),
    (
        "input_object",
        c1,
        (np.array([[[None, 1, 2]]], dtype=object), W1),
        {},
        TypeError,
        r"input must be a real numeric array.*object",
    ),
    (
        "weight_strings",
        c2,
        (X2, np.full((2, 4, 3, 3), "x")),
        {},
        TypeError,
        r"weight must be a real numeric array",
    ),
    ("bias_strings", c2, (X2, W2, ["a", "b"]), {}, TypeError, r"bias must be a real numeric array"),
    # im2col / col2im
    (
        "im2col_rank",
        convlab.im2col,
        (np.ones((4, 4)), 2),
        {},
        ValueError,
        r"input must be 3-D or 4-D",
    ),
    (
        "im2col_kernel_too_large",
        convlab.im2col,
        (np.ones((1, 1, 3, 3)), 4),
        {},
        ValueError,
        r"kernel extent .* = 4 is larger than the padded input size 3",
    ),
    (
        "im2col_stride_zero",
        convlab.im2col,
        (np.ones((1, 1, 3, 3)), 2),
        dict(stride=0),
        ValueError,
        r"stride must be positive, got 0",
    ),
    (
        "col2im_taps",
        convlab.col2im,
        (np.ones((1, 5, 4)), 3, 2),
        {},
        ValueError,
        r"cols.shape\[-2\] \(5\) must be divisible by kH \* kW = 2 \* 2 = 4",
    ),
    (
        "col2im_blocks",
        convlab.col2im,
        (np.ones((1, 4, 5)), 3, 2),
        {},
        ValueError,
        r"cols.shape\[-1\] \(5\) must equal the number of blocks 2 \* 2 = 4",
    ),
    (
        "col2im_output_size",
        convlab.col2im,
        (np.ones((1, 4, 4)), (3, 0), 2),
        {},
        ValueError,
        r"output_size must be positive, got \(3, 0\)",
    ),
    (
        "col2im_rank",
        convlab.col2im,
        (np.ones((1, 1, 4, 4)), 3, 2),
        {},
        ValueError,
        r"cols must be 2-D or 3-D",
    ),
    # shape arithmetic
    (
        "output_size_kernel",
        convlab.conv_output_size,
        (4, 5),
        {},
        ValueError,
        r"kernel extent .* = 5 is larger than the padded input size 4 \+ 0 \+ 0 = 4",
    ),
    (
        "output_size_stride",
        convlab.conv_output_size,
        (4, 3),
        dict(stride=0),
        ValueError,
        r"stride must be positive",
    ),
    (
        "count_params_groups",
        convlab.count_params,
        (4, 6, 3),
        dict(groups=3),
        ValueError,
        r"in_channels \(4\) must be divisible by groups \(3\)",
    ),
    (
        "count_macs_groups",
        convlab.count_macs,
        (6, 4, 3, 8),
        dict(groups=3),
        ValueError,
        r"out_channels \(4\) must be divisible by groups \(3\)",
    ),
    (
        "receptive_field_layer",
        convlab.receptive_field,
        ([(3, 1, 1, 1)],),
        {},
        ValueError,
        r"layer 0: expected \(kernel_size, stride, dilation\)",
    ),
    (
        "receptive_field_stride",
        convlab.receptive_field,
        ([(3, 0)],),
        {},
        ValueError,
        r"layer 0 stride must be a positive int, got 0",
    ),
    (
        "receptive_field_dict",
        convlab.receptive_field,
        ([{"k": 3}],),
        {},
        ValueError,
        r"layer 0: a dict needs 'kernel_size'",
    ),
]


@pytest.mark.parametrize(
    "func, args, kwargs, exc, match", [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_rejects(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


def test_rejection_happens_before_any_kernel(monkeypatch):
    """A bad call must not reach Numba: replace every kernel by a tripwire and call with bad args."""
    from convlab import _engine, _implicit, _kernels

    def tripwire(*args, **kwargs):
        raise AssertionError("a kernel ran on invalid arguments")

    for name in ("_conv2d_direct", "_conv3d_direct", "_im2col", "_col2im"):
        monkeypatch.setattr(_kernels, name, tripwire)
    monkeypatch.setattr(_engine, "_weight_grad", tripwire)
    monkeypatch.setattr(_implicit, "_conv_implicit", tripwire)
    for _, func, args, kwargs, exc, _match in BAD:
        with pytest.raises(exc):
            func(*args, **kwargs)


@pytest.mark.parametrize(
    "value, exc, match",
    [
        ((1, 0), ValueError, r"stride must be positive, got \(1, 0\)"),
        ((1, -2), ValueError, r"stride must be positive, got \(1, -2\)"),
        ((1, 2**63), ValueError, r"stride must fit in a 64-bit integer"),
        ((1, True), TypeError, r"stride must contain ints, got \(1, True\)"),
        ((1, 2.0), TypeError, r"stride must contain ints, got \(1, 2.0\)"),
        ((1, 2, 3), ValueError, r"stride must be an int or a tuple of 2 ints .* 3 entries"),
    ],
)
def test_tuple_of_ints_is_checked_entry_by_entry(value, exc, match):
    """A tuple of plain ints takes ntuple's shortcut only when every entry is in range: the
    others get the same errors as lists and NumPy integers do."""
    with pytest.raises(exc, match=match):
        convlab.conv2d(X2, W2, stride=value)


def test_tuple_shortcut_returns_what_the_checks_return():
    from convlab._args import ntuple

    for value in [(1, 2), [1, 2], (np.int64(1), 2), np.array([1, 2]), (np.int32(1), np.uint8(2))]:
        got = ntuple(value, 2, "stride")
        assert got == (1, 2) and all(type(v) is int for v in got)
    assert ntuple((0, 3), 2, "padding", allow_zero=True) == (0, 3)
    assert ntuple((-3, 3), 2, "offset", allow_negative=True) == (-3, 3)
    assert ntuple((5,), 3, "dilation") == (5, 5, 5)

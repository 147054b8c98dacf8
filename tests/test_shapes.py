"""Shape arithmetic: the formulas against brute force and the papers' and seeds' numbers."""

import itertools
import math

import numpy as np
import pytest

import convlab
from convlab.shapes import padding_pairs


def _brute_output_length(length, k, s, p, d):
    """Count window start positions directly: a window at start t reads t, t+d, ..., t+d(k-1)."""
    padded = length + 2 * p
    return sum(1 for t in range(0, padded, s) if t + d * (k - 1) < padded)


GRID = list(itertools.product(range(1, 9), range(1, 5), range(0, 3), range(1, 4), range(1, 4)))


def test_conv_output_size_formula_against_brute_force():
    checked = 0
    for length, k, p, s, d in GRID:
        if d * (k - 1) + 1 > length + 2 * p:
            with pytest.raises(ValueError):
                convlab.conv_output_size(length, k, s, p, d)
            continue
        assert convlab.conv_output_size(length, k, s, p, d) == _brute_output_length(
            length, k, s, p, d
        )
        checked += 1
    assert checked > 500


@pytest.mark.parametrize("length, k, p, s, d", GRID[::37])
def test_conv_output_size_matches_conv1d(length, k, p, s, d):
    if d * (k - 1) + 1 > length + 2 * p:
        return
    out = convlab.conv1d(
        np.ones((1, 1, length)), np.ones((1, 1, k)), stride=s, padding=p, dilation=d
    )
    assert out.shape[-1] == convlab.conv_output_size(length, k, s, p, d)


def test_conv_output_size_tuples_and_strings():
    assert convlab.conv_output_size((224, 224), 7, stride=2, padding=3) == (112, 112)
    assert convlab.conv_output_size(
        (50, 100), (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1)
    ) == (26, 100)
    assert convlab.conv_output_size((9, 10), (4, 3), padding="same") == (9, 10)
    assert convlab.conv_output_size(9, 4, padding="valid") == 6
    assert convlab.conv_output_size((4, 5, 6), 3) == (2, 3, 4)


def test_padding_pairs_same_puts_odd_element_after():
    assert padding_pairs("same", (4, 3, 2), (1, 1, 1), (1, 1, 3)) == ((1, 2), (1, 1), (1, 2))
    assert padding_pairs(2, (3, 3), (1, 1), (1, 1)) == ((2, 2), (2, 2))


def test_effective_kernel_size():
    assert convlab.effective_kernel_size(3, 1) == 3
    assert convlab.effective_kernel_size(3, 2) == 5
    assert convlab.effective_kernel_size(3, 3) == 7
    assert convlab.effective_kernel_size((3, 5), 2) == (5, 9)


def test_receptive_field():
    # seed 003: stacked 3x3 layers see 5x5 and 7x7; 3x3 at dilation 2 and 3 see 5x5 and 7x7
    assert convlab.receptive_field([3]) == 3
    assert convlab.receptive_field([3, 3]) == 5
    assert convlab.receptive_field([3, 3, 3]) == 7
    assert convlab.receptive_field([(3, 1, 2)]) == 5
    assert convlab.receptive_field([(3, 1, 3)]) == 7
    # Yu & Koltun's context module: dilations 1, 2, 4, 8 grow the field exponentially
    assert convlab.receptive_field([(3, 1, 2**i) for i in range(4)]) == 31
    # strides multiply the jump: ResNet stem 7x7 s2 then 3x3 s2 max-pool-like window
    assert convlab.receptive_field([(7, 2), (3, 2)]) == 11
    assert (
        convlab.receptive_field(
            [{"kernel_size": 3, "stride": 2}, {"kernel_size": 3, "dilation": 2}]
        )
        == 11
    )
    assert convlab.receptive_field([]) == 1


def test_receptive_field_against_impulse_response():
    """The field is the support of the gradient-free 'which inputs reach one output' count."""
    layers = [(3, 1, 1), (3, 2, 1), (3, 1, 2)]
    length = 64
    x = np.zeros((1, 1, length))
    # propagate an all-ones network and look at which inputs influence the middle output:
    # build the linear map column by column with impulses
    influence = []
    for i in range(length):
        y = x.copy()
        y[0, 0, i] = 1.0
        for k, s, d in layers:
            y = convlab.conv1d(y, np.ones((1, 1, k)), stride=s, dilation=d)
        influence.append(y[0, 0, y.shape[-1] // 2] != 0)
    idx = np.flatnonzero(influence)
    assert idx[-1] - idx[0] + 1 == convlab.receptive_field(layers)


def test_count_params_and_macs():
    # seed 001/003: standard 3x3, 3 -> 4: 108 weights; depthwise 27 + pointwise 12 = 39
    assert convlab.count_params(3, 4, 3, bias=False) == 108
    assert (
        convlab.count_params(3, 3, 3, groups=3, bias=False)
        + convlab.count_params(3, 4, 1, bias=False)
        == 39
    )
    # seed 003's (k_m k_n c_i + 1) c_o with bias
    assert convlab.count_params(16, 33, (3, 5)) == (3 * 5 * 16 + 1) * 33
    # groups divide the cost by G
    assert convlab.count_params(64, 64, 3, groups=4, bias=False) * 4 == convlab.count_params(
        64, 64, 3, bias=False
    )
    assert convlab.count_macs(64, 64, 3, (56, 56), padding=1) == 64 * 64 * 9 * 56 * 56
    assert convlab.count_macs(64, 64, 3, (56, 56), padding=1, groups=64) == 64 * 9 * 56 * 56
    assert (
        convlab.count_macs(3, 64, 7, (224, 224), stride=2, padding=3, batch=2)
        == 2 * 64 * 3 * 49 * 112 * 112
    )
    assert convlab.count_macs(4, 4, 3, 10) == 4 * 4 * 3 * 8
    assert convlab.count_macs(2, 2, (3, 3, 3), (5, 5, 5), padding=1) == 2 * 2 * 27 * 125
    assert (
        convlab.count_params(2, 2, (3, 3, 3), bias=False)
        == 2 * 2 * 27
        == math.prod((2, 2, 3, 3, 3))
    )
    # an int kernel_size means a square 2-D kernel unless ndim says otherwise
    assert convlab.count_params(3, 4, 3, ndim=1, bias=False) == 36
    assert convlab.count_params(3, 4, 3, ndim=3, bias=False) == 324


def test_count_params_matches_weight_and_bias_sizes():
    for c_in, c_out, k, g in [(3, 4, (3, 3), 1), (4, 6, (5, 1), 2), (6, 6, (3, 3, 3), 6)]:
        weight = np.empty((c_out, c_in // g) + k)
        assert convlab.count_params(c_in, c_out, k, groups=g) == weight.size + c_out

"""viz.check_answer: the check below an exercise says "correct" or "not yet", never the answer."""

import numpy as np
import pytest

from convlab import viz


@pytest.mark.parametrize(
    "answer, expected",
    [
        (31, 31),
        (31, 31.0),
        (0.1 + 0.2, 0.3),
        ((128, 16, 3, 3), np.array([128, 16, 3, 3])),
        ([1, 2, 3, 6], [1, 2, 3, 6]),
        ([(2, 2), (2, 3)], [(2, 2), (2, 3)]),
        ({(1, 2, 5): False, (2, 4, 8): True}, {(2, 4, 8): True, (1, 2, 5): False}),
        ({(2, 2): 1, (4, 2): 4}, {(2, 2): 1.0, (4, 2): 4.0}),
        (np.eye(3), np.eye(3) + 1e-15),
        ("winograd", "winograd"),
        ([np.ones((2, 2)), np.zeros(3)], [np.ones((2, 2)), np.zeros(3)]),
    ],
)
def test_correct_answers_print_correct_only(capsys, answer, expected):
    assert viz.check_answer(answer, expected) is None
    assert capsys.readouterr().out == "correct\n"


@pytest.mark.parametrize(
    "answer, expected",
    [
        (None, 31),
        (30, 31),
        (31.01, 31),
        ((128, 16, 3), (128, 16, 3, 3)),
        ([1, 2, 3], [1, 2, 3, 6]),
        ({(1, 2, 5): True}, {(1, 2, 5): False}),
        ({(1, 2, 5): False}, {(1, 2, 5): False, (2, 4, 8): True}),
        (np.eye(3), np.eye(3) + 1e-6),
        (1, True),
        ("im2col", "winograd"),
        ([(2, 2), (2, 4)], [(2, 2), (2, 3)]),
        (np.full(2, np.nan), np.full(2, np.nan)),
    ],
)
def test_wrong_answers_print_not_yet_and_never_the_values(capsys, answer, expected):
    viz.check_answer(answer, expected)
    out = capsys.readouterr().out
    assert out == "not yet\n"

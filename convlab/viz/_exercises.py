"""The check below a chapter's exercise: it says whether an answer is right, never what it is.

A chapter's exercise keeps its solution folded; the solution's last cell sets the answer (the
reader puts their own there to check it), and the cell below the fold calls :func:`check_answer`
with that answer and the value convlab computes. The page shows only what that cell prints,
``correct`` or ``not yet``, so a reader who has not unfolded the solution does not see it, and
nbval, which compares the printed word with the stored one, still verifies every solution.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_answer"]


def _same(answer: object, expected: object, rtol: float, atol: float) -> bool:
    if isinstance(expected, dict):
        return (
            isinstance(answer, dict)
            and answer.keys() == expected.keys()
            and all(_same(answer[k], expected[k], rtol, atol) for k in expected)
        )
    if isinstance(expected, str) or isinstance(answer, str):
        return answer == expected
    if isinstance(expected, (list, tuple)) and not all(
        isinstance(v, numbers.Number) for v in expected
    ):
        return (
            isinstance(answer, (list, tuple, np.ndarray))
            and len(answer) == len(expected)
            and all(_same(a, e, rtol, atol) for a, e in zip(answer, expected, strict=True))
        )
    if answer is None:
        return False
    try:
        got = np.asarray(answer)
        want = np.asarray(expected)
    except (TypeError, ValueError):
        return answer == expected
    if got.dtype == object or want.dtype == object:
        return bool(np.all(got == want)) if got.shape == want.shape else False
    if got.shape != want.shape:
        return False
    if got.dtype == bool or want.dtype == bool:
        return got.dtype == want.dtype and bool(np.array_equal(got, want))
    if not (np.issubdtype(got.dtype, np.number) and np.issubdtype(want.dtype, np.number)):
        return bool(np.array_equal(got, want))
    return bool(np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False))


def check_answer(
    answer: object, expected: object, *, rtol: float = 1e-9, atol: float = 1e-12
) -> None:
    """Print ``correct`` if ``answer`` equals ``expected``, else ``not yet``; never either value.

    Numbers and arrays compare with ``numpy.allclose`` (``rtol``, ``atol``) after their shapes
    agree, so ``31`` matches ``31.0`` and a tuple matches an array of the same entries; lists and
    tuples of other things, and dicts, compare entry by entry; strings exactly. ``None`` (an
    answer not filled in yet) is never correct.

    Parameters
    ----------
    answer : object
        The reader's answer (in the book: the value the folded solution sets).
    expected : object
        What convlab computes for the question.
    rtol, atol : float
        Tolerances for numbers.

    Returns
    -------
    None
        The verdict is printed, so that the page shows one word and nothing else.

    Examples
    --------
    >>> check_answer(31, 31.0)
    correct
    >>> check_answer((128, 16, 3, 3), np.array([128, 16, 3, 3]))
    correct
    >>> check_answer({(1, 2, 5): False, (2, 4, 8): True}, {(1, 2, 5): False, (2, 4, 8): False})
    not yet
    >>> check_answer(None, 7)
    not yet
    """
    print("correct" if _same(answer, expected, rtol, atol) else "not yet")

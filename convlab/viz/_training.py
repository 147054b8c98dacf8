"""Figures of chapter 8: a network's training curves and its confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_matrix", "confusion_matrix_figure", "training_figure"]

_LOSS = "#4C72B0"
_EPOCH = "#C44E52"
_ACCURACY = "#55A868"


def confusion_matrix(
    true: npt.ArrayLike, predicted: npt.ArrayLike, classes: int
) -> NDArray[np.int64]:
    """Counts ``m[t, p]`` of the samples of class ``t`` predicted as ``p``, ``classes x classes``.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    t = np.asarray(true)
    p = np.asarray(predicted)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(
            f"true and predicted must be 1-D and of one length, got {t.shape} and {p.shape}"
        )
    for name, values in (("true", t), ("predicted", p)):
        if values.size and (values.dtype.kind not in "iu" or values.min() < 0):
            raise ValueError(f"{name} must hold class indices >= 0, got {values[:5]}...")
        if values.size and values.max() >= classes:
            raise ValueError(f"{name} holds class {values.max()}, but classes = {classes}")
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def training_figure(
    losses: npt.ArrayLike,
    accuracies: npt.ArrayLike,
    steps_per_epoch: int,
    title: str | None = None,
) -> Figure:
    """The loss of every step and its mean per epoch (left, log scale), and the test accuracy
    after each epoch (right, in percent).

    Returns
    -------
    matplotlib.figure.Figure
        Lines with gids ``"loss:step"`` (one point per step), ``"loss:epoch"`` (the epoch means,
        at each epoch's last step) and ``"accuracy"`` (percent, one point per epoch).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = training_figure([2.3, 1.0, 0.5, 0.4], [80.0, 90.0], steps_per_epoch=2)
    >>> [line.get_gid() for ax in fig.axes for line in ax.lines]
    ['loss:step', 'loss:epoch', 'accuracy']
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    loss = np.asarray(losses, dtype=np.float64)
    acc = np.asarray(accuracies, dtype=np.float64)
    epochs = len(acc)
    if steps_per_epoch < 1 or len(loss) != epochs * steps_per_epoch:
        raise ValueError(
            f"losses must hold steps_per_epoch * epochs = {steps_per_epoch} * {epochs} values, "
            f"got {len(loss)}"
        )
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
    steps = np.arange(1, len(loss) + 1)
    left.semilogy(steps, loss, color=_LOSS, alpha=0.35, linewidth=0.8, gid="loss:step")
    ends = steps_per_epoch * np.arange(1, epochs + 1)
    means = loss.reshape(epochs, steps_per_epoch).mean(axis=1)
    left.semilogy(ends, means, "o-", color=_EPOCH, markersize=3.5, gid="loss:epoch")
    left.set_xlabel("step")
    left.set_ylabel("cross-entropy loss")
    left.set_title("training loss (steps, epoch means)")
    left.grid(True, which="both", alpha=0.3)
    right.plot(np.arange(1, epochs + 1), acc, "o-", color=_ACCURACY, markersize=3.5, gid="accuracy")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("epoch")
    right.set_ylabel("test accuracy (%)")
    right.set_title("accuracy on the test images")
    right.set_ylim(min(float(acc.min()), 90.0) - 2, 100.5)
    right.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def confusion_matrix_figure(
    matrix: npt.ArrayLike,
    labels: Sequence[str] | None = None,
    title: str = "confusion matrix",
) -> Figure:
    """The confusion matrix as a heat map, rows the true class and columns the predicted one,
    every non-zero count written in its cell.

    Returns
    -------
    matplotlib.figure.Figure
        One ``AxesImage`` (gid ``"confusion"``) of ``log(1 + count)``, so that the few mistakes
        stay visible beside the diagonal, and one text per non-zero cell with its count.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = confusion_matrix_figure([[5, 1], [0, 7]])
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['5', '1', '7']
    """
    import matplotlib.pyplot as plt

    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square, got shape {m.shape}")
    n = m.shape[0]
    names = [str(i) for i in range(n)] if labels is None else list(labels)
    if len(names) != n:
        raise ValueError(f"labels must name the {n} classes, got {len(names)}")
    size = min(5.5, 1.2 + 0.42 * n)
    fig, ax = plt.subplots(figsize=(size + 0.6, size), layout="constrained")
    # a log-like scale: the few mistakes stay visible next to the large diagonal
    shown = np.log1p(m.astype(np.float64))
    ax.imshow(shown, cmap="Blues", gid="confusion")
    top = shown.max() if shown.size else 1.0
    for (i, j), count in np.ndenumerate(m):
        if count:
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=9,
                color="white" if shown[i, j] > 0.6 * top else "black",
            )
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return fig

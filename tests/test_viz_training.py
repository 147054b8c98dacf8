"""Chapter 8's figures (convlab.viz._training): what they draw is the data they were given."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from convlab import viz


def test_confusion_matrix_counts_pairs():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.8, true, rng.integers(0, 4, 200))
    m = viz.confusion_matrix(true, pred, 4)
    assert m.sum() == 200 and m.trace() == np.sum(true == pred)
    for t in range(4):
        for p in range(4):
            assert m[t, p] == np.sum((true == t) & (pred == p))


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match="one length"):
        viz.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match="classes = 2"):
        viz.confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="class indices"):
        viz.confusion_matrix([0, -1], [0, 1], 2)


def test_confusion_matrix_figure_writes_every_nonzero_count():
    m = np.array([[40, 0, 2], [1, 37, 0], [0, 0, 45]])
    fig = viz.confusion_matrix_figure(m, labels=["a", "b", "c"])
    ax = fig.axes[0]
    (image,) = ax.images
    assert image.get_gid() == "confusion"
    np.testing.assert_allclose(image.get_array(), np.log1p(m))
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    assert cells == {(i, j): str(v) for (i, j), v in np.ndenumerate(m) if v}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    plt.close(fig)
    with pytest.raises(ValueError, match="square"):
        viz.confusion_matrix_figure(np.zeros((2, 3)))


def test_training_figure_plots_steps_epoch_means_and_accuracy():
    losses = np.linspace(2.3, 0.1, 12)
    acc = [50.0, 80.0, 95.0]
    fig = viz.training_figure(losses, acc, steps_per_epoch=4)
    lines = {line.get_gid(): line for ax in fig.axes for line in ax.lines}
    np.testing.assert_allclose(lines["loss:step"].get_ydata(), losses)
    np.testing.assert_allclose(lines["loss:epoch"].get_xdata(), [4, 8, 12])
    np.testing.assert_allclose(lines["loss:epoch"].get_ydata(), losses.reshape(3, 4).mean(1))
    np.testing.assert_allclose(lines["accuracy"].get_ydata(), acc)
    plt.close(fig)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        viz.training_figure(losses, acc, steps_per_epoch=5)

"""The animation gallery (convlab.viz._gallery, _volume) and the GIFs the book serves.

Every frame's output value is compared with convlab.conv2d / conv_transpose2d called here on the
case's arrays, and with the sum of the products the frame draws (each window cell's input value
times the weight written in its corner), so both the number and the drawn window are checked. The
drawn figure is asked (by artist gid) what it shows at each frame. The committed files in
book/gallery/ must be what the code draws now: each GIF's comment holds the digest of its
numbers, geometry, timing and drawing code (``gallery_spec``), its frame count matches, and it
loops. Regenerate them with ``python -m convlab.viz book/gallery``.
"""

from pathlib import Path

import numpy as np
import pytest

import convlab
from convlab import viz
from convlab.shapes import conv_output_size
from convlab.viz import _gallery, _volume

GALLERY_DIR = Path(__file__).resolve().parents[1] / "book" / "gallery"
REGENERATE = "python -m convlab.viz book/gallery"
ORDINARY = [name for name, case in viz.GALLERY_CASES.items() if not case.transposed]
TRANSPOSED = [name for name, case in viz.GALLERY_CASES.items() if case.transposed]


def _convlab_output(case, x, w):
    if case.transposed:
        return convlab.conv_transpose2d(
            x[None, None],
            w[None, None],
            stride=case.stride,
            padding=case.padding,
            output_padding=case.output_padding,
            dilation=case.dilation,
        )[0, 0]
    return convlab.conv2d(
        x[None, None],
        w[None, None],
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
    )[0, 0]


def test_gallery_has_every_case_of_the_issue():
    """No, half and full padding and dilation 2, each with stride 1 and 2, and their transposes."""
    cases = viz.GALLERY_CASES.values()
    ordinary = [c for c in cases if not c.transposed]
    assert {(c.padding, c.dilation) for c in ordinary} == {(0, 1), ("same", 1), (2, 1), (0, 2)} | {
        (1, 1)
    }
    assert sorted(c.stride for c in ordinary) == [1] * 4 + [2] * 4
    assert len(TRANSPOSED) == len(ORDINARY) == 8
    assert set(viz.VOLUME_CASES) == {"volume_standard", "volume_grouped", "volume_depthwise"}


@pytest.mark.parametrize("name", ORDINARY)
def test_transposed_case_is_the_transpose_of_its_counterpart(name):
    """Same k, s, p, d; input = the ordinary output size; output = the ordinary input size."""
    case = viz.GALLERY_CASES[name]
    back = viz.GALLERY_CASES[name + "_transposed"]
    out = conv_output_size(
        case.input_size, case.kernel_size, case.stride, case.padding, case.dilation
    )
    assert back.input_size == out
    assert (back.kernel_size, back.stride, back.dilation) == (
        case.kernel_size,
        case.stride,
        case.dilation,
    )
    x, w = _gallery._case_arrays(back)
    assert _convlab_output(back, x, w).shape == (case.input_size, case.input_size)
    # the adjoint identity <conv(u), y> = <u, conv_transpose(y)> with the same arguments
    rng = np.random.default_rng(0)
    u = rng.standard_normal((case.input_size, case.input_size))
    y = rng.standard_normal((out, out))
    lhs = np.vdot(_convlab_output(case, u, w), y)
    rhs = np.vdot(u, _convlab_output(back, y, w))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("name", list(viz.GALLERY_CASES))
def test_every_frame_is_convlabs_value_and_its_window_sums_to_it(name):
    data = viz.gallery_frames(name)
    expected = _convlab_output(data.case, data.x, data.weight)
    assert [f.position for f in data.frames] == list(np.ndindex(expected.shape))
    for frame in data.frames:
        assert frame.value == expected[frame.position]
        assert sum(v * w for _, _, v, w in frame.window) == pytest.approx(frame.value)
        assert len(frame.window) == data.case.kernel_size**2
    # every input value appears exactly once in the drawn grid, at its place
    drawn = [
        (r, c) for r, row in enumerate(data.kinds) for c, kind in enumerate(row) if kind == "input"
    ]
    assert len(drawn) == data.x.size
    assert sorted(data.values[r][c] for r, c in drawn) == sorted(data.x.ravel())


@pytest.mark.parametrize("name", ["half_padding_stride", "dilation_transposed", "no_padding"])
def test_drawn_frames_show_the_values(name):
    anim = viz.gallery_animation(name)
    data = anim.frames_data
    texts = {t.get_gid(): t for t in anim._ax.texts if t.get_gid()}
    for n, frame in enumerate(data.frames):
        anim.draw_frame(n)
        r, c = frame.position
        assert texts[f"out-value:{r}:{c}"].get_text() == _gallery._fmt(frame.value)
        assert texts["status"].get_text().endswith(_gallery._fmt(frame.value)) or (
            "only zeros" in texts["status"].get_text()
        )
        weights = {
            gid: t.get_text()
            for gid, t in texts.items()
            if gid.startswith("weight:") and t.get_text()
        }
        assert len(weights) == data.case.kernel_size**2
        for wr, wc, _, weight in frame.window:
            assert weights[f"weight:{wr}:{wc}"] == _gallery._fmt(weight)
        later = data.frames[n + 1 :]
        assert all(
            texts[f"out-value:{f.position[0]}:{f.position[1]}"].get_text() == "" for f in later
        )
    anim.draw_frame(anim.n_frames - 1)  # the last frame: the whole output
    for (r, c), value in np.ndenumerate(data.output):
        assert texts[f"out-value:{r}:{c}"].get_text() == _gallery._fmt(value)


@pytest.mark.parametrize("name", list(viz.VOLUME_CASES))
def test_volume_frames_are_convlabs_grouped_outputs(name):
    data = viz.volume_frames(name)
    case = data.case
    expected = convlab.conv2d(data.x[None], data.weight, groups=case.groups)[0]
    per_in = case.in_channels // case.groups
    per_out = case.out_channels // case.groups
    assert len(data.frames) == expected.size
    for f in data.frames:
        assert f.value == expected[(f.channel,) + f.position]
        group = f.channel // per_out
        assert f.in_channels == tuple(range(group * per_in, (group + 1) * per_in))
        # the value is the kernel volume times the windows of exactly those input channels
        r, c = f.position
        k = case.kernel_size
        window = data.x[list(f.in_channels), r : r + k, c : c + k]
        assert np.sum(window * data.weight[f.channel]) == pytest.approx(f.value)
    anim = viz.volume_animation(name)
    texts = {t.get_gid(): t for t in anim._ax.texts if t.get_gid()}
    for n, f in enumerate(data.frames):
        anim.draw_frame(n)
        assert texts[f"out-value:{f.channel}:{f.position[0]}:{f.position[1]}"].get_text() == (
            _gallery._fmt(f.value)
        )
        assert f"= {_gallery._fmt(f.value)}:" in texts["status"].get_text()


@pytest.mark.parametrize("name", list(viz.GALLERY_CASES) + list(viz.VOLUME_CASES))
def test_committed_gif_is_what_the_code_draws_now(name):
    from PIL import Image

    path = GALLERY_DIR / f"{name}.gif"
    assert path.is_file(), f"{path} is missing: run {REGENERATE}"
    if name in viz.GALLERY_CASES:
        data = viz.gallery_frames(name)
        spec = _gallery.gallery_spec(data)
    else:
        data = viz.volume_frames(name)
        spec = _volume.volume_spec(data)
    with Image.open(path) as im:
        comment = im.info.get("comment", b"").decode()
        assert comment == spec, (
            f"{path.name} is stale (drawn by older code or numbers): run {REGENERATE}"
        )
        assert im.n_frames == len(data.frames) + 1
        assert im.info.get("loop") == 0  # loops forever
        assert im.width <= 900, "wider than the book's page: the digits would be scaled down"
    assert path.stat().st_size < 700 * 1024


def test_spec_changes_with_the_numbers():
    """The staleness check can fail: another value in a frame gives another digest."""
    data = viz.gallery_frames("no_padding")
    frames = list(data.frames)
    frames[0] = frames[0]._replace(value=frames[0].value + 1)
    assert _gallery.gallery_spec(data._replace(frames=frames)) != _gallery.gallery_spec(data)


def test_source_digest_ignores_layout_comments_and_type_hints(tmp_path):
    """Annotating or reformatting the drawing code keeps the GIFs current; changing it does not."""

    def digest(text):
        path = tmp_path / "module.py"
        path.write_text(text)
        return _gallery.source_digest(path)

    plain = 'def f(a, b=1):\n    x = a + b\n    return f"{x:.3g} and {b}"\n'
    annotated = (
        "def f(a: float,\n      b: int = 1) -> str:  # a comment\n"
        "    y: int\n    x: float = a + b\n\n    return f'{x:.3g}' ' and ' f\"{b}\"\n"
    )
    assert digest(annotated) == digest(plain)
    assert digest(plain.replace("a + b", "a - b")) != digest(plain)
    assert digest(plain.replace("b=1", "b=2")) != digest(plain)

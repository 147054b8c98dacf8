"""The in-browser explorer (book/explorer.md, book/_static/explorer/) agrees with convlab.

The built page is opened from disk (file://) in headless Chromium with the network switched off
(DevTools' offline emulation; any request that is not file: or data: fails the test). For every
setting of a grid of several hundred, ordinary and transposed, 1-D and 2-D, legal and illegal, the
test sets the page's controls as a reader would (values typed into the form, one input event),
then reads what the page shows:

* the error text, or the output size;
* for every output cell, the input cells that light up when it is hovered and the kernel tap
  labelled on each; for every input cell, the output cells that light up;
* which input channels every output channel is connected to (and back);
* the receptive field, the multiply-accumulates, the parameter count, and the code it prints.

Each is compared with convlab computed in Python: the error is the ValueError that
``convlab.conv1d/conv2d/conv_transpose1d/conv_transpose2d`` (then ``convlab.count_params``) raise
for the same arguments; the connectivity comes from running those functions on one-hot inputs with
a kernel whose taps are numbered 1, 2, 3, ... (so each output value names the tap that read the
input); the counts from ``convlab.count_macs``, ``count_params`` and ``receptive_field``; and the
printed code is executed. Keyboard access (every control reached by Tab, each with a label; the
output grid moved with the arrow keys) and a clean console are checked too.
"""

import contextlib
import io
import itertools
import json
import math
import random
import re

import cdp_browser
import numpy as np
import pytest

import convlab
from convlab.shapes import (
    conv_output_size,
    conv_transpose_output_size,
    count_macs,
    count_params,
    receptive_field,
)

PAGE = "book/explorer.html"

# ------------------------------------------------------------------ the settings compared

LIMITS = {"size": 6, "kernel": 5, "stride": 3, "padding": 3, "dilation": 3, "output_padding": 2}
PER_DIM = ("size", "kernel", "stride", "padding", "dilation", "output_padding")


def setting(dims=2, mode="conv", padmode="numbers", cin=2, cout=2, groups=1, **per_dim):
    """One state of the explorer; per-dimension values are ints (both dims) or (h, w) pairs."""
    st = {
        "dims": dims,
        "mode": mode,
        "padmode": padmode,
        "in_channels": cin,
        "out_channels": cout,
        "groups": groups,
    }
    defaults = dict(size=5, kernel=3, stride=1, padding=0, dilation=1, output_padding=0)
    for name in PER_DIM:
        value = per_dim.get(name, defaults[name])
        st[name] = list(value) if isinstance(value, (tuple, list)) else [value, value]
    return st


# Named cases first: each illegal rule convlab enforces, and the corner cases of each formula.
NAMED = {
    "kernel larger than the padded input": setting(size=3, kernel=5),
    "dilated kernel larger, 1-D": setting(dims=1, size=4, kernel=3, dilation=3),
    "same with stride 2": setting(padmode="same", stride=2),
    "same with stride 2 along the width only": setting(padmode="same", stride=(1, 2)),
    "same with stride 2, 1-D (conv1d reports a 2-tuple)": setting(dims=1, padmode="same", stride=2),
    "groups do not divide out_channels": setting(cin=4, cout=3, groups=2),
    "groups do not divide in_channels": setting(cin=3, cout=4, groups=2),
    "more groups than channels": setting(cin=2, cout=4, groups=4),
    "both channel counts wrong and 'same' with stride": setting(
        cin=3, cout=3, groups=2, padmode="same", stride=2
    ),
    "transposed with 'same'": setting(mode="transposed", padmode="same"),
    "transposed with 'valid', 1-D": setting(dims=1, mode="transposed", padmode="valid"),
    "output_padding not smaller than stride or dilation": setting(
        mode="transposed", stride=2, output_padding=2
    ),
    "output_padding allowed by the dilation": setting(
        mode="transposed", stride=1, dilation=3, output_padding=2
    ),
    "transposed output size not positive": setting(mode="transposed", size=1, kernel=1, padding=1),
    "transposed out_channels not divisible": setting(mode="transposed", cin=4, cout=3, groups=2),
    "transposed in_channels not divisible": setting(mode="transposed", cin=3, cout=4, groups=2),
    "transposed stride larger than kernel (outputs reading nothing)": setting(
        mode="transposed", size=3, kernel=1, stride=3
    ),
    "transposed padding larger than d(k-1) (crop)": setting(
        mode="transposed", size=4, kernel=2, padding=2, stride=2
    ),
    "depthwise": setting(cin=4, cout=4, groups=4),
    "depthwise with multiplier 2": setting(cin=3, cout=6, groups=3),
    "same with an even kernel (extra padding after)": setting(padmode="same", kernel=(2, 4)),
    "same with dilation": setting(dims=1, padmode="same", kernel=3, dilation=3, size=4),
    "valid": setting(padmode="valid", size=6, kernel=(2, 3)),
    "stride that skips the last inputs": setting(size=6, kernel=2, stride=3),
    "one input, one-tap kernel": setting(size=1, kernel=1),
}

CHANNELS = [(1, 1, 1), (2, 2, 1), (2, 4, 2), (4, 4, 4), (3, 6, 3), (4, 2, 2), (2, 3, 1)]
ILLEGAL_CHANNELS = [(3, 4, 2), (4, 3, 2), (2, 2, 4), (6, 4, 4)]


def random_settings(seed=17):
    """A seeded sample of the explorer's whole space, about one setting in eight illegal."""
    rng = random.Random(seed)
    out = []
    for dims, mode, count in ((1, "conv", 150), (2, "conv", 150), (1, "transposed", 110)):
        out += [_random_setting(rng, dims, mode) for _ in range(count)]
    out += [_random_setting(rng, 2, "transposed") for _ in range(110)]
    return out


def _random_setting(rng, dims, mode):
    per_dim = {}
    for name in PER_DIM:
        low = 0 if name in ("padding", "output_padding") else 1
        high = LIMITS[name] if dims == 1 or name != "size" else 5
        if mode == "conv" and name == "output_padding":
            high = 0
        per_dim[name] = tuple(rng.randint(low, high) for _ in range(2))
    padmode = "numbers"
    roll = rng.random()
    if roll < 0.15:
        padmode = "same"
    elif roll < 0.22:
        padmode = "valid"
    if mode == "transposed" and rng.random() < 0.8:
        padmode = "numbers"  # the strings are always an error there: a few suffice
    cin, cout, groups = rng.choice(ILLEGAL_CHANNELS if rng.random() < 0.08 else CHANNELS)
    return setting(dims, mode, padmode, cin, cout, groups, **per_dim)


SETTINGS = list(NAMED.items()) + [(f"random {i}", s) for i, s in enumerate(random_settings())]


# ------------------------------------------------------------------ convlab, in Python


def spatial(st, name):
    """The values of one per-dimension parameter as convlab takes them (1-D: the width column)."""
    return tuple(st[name][1:]) if st["dims"] == 1 else tuple(st[name])


def convlab_call(st, x, w, groups):
    nd = st["dims"]
    ss, ds = spatial(st, "stride"), spatial(st, "dilation")
    pad = spatial(st, "padding") if st["padmode"] == "numbers" else st["padmode"]
    if st["mode"] == "conv":
        fn = convlab.conv1d if nd == 1 else convlab.conv2d
        return fn(x, w, stride=ss, padding=pad, dilation=ds, groups=groups)
    fn = convlab.conv_transpose1d if nd == 1 else convlab.conv_transpose2d
    return fn(
        x,
        w,
        stride=ss,
        padding=pad,
        output_padding=spatial(st, "output_padding"),
        groups=groups,
        dilation=ds,
    )


def reference(st):
    """What convlab says about a setting: the error message, or sizes, reads and counts."""
    cin, cout, g = st["in_channels"], st["out_channels"], st["groups"]
    sizes, ks = spatial(st, "size"), spatial(st, "kernel")
    x = np.ones((1, cin) + sizes)
    if st["mode"] == "conv":
        w = np.ones((cout, max(1, cin // g)) + ks)
    else:
        w = np.ones((cin, max(1, cout // g)) + ks)
    try:
        y = convlab_call(st, x, w, g)
        # a transposed weight cannot say out_channels; convlab's layer arithmetic checks it
        params = count_params(cin, cout, ks, groups=g)
    except ValueError as exc:
        return {"error": str(exc)}
    ref = {"error": None, "out": tuple(y.shape[2:]), "params": params, "out_channels": y.shape[1]}
    ref["reads"] = spatial_reads(st, sizes, ks)
    ss, ds = spatial(st, "stride"), spatial(st, "dilation")
    if st["mode"] == "conv":
        pad = spatial(st, "padding") if st["padmode"] == "numbers" else st["padmode"]
        ref["macs"] = count_macs(cin, cout, ks, sizes, ss, pad, ds, g)
        ref["field"] = tuple(
            receptive_field([(k, s, d)]) for k, s, d in zip(ks, ss, ds, strict=True)
        )
    else:
        ps, outs = spatial(st, "padding"), ref["out"]
        if all(a < s for a, s in zip(spatial(st, "output_padding"), ss, strict=True)):
            # the convolution this one transposes maps the output size back to the input size
            ref["macs"] = count_macs(cout, cin, ks, outs, ss, ps, ds, g)
        else:
            ref["macs"] = cin * math.prod(sizes) * (cout // g) * math.prod(ks)
        # per dimension: the most inputs one output reads along it, from conv_transpose1d with
        # that dimension's arguments (the 2-D reads are their products)
        ref["field"] = tuple(
            max(
                len(reads)
                for reads in spatial_reads(along(st, a), sizes[a : a + 1], ks[a : a + 1]).values()
            )
            for a in range(len(sizes))
        )
    if cin % g == 0 and cout % g == 0:
        ref["channels"] = channel_reads(cin, cout, g)
    return ref


def along(st, axis):
    """The 1-D setting of one spatial dimension of ``st``."""
    one = dict(st, dims=1)
    for name in PER_DIM:
        value = spatial(st, name)[axis]
        one[name] = [value, value]
    return one


def spatial_reads(st, sizes, ks):
    """{output index: {input index: tap index}} from convlab on one-hot inputs.

    Input ``j`` is the one-hot image number ``j`` of a batch; the kernel's taps hold 1, 2, 3, ...
    in row-major order. Output ``o`` of image ``j`` is then the number of the tap through which
    ``o`` reads ``j`` (0: it does not), since no two taps of one output read the same input.
    """
    n = math.prod(sizes)
    x = np.eye(n).reshape((n, 1) + sizes)
    taps = math.prod(ks)
    w = (np.arange(taps, dtype=np.float64) + 1).reshape((1, 1) + ks)
    y = convlab_call(st, x, w, 1)[:, 0]
    reads = {}
    for o in np.ndindex(y.shape[1:]):
        column = y[(slice(None),) + o]
        reads[o] = {
            np.unravel_index(j, sizes): np.unravel_index(int(round(v)) - 1, ks)
            for j, v in enumerate(column)
            if v != 0
        }
        reads[o] = {
            tuple(map(int, j)): tuple(map(int, t)) for j, t in reads[o].items()
        }  # plain ints
    return reads


def channel_reads(cin, cout, g):
    """{output channel: set of input channels} from conv2d on one-hot channels (1x1 kernel)."""
    x = np.eye(cin).reshape(cin, cin, 1, 1)
    y = convlab.conv2d(x, np.ones((cout, cin // g, 1, 1)), groups=g)[:, :, 0, 0]
    return {o: {c for c in range(cin) if y[c, o] != 0} for o in range(cout)}


# ------------------------------------------------------------------ the page

# Sets the controls of the first explorer on the page the way a reader's typing does (values in
# the fields, then one input event: the explorer re-reads the whole form), then hovers every cell
# and reports what lit up.
PROBE_JS = r"""
window.__cxProbe = function (st) {
  const root = document.querySelector('.convlab-explorer');
  const field = (name, dim) => root.querySelector(
    '[data-param="' + name + '"]' + (dim === undefined ? '' : '[data-dim="' + dim + '"]'));
  field('dims').value = String(st.dims);
  field('mode').value = st.mode;
  field('padmode').value = st.padmode;
  for (const name of ['size', 'kernel', 'stride', 'padding', 'dilation', 'output_padding'])
    for (const dim of [0, 1]) field(name, dim).value = String(st[name][dim]);
  for (const name of ['in_channels', 'out_channels', 'groups']) field(name).value = String(st[name]);
  field('groups').dispatchEvent(new Event('input', {bubbles: true}));

  const over = (el) => el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
  const role = (r) => root.querySelector('[data-role="' + r + '"]');
  const errorBox = role('error');
  const out = {
    error: errorBox.hidden ? null : role('error-message').textContent,
    errorShown: !errorBox.hidden && errorBox.getBoundingClientRect().height > 0,
    code: role('code').textContent,
    out: role('out-size').getAttribute('data-value'),
    field: role('field').getAttribute('data-value'),
    macs: role('macs').getAttribute('data-value'),
    params: role('params').getAttribute('data-value'),
  };
  if (!out.error) {
    out.reads = {};
    for (const cell of root.querySelectorAll('[data-o]')) {
      over(cell);
      const lit = {};
      for (const inp of root.querySelectorAll('[data-i].cx-lit'))
        lit[inp.getAttribute('data-i')] = inp.getAttribute('data-tap');
      out.reads[cell.getAttribute('data-o')] = lit;
    }
    out.readers = {};
    for (const inp of root.querySelectorAll('[data-i]')) {
      over(inp);
      out.readers[inp.getAttribute('data-i')] =
        Array.from(root.querySelectorAll('[data-o].cx-reader'), (c) => c.getAttribute('data-o'));
    }
  }
  out.channels = {};
  out.channelReaders = {};
  if (root.querySelector('.cx-chan-link')) {
    for (const c of root.querySelectorAll('[data-cout]')) {
      over(c);
      out.channels[c.getAttribute('data-cout')] =
        Array.from(root.querySelectorAll('[data-cin].cx-lit'), (e) => Number(e.getAttribute('data-cin')));
    }
    for (const c of root.querySelectorAll('[data-cin]')) {
      over(c);
      out.channelReaders[c.getAttribute('data-cin')] =
        Array.from(root.querySelectorAll('[data-cout].cx-reader'),
                   (e) => Number(e.getAttribute('data-cout')));
    }
  }
  return out;
};
true;
"""


@pytest.fixture(scope="module")
def page_url(built_site):
    assert built_site.returncode == 0, "the book did not build: see tests/test_site.py"
    page = built_site.html / PAGE
    assert page.is_file(), f"{PAGE} is not in the built site"
    return page.as_uri()


@pytest.fixture(scope="module")
def browser():
    if not cdp_browser.available():
        pytest.skip(f"chromium not installed at {cdp_browser.CHROMIUM}: apt-get install chromium")
    with cdp_browser.Browser() as b:
        yield b


@pytest.fixture(scope="module")
def explorer(browser, page_url):
    page = browser.new_page(offline=True)
    page.goto(page_url)
    assert page.evaluate("document.querySelectorAll('.convlab-explorer .cx-svg').length") == 1
    page.evaluate(PROBE_JS)
    return page


def _index(text, nd):
    """'r,c' from the page as convlab's index tuple (1-D drops the row, always 0)."""
    values = tuple(int(v) for v in text.split(","))
    return values[-nd:] if nd == 1 else values


def compare(st, shown, ref):
    """Every difference between what the page shows and what convlab computes, as text."""
    problems = []
    if ref["error"] is not None:
        if shown["error"] != ref["error"]:
            problems.append(f"error: page {shown['error']!r}, convlab {ref['error']!r}")
        elif not shown["errorShown"]:
            problems.append("error: the message is set but not visible")
        return problems + check_code(shown, ref)
    if shown["error"] is not None:
        return [f"page shows error {shown['error']!r}, convlab computes {ref['out']}"]
    nd = st["dims"]
    out = tuple(int(v) for v in shown["out"].split(","))
    if out != ref["out"]:
        problems.append(f"output size: page {out}, convlab {ref['out']}")
        return problems
    reads = {
        _index(o, nd): {_index(i, nd): _index(t, nd) for i, t in lit.items()}
        for o, lit in shown["reads"].items()
    }
    if reads != ref["reads"]:
        wrong = [o for o in ref["reads"] if reads.get(o) != ref["reads"][o]]
        o = wrong[0] if wrong else None
        problems.append(
            f"reads differ at {len(wrong)} outputs, e.g. {o}: page {reads.get(o)}, "
            f"convlab {ref['reads'].get(o)}"
        )
    readers = {_index(i, nd): {_index(o, nd) for o in outs} for i, outs in shown["readers"].items()}
    expected = {}
    for o, lit in ref["reads"].items():
        for i in lit:
            expected.setdefault(i, set()).add(o)
    for i in readers:
        if readers[i] != expected.get(i, set()):
            problems.append(
                f"outputs lit by input {i}: page {readers[i]}, convlab {expected.get(i)}"
            )
            break
    if len(readers) != math.prod(spatial(st, "size")):
        problems.append(f"{len(readers)} input cells on the page, expected every input")
    for key in ("macs", "params"):
        if int(shown[key]) != ref[key]:
            problems.append(f"{key}: page {shown[key]}, convlab {ref[key]}")
    field = tuple(int(v) for v in shown["field"].split(","))
    if field != ref["field"]:
        problems.append(f"receptive field: page {field}, convlab {ref['field']}")
    if "channels" in ref:
        channels = {int(o): set(c) for o, c in shown["channels"].items()}
        if channels != ref["channels"]:
            problems.append(f"channels: page {channels}, convlab {ref['channels']}")
        back = {int(c): set(o) for c, o in shown["channelReaders"].items()}
        expected_back = {
            c: {o for o, cs in ref["channels"].items() if c in cs} for c in range(st["in_channels"])
        }
        if back != expected_back:
            problems.append(f"channel readers: page {back}, convlab {expected_back}")
    return problems + check_code(shown, ref)


def check_code(shown, ref):
    """Run the code the page prints: it must do what the page says (shape, counts or error)."""
    namespace = {}
    stated = re.search(r"^print\(y\.shape\)  # (.*)$", shown["code"], re.M)
    if ref["error"] is not None:
        expected = f"ValueError: {ref['error']}"
    else:
        expected = str((1, ref["out_channels"]) + ref["out"])
    if stated is None or stated.group(1) != expected:
        return [f"the printed code states {stated and stated.group(1)!r}, not {expected!r}"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints y.shape
            exec(shown["code"], namespace)  # the page's own text, built from the settings above
    except ValueError as exc:
        if str(exc) != ref["error"]:
            return [f"the printed code raises {exc!s:.200}, convlab {ref['error']!r}"]
        return []
    if ref["error"] is not None:
        return [f"the printed code runs, but convlab raises {ref['error']!r}"]
    problems = []
    if tuple(namespace["y"].shape[2:]) != ref["out"]:
        problems.append(f"the printed code gives shape {namespace['y'].shape}")
    if namespace["params"] != ref["params"]:
        problems.append(f"the printed code counts {namespace['params']} parameters")
    if "macs" in namespace and namespace["macs"] != ref["macs"]:
        problems.append(f"the printed code counts {namespace['macs']} MACs")
    return problems


# ------------------------------------------------------------------ the tests


def test_grid_has_hundreds_of_settings_including_illegal_ones():
    errors = sum(reference(st)["error"] is not None for _, st in SETTINGS)
    assert len(SETTINGS) >= 500
    assert 60 <= errors <= len(SETTINGS) // 2, errors
    kinds = {(st["dims"], st["mode"]) for _, st in SETTINGS}
    assert kinds == set(itertools.product((1, 2), ("conv", "transposed")))


def test_page_agrees_with_convlab_on_every_setting(explorer):
    """The whole grid in one test: one browser, one page, a few milliseconds per setting."""
    failures = []
    for name, st in SETTINGS:
        shown = explorer.evaluate(f"window.__cxProbe({_json(st)})")
        problems = compare(st, shown, reference(st))
        if problems:
            failures.append(f"{name} {st}:\n    " + "\n    ".join(problems))
    assert not failures, f"{len(failures)} of {len(SETTINGS)} settings differ:\n" + "\n".join(
        failures[:15]
    )
    assert explorer.errors == [], explorer.errors


@pytest.mark.parametrize("name", list(NAMED))
def test_named_setting(explorer, name):
    """The named cases one by one, so that a failure names its rule (``-k same``)."""
    st = NAMED[name]
    shown = explorer.evaluate(f"window.__cxProbe({_json(st)})")
    assert compare(st, shown, reference(st)) == []


def test_compare_notices_a_wrong_page(explorer):
    """The checker itself: a page that lies about a size, a read or a message is caught."""
    st = NAMED["depthwise"]
    shown = explorer.evaluate(f"window.__cxProbe({_json(st)})")
    ref = reference(st)
    assert compare(st, shown, ref) == []
    lying = dict(shown, out="9,9")
    assert any("output size" in p for p in compare(st, lying, ref))
    reads = {o: dict(lit) for o, lit in shown["reads"].items()}
    first = next(iter(reads))
    reads[first].popitem()
    assert any("reads differ" in p for p in compare(st, dict(shown, reads=reads), ref))
    bad = NAMED["same with stride 2"]
    shown_bad = explorer.evaluate(f"window.__cxProbe({_json(bad)})")
    ref_bad = reference(bad)
    assert compare(bad, dict(shown_bad, error=shown_bad["error"] + "!"), ref_bad)


def test_no_network_and_no_console_errors(explorer):
    """Opened from disk with the network off, the page asked for nothing else and logged nothing."""
    explorer.evaluate(f"window.__cxProbe({_json(NAMED['depthwise'])})")
    remote = [u for u in explorer.requests if not u.startswith(("file:", "data:"))]
    assert remote == []
    assert any(u.endswith("explorer.js") for u in explorer.requests)
    assert explorer.errors == []


KEYBOARD_JS = r"""
(() => {
  const el = document.activeElement;
  const root = document.querySelector('.convlab-explorer');
  if (!el || !root.contains(el)) return null;
  const name = el.getAttribute('aria-label') ||
    (el.labels && el.labels.length ? el.labels[0].textContent.trim() : '') ||
    (el.tagName === 'BUTTON' ? el.textContent.trim() : '');
  return {id: el.id || el.getAttribute('data-role') || el.getAttribute('class'), name: name};
})()
"""

CONTROLS_JS = r"""
Array.from(document.querySelectorAll('.convlab-explorer input, .convlab-explorer select, ' +
  '.convlab-explorer button, .convlab-explorer [tabindex="0"]'))
  .filter((el) => !el.disabled && el.getClientRects().length > 0)
  .map((el) => el.id || el.getAttribute('data-role') || el.getAttribute('class'))
"""


@pytest.mark.parametrize("dims, mode", [(2, "conv"), (1, "transposed")])
def test_every_control_is_reached_by_tab_and_labelled(browser, page_url, dims, mode):
    page = browser.new_page(offline=True)
    page.goto(page_url)
    page.evaluate(PROBE_JS)
    page.evaluate(f"window.__cxProbe({_json(setting(dims=dims, mode=mode, cin=4, cout=4))})")
    controls = page.evaluate(CONTROLS_JS)
    assert len(controls) >= 10
    page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    reached = {}
    for _ in range(200):
        page.press("Tab")
        focused = page.evaluate(KEYBOARD_JS)
        if focused:
            reached[focused["id"]] = focused["name"]
        if set(controls) <= set(reached):
            break
    assert set(controls) <= set(reached), f"not reachable by Tab: {set(controls) - set(reached)}"
    unnamed = [c for c, name in reached.items() if not name]
    assert unnamed == [], f"controls without a label: {unnamed}"
    assert page.errors == []


def test_arrow_keys_move_the_output_position(browser, page_url):
    page = browser.new_page(offline=True)
    page.goto(page_url)
    page.evaluate(PROBE_JS)
    page.evaluate(f"window.__cxProbe({_json(setting(size=5, kernel=3))})")
    page.evaluate(  # the probe hovered every cell: start from the first output again
        "document.querySelector('.convlab-explorer [data-o=\"0,0\"]')"
        ".dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))"
    )
    page.evaluate("document.querySelector('.convlab-explorer .cx-output').focus()")
    current = (
        "document.querySelector('.convlab-explorer [data-o].cx-current').getAttribute('data-o')"
    )
    first = page.evaluate(current)
    page.press("ArrowRight")
    page.press("ArrowDown")
    moved = page.evaluate(current)
    assert (first, moved) == ("0,0", "1,1")
    # the window follows: the lit input cells are those convlab's output (1, 1) reads
    lit = page.evaluate(
        "Array.from(document.querySelectorAll('.convlab-explorer [data-i].cx-lit'), "
        "(e) => e.getAttribute('data-i')).sort()"
    )
    expected = sorted(f"{r},{c}" for r, c in reference(setting(size=5, kernel=3))["reads"][(1, 1)])
    assert lit == expected


def _json(value):
    return json.dumps(value)


def test_first_state_comes_from_the_data_attributes(browser, page_url):
    """The embedding snippet sets the first state with data-* attributes (as the chapters will)."""
    page = browser.new_page(offline=True)
    page.goto(page_url)
    attrs = page.evaluate("Object.assign({}, document.querySelector('.convlab-explorer').dataset)")
    assert {"size", "kernel", "stride", "padding"} <= set(attrs)
    shown = page.evaluate(
        "document.querySelector('.convlab-explorer [data-role=\"out-size\"]').getAttribute('data-value')"
    )
    size = conv_output_size(
        int(attrs["size"]), int(attrs["kernel"]), int(attrs["stride"]), int(attrs["padding"])
    )
    assert shown == f"{size},{size}"
    # a transposed explorer with an output padding, as chapter 4's embedding will be
    page.evaluate(
        "(() => { const d = document.createElement('div'); d.className = 'convlab-explorer';"
        " d.id = 'second'; Object.assign(d.dataset, {mode: 'transposed', size: '3', kernel: '3',"
        " stride: '2', padding: '1', outputPadding: '1', inChannels: '4', groups: '2'});"
        " document.body.appendChild(d); window.convlabExplorer.start(); })()"
    )
    shown = page.evaluate(
        "document.querySelector('#second [data-role=\"out-size\"]').getAttribute('data-value')"
    )
    size = conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    assert shown == f"{size},{size}"
    ids = page.evaluate("Array.from(document.querySelectorAll('[id^=cx]'), (e) => e.id)")
    assert len(ids) == len(set(ids)), "two explorers on one page share element ids"
    assert page.errors == []

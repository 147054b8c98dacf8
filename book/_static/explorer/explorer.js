/* convlab's convolution explorer: runs in the reader's browser, no kernel, no network.
 *
 * Every element <div class="convlab-explorer"> on a page becomes one explorer. Optional data
 * attributes set the first state: data-dims="1|2", data-mode="conv|transposed", and any of the
 * parameter names below with dashes (data-kernel="3", data-stride="2,1", data-padding="same",
 * data-output-padding="1", data-in-channels="4", ...; "h,w" gives the two dimensions apart).
 *
 * The arithmetic mirrors convlab (convlab/shapes.py, convlab/conv.py, convlab/transposed.py): the
 * output sizes, which input each output reads through which tap, and the ValueError messages,
 * in the order convlab checks them. tests/test_explorer.py drives this page in headless Chromium
 * over hundreds of settings and compares what it shows with convlab computed in Python, so a
 * change on either side that makes them disagree fails the tests.
 *
 * Plain ES2017, no dependencies. Drawn as SVG; the DOM carries data-* attributes that say what
 * each cell is (tests read them):
 *   input cells   data-u="r,c" (row/column of the drawn grid), data-kind="input|pad|zero|crop",
 *                 data-i="r,c" on input cells (input coordinates), data-tap="a,b" while lit
 *   output cells  data-o="r,c"
 *   channels      data-cin="c", data-cout="c"
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";

  // Ranges of the controls: small enough to draw every cell at a readable size.
  var LIMITS = {
    size: [1, 12],
    kernel: [1, 5],
    stride: [1, 3],
    padding: [0, 3],
    dilation: [1, 3],
    output_padding: [0, 2],
    in_channels: [1, 8],
    out_channels: [1, 8],
    groups: [1, 8],
  };
  var PER_DIM = ["size", "kernel", "stride", "padding", "dilation", "output_padding"];
  var ROW_LABELS = {
    size: "input size",
    kernel: "kernel size",
    stride: "stride",
    padding: "padding",
    dilation: "dilation",
    output_padding: "output padding",
  };
  var CHANNEL_LABELS = { in_channels: "in channels", out_channels: "out channels", groups: "groups" };
  var DEFAULTS = {
    dims: 2,
    mode: "conv",
    padmode: "numbers",
    size: [5, 5],
    kernel: [3, 3],
    stride: [1, 1],
    padding: [0, 0],
    dilation: [1, 1],
    output_padding: [0, 0],
    in_channels: 2,
    out_channels: 2,
    groups: 1,
  };

  // ------------------------------------------------------------------ Python-style formatting

  /** A Python tuple repr: (3,) or (1, 2). */
  function pyTuple(values) {
    return values.length === 1 ? "(" + values[0] + ",)" : "(" + values.join(", ") + ")";
  }

  /** An int-or-tuple argument as a reader would write it: 2, or (2, 1) when they differ. */
  function pyArg(values) {
    for (var i = 1; i < values.length; i++) if (values[i] !== values[0]) return pyTuple(values);
    return String(values[0]);
  }

  function floorDiv(a, b) {
    return Math.floor(a / b);
  }

  function product(values) {
    return values.reduce(function (a, b) {
      return a * b;
    }, 1);
  }

  // ------------------------------------------------------------------ the arithmetic

  /** Per-dimension geometry of an ordinary convolution (padding already resolved to a pair). */
  function convDim(L, k, s, d, before, after) {
    var padded = L + before + after;
    var extent = d * (k - 1) + 1;
    var dim = { L: L, k: k, s: s, d: d, before: before, after: after, padded: padded, extent: extent };
    if (extent > padded) {
      // convlab.shapes._output_length
      dim.error =
        "kernel extent d*(k-1)+1 = " + d + "*(" + k + "-1)+1 = " + extent +
        " is larger than the padded input size " + L + " + " + before + " + " + after + " = " + padded;
      return dim;
    }
    dim.O = floorDiv(padded - extent, s) + 1;
    // the drawn grid is the padded input: u = j + before
    dim.cells = padded;
    dim.kindAt = function (u) {
      return u < before || u >= before + L ? "pad" : "input";
    };
    dim.croppedAt = function () {
      return false;
    };
    dim.inputAt = function (u) {
      return u - before;
    };
    dim.window = function (o) {
      // [u, tap] pairs in tap order: tap t of output o reads padded position o*s + t*d
      var taps = [];
      for (var t = 0; t < k; t++) taps.push([o * s + t * d, t]);
      return taps;
    };
    return dim;
  }

  /** Per-dimension geometry of a transposed convolution, drawn as the equivalent direct one.
   *
   * Output o = j*s - p + t*d receives input j through tap t (the scatter view). The same sums are
   * a stride-1 convolution over the input with s-1 zeros between neighbours and P = d(k-1) - p
   * zeros before it (a negative P crops), with the kernel rotated by 180 degrees: spread position
   * u = j*s + P is read by output o through the rotated tap t' = (u - o)/d, original tap k-1-t'.
   */
  function transposedDim(i, k, s, p, d, a) {
    var dim = { i: i, k: k, s: s, p: p, d: d, a: a };
    var O = (i - 1) * s - 2 * p + d * (k - 1) + a + 1;
    dim.O = O;
    var P = d * (k - 1) - p;
    var first = Math.min(0, P);
    var lastRead = O - 1 + d * (k - 1); // last spread position any window reaches
    var last = Math.max(lastRead, P + (i - 1) * s);
    dim.offset = -first; // drawn cell index = u + offset
    dim.cells = last - first + 1;
    dim.P = P;
    dim.kindAt = function (cell) {
      var r = cell - dim.offset - P;
      if (r >= 0 && r % s === 0 && r / s < i) return "input";
      if (r > 0 && r < (i - 1) * s) return "zero";
      return "pad";
    };
    // a padding p > d(k-1) crops: the spread input's ends lie outside every window
    dim.croppedAt = function (cell) {
      var u = cell - dim.offset;
      return u < 0 || u > lastRead;
    };
    dim.inputAt = function (cell) {
      return (cell - dim.offset - P) / s;
    };
    dim.window = function (o) {
      var taps = [];
      for (var t = 0; t < k; t++) taps.push([o + t * d + dim.offset, k - 1 - t]);
      return taps;
    };
    return dim;
  }

  /** Resolve padding like convlab.shapes.padding_pairs; returns [[before, after], ...] or an error. */
  function paddingPairs(state, strideTuple) {
    var n = state.dims;
    var pairs = [];
    for (var i = 0; i < n; i++) {
      var h = dimIndex(state, i);
      if (state.padmode === "valid") pairs.push([0, 0]);
      else if (state.padmode === "same") {
        var total = state.dilation[h] * (state.kernel[h] - 1);
        pairs.push([floorDiv(total, 2), total - floorDiv(total, 2)]);
      } else pairs.push([state.padding[h], state.padding[h]]);
    }
    if (state.padmode === "same" && strideTuple.some(function (v) { return v !== 1; })) {
      return {
        error:
          "padding='same' is only supported with stride 1 (as in PyTorch), got stride=" +
          pyTuple(strideTuple),
      };
    }
    return { pairs: pairs };
  }

  /** Index into the [H, W] parameter arrays of spatial dimension i (1-D uses the W column). */
  function dimIndex(state, i) {
    return state.dims === 1 ? 1 : i;
  }

  function spatial(state, name) {
    return state.dims === 1 ? [state[name][1]] : state[name].slice();
  }

  /** Everything the explorer shows, from the state: sizes, per-dimension maps, or the error. */
  function compute(state) {
    var r = { state: state, nd: state.dims, transposed: state.mode === "transposed" };
    var cin = state.in_channels;
    var cout = state.out_channels;
    var g = state.groups;
    var sizes = spatial(state, "size");
    var ks = spatial(state, "kernel");
    var ss = spatial(state, "stride");
    var ds = spatial(state, "dilation");
    r.sizes = sizes;
    r.ks = ks;
    var dims;
    if (!r.transposed) {
      // convlab.conv._prepare, in its order; conv1d runs as a height-1 conv2d, so its stride
      // appears in the 'same' message as the 2-tuple (1, s)
      var strideTuple = state.dims === 1 ? [1, ss[0]] : ss;
      var pp = paddingPairs(state, strideTuple);
      if (pp.error) return fail(r, pp.error);
      if (cout % g) {
        return fail(r, "out_channels (" + cout + ", weight.shape[0]) must be divisible by groups (" + g + ")");
      }
      if (cin % g) return fail(r, "in_channels (" + cin + ") must be divisible by groups (" + g + ")");
      dims = [];
      for (var i = 0; i < r.nd; i++) {
        var dim = convDim(sizes[i], ks[i], ss[i], ds[i], pp.pairs[i][0], pp.pairs[i][1]);
        if (dim.error) return fail(r, dim.error);
        dims.push(dim);
      }
      r.pairs = pp.pairs;
    } else {
      // convlab.transposed._prepare, in its order, then convlab.count_params's channel rule
      if (state.padmode !== "numbers") {
        return fail(
          r,
          "padding must be an int or a tuple of " + r.nd + " ints for a transposed convolution " +
            "(PyTorch has no 'same'/'valid' here; see convlab.shapes.tf_conv_transpose_output_size " +
            "for TensorFlow's conventions), got '" + state.padmode + "'"
        );
      }
      if (cin % g) return fail(r, "in_channels (" + cin + ") must be divisible by groups (" + g + ")");
      var ps = spatial(state, "padding");
      var as = spatial(state, "output_padding");
      for (var j = 0; j < r.nd; j++) {
        if (!(as[j] < ss[j] || as[j] < ds[j])) {
          return fail(
            r,
            "output_padding (" + as[j] + ") must be smaller than either stride (" + ss[j] +
              ") or dilation (" + ds[j] + "), as in PyTorch: it only adds the rows a strided " +
              "convolution may have dropped"
          );
        }
      }
      dims = [];
      for (var m = 0; m < r.nd; m++) {
        var td = transposedDim(sizes[m], ks[m], ss[m], ps[m], ds[m], as[m]);
        if (td.O <= 0) {
          return fail(
            r,
            "transposed convolution output size (i-1)*s - 2p + d*(k-1) + a + 1 = (" + sizes[m] +
              "-1)*" + ss[m] + " - 2*" + ps[m] + " + " + ds[m] + "*(" + ks[m] + "-1) + " + as[m] +
              " + 1 = " + td.O + " is not positive"
          );
        }
        dims.push(td);
      }
      if (cout % g) return fail(r, "out_channels (" + cout + ") must be divisible by groups (" + g + ")");
      r.ps = ps;
      r.as = as;
    }
    r.ss = ss;
    r.ds = ds;
    r.dims = dims;
    r.outSizes = dims.map(function (dd) {
      return dd.O;
    });
    // 2-D drawing always: a 1-D layer is one row
    r.rows = r.nd === 2 ? dims[0] : trivialDim();
    r.cols = dims[r.nd - 1];
    // which input (and tap) every output reads, per dimension; 2-D reads are products
    r.reads = [r.rows, r.cols].map(function (dd) {
      var lists = [];
      for (var o = 0; o < dd.O; o++) {
        lists.push(
          dd.window(o).filter(function (ut) {
            return ut[0] >= 0 && ut[0] < dd.cells && dd.kindAt(ut[0]) === "input";
          })
        );
      }
      return lists;
    });
    // MACs: convlab.count_macs for the convolution; for the transposed one every input value
    // times every tap of its group, which is count_macs of the convolution it transposes
    var taps = product(ks);
    if (!r.transposed) r.macs = cout * product(r.outSizes) * (cin / g) * taps;
    else r.macs = cin * product(sizes) * (cout / g) * taps;
    r.params = cout * (cin / g) * taps + cout; // convlab.count_params(..., bias=True)
    if (!r.transposed) {
      r.field = dims.map(function (dd) {
        return dd.extent;
      });
    } else {
      r.field = r.reads.slice(2 - r.nd).map(function (lists) {
        return Math.max.apply(null, lists.map(function (l) { return l.length; }));
      });
    }
    return r;
  }

  function trivialDim() {
    var dim = convDim(1, 1, 1, 1, 0, 0);
    return dim;
  }

  function fail(r, message) {
    r.error = message;
    return r;
  }

  // ------------------------------------------------------------------ text: formula and call

  function formulaLines(r) {
    var names = r.nd === 2 ? ["H", "W"] : ["L"];
    var lines = [];
    r.dims.forEach(function (dd, i) {
      var n = names[i];
      if (!r.transposed) {
        lines.push(
          n + "_out = ⌊(" + n + " + p_before + p_after − d·(k−1) − 1) / s⌋ + 1 = ⌊(" + dd.L + " + " +
            dd.before + " + " + dd.after + " − " + dd.d + "·(" + dd.k + "−1) − 1) / " + dd.s +
            "⌋ + 1 = " + dd.O
        );
      } else {
        lines.push(
          n + "_out = (" + n + " − 1)·s − 2p + d·(k−1) + output_padding + 1 = (" + dd.i + " − 1)·" +
            dd.s + " − 2·" + dd.p + " + " + dd.d + "·(" + dd.k + "−1) + " + dd.a + " + 1 = " + dd.O
        );
      }
    });
    return lines;
  }

  function callText(state, r) {
    var nd = state.dims;
    var cin = state.in_channels;
    var cout = state.out_channels;
    var g = state.groups;
    var sizes = spatial(state, "size");
    var ks = spatial(state, "kernel");
    var ss = spatial(state, "stride");
    var ds = spatial(state, "dilation");
    var ps = spatial(state, "padding");
    var as = spatial(state, "output_padding");
    var pad = state.padmode === "numbers" ? pyArg(ps) : "'" + state.padmode + "'";
    var fn = (state.mode === "transposed" ? "conv_transpose" : "conv") + nd + "d";
    var layer = (state.mode === "transposed" ? "ConvTranspose" : "Conv") + nd + "d";
    var xShape = [1, cin].concat(sizes);
    var xDoc = nd === 2 ? "(N, C_in, H, W)" : "(N, C_in, L)";
    var kDoc = nd === 2 ? "kH, kW" : "k";
    var wShape, wDoc, args;
    if (state.mode === "transposed") {
      wShape = [cin, Math.max(1, floorDiv(cout, g))].concat(ks);
      wDoc = "(C_in, C_out/groups, " + kDoc + ")";
      args =
        "stride=" + pyArg(ss) + ", padding=" + pad + ", output_padding=" + pyArg(as) +
        ", groups=" + g + ", dilation=" + pyArg(ds);
    } else {
      wShape = [cout, Math.max(1, floorDiv(cin, g))].concat(ks);
      wDoc = "(C_out, C_in/groups, " + kDoc + ")";
      args = "stride=" + pyArg(ss) + ", padding=" + pad + ", dilation=" + pyArg(ds) + ", groups=" + g;
    }
    var kernelArg = nd === 1 ? pyTuple(ks) : pyTuple(ks);
    var result = r.error ? "# ValueError: " + r.error : "# " + pyTuple([1, cout].concat(r.outSizes));
    var lines = [
      "import numpy as np",
      "import convlab",
      "",
      "x = np.ones(" + pyTuple(xShape) + ")  # " + xDoc,
      "w = np.ones(" + pyTuple(wShape) + ")  # " + wDoc,
      "y = convlab." + fn + "(x, w, " + args + ")",
      "print(y.shape)  " + result,
      "params = convlab.count_params(" + cin + ", " + cout + ", " + kernelArg + ", groups=" + g + ")",
    ];
    if (state.mode !== "transposed") {
      lines.push(
        "macs = convlab.count_macs(" + cin + ", " + cout + ", " + kernelArg + ", " +
          (nd === 1 ? sizes[0] : pyTuple(sizes)) + ", stride=" + pyArg(ss) + ", padding=" + pad +
          ", dilation=" + pyArg(ds) + ", groups=" + g + ")"
      );
    }
    lines.push("");
    lines.push("# the same layer in PyTorch:");
    var torchArgs =
      state.mode === "transposed"
        ? "stride=" + pyArg(ss) + ", padding=" + pad + ", output_padding=" + pyArg(as) +
          ", groups=" + g + ", dilation=" + pyArg(ds)
        : "stride=" + pyArg(ss) + ", padding=" + pad + ", dilation=" + pyArg(ds) + ", groups=" + g;
    lines.push(
      "# torch.nn." + layer + "(" + cin + ", " + cout + ", kernel_size=" + pyArg(ks) + ", " +
        torchArgs + ", bias=False)"
    );
    return lines.join("\n");
  }

  // ------------------------------------------------------------------ DOM helpers

  function h(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function s(tag, attrs, parent, text) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (key) {
      if (attrs[key] !== undefined && attrs[key] !== null) node.setAttribute(key, attrs[key]);
    });
  }

  // ------------------------------------------------------------------ one explorer

  function Explorer(root) {
    this.root = root;
    // ids stay unique when a page loads this script once per embedded explorer
    window.convlabExplorerCount = (window.convlabExplorerCount || 0) + 1;
    this.id = "cx" + window.convlabExplorerCount;
    this.state = initialState(root.dataset);
    this.position = [0, 0];
    this.timer = null;
    this.build();
    this.update();
    var self = this;
    window.addEventListener("resize", function () {
      var narrow = self.root.clientWidth > 0 && self.root.clientWidth < 560;
      if (narrow !== self.narrow && !self.result.error) self.render();
    });
  }

  function initialState(data) {
    var st = JSON.parse(JSON.stringify(DEFAULTS));
    if (data.dims) st.dims = data.dims === "1" ? 1 : 2;
    if (data.mode === "transposed") st.mode = "transposed";
    // data-output-padding="1" arrives as dataset.outputPadding
    var camel = function (name) {
      return name.replace(/_([a-z])/g, function (m, c) {
        return c.toUpperCase();
      });
    };
    PER_DIM.forEach(function (name) {
      var v = data[camel(name)];
      if (v === undefined) return;
      if (name === "padding" && (v === "same" || v === "valid")) {
        st.padmode = v;
        return;
      }
      var parts = String(v).split(",").map(Number);
      st[name] = parts.length === 1 ? [parts[0], parts[0]] : [parts[0], parts[1]];
    });
    ["in_channels", "out_channels", "groups"].forEach(function (name) {
      var v = data[camel(name)];
      if (v !== undefined) st[name] = Number(v);
    });
    return st;
  }

  Explorer.prototype.build = function () {
    var self = this;
    var root = this.root;
    root.textContent = "";
    root.classList.add("cx");
    var form = h("form", { class: "cx-controls", "aria-label": "convolution settings" }, root);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
    });
    this.form = form;

    var top = h("div", { class: "cx-row" }, form);
    this.select(top, "dims", "dimensions", [["2", "2-D"], ["1", "1-D"]]);
    this.select(top, "mode", "layer", [["conv", "convolution"], ["transposed", "transposed convolution"]]);
    this.select(top, "padmode", "padding", [["numbers", "numbers"], ["same", "'same'"], ["valid", "'valid'"]]);

    var table = h("table", { class: "cx-table" }, form);
    var head = h("tr", null, h("thead", null, table));
    h("th", { scope: "col" }, head, "");
    this.colHeads = [h("th", { scope: "col", "data-dim": "0" }, head, "height"), h("th", { scope: "col", "data-dim": "1" }, head, "width")];
    var body = h("tbody", null, table);
    this.inputs = {};
    this.rowsByName = {};
    PER_DIM.forEach(function (name) {
      var tr = h("tr", { "data-row": name }, body);
      self.rowsByName[name] = tr;
      h("th", { scope: "row" }, tr, ROW_LABELS[name]);
      self.inputs[name] = [0, 1].map(function (dimI) {
        var td = h("td", { "data-dim": String(dimI) }, tr);
        var label = h("label", { class: "cx-field" }, td);
        var hidden = h("span", { class: "cx-sr" }, label);
        var input = h(
          "input",
          {
            type: "number",
            min: LIMITS[name][0],
            max: LIMITS[name][1],
            step: 1,
            "data-param": name,
            "data-dim": String(dimI),
            id: self.id + "-" + name + "-" + dimI,
          },
          label
        );
        input._hidden = hidden;
        return input;
      });
    });

    var chans = h("div", { class: "cx-row cx-channels" }, form);
    ["in_channels", "out_channels", "groups"].forEach(function (name) {
      var label = h("label", { class: "cx-field" }, chans);
      h("span", null, label, CHANNEL_LABELS[name] + " ");
      self.inputs[name] = [
        h(
          "input",
          { type: "number", min: LIMITS[name][0], max: LIMITS[name][1], step: 1, "data-param": name, id: self.id + "-" + name },
          label
        ),
      ];
    });
    this.button(chans, "standard", "groups = 1: every output channel reads every input channel", function () {
      self.state.groups = 1;
      self.sync();
    });
    this.button(chans, "depthwise", "groups = in channels: each input channel is convolved on its own", function () {
      var st = self.state;
      st.groups = st.in_channels;
      if (st.out_channels % st.in_channels) st.out_channels = st.in_channels;
      self.sync();
    });

    var moves = h("div", { class: "cx-row" }, form);
    this.playButton = this.button(moves, "play", "slide the kernel over every output position", function () {
      self.togglePlay();
    });
    this.playButton.setAttribute("aria-pressed", "false");
    this.button(moves, "next position", "move to the next output position", function () {
      self.step(1);
    });
    h(
      "span",
      { class: "cx-hint" },
      moves,
      "Hover (or focus the output and use the arrow keys): an output shows its window, an input the outputs that read it."
    );

    // every change re-reads the whole form: one event after setting several fields is enough
    form.addEventListener("input", function () {
      self.readControls();
    });
    form.addEventListener("change", function () {
      self.readControls();
      self.writeControls(); // show the clamped values of what was typed
    });

    this.errorBox = h("p", { class: "cx-error", role: "alert", "data-role": "error", hidden: "" }, root);
    this.figure = h("div", { class: "cx-figure" }, root);
    this.legend = h("div", { class: "cx-legend", "aria-hidden": "true" }, root);
    this.channelFigure = h("div", { class: "cx-channel-figure" }, root);
    var info = h("dl", { class: "cx-info" }, root);
    this.outSize = this.infoItem(info, "output size", "out-size");
    this.formula = this.infoItem(info, "formula", "formula");
    this.field = this.infoItem(info, "receptive field", "field");
    this.macs = this.infoItem(info, "multiply-accumulates", "macs");
    this.params = this.infoItem(info, "parameters", "params");
    h("p", { class: "cx-code-title" }, root, "The call that computes this layer (convlab), and PyTorch's:");
    this.code = h("pre", { class: "cx-code", "data-role": "code", tabindex: "0", "aria-label": "the convlab and PyTorch call" }, root);
  };

  Explorer.prototype.select = function (parent, name, labelText, options) {
    var label = h("label", { class: "cx-field" }, parent);
    h("span", null, label, labelText + " ");
    var select = h("select", { "data-param": name, id: this.id + "-" + name }, label);
    options.forEach(function (opt) {
      h("option", { value: opt[0] }, select, opt[1]);
    });
    this.selects = this.selects || {};
    this.selects[name] = select;
    return select;
  };

  Explorer.prototype.button = function (parent, text, title, onClick) {
    var b = h("button", { type: "button", class: "cx-button", title: title }, parent, text);
    b.addEventListener("click", onClick);
    return b;
  };

  Explorer.prototype.infoItem = function (dl, term, role) {
    h("dt", null, dl, term);
    return h("dd", { "data-role": role }, dl);
  };

  /** Read every control into the state (clamped to its range), then redraw. */
  Explorer.prototype.readControls = function () {
    var st = this.state;
    st.dims = Number(this.selects.dims.value) === 1 ? 1 : 2;
    st.mode = this.selects.mode.value === "transposed" ? "transposed" : "conv";
    st.padmode = this.selects.padmode.value;
    var inputs = this.inputs;
    Object.keys(inputs).forEach(function (name) {
      var lim = LIMITS[name];
      inputs[name].forEach(function (input, i) {
        var v = Math.round(Number(input.value));
        if (input.value === "" || !isFinite(v)) v = lim[0];
        v = Math.min(lim[1], Math.max(lim[0], v));
        if (PER_DIM.indexOf(name) >= 0) st[name][i] = v;
        else st[name] = v;
      });
    });
    this.update();
  };

  Explorer.prototype.sync = function () {
    this.writeControls();
    this.update();
  };

  Explorer.prototype.writeControls = function () {
    var st = this.state;
    var self = this;
    this.selects.dims.value = String(st.dims);
    this.selects.mode.value = st.mode;
    this.selects.padmode.value = st.padmode;
    var dimNames = st.dims === 2 ? ["height", "width"] : ["", "length"];
    PER_DIM.forEach(function (name) {
      self.inputs[name].forEach(function (input, i) {
        if (String(input.value) !== String(st[name][i])) input.value = st[name][i];
        input._hidden.textContent = ROW_LABELS[name] + " (" + dimNames[i] + ")";
        var td = input.parentNode.parentNode;
        td.hidden = st.dims === 1 && i === 0;
        input.disabled = name === "padding" && st.padmode !== "numbers";
      });
    });
    this.colHeads[0].hidden = st.dims === 1;
    this.colHeads[1].textContent = st.dims === 1 ? "length" : "width";
    this.rowsByName.output_padding.hidden = st.mode !== "transposed";
    ["in_channels", "out_channels", "groups"].forEach(function (name) {
      var input = self.inputs[name][0];
      if (String(input.value) !== String(st[name])) input.value = st[name];
    });
  };

  Explorer.prototype.update = function () {
    this.writeControls();
    this.result = compute(this.state);
    var r = this.result;
    if (!r.error) {
      this.position = [
        Math.min(this.position[0], r.rows.O - 1),
        Math.min(this.position[1], r.cols.O - 1),
      ];
    } else this.stopPlay();
    this.render();
  };

  Explorer.prototype.render = function () {
    var r = this.result;
    var st = this.state;
    this.errorBox.hidden = !r.error;
    this.errorBox.textContent = "";
    if (r.error) {
      h("span", { class: "cx-error-type" }, this.errorBox, "ValueError: ");
      h("span", { "data-role": "error-message" }, this.errorBox, r.error);
    }
    this.code.textContent = callText(st, r);
    this.drawChannels(r);
    if (r.error) {
      this.figure.textContent = "";
      this.legend.textContent = "";
      this.outSize.textContent = "— (convlab raises the ValueError above)";
      this.outSize.removeAttribute("data-value");
      [this.formula, this.field, this.macs, this.params].forEach(function (dd) {
        dd.textContent = "—";
        dd.removeAttribute("data-value");
      });
      return;
    }
    this.outSize.textContent = r.outSizes.join(" × ") + (r.nd === 2 ? " (height × width)" : " (length)");
    this.outSize.setAttribute("data-value", r.outSizes.join(","));
    this.formula.textContent = "";
    formulaLines(r).forEach(function (line) {
      h("span", { class: "cx-formula-line" }, this.formula, line);
    }, this);
    var fieldText = r.field.join(" × ");
    if (!r.transposed) {
      var along = r.nd === 2 ? [" along the height", " along the width"] : [""];
      this.field.textContent =
        fieldText + " padded-input positions per output: d·(k−1)+1 = " +
        r.dims.map(function (dd, i) {
          return dd.d + "·(" + dd.k + "−1)+1 = " + dd.extent + along[i];
        }).join(", ");
    } else {
      this.field.textContent =
        "each output reads at most " + fieldText +
        " input values (taps that land on inserted zeros or padding add nothing)";
    }
    this.field.setAttribute("data-value", r.field.join(","));
    var c = st;
    var macFormula = !r.transposed
      ? "C_out · " + (r.nd === 2 ? "H_out · W_out" : "L_out") + " · C_in/groups · " + (r.nd === 2 ? "kH · kW" : "k") + " = " +
        c.out_channels + " · " + r.outSizes.join(" · ") + " · " + c.in_channels / c.groups + " · " + r.ks.join(" · ")
      : "C_in · " + (r.nd === 2 ? "H · W" : "L") + " · C_out/groups · " + (r.nd === 2 ? "kH · kW" : "k") + " = " +
        c.in_channels + " · " + r.sizes.join(" · ") + " · " + c.out_channels / c.groups + " · " + r.ks.join(" · ") +
        " (every input value times every tap of its group, as in the convolution it transposes)";
    this.macs.textContent = r.macs.toLocaleString("en-US") + " = " + macFormula;
    this.macs.setAttribute("data-value", String(r.macs));
    this.params.textContent = r.params.toLocaleString("en-US") + " weights and biases";
    this.params.setAttribute("data-value", String(r.params));
    this.drawGrids(r);
  };

  // ------------------------------------------------------------------ drawing

  var CELL = 28;
  var GAP = 40;
  var MARGIN = 22;

  Explorer.prototype.drawGrids = function (r) {
    var self = this;
    this.figure.textContent = "";
    var rows = r.rows;
    var cols = r.cols;
    var one = r.nd === 1;
    var inW = cols.cells * CELL;
    var inH = rows.cells * CELL;
    var outW = cols.O * CELL;
    var outH = rows.O * CELL;
    var width, height, outX, outY;
    var inTitle = r.transposed ? "input: zeros inserted, padded" : "input (padded)";
    var titleWidth = inTitle.length * 6.5; // 12px text
    // on a narrow screen (a phone) the 2-D output goes below the input, so both stay legible
    this.narrow = this.root.clientWidth > 0 && this.root.clientWidth < 560;
    if (one || this.narrow) {
      width = Math.max(inW, outW, titleWidth) + 2 * MARGIN;
      outX = MARGIN;
      outY = MARGIN + 18 + inH + (one ? 2 * CELL : 34);
      height = outY + outH + MARGIN;
    } else {
      var inBlock = Math.max(inW, titleWidth);
      width = inBlock + GAP + outW + 2 * MARGIN;
      outX = MARGIN + inBlock + GAP;
      outY = MARGIN + 18;
      height = Math.max(inH, outH) + 2 * MARGIN + 18;
    }
    var svg = s("svg", {
      class: "cx-svg",
      viewBox: "0 0 " + width + " " + height,
      role: "group",
      "aria-label": "input and output grids",
    }, this.figure);
    svg.style.maxWidth = Math.max(width, 320) * 1.15 + "px";
    var defs = s("defs", null, svg);
    var pat = s("pattern", { id: this.id + "-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    s("rect", { width: 6, height: 6, fill: "#e3e3e3" }, pat);
    s("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#a9a9a9", "stroke-width": 2 }, pat);

    s("text", { x: MARGIN, y: MARGIN + 8, class: "cx-title" }, svg, inTitle);
    var inGroup = s("g", { class: "cx-input", transform: "translate(" + MARGIN + "," + (MARGIN + 18) + ")" }, svg);
    this.inCells = [];
    for (var a = 0; a < rows.cells; a++) {
      var rowCells = [];
      for (var b = 0; b < cols.cells; b++) {
        var kind = combineKinds(rows.kindAt(a), cols.kindAt(b));
        var cropped = rows.croppedAt(a) || cols.croppedAt(b);
        var attrs = {
          x: b * CELL,
          y: a * CELL,
          width: CELL,
          height: CELL,
          class: "cx-cell cx-" + kind + (cropped ? " cx-cropped" : ""),
          "data-u": a + "," + b,
          "data-kind": kind,
        };
        if (kind === "pad") attrs.fill = "url(#" + this.id + "-hatch)";
        if (kind === "input") attrs["data-i"] = rows.inputAt(a) + "," + cols.inputAt(b);
        var g = s("g", { class: "cx-cellgroup" }, inGroup);
        var rect = s("rect", attrs, g);
        var label = s("text", { x: b * CELL + CELL / 2, y: a * CELL + CELL / 2 + 4, class: "cx-tap" }, g, "");
        rowCells.push({ rect: rect, label: label, kind: kind });
      }
      this.inCells.push(rowCells);
    }
    var outTitle = "output";
    var outTitleY = one || this.narrow ? outY - 8 : MARGIN + 8;
    s("text", { x: outX, y: outTitleY, class: "cx-title" }, svg, outTitle);
    var outGroup = s("g", {
      class: "cx-output",
      transform: "translate(" + outX + "," + outY + ")",
      tabindex: "0",
      role: "grid",
      "aria-label": "output positions: use the arrow keys to move",
    }, svg);
    this.outGroup = outGroup;
    this.outCells = [];
    for (var oa = 0; oa < rows.O; oa++) {
      var orow = [];
      for (var ob = 0; ob < cols.O; ob++) {
        orow.push(
          s("rect", {
            x: ob * CELL,
            y: oa * CELL,
            width: CELL,
            height: CELL,
            class: "cx-cell cx-out",
            "data-o": oa + "," + ob,
          }, outGroup)
        );
      }
      this.outCells.push(orow);
    }
    this.links = s("g", { class: "cx-links" }, svg);
    this.linkGeometry = { one: one, outX: outX, outY: outY, inX: MARGIN, inY: MARGIN + 18 };

    svg.addEventListener("mouseover", function (e) {
      var t = e.target;
      if (t.hasAttribute("data-o")) {
        var p = t.getAttribute("data-o").split(",").map(Number);
        self.position = p;
        self.showPosition();
      } else if (t.hasAttribute("data-i")) {
        self.showReaders(t.getAttribute("data-u").split(",").map(Number));
      }
    });
    svg.addEventListener("mouseleave", function () {
      self.showPosition();
    });
    outGroup.addEventListener("keydown", function (e) {
      var moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
      var m = moves[e.key];
      if (!m) return;
      e.preventDefault();
      self.position = [
        Math.min(r.rows.O - 1, Math.max(0, self.position[0] + m[0])),
        Math.min(r.cols.O - 1, Math.max(0, self.position[1] + m[1])),
      ];
      self.showPosition();
    });
    outGroup.addEventListener("focus", function () {
      self.showPosition();
    });
    this.drawLegend(r, inGroup.querySelector(".cx-cropped") !== null);
    this.showPosition();
  };

  function combineKinds(a, b) {
    var order = ["pad", "zero", "input"];
    for (var i = 0; i < order.length; i++) if (a === order[i] || b === order[i]) return order[i];
    return "input";
  }

  Explorer.prototype.mark = function (node, cls) {
    node.classList.add(cls);
    this.marked.push(node);
  };

  Explorer.prototype.clearMarks = function () {
    (this.marked || []).forEach(function (node) {
      node.classList.remove("cx-lit", "cx-source", "cx-current", "cx-reader");
      node.removeAttribute("data-tap");
    });
    (this.labelled || []).forEach(function (label) {
      label.textContent = "";
    });
    this.marked = [];
    this.labelled = [];
    this.links.textContent = "";
  };

  /** Light the window of the current output: every tap, with its kernel index. */
  Explorer.prototype.showPosition = function () {
    var r = this.result;
    if (r.error || !this.inCells) return;
    this.clearMarks();
    var p = this.position;
    this.mark(this.outCells[p[0]][p[1]], "cx-current");
    var rowTaps = r.rows.window(p[0]);
    var colTaps = r.cols.window(p[1]);
    var one = r.nd === 1;
    var lg = this.linkGeometry;
    for (var a = 0; a < rowTaps.length; a++) {
      for (var b = 0; b < colTaps.length; b++) {
        var ua = rowTaps[a][0];
        var ub = colTaps[b][0];
        var cell = this.inCells[ua] && this.inCells[ua][ub];
        if (!cell) continue;
        var tap = one ? String(colTaps[b][1]) : rowTaps[a][1] + "," + colTaps[b][1];
        this.mark(cell.rect, "cx-lit");
        cell.rect.setAttribute("data-tap", tap);
        cell.label.textContent = tap;
        this.labelled.push(cell.label);
        if (one) {
          s("line", {
            x1: lg.inX + ub * CELL + CELL / 2,
            y1: lg.inY + CELL,
            x2: lg.outX + p[1] * CELL + CELL / 2,
            y2: lg.outY,
            class: cell.kind === "input" ? "cx-link" : "cx-link cx-link-zero",
          }, this.links);
        }
      }
    }
  };

  /** Light every output that reads the input cell at drawn position u (the other direction). */
  Explorer.prototype.showReaders = function (u) {
    var r = this.result;
    this.clearMarks();
    var source = this.inCells[u[0]][u[1]];
    this.mark(source.rect, "cx-source");
    var readersRows = readersOf(r.reads[0], u[0]);
    var readersCols = readersOf(r.reads[1], u[1]);
    var lg = this.linkGeometry;
    for (var a = 0; a < readersRows.length; a++) {
      for (var b = 0; b < readersCols.length; b++) {
        var oa = readersRows[a][0];
        var ob = readersCols[b][0];
        this.mark(this.outCells[oa][ob], "cx-reader");
        if (r.nd === 1) {
          s("line", {
            x1: lg.inX + u[1] * CELL + CELL / 2,
            y1: lg.inY + CELL,
            x2: lg.outX + ob * CELL + CELL / 2,
            y2: lg.outY,
            class: "cx-link cx-link-reader",
          }, this.links);
        }
      }
    }
  };

  function readersOf(lists, u) {
    var found = [];
    lists.forEach(function (list, o) {
      list.forEach(function (ut) {
        if (ut[0] === u) found.push([o, ut[1]]);
      });
    });
    return found;
  }

  Explorer.prototype.drawLegend = function (r, cropped) {
    var lg = this.legend;
    lg.textContent = "";
    var items = [["cx-input", "input value"], ["cx-pad", "padding (zero)"]];
    if (r.transposed) items.push(["cx-zero", "inserted zero"]);
    if (cropped) items.push(["cx-cropped", "cropped (padding p > d·(k−1)): read by no output"]);
    items.push(["cx-lit", "window of the current output (kernel tap index)"], ["cx-out", "output"], ["cx-current", "current output"], ["cx-reader", "outputs that read the hovered input"]);
    items.forEach(function (item) {
      var span = h("span", { class: "cx-key" }, lg);
      h("span", { class: "cx-swatch " + item[0] }, span);
      h("span", null, span, item[1]);
    });
    if (r.transposed) {
      h("span", { class: "cx-note" }, lg, "Tap labels are the weight's own indices: the equivalent convolution reads the kernel rotated by 180°.");
    }
  };

  Explorer.prototype.drawChannels = function (r) {
    var fig = this.channelFigure;
    fig.textContent = "";
    var st = this.state;
    var cin = st.in_channels;
    var cout = st.out_channels;
    var g = st.groups;
    var ok = cin % g === 0 && cout % g === 0;
    var box = 26;
    var pitch = 34;
    var n = Math.max(cin, cout);
    var width = 360;
    var height = n * pitch + 34;
    var svg = s("svg", { class: "cx-channel-svg", viewBox: "0 0 " + width + " " + height, role: "group", "aria-label": "channels and groups" }, fig);
    svg.style.maxWidth = width + "px";
    s("text", { x: 20, y: 14, class: "cx-title" }, svg, "input channels");
    s("text", { x: width - 20, y: 14, class: "cx-title", "text-anchor": "end" }, svg, "output channels");
    var yIn = function (c) {
      return 24 + (n - cin) * pitch / 2 + c * pitch;
    };
    var yOut = function (c) {
      return 24 + (n - cout) * pitch / 2 + c * pitch;
    };
    var lines = s("g", null, svg);
    var palette = ["#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#d6616b", "#8c6d31", "#17becf"];
    var ins = [];
    var outs = [];
    var links = [];
    var c;
    if (ok) {
      for (var o = 0; o < cout; o++) {
        var grp = Math.floor(o / (cout / g));
        for (c = grp * (cin / g); c < (grp + 1) * (cin / g); c++) {
          links.push({
            o: o,
            c: c,
            el: s("line", { x1: 40 + box, y1: yIn(c) + box / 2, x2: width - 40 - box, y2: yOut(o) + box / 2, stroke: palette[grp % palette.length], class: "cx-chan-link" }, lines),
          });
        }
      }
    }
    for (c = 0; c < cin; c++) {
      ins.push(s("rect", { x: 40, y: yIn(c), width: box, height: box, class: "cx-chan cx-input", "data-cin": c }, svg));
      s("text", { x: 32, y: yIn(c) + box / 2 + 4, class: "cx-chan-label", "text-anchor": "end" }, svg, String(c));
    }
    for (c = 0; c < cout; c++) {
      outs.push(s("rect", { x: width - 40 - box, y: yOut(c), width: box, height: box, class: "cx-chan cx-out", "data-cout": c }, svg));
      s("text", { x: width - 32, y: yOut(c) + box / 2 + 4, class: "cx-chan-label" }, svg, String(c));
    }
    var caption = ok
      ? groupsCaption(cin, cout, g)
      : "groups must divide both channel counts";
    h("p", { class: "cx-chan-caption", "data-role": "channels" }, fig, caption);
    function clear() {
      ins.concat(outs).forEach(function (e) {
        e.classList.remove("cx-lit", "cx-reader", "cx-current", "cx-source");
      });
      links.forEach(function (l) {
        l.el.classList.remove("cx-chan-link-on");
      });
    }
    svg.addEventListener("mouseover", function (e) {
      var t = e.target;
      clear();
      if (t.hasAttribute("data-cout")) {
        var o = Number(t.getAttribute("data-cout"));
        t.classList.add("cx-current");
        links.forEach(function (l) {
          if (l.o === o) {
            ins[l.c].classList.add("cx-lit");
            l.el.classList.add("cx-chan-link-on");
          }
        });
      } else if (t.hasAttribute("data-cin")) {
        var ci = Number(t.getAttribute("data-cin"));
        t.classList.add("cx-source");
        links.forEach(function (l) {
          if (l.c === ci) {
            outs[l.o].classList.add("cx-reader");
            l.el.classList.add("cx-chan-link-on");
          }
        });
      }
    });
    svg.addEventListener("mouseleave", clear);
  };

  function groupsCaption(cin, cout, g) {
    var kind = g === 1 ? "standard" : g === cin ? "depthwise" : "grouped";
    return (
      kind + ": " + g + " group" + (g > 1 ? "s" : "") + "; each output channel reads " + cin / g +
      " of the " + cin + " input channels, each input channel feeds " + cout / g + " output channel" +
      (cout / g > 1 ? "s" : "")
    );
  }

  // ------------------------------------------------------------------ playing

  Explorer.prototype.step = function (delta) {
    var r = this.result;
    if (r.error) return;
    var n = r.rows.O * r.cols.O;
    var flat = (this.position[0] * r.cols.O + this.position[1] + delta + n) % n;
    this.position = [Math.floor(flat / r.cols.O), flat % r.cols.O];
    this.showPosition();
  };

  Explorer.prototype.togglePlay = function () {
    if (this.timer) this.stopPlay();
    else {
      var self = this;
      this.timer = window.setInterval(function () {
        self.step(1);
      }, 700);
      this.playButton.textContent = "pause";
      this.playButton.setAttribute("aria-pressed", "true");
    }
  };

  Explorer.prototype.stopPlay = function () {
    if (this.timer) window.clearInterval(this.timer);
    this.timer = null;
    if (this.playButton) {
      this.playButton.textContent = "play";
      this.playButton.setAttribute("aria-pressed", "false");
    }
  };

  // ------------------------------------------------------------------ start

  function start() {
    var roots = document.querySelectorAll(".convlab-explorer");
    window.convlabExplorers = window.convlabExplorers || [];
    for (var i = 0; i < roots.length; i++) {
      if (roots[i]._explorer) continue;
      roots[i]._explorer = new Explorer(roots[i]);
      window.convlabExplorers.push(roots[i]._explorer);
    }
  }

  // exposed for tests and for pages that add an explorer later
  window.convlabExplorer = { start: start, compute: compute, LIMITS: LIMITS };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

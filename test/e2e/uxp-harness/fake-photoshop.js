/*
 * Fake require('photoshop') and require('uxp') for running plugin-uxp/index.html (and its real bundle,
 * plugin-uxp/dist/index.js, with the real UxpPhotoshopHost) in Chromium. Injected by test/e2e/uxp-plugin.test.ts
 * with Playwright's addInitScript, after `window.__LL_FIXTURE = { width, height, rgba: base64 }`.
 *
 * Backed by real pixels: every layer is a document-sized RGBA buffer (plus an optional document-sized user mask),
 * the selection a document-sized 0..255 buffer. It fakes exactly the surface plugin-uxp/src/photoshop-host.ts and
 * index.ts use, with Photoshop's documented behaviour, strictly (see test/unit/plugin-uxp/fake-photoshop.ts):
 * half-open bounds; getPixels/getSelection trim to where data is and report the trimmed bounds; writes only inside
 * executeAsModal, one modal scope at a time (error number 9 otherwise); new pixel layers appear at the top of the
 * stack; putLayerMask needs a mask (made with the batchPlay 'make channel' descriptor); unknown batchPlay
 * descriptors answer {_obj:'error'} and are recorded in `__fakePs.problems`.
 *
 * `window.__fakePs` exposes the state to the test (dump(), select(), setEllipseSelection()) and draws the document
 * (layers composited through their masks) next to the panel, so screenshots show what Photoshop would.
 */
(() => {
  const W = 160;
  const H = 140;
  const PROFILE = 'sRGB IEC61966-2.1';
  const problems = [];
  const writes = [];
  let nextLayerId = 2;
  let modal = false;
  let nextSuspension = 1;
  let xmpPacket = '';

  const fail = (msg) => {
    problems.push(msg);
    throw new Error(msg);
  };
  const requireModal = (what) => {
    if (!modal) fail(`${what}: only allowed from inside a modal scope (executeAsModal)`);
  };
  const plain = (b) => ({ left: b.left, top: b.top, right: b.right, bottom: b.bottom });
  const intersect = (a, b) => ({
    left: Math.max(a.left, b.left),
    top: Math.max(a.top, b.top),
    right: Math.min(a.right, b.right),
    bottom: Math.min(a.bottom, b.bottom),
  });
  const empty = (b) => b.right <= b.left || b.bottom <= b.top;
  const EMPTY = { left: 0, top: 0, right: 0, bottom: 0 };
  /** the extent of the values where `test(i)` holds, half-open; zeros when none */
  const extent = (test) => {
    let l = W, t = H, r = 0, btm = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        if (test(y * W + x)) {
          if (x < l) l = x;
          if (x + 1 > r) r = x + 1;
          if (y < t) t = y;
          if (y + 1 > btm) btm = y + 1;
        }
    return r === 0 ? { ...EMPTY } : { left: l, top: t, right: r, bottom: btm };
  };

  // ------------------------------------------------------------------ image data

  const imageData = (data, width, height, components, colorProfile) => {
    let disposed = false;
    return {
      width,
      height,
      components,
      componentSize: 8,
      colorProfile,
      hasAlpha: components === 4,
      pixelFormat: components === 4 ? 'RGBA' : components === 3 ? 'RGB' : 'Grayscale',
      isChunky: true,
      colorSpace: components === 1 ? 'Grayscale' : 'RGB',
      async getData(o) {
        if (disposed) fail('getData() after dispose()');
        if (o && o.chunky === false) fail('the host asked for planar data');
        return data.slice();
      },
      dispose() {
        disposed = true;
      },
      __data: data,
      get __disposed() {
        return disposed;
      },
    };
  };

  // ------------------------------------------------------------------ document and layers

  const layers = []; // top-most first
  const makeLayer = (name) => {
    const layer = {
      id: nextLayerId++,
      name,
      kind: 'pixel',
      isBackgroundLayer: false,
      layers: null,
      visible: true,
      __rgba: new Uint8Array(W * H * 4),
      __mask: null,
      get boundsNoEffects() {
        return extent((i) => layer.__rgba[i * 4 + 3] > 0);
      },
      get bounds() {
        return layer.boundsNoEffects;
      },
      move(target, placement) {
        requireModal('Layer.move');
        if (placement !== 'placeBefore') fail(`Layer.move: unexpected placement ${placement}`);
        const from = layers.indexOf(layer);
        layers.splice(from, 1);
        layers.splice(layers.indexOf(target), 0, layer);
        redraw();
      },
    };
    return layer;
  };

  const fixture = window.__LL_FIXTURE;
  const source = makeLayer('shapes');
  source.id = 1;
  nextLayerId = 2;
  {
    const px = Uint8Array.from(atob(fixture.rgba), (c) => c.charCodeAt(0));
    const ox = 16, oy = 6;
    for (let y = 0; y < fixture.height; y++)
      for (let x = 0; x < fixture.width; x++) {
        const s = (y * fixture.width + x) * 4;
        const d = ((y + oy) * W + (x + ox)) * 4;
        for (let k = 0; k < 4; k++) source.__rgba[d + k] = px[s + k];
      }
  }
  layers.push(source);
  let active = [source];
  let selection = new Uint8Array(W * H); // 0 = not selected

  const doc = {
    id: 7,
    title: 'shapes.psd',
    width: W,
    height: H,
    resolution: 72,
    mode: 'RGBColorMode',
    bitsPerChannel: 'bitDepth8',
    colorProfileName: PROFILE,
    get layers() {
      return layers.slice();
    },
    get activeLayers() {
      return active.slice();
    },
    get selection() {
      const b = extent((i) => selection[i] > 0);
      return { bounds: empty(b) ? null : b };
    },
    async createPixelLayer(o) {
      requireModal('Document.createPixelLayer');
      const layer = makeLayer((o && o.name) || `Layer ${nextLayerId - 1}`);
      layers.unshift(layer); // the top of the stack (Photoshop's placement is unspecified)
      active = [layer];
      redraw();
      return layer;
    },
  };
  const findLayer = (id) => layers.find((l) => l.id === id) || null;
  const checkDoc = (id) => {
    if (id !== doc.id) fail(`unknown documentID ${id}`);
  };

  // ------------------------------------------------------------------ imaging

  const imaging = {
    async getPixels(o) {
      checkDoc(o.documentID);
      const layer = findLayer(o.layerID) || fail(`getPixels: no layer ${o.layerID}`);
      if (o.componentSize !== 8) fail(`getPixels: componentSize ${o.componentSize} on an 8-bit document`);
      let b = intersect(layer.boundsNoEffects, { left: 0, top: 0, right: W, bottom: H });
      if (o.sourceBounds) b = intersect(b, o.sourceBounds);
      if (empty(b)) b = { ...EMPTY };
      const w = b.right - b.left, h = b.bottom - b.top;
      const out = new Uint8Array(w * h * 4);
      for (let y = 0; y < h; y++)
        out.set(layer.__rgba.subarray(((b.top + y) * W + b.left) * 4, ((b.top + y) * W + b.right) * 4), y * w * 4);
      return { imageData: imageData(out, w, h, 4, PROFILE), sourceBounds: b, level: 0 };
    },
    async getSelection(o) {
      checkDoc(o.documentID);
      let b = intersect(extent((i) => selection[i] > 0), o.sourceBounds || { left: 0, top: 0, right: W, bottom: H });
      if (empty(b)) b = { ...EMPTY };
      const w = b.right - b.left, h = b.bottom - b.top;
      const out = new Uint8Array(w * h);
      for (let y = 0; y < h; y++) out.set(selection.subarray((b.top + y) * W + b.left, (b.top + y) * W + b.right), y * w);
      return { imageData: imageData(out, w, h, 1, ''), sourceBounds: b, level: 0 };
    },
    async createImageDataFromBuffer(data, o) {
      if (!(data instanceof Uint8Array)) fail('createImageDataFromBuffer: expected a Uint8Array');
      if (data.length !== o.width * o.height * o.components) fail(`createImageDataFromBuffer: ${data.length} bytes for ${o.width}x${o.height}x${o.components}`);
      if (o.chunky !== true) fail('createImageDataFromBuffer: expected chunky data');
      if ((o.components === 1) !== (o.colorSpace === 'Grayscale')) fail(`createImageDataFromBuffer: ${o.components} components in ${o.colorSpace}`);
      return imageData(data.slice(), o.width, o.height, o.components, o.colorProfile || '');
    },
    async putPixels(o) {
      requireModal('putPixels');
      checkDoc(o.documentID);
      const layer = findLayer(o.layerID) || fail(`putPixels: no layer ${o.layerID}`);
      const img = o.imageData;
      if (img.components !== 4) fail(`putPixels: ${img.components} components`);
      if (img.colorProfile !== PROFILE) fail(`putPixels: profile "${img.colorProfile}" would be converted`);
      const { left, top } = o.targetBounds;
      if (o.replace !== false) layer.__rgba.fill(0);
      for (let y = 0; y < img.height; y++)
        for (let x = 0; x < img.width; x++) {
          const dx = left + x, dy = top + y;
          if (dx < 0 || dy < 0 || dx >= W || dy >= H) continue;
          for (let k = 0; k < 4; k++) layer.__rgba[(dy * W + dx) * 4 + k] = img.__data[(y * img.width + x) * 4 + k];
        }
      writes.push({ kind: 'pixels', layerID: o.layerID, targetBounds: { ...o.targetBounds }, width: img.width, height: img.height });
      redraw();
    },
    async putLayerMask(o) {
      requireModal('putLayerMask');
      checkDoc(o.documentID);
      const layer = findLayer(o.layerID) || fail(`putLayerMask: no layer ${o.layerID}`);
      if (o.kind !== 'user') fail(`putLayerMask: kind ${o.kind}`);
      if (!layer.__mask) fail('putLayerMask: the layer has no user mask');
      const img = o.imageData;
      if (img.components !== 1) fail(`putLayerMask: ${img.components} components`);
      const { left, top } = o.targetBounds;
      for (let y = 0; y < img.height; y++)
        for (let x = 0; x < img.width; x++) {
          const dx = left + x, dy = top + y;
          if (dx < 0 || dy < 0 || dx >= W || dy >= H) continue;
          layer.__mask[dy * W + dx] = img.__data[y * img.width + x];
        }
      writes.push({ kind: 'mask', layerID: o.layerID, targetBounds: { ...o.targetBounds }, width: img.width, height: img.height });
      redraw();
    },
  };

  // ------------------------------------------------------------------ batchPlay

  const refOf = (target, ref) => (target || []).find((t) => t._ref === ref);
  const propOf = (target) => ((target || []).find((t) => t._property) || {})._property;
  const play = (d) => {
    const target = d._target;
    const docRef = refOf(target, 'document');
    if (docRef && docRef._id !== doc.id) return { _obj: 'error', message: `no document ${docRef._id}`, result: -1 };
    if (d._obj === 'get' && propOf(target) === 'hasUserMask') {
      const layer = findLayer(refOf(target, 'layer')._id);
      return layer ? { hasUserMask: layer.__mask !== null } : { _obj: 'error', message: 'no such layer', result: -1 };
    }
    if (d._obj === 'get' && propOf(target) === 'XMPMetadataAsUTF8') return { XMPMetadataAsUTF8: xmpPacket };
    if (d._obj === 'get' && propOf(target) === 'selection') {
      const b = doc.selection.bounds;
      return b ? { selection: { _obj: 'rectangle', top: { _unit: 'pixelsUnit', _value: b.top }, left: { _unit: 'pixelsUnit', _value: b.left }, bottom: { _unit: 'pixelsUnit', _value: b.bottom }, right: { _unit: 'pixelsUnit', _value: b.right } } } : {};
    }
    if (d._obj === 'set' && propOf(target) === 'XMPMetadataAsUTF8' && d.to && d.to._obj === 'document') {
      requireModal('set XMPMetadataAsUTF8');
      if (typeof d.to.XMPMetadataAsUTF8 !== 'string') fail('set XMP: not a string');
      xmpPacket = d.to.XMPMetadataAsUTF8;
      return {};
    }
    if (d._obj === 'select' && refOf(target, 'layer')) {
      requireModal('select layer');
      const layer = findLayer(refOf(target, 'layer')._id);
      if (!layer) return { _obj: 'error', message: 'no such layer', result: -1 };
      active = [layer];
      redraw();
      return {};
    }
    if (d._obj === 'make' && d.new && d.new._class === 'channel' && d.at && d.at._value === 'mask') {
      requireModal('make mask');
      if (active.length !== 1) return { _obj: 'error', message: 'one layer must be active', result: -1 };
      if (active[0].__mask) return { _obj: 'error', message: 'the layer already has a mask', result: -1 };
      if (!d.using || d.using._value !== 'revealAll') fail(`make mask: using ${JSON.stringify(d.using)}`);
      active[0].__mask = new Uint8Array(W * H).fill(255);
      redraw();
      return {};
    }
    problems.push(`unhandled batchPlay descriptor ${JSON.stringify(d)}`);
    return { _obj: 'error', message: 'unhandled by the fake', result: -1 };
  };
  const action = {
    async batchPlay(descriptors, options) {
      if (!options || typeof options !== 'object') fail('batchPlay without options');
      return descriptors.map(play);
    },
  };

  // ------------------------------------------------------------------ core

  const core = {
    async executeAsModal(fn, o) {
      if (modal) {
        const err = new Error('host is in a modal state');
        err.number = 9;
        throw err;
      }
      if (!o || typeof o.commandName !== 'string') fail('executeAsModal without a commandName');
      modal = true;
      const open = new Map();
      const snapshot = () => ({ layers: layers.map((l) => ({ l, rgba: l.__rgba.slice(), mask: l.__mask && l.__mask.slice() })), order: layers.slice(), active: active.slice(), xmp: xmpPacket });
      const ctx = {
        isCancelled: false,
        hostControl: {
          async suspendHistory(p) {
            checkDoc(p.documentID);
            const id = nextSuspension++;
            open.set(id, snapshot());
            return { historySuspensionID: id };
          },
          async resumeHistory(p, commit) {
            const s = open.get(p.historySuspensionID);
            if (!s) fail(`resumeHistory: suspension ${p.historySuspensionID} is not open`);
            open.delete(p.historySuspensionID);
            if (commit === false) {
              layers.splice(0, layers.length, ...s.order);
              for (const x of s.layers) {
                x.l.__rgba = x.rgba;
                x.l.__mask = x.mask;
              }
              active = s.active;
              xmpPacket = s.xmp;
              redraw();
            }
          },
        },
      };
      try {
        return await fn(ctx, {});
      } finally {
        modal = false;
        if (open.size) problems.push(`executeAsModal "${o.commandName}" left ${open.size} history suspension(s) open`);
      }
    },
  };

  const constants = { ElementPlacement: { PLACEBEFORE: 'placeBefore', PLACEAFTER: 'placeAfter', PLACEINSIDE: 'placeInside' } };
  const app = {
    get documents() {
      return [doc];
    },
    get activeDocument() {
      return doc;
    },
    set activeDocument(d) {
      if (d !== doc) fail('activeDocument set to an unknown document');
    },
  };

  // ------------------------------------------------------------------ uxp

  const namespaces = new Map();
  class XMPMeta {
    constructor(packet) {
      this.props = packet ? JSON.parse(packet) : {};
    }
    static registerNamespace(ns, prefix) {
      namespaces.set(ns, prefix);
      return `${prefix}:`;
    }
    getProperty(ns, name) {
      const key = `${ns}|${name}`;
      return Object.prototype.hasOwnProperty.call(this.props, key) ? { value: this.props[key], namespace: ns } : undefined;
    }
    setProperty(ns, name, value) {
      if (!namespaces.has(ns)) fail(`XMPMeta.setProperty: namespace ${ns} is not registered`);
      this.props[`${ns}|${name}`] = String(value);
    }
    serialize() {
      return JSON.stringify(this.props);
    }
  }

  const uxp = {
    entrypoints: {
      setup(o) {
        const panel = o && o.panels && o.panels.main;
        if (!panel) fail('entrypoints.setup: no panels.main');
        const root = document.body;
        panel.create && panel.create(root);
        panel.show && panel.show(root, {});
      },
    },
    storage: {},
    xmp: { XMPMeta },
  };

  const modules = { photoshop: { app, action, core, imaging, constants }, uxp };
  window.require = (name) => {
    if (!(name in modules)) throw new Error(`require('${name}'): not faked`);
    return modules[name];
  };

  // ------------------------------------------------------------------ the test's handle, and a view of the document

  let canvas = null;
  let info = null;
  function redraw() {
    if (!canvas) return;
    const ctx = canvas.getContext('2d');
    const out = ctx.createImageData(W, H);
    for (let i = 0; i < W * H; i++) {
      const checker = ((i % W) >> 3) + ((i / W) >> 3) & 1 ? 200 : 255;
      let r = checker, g = checker, b = checker;
      for (let k = layers.length - 1; k >= 0; k--) {
        const l = layers[k];
        if (!l.visible) continue;
        const a = (l.__rgba[i * 4 + 3] / 255) * (l.__mask ? l.__mask[i] / 255 : 1);
        r = r * (1 - a) + l.__rgba[i * 4] * a;
        g = g * (1 - a) + l.__rgba[i * 4 + 1] * a;
        b = b * (1 - a) + l.__rgba[i * 4 + 2] * a;
      }
      out.data.set([r, g, b, 255], i * 4);
    }
    ctx.putImageData(out, 0, 0);
    const sel = document.getElementById('fake-selection').getContext('2d');
    const s = sel.createImageData(W, H);
    for (let i = 0; i < W * H; i++) s.data.set([selection[i], selection[i], selection[i], 255], i * 4);
    sel.putImageData(s, 0, 0);
    info.textContent = layers
      .map((l) => `${active.includes(l) ? '▶ ' : '  '}#${l.id} "${l.name}" ${JSON.stringify(l.boundsNoEffects)}${l.__mask ? ' +mask' : ''}`)
      .join('\n');
  }
  window.addEventListener('DOMContentLoaded', () => {
    const style = document.createElement('style');
    style.textContent =
      'body{width:320px} #fake-ps{position:fixed;left:350px;top:8px;font:11px monospace;color:#ddd} #fake-ps canvas{width:480px;height:420px;image-rendering:pixelated;display:block;margin-bottom:6px;border:1px solid #777} #fake-ps #fake-selection{width:160px;height:140px} #fake-ps pre{margin:4px 0;white-space:pre}';
    document.head.appendChild(style);
    const box = document.createElement('div');
    box.id = 'fake-ps';
    box.innerHTML = '<div>fake Photoshop document (layers through their masks)</div><canvas id="fake-doc" width="160" height="140"></canvas><pre id="fake-layers"></pre><div>selection</div><canvas id="fake-selection" width="160" height="140"></canvas>';
    document.body.appendChild(box);
    canvas = box.querySelector('#fake-doc');
    info = box.querySelector('#fake-layers');
    redraw();
  });

  window.__fakePs = {
    problems,
    writes,
    get modal() {
      return modal;
    },
    /** an elliptical selection, fully selected inside (rx, ry), fading to 0 over `feather` pixels outside */
    setEllipseSelection(cx, cy, rx, ry, feather) {
      selection = new Uint8Array(W * H);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
          const d = (Math.sqrt(dx * dx + dy * dy) - 1) * Math.min(rx, ry); // ~ pixels outside the ellipse
          selection[y * W + x] = d <= 0 ? 255 : d >= feather ? 0 : Math.round(255 * (1 - d / feather));
        }
      redraw();
    },
    select(layerID) {
      active = [findLayer(layerID)];
      redraw();
    },
    xmp: () => xmpPacket,
    /** the state, as plain arrays (document-sized buffers) */
    dump() {
      return {
        width: W,
        height: H,
        active: active.map((l) => l.id),
        selection: Array.from(selection),
        layers: layers.map((l) => ({ id: l.id, name: l.name, bounds: plain(l.boundsNoEffects), rgba: Array.from(l.__rgba), mask: l.__mask && Array.from(l.__mask) })),
      };
    },
  };
})();

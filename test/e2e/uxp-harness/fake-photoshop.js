/*
 * Fake require('photoshop') and require('uxp'), the one both the UXP panel's browser e2e test
 * (test/e2e/uxp-plugin.test.ts: plugin-uxp/index.html and its real bundle in Chromium) and the unit tests of the
 * real UxpPhotoshopHost (test/unit/plugin-uxp/photoshop-host.test.ts, in Node) run against, so a Photoshop
 * behaviour is taught once.
 *
 * createFakePhotoshop(options) returns { modules: { photoshop, uxp }, hooks }. A document (options.width x
 * options.height, default 160x140) holds one pixel layer "shapes" (options.fixture's RGBA at options.offset) and
 * an empty selection. Backed by real pixels: every layer is a document-sized RGBA buffer (plus an optional
 * document-sized user mask), the selection a document-sized 0..255 buffer. With options.document (a browser page)
 * the document is drawn next to the panel, so screenshots show what Photoshop would.
 *
 * Photoshop's documented behaviour, strictly where the docs are vague (research/host_audit.md):
 * - half-open bounds; getPixels/getSelection trim to where data is and report the trimmed bounds;
 * - writes only inside executeAsModal, one modal scope at a time (error number 9 otherwise); after the user
 *   cancels (hooks.cancelModal()), host calls throw, resumeHistory too; a callback that throws has its open
 *   suspensions cancelled (the document rolls back);
 * - new pixel layers appear at the top of the stack of the ACTIVE document (batchPlay-backed DOM calls act on
 *   the active document), so code that forgets to activate the target document puts layers in the wrong one;
 * - an untagged document (options.colorProfile null) reports colorProfileType 'none' and colorProfileName
 *   "None"; createImageDataFromBuffer refuses a profile named "None" or one with the 32-bit " (Linear RGB
 *   Profile)" suffix; putPixels refuses data in another profile than the document's (it would be converted);
 * - putLayerMask needs a mask (made with the batchPlay 'make channel' descriptor); getLayerMask reads it;
 * - XMP: set with Adobe's documented `to: {_obj: 'XMPMetadataAsUTF8'}` stores the packet; the undocumented
 *   `to: {_obj: 'document'}` is silently ignored (so only a read-back shows whether a write worked);
 * - options.version 24 (Photoshop 24.x): no Document.selection, no uxp.xmp; batchPlay `get selection` throws
 *   when nothing is selected;
 * - unknown batchPlay descriptors answer {_obj:'error'} and are recorded in hooks.problems.
 */
(function (factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else window.createFakePhotoshop = factory().createFakePhotoshop;
})(function () {
  'use strict';
  const SRGB = 'sRGB IEC61966-2.1';

  function createFakePhotoshop(options) {
    const o = options || {};
    const W = o.width || 160;
    const H = o.height || 140;
    const version = o.version || 25;
    const profile = o.colorProfile === undefined ? SRGB : o.colorProfile; // null: untagged
    const bits = o.bitsPerChannel || 8;
    const dataProfile = profile === null ? '' : bits === 32 ? `${profile} (Linear RGB Profile)` : profile;
    const problems = [];
    const writes = [];
    const listeners = [];
    let nextLayerId = 2;
    let nextDocId = 7;
    let modal = false;
    let cancelled = false;
    let nextSuspension = 1;

    const fail = (msg) => {
      problems.push(msg);
      throw new Error(msg);
    };
    const requireModal = (what) => {
      if (!modal) fail(`${what}: only allowed from inside a modal scope (executeAsModal)`);
      if (cancelled) throw new Error(`${what}: the user cancelled the operation`);
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
    const CANVAS = { left: 0, top: 0, right: W, bottom: H };
    /** the extent of the values where `test(i)` holds, half-open; zeros when none */
    const extent = (test) => {
      let l = W;
      let t = H;
      let r = 0;
      let btm = 0;
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
    const crop = (buffer, b, components) => {
      const w = b.right - b.left;
      const h = b.bottom - b.top;
      const out = new Uint8Array(w * h * components);
      for (let y = 0; y < h; y++) out.set(buffer.subarray(((b.top + y) * W + b.left) * components, ((b.top + y) * W + b.right) * components), y * w * components);
      return out;
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
        async getData(opts) {
          if (disposed) fail('getData() after dispose()');
          if (opts && opts.chunky === false) fail('the host asked for planar data');
          return data.slice();
        },
        dispose() {
          disposed = true;
        },
        __data: data,
      };
    };

    // ------------------------------------------------------------------ documents and layers

    const makeLayer = (doc, name) => {
      const layer = {
        id: nextLayerId++,
        name,
        kind: 'pixel',
        isBackgroundLayer: false,
        isClippingMask: false,
        layers: null,
        visible: true,
        __look: { opacity: 100, fillOpacity: 100, blendMode: 'normal' },
        __rgba: new Uint8Array(W * H * 4),
        __mask: null,
        __vectorMask: false,
        get boundsNoEffects() {
          return extent((i) => layer.__rgba[i * 4 + 3] > 0);
        },
        get bounds() {
          return layer.boundsNoEffects;
        },
        move(target, placement) {
          requireModal('Layer.move');
          if (placement !== 'placeBefore') fail(`Layer.move: unexpected placement ${placement}`);
          if (!doc.__layers.includes(target)) fail('Layer.move: the target is in another document');
          doc.__layers.splice(doc.__layers.indexOf(layer), 1);
          doc.__layers.splice(doc.__layers.indexOf(target), 0, layer);
          redraw();
        },
      };
      for (const key of ['opacity', 'fillOpacity', 'blendMode']) {
        Object.defineProperty(layer, key, {
          get: () => layer.__look[key],
          set: (v) => {
            requireModal(`Layer.${key}`);
            layer.__look[key] = v;
          },
        });
      }
      return layer;
    };

    const makeDocument = (title) => {
      const doc = {
        id: nextDocId++,
        title,
        width: W,
        height: H,
        resolution: 72,
        mode: 'RGBColorMode',
        bitsPerChannel: `bitDepth${bits}`,
        colorProfileType: profile === null ? 'none' : 'customEnum',
        colorProfileName: profile === null ? 'None' : dataProfile,
        __layers: [],
        __active: [],
        __selection: new Uint8Array(W * H),
        __xmp: '',
        get layers() {
          return doc.__layers.slice();
        },
        get activeLayers() {
          return doc.__active.slice();
        },
        async createPixelLayer(opts) {
          requireModal('Document.createPixelLayer');
          // Photoshop makes the layer with batchPlay, which acts on the active document
          const target = activeDoc;
          const layer = makeLayer(target, (opts && opts.name) || `Layer ${nextLayerId - 1}`);
          target.__layers.unshift(layer); // the top of the stack (Photoshop's placement is unspecified)
          target.__active = [layer];
          redraw();
          return layer;
        },
      };
      if (version >= 25) {
        Object.defineProperty(doc, 'selection', {
          get() {
            const b = extent((i) => doc.__selection[i] > 0);
            return { bounds: empty(b) ? null : b };
          },
        });
      }
      documents.push(doc);
      return doc;
    };

    const documents = [];
    const doc = makeDocument('shapes.psd');
    const source = makeLayer(doc, 'shapes');
    source.id = 1;
    nextLayerId = 2;
    if (o.fixture) {
      const f = o.fixture;
      const off = o.offset || { x: 16, y: 6 };
      for (let y = 0; y < f.height; y++)
        for (let x = 0; x < f.width; x++) {
          const s = (y * f.width + x) * 4;
          const d = ((y + off.y) * W + (x + off.x)) * 4;
          for (let k = 0; k < 4; k++) source.__rgba[d + k] = f.rgba[s + k];
        }
    }
    doc.__layers.push(source);
    doc.__active = [source];
    let activeDoc = doc;

    const docById = (id) => documents.find((d) => d.id === id) || null;
    const checkDoc = (id) => docById(id) || fail(`unknown documentID ${id}`);
    const findLayer = (d, id) => d.__layers.find((l) => l.id === id) || null;

    // ------------------------------------------------------------------ imaging

    const imaging = {
      async getPixels(opts) {
        const d = checkDoc(opts.documentID);
        const layer = findLayer(d, opts.layerID) || fail(`getPixels: no layer ${opts.layerID}`);
        if (opts.componentSize !== 8) fail(`getPixels: componentSize ${opts.componentSize} asked of the fake`);
        let b = intersect(layer.boundsNoEffects, CANVAS);
        if (opts.sourceBounds) b = intersect(b, opts.sourceBounds);
        if (empty(b)) b = { ...EMPTY };
        return { imageData: imageData(crop(layer.__rgba, b, 4), b.right - b.left, b.bottom - b.top, 4, dataProfile), sourceBounds: b, level: 0 };
      },
      async getSelection(opts) {
        const d = checkDoc(opts.documentID);
        let b = intersect(extent((i) => d.__selection[i] > 0), opts.sourceBounds || CANVAS);
        if (empty(b)) b = { ...EMPTY };
        return { imageData: imageData(crop(d.__selection, b, 1), b.right - b.left, b.bottom - b.top, 1, ''), sourceBounds: b, level: 0 };
      },
      async getLayerMask(opts) {
        const d = checkDoc(opts.documentID);
        const layer = findLayer(d, opts.layerID) || fail(`getLayerMask: no layer ${opts.layerID}`);
        if (opts.kind !== 'user') fail(`getLayerMask: kind ${opts.kind}`);
        if (!layer.__mask) fail('getLayerMask: the layer has no user mask');
        let b = intersect(opts.sourceBounds || CANVAS, CANVAS);
        if (empty(b)) b = { ...EMPTY };
        return { imageData: imageData(crop(layer.__mask, b, 1), b.right - b.left, b.bottom - b.top, 1, ''), sourceBounds: b, level: 0 };
      },
      async createImageDataFromBuffer(data, opts) {
        if (!(data instanceof Uint8Array) && Object.prototype.toString.call(data) !== '[object Uint8Array]') fail('createImageDataFromBuffer: expected a Uint8Array');
        if (data.length !== opts.width * opts.height * opts.components) fail(`createImageDataFromBuffer: ${data.length} bytes for ${opts.width}x${opts.height}x${opts.components}`);
        if (opts.chunky !== true) fail('createImageDataFromBuffer: expected chunky data');
        if ((opts.components === 1) !== (opts.colorSpace === 'Grayscale')) fail(`createImageDataFromBuffer: ${opts.components} components in ${opts.colorSpace}`);
        const p = opts.colorProfile;
        if (p === 'None' || (typeof p === 'string' && / \(Linear RGB Profile\)$/.test(p))) {
          fail(`createImageDataFromBuffer: unknown color profile "${p}"`);
        }
        return imageData(data.slice(), opts.width, opts.height, opts.components, p || (opts.components === 1 ? '' : dataProfile));
      },
      async putPixels(opts) {
        requireModal('putPixels');
        const d = checkDoc(opts.documentID);
        const layer = findLayer(d, opts.layerID) || fail(`putPixels: no layer ${opts.layerID}`);
        const img = opts.imageData;
        if (img.components !== 4) fail(`putPixels: ${img.components} components`);
        if (img.colorProfile !== dataProfile) fail(`putPixels: profile "${img.colorProfile}" would be converted to "${dataProfile}"`);
        const { left, top } = opts.targetBounds;
        if (opts.replace !== false) layer.__rgba.fill(0);
        for (let y = 0; y < img.height; y++)
          for (let x = 0; x < img.width; x++) {
            const dx = left + x;
            const dy = top + y;
            if (dx < 0 || dy < 0 || dx >= W || dy >= H) continue;
            for (let k = 0; k < 4; k++) layer.__rgba[(dy * W + dx) * 4 + k] = img.__data[(y * img.width + x) * 4 + k];
          }
        writes.push({ kind: 'pixels', documentID: d.id, layerID: opts.layerID, targetBounds: { ...opts.targetBounds }, width: img.width, height: img.height });
        redraw();
      },
      async putLayerMask(opts) {
        requireModal('putLayerMask');
        const d = checkDoc(opts.documentID);
        const layer = findLayer(d, opts.layerID) || fail(`putLayerMask: no layer ${opts.layerID}`);
        if (opts.kind !== 'user') fail(`putLayerMask: kind ${opts.kind}`);
        if (!layer.__mask) fail('putLayerMask: the layer has no user mask');
        const img = opts.imageData;
        if (img.components !== 1) fail(`putLayerMask: ${img.components} components`);
        const { left, top } = opts.targetBounds;
        for (let y = 0; y < img.height; y++)
          for (let x = 0; x < img.width; x++) {
            const dx = left + x;
            const dy = top + y;
            if (dx < 0 || dy < 0 || dx >= W || dy >= H) continue;
            layer.__mask[dy * W + dx] = img.__data[y * img.width + x];
          }
        writes.push({ kind: 'mask', documentID: d.id, layerID: opts.layerID, targetBounds: { ...opts.targetBounds }, width: img.width, height: img.height });
        redraw();
      },
    };

    // ------------------------------------------------------------------ batchPlay

    const refOf = (target, ref) => (target || []).find((t) => t._ref === ref);
    const propOf = (target) => ((target || []).find((t) => t._property) || {})._property;
    const play = (desc) => {
      const target = desc._target;
      const docRef = refOf(target, 'document');
      const d = docRef ? docById(docRef._id) : activeDoc;
      if (!d) return { _obj: 'error', message: `no document ${docRef._id}`, result: -1 };
      const prop = propOf(target);
      if (desc._obj === 'get' && (prop === 'hasUserMask' || prop === 'hasVectorMask')) {
        const layer = findLayer(d, refOf(target, 'layer')._id);
        if (!layer) return { _obj: 'error', message: 'no such layer', result: -1 };
        return prop === 'hasUserMask' ? { hasUserMask: layer.__mask !== null } : { hasVectorMask: layer.__vectorMask };
      }
      if (desc._obj === 'get' && prop === 'XMPMetadataAsUTF8') return { XMPMetadataAsUTF8: d.__xmp };
      if (desc._obj === 'get' && prop === 'selection') {
        const b = extent((i) => d.__selection[i] > 0);
        if (empty(b)) throw new Error('The object “selection” is not currently available.'); // batchPlay throws on failed gets
        const px = (v) => ({ _unit: 'pixelsUnit', _value: v });
        return { selection: { _obj: 'rectangle', top: px(b.top), left: px(b.left), bottom: px(b.bottom), right: px(b.right) } };
      }
      if (desc._obj === 'set' && prop === 'XMPMetadataAsUTF8') {
        requireModal('set XMPMetadataAsUTF8');
        if (!desc.to || typeof desc.to.XMPMetadataAsUTF8 !== 'string') fail('set XMP: not a string');
        if (desc.to._obj === 'XMPMetadataAsUTF8') d.__xmp = desc.to.XMPMetadataAsUTF8; // Adobe's documented form
        return {}; // any other `to` class: accepted, and ignored
      }
      if (desc._obj === 'select' && refOf(target, 'layer')) {
        requireModal('select layer');
        const layer = findLayer(activeDoc, refOf(target, 'layer')._id);
        if (!layer) return { _obj: 'error', message: 'no such layer', result: -1 };
        activeDoc.__active = [layer];
        redraw();
        return {};
      }
      if (desc._obj === 'make' && desc.new && desc.new._class === 'channel' && desc.at && desc.at._value === 'mask') {
        requireModal('make mask');
        const active = activeDoc.__active;
        if (active.length !== 1) return { _obj: 'error', message: 'one layer must be active', result: -1 };
        if (active[0].__mask) return { _obj: 'error', message: 'the layer already has a mask', result: -1 };
        if (!desc.using || desc.using._value !== 'revealAll') fail(`make mask: using ${JSON.stringify(desc.using)}`);
        active[0].__mask = new Uint8Array(W * H).fill(255);
        redraw();
        return {};
      }
      problems.push(`unhandled batchPlay descriptor ${JSON.stringify(desc)}`);
      return { _obj: 'error', message: 'unhandled by the fake', result: -1 };
    };
    const action = {
      async batchPlay(descriptors, opts) {
        if (!opts || typeof opts !== 'object') fail('batchPlay without options');
        if (modal && cancelled) throw new Error('batchPlay: the user cancelled the operation');
        return descriptors.map(play);
      },
      async addNotificationListener(events, listener) {
        listeners.push({ events, listener });
      },
    };

    // ------------------------------------------------------------------ core

    const core = {
      async executeAsModal(fn, opts) {
        if (modal) {
          const err = new Error('host is in a modal state');
          err.number = 9;
          throw err;
        }
        if (!opts || typeof opts.commandName !== 'string') fail('executeAsModal without a commandName');
        modal = true;
        cancelled = false;
        const open = new Map();
        const snapshot = (d) => ({
          d,
          layers: d.__layers.map((l) => ({ l, rgba: l.__rgba.slice(), mask: l.__mask && l.__mask.slice(), look: { ...l.__look } })),
          order: d.__layers.slice(),
          active: d.__active.slice(),
          xmp: d.__xmp,
        });
        const rollBack = (s) => {
          s.d.__layers.splice(0, s.d.__layers.length, ...s.order);
          for (const x of s.layers) {
            x.l.__rgba = x.rgba;
            x.l.__mask = x.mask;
            x.l.__look = x.look;
          }
          s.d.__active = s.active;
          s.d.__xmp = s.xmp;
          redraw();
        };
        const ctx = {
          get isCancelled() {
            return cancelled;
          },
          hostControl: {
            async suspendHistory(p) {
              const id = nextSuspension++;
              open.set(id, snapshot(checkDoc(p.documentID)));
              return { historySuspensionID: id };
            },
            async resumeHistory(p, commit) {
              if (cancelled) throw new Error('resumeHistory: the modal state was cancelled');
              const s = open.get(p.historySuspensionID);
              if (!s) fail(`resumeHistory: suspension ${p.historySuspensionID} is not open`);
              open.delete(p.historySuspensionID);
              if (commit === false) rollBack(s);
              hooks.history.push(commit === false ? `rolled back ${opts.commandName}` : opts.commandName);
            },
          },
        };
        try {
          return await fn(ctx, {});
        } catch (err) {
          // Photoshop cancels the open suspensions of a callback that throws
          for (const s of open.values()) rollBack(s);
          open.clear();
          throw err;
        } finally {
          modal = false;
          if (open.size) problems.push(`executeAsModal "${opts.commandName}" left ${open.size} history suspension(s) open`);
        }
      },
    };

    const constants = { ElementPlacement: { PLACEBEFORE: 'placeBefore', PLACEAFTER: 'placeAfter', PLACEINSIDE: 'placeInside' } };
    const app = {
      get documents() {
        return documents.slice();
      },
      get activeDocument() {
        return activeDoc;
      },
      set activeDocument(d) {
        if (!documents.includes(d)) fail('activeDocument set to an unknown document');
        activeDoc = d;
        redraw();
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
        setup(setup) {
          const panel = setup && setup.panels && setup.panels.main;
          if (!panel) fail('entrypoints.setup: no panels.main');
          const root = o.document ? o.document.body : null;
          if (panel.create) panel.create(root);
          if (panel.show) panel.show(root, {});
        },
      },
      storage: {},
    };
    if (version >= 25) uxp.xmp = { XMPMeta };

    // ------------------------------------------------------------------ a view of the document (browser only)

    let canvas = null;
    let info = null;
    function redraw() {
      if (!canvas) return;
      const d = activeDoc;
      const ctx = canvas.getContext('2d');
      const out = ctx.createImageData(W, H);
      for (let i = 0; i < W * H; i++) {
        const checker = (((i % W) >> 3) + ((i / W) >> 3)) & 1 ? 200 : 255;
        let r = checker;
        let g = checker;
        let b = checker;
        for (let k = d.__layers.length - 1; k >= 0; k--) {
          const l = d.__layers[k];
          if (!l.visible) continue;
          const a = (l.__rgba[i * 4 + 3] / 255) * (l.__mask ? l.__mask[i] / 255 : 1) * (l.__look.opacity / 100);
          r = r * (1 - a) + l.__rgba[i * 4] * a;
          g = g * (1 - a) + l.__rgba[i * 4 + 1] * a;
          b = b * (1 - a) + l.__rgba[i * 4 + 2] * a;
        }
        out.data.set([r, g, b, 255], i * 4);
      }
      ctx.putImageData(out, 0, 0);
      const sel = o.document.getElementById('fake-selection').getContext('2d');
      const s = sel.createImageData(W, H);
      for (let i = 0; i < W * H; i++) s.data.set([d.__selection[i], d.__selection[i], d.__selection[i], 255], i * 4);
      sel.putImageData(s, 0, 0);
      info.textContent = d.__layers
        .map((l) => `${d.__active.includes(l) ? '▶ ' : '  '}#${l.id} "${l.name}" ${JSON.stringify(l.boundsNoEffects)}${l.__mask ? ' +mask' : ''}`)
        .join('\n');
    }
    if (o.document) {
      o.document.defaultView.addEventListener('DOMContentLoaded', () => {
        const page = o.document;
        const style = page.createElement('style');
        style.textContent =
          'body{width:320px} #fake-ps{position:fixed;left:350px;top:8px;font:11px monospace;color:#ddd} #fake-ps canvas{width:480px;height:420px;image-rendering:pixelated;display:block;margin-bottom:6px;border:1px solid #777} #fake-ps #fake-selection{width:160px;height:140px} #fake-ps pre{margin:4px 0;white-space:pre}';
        page.head.appendChild(style);
        const box = page.createElement('div');
        box.id = 'fake-ps';
        box.innerHTML = '<div>fake Photoshop document (layers through their masks)</div><canvas id="fake-doc" width="160" height="140"></canvas><pre id="fake-layers"></pre><div>selection</div><canvas id="fake-selection" width="160" height="140"></canvas>';
        page.body.appendChild(box);
        canvas = box.querySelector('#fake-doc');
        info = box.querySelector('#fake-layers');
        redraw();
      });
    }

    // ------------------------------------------------------------------ the test's handle

    const hooks = {
      problems,
      writes,
      /** the names of committed history states (and rolled-back ones), oldest first */
      history: [],
      document: doc,
      source,
      get modal() {
        return modal;
      },
      /** the user presses Escape on Photoshop's progress bar while a modal scope runs */
      cancelModal() {
        cancelled = true;
      },
      /** another open document, made the active one (the user switched to it); fires the 'select' notification */
      openAnotherDocument(title) {
        const other = makeDocument(title || 'other.psd');
        const bg = makeLayer(other, 'Background');
        other.__layers.push(bg);
        other.__active = [bg];
        activeDoc = other;
        for (const { events, listener } of listeners) if (events.includes('select')) listener('select', { _obj: 'select', _target: [{ _ref: 'document', _id: other.id }] });
        redraw();
        return other;
      },
      /** an elliptical selection, fully selected inside (rx, ry), fading to 0 over `feather` pixels outside */
      setEllipseSelection(cx, cy, rx, ry, feather) {
        const sel = new Uint8Array(W * H);
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            const dx = (x + 0.5 - cx) / rx;
            const dy = (y + 0.5 - cy) / ry;
            const dist = (Math.sqrt(dx * dx + dy * dy) - 1) * Math.min(rx, ry); // ~ pixels outside the ellipse
            sel[y * W + x] = dist <= 0 ? 255 : dist >= feather ? 0 : Math.round(255 * (1 - dist / feather));
          }
        doc.__selection = sel;
        redraw();
      },
      /** the source layer's own user mask (document-sized, 255 = shown) */
      setSourceMask(mask) {
        source.__mask = mask;
        redraw();
      },
      select(layerID) {
        doc.__active = [findLayer(doc, layerID)];
        redraw();
      },
      /** another pixel layer at the top of the first document: `rgba` (width*height*4) at (left, top); its id */
      addLayer(name, left, top, width, height, rgba) {
        const layer = makeLayer(doc, name);
        for (let y = 0; y < height; y++)
          for (let x = 0; x < width; x++)
            for (let k = 0; k < 4; k++) layer.__rgba[((y + top) * W + x + left) * 4 + k] = rgba[(y * width + x) * 4 + k];
        doc.__layers.unshift(layer);
        redraw();
        return layer.id;
      },
      xmp: () => doc.__xmp,
      /** the state of the first document, as plain arrays (document-sized buffers) */
      dump() {
        return {
          width: W,
          height: H,
          active: doc.__active.map((l) => l.id),
          selection: Array.from(doc.__selection),
          layers: doc.__layers.map((l) => ({
            id: l.id,
            name: l.name,
            bounds: plain(l.boundsNoEffects),
            rgba: Array.from(l.__rgba),
            mask: l.__mask && Array.from(l.__mask),
            look: { ...l.__look },
          })),
        };
      },
    };

    return { modules: { photoshop: { app, action, core, imaging, constants }, uxp }, hooks };
  }

  return { createFakePhotoshop };
});

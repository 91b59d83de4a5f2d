/*
 * A fake of Figma's `figma` global, the one both the Figma plugin's browser e2e test
 * (test/e2e/figma-plugin.test.ts) and the unit tests of the real FigmaHost (test/unit/plugin-figma/figma-host.test.ts)
 * run the plugin against, so a host behaviour is taught once.
 *
 * createFakeFigma(options) builds a page with a rectangle "Shapes" at (100, 50), 128x128, whose IMAGE fill holds
 * options.sourcePng, and an ellipse "Circle mask" over its circle, and returns { figma, hooks }.
 * In the browser the harness page calls it and sets window.figma / window.__figma; figma.showUI then puts the
 * UI HTML in an iframe loaded from a data: URL (an opaque origin, like Figma's), and messages cross as in Figma:
 *   UI -> main: the UI calls parent.postMessage({pluginMessage: msg}, '*'); figma.ui.on('message') gets msg
 *   main -> UI: figma.ui.postMessage(msg) -> iframe.contentWindow.postMessage({pluginMessage: msg}, '*')
 * In Node (no options.document) showUI and the UI messages are only logged.
 *
 * Figma behaviours modelled (research/host_audit.md), strictly where the docs are vague:
 * - transforms are real 2x3 matrices; relativeTransform is relative to the parent (containers only here);
 * - clone() puts the copy on the current page; appendChild/insertChild keep relativeTransform;
 * - exportAsync of a rectangle with an image fill returns that image's bytes (the layers are 1:1 with their
 *   images); of a frame, a PNG rasterised here from its children (rectangles, ellipses, text boxes; solid fills,
 *   fill and layer opacity). A node with isMask renders nothing itself (it only clips what lies above it);
 * - TEXT nodes: changing fills/strokes/effects throws "Cannot write to node with unloaded font" until
 *   figma.loadFontAsync(fontName) resolved; a missing font cannot be loaded (hasMissingFont);
 * - plugin data is kept per plugin id (options.pluginId): another id reads ''; shared plugin data is kept per
 *   namespace and survives a change of plugin id;
 * - figma.closePlugin() (or hooks.close(), the user closing the panel) runs the 'close' handlers synchronously,
 *   then tears the sandbox down: pending exportAsync promises never settle;
 * - createImage refuses bytes that are not PNG and images over 4096 px a side;
 * - every change is logged in hooks.log (commitUndo as 'commitUndo').
 */
(function (factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else window.createFakeFigma = factory().createFakeFigma;
})(function () {
  'use strict';
  const IDENTITY = [
    [1, 0, 0],
    [0, 1, 0],
  ];
  const multiply = (a, b) => [
    [a[0][0] * b[0][0] + a[0][1] * b[1][0], a[0][0] * b[0][1] + a[0][1] * b[1][1], a[0][0] * b[0][2] + a[0][1] * b[1][2] + a[0][2]],
    [a[1][0] * b[0][0] + a[1][1] * b[1][0], a[1][0] * b[0][1] + a[1][1] * b[1][1], a[1][0] * b[0][2] + a[1][1] * b[1][2] + a[1][2]],
  ];
  const copy = (t) => [t[0].slice(), t[1].slice()];
  const fontKey = (f) => `${f.family}|${f.style}`;

  /**
   * @param {{ sourcePng: Uint8Array, encodePng: (rgba: Uint8Array, width: number, height: number) => Promise<Uint8Array>,
   *   pluginId?: string, clientStorage?: Record<string, unknown>, document?: Document, availableFonts?: {family: string, style: string}[] }} options
   */
  function createFakeFigma(options) {
    let pluginId = options.pluginId || 'layerloop-dev';
    const log = [];
    const nodes = new Map();
    const images = new Map(); // hash -> bytes
    const loadedFonts = new Set();
    const availableFonts = new Set((options.availableFonts || [{ family: 'Inter', style: 'Regular' }]).map(fontKey));
    const sharedData = new Map(); // node id -> Map(namespace|key -> value)
    let nextId = 10;
    let nextHash = 1;
    let closed = false;

    function storeImage(bytes) {
      const hash = `img${nextHash++}`;
      images.set(hash, new Uint8Array(bytes));
      return hash;
    }

    function detach(node) {
      if (node.parent) {
        const i = node.parent.children.indexOf(node);
        if (i >= 0) node.parent.children.splice(i, 1);
      }
      node.parent = null;
    }

    function attach(parent, index, node) {
      if (parent.type === 'INSTANCE') throw new Error('Cannot move node. New parent is an instance or is inside of an instance');
      detach(node);
      parent.children.splice(Math.min(index, parent.children.length), 0, node);
      node.parent = parent;
    }

    function checkOpen() {
      if (closed) throw new Error('The plugin has been closed');
    }

    /** what an async API call resolves to: nothing at all once the plugin is closed (the sandbox is gone) */
    function settle(promise) {
      return promise.then((value) => (closed ? new Promise(() => {}) : value), (err) => (closed ? new Promise(() => {}) : Promise.reject(err)));
    }

    class BaseNode {
      constructor(type, name, id) {
        this.id = id || `9:${nextId++}`;
        this.type = type;
        this.name = name;
        this.parent = null;
        this.removed = false;
        this.pluginData = new Map(); // `${pluginId}|${key}` -> value
        nodes.set(this.id, this);
      }
      getPluginData(key) {
        return this.pluginData.get(`${pluginId}|${key}`) || '';
      }
      setPluginData(key, value) {
        checkOpen();
        const k = `${pluginId}|${key}`;
        if (value === '') this.pluginData.delete(k);
        else this.pluginData.set(k, String(value));
      }
      getSharedPluginData(namespace, key) {
        return (sharedData.get(this.id) || new Map()).get(`${namespace}|${key}`) || '';
      }
      setSharedPluginData(namespace, key, value) {
        checkOpen();
        if (!/^[A-Za-z0-9_.]{3,}$/.test(namespace)) throw new Error(`Invalid namespace "${namespace}"`);
        const data = sharedData.get(this.id) || new Map();
        if (value === '') data.delete(`${namespace}|${key}`);
        else data.set(`${namespace}|${key}`, String(value));
        sharedData.set(this.id, data);
      }
      remove() {
        checkOpen();
        log.push(`remove ${this.id}`);
        detach(this);
        const gone = (n) => {
          n.removed = true;
          for (const c of n.children || []) gone(c);
        };
        gone(this);
      }
    }

    class ContainerNode extends BaseNode {
      constructor(type, name, id) {
        super(type, name, id);
        this.children = [];
      }
      appendChild(child) {
        checkOpen();
        attach(this, this.children.length, child);
      }
      insertChild(index, child) {
        checkOpen();
        attach(this, index, child);
      }
      findChildren(test) {
        return this.children.filter(test);
      }
    }

    class PageNode extends ContainerNode {
      get absoluteTransform() {
        return copy(IDENTITY);
      }
    }

    const PAINTED = ['fills', 'strokes', 'effects'];

    class SceneNode extends ContainerNode {
      constructor(type, name, width, height, x, y, id) {
        super(type, name, id);
        this.visible = true;
        this.width = width;
        this.height = height;
        this._rt = [
          [1, 0, x],
          [0, 1, y],
        ];
        this._paint = { fills: [], strokes: [], effects: [] };
        this.blendMode = 'PASS_THROUGH';
        this.opacity = 1;
        this.isMask = false;
        this.layoutMode = 'NONE';
        this.layoutPositioning = 'AUTO';
      }
      get relativeTransform() {
        return copy(this._rt);
      }
      set relativeTransform(t) {
        checkOpen();
        this._rt = copy(t);
      }
      get x() {
        return this._rt[0][2];
      }
      set x(v) {
        this._rt[0][2] = v;
      }
      get y() {
        return this._rt[1][2];
      }
      set y(v) {
        this._rt[1][2] = v;
      }
      get absoluteTransform() {
        return this.parent ? multiply(this.parent.absoluteTransform, this._rt) : copy(this._rt);
      }
      get absoluteBoundingBox() {
        const t = this.absoluteTransform; // axis-aligned in these scenes
        return { x: t[0][2], y: t[1][2], width: this.width, height: this.height };
      }
      resize(w, h) {
        checkOpen();
        this.width = w;
        this.height = h;
      }
      resizeWithoutConstraints(w, h) {
        this.resize(w, h);
      }
      clone() {
        checkOpen();
        const c = new (this.constructor)(this.type, this.name, this.width, this.height, this.x, this.y);
        c._rt = copy(this._rt);
        for (const key of ['visible', 'opacity', 'blendMode', 'isMask', 'characters', 'hasMissingFont']) c[key] = this[key];
        if (this.fontName) c.fontName = { ...this.fontName };
        c._paint = JSON.parse(JSON.stringify(this._paint));
        for (const child of this.children) {
          const cc = child.clone();
          attach(c, c.children.length, cc);
        }
        attach(figma.currentPage, figma.currentPage.children.length, c); // Figma: the copy lands on the current page
        log.push(`clone ${this.id} -> ${c.id}`);
        return c;
      }
      exportAsync(settings) {
        checkOpen();
        log.push(`export ${this.id} ${JSON.stringify(settings)}`);
        const image = this.fills.find((p) => p.type === 'IMAGE' && p.visible !== false);
        let result;
        if (this.type === 'RECTANGLE' && image) result = Promise.resolve(new Uint8Array(images.get(image.imageHash)));
        else if (this.type === 'FRAME') result = renderFrame(this);
        else result = Promise.reject(new Error(`the fake cannot export a ${this.type}`));
        // closing the plugin tears the sandbox down: an export still running never settles
        return settle(result);
      }
    }
    for (const key of PAINTED) {
      Object.defineProperty(SceneNode.prototype, key, {
        get() {
          return this._paint[key];
        },
        set(value) {
          checkOpen();
          if (this.type === 'TEXT' && (this.hasMissingFont || !loadedFonts.has(fontKey(this.fontName)))) {
            throw new Error(`in set_${key}: Cannot write to node with unloaded font "${this.fontName.family} ${this.fontName.style}". Please call figma.loadFontAsync({ family: "${this.fontName.family}", style: "${this.fontName.style}" }) and await the returned promise first.`);
          }
          this._paint[key] = JSON.parse(JSON.stringify(value));
        },
      });
    }

    class TextNode extends SceneNode {
      constructor(type, name, width, height, x, y, id) {
        super('TEXT', name, width, height, x, y, id);
        this.fontName = { family: 'Inter', style: 'Regular' };
        this.characters = '';
        this.hasMissingFont = false;
      }
      getRangeAllFontNames(start, end) {
        if (start < 0 || end > this.characters.length) throw new Error('getRangeAllFontNames: range out of bounds');
        return [{ ...this.fontName }];
      }
    }

    // ---- rasterising a frame (what the mask export asks for)

    function paintColor(paint, opacity) {
      const c = paint.color;
      return [c.r * 255, c.g * 255, c.b * 255, (paint.opacity === undefined ? 1 : paint.opacity) * opacity];
    }

    async function renderFrame(frame) {
      const w = Math.max(1, Math.round(frame.width));
      const h = Math.max(1, Math.round(frame.height));
      const rgba = new Float64Array(w * h * 4);
      const over = (i, color) => {
        const a = color[3];
        for (let k = 0; k < 3; k++) rgba[i * 4 + k] = color[k] * a + rgba[i * 4 + k] * (1 - a);
        rgba[i * 4 + 3] = a + rgba[i * 4 + 3] * (1 - a);
      };
      for (const p of frame.fills) if (p.type === 'SOLID' && p.visible !== false) for (let i = 0; i < w * h; i++) over(i, paintColor(p, 1));
      const draw = (node, origin, opacity) => {
        if (!node.visible || node.isMask) return; // a mask layer is not painted itself
        const t = multiply(origin, node.relativeTransform);
        const alpha = opacity * node.opacity;
        for (const p of node.fills) {
          if (p.visible === false) continue;
          if (p.type !== 'SOLID') throw new Error(`the fake renders solid fills only, not ${p.type}`);
          const color = paintColor(p, alpha);
          const x0 = t[0][2];
          const y0 = t[1][2];
          for (let y = Math.max(0, Math.floor(y0)); y < Math.min(h, Math.ceil(y0 + node.height)); y++) {
            for (let x = Math.max(0, Math.floor(x0)); x < Math.min(w, Math.ceil(x0 + node.width)); x++) {
              if (node.type === 'ELLIPSE') {
                const dx = (x + 0.5 - (x0 + node.width / 2)) / (node.width / 2);
                const dy = (y + 0.5 - (y0 + node.height / 2)) / (node.height / 2);
                if (dx * dx + dy * dy > 1) continue;
              }
              over(y * w + x, color);
            }
          }
        }
        for (const child of node.children) draw(child, t, alpha);
      };
      for (const child of frame.children) draw(child, IDENTITY, 1);
      const out = new Uint8Array(w * h * 4);
      for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.min(255, Math.max(0, i % 4 === 3 ? rgba[i] * 255 : rgba[i])));
      const bytes = await options.encodePng(out, w, h);
      hooks.maskExports.push(bytes);
      return bytes;
    }

    // ---- the scene
    const root = new ContainerNode('DOCUMENT', 'Document', '0:0');
    const page = new PageNode('PAGE', 'Page 1', '0:1');
    attach(root, 0, page);
    const sourceHash = storeImage(options.sourcePng);
    const source = new SceneNode('RECTANGLE', 'Shapes', 128, 128, 100, 50, '1:2');
    source.fills = [{ type: 'IMAGE', imageHash: sourceHash, scaleMode: 'FILL', visible: true, opacity: 1 }];
    source.blendMode = 'NORMAL';
    attach(page, 0, source);
    // the circle of shapes-128.png spans (22,26)-(58,62) in the image
    const mask = new SceneNode('ELLIPSE', 'Circle mask', 36, 36, 100 + 22, 50 + 26, '1:3');
    mask.fills = [{ type: 'SOLID', color: { r: 1, g: 0.2, b: 0.2 }, opacity: 1, visible: true }];
    mask.blendMode = 'NORMAL';
    attach(page, 1, mask);

    // ---- the UI and its messages
    const handlers = { message: [], selectionchange: [], close: [] };
    let iframe = null;
    let selection = [source, mask];
    const fire = (type) => setTimeout(() => handlers[type].forEach((h) => h()), 0);
    const doc = options.document || null;

    if (doc) {
      doc.defaultView.addEventListener('message', (event) => {
        if (!iframe || event.source !== iframe.contentWindow) return;
        const msg = event.data && event.data.pluginMessage;
        if (msg === undefined) return;
        log.push(`ui->main ${msg.type}`);
        for (const h of handlers.message) h(msg, { origin: event.origin });
      });
    }

    const utf8Base64 = (text) => {
      const bytes = new TextEncoder().encode(text);
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      return btoa(s);
    };

    function close() {
      if (closed) return;
      log.push('close');
      for (const h of handlers.close) h(); // synchronous, before the sandbox goes
      closed = true;
      if (iframe) iframe.remove();
    }

    const figma = {
      root,
      get currentPage() {
        return pageProxy;
      },
      viewport: {
        center: { x: 400, y: 300 },
        scrollAndZoomIntoView(list) {
          log.push(`scrollAndZoomIntoView ${list.map((n) => n.id).join(',')}`);
        },
      },
      showUI(html, opts) {
        log.push(`showUI ${JSON.stringify(opts)}`);
        if (!doc) return;
        iframe = doc.createElement('iframe');
        iframe.id = 'plugin-ui';
        iframe.title = opts.title;
        iframe.style.width = `${opts.width}px`;
        iframe.style.height = `${opts.height}px`;
        iframe.src = `data:text/html;base64,${utf8Base64(html)}`;
        doc.getElementById('panel').appendChild(iframe);
      },
      ui: {
        postMessage(msg) {
          checkOpen();
          log.push(`main->ui ${msg.type}`);
          if (iframe) iframe.contentWindow.postMessage({ pluginMessage: msg, pluginId }, '*');
          hooks.posted.push(msg);
        },
        on(type, cb) {
          handlers[type].push(cb);
        },
      },
      on(type, cb) {
        handlers[type].push(cb);
      },
      notify(message, opts) {
        log.push(`notify ${message}${opts && opts.error ? ' (error)' : ''}`);
        return { cancel() {} };
      },
      closePlugin() {
        close();
      },
      clientStorage: {
        store: new Map(Object.entries(options.clientStorage || {})),
        async getAsync(key) {
          return this.store.has(key) ? JSON.parse(JSON.stringify(this.store.get(key))) : undefined;
        },
        async setAsync(key, value) {
          this.store.set(key, JSON.parse(JSON.stringify(value)));
        },
      },
      getNodeByIdAsync(id) {
        const n = nodes.get(id);
        return settle(Promise.resolve(n && !n.removed ? n : null));
      },
      loadFontAsync(font) {
        if (!availableFonts.has(fontKey(font))) return settle(Promise.reject(new Error(`The font "${font.family} ${font.style}" could not be loaded`)));
        loadedFonts.add(fontKey(font));
        return settle(Promise.resolve());
      },
      createImage(bytes) {
        checkOpen();
        const b = new Uint8Array(bytes);
        const png = b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
        if (!png) throw new Error('Image type is unsupported');
        const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (view.getUint32(16) > 4096 || view.getUint32(20) > 4096) throw new Error('Image is too large');
        const hash = storeImage(b);
        log.push(`createImage ${hash}`);
        return { hash, getBytesAsync: async () => new Uint8Array(images.get(hash)) };
      },
      createRectangle() {
        checkOpen();
        const r = new SceneNode('RECTANGLE', 'Rectangle', 100, 100, 0, 0);
        r.fills = [{ type: 'SOLID', color: { r: 0.85, g: 0.85, b: 0.85 }, visible: true, opacity: 1 }];
        r.blendMode = 'NORMAL';
        attach(page, page.children.length, r);
        log.push(`createRectangle ${r.id}`);
        return r;
      },
      createFrame() {
        checkOpen();
        const f = new SceneNode('FRAME', 'Frame', 100, 100, 0, 0);
        f.clipsContent = true;
        f.fills = [{ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, visible: true, opacity: 1 }];
        attach(page, page.children.length, f);
        log.push(`createFrame ${f.id}`);
        return f;
      },
      commitUndo() {
        log.push('commitUndo');
      },
    };
    const pageProxy = new Proxy(page, {
      get(target, prop) {
        if (prop === 'selection') return selection.filter((n) => !n.removed);
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
      set(target, prop, value) {
        if (prop === 'selection') {
          checkOpen();
          selection = [...value];
          log.push(`selection ${selection.map((n) => n.id).join(',')}`);
          fire('selectionchange');
          return true;
        }
        return Reflect.set(target, prop, value, target);
      },
    });

    const hooks = {
      log,
      nodes,
      images,
      posted: [],
      maskExports: [],
      source,
      mask,
      /** a node the test puts on the page (type, name, box, extra properties such as fills or isMask) */
      add(type, name, box, props) {
        const Kind = type === 'TEXT' ? TextNode : SceneNode;
        const n = new Kind(type, name, box.width, box.height, box.x, box.y);
        n.blendMode = 'NORMAL';
        for (const [key, value] of Object.entries(props || {})) {
          if (PAINTED.includes(key)) n._paint[key] = JSON.parse(JSON.stringify(value)); // the file as saved: fonts play no part
          else n[key] = value;
        }
        attach(page, page.children.length, n);
        return n;
      },
      /** what a user's click in the layers panel does */
      select(ids) {
        pageProxy.selection = ids.map((id) => nodes.get(id));
      },
      /** the user closes the plugin's panel */
      close,
      /** the same file, opened by the plugin under another id (published with the id Figma issued) */
      setPluginId(id) {
        pluginId = id;
      },
      /** a message from the UI (Node: no iframe) */
      fromUi(msg) {
        for (const h of handlers.message) h(msg, { origin: 'null' });
      },
      imageBytes: (hash) => images.get(hash),
      /** the page's layers, back to front, as plain data */
      layers: () =>
        page.children.map((n) => ({
          id: n.id,
          type: n.type,
          name: n.name,
          visible: n.visible,
          opacity: n.opacity,
          blendMode: n.blendMode,
          bounds: n.absoluteBoundingBox,
          fills: n.fills,
          pluginData: Object.fromEntries([...n.pluginData].map(([k, v]) => [k.slice(k.indexOf('|') + 1), v])),
          sharedPluginData: Object.fromEntries((sharedData.get(n.id) || new Map()).entries()),
        })),
    };
    return { figma, hooks };
  }

  return { createFakeFigma };
});

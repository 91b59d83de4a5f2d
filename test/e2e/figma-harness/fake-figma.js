/*
 * A fake `figma` global for the Figma plugin's browser e2e test (test/e2e/figma-plugin.test.ts). The page
 * defines it, then runs the built dist/code.js as Figma's main thread would, with `__html__` set to the built
 * dist/ui.html. figma.showUI puts that HTML in an iframe loaded from a data: URL (an opaque origin, like
 * Figma's), and messages cross exactly as in Figma:
 *   UI -> main: the UI calls parent.postMessage({pluginMessage: msg}, '*'); figma.ui.on('message') gets msg
 *   main -> UI: figma.ui.postMessage(msg) -> iframe.contentWindow.postMessage({pluginMessage: msg}, '*')
 *
 * The scene: a page with a rectangle "Shapes" at (100, 50), 128x128, with an IMAGE fill holding the bytes of
 * test/fixtures/shapes-128.png (window.__SOURCE_PNG_B64), and an ellipse "Circle mask" over its circle. Only
 * what the plugin calls is modelled; transforms are real 2x3 matrices, relativeTransform relative to the
 * parent (no groups here). exportAsync of a rectangle with an image fill returns that image's bytes (the
 * layers are 1:1 with their images); of a frame, a PNG rendered on a canvas from its children (what the mask
 * export asks for: a black frame with a white ellipse in it).
 *
 * window.__figma (test hooks): nodes, images, select(ids), imageBase64(hash), log.
 */
(function () {
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

  const base64ToBytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const bytesToBase64 = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };

  const log = [];
  const nodes = new Map();
  const images = new Map(); // hash -> bytes
  let nextId = 10;
  let nextHash = 1;

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
    detach(node);
    parent.children.splice(Math.min(index, parent.children.length), 0, node);
    node.parent = parent;
  }

  class BaseNode {
    constructor(type, name, id) {
      this.id = id ?? `9:${nextId++}`;
      this.type = type;
      this.name = name;
      this.parent = null;
      this.removed = false;
      this.pluginData = new Map();
      nodes.set(this.id, this);
    }
    getPluginData(key) {
      return this.pluginData.get(key) ?? '';
    }
    setPluginData(key, value) {
      this.pluginData.set(key, String(value));
    }
    remove() {
      log.push(`remove ${this.id}`);
      detach(this);
      const gone = (n) => {
        n.removed = true;
        for (const c of n.children ?? []) gone(c);
      };
      gone(this);
    }
  }

  class ContainerMixin extends BaseNode {
    constructor(type, name, id) {
      super(type, name, id);
      this.children = [];
    }
    appendChild(child) {
      attach(this, this.children.length, child);
    }
    insertChild(index, child) {
      attach(this, index, child);
    }
  }

  class PageNode extends ContainerMixin {
    get absoluteTransform() {
      return copy(IDENTITY);
    }
  }

  class SceneNode extends ContainerMixin {
    constructor(type, name, width, height, x, y, id) {
      super(type, name, id);
      this.visible = true;
      this.width = width;
      this.height = height;
      this._rt = [
        [1, 0, x],
        [0, 1, y],
      ];
      this.fills = [];
      this.strokes = [];
      this.effects = [];
      this.blendMode = 'PASS_THROUGH';
    }
    get relativeTransform() {
      return copy(this._rt);
    }
    set relativeTransform(t) {
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
      const t = this.absoluteTransform; // axis-aligned in this scene
      return { x: t[0][2], y: t[1][2], width: this.width, height: this.height };
    }
    resize(w, h) {
      this.width = w;
      this.height = h;
    }
    resizeWithoutConstraints(w, h) {
      this.resize(w, h);
    }
    clone() {
      const c = new SceneNode(this.type, this.name, this.width, this.height, this.x, this.y);
      c._rt = copy(this._rt);
      c.visible = this.visible;
      c.fills = JSON.parse(JSON.stringify(this.fills));
      c.strokes = JSON.parse(JSON.stringify(this.strokes));
      attach(figma.currentPage, figma.currentPage.children.length, c); // Figma: the copy lands on the current page
      log.push(`clone ${this.id} -> ${c.id}`);
      return c;
    }
    async exportAsync(settings) {
      log.push(`export ${this.id} ${JSON.stringify(settings)}`);
      const image = this.fills.find((p) => p.type === 'IMAGE' && p.visible !== false);
      if (this.type === 'RECTANGLE' && image) return new Uint8Array(images.get(image.imageHash));
      if (this.type === 'FRAME') return renderFrame(this);
      throw new Error(`the fake cannot export a ${this.type}`);
    }
  }

  function cssColor(paint) {
    const c = paint.color;
    const a = paint.opacity ?? 1;
    return `rgba(${Math.round(c.r * 255)}, ${Math.round(c.g * 255)}, ${Math.round(c.b * 255)}, ${a})`;
  }

  /** A frame (clipping) with its direct children, rectangles and ellipses with solid fills. */
  async function renderFrame(frame) {
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(frame.width);
    canvas.height = Math.round(frame.height);
    const ctx = canvas.getContext('2d');
    for (const p of frame.fills) if (p.type === 'SOLID' && p.visible !== false) (ctx.fillStyle = cssColor(p)), ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (const child of frame.children) {
      if (!child.visible) continue;
      const t = child.relativeTransform;
      for (const p of child.fills) {
        if (p.type !== 'SOLID' || p.visible === false) throw new Error(`the fake renders solid fills only, not ${p.type}`);
        ctx.fillStyle = cssColor(p);
        ctx.beginPath();
        if (child.type === 'ELLIPSE') ctx.ellipse(t[0][2] + child.width / 2, t[1][2] + child.height / 2, child.width / 2, child.height / 2, 0, 0, 2 * Math.PI);
        else ctx.rect(t[0][2], t[1][2], child.width, child.height);
        ctx.fill();
      }
    }
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
    const bytes = new Uint8Array(await blob.arrayBuffer());
    window.__figma.maskExports.push(bytesToBase64(bytes));
    return bytes;
  }

  // ---- the scene
  const root = new ContainerMixin('DOCUMENT', 'Document', '0:0');
  const page = new PageNode('PAGE', 'Page 1', '0:1');
  attach(root, 0, page);
  const sourceHash = storeImage(base64ToBytes(window.__SOURCE_PNG_B64));
  const source = new SceneNode('RECTANGLE', 'Shapes', 128, 128, 100, 50, '1:2');
  source.fills = [{ type: 'IMAGE', imageHash: sourceHash, scaleMode: 'FILL', visible: true, opacity: 1 }];
  attach(page, 0, source);
  // the circle of shapes-128.png spans (22,26)-(58,62) in the image
  const mask = new SceneNode('ELLIPSE', 'Circle mask', 36, 36, 100 + 22, 50 + 26, '1:3');
  mask.fills = [{ type: 'SOLID', color: { r: 1, g: 0.2, b: 0.2 }, opacity: 1, visible: true }];
  attach(page, 1, mask);

  // ---- the UI and its messages
  const handlers = { message: [], selectionchange: [] };
  let iframe = null;
  let selection = [source, mask];
  const fire = (type) => setTimeout(() => handlers[type].forEach((h) => h()), 0);

  window.addEventListener('message', (event) => {
    if (!iframe || event.source !== iframe.contentWindow) return;
    const msg = event.data && event.data.pluginMessage;
    if (msg === undefined) return;
    log.push(`ui->main ${msg.type}`);
    for (const h of handlers.message) h(msg, { origin: event.origin });
  });

  const utf8Base64 = (text) => bytesToBase64(new TextEncoder().encode(text));

  const figma = {
    root,
    get currentPage() {
      return pageProxy;
    },
    viewport: { center: { x: 400, y: 300 } },
    showUI(html, options) {
      log.push(`showUI ${JSON.stringify(options)}`);
      iframe = document.createElement('iframe');
      iframe.id = 'plugin-ui';
      iframe.title = options.title;
      iframe.style.width = `${options.width}px`;
      iframe.style.height = `${options.height}px`;
      iframe.src = `data:text/html;base64,${utf8Base64(html)}`;
      document.getElementById('panel').appendChild(iframe);
    },
    ui: {
      postMessage(msg) {
        log.push(`main->ui ${msg.type}`);
        iframe.contentWindow.postMessage({ pluginMessage: msg, pluginId: 'layerloop-e2e' }, '*');
      },
      on(type, cb) {
        handlers[type].push(cb);
      },
    },
    on(type, cb) {
      handlers[type].push(cb);
    },
    notify(message, options) {
      log.push(`notify ${message}${options && options.error ? ' (error)' : ''}`);
      return { cancel() {} };
    },
    clientStorage: {
      store: new Map(Object.entries(window.__CLIENT_STORAGE || {})),
      async getAsync(key) {
        return this.store.has(key) ? JSON.parse(JSON.stringify(this.store.get(key))) : undefined;
      },
      async setAsync(key, value) {
        this.store.set(key, JSON.parse(JSON.stringify(value)));
      },
    },
    async getNodeByIdAsync(id) {
      const n = nodes.get(id);
      return n && !n.removed ? n : null;
    },
    createImage(bytes) {
      const b = new Uint8Array(bytes);
      const png = b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
      if (!png) throw new Error('Image type is unsupported');
      const hash = storeImage(b);
      log.push(`createImage ${hash}`);
      return { hash, getBytesAsync: async () => new Uint8Array(images.get(hash)) };
    },
    createRectangle() {
      const r = new SceneNode('RECTANGLE', 'Rectangle', 100, 100, 0, 0);
      r.fills = [{ type: 'SOLID', color: { r: 0.85, g: 0.85, b: 0.85 }, visible: true, opacity: 1 }];
      attach(page, page.children.length, r);
      log.push(`createRectangle ${r.id}`);
      return r;
    },
    createFrame() {
      const f = new SceneNode('FRAME', 'Frame', 100, 100, 0, 0);
      f.layoutMode = 'NONE';
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
        selection = [...value];
        log.push(`selection ${selection.map((n) => n.id).join(',')}`);
        fire('selectionchange');
        return true;
      }
      return Reflect.set(target, prop, value, target);
    },
  });

  window.figma = figma;
  window.__figma = {
    log,
    nodes,
    images,
    maskExports: [],
    /** what a user's click in the layers panel does */
    select(ids) {
      pageProxy.selection = ids.map((id) => nodes.get(id));
    },
    imageBase64: (hash) => bytesToBase64(images.get(hash)),
    /** the page's layers, back to front, as plain data */
    layers: () =>
      page.children.map((n) => ({
        id: n.id,
        type: n.type,
        name: n.name,
        visible: n.visible,
        bounds: n.absoluteBoundingBox,
        fills: n.fills,
        pluginData: Object.fromEntries(n.pluginData),
      })),
  };
})();

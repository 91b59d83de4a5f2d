/**
 * A fake PhotoshopHost that reproduces Photoshop's documented behaviour (research/host_apis.md B6-B11, C3),
 * strictly where the docs are vague, so plugin bugs show up here before they do in Photoshop:
 *
 * - half-open bounds; getPixels/getSelection trim the requested bounds to where data is (layer pixels with
 *   alpha > 0, the selection's non-zero extent, the canvas) and report the trimmed bounds;
 * - 16-bit documents store samples 0..32768; getPixels converts when another component size is asked for;
 * - a Background layer reads as RGB (3 components), other layers as RGBA;
 * - every write throws outside executeAsModal ("only allowed from inside a modal scope"); a second modal
 *   scope while one is open throws at once; putPixels only targets pixel layers; masks must be 1 component;
 *   createImageData checks its length;
 * - history: each write outside a suspension is a history state; a suspension committed with changes is one
 *   state; resumeHistory(commit=false) and a throwing modal callback roll the document back;
 * - image data: getData() after dispose() throws; `liveImageData()` counts what was never disposed;
 * - new pixel layers appear at the top of the stack (where Photoshop puts them is unspecified), so code that
 *   forgets to move them is caught;
 * - XMP can be made unsupported (Photoshop < 25.0) or failing on write;
 * - new layers are made in the ACTIVE document (Photoshop makes them with batchPlay, which acts on it);
 * - after the user cancels (cancelModal), writes throw and so does resumeHistory;
 * - layers have a look (opacity, fill opacity, blend mode), may be clipped, and may have a user or vector mask.
 * The API-level details (profile names, XMP descriptors, batchPlay quirks) are the real host's, tested against
 * the fake modules in test/e2e/uxp-harness/fake-photoshop.js (test/unit/plugin-uxp/photoshop-host.test.ts).
 */
import { MESSAGES, UserError } from '../../../plugin-uxp/src/errors';
import {
  HostUnsupportedError,
  boundsHeight,
  boundsWidth,
  intersectBounds,
  isEmptyBounds,
  type Bounds,
  type ComponentSize,
  type CreateImageDataOptions,
  type DocumentMode,
  type GetPixelsOptions,
  type GetSelectionOptions,
  type HistorySuspension,
  type HostDocument,
  type HostImageData,
  type HostLayer,
  type LayerLook,
  type LayerMasks,
  type GetLayerMaskOptions,
  type ModalContext,
  type PhotoshopHost,
  type PixelsResult,
  type PutOptions,
} from '../../../plugin-uxp/src/host';

export const MODAL_ERROR = 'Event: this call may modify the state of Photoshop. Such events are only allowed from inside a modal scope';

/** RGBA samples in the document's depth (0..255, or 0..32768 for 16-bit), `width*height*4`. */
export interface FakePixels {
  left: number;
  top: number;
  width: number;
  height: number;
  data: Uint8Array | Uint16Array;
}

export interface FakeLayerSpec {
  name: string;
  kind?: string;
  isBackground?: boolean;
  pixels?: FakePixels;
  children?: FakeLayerSpec[];
  look?: LayerLook;
  clipped?: boolean;
  /** a user (pixel) mask: 255 = shown */
  mask?: { bounds: Bounds; data: Uint8Array };
  vectorMask?: boolean;
}

export const NORMAL_LOOK: LayerLook = { opacity: 100, fillOpacity: 100, blendMode: 'normal' };

export interface FakeDocumentSpec {
  title?: string;
  width: number;
  height: number;
  mode?: DocumentMode;
  bitsPerChannel?: 8 | 16 | 32;
  colorProfile?: string;
  /** top-most first */
  layers: FakeLayerSpec[];
  /** names of the selected layers (default: the first layer) */
  active?: string[];
  selection?: { bounds: Bounds; data: Uint8Array } | null;
  xmp?: 'supported' | 'unsupported' | 'read-only';
}

export interface FakeLayer {
  id: number;
  name: string;
  kind: string;
  isBackground: boolean;
  pixels: FakePixels | null;
  mask: { bounds: Bounds; data: Uint8Array } | null;
  vectorMask: boolean;
  look: LayerLook;
  clipped: boolean;
  children: FakeLayer[] | null;
}

export interface FakeDocument {
  id: number;
  title: string;
  width: number;
  height: number;
  mode: DocumentMode;
  bitsPerChannel: 8 | 16 | 32;
  colorProfile: string;
  layers: FakeLayer[];
  activeLayerIds: number[];
  selection: { bounds: Bounds; data: Uint8Array } | null;
  xmpMode: 'supported' | 'unsupported' | 'read-only';
  xmp: Map<string, string>;
  /** names of the history states, oldest first */
  history: string[];
}

interface FakeImageData extends HostImageData {
  disposed: boolean;
  samples: Uint8Array | Uint16Array | Float32Array;
}

interface OpenSuspension {
  id: number;
  documentID: number;
  name: string;
  snapshot: string;
  changed: boolean;
  open: boolean;
}

const PS16 = 32768;

export class FakePhotoshop implements PhotoshopHost {
  readonly documents: FakeDocument[] = [];
  activeDocumentId: number | null = null;
  /** every call, in order, as 'method' strings (reads and writes) */
  readonly calls: string[] = [];
  /** set to simulate the user pressing Escape on the progress bar: host calls throw from then on */
  cancelModal = false;
  private readonly documentListeners: (() => void)[] = [];
  private nextId = 1;
  private modalDepth = 0;
  private modalCount = 0;
  private readonly images: FakeImageData[] = [];
  private suspensions: OpenSuspension[] = [];

  // ------------------------------------------------------------------------------------ test setup

  addDocument(spec: FakeDocumentSpec): FakeDocument {
    const doc: FakeDocument = {
      id: this.nextId++,
      title: spec.title ?? 'Untitled-1',
      width: spec.width,
      height: spec.height,
      mode: spec.mode ?? 'RGBColorMode',
      bitsPerChannel: spec.bitsPerChannel ?? 8,
      colorProfile: spec.colorProfile ?? 'sRGB IEC61966-2.1',
      layers: [],
      activeLayerIds: [],
      selection: spec.selection ?? null,
      xmpMode: spec.xmp ?? 'supported',
      xmp: new Map(),
      history: ['Open'],
    };
    doc.layers = spec.layers.map((l) => this.makeLayer(l));
    const names = spec.active ?? (spec.layers.length ? [spec.layers[0].name] : []);
    doc.activeLayerIds = names.map((n) => this.layerByName(doc, n).id);
    this.documents.push(doc);
    this.activeDocumentId = doc.id;
    return doc;
  }

  layerByName(doc: FakeDocument, name: string): FakeLayer {
    const hit = walk(doc.layers).find((l) => l.name === name);
    if (!hit) throw new Error(`no layer named ${name}`);
    return hit;
  }

  /** Names from the top of the stack down, groups as "group/child". */
  stack(doc: FakeDocument): string[] {
    const out: string[] = [];
    const visit = (layers: FakeLayer[], prefix: string): void => {
      for (const l of layers) {
        out.push(prefix + l.name);
        if (l.children) visit(l.children, `${prefix}${l.name}/`);
      }
    };
    visit(doc.layers, '');
    return out;
  }

  /** image data handed out and never disposed */
  liveImageData(): number {
    return this.images.filter((i) => !i.disposed).length;
  }

  /** the user selects other layers in the Layers panel */
  setActive(doc: FakeDocument, names: string[]): void {
    doc.activeLayerIds = names.map((n) => this.layerByName(doc, n).id);
  }

  /** the user switches to another open document */
  switchTo(doc: FakeDocument): void {
    this.activeDocumentId = doc.id;
    for (const listener of this.documentListeners) listener();
  }

  get inModal(): boolean {
    return this.modalDepth > 0;
  }

  get modalScopes(): number {
    return this.modalCount;
  }

  // ------------------------------------------------------------------------------------ reads

  activeDocument(): HostDocument | null {
    this.calls.push('activeDocument');
    const doc = this.documents.find((d) => d.id === this.activeDocumentId);
    return doc ? this.hostDocument(doc) : null;
  }

  hostDocument(doc: FakeDocument): HostDocument {
    return {
      id: doc.id,
      title: doc.title,
      width: doc.width,
      height: doc.height,
      mode: doc.mode,
      bitsPerChannel: doc.bitsPerChannel,
      colorProfile: doc.colorProfile,
    };
  }

  activeLayers(documentID: number): HostLayer[] {
    const doc = this.doc(documentID);
    return doc.activeLayerIds.map((id) => this.hostLayer(this.layer(doc, id)));
  }

  findLayer(documentID: number, layerID: number): HostLayer | null {
    const doc = this.documents.find((d) => d.id === documentID);
    const layer = doc ? walk(doc.layers).find((l) => l.id === layerID) : undefined;
    return layer ? this.hostLayer(layer) : null;
  }

  layerIds(documentID: number): number[] {
    return walk(this.doc(documentID).layers).map((l) => l.id);
  }

  async selectionBounds(documentID: number): Promise<Bounds | null> {
    this.calls.push('selectionBounds');
    const sel = this.doc(documentID).selection;
    if (!sel) return null;
    const extent = nonZeroExtent(sel.data, sel.bounds);
    return isEmptyBounds(extent) ? null : extent; // may exceed the canvas, as Photoshop's may
  }

  async getPixels(o: GetPixelsOptions): Promise<PixelsResult> {
    this.calls.push('getPixels');
    const doc = this.doc(o.documentID);
    const layer = this.layer(doc, o.layerID);
    if (layer.kind !== 'pixel' || !layer.pixels) throw new Error(`getPixels: layer ${layer.id} has no pixel data`);
    const extent = layerExtent(layer.pixels);
    const region = intersectBounds(o.sourceBounds ?? extent, extent);
    if (isEmptyBounds(region)) throw new Error('getPixels: the requested area holds no pixels');
    const w = boundsWidth(region);
    const h = boundsHeight(region);
    const components = layer.isBackground ? 3 : 4;
    const samples = allocate(o.componentSize, w * h * components);
    const src = layer.pixels;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const s = ((region.top + y - src.top) * src.width + (region.left + x - src.left)) * 4;
        const d = (y * w + x) * components;
        for (let c = 0; c < components; c++) samples[d + c] = convertSample(src.data[s + c], doc.bitsPerChannel, o.componentSize);
      }
    }
    return { imageData: this.image(samples, w, h, components, o.componentSize, doc.colorProfile), sourceBounds: region };
  }

  async getSelection(o: GetSelectionOptions): Promise<PixelsResult> {
    this.calls.push('getSelection');
    const doc = this.doc(o.documentID);
    const sel = doc.selection;
    if (!sel) throw new Error('getSelection: there is no selection'); // undocumented in Photoshop: the strictest reading
    const canvas = { left: 0, top: 0, right: doc.width, bottom: doc.height };
    const region = intersectBounds(intersectBounds(o.sourceBounds, nonZeroExtent(sel.data, sel.bounds)), canvas);
    if (isEmptyBounds(region)) throw new Error('getSelection: nothing selected in the requested area');
    const w = boundsWidth(region);
    const h = boundsHeight(region);
    const samples = new Uint8Array(w * h);
    const sw = boundsWidth(sel.bounds);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) samples[y * w + x] = sel.data[(region.top + y - sel.bounds.top) * sw + (region.left + x - sel.bounds.left)];
    }
    return { imageData: this.image(samples, w, h, 1, 8, ''), sourceBounds: region };
  }

  async layerMasks(documentID: number, layerID: number): Promise<LayerMasks> {
    this.calls.push('layerMasks');
    const layer = this.layer(this.doc(documentID), layerID);
    return { user: layer.mask !== null, vector: layer.vectorMask };
  }

  async getLayerMask(o: GetLayerMaskOptions): Promise<PixelsResult> {
    this.calls.push('getLayerMask');
    const layer = this.layer(this.doc(o.documentID), o.layerID);
    if (!layer.mask) throw new Error('getLayerMask: the layer has no user mask');
    const w = boundsWidth(o.sourceBounds);
    const h = boundsHeight(o.sourceBounds);
    const samples = new Uint8Array(w * h).fill(255); // a mask shows everything outside its own data
    const m = layer.mask;
    const mw = boundsWidth(m.bounds);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const dx = o.sourceBounds.left + x - m.bounds.left;
        const dy = o.sourceBounds.top + y - m.bounds.top;
        if (dx >= 0 && dy >= 0 && dx < mw && dy < boundsHeight(m.bounds)) samples[y * w + x] = m.data[dy * mw + dx];
      }
    }
    return { imageData: this.image(samples, w, h, 1, 8, ''), sourceBounds: { ...o.sourceBounds } };
  }

  async readXmpProperty(documentID: number, name: string): Promise<string | null> {
    this.calls.push('readXmpProperty');
    const doc = this.doc(documentID);
    if (doc.xmpMode === 'unsupported') throw new HostUnsupportedError('XMP metadata needs Photoshop 25.0 or later');
    return doc.xmp.get(name) ?? null;
  }

  async createImageData(data: Uint8Array, o: CreateImageDataOptions): Promise<HostImageData> {
    this.calls.push('createImageData');
    if (data.length !== o.width * o.height * o.components) {
      throw new Error(`createImageDataFromBuffer: buffer length ${data.length} != ${o.width}*${o.height}*${o.components}`);
    }
    return this.image(new Uint8Array(data), o.width, o.height, o.components, 8, o.components === 1 ? 'Gray Gamma 2.2' : (o.colorProfile ?? ''));
  }

  // ------------------------------------------------------------------------------------ modal scope

  async executeAsModal<T>(commandName: string, fn: (context: ModalContext) => Promise<T>): Promise<T> {
    this.calls.push(`executeAsModal:${commandName}`);
    if (this.modalDepth > 0) throw new UserError(MESSAGES.photoshopBusy);
    this.modalDepth++;
    this.modalCount++;
    const mine: OpenSuspension[] = [];
    const context: ModalContext = {
      isCancelled: false,
      suspendHistory: async (documentID, name) => {
        this.assertModal('suspendHistory');
        const doc = this.doc(documentID);
        const s: OpenSuspension = { id: this.nextId++, documentID, name, snapshot: snapshot(doc), changed: false, open: true };
        this.suspensions.push(s);
        mine.push(s);
        return { historySuspensionID: s.id };
      },
      resumeHistory: async (suspension: HistorySuspension, commit: boolean) => {
        this.assertModal('resumeHistory');
        if (this.cancelModal) throw new Error('resumeHistory: the modal state was cancelled');
        this.resume(suspension.historySuspensionID, commit);
      },
    };
    Object.defineProperty(context, 'isCancelled', { get: () => this.cancelModal });
    try {
      const out = await fn(context);
      for (const s of mine) if (s.open) this.resume(s.id, true); // auto-resume: committed on a normal return
      return out;
    } catch (err) {
      for (const s of mine) if (s.open) this.resume(s.id, false); // ...cancelled if the target function threw
      throw err;
    } finally {
      this.modalDepth--;
    }
  }

  // ------------------------------------------------------------------------------------ writes

  async activateDocument(documentID: number): Promise<void> {
    this.calls.push('activateDocument');
    this.doc(documentID);
    this.activeDocumentId = documentID;
  }

  async setLayerLook(documentID: number, layerID: number, look: LayerLook): Promise<void> {
    this.write('setLayerLook', documentID);
    const doc = this.doc(documentID);
    this.layer(doc, layerID).look = { ...look };
    this.changed(doc, 'Layer Style');
  }

  onDocumentChange(listener: () => void): void {
    this.documentListeners.push(listener);
  }

  async createPixelLayer(documentID: number, name: string): Promise<HostLayer> {
    this.write('createPixelLayer', documentID);
    // batchPlay underneath: the layer goes into the active document, whichever was asked for
    const doc = this.doc(this.activeDocumentId ?? documentID);
    const layer: FakeLayer = { id: this.nextId++, name, kind: 'pixel', isBackground: false, pixels: null, mask: null, vectorMask: false, look: { ...NORMAL_LOOK }, clipped: false, children: null };
    doc.layers.unshift(layer); // top of the stack, not next to the active layer
    doc.activeLayerIds = [layer.id];
    this.changed(doc, 'New Layer');
    return this.hostLayer(layer);
  }

  async moveLayerAbove(documentID: number, layerID: number, targetID: number): Promise<void> {
    this.write('moveLayerAbove', documentID);
    const doc = this.doc(documentID);
    const layer = this.layer(doc, layerID);
    const from = parentList(doc.layers, layerID);
    from.splice(from.indexOf(layer), 1);
    const into = parentList(doc.layers, targetID);
    into.splice(into.findIndex((l) => l.id === targetID), 0, layer);
    this.changed(doc, 'Move');
  }

  async putPixels(o: PutOptions): Promise<void> {
    this.write('putPixels', o.documentID);
    const doc = this.doc(o.documentID);
    const layer = this.layer(doc, o.layerID);
    if (layer.kind !== 'pixel') throw new Error('putPixels: the target must be a pixel layer');
    const img = this.checkImage(o.imageData);
    if (img.components !== 4 && img.components !== 3) throw new Error('putPixels: RGB or RGBA data expected');
    if (o.targetBounds.width !== img.width || o.targetBounds.height !== img.height) {
      throw new Error('putPixels: targetBounds width/height must match the image data');
    }
    const n = img.width * img.height;
    const data = doc.bitsPerChannel === 16 ? new Uint16Array(n * 4) : new Uint8Array(n * 4);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 4; c++) {
        const v = c < img.components ? img.samples[i * img.components + c] : 255;
        data[i * 4 + c] = convertSample(v, 8, doc.bitsPerChannel === 16 ? 16 : 8);
      }
    }
    layer.pixels = { left: o.targetBounds.left, top: o.targetBounds.top, width: img.width, height: img.height, data };
    this.changed(doc, 'Put Pixels');
  }

  async putLayerMask(o: PutOptions): Promise<void> {
    this.write('putLayerMask', o.documentID);
    const doc = this.doc(o.documentID);
    const layer = this.layer(doc, o.layerID);
    const img = this.checkImage(o.imageData);
    if (img.components !== 1) throw new Error('putLayerMask: the image data must be single-component grayscale');
    const { left, top } = o.targetBounds;
    layer.mask = { bounds: { left, top, right: left + img.width, bottom: top + img.height }, data: new Uint8Array(img.samples as Uint8Array) };
    this.changed(doc, 'Layer Mask');
  }

  async selectLayer(documentID: number, layerID: number): Promise<void> {
    this.write('selectLayer', documentID);
    const doc = this.doc(documentID);
    this.layer(doc, layerID);
    doc.activeLayerIds = [layerID];
  }

  async writeXmpProperties(documentID: number, properties: Readonly<Record<string, string>>): Promise<void> {
    this.write('writeXmpProperties', documentID);
    const doc = this.doc(documentID);
    if (doc.xmpMode === 'unsupported') throw new HostUnsupportedError('XMP metadata needs Photoshop 25.0 or later');
    if (doc.xmpMode === 'read-only') throw new Error('batchPlay set XMPMetadataAsUTF8: error -25920');
    for (const [k, v] of Object.entries(properties)) doc.xmp.set(k, v);
    this.changed(doc, 'File Info');
  }

  // ------------------------------------------------------------------------------------ simulation

  /** Save, close and reopen: layer ids and XMP survive; doc.id changes, as in Photoshop. */
  saveAndReopen(doc: FakeDocument): FakeDocument {
    const copy: FakeDocument = JSON.parse(snapshot(doc), reviveTyped) as FakeDocument;
    const reopened: FakeDocument = { ...doc, ...copy, id: this.nextId++, xmp: new Map(doc.xmp), history: ['Open'] };
    this.documents.splice(this.documents.indexOf(doc), 1, reopened);
    this.activeDocumentId = reopened.id;
    return reopened;
  }

  /** Undo the last history state (one step). */
  undo(doc: FakeDocument): void {
    const states = this.undoStack.get(doc.id);
    const last = states?.pop();
    if (!last) throw new Error('nothing to undo');
    restore(doc, last);
    doc.history.pop();
  }

  private readonly undoStack = new Map<number, string[]>();

  /** the document as it was before the current write (for undo), when no suspension is open */
  private beforeWrite: string | null = null;

  private write(method: string, documentID: number): void {
    this.calls.push(method);
    this.assertModal(method);
    if (this.cancelModal) throw new Error(`${method}: the user cancelled the operation`);
    const doc = this.doc(documentID);
    this.beforeWrite = this.suspensions.some((x) => x.open && x.documentID === documentID) ? null : snapshot(doc);
  }

  private assertModal(method: string): void {
    if (this.modalDepth === 0) throw new Error(`${method}: ${MODAL_ERROR}`);
  }

  /** a change: part of an open suspension of the document, or a history state of its own */
  private changed(doc: FakeDocument, stateName: string): void {
    const s = this.suspensions.find((x) => x.open && x.documentID === doc.id);
    if (s) {
      s.changed = true;
      return;
    }
    this.pushUndo(doc, this.beforeWrite ?? snapshot(doc));
    this.beforeWrite = null;
    doc.history.push(stateName);
  }

  private pushUndo(doc: FakeDocument, state: string): void {
    const states = this.undoStack.get(doc.id) ?? [];
    states.push(state);
    this.undoStack.set(doc.id, states);
  }

  private resume(id: number, commit: boolean): void {
    const s = this.suspensions.find((x) => x.id === id && x.open);
    if (!s) throw new Error(`resumeHistory: suspension ${id} is not open`);
    s.open = false;
    const doc = this.doc(s.documentID);
    if (!commit) {
      restore(doc, s.snapshot);
      return;
    }
    if (s.changed) {
      this.pushUndo(doc, s.snapshot);
      doc.history.push(s.name);
    }
  }

  private image(
    samples: Uint8Array | Uint16Array | Float32Array,
    width: number,
    height: number,
    components: number,
    componentSize: ComponentSize,
    colorProfile: string,
  ): FakeImageData {
    const img: FakeImageData = {
      width,
      height,
      components,
      componentSize,
      colorProfile,
      disposed: false,
      samples,
      getData: async () => {
        if (img.disposed) throw new Error('getData: the image data was disposed');
        return samples;
      },
      dispose: () => {
        img.disposed = true;
      },
    };
    this.images.push(img);
    return img;
  }

  private checkImage(data: HostImageData): FakeImageData {
    const img = this.images.find((i) => i === data);
    if (!img) throw new Error('image data not created by this host');
    if (img.disposed) throw new Error('the image data was disposed');
    return img;
  }

  private makeLayer(spec: FakeLayerSpec): FakeLayer {
    return {
      id: this.nextId++,
      name: spec.name,
      kind: spec.kind ?? (spec.children ? 'group' : 'pixel'),
      isBackground: spec.isBackground ?? false,
      pixels: spec.pixels ?? null,
      mask: spec.mask ?? null,
      vectorMask: spec.vectorMask ?? false,
      look: { ...(spec.look ?? NORMAL_LOOK) },
      clipped: spec.clipped ?? false,
      children: spec.children ? spec.children.map((c) => this.makeLayer(c)) : null,
    };
  }

  private hostLayer(layer: FakeLayer): HostLayer {
    const bounds = layer.kind === 'pixel' && layer.pixels ? layerExtent(layer.pixels) : { left: 0, top: 0, right: 0, bottom: 0 };
    return {
      id: layer.id,
      name: layer.name,
      kind: layer.kind,
      bounds: isEmptyBounds(bounds) ? { left: 0, top: 0, right: 0, bottom: 0 } : bounds,
      isBackground: layer.isBackground,
      look: { ...layer.look },
      isClippingMask: layer.clipped,
    };
  }

  private doc(documentID: number): FakeDocument {
    const doc = this.documents.find((d) => d.id === documentID);
    if (!doc) throw new Error(`no document with id ${documentID}`);
    return doc;
  }

  private layer(doc: FakeDocument, layerID: number): FakeLayer {
    const layer = walk(doc.layers).find((l) => l.id === layerID);
    if (!layer) throw new Error(`no layer with id ${layerID}`);
    return layer;
  }
}

function walk(layers: FakeLayer[]): FakeLayer[] {
  const out: FakeLayer[] = [];
  for (const l of layers) {
    out.push(l);
    if (l.children) out.push(...walk(l.children));
  }
  return out;
}

function parentList(layers: FakeLayer[], id: number): FakeLayer[] {
  if (layers.some((l) => l.id === id)) return layers;
  for (const l of layers) {
    if (l.children) {
      const hit = parentList(l.children, id);
      if (hit.length) return hit;
    }
  }
  return [];
}

/** The bounds of the pixels with alpha > 0 (Photoshop trims layer bounds to them). */
export function layerExtent(p: FakePixels): Bounds {
  let left = Infinity;
  let top = Infinity;
  let right = -Infinity;
  let bottom = -Infinity;
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < p.width; x++) {
      if (p.data[(y * p.width + x) * 4 + 3] > 0) {
        left = Math.min(left, x);
        right = Math.max(right, x + 1);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y + 1);
      }
    }
  }
  if (left === Infinity) return { left: 0, top: 0, right: 0, bottom: 0 };
  return { left: p.left + left, top: p.top + top, right: p.left + right, bottom: p.top + bottom };
}

function nonZeroExtent(data: Uint8Array, b: Bounds): Bounds {
  const w = boundsWidth(b);
  const p: FakePixels = { left: b.left, top: b.top, width: w, height: boundsHeight(b), data: new Uint8Array(data.length * 4) };
  for (let i = 0; i < data.length; i++) p.data[i * 4 + 3] = data[i];
  return layerExtent(p);
}

function allocate(size: ComponentSize, n: number): Uint8Array | Uint16Array | Float32Array {
  return size === 8 ? new Uint8Array(n) : size === 16 ? new Uint16Array(n) : new Float32Array(n);
}

/** Photoshop's own depth conversion, as the fake models it. */
function convertSample(v: number, from: 8 | 16 | 32, to: ComponentSize): number {
  if (from === to) return v;
  const unit = from === 8 ? v / 255 : from === 16 ? v / PS16 : v;
  if (to === 8) return Math.round(Math.min(1, Math.max(0, unit)) * 255);
  if (to === 16) return Math.round(Math.min(1, Math.max(0, unit)) * PS16);
  return unit;
}

function snapshot(doc: FakeDocument): string {
  return JSON.stringify({ layers: doc.layers, activeLayerIds: doc.activeLayerIds, xmp: [...doc.xmp] }, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return { $u8: Array.from(v) };
    if (v instanceof Uint16Array) return { $u16: Array.from(v) };
    return v;
  });
}

function reviveTyped(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && '$u8' in v) return new Uint8Array((v as { $u8: number[] }).$u8);
  if (v && typeof v === 'object' && '$u16' in v) return new Uint16Array((v as { $u16: number[] }).$u16);
  return v;
}

function restore(doc: FakeDocument, state: string): void {
  const s = JSON.parse(state, reviveTyped) as { layers: FakeLayer[]; activeLayerIds: number[]; xmp: [string, string][] };
  doc.layers = s.layers;
  doc.activeLayerIds = s.activeLayerIds;
  doc.xmp = new Map(s.xmp);
}

/**
 * A fake FigmaHost: an in-memory node tree with Figma's semantics where the plugin depends on them
 * (see plugin-figma/src/host.ts), so placement and mask bugs show up here rather than in Figma:
 *
 * - relativeTransform is relative to the nearest container (page, frame, component, instance, section);
 *   groups and boolean operations take their box from their children and move them when moved.
 * - children of auto-layout frames are laid out by the frame (left to right / top to bottom from 0)
 *   unless layoutPositioning is 'ABSOLUTE'; setting ABSOLUTE elsewhere throws, as in Figma.
 * - cloneNode puts the copy on the page with the same relativeTransform values; appendChild/insertChild
 *   keep the relativeTransform; nothing can be added inside an instance.
 * - createImage throws over 4096 px a side and on bytes that are not a PNG; plugin data reads ''.
 * - a layer inserted into a main COMPONENT shows in every instance, one inserted into a TRANSFORM_GROUP is
 *   repeated (`duplicatedResults` lists such result layers); an isMask node renders nothing itself.
 * - 'close' listeners run on close(); the temporary mark is what removeTemporaryNodes looks for.
 * The API-level details (fonts of text, shared plugin data, scrolling, exact fills) are the real host's
 * (figma-host.ts), tested against the fake `figma` global in test/e2e/figma-harness/fake-figma.js.
 * - relativeTransform must have unit axes (Figma never scales through it).
 * - exportPng returns a PNG whose IHDR holds the node's rounded absolute size, followed by a JSON chunk
 *   describing what was rendered (decodeFakePng), so tests can check what a mask export contained.
 * - every change is logged (`log`), with 'commit' for commitUndo, to check undo grouping.
 */
import { boundsOf, IDENTITY, invert, multiply, pngSize, translation, type Rect, type Transform } from '../../../plugin-figma/src/geometry';
import type { ExportOptions, FigmaHost, HostNode, LayoutMode, NewImageRect, ShowUiOptions } from '../../../plugin-figma/src/host';
import { maskEffects, maskPaints, type EffectLike, type PaintLike } from '../../../plugin-figma/src/mask-paint';
import type { MainToUi } from '../../../plugin-figma/src/messages';

export interface FakeNode {
  id: string;
  type: string;
  name: string;
  visible: boolean;
  parent: FakeNode | null;
  children: FakeNode[];
  /** relative to the nearest container; ignored for groups (derived from children) */
  relativeTransform: Transform;
  width: number;
  height: number;
  layoutMode: LayoutMode;
  layoutPositioning: 'AUTO' | 'ABSOLUTE';
  fills: PaintLike[];
  strokes: PaintLike[];
  effects: EffectLike[];
  blendMode: string;
  opacity: number;
  isMask: boolean;
  clipsContent: boolean;
  temporary: boolean;
  pluginData: Map<string, string>;
  removed: boolean;
}

const CONTAINERS = ['PAGE', 'FRAME', 'COMPONENT', 'COMPONENT_SET', 'INSTANCE', 'SECTION', 'TRANSFORM_GROUP'];
const DERIVED = ['GROUP', 'BOOLEAN_OPERATION'];
const CAN_HOLD = [...CONTAINERS, ...DERIVED];

export interface NodeOptions {
  name?: string;
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  /** degrees, counter-clockwise (Figma's rotation) */
  rotation?: number;
  /** mirror horizontally */
  flipX?: boolean;
  parent?: FakeNode;
  visible?: boolean;
  layoutMode?: LayoutMode;
  fills?: PaintLike[];
  strokes?: PaintLike[];
  effects?: EffectLike[];
  opacity?: number;
  blendMode?: string;
  isMask?: boolean;
}

export const GREY: PaintLike = { type: 'SOLID', color: { r: 0.85, g: 0.85, b: 0.85 }, opacity: 1 } as PaintLike;
export const PHOTO: PaintLike = { type: 'IMAGE', scaleMode: 'FILL', imageHash: 'photo' } as PaintLike;

export function rotated(x: number, y: number, degrees: number): Transform {
  const r = (degrees * Math.PI) / 180;
  const c = Math.cos(r);
  const s = Math.sin(r);
  return [
    [c, s, x],
    [-s, c, y],
  ];
}

// ------------------------------------------------------------------------------------- fake PNG bytes

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  return out; // CRC left 0: nothing here checks it
}

/** A PNG-shaped byte string: real signature and IHDR, then a 'fAKE' chunk holding `payload` as JSON. */
export function fakePng(width: number, height: number, payload: unknown = null): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const json = new TextEncoder().encode(JSON.stringify(payload));
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('fAKE', json), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface RenderedNode {
  name: string;
  type: string;
  /** relative to the exported node's top-left, canvas units */
  bounds: Rect;
  absoluteTransform: Transform;
  visible: boolean;
  opacity: number;
  blendMode: string;
  isMask: boolean;
  fills: PaintLike[];
  strokes: PaintLike[];
  effects: EffectLike[];
  children: RenderedNode[];
}

export function decodeFakePng(bytes: Uint8Array): { width: number; height: number; scene: RenderedNode } {
  const size = pngSize(bytes);
  if (!size) throw new Error('not a PNG');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = 8 + 12 + 13; // signature + IHDR chunk
  const length = view.getUint32(at);
  const json = new TextDecoder().decode(bytes.subarray(at + 8, at + 8 + length));
  return { ...size, scene: JSON.parse(json) as RenderedNode };
}

// ------------------------------------------------------------------------------------------- the fake

export class FakeFigma implements FigmaHost {
  readonly page: FakeNode;
  private readonly nodes = new Map<string, FakeNode>();
  private nextId = 2;
  private selected: FakeNode[] = [];
  private selectionListeners: (() => void)[] = [];
  private closeListeners: (() => void)[] = [];
  private uiListener: ((message: unknown) => void) | null = null;
  readonly rootData = new Map<string, string>();
  readonly storage = new Map<string, unknown>();
  readonly images = new Map<string, Uint8Array>();
  /** every change, in order; 'commit' marks figma.commitUndo() */
  readonly log: string[] = [];
  readonly uiMessages: MainToUi[] = [];
  readonly notifications: { message: string; error: boolean }[] = [];
  shownUi: ShowUiOptions | null = null;
  /** the UI's side of figma.ui.postMessage (set to bridge a UI under test) */
  onPost: ((message: MainToUi) => void) | null = null;
  center = { x: 500, y: 400 };
  /** make the next exportPng of this node id throw */
  failExportOf: string | null = null;
  /** make setRelativeTransform throw after this many successful calls */
  failTransformAfter: number | null = null;
  /** make appendChild throw */
  failAppend = false;

  constructor() {
    this.page = this.make('PAGE', { name: 'Page 1' }, null, '0:1');
  }

  // ---- building scenes

  private make(type: string, o: NodeOptions, parent: FakeNode | null, id = `1:${this.nextId++}`): FakeNode {
    let t = o.rotation ? rotated(o.x ?? 0, o.y ?? 0, o.rotation) : translation(o.x ?? 0, o.y ?? 0);
    if (o.flipX) t = multiply(t, [[-1, 0, o.width ?? 100], [0, 1, 0]]);
    const node: FakeNode = {
      id,
      type,
      name: o.name ?? `${type.toLowerCase()} ${id}`,
      visible: o.visible ?? true,
      parent: null,
      children: [],
      relativeTransform: t,
      width: o.width ?? 100,
      height: o.height ?? 100,
      layoutMode: o.layoutMode ?? 'NONE',
      layoutPositioning: 'AUTO',
      fills: o.fills ?? (type === 'FRAME' ? [{ type: 'SOLID', color: { r: 1, g: 1, b: 1 } } as PaintLike] : type === 'GROUP' ? [] : [GREY]),
      strokes: o.strokes ?? [],
      effects: o.effects ?? [],
      blendMode: o.blendMode ?? (DERIVED.includes(type) ? 'PASS_THROUGH' : 'NORMAL'),
      opacity: o.opacity ?? 1,
      isMask: o.isMask ?? false,
      clipsContent: type === 'FRAME',
      temporary: false,
      pluginData: new Map(),
      removed: false,
    };
    this.nodes.set(id, node);
    if (parent) {
      // building a scene (not the plugin adding layers): instances may get children here
      parent.children.push(node);
      node.parent = parent;
    }
    return node;
  }

  add(type: string, o: NodeOptions = {}): FakeNode {
    return this.make(type, o, o.parent ?? this.page);
  }
  frame(o: NodeOptions = {}): FakeNode {
    return this.add('FRAME', o);
  }
  rect(o: NodeOptions = {}): FakeNode {
    return this.add('RECTANGLE', o);
  }
  ellipse(o: NodeOptions = {}): FakeNode {
    return this.add('ELLIPSE', o);
  }
  photo(o: NodeOptions = {}): FakeNode {
    return this.add('RECTANGLE', { fills: [PHOTO], ...o });
  }
  /** a group of these nodes, in their (common) parent, where the first of them was */
  group(children: FakeNode[], o: { name?: string; type?: 'GROUP' | 'BOOLEAN_OPERATION' } = {}): FakeNode {
    const parent = children[0].parent!;
    const index = parent.children.indexOf(children[0]);
    const group = this.make(o.type ?? 'GROUP', { name: o.name }, null);
    parent.children.splice(index, 0, group);
    group.parent = parent;
    for (const child of children) {
      this.detach(child);
      group.children.push(child);
      child.parent = group;
    }
    return group;
  }
  tag(node: FakeNode, documentId: string, editId: string): void {
    node.pluginData.set('documentId', documentId);
    node.pluginData.set('editId', editId);
  }
  /** what the user selects; fires selectionchange */
  setSelection(...nodes: FakeNode[]): void {
    this.selected = nodes;
    for (const listener of this.selectionListeners) listener();
  }
  get(id: string): FakeNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }
  /** nodes on the page (not removed), depth first */
  all(): FakeNode[] {
    const out: FakeNode[] = [];
    const walk = (n: FakeNode) => {
      for (const c of n.children) {
        out.push(c);
        walk(c);
      }
    };
    walk(this.page);
    return out;
  }
  /** the user closes the plugin */
  close(): void {
    for (const listener of this.closeListeners) listener();
  }
  /** result layers Figma would show more than once (in a main component's instances, a transform group's repeats) */
  duplicatedResults(): FakeNode[] {
    return this.all().filter((n) => n.pluginData.has('editId') && this.inType(n.parent, ['COMPONENT', 'COMPONENT_SET', 'TRANSFORM_GROUP']));
  }
  /** the UI's side: deliver a message to the main thread's listener */
  fromUi(message: unknown): void {
    if (!this.uiListener) throw new Error('the main thread is not listening');
    this.uiListener(message);
  }

  // ---- geometry with Figma's rules

  private isContainer(n: FakeNode): boolean {
    return CONTAINERS.includes(n.type);
  }

  private containerOf(n: FakeNode | null): FakeNode | null {
    let p = n;
    while (p && !this.isContainer(p)) p = p.parent;
    return p;
  }

  private flowTranslation(node: FakeNode): Transform | null {
    const parent = node.parent;
    if (!parent || parent.layoutMode === 'NONE' || node.layoutPositioning === 'ABSOLUTE') return null;
    let offset = 0;
    for (const sibling of parent.children) {
      if (sibling === node) break;
      if (sibling.layoutPositioning === 'AUTO') offset += parent.layoutMode === 'VERTICAL' ? sibling.height : sibling.width;
    }
    const rot = node.relativeTransform;
    return parent.layoutMode === 'VERTICAL'
      ? [
          [rot[0][0], rot[0][1], 0],
          [rot[1][0], rot[1][1], offset],
        ]
      : [
          [rot[0][0], rot[0][1], offset],
          [rot[1][0], rot[1][1], 0],
        ];
  }

  absoluteTransform(node: FakeNode): Transform {
    if (node.type === 'PAGE') return IDENTITY;
    if (DERIVED.includes(node.type)) {
      const b = this.bounds(node);
      return b ? translation(b.x, b.y) : IDENTITY;
    }
    const container = this.containerOf(node.parent);
    const base = container ? this.absoluteTransform(container) : IDENTITY;
    return multiply(base, this.flowTranslation(node) ?? node.relativeTransform);
  }

  bounds(node: FakeNode): Rect | null {
    if (node.type === 'PAGE') return null;
    if (DERIVED.includes(node.type)) {
      const boxes = node.children.map((c) => this.bounds(c)).filter((b): b is Rect => b !== null);
      if (boxes.length === 0) return null;
      const x = Math.min(...boxes.map((b) => b.x));
      const y = Math.min(...boxes.map((b) => b.y));
      return { x, y, width: Math.max(...boxes.map((b) => b.x + b.width)) - x, height: Math.max(...boxes.map((b) => b.y + b.height)) - y };
    }
    return boundsOf(this.absoluteTransform(node), node.width, node.height);
  }

  private size(node: FakeNode): { width: number; height: number } {
    const b = DERIVED.includes(node.type) ? this.bounds(node) : null;
    return b ? { width: b.width, height: b.height } : { width: node.width, height: node.height };
  }

  private inInstance(node: FakeNode): boolean {
    for (let n: FakeNode | null = node; n; n = n.parent) if (n.type === 'INSTANCE') return true;
    return false;
  }

  private inType(node: FakeNode | null, types: string[]): boolean {
    for (let n = node; n; n = n.parent) if (types.includes(n.type)) return true;
    return false;
  }

  snapshot(node: FakeNode): HostNode {
    const { width, height } = this.size(node);
    return {
      id: node.id,
      type: node.type,
      name: node.name,
      visible: node.visible,
      parentId: node.parent?.id ?? null,
      index: node.parent ? node.parent.children.indexOf(node) : 0,
      absoluteTransform: this.absoluteTransform(node),
      width,
      height,
      bounds: this.bounds(node),
      layoutMode: node.layoutMode,
      inInstance: this.inInstance(node),
      inMainComponent: this.inType(node, ['COMPONENT', 'COMPONENT_SET']),
      inTransformGroup: this.inType(node.parent, ['TRANSFORM_GROUP']),
      opacity: node.opacity,
      blendMode: node.blendMode,
      hasImageFill: node.fills.some((p) => p.type === 'IMAGE' && p.visible !== false),
    };
  }

  private live(id: string): FakeNode {
    const node = this.nodes.get(id);
    if (!node || node.removed) throw new Error(`The node (instance sublayer or table cell) with id "${id}" does not exist`);
    return node;
  }

  private detach(node: FakeNode): void {
    if (node.parent) node.parent.children.splice(node.parent.children.indexOf(node), 1);
    node.parent = null;
  }

  private attach(parent: FakeNode, node: FakeNode, index: number): void {
    if (!CAN_HOLD.includes(parent.type)) throw new Error(`Cannot add children to a ${parent.type}`);
    if (this.inInstance(parent)) throw new Error('Cannot move node. New parent is an instance or is inside of an instance');
    if (index < 0 || index > parent.children.length + (node.parent === parent ? -1 : 0)) throw new Error(`insertChild: index ${index} out of range`);
    this.detach(node);
    parent.children.splice(index, 0, node);
    node.parent = parent;
  }

  /** move every non-derived node under a group by (dx, dy) in their container's space */
  private shift(group: FakeNode, dx: number, dy: number): void {
    for (const child of group.children) {
      if (DERIVED.includes(child.type)) this.shift(child, dx, dy);
      else {
        const t = child.relativeTransform;
        child.relativeTransform = [
          [t[0][0], t[0][1], t[0][2] + dx],
          [t[1][0], t[1][1], t[1][2] + dy],
        ];
      }
    }
  }

  // ---- FigmaHost: the UI

  showUi(options: ShowUiOptions): void {
    this.shownUi = options;
  }
  postToUi(message: MainToUi): void {
    this.uiMessages.push(message);
    // like figma.ui.postMessage: a structured clone, delivered later
    if (this.onPost) {
      const deliver = this.onPost;
      const copy = structuredClone(message);
      setTimeout(() => deliver(copy), 0);
    }
  }
  onUiMessage(listener: (message: unknown) => void): void {
    this.uiListener = listener;
  }
  onSelectionChange(listener: () => void): void {
    this.selectionListeners.push(listener);
  }
  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }
  notify(message: string, options?: { error?: boolean }): void {
    this.notifications.push({ message, error: options?.error ?? false });
  }

  // ---- FigmaHost: reading

  selection(): HostNode[] {
    return this.selected.filter((n) => !n.removed).map((n) => this.snapshot(n));
  }
  async node(id: string): Promise<HostNode | null> {
    const node = this.nodes.get(id);
    return node && !node.removed ? this.snapshot(node) : null;
  }
  getPluginData(nodeId: string, key: string): string {
    return this.live(nodeId).pluginData.get(key) ?? '';
  }
  setPluginData(nodeId: string, key: string, value: string): void {
    const node = this.live(nodeId);
    if (value === '') node.pluginData.delete(key);
    else node.pluginData.set(key, value);
    this.log.push(`pluginData:${nodeId}:${key}`);
  }
  getDocumentData(key: string): string {
    return this.rootData.get(key) ?? '';
  }
  setDocumentData(key: string, value: string): void {
    this.rootData.set(key, value);
    this.log.push(`rootData:${key}`);
  }
  async loadSetting(key: string): Promise<unknown> {
    return structuredClone(this.storage.get(key));
  }
  async saveSetting(key: string, value: unknown): Promise<void> {
    this.storage.set(key, structuredClone(value));
  }
  viewportCenter(): { x: number; y: number } {
    return this.center;
  }

  // ---- FigmaHost: pixels

  private render(node: FakeNode, origin: Rect): RenderedNode {
    const b = this.bounds(node)!;
    return {
      name: node.name,
      type: node.type,
      bounds: { x: b.x - origin.x, y: b.y - origin.y, width: b.width, height: b.height },
      absoluteTransform: this.absoluteTransform(node),
      visible: node.visible,
      opacity: node.opacity,
      blendMode: node.blendMode,
      isMask: node.isMask,
      fills: node.fills,
      strokes: node.strokes,
      effects: node.effects,
      children: node.children.map((c) => this.render(c, origin)),
    };
  }

  async exportPng(nodeId: string, options: ExportOptions = {}): Promise<Uint8Array> {
    const node = this.live(nodeId);
    if (this.failExportOf === nodeId) throw new Error('export failed (simulated)');
    const b = this.bounds(node);
    if (!b) throw new Error('cannot export a page here');
    this.log.push(`export:${nodeId}${options.ownLookOnly ? ':own-look' : ''}`);
    const scene = this.render(node, b);
    if (options.ownLookOnly) Object.assign(scene, { opacity: 1, blendMode: node.blendMode === 'PASS_THROUGH' ? 'PASS_THROUGH' : 'NORMAL' });
    return fakePng(Math.max(1, Math.round(b.width)), Math.max(1, Math.round(b.height)), scene);
  }

  createImage(png: Uint8Array): string {
    const size = pngSize(png);
    if (!size) throw new Error('Image type is unsupported');
    if (size.width > 4096 || size.height > 4096) throw new Error('Image is too large');
    const hash = `img${this.images.size + 1}`;
    this.images.set(hash, png);
    return hash;
  }

  // ---- FigmaHost: writing

  createMaskFrame(bounds: Rect, name: string): string {
    const frame = this.make('FRAME', { name, x: bounds.x, y: bounds.y, width: bounds.width, height: bounds.height, fills: [{ type: 'SOLID', color: { r: 0, g: 0, b: 0 } } as PaintLike] }, this.page);
    frame.temporary = true;
    this.log.push(`create:FRAME:${frame.id}`);
    return frame.id;
  }

  removeTemporaryNodes(): number {
    const left = this.page.children.filter((n) => n.temporary);
    for (const n of left) this.remove(n.id);
    return left.length;
  }

  private copy(node: FakeNode): FakeNode {
    const copy: FakeNode = {
      ...node,
      id: `1:${this.nextId++}`,
      parent: null,
      children: [],
      pluginData: new Map(node.pluginData),
      fills: [...node.fills],
      strokes: [...node.strokes],
      effects: [...node.effects],
    };
    this.nodes.set(copy.id, copy);
    for (const child of node.children) {
      const c = this.copy(child);
      c.parent = copy;
      copy.children.push(c);
    }
    return copy;
  }

  cloneNode(nodeId: string): string {
    const source = this.live(nodeId);
    // every relativeTransform value is kept, now relative to the page (for a group: its children's)
    const copy = this.copy(source);
    copy.layoutPositioning = 'AUTO';
    this.page.children.push(copy);
    copy.parent = this.page;
    this.log.push(`create:${copy.type}:${copy.id}`);
    return copy.id;
  }

  appendChild(parentId: string, childId: string): void {
    if (this.failAppend) throw new Error('appendChild failed (simulated)');
    const parent = this.live(parentId);
    this.attach(parent, this.live(childId), parent.children.length);
    this.log.push(`append:${childId}>${parentId}`);
  }

  insertChild(parentId: string, index: number, childId: string): void {
    this.attach(this.live(parentId), this.live(childId), index);
    this.log.push(`insert:${childId}>${parentId}@${index}`);
  }

  setRelativeTransform(nodeId: string, t: Transform): void {
    if (this.failTransformAfter !== null && this.failTransformAfter-- <= 0) throw new Error('relativeTransform failed (simulated)');
    const node = this.live(nodeId);
    const unit = (a: number, b: number) => Math.abs(Math.hypot(a, b) - 1) < 1e-6;
    if (!unit(t[0][0], t[1][0]) || !unit(t[0][1], t[1][1])) throw new Error('relativeTransform must not scale: use resize');
    if (DERIVED.includes(node.type)) {
      const container = this.containerOf(node.parent);
      const current = multiply(invert(container ? this.absoluteTransform(container) : IDENTITY), this.absoluteTransform(node));
      this.shift(node, t[0][2] - current[0][2], t[1][2] - current[1][2]);
    } else {
      node.relativeTransform = t;
    }
    this.log.push(`transform:${nodeId}`);
  }

  setAbsolutePositioning(nodeId: string): void {
    const node = this.live(nodeId);
    if (!node.parent || node.parent.layoutMode === 'NONE') {
      throw new Error('Can only set layoutPositioning = ABSOLUTE if the parent node has layoutMode !== NONE');
    }
    node.layoutPositioning = 'ABSOLUTE';
    this.log.push(`absolute:${nodeId}`);
  }

  async paintAsMask(nodeId: string): Promise<void> {
    const node = this.live(nodeId);
    node.visible = true;
    node.isMask = false;
    const visit = (n: FakeNode) => {
      n.fills = maskPaints(n.fills);
      n.strokes = maskPaints(n.strokes);
      n.effects = maskEffects(n.effects);
      if (n.blendMode !== 'PASS_THROUGH') n.blendMode = 'NORMAL';
      n.children.forEach(visit);
    };
    visit(node);
    this.log.push(`paintAsMask:${nodeId}`);
  }

  createImageRect(rect: NewImageRect): string {
    const node = this.make('RECTANGLE', { name: rect.name, width: rect.width, height: rect.height, visible: rect.visible, opacity: rect.opacity, blendMode: rect.blendMode, fills: [{ type: 'IMAGE', scaleMode: 'CROP', imageHash: rect.imageHash } as PaintLike] }, this.page);
    this.log.push(`create:RECTANGLE:${node.id}`);
    return node.id;
  }

  remove(nodeId: string): void {
    const node = this.live(nodeId);
    this.detach(node);
    const mark = (n: FakeNode) => {
      n.removed = true;
      n.children.forEach(mark);
    };
    mark(node);
    this.log.push(`remove:${nodeId}`);
  }

  select(nodeIds: string[]): void {
    this.selected = nodeIds.map((id) => this.live(id));
    this.log.push(`select:${nodeIds.join(',')}`);
  }

  commitUndo(): void {
    this.log.push('commit');
  }
}

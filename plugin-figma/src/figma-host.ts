/**
 * The real FigmaHost: a thin pass-through to the `figma` global (the only file that touches it). Logic
 * lives in the modules that use the port; what is here is one Figma call, or a few, per method.
 *
 * Compiles without the DOM lib, against @figma/plugin-typings (tsconfig.code.json).
 */
import { IDENTITY, type Rect, type Transform } from './geometry';
import type { FigmaHost, HostNode, LayoutMode, NewImageRect, ShowUiOptions } from './host';
import type { MainToUi } from './messages';
import { maskEffects, maskPaints } from './mask-paint';

type ParentNode = BaseNode & ChildrenMixin;

function copyTransform(t: Transform): Transform {
  return [
    [t[0][0], t[0][1], t[0][2]],
    [t[1][0], t[1][1], t[1][2]],
  ];
}

function isInInstance(node: BaseNode): boolean {
  for (let n: BaseNode | null = node; n; n = n.parent) if (n.type === 'INSTANCE') return true;
  return false;
}

function hasVisibleImageFill(node: BaseNode): boolean {
  if (!('fills' in node) || !Array.isArray(node.fills)) return false;
  return (node.fills as readonly Paint[]).some((p) => p.type === 'IMAGE' && p.visible !== false);
}

function snapshot(node: BaseNode): HostNode {
  const parent = node.parent;
  const box = 'absoluteBoundingBox' in node ? node.absoluteBoundingBox : null;
  const layoutMode: LayoutMode = 'layoutMode' in node ? node.layoutMode : 'NONE';
  return {
    id: node.id,
    type: node.type,
    name: node.name,
    visible: 'visible' in node ? node.visible : true,
    parentId: parent ? parent.id : null,
    index: parent ? parent.children.indexOf(node as SceneNode) : 0,
    absoluteTransform: 'absoluteTransform' in node ? copyTransform(node.absoluteTransform) : IDENTITY,
    width: 'width' in node ? node.width : 0,
    height: 'height' in node ? node.height : 0,
    bounds: box ? { x: box.x, y: box.y, width: box.width, height: box.height } : null,
    layoutMode,
    inInstance: isInInstance(node),
    hasImageFill: hasVisibleImageFill(node),
  };
}

const WHITE_FILL: SolidPaint = { type: 'SOLID', color: { r: 1, g: 1, b: 1 } };

/** The node and its subtree painted as a mask (see FigmaHost.paintAsMask). */
function paintSubtreeAsMask(node: SceneNode): void {
  if ('fills' in node) node.fills = Array.isArray(node.fills) ? maskPaints(node.fills as readonly Paint[]) : [WHITE_FILL];
  if ('strokes' in node) node.strokes = maskPaints(node.strokes);
  if ('effects' in node) node.effects = maskEffects(node.effects);
  if ('blendMode' in node && node.blendMode !== 'PASS_THROUGH') node.blendMode = 'NORMAL';
  if ('children' in node) for (const child of node.children) paintSubtreeAsMask(child);
}

export class RealFigmaHost implements FigmaHost {
  /** nodes handed out or created, by id: the by-id operations work on these */
  private readonly known = new Map<string, BaseNode>();

  constructor(private readonly html: string) {}

  private remember<T extends BaseNode>(node: T): T {
    this.known.set(node.id, node);
    return node;
  }

  private base(id: string): BaseNode {
    const node = this.known.get(id);
    if (!node || node.removed) throw new Error(`the layer ${id} no longer exists`);
    return node;
  }

  private scene(id: string): SceneNode {
    const node = this.base(id);
    if (node.type === 'PAGE' || node.type === 'DOCUMENT') throw new Error(`${id} is a ${node.type.toLowerCase()}, not a layer`);
    return node as SceneNode;
  }

  private container(id: string): ParentNode {
    const node = this.base(id);
    if (!('insertChild' in node)) throw new Error(`"${node.name}" cannot hold layers`);
    return node as ParentNode;
  }

  showUi(options: ShowUiOptions): void {
    figma.showUI(this.html, { width: options.width, height: options.height, title: options.title, themeColors: true });
  }

  postToUi(message: MainToUi): void {
    figma.ui.postMessage(message);
  }

  onUiMessage(listener: (message: unknown) => void): void {
    figma.ui.on('message', (message: unknown) => listener(message));
  }

  onSelectionChange(listener: () => void): void {
    figma.on('selectionchange', listener);
  }

  notify(message: string, options?: { error?: boolean }): void {
    figma.notify(message, { error: options?.error ?? false });
  }

  selection(): HostNode[] {
    return figma.currentPage.selection.map((node) => snapshot(this.remember(node)));
  }

  async node(id: string): Promise<HostNode | null> {
    const node = await figma.getNodeByIdAsync(id);
    if (!node || node.removed) return null;
    return snapshot(this.remember(node));
  }

  getPluginData(nodeId: string, key: string): string {
    return this.base(nodeId).getPluginData(key);
  }

  setPluginData(nodeId: string, key: string, value: string): void {
    this.base(nodeId).setPluginData(key, value);
  }

  getDocumentData(key: string): string {
    return figma.root.getPluginData(key);
  }

  setDocumentData(key: string, value: string): void {
    figma.root.setPluginData(key, value);
  }

  loadSetting(key: string): Promise<unknown> {
    return figma.clientStorage.getAsync(key);
  }

  saveSetting(key: string, value: unknown): Promise<void> {
    return figma.clientStorage.setAsync(key, value);
  }

  viewportCenter(): { x: number; y: number } {
    const { x, y } = figma.viewport.center;
    return { x, y };
  }

  async exportPng(nodeId: string): Promise<Uint8Array> {
    const node = this.scene(nodeId);
    return node.exportAsync({ format: 'PNG', useAbsoluteBounds: true, colorProfile: 'SRGB', constraint: { type: 'SCALE', value: 1 } });
  }

  createImage(png: Uint8Array): string {
    return figma.createImage(png).hash;
  }

  createMaskFrame(bounds: Rect, name: string): string {
    const frame = this.remember(figma.createFrame()); // on the current page: x/y are page coordinates
    frame.name = name;
    frame.fills = [{ type: 'SOLID', color: { r: 0, g: 0, b: 0 } }];
    frame.strokes = [];
    frame.clipsContent = true;
    frame.resizeWithoutConstraints(bounds.width, bounds.height);
    frame.x = bounds.x;
    frame.y = bounds.y;
    return frame.id;
  }

  cloneNode(nodeId: string): string {
    const node = this.scene(nodeId);
    return this.remember(node.clone()).id;
  }

  appendChild(parentId: string, childId: string): void {
    this.container(parentId).appendChild(this.scene(childId));
  }

  insertChild(parentId: string, index: number, childId: string): void {
    this.container(parentId).insertChild(index, this.scene(childId));
  }

  setRelativeTransform(nodeId: string, transform: Transform): void {
    const node = this.scene(nodeId);
    node.relativeTransform = copyTransform(transform);
  }

  setAbsolutePositioning(nodeId: string): void {
    const node = this.scene(nodeId);
    if (!('layoutPositioning' in node)) throw new Error(`"${node.name}" has no layout positioning`);
    node.layoutPositioning = 'ABSOLUTE';
  }

  paintAsMask(nodeId: string): void {
    const node = this.scene(nodeId);
    node.visible = true;
    paintSubtreeAsMask(node);
  }

  createImageRect(rect: NewImageRect): string {
    const node = this.remember(figma.createRectangle());
    node.name = rect.name;
    node.resize(rect.width, rect.height);
    node.fills = [{ type: 'IMAGE', imageHash: rect.imageHash, scaleMode: 'FILL' }];
    node.strokes = [];
    node.visible = rect.visible;
    return node.id;
  }

  remove(nodeId: string): void {
    const node = this.known.get(nodeId);
    this.known.delete(nodeId);
    if (node && !node.removed) node.remove();
  }

  select(nodeIds: string[]): void {
    const nodes = nodeIds.map((id) => this.scene(id));
    try {
      figma.currentPage.selection = nodes;
    } catch {
      // the user switched pages meanwhile: the layers are there, just not selected
    }
  }

  commitUndo(): void {
    figma.commitUndo();
  }
}

/**
 * The real FigmaHost: a thin pass-through to Figma's plugin API (the only file that touches it; code.ts hands
 * it the `figma` global, the unit tests a fake of it). Logic lives in the modules that use the port; what is
 * here is one Figma call, or a few, per method.
 *
 * Compiles without the DOM lib against @figma/plugin-typings' API types (no globals needed).
 */
/// <reference types="@figma/plugin-typings/plugin-api" />
import { IDENTITY, type Rect, type Transform } from './geometry';
import { PluginError, type ExportOptions, type FigmaHost, type HostNode, type LayoutMode, type NewImageRect, type ShowUiOptions } from './host';
import type { MainToUi } from './messages';
import { maskEffects, maskPaints } from './mask-paint';

/**
 * The namespace of the plugin's data on nodes and on the file. Shared plugin data is keyed by this name, not by
 * the plugin id, so result tags and document keys survive publishing the plugin under a Figma-issued id.
 */
export const DATA_NAMESPACE = 'layerloop';
/** Shared plugin data marking a node the plugin made for a moment (mask frames, export copies). */
export const TEMPORARY_KEY = 'temporary';

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

function isInMainComponent(node: BaseNode): boolean {
  for (let n: BaseNode | null = node; n; n = n.parent) if (n.type === 'COMPONENT' || n.type === 'COMPONENT_SET') return true;
  return false;
}

function isInTransformGroup(node: BaseNode): boolean {
  for (let n: BaseNode | null = node.parent; n; n = n.parent) if (n.type === 'TRANSFORM_GROUP') return true;
  return false;
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
    inMainComponent: isInMainComponent(node),
    inTransformGroup: isInTransformGroup(node),
    hasImageFill: hasVisibleImageFill(node),
    opacity: 'opacity' in node ? node.opacity : 1,
    blendMode: 'blendMode' in node ? node.blendMode : 'PASS_THROUGH',
  };
}

const BLEND_MODES: readonly BlendMode[] = [
  'PASS_THROUGH', 'NORMAL', 'DARKEN', 'MULTIPLY', 'LINEAR_BURN', 'COLOR_BURN', 'LIGHTEN', 'SCREEN', 'LINEAR_DODGE', 'COLOR_DODGE',
  'OVERLAY', 'SOFT_LIGHT', 'HARD_LIGHT', 'DIFFERENCE', 'EXCLUSION', 'HUE', 'SATURATION', 'COLOR', 'LUMINOSITY',
];

function blendModeOf(name: string): BlendMode {
  const mode = BLEND_MODES.find((m) => m === name);
  return mode === undefined || mode === 'PASS_THROUGH' ? 'NORMAL' : mode; // a rectangle cannot pass through
}

const WHITE_FILL: SolidPaint = { type: 'SOLID', color: { r: 1, g: 1, b: 1 } };

/** Every TEXT node in the subtree (their fonts must be loaded before their paints change). */
function textNodes(node: SceneNode): TextNode[] {
  const out: TextNode[] = node.type === 'TEXT' ? [node] : [];
  if ('children' in node) for (const child of node.children) out.push(...textNodes(child));
  return out;
}

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

  constructor(
    private readonly html: string,
    private readonly figma: PluginAPI,
  ) {}

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
    this.figma.showUI(this.html, { width: options.width, height: options.height, title: options.title, themeColors: true });
  }

  postToUi(message: MainToUi): void {
    this.figma.ui.postMessage(message);
  }

  onUiMessage(listener: (message: unknown) => void): void {
    this.figma.ui.on('message', (message: unknown) => listener(message));
  }

  onSelectionChange(listener: () => void): void {
    this.figma.on('selectionchange', listener);
  }

  onClose(listener: () => void): void {
    this.figma.on('close', listener);
  }

  notify(message: string, options?: { error?: boolean }): void {
    this.figma.notify(message, { error: options?.error ?? false });
  }

  selection(): HostNode[] {
    return this.figma.currentPage.selection.map((node) => snapshot(this.remember(node)));
  }

  async node(id: string): Promise<HostNode | null> {
    const node = await this.figma.getNodeByIdAsync(id);
    if (!node || node.removed) return null;
    return snapshot(this.remember(node));
  }

  // Plugin data lives in the shared namespace; private plugin data (keyed by the plugin id) is still read, for
  // files edited while the plugin had its development id.
  getPluginData(nodeId: string, key: string): string {
    const node = this.base(nodeId);
    return node.getSharedPluginData(DATA_NAMESPACE, key) || node.getPluginData(key);
  }

  setPluginData(nodeId: string, key: string, value: string): void {
    this.base(nodeId).setSharedPluginData(DATA_NAMESPACE, key, value);
  }

  getDocumentData(key: string): string {
    return this.figma.root.getSharedPluginData(DATA_NAMESPACE, key) || this.figma.root.getPluginData(key);
  }

  setDocumentData(key: string, value: string): void {
    this.figma.root.setSharedPluginData(DATA_NAMESPACE, key, value);
  }

  loadSetting(key: string): Promise<unknown> {
    return this.figma.clientStorage.getAsync(key);
  }

  saveSetting(key: string, value: unknown): Promise<void> {
    return this.figma.clientStorage.setAsync(key, value);
  }

  viewportCenter(): { x: number; y: number } {
    const { x, y } = this.figma.viewport.center;
    return { x, y };
  }

  async exportPng(nodeId: string, options: ExportOptions = {}): Promise<Uint8Array> {
    const node = this.scene(nodeId);
    const settings: ExportSettingsImage = { format: 'PNG', useAbsoluteBounds: true, colorProfile: 'SRGB', constraint: { type: 'SCALE', value: 1 } };
    if (!options.ownLookOnly || !('opacity' in node)) return node.exportAsync(settings);
    // a copy at full opacity with normal blending: the result layer gets the source's opacity and blend mode
    // itself, so exporting them too would apply them twice
    const copy = node.clone();
    copy.setSharedPluginData(DATA_NAMESPACE, TEMPORARY_KEY, '1');
    try {
      copy.relativeTransform = copyTransform(node.absoluteTransform); // on the page: relative = absolute
      copy.opacity = 1;
      if ('blendMode' in copy && copy.blendMode !== 'PASS_THROUGH') copy.blendMode = 'NORMAL';
      return await copy.exportAsync(settings);
    } finally {
      if (!copy.removed) copy.remove();
    }
  }

  createImage(png: Uint8Array): string {
    return this.figma.createImage(png).hash;
  }

  createMaskFrame(bounds: Rect, name: string): string {
    const frame = this.remember(this.figma.createFrame()); // on the current page: x/y are page coordinates
    frame.name = name;
    frame.setSharedPluginData(DATA_NAMESPACE, TEMPORARY_KEY, '1');
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

  async paintAsMask(nodeId: string): Promise<void> {
    const node = this.scene(nodeId);
    // repainting text changes how it renders: Figma refuses it until the text's fonts are loaded
    for (const text of textNodes(node)) {
      if (text.hasMissingFont) {
        throw new PluginError(`The mask "${node.name}" uses a font this computer does not have ("${text.name}"): install the font, or convert the text to outlines (Flatten), then try again.`);
      }
      const fonts = text.characters.length > 0 ? text.getRangeAllFontNames(0, text.characters.length) : [text.fontName as FontName];
      for (const font of fonts) await this.figma.loadFontAsync(font);
    }
    node.visible = true;
    // a mask layer is not painted itself (it clips the layers above it): the copy must be a plain shape
    if ('isMask' in node) node.isMask = false;
    paintSubtreeAsMask(node);
  }

  createImageRect(rect: NewImageRect): string {
    const node = this.remember(this.figma.createRectangle());
    node.name = rect.name;
    node.resize(rect.width, rect.height);
    // CROP with the identity transform maps the whole image onto the rectangle; FILL would cover and crop
    // when the rounded pixel size and the fractional bounds differ in aspect ratio
    node.fills = [{ type: 'IMAGE', imageHash: rect.imageHash, scaleMode: 'CROP', imageTransform: [[1, 0, 0], [0, 1, 0]] }];
    node.strokes = [];
    node.visible = rect.visible;
    node.opacity = rect.opacity;
    node.blendMode = blendModeOf(rect.blendMode);
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
      this.figma.currentPage.selection = nodes;
      this.figma.viewport.scrollAndZoomIntoView(nodes);
    } catch {
      // the user switched pages meanwhile: the layers are there, just not selected
    }
  }

  removeTemporaryNodes(): number {
    const left = this.figma.currentPage.findChildren((n) => n.getSharedPluginData(DATA_NAMESPACE, TEMPORARY_KEY) === '1');
    for (const node of left) node.remove();
    return left.length;
  }

  commitUndo(): void {
    this.figma.commitUndo();
  }
}

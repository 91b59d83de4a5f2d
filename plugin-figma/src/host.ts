/**
 * FigmaHost: the only door between the plugin's logic and the `figma` global (STYLE rule 13). The real
 * implementation is figma-host.ts (a thin pass-through); tests use a fake that models Figma's semantics
 * (test/unit/plugin-figma/fake-figma.ts).
 *
 * The port speaks plain data: nodes are read as `HostNode` snapshots and changed by id. The semantics the
 * logic relies on are Figma's own, and the fake must reproduce them:
 * - `relativeTransform` is relative to the nearest *container* (page, frame, component, instance, section),
 *   never to a GROUP or BOOLEAN_OPERATION parent.
 * - `cloneNode` puts the copy on the current page with the same `relativeTransform` values;
 *   `appendChild`/`insertChild` keep a node's `relativeTransform` (so its absolute position changes).
 * - Children of auto-layout frames are moved by the layout unless `layoutPositioning` is 'ABSOLUTE'.
 * - Nothing can be inserted into an INSTANCE, anything inside one, or a BOOLEAN_OPERATION. A layer inserted
 *   into a main COMPONENT (or anything inside one) shows in every instance of it; one inserted into a
 *   TRANSFORM_GROUP is repeated by its modifiers.
 * - A node with isMask renders nothing itself. Repainting a TEXT node needs its fonts loaded first.
 * - Closing the plugin runs the 'close' listeners, then stops everything: pending exports never settle.
 * - `createImage` throws for images over 4096 px a side or bytes that are not PNG/JPEG/GIF.
 * - Plugin data reads '' when absent.
 *
 * Operations by id work on nodes the host has handed out (selection, node(), creations); `node()` looks any
 * node up (async, as dynamic-page requires).
 */
import type { Rect, Transform } from './geometry';
import type { MainToUi } from './messages';

export type LayoutMode = 'NONE' | 'HORIZONTAL' | 'VERTICAL' | 'GRID';

/** A snapshot of one node: what selection rules, mask export and placement read. */
export interface HostNode {
  readonly id: string;
  /** Figma's node type: 'FRAME', 'GROUP', 'RECTANGLE', 'PAGE', ... */
  readonly type: string;
  readonly name: string;
  readonly visible: boolean;
  /** null for the page (and the document) */
  readonly parentId: string | null;
  /** position among the parent's children, back to front (0 = bottom-most) */
  readonly index: number;
  /** relative to the page; the identity for the page */
  readonly absoluteTransform: Transform;
  readonly width: number;
  readonly height: number;
  /** axis-aligned box on the page (Figma's absoluteBoundingBox); null for pages */
  readonly bounds: Rect | null;
  /** how this node lays out its children; 'NONE' for nodes without auto-layout */
  readonly layoutMode: LayoutMode;
  /** an INSTANCE, or anything inside one */
  readonly inInstance: boolean;
  /** a main COMPONENT or COMPONENT_SET, or anything inside one */
  readonly inMainComponent: boolean;
  /** inside a TRANSFORM_GROUP (repeat modifiers) */
  readonly inTransformGroup: boolean;
  /** the layer's own opacity, 0..1 */
  readonly opacity: number;
  /** Figma's BlendMode ('NORMAL', 'MULTIPLY', ..., 'PASS_THROUGH' for groups and frames) */
  readonly blendMode: string;
  /** has a visible IMAGE fill (a placed photo) */
  readonly hasImageFill: boolean;
}

export interface ShowUiOptions {
  width: number;
  height: number;
  title: string;
}

export interface NewImageRect {
  name: string;
  /** canvas units */
  width: number;
  height: number;
  imageHash: string;
  visible: boolean;
  /** the source's opacity and blend mode, so the result looks as the source did */
  opacity: number;
  blendMode: string;
}

export interface ExportOptions {
  /**
   * Render the node at full opacity with normal blending (its own look left out), for a result that gets
   * the node's opacity and blend mode itself.
   */
  ownLookOnly?: boolean;
}

export interface FigmaHost {
  // ---- the UI
  showUi(options: ShowUiOptions): void;
  postToUi(message: MainToUi): void;
  onUiMessage(listener: (message: unknown) => void): void;
  onSelectionChange(listener: () => void): void;
  /** the plugin is closing (runs synchronously, before Figma stops the plugin) */
  onClose(listener: () => void): void;
  /** a toast; Figma shows the first 100 characters */
  notify(message: string, options?: { error?: boolean }): void;

  // ---- reading
  /** the current page's selection, in Figma's order */
  selection(): HostNode[];
  /** any node by id, or null when it no longer exists */
  node(id: string): Promise<HostNode | null>;
  getPluginData(nodeId: string, key: string): string;
  setPluginData(nodeId: string, key: string, value: string): void;
  /** plugin data on figma.root (the file) */
  getDocumentData(key: string): string;
  setDocumentData(key: string, value: string): void;
  /** figma.clientStorage: per user and machine, not in the file */
  loadSetting(key: string): Promise<unknown>;
  saveSetting(key: string, value: unknown): Promise<void>;
  /** centre of the visible canvas, page coordinates */
  viewportCenter(): { x: number; y: number };

  // ---- pixels
  /** PNG at 1x covering exactly the node's absolute bounding box (useAbsoluteBounds), sRGB */
  exportPng(nodeId: string, options?: ExportOptions): Promise<Uint8Array>;
  /** figma.createImage(png).hash; throws on images over 4096 px a side or unreadable bytes */
  createImage(png: Uint8Array): string;

  // ---- writing
  /**
   * A frame on the current page at `bounds` (page coordinates): black fill, clips its content, no auto-layout,
   * marked temporary (removeTemporaryNodes finds it).
   */
  createMaskFrame(bounds: Rect, name: string): string;
  /** removes what the plugin left marked temporary on the current page (a crash, a close mid-export); returns how many */
  removeTemporaryNodes(): number;
  /** a deep copy, parented to the current page (same relativeTransform values) */
  cloneNode(nodeId: string): string;
  /** append on top of parentId's children, keeping the child's relativeTransform */
  appendChild(parentId: string, childId: string): void;
  /** insert at index (0 = bottom-most, children.length = top), keeping the child's relativeTransform */
  insertChild(parentId: string, index: number, childId: string): void;
  setRelativeTransform(nodeId: string, transform: Transform): void;
  /** layoutPositioning = 'ABSOLUTE' (only for children of auto-layout frames) */
  setAbsolutePositioning(nodeId: string): void;
  /**
   * Make the node and everything in it a mask: visible, not a Figma mask itself (isMask off), every paint
   * white keeping its alpha (maskPaints), only layer blurs kept (maskEffects), normal blending; opacity
   * untouched. Loads the fonts of text in it first; PluginError when one is missing.
   */
  paintAsMask(nodeId: string): Promise<void>;
  /** a rectangle on the current page with one IMAGE fill mapping the whole image onto it (scaleMode CROP, identity) */
  createImageRect(rect: NewImageRect): string;
  remove(nodeId: string): void;
  /** select these nodes and scroll them into view */
  select(nodeIds: string[]): void;
  /** close the current undo step (figma.commitUndo) */
  commitUndo(): void;
}

/** Plugin data keys on result layers. */
export const RESULT_KEYS = { documentId: 'documentId', editId: 'editId' } as const;
/**
 * Plugin data keys on figma.root. `historyMarker`: the workspace and document of the file's history
 * (shared/client/history-marker.ts), so a user of another workspace is told whose it is.
 */
export const DOCUMENT_KEYS = { hostDocumentKey: 'hostDocumentKey', documentId: 'documentId', historyMarker: 'historyMarker' } as const;
/** clientStorage key of the settings. */
export const SETTINGS_KEY = 'settings';

export interface ResultTag {
  documentId: string;
  editId: string;
}

/** The layerloop tag of a result layer, or null for any other node. */
export function readResultTag(host: FigmaHost, nodeId: string): ResultTag | null {
  const documentId = host.getPluginData(nodeId, RESULT_KEYS.documentId);
  const editId = host.getPluginData(nodeId, RESULT_KEYS.editId);
  return documentId && editId ? { documentId, editId } : null;
}

/** An error whose message is written for the user (shown as is in the panel). */
export class PluginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginError';
  }
}

/**
 * What the current selection will do: the selection rules as one pure function, so the panel can explain
 * the outcome before Apply and the edit uses exactly what was explained.
 *
 * - One layer: a global edit of it.
 * - A layer plus a shape over it (rectangle, ellipse, polygon, star, vector, boolean, or any layer named
 *   "mask"): the shape is the mask, soft where it is blurred or semi-transparent.
 * - A result layer (tagged with {documentId, editId}) as the source continues from that edit's latent.
 * - Everything else gets a message that says what to select instead.
 */
import { MAX_ASPECT_RATIO } from '../../shared/protocol';
import { formatSize, isAxisAligned, overlapArea, rotationDegrees } from './geometry';
import type { HostNode, ResultTag } from './host';
import type { PlannedParent, SelectionSummary } from './messages';

/** The longest side, in px at 1x, an edited layer may have: figma.createImage takes at most 4096 px a side. */
export const MAX_LAYER_SIDE = 4096;

export interface SelectedNode {
  node: HostNode;
  /** the layerloop tag if this is a result layer */
  tag: ResultTag | null;
  /** child indices from the page down to the node: compares layers' stacking order across parents */
  zPath: number[];
}

export type SelectionPlan =
  | { ok: false; message: string }
  | { ok: true; source: HostNode; mask: HostNode | null; parent: PlannedParent; text: string; continues: boolean };

/** Shapes that can be a mask without being named "mask". */
export const MASK_SHAPE_TYPES: readonly string[] = ['RECTANGLE', 'ELLIPSE', 'POLYGON', 'STAR', 'VECTOR', 'BOOLEAN_OPERATION'];

/** Node types with no pixels of their own (FigJam objects, slices, widgets). */
const UNSUPPORTED_SOURCE_TYPES: Readonly<Record<string, string>> = {
  SLICE: 'a slice',
  STICKY: 'a sticky note',
  CONNECTOR: 'a connector',
  SHAPE_WITH_TEXT: 'a FigJam shape',
  CODE_BLOCK: 'a code block',
  STAMP: 'a stamp',
  WIDGET: 'a widget',
  EMBED: 'an embed',
  LINK_UNFURL: 'a link preview',
  MEDIA: 'a media embed',
  HIGHLIGHT: 'a highlight',
  WASHI_TAPE: 'washi tape',
};

export const messages = {
  empty: 'Select a layer to edit. To change only part of it, also select a shape drawn over that part.',
  tooMany: (n: number) => `${n} layers are selected. Select one layer to edit, plus at most one shape over it as the mask.`,
  noMaskCandidate: (a: string, b: string) =>
    `Neither "${a}" nor "${b}" can be a mask. To limit the edit, select the layer plus one shape over it (rectangle, ellipse, polygon, star, vector or boolean), or name the mask layer "mask".`,
  noOverlap: (mask: string, source: string) => `The mask "${mask}" does not overlap "${source}". Move it over the part of "${source}" to change.`,
  hidden: (name: string) => `"${name}" is hidden. Show it first: a hidden layer has no pixels to edit.`,
  unsupported: (name: string, what: string) => `"${name}" is ${what}, which has no pixels of its own to edit. Select a frame, group, shape, text or image layer.`,
  rotated: (name: string, degrees: number) =>
    `"${name}" is rotated (${degrees}° on the page). Set its rotation, and that of any frame or group around it, to 0, or flatten it, then try again.`,
  tooSmall: (name: string, size: string) => `"${name}" is ${size}: it needs at least 1×1 px to edit.`,
  tooLarge: (name: string, size: string) =>
    `"${name}" is ${size}. Each side can be at most ${MAX_LAYER_SIDE} px: scale it down or split it, then try again.`,
  badAspect: (name: string, size: string) =>
    `"${name}" is ${size}: the long side can be at most ${MAX_ASPECT_RATIO} times the short side. Crop it first (put it in a frame that clips).`,
} as const;

export function isMaskCandidate(node: HostNode): boolean {
  return MASK_SHAPE_TYPES.includes(node.type) || node.name.trim().toLowerCase() === 'mask';
}

const namedMask = (n: HostNode) => n.name.trim().toLowerCase() === 'mask';

/** -1 when a is below b in the stacking order, 1 when above. */
export function compareStacking(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Why this node cannot be edited, or null when it can. */
export function sourceProblem(node: HostNode): string | null {
  if (!node.visible) return messages.hidden(node.name);
  const what = UNSUPPORTED_SOURCE_TYPES[node.type];
  if (what) return messages.unsupported(node.name, what);
  if (!isAxisAligned(node.absoluteTransform)) return messages.rotated(node.name, rotationDegrees(node.absoluteTransform));
  const bounds = node.bounds;
  if (!bounds) return messages.unsupported(node.name, 'not a layer');
  const size = formatSize(bounds.width, bounds.height);
  if (bounds.width < 1 || bounds.height < 1) return messages.tooSmall(node.name, size);
  if (Math.ceil(bounds.width - 1e-6) > MAX_LAYER_SIDE || Math.ceil(bounds.height - 1e-6) > MAX_LAYER_SIDE) return messages.tooLarge(node.name, size);
  if (Math.max(bounds.width, bounds.height) / Math.min(bounds.width, bounds.height) > MAX_ASPECT_RATIO) return messages.badAspect(node.name, size);
  return null;
}

/** Split two selected layers into (source, mask), or explain why neither can be the mask. */
function pickMask(a: SelectedNode, b: SelectedNode): { source: SelectedNode; mask: SelectedNode } | string {
  const pair = (mask: SelectedNode) => ({ mask, source: mask === a ? b : a });
  const one = (test: (s: SelectedNode) => boolean): SelectedNode | null => (test(a) !== test(b) ? (test(a) ? a : b) : null);
  const named = one((s) => namedMask(s.node));
  if (named) return pair(named);
  const candidate = one((s) => isMaskCandidate(s.node));
  if (candidate) return pair(candidate);
  if (!isMaskCandidate(a.node)) return messages.noMaskCandidate(a.node.name, b.node.name);
  // both could be masks: the photo (image fill) or the result layer is the source, else the upper one is the mask
  const photo = one((s) => s.node.hasImageFill);
  if (photo) return { source: photo, mask: photo === a ? b : a };
  const result = one((s) => s.tag !== null);
  if (result) return { source: result, mask: result === a ? b : a };
  return pair(compareStacking(a.zPath, b.zPath) > 0 ? a : b);
}

/**
 * The plan for the current selection. `documentId` is this file's document on the connected server (null
 * before the first connection): a result layer tagged with another document id (pasted from another file,
 * or made on another server) starts from its pixels instead of a stored latent.
 */
export function planSelection(selected: readonly SelectedNode[], documentId: string | null): SelectionPlan {
  if (selected.length === 0) return { ok: false, message: messages.empty };
  if (selected.length > 2) return { ok: false, message: messages.tooMany(selected.length) };

  let source: SelectedNode;
  let mask: SelectedNode | null = null;
  if (selected.length === 1) {
    source = selected[0];
  } else {
    const picked = pickMask(selected[0], selected[1]);
    if (typeof picked === 'string') return { ok: false, message: picked };
    ({ source, mask } = picked);
  }

  const problem = sourceProblem(source.node);
  if (problem) return { ok: false, message: problem };
  const sourceBounds = source.node.bounds!;
  if (mask) {
    const maskBounds = mask.node.bounds;
    if (!maskBounds || overlapArea(maskBounds, sourceBounds) <= 0) return { ok: false, message: messages.noOverlap(mask.node.name, source.node.name) };
  }

  const s = source.node.name;
  const tag = source.tag;
  const continues = tag !== null && (documentId === null || tag.documentId === documentId);
  const parent: PlannedParent = continues ? { kind: 'edit', editId: tag!.editId } : { kind: 'source' };
  const what = mask
    ? `Edits "${s}" only under "${mask.node.name}" (soft where the shape is blurred or semi-transparent); the rest stays exactly as it is.`
    : `Edits all of "${s}" (${formatSize(sourceBounds.width, sourceBounds.height)}).`;
  const origin = continues
    ? 'Continues from the stored edit of this result layer (no quality lost to re-encoding). '
    : tag !== null
      ? `"${s}" was made in another file or on another server, so the edit starts from its pixels. `
      : '';
  const text = `${origin}${what} The result is a new layer just above it.`;
  return { ok: true, source: source.node, mask: mask?.node ?? null, parent, text, continues };
}

/** The panel's view of a plan. */
export function summarize(plan: SelectionPlan): SelectionSummary {
  if (!plan.ok) return { ready: false, text: plan.message, mode: null, continues: false, sourceName: null, maskName: null };
  return {
    ready: true,
    text: plan.text,
    mode: plan.mask ? 'masked' : 'global',
    continues: plan.continues,
    sourceName: plan.source.name,
    maskName: plan.mask?.name ?? null,
  };
}

/**
 * Placing results: each result image becomes a new rectangle with an IMAGE fill exactly over the source
 * (same absolute bounds), inserted just above it in the same parent, tagged with {documentId, editId}.
 *
 * - Auto-layout parent: the rectangle gets layoutPositioning ABSOLUTE, or the layout would move it.
 * - Group or boolean parent: relativeTransform is relative to the nearest container above the group.
 * - Inside an instance or a boolean operation nothing can be inserted; inside a main component it would show
 *   in every instance, inside a transform group it would be repeated: the rectangle goes just above the
 *   outermost such layer instead, still at the same absolute bounds.
 * - The result gets the source's opacity and blend mode (the source is exported without them).
 * - Variations are sibling layers in order, the first on top and the only visible one, named
 *   "<instruction> (k/n)".
 * - One variation at a time (beginPlacement, placeOne per image, finishPlacement): each image crosses into the
 *   main thread in its own message, so 8 variations at 4096 px never sit in the sandbox together.
 * - All or nothing: if anything fails after the first rectangle, abandonPlacement removes every rectangle made
 *   so far. Each image is created before its rectangle (Figma rejects bad ones there).
 * - One undo step: figma.commitUndo() once the last result is placed.
 */
import { IDENTITY, invert, multiply, pngSize, translation, type Rect, type Transform } from './geometry';
import { PluginError, RESULT_KEYS, type FigmaHost, type HostNode } from './host';
import type { PlacementTarget } from './messages';
import { sourceProblem } from './selection';

export interface ResultImage {
  editId: string;
  png: Uint8Array;
}

export interface PlaceRequest {
  target: PlacementTarget;
  instruction: string;
  documentId: string;
  results: ResultImage[];
}

const MAX_NAME_LENGTH = 60;

/** The layer name of variation k of n: the instruction, shortened, with "(k/n)" when there are several. */
export function resultName(instruction: string, k: number, n: number): string {
  const text = instruction.trim().replace(/\s+/g, ' ');
  const base = text === '' ? 'layerloop edit' : text.length > MAX_NAME_LENGTH ? `${text.slice(0, MAX_NAME_LENGTH - 1).trimEnd()}…` : text;
  return n > 1 ? `${base} (${k + 1}/${n})` : base;
}

export interface Slot {
  /** where the rectangles go; null = on the current page wherever createImageRect put them */
  parent: HostNode | null;
  /** index of the layer they go just above */
  index: number;
  /** absoluteTransform of the container their relativeTransform is relative to */
  container: Transform;
  bounds: Rect;
  /** the opacity and blend mode the results get */
  look: { opacity: number; blendMode: string };
}

const NORMAL_LOOK = { opacity: 1, blendMode: 'NORMAL' };

async function parentOf(host: FigmaHost, node: HostNode): Promise<HostNode> {
  const parent = node.parentId === null ? null : await host.node(node.parentId);
  if (!parent) throw new PluginError(`"${node.name}" is no longer on a page.`);
  return parent;
}

/** Just above `source` in a parent that can take a new child. */
export async function slotOver(host: FigmaHost, source: HostNode): Promise<Slot> {
  const bounds = source.bounds;
  if (!bounds) throw new PluginError(`"${source.name}" has no bounds on the page.`);
  let anchor = source;
  let parent = await parentOf(host, anchor);
  // no layer of ours inside these: an instance refuses it, a main component would put it in every instance,
  // a transform group would repeat it, a boolean operation would merge it into its shape
  while (parent.type === 'BOOLEAN_OPERATION' || parent.type === 'TRANSFORM_GROUP' || parent.inInstance || parent.inMainComponent || parent.inTransformGroup) {
    anchor = parent;
    parent = await parentOf(host, anchor);
  }
  let container = parent;
  while (container.type === 'GROUP' || container.type === 'BOOLEAN_OPERATION') container = await parentOf(host, container);
  return { parent, index: anchor.index, container: container.absoluteTransform, bounds, look: { opacity: source.opacity, blendMode: source.blendMode } };
}

function failedResultsNote(reason: string): PluginError {
  return new PluginError(`${reason} The result is kept in History: select a layer and press Place there.`);
}

async function slotFor(host: FigmaHost, target: PlacementTarget, firstPng: Uint8Array): Promise<Slot> {
  if (target.kind === 'node') {
    const source = await host.node(target.nodeId);
    if (!source) throw failedResultsNote('The layer you edited was deleted before the result arrived.');
    const problem = sourceProblem(source);
    if (problem) throw failedResultsNote(`The layer you edited changed while the edit ran: ${problem}`);
    return slotOver(host, source);
  }
  const selected = host.selection();
  if (selected.length === 1 && sourceProblem(selected[0]) === null) return { ...(await slotOver(host, selected[0])), look: NORMAL_LOOK };
  const size = pngSize(firstPng);
  if (!size) throw new PluginError('The result is not a PNG image; the server sent something else.');
  const center = host.viewportCenter();
  const bounds = { x: Math.round(center.x - size.width / 2), y: Math.round(center.y - size.height / 2), width: size.width, height: size.height };
  return { parent: null, index: 0, container: IDENTITY, bounds, look: NORMAL_LOOK };
}

/** Results being placed one by one: where they go, and the layers made so far. */
export interface Placement {
  readonly slot: Slot;
  readonly instruction: string;
  readonly documentId: string;
  readonly count: number;
  /** the rectangles made so far, first variation first */
  readonly created: string[];
}

/** Where `count` results go; `firstPng` sizes them when there is no layer to go over. */
export async function beginPlacement(host: FigmaHost, target: PlacementTarget, firstPng: Uint8Array, count: number, instruction: string, documentId: string): Promise<Placement> {
  if (count < 1) throw new PluginError('There is no result to place.');
  return { slot: await slotFor(host, target, firstPng), instruction, documentId, count, created: [] };
}

/** Places result `index` (0 = the first variation: on top, the only visible one); returns its layer id. */
export function placeOne(host: FigmaHost, placement: Placement, index: number, result: ResultImage): string {
  const { slot, count } = placement;
  if (index !== placement.created.length || index >= count) throw new Error(`bug: result ${index} of ${count} placed out of order`);
  // Figma validates the bytes here (size <= 4096 px, PNG/JPEG/GIF)
  let hash: string;
  try {
    hash = host.createImage(result.png);
  } catch (err) {
    throw new PluginError(`Figma could not take the result image (${(err as Error).message}). Nothing was added.`);
  }
  const { bounds } = slot;
  const id = host.createImageRect({
    name: resultName(placement.instruction, index, count),
    width: bounds.width,
    height: bounds.height,
    imageHash: hash,
    visible: index === 0,
    opacity: slot.look.opacity,
    blendMode: slot.look.blendMode,
  });
  placement.created.push(id);
  let inserted = false;
  if (slot.parent) {
    try {
      // each goes just above the source, under the ones placed before it: the first variation stays on top
      host.insertChild(slot.parent.id, slot.index + 1, id);
      inserted = true;
    } catch {
      // Figma refused this parent (its reparenting rules have exceptions): it stays on the page
    }
    if (inserted && slot.parent.layoutMode !== 'NONE') host.setAbsolutePositioning(id);
  }
  const container = slot.parent && !inserted ? IDENTITY : slot.container;
  host.setRelativeTransform(id, multiply(invert(container), translation(bounds.x, bounds.y)));
  host.setPluginData(id, RESULT_KEYS.documentId, placement.documentId);
  host.setPluginData(id, RESULT_KEYS.editId, result.editId);
  return id;
}

/** All results are placed: select the first and close the undo step. */
export function finishPlacement(host: FigmaHost, placement: Placement): string[] {
  if (placement.created.length !== placement.count) throw new Error(`bug: ${placement.created.length} of ${placement.count} results placed`);
  host.select([placement.created[0]]);
  host.commitUndo();
  return [...placement.created];
}

/** Something failed: remove every layer this placement made. */
export function abandonPlacement(host: FigmaHost, placement: Placement): void {
  for (const id of placement.created.splice(0)) {
    try {
      host.remove(id);
    } catch {
      // already gone
    }
  }
}

/** Place all the results at once (all or nothing); returns the new layers' ids, first variation first. */
export async function placeResults(host: FigmaHost, request: PlaceRequest): Promise<string[]> {
  const { results } = request;
  if (results.length === 0) throw new PluginError('There is no result to place.');
  const placement = await beginPlacement(host, request.target, results[0].png, results.length, request.instruction, request.documentId);
  try {
    results.forEach((result, k) => placeOne(host, placement, k, result));
  } catch (err) {
    abandonPlacement(host, placement);
    throw err;
  }
  return finishPlacement(host, placement);
}

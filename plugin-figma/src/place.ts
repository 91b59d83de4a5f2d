/**
 * Placing results: each result image becomes a new rectangle with an IMAGE fill exactly over the source
 * (same absolute bounds), inserted just above it in the same parent, tagged with {documentId, editId}.
 *
 * - Auto-layout parent: the rectangle gets layoutPositioning ABSOLUTE, or the layout would move it.
 * - Group or boolean parent: relativeTransform is relative to the nearest container above the group.
 * - Inside an instance or a boolean operation nothing can be inserted: the rectangle goes just above the
 *   outermost instance (or the boolean) instead, still at the same absolute bounds.
 * - Variations are sibling layers in order, the first on top and the only visible one, named
 *   "<instruction> (k/n)".
 * - All or nothing: the images are created first (Figma rejects bad ones before any layer exists), and if
 *   anything fails after the first rectangle, every rectangle made so far is removed.
 * - One undo step: figma.commitUndo() once the results are placed.
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

interface Slot {
  /** where the rectangles go; null = on the current page wherever createImageRect put them */
  parent: HostNode | null;
  /** index of the layer they go just above */
  index: number;
  /** absoluteTransform of the container their relativeTransform is relative to */
  container: Transform;
  bounds: Rect;
}

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
  while (parent.type === 'BOOLEAN_OPERATION' || parent.inInstance) {
    anchor = parent;
    parent = await parentOf(host, anchor);
  }
  let container = parent;
  while (container.type === 'GROUP' || container.type === 'BOOLEAN_OPERATION') container = await parentOf(host, container);
  return { parent, index: anchor.index, container: container.absoluteTransform, bounds };
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
  if (selected.length === 1 && sourceProblem(selected[0]) === null) return slotOver(host, selected[0]);
  const size = pngSize(firstPng);
  if (!size) throw new PluginError('The result is not a PNG image; the server sent something else.');
  const center = host.viewportCenter();
  const bounds = { x: Math.round(center.x - size.width / 2), y: Math.round(center.y - size.height / 2), width: size.width, height: size.height };
  return { parent: null, index: 0, container: IDENTITY, bounds };
}

/** Place the results; returns the new layers' ids, first variation first. */
export async function placeResults(host: FigmaHost, request: PlaceRequest): Promise<string[]> {
  const { results, instruction, documentId } = request;
  if (results.length === 0) throw new PluginError('There is no result to place.');
  const slot = await slotFor(host, request.target, results[0].png);

  // Figma validates the bytes here (size <= 4096 px, PNG/JPEG/GIF): fail before any layer exists
  let hashes: string[];
  try {
    hashes = results.map((r) => host.createImage(r.png));
  } catch (err) {
    throw new PluginError(`Figma could not take the result image (${(err as Error).message}). Nothing was added.`);
  }

  const { bounds } = slot;
  const desired = translation(bounds.x, bounds.y);
  const created: string[] = [];
  try {
    results.forEach((result, k) => {
      const id = host.createImageRect({
        name: resultName(instruction, k, results.length),
        width: bounds.width,
        height: bounds.height,
        imageHash: hashes[k],
        visible: k === 0,
      });
      created.push(id);
      let inserted = false;
      if (slot.parent) {
        try {
          // inserting each at the same index leaves the first variation on top
          host.insertChild(slot.parent.id, slot.index + 1, id);
          inserted = true;
        } catch {
          // Figma refused this parent (its reparenting rules have exceptions): it stays on the page
        }
        if (inserted && slot.parent.layoutMode !== 'NONE') host.setAbsolutePositioning(id);
      }
      const container = slot.parent && !inserted ? IDENTITY : slot.container;
      host.setRelativeTransform(id, multiply(invert(container), desired));
      host.setPluginData(id, RESULT_KEYS.documentId, documentId);
      host.setPluginData(id, RESULT_KEYS.editId, result.editId);
    });
  } catch (err) {
    for (const id of created) {
      try {
        host.remove(id);
      } catch {
        // already gone
      }
    }
    throw err;
  }
  host.select([created[0]]);
  host.commitUndo();
  return created;
}

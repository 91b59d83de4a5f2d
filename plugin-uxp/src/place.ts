/**
 * Placement: result pixels become new pixel layers directly above the layer they were made from, at the exact
 * captured bounds, each with a layer mask from the selection, plus their XMP records; all in one modal scope
 * with history suspended, so one Apply is one undo step. Call only with the pixels already downloaded: nothing
 * in the modal scope waits on the server.
 */
import { MESSAGES, UserError } from './errors';
import type { HostDocument, HostImageData, LayerLook, PhotoshopHost } from './host';
import type { DocumentRecords } from './identity';

export interface PlaceItem {
  editId: string;
  name: string;
  /** width*height*4 RGBA8, straight alpha */
  rgba: Uint8Array;
  width: number;
  height: number;
  /** top-left in document pixels */
  left: number;
  top: number;
  /** the profile the pixels are in (getPixels' profile for the source) */
  colorProfile: string;
  /** width*height, 255 = reveal; null = no layer mask */
  mask: Uint8Array | null;
  /** the source layer's opacity, fill opacity and blend mode; null = Photoshop's defaults */
  look: LayerLook | null;
}

export interface PlaceResult {
  /** in the order of the items; the last one is the top-most and becomes the active layer */
  layerIds: number[];
  /** set when the records could not be stored in the document */
  warning: string | null;
}

/** Longest layer name the plugin gives (Photoshop accepts longer ones, but the Layers panel truncates them). */
export const MAX_LAYER_NAME = 80;

export function layerName(instruction: string, variation: number | null): string {
  const text = instruction.trim().replace(/\s+/g, ' ') || 'layerloop edit';
  const suffix = variation === null ? '' : ` #${variation + 1}`;
  const room = MAX_LAYER_NAME - suffix.length;
  return (text.length > room ? `${text.slice(0, room - 1)}…` : text) + suffix;
}

/**
 * Places `items` above `aboveLayerId` (each above the previous one) in one undo step named `historyName`.
 * Without `aboveLayerId` the layers go where Photoshop creates them (above the active layer).
 *
 * The document is made active first (the user may have switched documents while the job ran; new layers and
 * batchPlay act on the active one). History: committed only when everything worked; on a failure (or the
 * user's cancel) the modal scope throws and Photoshop cancels the suspension itself, so nothing is half placed
 * and resumeHistory, which throws after a cancel, never hides the real error.
 */
export async function placeLayers(
  host: PhotoshopHost,
  records: DocumentRecords,
  document: HostDocument,
  aboveLayerId: number | null,
  items: readonly PlaceItem[],
  historyName: string,
): Promise<PlaceResult> {
  if (items.length === 0) throw new RangeError('placeLayers needs at least one item');
  for (const item of items) checkItem(item);
  return host.executeAsModal(historyName, async (ctx) => {
    if (aboveLayerId !== null && !host.findLayer(document.id, aboveLayerId)) {
      throw new UserError(MESSAGES.sourceGone);
    }
    await host.activateDocument(document.id);
    const suspension = await ctx.suspendHistory(document.id, historyName);
    const layerIds: number[] = [];
    let below = aboveLayerId;
    for (const item of items) {
      const layer = await host.createPixelLayer(document.id, item.name);
      if (below !== null) await host.moveLayerAbove(document.id, layer.id, below);
      const targetBounds = { left: item.left, top: item.top, width: item.width, height: item.height };
      await withImageData(
        host.createImageData(item.rgba, { width: item.width, height: item.height, components: 4, colorProfile: item.colorProfile }),
        (imageData) => host.putPixels({ documentID: document.id, layerID: layer.id, imageData, targetBounds }),
      );
      if (item.mask) {
        await withImageData(host.createImageData(item.mask, { width: item.width, height: item.height, components: 1 }), (imageData) =>
          host.putLayerMask({ documentID: document.id, layerID: layer.id, imageData, targetBounds }),
        );
      }
      if (item.look) await host.setLayerLook(document.id, layer.id, item.look);
      layerIds.push(layer.id);
      below = layer.id;
    }
    await host.selectLayer(document.id, layerIds[layerIds.length - 1]);
    const warning = await records.record(
      document,
      items.map((item, i) => ({ layerId: layerIds[i], editId: item.editId, left: item.left, top: item.top })),
    );
    await ctx.resumeHistory(suspension, true);
    return { layerIds, warning };
  });
}

function checkItem(item: PlaceItem): void {
  const n = item.width * item.height;
  if (!Number.isInteger(item.width) || !Number.isInteger(item.height) || n < 1) {
    throw new RangeError(`result size must be positive integers, got ${item.width}x${item.height}`);
  }
  if (item.rgba.length !== n * 4) throw new RangeError(`result ${item.width}x${item.height} needs ${n * 4} RGBA bytes, got ${item.rgba.length}`);
  if (item.mask && item.mask.length !== n) throw new RangeError(`mask for ${item.width}x${item.height} needs ${n} values, got ${item.mask.length}`);
}

async function withImageData<T>(created: Promise<HostImageData>, use: (data: HostImageData) => Promise<T>): Promise<T> {
  const data = await created;
  try {
    return await use(data);
  } finally {
    data.dispose();
  }
}

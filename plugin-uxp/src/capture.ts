/**
 * Capture: the active pixel layer as RGBA8 over its (trimmed) bounds, and the active selection cropped to
 * those bounds as a soft mask. Reads run in one short modal scope (as Adobe's samples do); nothing here waits
 * on the network.
 */
import { imageSizeProblem } from '../../shared/protocol';
import { MESSAGES, UserError, layerKindProblem } from './errors';
import {
  boundsHeight,
  boundsWidth,
  intersectBounds,
  isEmptyBounds,
  type Bounds,
  type ComponentSize,
  type HostDocument,
  type HostLayer,
  type LayerLook,
  type PhotoshopHost,
} from './host';
import { cropMask, maskCoverage, multiplyMasks, toRgba8 } from './pixels';

export interface LayerCapture {
  document: HostDocument;
  layer: HostLayer;
  /** what getPixels returned (trimmed to the pixels, clamped to the canvas): where the result goes */
  bounds: Bounds;
  width: number;
  height: number;
  /** width*height*4, straight alpha */
  rgba: Uint8Array;
  /** the profile the pixels are in; results are written back in it so Photoshop does not convert them */
  colorProfile: string;
  /**
   * The selection inside `bounds`, width*height values, 255 = edit, soft edges kept; null = no selection or
   * everything fully selected (a global edit).
   */
  mask: Uint8Array | null;
  /**
   * What the result layer's mask must also hide: the source's own user mask inside `bounds` (width*height,
   * 255 = shown), or null when it has none. The pixels under it are the layer's raw ones.
   */
  layerMask: Uint8Array | null;
  /** the source's opacity, fill opacity and blend mode, which the result layer takes */
  look: LayerLook;
}

/** The mask the result layer gets: the selection (what changes) within what the source layer shows. */
export function resultMask(capture: Pick<LayerCapture, 'mask' | 'layerMask'>): Uint8Array | null {
  if (capture.mask && capture.layerMask) return multiplyMasks(capture.mask, capture.layerMask);
  return capture.mask ?? capture.layerMask;
}

/** What getPixels should deliver for a document of this depth (16-bit is converted here, tested and exact). */
export function componentSizeFor(doc: HostDocument): ComponentSize {
  return doc.bitsPerChannel === 16 ? 16 : 8;
}

/** The selected layer if it can be edited, else a UserError saying why not. */
export function requireEditableLayer(host: PhotoshopHost): { document: HostDocument; layer: HostLayer } {
  const document = host.activeDocument();
  if (!document) throw new UserError(MESSAGES.noDocument);
  if (document.mode !== 'RGBColorMode') {
    throw new UserError(`"${document.title}" is not an RGB document: convert it with Image > Mode > RGB Color.`);
  }
  if (document.bitsPerChannel === 32) {
    // 32-bit data is linear light (HDR), and its profile names carry a suffix no profile parameter accepts
    throw new UserError(`"${document.title}" is a 32-bit (HDR) document: convert it with Image > Mode > 16 Bits/Channel (or 8), then try again.`);
  }
  const layers = host.activeLayers(document.id);
  if (layers.length === 0) throw new UserError(MESSAGES.noLayer);
  if (layers.length > 1) throw new UserError(MESSAGES.severalLayers);
  const layer = layers[0];
  const problem = layerKindProblem(layer.kind, layer.name);
  if (problem) throw new UserError(problem);
  if (isEmptyBounds(layer.bounds)) throw new UserError(MESSAGES.emptyLayer);
  if (layer.isClippingMask) {
    throw new UserError(`"${layer.name}" is clipped to the layer below it: release the clipping mask (Layer > Release Clipping Mask) or merge the two, then try again.`);
  }
  return { document, layer };
}

/**
 * Reads the active layer and selection (a reference image reads the layer only: `selection: false`). Throws
 * UserError for anything the user can fix.
 */
export async function captureActiveLayer(host: PhotoshopHost, read: { selection: boolean } = { selection: true }): Promise<LayerCapture> {
  const { document, layer } = requireEditableLayer(host);
  const canvas: Bounds = { left: 0, top: 0, right: document.width, bottom: document.height };
  const region = intersectBounds(layer.bounds, canvas);
  if (isEmptyBounds(region)) throw new UserError(MESSAGES.outsideCanvas);

  const masks = await host.layerMasks(document.id, layer.id);
  if (masks.vector) {
    throw new UserError(`"${layer.name}" has a vector mask, which plugins cannot read: rasterize it (Layer > Rasterize > Vector Mask), then try again.`);
  }

  return host.executeAsModal('layerloop: read layer', async () => {
    const pixels = await host.getPixels({
      documentID: document.id,
      layerID: layer.id,
      sourceBounds: region,
      componentSize: componentSizeFor(document),
    });
    let rgba: Uint8Array;
    let colorProfile: string;
    const bounds = pixels.sourceBounds;
    try {
      if (isEmptyBounds(bounds)) throw new UserError(MESSAGES.emptyLayer);
      const img = pixels.imageData;
      const sizeProblem = imageSizeProblem(img.width, img.height);
      if (sizeProblem) throw new UserError(`The layer cannot be edited: ${sizeProblem}.`);
      rgba = toRgba8(await img.getData(), img.width, img.height, img.components, img.componentSize);
      colorProfile = img.colorProfile;
    } finally {
      pixels.imageData.dispose();
    }
    const mask = read.selection ? await captureMask(host, document.id, bounds) : null;
    const layerMask = masks.user ? await captureLayerMask(host, document.id, layer.id, bounds) : null;
    return { document, layer, bounds, width: boundsWidth(bounds), height: boundsHeight(bounds), rgba, colorProfile, mask, layerMask, look: layer.look };
  });
}

/** The layer's user mask cropped to `bounds` (where Photoshop reports no mask data, the layer shows). */
async function captureLayerMask(host: PhotoshopHost, documentID: number, layerID: number, bounds: Bounds): Promise<Uint8Array> {
  const got = await host.getLayerMask({ documentID, layerID, sourceBounds: bounds });
  try {
    const data = await got.imageData.getData();
    if (data.BYTES_PER_ELEMENT !== 1 || got.imageData.components !== 1) {
      throw new Error(`expected 8-bit, 1-component layer mask data, got ${got.imageData.components} component(s) of ${got.imageData.componentSize} bits`);
    }
    const mask = cropMask(data as Uint8Array, got.sourceBounds, bounds, 255);
    return mask;
  } finally {
    got.imageData.dispose();
  }
}

/** The selection cropped to `bounds`; null for no selection or a full one; UserError when it misses the layer. */
async function captureMask(host: PhotoshopHost, documentID: number, bounds: Bounds): Promise<Uint8Array | null> {
  const selection = await host.selectionBounds(documentID);
  if (selection === null) return null;
  if (isEmptyBounds(intersectBounds(selection, bounds))) throw new UserError(MESSAGES.selectionMisses);
  const sel = await host.getSelection({ documentID, sourceBounds: bounds });
  let mask: Uint8Array;
  try {
    const data = await sel.imageData.getData();
    if (data.BYTES_PER_ELEMENT !== 1 || sel.imageData.components !== 1) {
      throw new Error(`expected 8-bit, 1-component selection data, got ${sel.imageData.components} component(s) of ${sel.imageData.componentSize} bits`);
    }
    mask = cropMask(data as Uint8Array, sel.sourceBounds, bounds);
  } finally {
    sel.imageData.dispose();
  }
  const coverage = maskCoverage(mask);
  if (coverage === 'none') throw new UserError(MESSAGES.selectionMisses);
  return coverage === 'full' ? null : mask;
}
